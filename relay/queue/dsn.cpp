// relay/queue/dsn.cpp — delivery status notifications (RFC 3464 inside RFC 6522 multipart/report).
//
// SUMMARY
//   dsn_recipients() applies the sender's NOTIFY wishes (RFC 3461 §4.1) to the recipients the
//   queue manager offers; make_dsn() renders the notice as one complete RFC 5322 message with
//   CRLF line ends: our own headers, a human-readable part, a message/delivery-status part and
//   (optionally) the returned original. Nothing here does I/O or reads the clock: the caller
//   passes `now`, the original message text and our host name, and spools the result with the
//   null reverse-path (RFC 5321 §4.5.5) like any other message.
//
// SAFETY
//   Addresses, reasons and ENVID come from the network. Every value that ends up in a header
//   field or a delivery-status field goes through clean(): CR, LF and other control characters
//   become '?', so no value can start a new header line (injection); non-ASCII survives only in
//   an SMTPUTF8 message whose text is valid UTF-8 (RFC 6531/6532/6533), otherwise it becomes '?'
//   too (what Postfix's printable() does). Every generated line is at most 998 octets
//   (RFC 5322 §2.1.1): fields are folded at white space, human text is wrapped, over-long words
//   are split, and the returned original is re-cut where a line is too long or ends in a bare
//   CR or LF. The MIME boundary is verified absent from all three parts (RFC 2046 §5.1.1).
//
// POLICY DECISIONS (argued where they are applied)
//   - A recipient that expired in the queue keeps its last 4.X.X code in a failure report, as
//     Postfix does: RFC 3463 §3.1 defines class 4 as a "persistent transient failure" which, in a
//     failure report, says that sending later might work. A 2.X.X code is never reported as
//     failed (becomes 5.0.0).
//   - Success notices say "relayed" when the recipient went to a remote MTA (RFC 3464 §2.3.3:
//     we handed the message to a system that, as far as this notice is concerned, takes no DSN
//     responsibility; otherwise the queue manager would not ask for a success notice, RFC 3461
//     §5.2.2), and "delivered" only when no remote MTA is recorded.
//   - The original is returned in full for failures unless RET=HDRS (Postfix's default); delay
//     and success notices carry its headers only (RFC 3461 §4.3 lets the MTA choose for those).
//     An empty `original` (message text unavailable) leaves the optional third part out
//     (RFC 6522 §3).
//
// DIAGNOSTICS
//   make_dsn() throws std::invalid_argument when envelope or state is missing, when the sender
//   is null (a bounce is never bounced, RFC 5321 §6.1 / RFC 3461 §6.2), or when no recipient is
//   listed (RFC 3464 §2.1 requires at least one per-recipient block), and std::out_of_range
//   for a recipient index outside the envelope or state. These are caller bugs, not mail data.
#include "relay/queue/dsn.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <ctime>
#include <stdexcept>
#include <string_view>

#include "smtp/command.hpp"
#include "smtp/syntax.hpp"

namespace danerelay::relay {

namespace {

using smtp::valid_utf8;  // RFC 3629 §4, strict

constexpr std::size_t kMaxLine = 998;    // RFC 5322 §2.1.1, without the CRLF
constexpr std::size_t kFoldWidth = 78;   // RFC 5322 §2.1.1 SHOULD limit
constexpr std::size_t kWrapWidth = 79;   // human text, as Postfix's bounce_print_wrap
constexpr std::size_t kIndent = 4;
constexpr std::string_view kCrlf = "\r\n";

// ---------------------------------------------------------------- character hygiene

bool is_ascii(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) < 0x80; });
}


// One-line, injection-free text for a header or delivery-status field. Tabs become spaces;
// other controls (CR and LF included) and DEL become '?'. Non-ASCII is kept only when
// `allow_utf8` and the whole value is valid UTF-8 (RFC 6532 §3.2), else each such byte is '?'.
std::string clean(std::string_view s, bool allow_utf8) {
  const bool keep_8bit = allow_utf8 && valid_utf8(s);
  std::string out;
  out.reserve(s.size());
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '\t') {
      out += ' ';
    } else if (c < 0x20 || c == 0x7F || (c >= 0x80 && !keep_8bit)) {
      out += '?';
    } else {
      out += ch;
    }
  }
  return out;
}

