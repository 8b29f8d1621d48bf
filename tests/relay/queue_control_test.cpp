// tests/relay/queue_control_test.cpp — `danerelay queue`: mailq / postqueue -j output compared
// byte for byte with what Postfix's own code prints (postfix/src/postqueue/showq_compat.c and
// showq_json.c, postfix-3.12; each golden names the rule it checks), the QueuedMessage → QueueEntry
// mapping (showq.c), and the control socket end to end against an in-memory QueueControl.
#include "relay/control/queue_control.hpp"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <nlohmann/json.hpp>

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <future>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>

#include "relay/control/control_socket.hpp"
#include "relay/queue/spool.hpp"
#include "tests/support/temp_dir.hpp"

// g++ 12 false positive on coroutine frames (see smtp/client_session.cpp).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

namespace {

namespace asio = boost::asio;
using danerelay::relay::ControlFailure;
using danerelay::relay::ControlServer;
using danerelay::relay::ControlServerOptions;
using danerelay::relay::QueueControl;
using danerelay::relay::QueuedMessage;
using danerelay::relay::QueueEntry;
using danerelay::relay::QueueId;
using danerelay::relay::RecipientStatus;
using json = nlohmann::json;

constexpr std::int64_t kNov23 = 1795428000;  // Mon Nov 23 10:00:00 2026 UTC
constexpr std::int64_t kMar2 = 1803986704;   // Tue Mar  2 11:25:04 2027 UTC
const std::string kRefused = "connect to mx.example.net[192.0.2.1]:25: Connection refused";
const std::string kTlsa = "TLSA lookup error for mx.example.com:25";

// mailq prints local time (asctime(localtime())); the goldens are in UTC.
class QueueFormat : public ::testing::Test {
 protected:
  void SetUp() override {
    if (const char* tz = std::getenv("TZ")) saved_tz_ = tz;
    setenv("TZ", "UTC", 1);
    tzset();
  }
  void TearDown() override {
    if (saved_tz_) {
      setenv("TZ", saved_tz_->c_str(), 1);
    } else {
      unsetenv("TZ");
    }
    tzset();
  }
  std::optional<std::string> saved_tz_;
};

QueueEntry entry(std::string id, std::string queue, std::uint64_t size, std::int64_t arrival, std::string sender,
                 std::vector<QueueEntry::Recipient> rcpts, bool forced = false) {
  QueueEntry e;
  e.queue_id = std::move(id);
  e.queue_name = std::move(queue);
  e.message_size = size;
  e.arrival_time = arrival;
  e.sender = std::move(sender);
  e.recipients = std::move(rcpts);
  e.forced_expire = forced;
  return e;
}

QueuedMessage message(const std::string& id, std::int64_t arrival) {
  QueuedMessage m;
  m.envelope.id = *QueueId::parse(id);
  m.envelope.arrival = danerelay::relay::Clock::time_point(std::chrono::seconds(arrival));
  m.envelope.sender = "alice@example.org";
  m.envelope.size = 2048;
  return m;
}

void add_rcpt(QueuedMessage& m, std::string address, std::string reason, RecipientStatus status = RecipientStatus::pending,
              std::string orcpt = {}) {
  m.envelope.recipients.push_back({std::move(address), std::move(orcpt), danerelay::relay::notify_unset});
  danerelay::relay::RecipientState s;
  s.status = status;
  s.reason = std::move(reason);
  if (!s.reason.empty()) s.last_attempt = kNov23 + 300;
  m.state.recipients.push_back(s);
}

// ---- mailq text -------------------------------------------------------------------------------

// showq_compat(): file_count == 0 → "Mail queue is empty\n", and no headings.
TEST_F(QueueFormat, EmptyQueue) { EXPECT_EQ(danerelay::relay::format_mailq({}), "Mail queue is empty\n"); }

// Headings: S_STRING_FORMAT "%-11s %7s %-20s %s\n" with S_HEADINGS. Message line:
// S_SENDER_FORMAT "%-11s %7ld %20.20s %s\n" — "%-11s" does not truncate our 12-character id, and
// "%20.20s" of asctime() keeps its trailing space (two spaces before the sender). Reason line:
// "%*s(%s)\n" with padding 76 - strlen(reason). Recipient line: S_STRING_FORMAT with three empty
// fields (41 spaces). Footer: "\n-- %lu Kbytes in %lu Request%s.\n", queue_size / 1024, and
// "Request" without "s" for one message.
TEST_F(QueueFormat, OneDeferredMessage) {
  const std::vector<QueueEntry> q{entry("4F2A1B3C5D6E", "deferred", 1234, kNov23, "alice@example.org", {{"bob@example.net", "", kRefused}})};
  EXPECT_EQ(danerelay::relay::format_mailq(q),
            "-Queue ID-  --Size-- ----Arrival Time---- -Sender/Recipient-------\n"
            "4F2A1B3C5D6E    1234 Mon Nov 23 10:00:00  alice@example.org\n"
            "                 (connect to mx.example.net[192.0.2.1]:25: Connection refused)\n"
            "                                         bob@example.net\n"
            "\n"
            "-- 1 Kbytes in 1 Request.\n");
}

// showq_message(): "*" for the active queue, else "!" for hold, then "#" when forced_expire; the
// marks are appended to the id before "%-11s" (so they push the columns right). showq_compat():
// "\n" before every message but the first. The size is "%7ld" (5000000 fills it). The day of the
// month is asctime's "%3d" ("Mar  2"). An empty sender is showq.c's var_empty_addr, MAILER-DAEMON.
// No "(reason)" line for a recipient without a reason when no earlier one had one. Kbytes
// truncate: 5002943 / 1024 = 4885.
TEST_F(QueueFormat, SeveralMessagesWithActiveHoldAndForcedExpireMarkers) {
  const std::vector<QueueEntry> q{
      entry("0000000000A1", "active", 1234, kNov23, "alice@example.org", {{"bob@example.net", "", ""}}),
      entry("0000000000B2", "hold", 5000000, kMar2, "carol@example.org", {{"dave@example.com", "", kTlsa}}),
      entry("0000000000C3", "hold", 700, kMar2, "erin@example.org", {{"frank@example.com", "", ""}}, true),
      entry("0000000000D4", "deferred", 999, kNov23, "", {{"grace@example.net", "", kRefused}}, true),
      entry("0000000000E5", "active", 10, kNov23, "h@example.org", {{"i@example.net", "", ""}}, true),
  };
  EXPECT_EQ(danerelay::relay::format_mailq(q),
            "-Queue ID-  --Size-- ----Arrival Time---- -Sender/Recipient-------\n"
            "0000000000A1*    1234 Mon Nov 23 10:00:00  alice@example.org\n"
            "                                         bob@example.net\n"
            "\n"
            "0000000000B2! 5000000 Tue Mar  2 11:25:04  carol@example.org\n"
            "                                     (TLSA lookup error for mx.example.com:25)\n"
            "                                         dave@example.com\n"
            "\n"
            "0000000000C3!#     700 Tue Mar  2 11:25:04  erin@example.org\n"
            "                                         frank@example.com\n"
            "\n"
            "0000000000D4#     999 Mon Nov 23 10:00:00  MAILER-DAEMON\n"
            "                 (connect to mx.example.net[192.0.2.1]:25: Connection refused)\n"
            "                                         grace@example.net\n"
            "\n"
            "0000000000E5*#      10 Mon Nov 23 10:00:00  h@example.org\n"
            "                                         i@example.net\n"
            "\n"
            "-- 4885 Kbytes in 5 Requests.\n");
}

// showq.c showq_report(): recipients with a defer-log reason come first, those without after;
// sent/bounced recipients are not listed. showq_message(): a "(reason)" line only when the reason
// changes from the previous recipient's, and "(reason unavailable)" when a reason is followed by
// none. Our grouping: same reason together, in first-seen order (r1, r4 | r2 | r3).
TEST_F(QueueFormat, RecipientsGroupedByReasonFromQueuedMessage) {
  QueuedMessage m = message("0123456789AB", kNov23);
  add_rcpt(m, "r1@example.net", kRefused);
  add_rcpt(m, "r2@example.com", kTlsa);
  add_rcpt(m, "r3@example.org", "");
  add_rcpt(m, "r4@example.net", kRefused);
  add_rcpt(m, "done@example.net", "250 2.0.0 Ok", RecipientStatus::sent);
  add_rcpt(m, "gone@example.net", "550 5.1.1 No such user", RecipientStatus::bounced);
  m.state.attempts = 2;
  EXPECT_EQ(danerelay::relay::format_mailq({danerelay::relay::queue_entry(m, false)}),
            "-Queue ID-  --Size-- ----Arrival Time---- -Sender/Recipient-------\n"
            "0123456789AB    2048 Mon Nov 23 10:00:00  alice@example.org\n"
            "                 (connect to mx.example.net[192.0.2.1]:25: Connection refused)\n"
            "                                         r1@example.net\n"
            "                                         r4@example.net\n"
            "                                     (TLSA lookup error for mx.example.com:25)\n"
            "                                         r2@example.com\n"
            "                                                          (reason unavailable)\n"
            "                                         r3@example.org\n"
            "\n"
            "-- 2 Kbytes in 1 Request.\n");
}

// showq_message(): "if ((padding = 76 - (int) strlen(show_reason)) < 0) padding = 0;" — a long
// reason is not wrapped, it starts in column 0 and runs past 78; 76 characters also get no
// padding, 75 get one space. Null sender → MAILER-DAEMON; 300 / 1024 = 0 Kbytes.
TEST_F(QueueFormat, LongReasonsAreNotWrappedOnlyUnpadded) {
  const std::string long_reason = "host mx.example.com[192.0.2.7] said: 550-5.7.1 this reply is much too long to fit on one line";
  const std::vector<QueueEntry> q{entry("0123456789AB", "deferred", 300, kNov23, "",
                                        {{"r1@example.net", "", long_reason},
                                         {"r2@example.net", "", std::string(76, 'x')},
                                         {"r3@example.net", "", std::string(75, 'y')}})};
  EXPECT_EQ(danerelay::relay::format_mailq(q),
            "-Queue ID-  --Size-- ----Arrival Time---- -Sender/Recipient-------\n"
            "0123456789AB     300 Mon Nov 23 10:00:00  MAILER-DAEMON\n"
            "(host mx.example.com[192.0.2.7] said: 550-5.7.1 this reply is much too long to fit on one line)\n"
            "                                         r1@example.net\n"
            "(xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx)\n"
            "                                         r2@example.net\n"
            " (yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy)\n"
            "                                         r3@example.net\n"
            "\n"
            "-- 0 Kbytes in 1 Request.\n");
}

// ATTR_FLAG_PRINTABLE: control characters in a reason cannot break the line structure.
TEST_F(QueueFormat, ControlCharactersBecomeQuestionMarks) {
  const std::vector<QueueEntry> q{entry("0123456789AB", "deferred", 1, kNov23, "a@b", {{"c@d", "", "bad\r\nreply"}})};
  const auto text = danerelay::relay::format_mailq(q);
  EXPECT_NE(text.find("(bad??reply)\n"), std::string::npos) << text;
}

// ---- QueuedMessage → QueueEntry ---------------------------------------------------------------

TEST_F(QueueFormat, QueueNameFollowsActiveHoldAttempts) {
  QueuedMessage m = message("0123456789AB", kNov23);
  add_rcpt(m, "r@example.net", "");
  EXPECT_EQ(danerelay::relay::queue_entry(m, false).queue_name, "incoming");
  m.state.attempts = 1;
  EXPECT_EQ(danerelay::relay::queue_entry(m, false).queue_name, "deferred");
  m.state.hold = true;
  EXPECT_EQ(danerelay::relay::queue_entry(m, false).queue_name, "hold");
  EXPECT_EQ(danerelay::relay::queue_entry(m, true).queue_name, "active");
  m.state.forced_expire = true;
  const auto e = danerelay::relay::queue_entry(m, false);
  EXPECT_TRUE(e.forced_expire);
  EXPECT_EQ(e.queue_id, "0123456789AB");
  EXPECT_EQ(e.arrival_time, kNov23);
  EXPECT_EQ(e.message_size, 2048U);
}

TEST_F(QueueFormat, OrigAddressFromOrcptOnlyWhenItDiffers) {
  QueuedMessage m = message("0123456789AB", kNov23);
  add_rcpt(m, "alias@example.net", "", RecipientStatus::pending, "rfc822;Owner@example.net");
  add_rcpt(m, "same@example.net", "", RecipientStatus::pending, "RFC822;Same@Example.net");
  add_rcpt(m, "plain@example.net", "");
  const auto e = danerelay::relay::queue_entry(m, false);
  ASSERT_EQ(e.recipients.size(), 3U);
  EXPECT_EQ(e.recipients[0].orig_address, "Owner@example.net");
  EXPECT_EQ(e.recipients[1].orig_address, "");
  EXPECT_EQ(e.recipients[2].orig_address, "");
}

TEST_F(QueueFormat, NullSenderIsMailerDaemon) {
  QueuedMessage m = message("0123456789AB", kNov23);
  m.envelope.sender.clear();
  EXPECT_EQ(danerelay::relay::queue_entry(m, false).sender, "MAILER-DAEMON");
}

// ---- postqueue -j -----------------------------------------------------------------------------

// showq_json.c format_json(): members in the order queue_name, queue_id, arrival_time,
// message_size, forced_expire, sender, recipients; '"name": value' joined by ", "; recipients
// carry orig_address (always since 3.11: showq.c substitutes the address when there is none) and
// address, and delay_reason only "if (LEN(why) > 0)".
TEST_F(QueueFormat, JsonLineIsPostqueueJShaped) {
  const std::vector<QueueEntry> q{entry("0000000000D4", "deferred", 999, kNov23, "",
                                        {{"grace@example.net", "", kRefused}, {"h@example.net", "orig@example.net", ""}}, true)};
  EXPECT_EQ(danerelay::relay::format_json(q),
            "{\"queue_name\": \"deferred\", \"queue_id\": \"0000000000D4\", \"arrival_time\": 1795428000, "
            "\"message_size\": 999, \"forced_expire\": true, \"sender\": \"MAILER-DAEMON\", \"recipients\": ["
            "{\"orig_address\": \"grace@example.net\", \"address\": \"grace@example.net\", \"delay_reason\": "
            "\"connect to mx.example.net[192.0.2.1]:25: Connection refused\"}, "
            "{\"orig_address\": \"orig@example.net\", \"address\": \"h@example.net\"}]}\n");
}

TEST_F(QueueFormat, JsonLinesParseBackWithPostqueueFieldNames) {
  QueuedMessage a = message("0000000000A1", kNov23);
  add_rcpt(a, "x@example.net", "with \"quotes\" and \\ backslash");
  QueuedMessage b = message("0000000000B2", kMar2);
  add_rcpt(b, "y@example.net", "");
  b.state.hold = true;
  const std::string text = danerelay::relay::format_json({danerelay::relay::queue_entry(a, true), danerelay::relay::queue_entry(b, false)});
  std::istringstream in(text);
  std::vector<json> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(json::parse(line));
  ASSERT_EQ(lines.size(), 2U);
  for (const auto& j : lines) {
    std::vector<std::string> keys;
    for (const auto& [k, v] : j.items()) keys.push_back(k);
    std::sort(keys.begin(), keys.end());
    EXPECT_EQ(keys, (std::vector<std::string>{"arrival_time", "forced_expire", "message_size", "queue_id", "queue_name",
                                              "recipients", "sender"}));
    EXPECT_TRUE(j["arrival_time"].is_number_integer());
    EXPECT_TRUE(j["message_size"].is_number_integer());
    EXPECT_TRUE(j["forced_expire"].is_boolean());
  }
  EXPECT_EQ(lines[0]["queue_name"], "active");
  EXPECT_EQ(lines[0]["recipients"][0]["delay_reason"], "with \"quotes\" and \\ backslash");
  EXPECT_EQ(lines[1]["queue_name"], "hold");
  EXPECT_EQ(lines[1]["arrival_time"], kMar2);
  EXPECT_FALSE(lines[1]["recipients"][0].contains("delay_reason"));
  EXPECT_EQ(lines[1]["recipients"][0]["orig_address"], "y@example.net");
  EXPECT_EQ(danerelay::relay::format_json({}), "");
}

// ---- show -------------------------------------------------------------------------------------

// Item 5 of "trust at the edges": a notice that could not be queued is owed; `queue show` says so.
TEST_F(QueueFormat, ShowSaysWhichNoticeIsOwed) {
  QueuedMessage m = message("0123456789AB", kNov23);
  add_rcpt(m, "bob@example.net", "", RecipientStatus::bounced, "");
  add_rcpt(m, "carol@example.net", "", RecipientStatus::sent, "");
  add_rcpt(m, "dave@example.net", "", RecipientStatus::sent, "");
  m.state.recipients[0].notice_owed = true;
  m.state.recipients[1].notice_owed = true;
  const auto text = danerelay::relay::format_show(m, "");
  EXPECT_NE(text.find("  Notice:       non-delivery notice owed to the sender (could not be queued; retried at the next attempt)\n"),
            std::string::npos) << text;
  EXPECT_NE(text.find("  Notice:       success notice owed to the sender"), std::string::npos) << text;
  EXPECT_EQ(text.find("Notice:", text.find("<dave@example.net>")), std::string::npos) << text;
}

TEST_F(QueueFormat, ShowHasEnvelopeRecipientStateAndHeaders) {
  danerelay::testsupport::TempDir dir("queue-show");
  const auto file = dir.path() / "msg";
  std::ofstream(file, std::ios::binary) << "ENVELOPE-PREFIX"
                                        << "From: alice@example.org\r\nSubject: hello\r\n\r\nbody line\r\n"
                                        << "TRAILER";
  QueuedMessage m = message("0123456789AB", kNov23);
  m.envelope.body = file;
  m.envelope.body_offset = 15;
  m.envelope.size = 56;
  m.envelope.envid = "env-42";
  m.envelope.ret = danerelay::relay::Ret::headers;
  add_rcpt(m, "bob@example.net", kRefused, RecipientStatus::pending, "rfc822;owner@example.net");
  m.state.recipients[0].remote_mta = "mx.example.net";
  m.state.recipients[0].dsn = "4.4.1";
  m.state.attempts = 3;
  m.state.next_attempt = kNov23 + 3600;
  std::string error;
  const auto headers = danerelay::relay::read_headers(m, &error);
  ASSERT_TRUE(headers) << error;
  EXPECT_EQ(*headers, "From: alice@example.org\nSubject: hello\n");
  const auto text = danerelay::relay::format_show(m, *headers);
  for (const char* want : {"Queue ID:       0123456789AB\n", "Arrival:        Mon Nov 23 10:00:00 2026 +0000\n",
                           "Sender:         <alice@example.org>\n", "ENVID:          env-42\n", "RET:            HDRS\n",
                           "Attempts:       3\n", "Next attempt:   Mon Nov 23 11:00:00 2026 +0000\n", "Hold:           no\n",
                           "Recipient:      <bob@example.net>\n", "  ORCPT:        rfc822;owner@example.net\n",
                           "  NOTIFY:       (default: FAILURE,DELAY)\n", "  Status:       deferred\n",
                           "  Reason:       connect to mx.example.net[192.0.2.1]:25: Connection refused\n",
                           "  Remote MTA:   mx.example.net\n", "  Last attempt: Mon Nov 23 10:05:00 2026 +0000\n",
                           "\nFrom: alice@example.org\nSubject: hello\n"}) {
    EXPECT_NE(text.find(want), std::string::npos) << want << "\n---\n" << text;
  }
  EXPECT_EQ(text.find("body line"), std::string::npos);
}

TEST_F(QueueFormat, ReadHeadersStopsAtTheMessageEndAndReportsMissingFiles) {
  danerelay::testsupport::TempDir dir("queue-hdr");
  const auto file = dir.path() / "msg";
  std::ofstream(file, std::ios::binary) << "Subject: no body\r\nX: y\r\nENVELOPE RECORD";
  QueuedMessage m = message("0123456789AB", kNov23);
  m.envelope.body = file;
  m.envelope.size = 24;  // up to and including "X: y\r\n"
  EXPECT_EQ(danerelay::relay::read_headers(m), "Subject: no body\nX: y\n");
  m.envelope.body = dir.path() / "absent";
  std::string error;
  EXPECT_FALSE(danerelay::relay::read_headers(m, &error));
  EXPECT_NE(error.find("absent"), std::string::npos);
}

// The spool-direct path of `queue list` / `queue show`: Spool::scan / Spool::load feed the same
// formatting, and the headers come from the spooled message file.
TEST_F(QueueFormat, SpoolScanAndLoadFeedListAndShow) {
  danerelay::testsupport::TempDir dir("queue-spool");
  const auto spool_dir = dir.path() / "spool";
  danerelay::relay::Envelope env;
  {
    asio::io_context io;
    danerelay::relay::SpoolOptions options;
    options.directory = spool_dir;
    danerelay::relay::Spool spool(io.get_executor(), options);
    env.sender = "";
    env.recipients.push_back({"bob@example.net", "", danerelay::relay::notify_unset});
    env.arrival = danerelay::relay::Clock::time_point(std::chrono::seconds(kNov23));
    std::string text = "From: MAILER-DAEMON\r\nSubject: spooled\r\n\r\nbody\r\n";
    danerelay::relay::MessageState state;
    danerelay::relay::RecipientState rs;
    rs.reason = kRefused;
    rs.last_attempt = kNov23 + 60;
    state.recipients.push_back(rs);
    state.attempts = 1;
    bool ok = false;
    asio::co_spawn(io, [&]() -> asio::awaitable<void> {
      auto committed = co_await spool.commit(std::move(text), env);
      auto saved = co_await spool.save(env.id, state);
      ok = committed.ok() && saved.ok();
    }, asio::detached);
    io.run();
    ASSERT_TRUE(ok);
  }
  const auto messages = danerelay::relay::Spool::scan(spool_dir);
  ASSERT_EQ(messages.size(), 1U);
  const std::string list = danerelay::relay::format_mailq({danerelay::relay::queue_entry(messages[0], false)});
  EXPECT_EQ(list, "-Queue ID-  --Size-- ----Arrival Time---- -Sender/Recipient-------\n" + env.id.str() +
                      "      47 Mon Nov 23 10:00:00  MAILER-DAEMON\n"
                      "                 (connect to mx.example.net[192.0.2.1]:25: Connection refused)\n"
                      "                                         bob@example.net\n"
                      "\n"
                      "-- 0 Kbytes in 1 Request.\n");
  const auto loaded = danerelay::relay::Spool::load(spool_dir, env.id);
  ASSERT_TRUE(loaded);
  const auto headers = danerelay::relay::read_headers(*loaded);
  ASSERT_TRUE(headers);
  EXPECT_EQ(*headers, "From: MAILER-DAEMON\nSubject: spooled\n");
  const auto show = danerelay::relay::format_show(*loaded, *headers);
  EXPECT_NE(show.find("Sender:         <> (null sender)\n"), std::string::npos) << show;
  EXPECT_NE(show.find("\nFrom: MAILER-DAEMON\nSubject: spooled\n"), std::string::npos) << show;
}

// ---- control socket -----------------------------------------------------------------------------

// An in-memory queue; flush can be made slow to show that clients are served concurrently.
class FakeControl : public QueueControl {
 public:
  std::map<std::string, QueueEntry> queue;
  std::chrono::milliseconds flush_delay{0};
  std::atomic<int> in_flush{0};
  std::atomic<int> max_in_flush{0};

