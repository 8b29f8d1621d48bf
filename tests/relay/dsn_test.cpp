// tests/relay/dsn_test.cpp — delivery status notifications (relay/queue/dsn.hpp): which recipients a
// notice reports (RFC 3461 §4.1), and the notice itself, parsed back with a small MIME splitter
// (RFC 6522 multipart/report, RFC 3464 message/delivery-status, RFC 5322 line rules).
// Checklist items covered: B-01 (multipart/report with per-recipient Action/Status/Remote-MTA/
// Diagnostic-Code; DANE deferral reasons in delay notices) and D-46 (clear deferral reasons and
// delay DSNs for mandatory-DANE destinations).
#include "relay/queue/dsn.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace danerelay::relay {
namespace {

// ------------------------------------------------------------------ a small MIME splitter

using Fields = std::vector<std::pair<std::string, std::string>>;  // name (as written), unfolded value

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// RFC 5322 §2.2: "name: value" lines; continuation lines (leading WSP) are unfolded (the CRLF is
// removed, the white space kept).
Fields parse_fields(std::string_view block) {
  Fields out;
  std::size_t pos = 0;
  while (pos < block.size()) {
    std::size_t eol = block.find("\r\n", pos);
    if (eol == std::string_view::npos) eol = block.size();
    const std::string_view line = block.substr(pos, eol - pos);
    pos = eol + 2;
    if (line.empty()) continue;
    if ((line[0] == ' ' || line[0] == '\t') && !out.empty()) {
      out.back().second += std::string(line);
      continue;
    }
    const auto colon = line.find(':');
    if (colon == std::string_view::npos) {
      out.emplace_back(std::string(line), "<no colon>");
      continue;
    }
    std::string value(line.substr(colon + 1));
    value.erase(0, value.find_first_not_of(' '));
    out.emplace_back(std::string(line.substr(0, colon)), value);
  }
  return out;
}

std::optional<std::string> get(const Fields& f, std::string_view name) {
  for (const auto& [n, v] : f) {
    if (lower(n) == lower(name)) return v;
  }
  return std::nullopt;
}

int count(const Fields& f, std::string_view name) {
  return static_cast<int>(std::count_if(f.begin(), f.end(), [&](const auto& kv) { return lower(kv.first) == lower(name); }));
}

std::pair<std::string, std::string> split_head_body(std::string_view entity) {
  const auto blank = entity.find("\r\n\r\n");
  if (blank == std::string_view::npos) return {std::string(entity), {}};
  return {std::string(entity.substr(0, blank + 2)), std::string(entity.substr(blank + 4))};
}

// Content-Type parameter, quoted or not.
std::string param(std::string_view content_type, std::string_view name) {
  const std::string lc = lower(content_type);
  const auto at = lc.find(lower(name) + "=");
  if (at == std::string::npos) return {};
  std::string_view v = content_type.substr(at + name.size() + 1);
  if (!v.empty() && v[0] == '"') {
    v.remove_prefix(1);
    return std::string(v.substr(0, v.find('"')));
  }
  return std::string(v.substr(0, v.find_first_of("; \t")));
}

struct Part {
  Fields headers;
  std::string body;
};

struct Mime {
  Fields headers;
  std::string boundary;
  std::string preamble;
  std::vector<Part> parts;
  bool closed = false;  // the close-delimiter was found
};

// RFC 2046 §5.1.1: delimiter = CRLF "--" boundary; the first one may start the body.
Mime split(const std::string& message) {
  Mime m;
  auto [head, body] = split_head_body(message);
  m.headers = parse_fields(head);
  m.boundary = param(get(m.headers, "Content-Type").value_or(""), "boundary");
  if (m.boundary.empty()) return m;
  const std::string delim = "\r\n--" + m.boundary;
  std::string text = "\r\n" + body;
  std::size_t pos = text.find(delim);
  if (pos == std::string::npos) return m;
  m.preamble = text.substr(2, pos >= 2 ? pos - 2 : 0);
  while (pos != std::string::npos) {
    std::size_t after = pos + delim.size();
    if (text.compare(after, 2, "--") == 0) {
      m.closed = true;
      break;
    }
    after = text.find("\r\n", after) + 2;  // rest of the delimiter line (transport padding)
    const std::size_t next = text.find(delim, after);
    const std::string entity = text.substr(after, next == std::string::npos ? std::string::npos : next - after);
    auto [ph, pb] = split_head_body(entity);
    m.parts.push_back(Part{parse_fields(ph), pb});
    pos = next;
  }
  return m;
}

// message/delivery-status body: groups of fields separated by blank lines (RFC 3464 §2.1).
std::vector<Fields> status_groups(const std::string& body) {
  std::vector<Fields> groups;
  std::size_t pos = 0;
  while (pos < body.size()) {
    std::size_t end = body.find("\r\n\r\n", pos);
    const std::string block = body.substr(pos, end == std::string::npos ? std::string::npos : end + 2 - pos);
    if (!block.empty() && block != "\r\n") groups.push_back(parse_fields(block));
    if (end == std::string::npos) break;
    pos = end + 4;
  }
  return groups;
}

std::vector<std::string_view> lines_of(std::string_view message) {
  std::vector<std::string_view> out;
  std::size_t pos = 0;
  while (pos < message.size()) {
    std::size_t eol = message.find("\r\n", pos);
    if (eol == std::string_view::npos) eol = message.size();
    out.push_back(message.substr(pos, eol - pos));
    pos = eol + 2;
  }
  return out;
}

// Every line ends in CRLF, no bare CR or LF, no line over 998 octets (RFC 5322 §2.1.1, §2.3).
void expect_line_discipline(const std::string& message) {
  ASSERT_GE(message.size(), 2U);
  EXPECT_EQ(message.substr(message.size() - 2), "\r\n");
  for (std::size_t i = 0; i < message.size(); ++i) {
    if (message[i] == '\n') {
      ASSERT_TRUE(i > 0 && message[i - 1] == '\r') << "bare LF at " << i;
    }
    if (message[i] == '\r') {
      ASSERT_TRUE(i + 1 < message.size() && message[i + 1] == '\n') << "bare CR at " << i;
    }
  }
  for (const auto line : lines_of(message)) EXPECT_LE(line.size(), 998U);
}

// Human text with line breaks and indentation undone, to find phrases that wrapping may split.
std::string flatten(std::string_view text) {
  std::string flat;
  for (const auto line : lines_of(text)) {
    std::string_view l = line;
    while (!l.empty() && l.front() == ' ') l.remove_prefix(1);
    if (l.empty()) continue;
    if (!flat.empty()) flat += ' ';
    flat += l;
  }
  return flat;
}

// ------------------------------------------------------------------ fixtures

constexpr std::int64_t kArrival = 1767225600;  // Thu, 01 Jan 2026 00:00:00 +0000
constexpr auto kLifetime = std::chrono::seconds(5 * 86400);

const std::string kOriginal =
    "From: Alice <alice@client.example>\r\n"
    "To: Bob <dane@secure.example>\r\n"
    "Subject: quarterly report\r\n"
    "Message-ID: <orig-1@client.example>\r\n"
    "\r\n"
    "Hello Bob,\r\n"
    "BODY-MARKER: the body is here.\r\n";

struct Scenario {
  Envelope env;
  MessageState state;
  std::string original = kOriginal;