bool icontains(std::string_view hay, std::string_view needle) {
  return std::search(hay.begin(), hay.end(), needle.begin(), needle.end(), [](char a, char b) {
           return std::tolower(static_cast<unsigned char>(a)) == std::tolower(static_cast<unsigned char>(b));
         }) != hay.end();
}

bool iequals_prefix(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && icontains(s.substr(0, prefix.size()), prefix);
}

// ---------------------------------------------------------------- dates and durations

std::int64_t unix_seconds(Clock::time_point tp) {
  return std::chrono::duration_cast<std::chrono::seconds>(tp.time_since_epoch()).count();
}

// The one RFC 5322 date (smtp/syntax.hpp), from a time point or from unix seconds.
std::string rfc5322_date(Clock::time_point tp) { return syntax::rfc5322_date(tp); }
std::string rfc5322_date(std::int64_t unix_seconds) { return syntax::rfc5322_date(Clock::from_time_t(static_cast<std::time_t>(unix_seconds))); }

std::string human_duration(std::int64_t seconds) {
  if (seconds < 0) seconds = 0;
  const auto plural = [](std::int64_t n, std::string_view unit) {
    return fmt::format("{} {}{}", n, unit, n == 1 ? "" : "s");
  };
  if (seconds >= 2 * 86400) return plural(seconds / 86400, "day");
  if (seconds >= 2 * 3600) return plural(seconds / 3600, "hour");
  return plural(seconds / 60, "minute");
}

// ---------------------------------------------------------------- line discipline

// Split `text` into words at spaces and lay them out in lines of at most `width` octets; the
// first line is prefixed by `first`, the others by `rest`. A word that cannot fit within
// kMaxLine is cut (the only case where the original spacing is not preserved).
std::vector<std::string> layout(std::string_view text, std::string_view first, std::string_view rest,
                                std::size_t width) {
  std::vector<std::string> lines;
  std::string line(first);
  bool line_has_word = false;
  std::size_t pos = 0;
  while (pos < text.size()) {
    while (pos < text.size() && text[pos] == ' ') ++pos;
    if (pos >= text.size()) break;
    std::size_t end = text.find(' ', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view word = text.substr(pos, end - pos);
    pos = end;
    while (!word.empty()) {
      const std::size_t sep = line_has_word ? 1 : 0;
      if (line_has_word && line.size() + sep + word.size() > width) {
        lines.push_back(std::move(line));
        line = std::string(rest);
        line_has_word = false;
        continue;
      }
      if (line_has_word) line += ' ';
      const std::size_t room = kMaxLine - line.size();
      if (word.size() <= room) {
        line += word;
        word = {};
      } else {  // RFC 5322 §2.1.1: nothing may exceed 998 octets, even one "word"
        line += word.substr(0, room);
        word.remove_prefix(room);
        lines.push_back(std::move(line));
        line = std::string(rest);
        line_has_word = false;
        continue;
      }
      line_has_word = true;
    }
  }
  if (line_has_word || lines.empty()) lines.push_back(std::move(line));
  return lines;
}

// A header or delivery-status field, folded (RFC 5322 §2.2.3) before a space, so unfolding
// (removing the CRLF) gives the value back; runs of spaces collapse to one.
std::string field(std::string_view name, std::string_view value) {
  const std::string head = fmt::format("{}: ", name);
  std::string out;
  for (const auto& line : layout(value, head, " ", kFoldWidth)) {
    out += line;
    out += kCrlf;
  }
  return out;
}

// Human text: wrapped at 79 columns, continuation lines indented (Postfix's bounce layout).
std::string wrapped(std::string_view text, std::string_view indent_first = "", std::size_t indent_rest = 0) {
  std::string out;
  const std::string rest = std::string(indent_first) + std::string(indent_rest, ' ');
  for (const auto& line : layout(text, indent_first, rest, kWrapWidth)) {
    out += line;
    out += kCrlf;
  }
  return out;
}

// The returned original with every line ending in CRLF and no line over 998 octets: a bare LF
// or bare CR ends a line; a longer line is cut (RFC 5322 §2.1.1, RFC 2045 §2.8).
std::string normalize_lines(std::string_view text) {
  std::string out;
  out.reserve(text.size() + text.size() / 64 + 2);
  std::size_t column = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '\r' || c == '\n') {
      if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') ++i;
      out += kCrlf;
      column = 0;
      continue;
    }
    if (column == kMaxLine) {
      out += kCrlf;
      column = 0;
    }
    out += c;
    ++column;
  }
  if (column != 0) out += kCrlf;
  return out;
}