  std::vector<QueueEntry> list() override {
    std::vector<QueueEntry> out;
    for (const auto& [id, e] : queue) out.push_back(e);
    return out;
  }
  std::optional<std::string> show(const QueueId& id) override {
    if (!queue.contains(id.str())) return std::nullopt;
    return "Queue ID: " + id.str() + "\n";
  }
  asio::awaitable<std::size_t> flush(std::optional<QueueId> id) override {
    const int now = ++in_flush;
    if (now > max_in_flush) max_in_flush = now;
    if (flush_delay.count() > 0) {
      asio::steady_timer t(co_await asio::this_coro::executor, flush_delay);
      co_await t.async_wait(asio::use_awaitable);
    }
    --in_flush;
    if (!id) co_return queue.size();
    co_return queue.contains(id->str()) ? 1 : 0;
  }
  asio::awaitable<std::size_t> hold(QueueId id) override {
    auto it = queue.find(id.str());
    if (it == queue.end() || it->second.queue_name == "hold") co_return 0;
    it->second.queue_name = "hold";
    co_return 1;
  }
  asio::awaitable<std::size_t> release(QueueId id) override {
    auto it = queue.find(id.str());
    if (it == queue.end() || it->second.queue_name != "hold") co_return 0;
    it->second.queue_name = "deferred";
    co_return 1;
  }
  asio::awaitable<std::size_t> remove(QueueId id) override { co_return queue.erase(id.str()); }
  asio::awaitable<std::size_t> expire(QueueId id) override {
    auto it = queue.find(id.str());
    if (it == queue.end()) co_return 0;
    it->second.forced_expire = true;
    co_return 1;
  }
};

// A daemon-side io_context on its own thread with a ControlServer on a temporary socket.
class ControlSocket : public ::testing::Test {
 protected:
  void SetUp() override {
    control_.queue["0000000000A1"] = entry("0000000000A1", "deferred", 1234, kNov23, "a@example.org", {{"b@example.net", "", kRefused}});
    control_.queue["0000000000B2"] = entry("0000000000B2", "incoming", 10, kMar2, "", {{"c@example.net", "orig@example.net", ""}});
  }
  void start(ControlServerOptions options = {}) {
    server_ = std::make_unique<ControlServer>(io_.get_executor(), path_, control_, nullptr, options);
    server_->start();
    thread_ = std::thread([this] { io_.run(); });
  }
  void TearDown() override {
    if (thread_.joinable()) {
      std::promise<void> stopped;
      asio::post(io_, [&] {
        server_->stop();
        stopped.set_value();
      });
      stopped.get_future().wait();
      work_.reset();
      thread_.join();
    }
    server_.reset();
  }
  json request(const json& r) {
    std::string error;
    ControlFailure kind = ControlFailure::none;
    auto answer = danerelay::relay::control_request(path_, r, error, &kind, std::chrono::seconds(10));
    EXPECT_TRUE(answer) << error;
    return answer ? *answer : json{};
  }

