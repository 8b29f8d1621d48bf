// relay/control/queue_control.cpp — see queue_control.hpp. The listing follows Postfix's own code, not its
// documentation: postfix/src/showq/showq.c (what is listed, in which order), and
// postfix/src/postqueue/showq_compat.c (mailq text) and showq_json.c (postqueue -j). The rule each
// piece of formatting comes from is named where it is applied.
#include "relay/control/queue_control.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <strings.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <fstream>
#include <unordered_map>

namespace danerelay::relay {

namespace {

// showq.c: an empty sender is shown as var_empty_addr, whose default is "MAILER-DAEMON".
constexpr std::string_view kEmptyAddress = "MAILER-DAEMON";

// showq_compat.c/showq_json.c read every attribute with ATTR_FLAG_PRINTABLE, which replaces
// non-printable bytes by '?'. Bytes >= 0x80 (UTF-8) are kept, as with smtputf8_enable = yes.
std::string printable(std::string_view text) {
  std::string out(text);
  for (auto& c : out) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) c = '?';
  }
  return out;
}

std::string shown_sender(std::string_view sender) {
  return sender.empty() ? std::string(kEmptyAddress) : printable(sender);
}

// The ORCPT address part when it differs from the recipient (as delivery_log's orig_to=).
std::string orcpt_address(const Recipient& r) {
  std::string orig = r.orcpt;
  if (orig.size() > 7 && strncasecmp(orig.c_str(), "rfc822;", 7) == 0) orig = orig.substr(7);
  if (orig.empty() || strcasecmp(orig.c_str(), r.address.c_str()) == 0) return {};
  return orig;
}

std::tm local_tm(std::int64_t unix_seconds) {
  const auto t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  localtime_r(&t, &tm);
  return tm;
}

// asctime(3) shape "Mon Nov 23 10:00:00 2026" (day of month space-padded, "%3d" in asctime).
std::string asctime_text(std::int64_t unix_seconds) {
  const std::tm tm = local_tm(unix_seconds);
  char buf[64];
  const auto n = std::strftime(buf, sizeof buf, "%a %b %e %H:%M:%S %Y", &tm);
  return std::string(buf, n);
}

std::string local_time_text(std::int64_t unix_seconds) {
  const std::tm tm = local_tm(unix_seconds);
  char buf[64];
  const auto n = std::strftime(buf, sizeof buf, "%a %b %e %H:%M:%S %Y %z", &tm);
  return std::string(buf, n);
}