// The header section of a (normalized) message, up to and including the CRLF before the empty
// line; the whole message when there is no body.
std::string_view header_section(std::string_view message) {
  if (message.starts_with(kCrlf)) return {};
  const auto blank = message.find("\r\n\r\n");
  return blank == std::string_view::npos ? message : message.substr(0, blank + 2);
}

// The original's Message-ID (for In-Reply-To/References, as Postfix adds them for threading),
// when it is a plausible "<...>" token; empty otherwise.
std::string original_message_id(std::string_view headers) {
  std::size_t pos = 0;
  while (pos < headers.size()) {
    std::size_t eol = headers.find(kCrlf, pos);
    if (eol == std::string_view::npos) eol = headers.size();
    std::string_view line = headers.substr(pos, eol - pos);
    pos = eol + 2;
    if (!iequals_prefix(line, "message-id:")) continue;
    std::string value(line.substr(11));
    // RFC 5322 §2.2.3 unfolding: continuation lines start with white space.
    while (pos < headers.size() && (headers[pos] == ' ' || headers[pos] == '\t')) {
      std::size_t next = headers.find(kCrlf, pos);
      if (next == std::string_view::npos) next = headers.size();
      value += headers.substr(pos, next - pos);
      pos = next + 2;
    }
    const auto open = value.find('<');
    const auto close = value.find('>', open == std::string::npos ? 0 : open);
    if (open == std::string::npos || close == std::string::npos || close - open > 900) return {};
    std::string id = value.substr(open, close - open + 1);
    const bool plain = std::all_of(id.begin(), id.end(), [](char ch) {
      const auto u = static_cast<unsigned char>(ch);
      return u > 0x20 && u < 0x7F;
    });
    return plain ? id : std::string{};
  }
  return {};
}

// RFC 2046 §5.1.1 bcharsnospace.
bool boundary_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) != 0 || std::string_view("'()+_,-./:=?").find(c) != std::string_view::npos;
}

bool valid_boundary(std::string_view b) {
  return !b.empty() && b.size() <= 70 && std::all_of(b.begin(), b.end(), boundary_char);
}

// ---------------------------------------------------------------- status codes

// RFC 3463 §2: class "." subject "." detail, class 2/4/5, subject and detail 1-3 digits.
bool valid_status(std::string_view s) {
  if (s.size() < 5 || (s[0] != '2' && s[0] != '4' && s[0] != '5') || s[1] != '.') return false;
  std::size_t i = 2;
  for (int part = 0; part < 2; ++part) {
    std::size_t digits = 0;
    while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i])) != 0) {
      ++i;
      ++digits;
    }
    if (digits == 0 || digits > 3) return false;
    if (part == 0) {
      if (i >= s.size() || s[i] != '.') return false;
      ++i;
    }
  }
  return i == s.size();
}

// The Status field for one recipient (RFC 3464 §2.3.4), consistent with its Action.
std::string report_status(DsnKind kind, std::string_view dsn) {
  const bool ok = valid_status(dsn);
  switch (kind) {
    case DsnKind::success:
      return ok && dsn[0] == '2' ? std::string(dsn) : "2.0.0";
    case DsnKind::delay:
      return ok && dsn[0] == '4' ? std::string(dsn) : "4.0.0";
    case DsnKind::failure:
      // 4.X.X stays: the recipient expired after temporary failures (RFC 3463 §3.1, Postfix).
      return ok && dsn[0] != '2' ? std::string(dsn) : "5.0.0";
  }
  return "5.0.0";
}

std::string_view action_for(DsnKind kind, const RecipientState& r) {
  switch (kind) {
    case DsnKind::failure: return "failed";
    case DsnKind::delay: return "delayed";
    case DsnKind::success: return r.remote_mta.empty() ? "delivered" : "relayed";
  }
  return "failed";
}