  danerelay::testsupport::TempDir dir_{"ctl"};
  std::filesystem::path path_ = dir_.path() / "control.sock";
  FakeControl control_;
  asio::io_context io_;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_{asio::make_work_guard(io_)};
  std::unique_ptr<ControlServer> server_;
  std::thread thread_;
};

// A raw client: connect, send bytes, read what comes back until EOF or `lines` lines.
int raw_connect(const std::filesystem::path& path) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return -1;
  }
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return fd;
}

void raw_send(int fd, const std::string& data) {
  for (std::size_t sent = 0; sent < data.size();) {
    const auto n = ::send(fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) return;
    sent += static_cast<std::size_t>(n);
  }
}

// Reads until `lines` newlines or EOF/timeout; `eof` says whether the server closed.
std::string raw_read(int fd, int lines, bool* eof = nullptr) {
  std::string in;
  char buf[4096];
  if (eof) *eof = false;
  while (std::count(in.begin(), in.end(), '\n') < lines) {
    const auto n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) {
      if (eof) *eof = n == 0 || errno == ECONNRESET;  // closed with our bytes unread: a reset
      break;
    }
    in.append(buf, static_cast<std::size_t>(n));
  }
  return in;
}

TEST_F(ControlSocket, SocketIsMode0600) {
  start();
  struct stat st {};
  ASSERT_EQ(::lstat(path_.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0600U);
}

TEST_F(ControlSocket, ListReturnsEntriesThatRoundTrip) {
  start();
  const auto answer = request({{"op", "list"}});
  ASSERT_EQ(answer.value("ok", false), true) << answer.dump();
  ASSERT_EQ(answer["entries"].size(), 2U);
  const auto a = danerelay::relay::entry_from_json(answer["entries"][0]);
  EXPECT_EQ(a.queue_id, "0000000000A1");
  EXPECT_EQ(a.arrival_time, kNov23);
  EXPECT_EQ(a.recipients.at(0).delay_reason, kRefused);
  EXPECT_FALSE(answer["entries"][1]["recipients"][0].contains("delay_reason"));
  EXPECT_EQ(answer["entries"][1]["recipients"][0]["orig_address"], "orig@example.net");
  EXPECT_FALSE(answer["entries"][0]["recipients"][0].contains("orig_address"));
}

TEST_F(ControlSocket, ShowAndNoSuchMessage) {
  start();
  auto answer = request({{"op", "show"}, {"id", "0000000000a1"}});
  EXPECT_EQ(answer.value("ok", false), true) << answer.dump();
  EXPECT_EQ(answer.value("text", ""), "Queue ID: 0000000000A1\n");
  answer = request({{"op", "show"}, {"id", "0000000000FF"}});
  EXPECT_EQ(answer.value("ok", true), false);
  EXPECT_EQ(answer.value("code", ""), "not_found");
  EXPECT_EQ(answer.value("error", ""), "0000000000FF: no such message");
  answer = request({{"op", "show"}, {"id", "nope"}});
  EXPECT_EQ(answer.value("code", ""), "bad_request");
}

TEST_F(ControlSocket, FlushAllAndOne) {
  start();
  EXPECT_EQ(request({{"op", "flush"}}), (json{{"ok", true}, {"count", 2}}));
  EXPECT_EQ(request({{"op", "flush"}, {"id", "0000000000A1"}}), (json{{"ok", true}, {"count", 1}}));
  EXPECT_EQ(request({{"op", "flush"}, {"id", "0000000000FF"}}).value("code", ""), "not_found");
}

TEST_F(ControlSocket, HoldReleaseExpireDelete) {
  start();
  EXPECT_EQ(request({{"op", "hold"}, {"id", "0000000000A1"}}), (json{{"ok", true}, {"count", 1}}));
  // Already on hold: the message exists, nothing changed → ok with count 0, not "no such message".
  EXPECT_EQ(request({{"op", "hold"}, {"id", "0000000000A1"}}), (json{{"ok", true}, {"count", 0}}));
  EXPECT_EQ(request({{"op", "release"}, {"id", "0000000000A1"}}), (json{{"ok", true}, {"count", 1}}));
  EXPECT_EQ(request({{"op", "expire"}, {"id", "0000000000B2"}}), (json{{"ok", true}, {"count", 1}}));
  EXPECT_EQ(request({{"op", "delete"}, {"id", "0000000000A1"}}), (json{{"ok", true}, {"count", 1}}));
  EXPECT_EQ(request({{"op", "delete"}, {"id", "0000000000A1"}}).value("code", ""), "not_found");
  EXPECT_EQ(request({{"op", "hold"}}).value("code", ""), "bad_request");
  EXPECT_EQ(request({{"op", "release"}, {"id", 42}}).value("code", ""), "bad_request");
  // The server ran every QueueControl call on the io thread; the queue reflects them.
  std::promise<std::map<std::string, QueueEntry>> snapshot;
  asio::post(io_, [&] { snapshot.set_value(control_.queue); });
  const auto q = snapshot.get_future().get();
  ASSERT_EQ(q.size(), 1U);
  EXPECT_TRUE(q.at("0000000000B2").forced_expire);
}

TEST_F(ControlSocket, DeleteAll) {
  start();
  EXPECT_EQ(request({{"op", "delete"}, {"id", "ALL"}}), (json{{"ok", true}, {"count", 2}}));
  EXPECT_EQ(request({{"op", "list"}})["entries"].size(), 0U);
}

TEST_F(ControlSocket, UnknownOpAndMalformedJsonKeepTheConnection) {
  start();
  const int fd = raw_connect(path_);
  ASSERT_GE(fd, 0);
  // Three requests in one write: malformed, unknown op, then a good one; three answers in order.
  raw_send(fd, "{not json\n{\"op\":\"frobnicate\"}\r\n[1,2]\n{\"op\":\"flush\"}\n");
  std::istringstream in(raw_read(fd, 4));
  std::vector<json> answers;
  for (std::string line; std::getline(in, line);) answers.push_back(json::parse(line));
  ::close(fd);
  ASSERT_EQ(answers.size(), 4U);
  EXPECT_EQ(answers[0].value("code", ""), "bad_request");
  EXPECT_EQ(answers[0].value("ok", true), false);
  EXPECT_EQ(answers[1].value("code", ""), "bad_request");
  EXPECT_NE(answers[1].value("error", "").find("frobnicate"), std::string::npos);
  EXPECT_EQ(answers[2].value("code", ""), "bad_request");
  EXPECT_EQ(answers[3], (json{{"ok", true}, {"count", 2}}));
}

TEST_F(ControlSocket, OversizedRequestIsRefusedAndClosed) {
  ControlServerOptions options;
  options.max_request = 1024;
  start(options);
  const int fd = raw_connect(path_);
  ASSERT_GE(fd, 0);
  raw_send(fd, "{\"op\":\"list\",\"pad\":\"" + std::string(4096, 'x'));
  bool eof = false;
  const std::string answer = raw_read(fd, 2, &eof);
  ::close(fd);
  EXPECT_TRUE(eof);
  ASSERT_NE(answer.find('\n'), std::string::npos) << answer;
  EXPECT_EQ(json::parse(answer.substr(0, answer.find('\n'))).value("code", ""), "too_large");
  // The server is still there for others.
  EXPECT_EQ(request({{"op", "flush"}}).value("count", 0), 2);
}

TEST_F(ControlSocket, IdleConnectionIsClosed) {
  ControlServerOptions options;
  options.idle_timeout = std::chrono::milliseconds(200);
  start(options);
  const int fd = raw_connect(path_);
  ASSERT_GE(fd, 0);
  raw_send(fd, "{\"op\":");  // half a request, then silence
  bool eof = false;
  const auto t0 = std::chrono::steady_clock::now();
  const auto got = raw_read(fd, 1, &eof);
  ::close(fd);
  EXPECT_TRUE(eof) << got;
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(4));
}

