// relay/core/logging.cpp — see logging.hpp.
#include "relay/core/logging.hpp"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/uio.h>
#include <syslog.h>
#define SD_JOURNAL_SUPPRESS_LOCATION
#include <systemd/sd-journal.h>

#include <algorithm>
#include <cctype>
#include <optional>
#include <cstdlib>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace danerelay::relay {

namespace {

// "%*": Postfix's severity words in front of the message; nothing for info.
class SeverityFlag final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&, spdlog::memory_buf_t& dest) override {
    std::string_view word;
    switch (msg.level) {
      case spdlog::level::trace:
      case spdlog::level::debug: word = "debug: "; break;
      case spdlog::level::warn: word = "warning: "; break;
      case spdlog::level::err: word = "error: "; break;
      case spdlog::level::critical: word = "fatal: "; break;
      default: break;
    }
    dest.append(word.data(), word.data() + word.size());
  }
  [[nodiscard]] std::unique_ptr<custom_flag_formatter> clone() const override { return std::make_unique<SeverityFlag>(); }
};

int syslog_priority(spdlog::level::level_enum level) {
  switch (level) {
    case spdlog::level::trace:
    case spdlog::level::debug: return LOG_DEBUG;
    case spdlog::level::warn: return LOG_WARNING;
    case spdlog::level::err: return LOG_ERR;
    case spdlog::level::critical: return LOG_CRIT;
    default: return LOG_INFO;
  }
}

// The line without the "name[pid]: " journald and syslog add themselves.
std::string message_text(spdlog::formatter& formatter, const spdlog::details::log_msg& msg) {
  spdlog::memory_buf_t formatted;
  formatter.format(msg, formatted);
  std::string text(formatted.data(), formatted.size());
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  return text;
}

// journald's native protocol through sd_journal_sendv: the identifier per service, so
// `journalctl -t danerelay/smtp` finds exactly that service, and the fields of journal_fields().
// A journal that is gone loses the line rather than stopping the daemon (never throws).
class JournalSink final : public spdlog::sinks::base_sink<std::mutex> {
 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    const std::string text = message_text(*formatter_, msg);
    std::vector<std::string> fields{"MESSAGE=" + text, "PRIORITY=" + std::to_string(syslog_priority(msg.level)),
                                    "SYSLOG_FACILITY=2",
                                    "SYSLOG_IDENTIFIER=" + std::string(msg.logger_name.data(), msg.logger_name.size())};
    for (auto& [name, value] : journal_fields(std::string_view(msg.payload.data(), msg.payload.size()))) {
      fields.push_back("DANERELAY_" + name + "=" + value);
    }
    std::vector<iovec> iov;
    iov.reserve(fields.size());
    for (auto& f : fields) iov.push_back(iovec{f.data(), f.size()});
    (void)sd_journal_sendv(iov.data(), static_cast<int>(iov.size()));
  }
  void flush_() override {}
};

// syslog(3), facility mail, with the service's identifier (openlog per line: the tag is global).
class SyslogSink final : public spdlog::sinks::base_sink<std::mutex> {
 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    const std::string text = message_text(*formatter_, msg);
    // openlog keeps the pointer: the strings live in the map for the process's lifetime.
    auto [it, inserted] = idents_.try_emplace(std::string(msg.logger_name.data(), msg.logger_name.size()));
    if (inserted) it->second = it->first;
    ::openlog(it->second.c_str(), LOG_PID | LOG_NDELAY, LOG_MAIL);
    ::syslog(syslog_priority(msg.level), "%s", text.c_str());
  }
  void flush_() override {}

 private:
  std::map<std::string, std::string> idents_;
};

struct State {
  std::mutex mutex;
  std::string syslog_name = "danerelay";
  spdlog::level::level_enum level = spdlog::level::info;
  config::LogSettings::Target target = config::LogSettings::Target::stderr_;
  spdlog::sink_ptr sink;
};

State& state() {
  static State s;
  return s;
}