// ---------------------------------------------------------------- the notice's parts

struct Context {
  const DsnInput& in;
  const Envelope& env;
  const MessageState& state;
  bool utf8 = false;      // SMTPUTF8 notice: UTF-8 addresses kept (RFC 6531–6533)
  bool headers_only = false;
  std::string host;       // reporting MTA, cleaned
};

std::string address_type(const Context& cx, std::string_view address) {
  return cx.utf8 && !is_ascii(address) ? "utf-8" : "rfc822";
}

std::string recipient_reason(const Context& cx, const RecipientState& r) {
  if (!r.reason.empty()) return clean(r.reason, false);
  if (!r.diagnostic.empty()) return clean(r.diagnostic, false);
  switch (cx.in.kind) {
    case DsnKind::failure: return "delivery failed (no further details recorded)";
    case DsnKind::delay: return "delivery temporarily deferred (no further details recorded)";
    case DsnKind::success: return "delivery succeeded";
  }
  return {};
}

std::string text_part(const Context& cx) {
  const auto& in = cx.in;
  std::string t;
  t += wrapped(fmt::format("This is the mail system at host {}.", cx.host));
  t += kCrlf;
  const std::int64_t now = unix_seconds(in.now);
  const std::int64_t arrival = unix_seconds(cx.env.arrival);
  switch (in.kind) {
    case DsnKind::failure:
      t += wrapped(fmt::format(
          "I'm sorry to have to inform you that your message could not be delivered to one or more recipients. {}",
          in.original.empty()    ? "The message itself could not be attached."
          : cx.headers_only ? "The headers of your message are attached below."
                            : "Your message is attached below."));
      t += kCrlf;
      t += wrapped(
          "For further assistance, please send mail to the postmaster of this site and include this report. You can "
          "delete your own text from the returned message.");
      break;
    case DsnKind::delay:
      // RFC 3464 §2.3.3 "delayed": a warning, not a failure; the sender must not resend.
      t += wrapped("THIS IS A WARNING MESSAGE ONLY. YOU DO NOT NEED TO RESEND YOUR MESSAGE.");
      t += kCrlf;
      t += wrapped(fmt::format(
          "Your message could not be delivered for {} to one or more recipients listed below. {}",
          human_duration(now - arrival),
          in.max_lifetime.count() > 0
              ? fmt::format("The mail system will keep trying until {}; only if it still fails by then will the "
                            "message be returned to you.",
                            rfc5322_date(arrival + in.max_lifetime.count()))
              : std::string("The mail system will keep trying to deliver it.")));
      break;
    case DsnKind::success:
      t += wrapped("Your message was successfully handed on to the destinations listed below, as you asked to be told "
                   "(delivery notification requested).");
      t += kCrlf;
      t += wrapped("Where a recipient was handed to another mail system, that system may still report problems with "
                   "the final delivery.");
      break;
  }
  t += kCrlf;
  t += "                   The mail system\r\n";

  for (const std::size_t i : in.recipients) {
    const auto& r = cx.state.recipients[i];
    t += kCrlf;
    t += wrapped(fmt::format("<{}>: {}", clean(cx.env.recipients[i].address, cx.utf8), recipient_reason(cx, r)), "",
                 kIndent);
    if (in.kind != DsnKind::success) {
      if (const auto why = explain_reason(r.dsn, r.reason); !why.empty()) {
        t += kCrlf;
        t += wrapped(why, "    ", 0);
      }
    }
    if (in.kind == DsnKind::failure && valid_status(r.dsn) && r.dsn[0] == '4') {
      t += kCrlf;
      t += wrapped(
          in.max_lifetime.count() > 0
              ? fmt::format("The mail system gave up after {} of temporary failures; the message was never sent "
                            "to this recipient.",
                            human_duration(in.max_lifetime.count()))
              : std::string("The mail system gave up after repeated temporary failures; the message was never sent "
                            "to this recipient."),
          "    ", 0);
    }
  }
  return t;
}