  Scenario() {
    env.sender = "alice@client.example";
    env.envid = "id+1=x";
    env.arrival = Clock::time_point(std::chrono::seconds(kArrival));
    // 0: DANE mismatch, deferred until the lifetime ran out (expired with 4.7.5).
    env.recipients.push_back({"dane@secure.example", "", notify_unset});
    // 1: hard bounce with remote MTA and the remote's diagnostic; ORCPT given.
    env.recipients.push_back({"nouser@plain.example", "rfc822;NoUser@plain.example", notify_failure});
    // 2: failure without a remote MTA (no server was reached).
    env.recipients.push_back({"x@nomx.example", "", notify_failure | notify_delay});
    RecipientState r0;
    r0.status = RecipientStatus::bounced;
    r0.dsn = "4.7.5";
    r0.reason = "Server certificate not verified";
    r0.remote_mta = "mx.secure.example";
    r0.last_attempt = kArrival + 5 * 86400 - 600;
    RecipientState r1;
    r1.status = RecipientStatus::bounced;
    r1.dsn = "5.1.1";
    r1.reason = "host mx.plain.example[192.0.2.25] said: 550 5.1.1 <nouser@plain.example>: Recipient address rejected: "
                "User unknown in virtual mailbox table (in reply to RCPT TO command)";
    r1.remote_mta = "mx.plain.example";
    r1.diagnostic = "smtp; 550 5.1.1 <nouser@plain.example>: Recipient address rejected: User unknown in virtual "
                    "mailbox table";
    r1.last_attempt = kArrival + 60;
    RecipientState r2;
    r2.status = RecipientStatus::bounced;
    r2.dsn = "5.4.4";
    r2.reason = "Host or domain name not found. Name service error for name=nomx.example type=MX: Host not found";
    r2.last_attempt = kArrival + 60;
    state.recipients = {r0, r1, r2};
  }