std::unique_ptr<spdlog::formatter> make_formatter(config::LogSettings::Target target) {
  using Target = config::LogSettings::Target;
  if (target == Target::journal || target == Target::syslog) {
    // journald and syslog add the identifier, the pid and the time themselves.
    auto f = std::make_unique<spdlog::pattern_formatter>(spdlog::pattern_time_type::local, std::string());
    f->add_flag<SeverityFlag>('*').set_pattern("%*%v");
    return f;
  }
  auto f = std::make_unique<spdlog::pattern_formatter>();
  const bool journald = std::getenv("JOURNAL_STREAM") != nullptr;
  f->add_flag<SeverityFlag>('*').set_pattern(journald ? "%n[%P]: %*%v" : "%Y-%m-%dT%H:%M:%S.%f%z %n[%P]: %*%v");
  return f;
}

spdlog::sink_ptr make_sink(config::LogSettings::Target target) {
  using Target = config::LogSettings::Target;
  spdlog::sink_ptr sink;
  switch (target) {
    case Target::journal: sink = std::make_shared<JournalSink>(); break;
    case Target::syslog: sink = std::make_shared<SyslogSink>(); break;
    default: sink = std::make_shared<spdlog::sinks::stderr_sink_mt>(); break;
  }
  sink->set_formatter(make_formatter(target));
  return sink;
}

void configure(spdlog::logger& l) {
  l.set_level(state().level);
  l.flush_on(spdlog::level::warn);
}

}  // namespace

config::LogSettings::Target effective_target(config::LogSettings::Target target) {
  using Target = config::LogSettings::Target;
  if (target != Target::automatic) return target;
  const char* stream = std::getenv("JOURNAL_STREAM");
  return stream != nullptr && stream[0] != '\0' ? Target::journal : Target::stderr_;
}

std::vector<std::pair<std::string, std::string>> journal_fields(std::string_view message) {
  std::vector<std::pair<std::string, std::string>> out;
  // "QID: …": 12 upper-case hex digits (queue_id.hpp), then ": ".
  if (message.size() > 14 && message[12] == ':' && message[13] == ' ' &&
      std::all_of(message.begin(), message.begin() + 12, [](char c) { return std::isdigit(static_cast<unsigned char>(c)) || (c >= 'A' && c <= 'F'); })) {
    out.emplace_back("QUEUE_ID", std::string(message.substr(0, 12)));
  }
  const auto value_after = [&](std::string_view key, std::string_view stop) -> std::optional<std::string_view> {
    const auto at = message.find(key);
    if (at == std::string_view::npos || (at > 0 && message[at - 1] != ' ')) return std::nullopt;
    const auto start = at + key.size();
    const auto end = message.find_first_of(stop, start);
    return message.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start);
  };
  if (auto to = value_after("to=<", ">")) {
    if (const auto atsign = to->rfind('@'); atsign != std::string_view::npos && atsign + 1 < to->size()) {
      std::string domain(to->substr(atsign + 1));
      for (char& c : domain) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      out.emplace_back("RECIPIENT_DOMAIN", std::move(domain));
    }
  }
  if (auto dsn = value_after("dsn=", ", ")) out.emplace_back("DSN", std::string(*dsn));
  if (auto status = value_after("status=", " ,")) out.emplace_back("STATUS", std::string(*status));
  return out;
}

void setup_logging(const config::LogSettings& settings) {
  State& s = state();
  std::lock_guard lock(s.mutex);
  s.syslog_name = settings.syslog_name;
  s.level = spdlog::level::from_str(settings.level);
  const auto target = effective_target(settings.target);
  if (!s.sink || target != s.target) {
    s.target = target;
    s.sink = make_sink(target);
    spdlog::apply_all([&s](const std::shared_ptr<spdlog::logger>& l) { l->sinks() = {s.sink}; });
  } else {
    s.sink->set_formatter(make_formatter(target));
  }
  spdlog::apply_all([](const std::shared_ptr<spdlog::logger>& l) { configure(*l); });
}

std::shared_ptr<spdlog::logger> logger(std::string_view service) {
  State& s = state();
  std::lock_guard lock(s.mutex);
  const std::string name = s.syslog_name + "/" + std::string(service);
  if (auto l = spdlog::get(name)) return l;
  if (!s.sink) s.sink = make_sink(s.target);
  auto l = std::make_shared<spdlog::logger>(name, s.sink);
  configure(*l);
  spdlog::register_logger(l);
  return l;
}

}  // namespace danerelay::relay