TEST_F(ControlSocket, ConcurrentClientsAreServedTogether) {
  control_.flush_delay = std::chrono::milliseconds(300);
  start();
  // An idle connection does not block anyone.
  const int idle = raw_connect(path_);
  ASSERT_GE(idle, 0);
  constexpr int kClients = 8;
  std::vector<std::future<json>> answers;
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < kClients; ++i) {
    answers.push_back(std::async(std::launch::async, [this] {
      std::string error;
      auto a = danerelay::relay::control_request(path_, json{{"op", "flush"}}, error, nullptr, std::chrono::seconds(10));
      return a ? *a : json{{"error", error}};
    }));
  }
  for (auto& f : answers) EXPECT_EQ(f.get(), (json{{"ok", true}, {"count", 2}}));
  const auto elapsed = std::chrono::steady_clock::now() - t0;
  ::close(idle);
  EXPECT_LT(elapsed, std::chrono::milliseconds(300 * kClients / 2));
  EXPECT_GT(control_.max_in_flush.load(), 1);
}

TEST_F(ControlSocket, TooManyConnectionsGetBusy) {
  ControlServerOptions options;
  options.max_connections = 1;
  start(options);
  const int first = raw_connect(path_);
  ASSERT_GE(first, 0);
  raw_send(first, "{\"op\":\"ping\"}\n");
  EXPECT_EQ(json::parse(raw_read(first, 1)), (json{{"ok", true}}));  // the first is being served
  const int second = raw_connect(path_);
  ASSERT_GE(second, 0);
  bool eof = false;
  const auto got = raw_read(second, 1, &eof);
  ::close(first);
  ::close(second);
  ASSERT_FALSE(got.empty());
  EXPECT_EQ(json::parse(got).value("code", ""), "busy");
}