  DsnInput input(DsnKind kind, std::vector<std::size_t> rcpts) const {
    DsnInput in;
    in.kind = kind;
    in.envelope = &env;
    in.state = &state;
    in.recipients = std::move(rcpts);
    in.original = original;
    in.reporting_mta = "relay.example";
    in.now = Clock::time_point(std::chrono::seconds(kArrival + 5 * 86400));
    in.max_lifetime = kLifetime;
    return in;
  }
};

// ------------------------------------------------------------------ dsn_recipients

struct NotifyCase {
  std::uint8_t notify;
  bool failure, delay, success;
  const char* name;
};

class DsnRecipientsTable : public ::testing::TestWithParam<NotifyCase> {};

// RFC 3461 §4.1: unset = FAILURE,DELAY; NEVER = nothing; SUCCESS only when asked.
TEST_P(DsnRecipientsTable, NotifyDecidesPerKind) {
  const auto& c = GetParam();
  Envelope env;
  env.sender = "alice@client.example";
  env.recipients.push_back({"r@example.org", "", c.notify});
  MessageState st;
  st.recipients.resize(1);
  EXPECT_EQ(dsn_recipients(DsnKind::failure, env, st, {0}).size(), c.failure ? 1U : 0U);
  EXPECT_EQ(dsn_recipients(DsnKind::delay, env, st, {0}).size(), c.delay ? 1U : 0U);
  EXPECT_EQ(dsn_recipients(DsnKind::success, env, st, {0}).size(), c.success ? 1U : 0U);
  // RFC 5321 §6.1 / RFC 3461 §6.2: a null sender never gets a notice, whatever NOTIFY says.
  env.sender.clear();
  for (const auto kind : {DsnKind::failure, DsnKind::delay, DsnKind::success}) {
    EXPECT_TRUE(dsn_recipients(kind, env, st, {0}).empty());
  }
}

INSTANTIATE_TEST_SUITE_P(
    DsnRfc3461, DsnRecipientsTable,
    ::testing::Values(NotifyCase{notify_unset, true, true, false, "Unset"},
                      NotifyCase{notify_never, false, false, false, "Never"},
                      NotifyCase{notify_failure, true, false, false, "Failure"},
                      NotifyCase{notify_delay, false, true, false, "Delay"},
                      NotifyCase{notify_success, false, false, true, "Success"},
                      NotifyCase{notify_failure | notify_delay, true, true, false, "FailureDelay"},
                      NotifyCase{notify_success | notify_failure, true, false, true, "SuccessFailure"},
                      NotifyCase{notify_success | notify_failure | notify_delay, true, true, true, "All"},
                      // malformed: NEVER with others; the safe reading (no notice) wins
                      NotifyCase{notify_never | notify_failure, false, false, false, "NeverWithFailure"}),
    [](const ::testing::TestParamInfo<NotifyCase>& tp) { return std::string(tp.param.name); });

TEST(DsnRecipients, DelayNotifiedRecipientsAreLeftOut) {
  Scenario s;
  s.state.recipients[0].delay_notified = true;
  EXPECT_EQ(dsn_recipients(DsnKind::delay, s.env, s.state, {0, 1, 2}), (std::vector<std::size_t>{2}));
  // A failure notice still covers a recipient that had a delay notice.
  EXPECT_EQ(dsn_recipients(DsnKind::failure, s.env, s.state, {0, 1, 2}), (std::vector<std::size_t>{0, 1, 2}));
}

TEST(DsnRecipients, OnlyCandidatesInOrderWithoutDuplicatesOrStrayIndices) {
  Scenario s;
  EXPECT_EQ(dsn_recipients(DsnKind::failure, s.env, s.state, {2, 0, 2, 7}), (std::vector<std::size_t>{2, 0}));
  EXPECT_TRUE(dsn_recipients(DsnKind::failure, s.env, s.state, {}).empty());
}

// ------------------------------------------------------------------ the failure notice

TEST(DsnFailure, B01_TopLevelHeadersAndMultipartReport) {
  Scenario s;
  const auto msg = make_dsn(s.input(DsnKind::failure, {0, 1, 2}));
  const auto m = split(msg);
  EXPECT_EQ(get(m.headers, "From"), "Mail Delivery System <MAILER-DAEMON@relay.example>");
  EXPECT_EQ(get(m.headers, "To"), "<alice@client.example>");
  EXPECT_EQ(get(m.headers, "Subject"), "Undelivered Mail Returned to Sender");
  EXPECT_EQ(get(m.headers, "Date"), "Tue, 06 Jan 2026 00:00:00 +0000");
  const auto id = get(m.headers, "Message-ID").value_or("");
  EXPECT_TRUE(id.starts_with("<" + s.env.id.str())) << id;
  EXPECT_TRUE(id.ends_with("@relay.example>")) << id;
  EXPECT_EQ(get(m.headers, "Auto-Submitted"), "auto-replied");  // RFC 3834 §5
  EXPECT_EQ(get(m.headers, "MIME-Version"), "1.0");
  EXPECT_EQ(get(m.headers, "In-Reply-To"), "<orig-1@client.example>");
  const auto ct = get(m.headers, "Content-Type").value_or("");
  EXPECT_TRUE(lower(ct).starts_with("multipart/report;")) << ct;
  EXPECT_EQ(param(ct, "report-type"), "delivery-status");  // RFC 6522 §3
  EXPECT_FALSE(m.boundary.empty());
  EXPECT_FALSE(get(m.headers, "Content-Transfer-Encoding"));  // all 7bit here
  for (const auto* once : {"From", "To", "Subject", "Date", "Message-ID", "Content-Type"}) EXPECT_EQ(count(m.headers, once), 1) << once;

  ASSERT_EQ(m.parts.size(), 3U);
  EXPECT_TRUE(m.closed);
  EXPECT_EQ(get(m.parts[0].headers, "Content-Type"), "text/plain; charset=us-ascii");
  EXPECT_EQ(get(m.parts[1].headers, "Content-Type"), "message/delivery-status");
  EXPECT_EQ(get(m.parts[2].headers, "Content-Type"), "message/rfc822");  // RET unspecified: full (Postfix default)
  expect_line_discipline(msg);
}

TEST(DsnFailure, B01_PerMessageFields) {
  Scenario s;
  const auto m = split(make_dsn(s.input(DsnKind::failure, {0, 1, 2})));
  ASSERT_EQ(m.parts.size(), 3U);
  const auto groups = status_groups(m.parts[1].body);
  ASSERT_EQ(groups.size(), 4U);  // per-message + three recipients
  const auto& msg = groups[0];
  EXPECT_EQ(get(msg, "Reporting-MTA"), "dns; relay.example");                  // RFC 3464 §2.2.2
  EXPECT_EQ(get(msg, "X-Danerelay-Queue-ID"), s.env.id.str());
  EXPECT_EQ(get(msg, "Original-Envelope-Id"), "id+2B1+3Dx");                   // §2.2.1, xtext (RFC 3461 §4.4)
  EXPECT_EQ(get(msg, "Arrival-Date"), "Thu, 01 Jan 2026 00:00:00 +0000");     // §2.2.5
  EXPECT_FALSE(get(msg, "Final-Recipient"));
}

TEST(DsnFailure, B01_PerRecipientFields) {
  Scenario s;
  const auto m = split(make_dsn(s.input(DsnKind::failure, {0, 1, 2})));
  ASSERT_EQ(m.parts.size(), 3U);
  const auto groups = status_groups(m.parts[1].body);
  ASSERT_EQ(groups.size(), 4U);

  // DANE mismatch that expired: failed, but the last temporary code is kept (RFC 3463 §3.1, Postfix).
  const auto& dane = groups[1];
  EXPECT_EQ(get(dane, "Final-Recipient"), "rfc822; dane@secure.example");
  EXPECT_FALSE(get(dane, "Original-Recipient"));  // RFC 3461 §6.3.d: no ORCPT, no field
  EXPECT_EQ(get(dane, "Action"), "failed");
  EXPECT_EQ(get(dane, "Status"), "4.7.5");
  EXPECT_EQ(get(dane, "Remote-MTA"), "dns; mx.secure.example");
  EXPECT_EQ(get(dane, "Diagnostic-Code"), "X-Danerelay; Server certificate not verified");
  EXPECT_EQ(get(dane, "Last-Attempt-Date"), "Mon, 05 Jan 2026 23:50:00 +0000");
  EXPECT_FALSE(get(dane, "Will-Retry-Until"));

  // Hard bounce: the remote's own words under "smtp".
  const auto& hard = groups[2];
  EXPECT_EQ(get(hard, "Original-Recipient"), "rfc822;NoUser@plain.example");
  EXPECT_EQ(get(hard, "Final-Recipient"), "rfc822; nouser@plain.example");
  EXPECT_EQ(get(hard, "Action"), "failed");
  EXPECT_EQ(get(hard, "Status"), "5.1.1");
  EXPECT_EQ(get(hard, "Remote-MTA"), "dns; mx.plain.example");
  // Folded at white space; unfolding gives the original value back except the fold's WSP.
  auto diag = get(hard, "Diagnostic-Code").value_or("");
  std::erase(diag, ' ');
  EXPECT_EQ(diag, "smtp;5505.1.1<nouser@plain.example>:Recipientaddressrejected:Userunknowninvirtualmailboxtable");

  // No server reached: no Remote-MTA; our reason under our own diagnostic type.
  const auto& nomx = groups[3];
  EXPECT_EQ(get(nomx, "Final-Recipient"), "rfc822; x@nomx.example");
  EXPECT_EQ(get(nomx, "Status"), "5.4.4");
  EXPECT_FALSE(get(nomx, "Remote-MTA"));
  EXPECT_TRUE(get(nomx, "Diagnostic-Code").value_or("").starts_with("X-Danerelay; Host or domain name not found."));
}

TEST(DsnFailure, HumanPartExplainsDaneInPlainWords) {
  Scenario s;
  const auto m = split(make_dsn(s.input(DsnKind::failure, {0, 1, 2})));
  ASSERT_EQ(m.parts.size(), 3U);
  const std::string& text = m.parts[0].body;
  EXPECT_TRUE(text.starts_with("This is the mail system at host relay.example.\r\n")) << text;
  EXPECT_NE(text.find("\r\n<dane@secure.example>: Server certificate not verified\r\n"), std::string::npos) << text;
  EXPECT_NE(text.find("\r\n<x@nomx.example>: Host or domain name not found."), std::string::npos) << text;
  const std::string flat = flatten(text);
  EXPECT_NE(flat.find("I'm sorry to have to inform you that your message could not be delivered to one or more recipients"),
            std::string::npos)
      << flat;
  EXPECT_NE(flat.find("requires authenticated TLS (DANE) and its certificate did not match its TLSA records"),
            std::string::npos)
      << flat;
  EXPECT_NE(flat.find("gave up after 5 days"), std::string::npos) << flat;
  EXPECT_NE(flat.find("could not be looked up securely"), std::string::npos) << flat;  // Name service error
}

TEST(DsnFailure, RetHdrsReturnsOnlyTheHeaderSection) {
  Scenario s;
  s.env.ret = Ret::headers;
  const auto m = split(make_dsn(s.input(DsnKind::failure, {1})));
  ASSERT_EQ(m.parts.size(), 3U);
  EXPECT_EQ(get(m.parts[2].headers, "Content-Type"), "text/rfc822-headers");  // RFC 6522 §4
  EXPECT_NE(m.parts[2].body.find("Subject: quarterly report\r\n"), std::string::npos);
  EXPECT_EQ(m.parts[2].body.find("BODY-MARKER"), std::string::npos);
  EXPECT_EQ(m.parts[2].body, kOriginal.substr(0, kOriginal.find("\r\n\r\n") + 2));
}

TEST(DsnFailure, RetFullReturnsTheWholeMessage) {
  Scenario s;
  s.env.ret = Ret::full;
  const auto m = split(make_dsn(s.input(DsnKind::failure, {1})));
  ASSERT_EQ(m.parts.size(), 3U);
  EXPECT_EQ(get(m.parts[2].headers, "Content-Type"), "message/rfc822");
  EXPECT_EQ(m.parts[2].body, kOriginal);  // the CRLF before "--boundary" belongs to the delimiter
}

TEST(DsnFailure, EightBitOriginalIsLabelled8bit) {
  Scenario s;
  s.original = "Subject: caf\xC3\xA9\r\n\r\nna\xC3\xAFve body\r\n";
  const auto m = split(make_dsn(s.input(DsnKind::failure, {1})));
  ASSERT_EQ(m.parts.size(), 3U);
  EXPECT_EQ(get(m.parts[2].headers, "Content-Transfer-Encoding"), "8bit");
  EXPECT_EQ(get(m.headers, "Content-Transfer-Encoding"), "8bit");  // RFC 2045 §6.4
  EXPECT_FALSE(get(m.parts[0].headers, "Content-Transfer-Encoding"));
}

TEST(DsnFailure, MissingOriginalLeavesOutTheOptionalThirdPart) {
  Scenario s;
  s.original.clear();
  const auto m = split(make_dsn(s.input(DsnKind::failure, {1})));
  EXPECT_EQ(m.parts.size(), 2U);
  EXPECT_TRUE(m.closed);
}

// ------------------------------------------------------------------ delay and success

TEST(DsnDelay, B01_D46_DelayNoticeCarriesDaneReasonAndRetryDate) {
  Scenario s;
  s.env.ret = Ret::full;  // delay notices return headers only, whatever RET says
  s.state.recipients[0].status = RecipientStatus::pending;
  s.state.recipients[0].reason = "TLSA lookup error for mx.secure.example:25";
  auto in = s.input(DsnKind::delay, {0});
  in.now = Clock::time_point(std::chrono::seconds(kArrival + 4 * 3600));
  const auto msg = make_dsn(in);
  const auto m = split(msg);
  EXPECT_EQ(get(m.headers, "Subject"), "Delayed Mail (still being retried)");
  ASSERT_EQ(m.parts.size(), 3U);
  const auto groups = status_groups(m.parts[1].body);
  ASSERT_EQ(groups.size(), 2U);
  EXPECT_EQ(get(groups[1], "Action"), "delayed");
  EXPECT_EQ(get(groups[1], "Status"), "4.7.5");
  EXPECT_EQ(get(groups[1], "Will-Retry-Until"), "Tue, 06 Jan 2026 00:00:00 +0000");  // RFC 3464 §2.3.9
  EXPECT_EQ(get(groups[1], "Diagnostic-Code"), "X-Danerelay; TLSA lookup error for mx.secure.example:25");
  EXPECT_EQ(get(m.parts[2].headers, "Content-Type"), "text/rfc822-headers");
  EXPECT_EQ(m.parts[2].body.find("BODY-MARKER"), std::string::npos);
  const auto text = flatten(m.parts[0].body);
  EXPECT_NE(text.find("THIS IS A WARNING MESSAGE ONLY. YOU DO NOT NEED TO RESEND YOUR MESSAGE."), std::string::npos);
  EXPECT_NE(text.find("for 4 hours"), std::string::npos) << text;
  EXPECT_NE(text.find("will keep trying until Tue, 06 Jan 2026 00:00:00 +0000"), std::string::npos) << text;
  EXPECT_NE(text.find("TLSA records of the destination could not be looked up"), std::string::npos) << text;
  EXPECT_EQ(text.find("gave up"), std::string::npos);
  expect_line_discipline(msg);
}

TEST(DsnSuccess, SuccessNoticeReportsRelayedWithHeadersOnly) {
  Scenario s;
  s.env.recipients[1].notify = notify_success;
  auto& r = s.state.recipients[1];
  r = RecipientState{};
  r.status = RecipientStatus::sent;
  r.dsn = "2.0.0";
  r.reason = "250 2.0.0 Ok: queued as 4XyZ";
  r.remote_mta = "mx.plain.example";
  r.diagnostic = "smtp; 250 2.0.0 Ok: queued as 4XyZ";
  const auto m = split(make_dsn(s.input(DsnKind::success, {1})));
  EXPECT_EQ(get(m.headers, "Subject"), "Successful Mail Delivery Report");
  ASSERT_EQ(m.parts.size(), 3U);
  const auto groups = status_groups(m.parts[1].body);
  ASSERT_EQ(groups.size(), 2U);
  // RFC 3464 §2.3.3: handed to another MTA that takes no DSN responsibility (Postfix: relayed).
  EXPECT_EQ(get(groups[1], "Action"), "relayed");
  EXPECT_EQ(get(groups[1], "Status"), "2.0.0");
  EXPECT_EQ(get(groups[1], "Remote-MTA"), "dns; mx.plain.example");
  EXPECT_FALSE(get(groups[1], "Will-Retry-Until"));
  EXPECT_EQ(get(m.parts[2].headers, "Content-Type"), "text/rfc822-headers");
  EXPECT_EQ(m.parts[2].body.find("BODY-MARKER"), std::string::npos);
  // No remote MTA recorded: delivered.
  r.remote_mta.clear();
  const auto m2 = split(make_dsn(s.input(DsnKind::success, {1})));
  ASSERT_EQ(m2.parts.size(), 3U);
  EXPECT_EQ(get(status_groups(m2.parts[1].body).at(1), "Action"), "delivered");
}

TEST(DsnStatus, ActionAndStatusClassStayConsistent) {
  Scenario s;
  s.state.recipients[1].dsn = "2.0.0";  // impossible for a failure: reported as 5.0.0
  s.state.recipients[2].dsn = "garbage";
  auto groups = status_groups(split(make_dsn(s.input(DsnKind::failure, {1, 2}))).parts.at(1).body);
  EXPECT_EQ(get(groups.at(1), "Status"), "5.0.0");
  EXPECT_EQ(get(groups.at(2), "Status"), "5.0.0");
  s.state.recipients[1].dsn = "5.1.1";  // delay with a permanent code: still a delay code
  groups = status_groups(split(make_dsn(s.input(DsnKind::delay, {1, 2}))).parts.at(1).body);
  EXPECT_EQ(get(groups.at(1), "Status"), "4.0.0");
  EXPECT_EQ(get(groups.at(2), "Status"), "4.0.0");
}

// ------------------------------------------------------------------ format and safety

TEST(DsnFormat, CrlfEverywhereAndNoLineOver998EvenWithHugeInputs) {
  Scenario s;
  std::string words;
  for (int i = 0; i < 400; ++i) words += "word" + std::to_string(i) + " ";
  s.state.recipients[1].diagnostic = "smtp; 550 " + words;
  s.state.recipients[1].reason = std::string(3000, 'x');  // one unbreakable "word"
  s.state.recipients[2].remote_mta = std::string(1500, 'h');
  s.original = "Subject: bare LF\nX-Long: " + std::string(2500, 'y') + "\n\nbody with bare CR\rend";
  for (const auto kind : {DsnKind::failure, DsnKind::delay, DsnKind::success}) {
    const auto msg = make_dsn(s.input(kind, {0, 1, 2}));
    expect_line_discipline(msg);
    const auto m = split(msg);
    ASSERT_EQ(m.parts.size(), 3U);
    EXPECT_TRUE(m.closed);
  }
  // The folded diagnostic unfolds to all its words.
  const auto m = split(make_dsn(s.input(DsnKind::failure, {1})));
  const auto diag = get(status_groups(m.parts.at(1).body).at(1), "Diagnostic-Code").value_or("");
  EXPECT_NE(diag.find("word0 "), std::string::npos);
  EXPECT_NE(diag.find("word399"), std::string::npos);
}

TEST(DsnFormat, BoundaryNeverOccursInsideTheParts) {
  Scenario s;
  // A caller-chosen boundary that the original contains: a counter is appended.
  s.original = "Subject: x\r\n\r\n--collide\r\nsome text collide\r\n";
  auto in = s.input(DsnKind::failure, {1});
  in.boundary = "collide";
  auto m = split(make_dsn(in));
  EXPECT_NE(m.boundary, "collide");
  EXPECT_TRUE(m.boundary.starts_with("collide")) << m.boundary;
  ASSERT_EQ(m.parts.size(), 3U);
  for (const auto& p : m.parts) EXPECT_EQ(p.body.find(m.boundary), std::string::npos);
  EXPECT_EQ(m.parts[2].body, s.original);

  // The derived boundary (queue id + time) checked against an original that quotes it.
  in.boundary.clear();
  const auto first = split(make_dsn(in)).boundary;
  ASSERT_FALSE(first.empty());
  EXPECT_TRUE(first.starts_with(s.env.id.str())) << first;
  s.original = "Subject: x\r\n\r\n--" + first + "\r\n" + first + "\r\n";
  in = s.input(DsnKind::failure, {1});
  m = split(make_dsn(in));
  EXPECT_NE(m.boundary, first);
  ASSERT_EQ(m.parts.size(), 3U);
  for (const auto& p : m.parts) EXPECT_EQ(p.body.find(m.boundary), std::string::npos);
  EXPECT_LE(m.boundary.size(), 70U);  // RFC 2046 §5.1.1
}

TEST(DsnSafety, HeaderInjectionInSenderAndRecipientIsNeutralised) {
  Scenario s;
  s.env.sender = "alice@client.example>\r\nBcc: victim@evil.example\r\nX-Evil: <x";
  s.env.recipients[1].address = "bob@plain.example\r\nAction: delivered";
  s.env.recipients[1].orcpt = "rfc822;bob\nStatus: 2.0.0";
  s.env.envid = "env\r\nX-Evil: 1";
  s.state.recipients[1].remote_mta = "mx\r\nX-Evil: 2";
  s.state.recipients[1].diagnostic = "smtp; 550 no\r\nX-Evil: 3";
  const auto msg = make_dsn(s.input(DsnKind::failure, {1}));
  expect_line_discipline(msg);
  const auto m = split(msg);
  EXPECT_FALSE(get(m.headers, "Bcc"));
  EXPECT_FALSE(get(m.headers, "X-Evil"));
  const auto to = get(m.headers, "To").value_or("");
  EXPECT_EQ(to.find('\r'), std::string::npos);
  EXPECT_NE(to.find("Bcc: victim"), std::string::npos);  // still there, but inert on the To: line
  ASSERT_EQ(m.parts.size(), 3U);
  const auto groups = status_groups(m.parts[1].body);
  ASSERT_EQ(groups.size(), 2U);
  EXPECT_EQ(count(groups[1], "Action"), 1);
  EXPECT_EQ(get(groups[1], "Action"), "failed");
  EXPECT_EQ(count(groups[1], "Status"), 1);
  for (const auto& g : groups) EXPECT_EQ(count(g, "X-Evil"), 0);
  EXPECT_EQ(get(groups[0], "Original-Envelope-Id"), "env+0D+0AX-Evil:+201");
  for (const auto line : lines_of(msg)) {
    EXPECT_FALSE(line.starts_with("Bcc:")) << line;
    EXPECT_FALSE(line.starts_with("X-Evil:")) << line;
  }
}

TEST(DsnSafety, NonAsciiWithoutSmtputf8BecomesQuestionMarks) {
  Scenario s;
  s.env.recipients[1].address = "j\xC3\xB6rg@plain.example";
  const auto m = split(make_dsn(s.input(DsnKind::failure, {1})));
  ASSERT_EQ(m.parts.size(), 3U);
  EXPECT_EQ(get(status_groups(m.parts[1].body).at(1), "Final-Recipient"), "rfc822; j??rg@plain.example");
  EXPECT_EQ(get(m.parts[0].headers, "Content-Type"), "text/plain; charset=us-ascii");
}

TEST(DsnUtf8, Smtputf8NoticeUsesGlobalTypes) {
  Scenario s;
  s.env.smtputf8 = true;
  s.env.recipients[1].address = "j\xC3\xB6rg@plain.example";
  const auto m = split(make_dsn(s.input(DsnKind::failure, {1})));
  ASSERT_EQ(m.parts.size(), 3U);
  EXPECT_EQ(get(m.parts[0].headers, "Content-Type"), "text/plain; charset=utf-8");
  EXPECT_EQ(get(m.parts[1].headers, "Content-Type"), "message/global-delivery-status");  // RFC 6533 §6.1
  EXPECT_EQ(get(m.parts[2].headers, "Content-Type"), "message/global");                  // RFC 6532 §3.7
  EXPECT_EQ(get(status_groups(m.parts[1].body).at(1), "Final-Recipient"), "utf-8; j\xC3\xB6rg@plain.example");
  EXPECT_EQ(get(m.headers, "Content-Transfer-Encoding"), "8bit");
}

TEST(DsnInputChecks, CallerBugsThrow) {
  Scenario s;
  auto in = s.input(DsnKind::failure, {});
  EXPECT_THROW((void)make_dsn(in), std::invalid_argument);
  in.recipients = {9};
  EXPECT_THROW((void)make_dsn(in), std::out_of_range);
  in.recipients = {1};
  in.envelope = nullptr;
  EXPECT_THROW((void)make_dsn(in), std::invalid_argument);
  s.env.sender.clear();  // RFC 5321 §6.1: never bounce a bounce
  EXPECT_THROW((void)make_dsn(s.input(DsnKind::failure, {1})), std::invalid_argument);
}

TEST(DsnFormat, MessageIdDiffersPerKindAndTime) {
  Scenario s;
  const auto id = [&](DsnKind kind, std::int64_t t) {
    auto in = s.input(kind, {0});
    in.now = Clock::time_point(std::chrono::seconds(t));
    return get(split(make_dsn(in)).headers, "Message-ID").value_or("");
  };
  EXPECT_NE(id(DsnKind::delay, kArrival + 3600), id(DsnKind::failure, kArrival + 3600));
  EXPECT_NE(id(DsnKind::delay, kArrival + 3600), id(DsnKind::delay, kArrival + 7200));
  EXPECT_EQ(id(DsnKind::delay, kArrival + 3600), id(DsnKind::delay, kArrival + 3600));  // pure function
}

// ------------------------------------------------------------------ explain_reason

struct ExplainCase {
  const char* dsn;
  const char* reason;
  const char* expect;  // substring; "" = no explanation
};

class DsnExplain : public ::testing::TestWithParam<ExplainCase> {};

TEST_P(DsnExplain, PlainWordsForDaneAndDnssecReasons) {
  const auto& c = GetParam();
  const auto text = explain_reason(c.dsn, c.reason);
  if (std::string_view(c.expect).empty()) {
    EXPECT_EQ(text, "");
  } else {
    EXPECT_NE(text.find(c.expect), std::string::npos) << text;
    EXPECT_NE(text.find("kept the message back"), std::string::npos) << text;
  }
}

INSTANTIATE_TEST_SUITE_P(
    DsnD46, DsnExplain,
    ::testing::Values(
        ExplainCase{"4.7.5", "Server certificate not verified",
                    "requires authenticated TLS (DANE) and its certificate did not match its TLSA records"},
        ExplainCase{"5.7.5", "", "certificate did not match its TLSA records"},
        ExplainCase{"4.7.4", "TLS is required, but was not offered by host mx.secure.example[192.0.2.7]",
                    "publishes DANE TLSA records, so its mail must be sent over TLS, but its server did not offer "
                    "STARTTLS"},
        ExplainCase{"4.7.5", "TLSA lookup error for mx.secure.example:25",
                    "TLSA records of the destination could not be looked up, so it was not safe to deliver"},
        ExplainCase{"4.4.3", "Name service error for name=secure.example type=MX: Host not found, try again",
                    "failed DNSSEC validation"},
        ExplainCase{"4.7.5", "DNSSEC validation failed (bogus) for _25._tcp.mx.secure.example", "failed DNSSEC validation"},
        ExplainCase{"5.1.1", "host mx said: 550 5.1.1 no such user", ""},
        ExplainCase{"4.4.1", "connect to mx.example[192.0.2.1]:25: Connection timed out", ""}));

}  // namespace
}  // namespace danerelay::relay
