// relay/core/logging.cpp — see logging.hpp.
#include "relay/core/logging.hpp"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <cstdlib>
#include <mutex>
#include <string>

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

struct State {
  std::mutex mutex;
  std::string syslog_name = "danerelay";
  spdlog::level::level_enum level = spdlog::level::info;
  spdlog::sink_ptr sink;
};

State& state() {
  static State s;
  return s;
}

std::unique_ptr<spdlog::formatter> make_formatter() {
  auto f = std::make_unique<spdlog::pattern_formatter>();
  const bool journald = std::getenv("JOURNAL_STREAM") != nullptr;
  f->add_flag<SeverityFlag>('*').set_pattern(journald ? "%n[%P]: %*%v" : "%Y-%m-%dT%H:%M:%S.%f%z %n[%P]: %*%v");
  return f;
}

void configure(spdlog::logger& l) {
  l.set_level(state().level);
  l.flush_on(spdlog::level::warn);
}

}  // namespace

void setup_logging(const config::LogSettings& settings) {
  State& s = state();
  std::lock_guard lock(s.mutex);
  s.syslog_name = settings.syslog_name;
  s.level = spdlog::level::from_str(settings.level);
  if (!s.sink) s.sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  s.sink->set_formatter(make_formatter());
  spdlog::apply_all([](const std::shared_ptr<spdlog::logger>& l) { configure(*l); });
}

std::shared_ptr<spdlog::logger> logger(std::string_view service) {
  State& s = state();
  std::lock_guard lock(s.mutex);
  const std::string name = s.syslog_name + "/" + std::string(service);
  if (auto l = spdlog::get(name)) return l;
  if (!s.sink) {
    s.sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
    s.sink->set_formatter(make_formatter());
  }
  auto l = std::make_shared<spdlog::logger>(name, s.sink);
  configure(*l);
  spdlog::register_logger(l);
  return l;
}

}  // namespace danerelay::relay