std::string delivery_status_part(const Context& cx) {
  const auto& in = cx.in;
  std::string d;
  // RFC 3464 §2.2: per-message fields.
  d += field("Reporting-MTA", fmt::format("dns; {}", cx.host));  // §2.2.2
  d += field("X-Danerelay-Queue-ID", cx.env.id.str());            // §2.2 extension-field (X-)
  d += field("X-Danerelay-Sender", fmt::format("{}; {}", address_type(cx, cx.env.sender), clean(cx.env.sender, cx.utf8)));
  // §2.2.1 / RFC 3461 §6.3.a: the ENVID as given, i.e. xtext; we store it decoded.
  if (!cx.env.envid.empty()) d += field("Original-Envelope-Id", syntax::xtext_encode(cx.env.envid));
  d += field("Arrival-Date", rfc5322_date(cx.env.arrival));  // §2.2.5

  // RFC 3464 §2.3: one block per recipient, each after a blank line.
  for (const std::size_t i : in.recipients) {
    const auto& rcpt = cx.env.recipients[i];
    const auto& r = cx.state.recipients[i];
    d += kCrlf;
    // §2.3.1 / RFC 3461 §6.3.d: only when ORCPT was given, with its address type.
    if (!rcpt.orcpt.empty()) d += field("Original-Recipient", clean(rcpt.orcpt, cx.utf8));
    d += field("Final-Recipient", fmt::format("{}; {}", address_type(cx, rcpt.address), clean(rcpt.address, cx.utf8)));  // §2.3.2
    d += field("Action", action_for(in.kind, r));                 // §2.3.3
    d += field("Status", report_status(in.kind, r.dsn));          // §2.3.4
    if (!r.remote_mta.empty()) d += field("Remote-MTA", fmt::format("dns; {}", clean(r.remote_mta, false)));  // §2.3.5
    // §2.3.6: the remote's own words when we have them ("smtp; 550 ..."), else our reason
    // under our own diagnostic type, as Postfix does with "X-Postfix".
    if (!r.diagnostic.empty() && r.diagnostic.find(';') != std::string::npos) {
      d += field("Diagnostic-Code", clean(r.diagnostic, false));
    } else if (!r.diagnostic.empty() || !r.reason.empty()) {
      d += field("Diagnostic-Code", fmt::format("X-Danerelay; {}", clean(r.reason.empty() ? r.diagnostic : r.reason, false)));
    }
    if (r.last_attempt > 0) d += field("Last-Attempt-Date", rfc5322_date(r.last_attempt));  // §2.3.7
    if (in.kind == DsnKind::delay && in.max_lifetime.count() > 0)                          // §2.3.9
      d += field("Will-Retry-Until", rfc5322_date(unix_seconds(cx.env.arrival) + in.max_lifetime.count()));
  }
  return d;
}

}  // namespace

// RFC 3461 §4.1 NOTIFY, §6.2 (no DSN for a message with a null reverse-path).
std::vector<std::size_t> dsn_recipients(DsnKind kind, const Envelope& envelope, const MessageState& state,
                                        const std::vector<std::size_t>& candidates) {
  std::vector<std::size_t> out;
  if (envelope.sender.empty()) return out;  // RFC 5321 §6.1: never bounce a bounce
  for (const std::size_t i : candidates) {
    if (i >= envelope.recipients.size() || i >= state.recipients.size()) continue;
    if (std::find(out.begin(), out.end(), i) != out.end()) continue;
    std::uint8_t notify = envelope.recipients[i].notify;
    // §4.1: NEVER stands alone; if a malformed set carries it anyway, the safe reading wins.
    if ((notify & notify_never) != 0) continue;
    // §4.1, last paragraph: no NOTIFY behaves as NOTIFY=FAILURE,DELAY.
    if (notify == notify_unset) notify = notify_failure | notify_delay;
    bool wanted = false;
    switch (kind) {
      case DsnKind::failure: wanted = (notify & notify_failure) != 0; break;
      case DsnKind::delay: wanted = (notify & notify_delay) != 0 && !state.recipients[i].delay_notified; break;
      case DsnKind::success: wanted = (notify & notify_success) != 0; break;
    }
    if (wanted) out.push_back(i);
  }
  return out;
}