TEST_F(ControlSocket, NoDaemonIsDistinguished) {
  std::string error;
  ControlFailure kind = ControlFailure::none;
  EXPECT_FALSE(danerelay::relay::control_request(path_, json{{"op", "list"}}, error, &kind));
  EXPECT_EQ(kind, ControlFailure::no_daemon);
  EXPECT_NE(error.find(path_.string()), std::string::npos) << error;

  // A stale socket file (its owner gone): also "no daemon"; start() replaces it.
  {
    const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path_.c_str(), sizeof addr.sun_path - 1);
    ASSERT_EQ(::bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr), 0);
    ::close(fd);
  }
  EXPECT_FALSE(danerelay::relay::control_request(path_, json{{"op", "list"}}, error, &kind));
  EXPECT_EQ(kind, ControlFailure::no_daemon);
  start();
  EXPECT_EQ(request({{"op", "ping"}}), (json{{"ok", true}}));
}

TEST_F(ControlSocket, StopRemovesTheSocketAndASecondServerIsRefused) {
  start();
  ControlServer second(io_.get_executor(), path_, control_, nullptr);
  EXPECT_THROW(second.start(), std::system_error);
  EXPECT_TRUE(std::filesystem::exists(path_));  // the first server's socket survived
  std::promise<void> stopped;
  asio::post(io_, [&] {
    server_->stop();
    stopped.set_value();
  });
  stopped.get_future().wait();
  EXPECT_FALSE(std::filesystem::exists(path_));
  std::string error;
  ControlFailure kind = ControlFailure::none;
  EXPECT_FALSE(danerelay::relay::control_request(path_, json{{"op", "list"}}, error, &kind));
  EXPECT_EQ(kind, ControlFailure::no_daemon);
}

TEST_F(ControlSocket, ANonSocketFileIsNotRemoved) {
  std::ofstream(path_) << "important";
  ControlServer server(io_.get_executor(), path_, control_, nullptr);
  EXPECT_THROW(server.start(), std::system_error);
  EXPECT_TRUE(std::filesystem::is_regular_file(path_));
}

TEST_F(ControlSocket, ControlSocketPathDefaultsToTheStateDirectory) {
  danerelay::config::Config cfg;
  cfg.server.state_dir = "/var/lib/x";
  EXPECT_EQ(danerelay::relay::control_socket_path(cfg), std::filesystem::path("/var/lib/x/control.sock"));
  cfg.server.control_socket = "/run/x.sock";
  EXPECT_EQ(danerelay::relay::control_socket_path(cfg), std::filesystem::path("/run/x.sock"));
}

}  // namespace