std::int64_t unix_seconds(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

std::string json_string(std::string_view text) {
  return nlohmann::json(std::string(text)).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string notify_text(std::uint8_t notify) {
  if (notify == notify_unset) return "(default: FAILURE,DELAY)";
  if ((notify & notify_never) != 0) return "NEVER";
  std::string out;
  const auto add = [&](std::uint8_t bit, std::string_view word) {
    if ((notify & bit) == 0) return;
    if (!out.empty()) out += ',';
    out += word;
  };
  add(notify_success, "SUCCESS");
  add(notify_failure, "FAILURE");
  add(notify_delay, "DELAY");
  return out;
}

std::string_view status_text(RecipientStatus s, std::int64_t last_attempt) {
  switch (s) {
    case RecipientStatus::sent: return "sent";
    case RecipientStatus::bounced: return "bounced";
    case RecipientStatus::pending: break;
  }
  return last_attempt != 0 ? "deferred" : "pending";
}

}  // namespace

QueueEntry queue_entry(const QueuedMessage& message, bool active) {
  const Envelope& env = message.envelope;
  const MessageState& st = message.state;
  QueueEntry e;
  e.queue_name = active ? "active" : st.hold ? "hold" : st.attempts > 0 ? "deferred" : "incoming";
  e.queue_id = env.id.str();
  e.arrival_time = unix_seconds(env.arrival);
  e.message_size = env.size;
  e.forced_expire = st.forced_expire;
  e.sender = shown_sender(env.sender);

  // showq.c showq_report(): recipients from the defer logfile (each with its reason) are listed
  // first, then the queue file's remaining recipients without a reason. Deferred recipients are
  // kept together by reason (first-seen order), as one attempt's defer log lists them per
  // destination; then the pending recipients that have no recorded reason.
  std::vector<QueueEntry::Recipient> with_reason;
  std::vector<QueueEntry::Recipient> without;
  std::unordered_map<std::string, std::size_t> group;   // reason → group index
  std::vector<std::vector<QueueEntry::Recipient>> groups;
  for (std::size_t i = 0; i < env.recipients.size(); ++i) {
    const RecipientState* rs = i < st.recipients.size() ? &st.recipients[i] : nullptr;
    if (rs != nullptr && rs->status != RecipientStatus::pending) continue;
    QueueEntry::Recipient r{env.recipients[i].address, orcpt_address(env.recipients[i]), rs ? rs->reason : std::string{}};
    if (r.delay_reason.empty()) {
      without.push_back(std::move(r));
      continue;
    }
    auto [it, fresh] = group.try_emplace(r.delay_reason, groups.size());
    if (fresh) groups.emplace_back();
    groups[it->second].push_back(std::move(r));
  }
  for (auto& g : groups)
    for (auto& r : g) e.recipients.push_back(std::move(r));
  for (auto& r : without) e.recipients.push_back(std::move(r));
  return e;
}

std::string format_mailq(const std::vector<QueueEntry>& entries) {
  // showq_compat.c, S_* formats (short queue ids; our 12-character ids are longer than the
  // 11-column field, and "%-11s" then prints them whole and shifts the line, which is what
  // Postfix itself does with long inode-based short ids; see the comment above S_STRING_FORMAT).
  //   S_STRING_FORMAT "%-11s %7s %-20s %s\n"   headings and recipient lines
  //   S_SENDER_FORMAT "%-11s %7ld %20.20s %s\n" message line
  std::string out;
  std::uint64_t total = 0;
  for (std::size_t n = 0; n < entries.size(); ++n) {
    const QueueEntry& e = entries[n];
    // showq_compat(): a blank line between messages, the headings before the first.
    if (n > 0) {
      out += '\n';
    } else {
      out += fmt::format("{:<11} {:>7} {:<20} {}\n", "-Queue ID-", "--Size--", "----Arrival Time----",
                         "-Sender/Recipient-------");
    }
    // showq_message(): the status character is appended to the id before padding: "*" active,
    // "!" hold, then "#" forced expire (so "!#" is possible).
    std::string id_status = e.queue_id;
    if (e.queue_name == "active") {
      id_status += '*';
    } else if (e.queue_name == "hold") {
      id_status += '!';
    }
    if (e.forced_expire) id_status += '#';
    // "%20.20s" of asctime(localtime()): the first 20 characters, "Mon Nov 23 10:00:00 ".
    const std::string date = asctime_text(e.arrival_time).substr(0, 20);
    out += fmt::format("{:<11} {:>7} {:>20.20} {}\n", id_status, e.message_size, date, shown_sender(e.sender));

    // showq_message(): a "(reason)" line whenever the reason differs from the previous
    // recipient's (initially ""), "(reason unavailable)" when a reason is followed by none;
    // right-aligned with padding = 76 - strlen(reason), at least 0. No wrapping.
    std::string saved_reason;
    for (const auto& r : e.recipients) {
      const std::string why = printable(r.delay_reason);
      if (why != saved_reason) {
        saved_reason = why;
        const std::string show = why.empty() ? std::string("reason unavailable") : why;
        const std::size_t padding = show.size() < 76 ? 76 - show.size() : 0;
        out += std::string(padding, ' ') + "(" + show + ")\n";
      }
      out += fmt::format("{:<11} {:>7} {:<20} {}\n", "", "", "", printable(r.address));
    }
    total += e.message_size;
  }
  // showq_compat(): "Mail queue is empty", or "\n-- %lu Kbytes in %lu Request%s.\n" with
  // queue_size / 1024 (truncating) and "Request" singular for one message.
  if (entries.empty()) {
    out += "Mail queue is empty\n";
  } else {
    out += fmt::format("\n-- {} Kbytes in {} Request{}.\n", total / 1024, entries.size(), entries.size() == 1 ? "" : "s");
  }
  return out;
}

std::string format_json(const std::vector<QueueEntry>& entries) {
  // showq_json.c format_json(): members in this order, '"name": value' joined by ", ", one object
  // per line. Each recipient has "orig_address" (Postfix >= 3.11 always sends one: showq.c uses
  // the recipient itself when there is no original address) and "address", and "delay_reason"
  // only when there is a reason (LEN(why) > 0).
  std::string out;
  for (const auto& e : entries) {
    out += "{\"queue_name\": " + json_string(e.queue_name);
    out += ", \"queue_id\": " + json_string(e.queue_id);
    out += fmt::format(", \"arrival_time\": {}, \"message_size\": {}, \"forced_expire\": {}", e.arrival_time,
                       e.message_size, e.forced_expire ? "true" : "false");
    out += ", \"sender\": " + json_string(shown_sender(e.sender));
    out += ", \"recipients\": [";
    for (std::size_t i = 0; i < e.recipients.size(); ++i) {
      const auto& r = e.recipients[i];
      if (i > 0) out += ", ";
      out += "{\"orig_address\": " + json_string(printable(r.orig_address.empty() ? r.address : r.orig_address));
      out += ", \"address\": " + json_string(printable(r.address));
      if (!r.delay_reason.empty()) out += ", \"delay_reason\": " + json_string(printable(r.delay_reason));
      out += '}';
    }
    out += "]}\n";
  }
  return out;
}

std::string format_show(const QueuedMessage& message, const std::string& headers) {
  const Envelope& env = message.envelope;
  const MessageState& st = message.state;
  std::string out;
  const auto line = [&](std::string_view label, std::string_view value) {
    out += fmt::format("{:<15} {}\n", std::string(label) + ":", value);
  };
  line("Queue ID", env.id.str());
  line("Arrival", local_time_text(unix_seconds(env.arrival)));
  line("Size", std::to_string(env.size) + " bytes");
  line("Sender", env.sender.empty() ? std::string("<> (null sender)") : "<" + printable(env.sender) + ">");
  if (!env.envid.empty()) line("ENVID", printable(env.envid));
  line("RET", env.ret == Ret::full ? "FULL" : env.ret == Ret::headers ? "HDRS" : "(not given)");
  if (env.eightbit || env.smtputf8) {
    std::string body = env.eightbit ? "8BITMIME" : "";
    if (env.smtputf8) body += body.empty() ? "SMTPUTF8" : ", SMTPUTF8";
    line("Body", body);
  }
  line("Attempts", std::to_string(st.attempts));
  line("Next attempt", st.next_attempt == 0 ? std::string("as soon as possible") : local_time_text(st.next_attempt));
  line("Hold", st.hold ? "yes" : "no");
  if (st.forced_expire) line("Forced expire", "yes (bounces at the next attempt)");
  for (std::size_t i = 0; i < env.recipients.size(); ++i) {
    const Recipient& r = env.recipients[i];
    const RecipientState none{};
    const RecipientState& rs = i < st.recipients.size() ? st.recipients[i] : none;
    out += '\n';
    line("Recipient", "<" + printable(r.address) + ">");
    if (!r.orcpt.empty()) line("  ORCPT", printable(r.orcpt));
    line("  NOTIFY", notify_text(r.notify));
    line("  Status", status_text(rs.status, rs.last_attempt));
    if (!rs.dsn.empty()) line("  DSN", rs.dsn);
    if (!rs.reason.empty()) line("  Reason", printable(rs.reason));
    if (!rs.remote_mta.empty()) line("  Remote MTA", printable(rs.remote_mta));
    if (!rs.diagnostic.empty()) line("  Diagnostic", printable(rs.diagnostic));
    if (rs.last_attempt != 0) line("  Last attempt", local_time_text(rs.last_attempt));
    if (rs.delay_notified) line("  Delay notice", "sent");
    if (rs.notice_owed) {
      line("  Notice", std::string(rs.status == RecipientStatus::sent ? "success" : "non-delivery") +
                           " notice owed to the sender (could not be queued; retried at the next attempt)");
    }
  }
  out += '\n';
  out += headers;
  if (!headers.empty() && headers.back() != '\n') out += '\n';
  return out;
}

std::optional<std::string> read_headers(const QueuedMessage& message, std::string* error, std::size_t limit) {
  std::ifstream in(message.envelope.body, std::ios::binary);
  if (!in) {
    if (error != nullptr) *error = message.envelope.body + ": " + std::strerror(errno);
    return std::nullopt;
  }
  in.seekg(static_cast<std::streamoff>(message.envelope.body_offset));
  // Read no further than the message (the spool's envelope record follows it) nor the limit.
  const auto want = static_cast<std::size_t>(std::min<std::uint64_t>(message.envelope.size, limit));
  std::string raw(want, '\0');
  in.read(raw.data(), static_cast<std::streamsize>(want));
  if (in.bad()) {
    if (error != nullptr) *error = message.envelope.body + ": read error";
    return std::nullopt;
  }
  raw.resize(static_cast<std::size_t>(in.gcount()));
  std::string out;
  for (std::size_t pos = 0; pos < raw.size();) {
    auto lf = raw.find('\n', pos);
    const bool complete = lf != std::string::npos;
    if (!complete) lf = raw.size();
    std::string_view line(raw.data() + pos, lf - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty() && complete) break;  // the empty line that ends the header section (RFC 5322 §2.1)
    out += line;
    out += '\n';
    pos = lf + 1;
  }
  return out;
}

}  // namespace danerelay::relay