// Plain words for the DANE/DNSSEC reasons behind a deferral or bounce (checklist D-46, B-01).
// Order matters: the specific texts first, the bare enhanced code last.
std::string explain_reason(const std::string& dsn, const std::string& reason) {
  static constexpr std::string_view kKeptBack =
      " The mail system kept the message back rather than send it over a connection that could have been "
      "intercepted or redirected.";
  const auto with_tail = [](std::string_view s) { return std::string(s) + std::string(kKeptBack); };
  // RFC 7672 §2.2: TLSA records exist, so TLS is mandatory; the server offered no STARTTLS.
  if (icontains(reason, "TLS is required, but was not offered") || icontains(reason, "did not offer STARTTLS")) {
    return with_tail(
        "The destination publishes DANE TLSA records, so its mail must be sent over TLS, but its server did not "
        "offer STARTTLS.");
  }
  // RFC 7672 §2.1.1: a TLSA lookup that fails (not "secure absent") makes delivery unsafe.
  if (icontains(reason, "TLSA lookup error") || (icontains(reason, "TLSA") && icontains(reason, "lookup"))) {
    return with_tail(
        "The DNSSEC-signed TLSA records of the destination could not be looked up, so it was not safe to deliver.");
  }
  // RFC 7672 §2.1.1 / RFC 4035 §5.5: bogus DNSSEC data; whom to trust is unknown.
  if (icontains(reason, "Name service error") || icontains(reason, "bogus") || icontains(reason, "DNSSEC")) {
    return with_tail(
        "The DNS data of the destination failed DNSSEC validation or could not be looked up securely, so the mail "
        "system could not tell which server genuinely accepts its mail, or whether it requires authenticated TLS.");
  }
  // RFC 7672 §3.2 / checklist D-39, D-45: no TLSA record matched the server's certificate.
  if (icontains(reason, "Server certificate not verified") || icontains(reason, "Server certificate not trusted") ||
      icontains(reason, "TLSA") || dsn == "4.7.5" || dsn == "5.7.5") {
    return with_tail(
        "The destination requires authenticated TLS (DANE) and its certificate did not match its TLSA records.");
  }
  return {};
}

std::string make_dsn(const DsnInput& input) {
  if (input.envelope == nullptr || input.state == nullptr) throw std::invalid_argument("make_dsn: no envelope or state");
  const Envelope& env = *input.envelope;
  const MessageState& state = *input.state;
  if (env.sender.empty()) throw std::invalid_argument("make_dsn: null sender (a bounce is never bounced)");
  if (input.recipients.empty()) throw std::invalid_argument("make_dsn: no recipients to report");
  for (const std::size_t i : input.recipients) {
    if (i >= env.recipients.size() || i >= state.recipients.size()) throw std::out_of_range("make_dsn: recipient index");
  }

  Context cx{input, env, state, false, false, {}};
  // RFC 6531–6533: UTF-8 addresses stay UTF-8 only in an SMTPUTF8 message; then the notice
  // itself needs SMTPUTF8, message/global-delivery-status and an 8bit text part.
  if (env.smtputf8) {
    auto utf8_addr = [](std::string_view a) { return !is_ascii(a) && valid_utf8(a); };
    cx.utf8 = utf8_addr(env.sender);
    for (const std::size_t i : input.recipients) {
      cx.utf8 = cx.utf8 || utf8_addr(env.recipients[i].address) || utf8_addr(env.recipients[i].orcpt);
    }
  }
  // RFC 3461 §4.3: RET=HDRS → headers only; RET=FULL or none → full content for failures.
  cx.headers_only = input.kind != DsnKind::failure || env.ret == Ret::headers;
  cx.host = clean(input.reporting_mta.empty() ? std::string("localhost") : input.reporting_mta, false);

  // Assemble the three part bodies first: the boundary must be checked against them.
  const std::string text = text_part(cx);
  const std::string status = delivery_status_part(cx);
  const std::string original = normalize_lines(input.original);
  const std::string returned = cx.headers_only ? std::string(header_section(original)) : original;
  const bool returned_8bit = !is_ascii(returned);
  const bool text_8bit = !is_ascii(text);
  const bool status_8bit = !is_ascii(status);

  // RFC 2046 §5.1.1: the boundary must not occur in any encapsulated part.
  std::string base = valid_boundary(input.boundary) ? input.boundary : std::string{};
  if (base.empty()) {
    std::string host;
    for (const char c : cx.host) host += boundary_char(c) ? c : '-';
    base = fmt::format("{}.{}/{}", env.id.str(), unix_seconds(input.now), host);
    if (base.size() > 60) base.resize(60);
  }
  std::string boundary = base;
  for (unsigned counter = 1; text.find(boundary) != std::string::npos || status.find(boundary) != std::string::npos ||
                             returned.find(boundary) != std::string::npos;
       ++counter) {
    boundary = fmt::format("{}.{}", base.substr(0, 60), counter);
  }

  static constexpr std::string_view kSubjects[] = {"Undelivered Mail Returned to Sender",
                                                   "Delayed Mail (still being retried)",
                                                   "Successful Mail Delivery Report"};
  static constexpr std::string_view kKindTags[] = {"bounce", "delay", "success"};
  const auto kind_index = static_cast<std::size_t>(input.kind);
  const auto usec = std::chrono::duration_cast<std::chrono::microseconds>(input.now.time_since_epoch()).count();

  std::string m;
  // RFC 5322 §3.6 headers; RFC 3834 §5 Auto-Submitted; RFC 2045 MIME; RFC 6522 §3 multipart/report.
  m += field("From", fmt::format("Mail Delivery System <MAILER-DAEMON@{}>", cx.host));
  m += field("To", fmt::format("<{}>", clean(env.sender, cx.utf8)));
  m += field("Subject", kSubjects[kind_index]);
  m += field("Date", rfc5322_date(input.now));
  m += field("Message-ID", fmt::format("<{}.{}.{}@{}>", env.id.str(), kKindTags[kind_index], usec, cx.host));
  if (const auto orig_id = original_message_id(header_section(original)); !orig_id.empty()) {
    m += field("In-Reply-To", orig_id);
    m += field("References", orig_id);
  }
  m += field("Auto-Submitted", "auto-replied");
  m += field("MIME-Version", "1.0");
  m += "Content-Type: multipart/report; report-type=delivery-status;\r\n";
  m += fmt::format("    boundary=\"{}\"\r\n", boundary);
  // RFC 2045 §6.4: a multipart's encoding is at least as wide as any of its parts'.
  if (returned_8bit || text_8bit || status_8bit) m += field("Content-Transfer-Encoding", "8bit");
  m += kCrlf;
  m += "This is a MIME-encapsulated message.\r\n";

  // Part 1: human-readable (RFC 6522 §3).
  m += fmt::format("\r\n--{}\r\n", boundary);
  m += field("Content-Description", "Notification");
  m += field("Content-Type", fmt::format("text/plain; charset={}", text_8bit ? "utf-8" : "us-ascii"));
  if (text_8bit) m += field("Content-Transfer-Encoding", "8bit");
  m += kCrlf;
  m += text;

  // Part 2: machine-readable (RFC 3464 §2; RFC 6533 §6 for the UTF-8 form).
  m += fmt::format("\r\n--{}\r\n", boundary);
  m += field("Content-Description", "Delivery report");
  m += field("Content-Type", cx.utf8 ? "message/global-delivery-status" : "message/delivery-status");
  if (status_8bit) m += field("Content-Transfer-Encoding", "8bit");
  m += kCrlf;
  m += status;

  // Part 3: the returned content (RFC 6522 §3; RFC 3462/6522 text/rfc822-headers; RFC 6533).
  if (!input.original.empty()) {
    const bool undelivered = input.kind != DsnKind::success;
    m += fmt::format("\r\n--{}\r\n", boundary);
    m += field("Content-Description",
               fmt::format("{}{}", undelivered ? "Undelivered " : "", cx.headers_only ? "Message Headers" : "Message"));
    if (cx.utf8) {
      m += field("Content-Type", cx.headers_only ? "message/global-headers" : "message/global");
    } else {
      m += field("Content-Type", cx.headers_only ? "text/rfc822-headers" : "message/rfc822");
    }
    if (returned_8bit) m += field("Content-Transfer-Encoding", "8bit");
    m += kCrlf;
    m += returned;
  }
  m += fmt::format("\r\n--{}--\r\n", boundary);
  return m;
}

}  // namespace danerelay::relay
