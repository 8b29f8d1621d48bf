// tests/relay/relay_e2e_test.cpp — the whole relay: `danerelay run` as a child process, a real
// SMTP client submitting mail to its listeners, the spool, the scheduler, and delivery over the
// signed test hierarchy (libunbound validating) to in-process sinks on the world's MX addresses
// (port 25: root only, as in CI; the tests skip otherwise).
//
// Each test starts its own daemon with its own state directory and ports, so tests never share a
// queue. Waits are bounded polls of the daemon's log or the sinks' records.
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <csignal>
#include <cstdio>
#include <regex>
#include <thread>

#include "tests/relay/relay_fixture.hpp"

namespace danerelay::relay::e2e {
namespace {

using namespace std::chrono_literals;

Shared* shared = nullptr;

class RelayEndToEnd : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { shared = new Shared(); }
  static void TearDownTestSuite() {
    delete shared;
    shared = nullptr;
  }

  // `server_keys`: lines added to the [server] table ("reverse_lookup = false\n").
  void start(const std::string& extra = "", const std::string& server_keys = "") {
    // Short directory names: the control socket's path must fit in sun_path (108 bytes).
    static int counter = 0;
    instance_ = std::make_unique<Instance>(*shared, shared->dir.path() / ("t" + std::to_string(++counter)), extra);
    if (!server_keys.empty()) {
      std::string text = read_file(instance_->config);
      text.replace(text.find("[server]\n"), 9, "[server]\n" + server_keys);
      std::ofstream(instance_->config) << text;
    }
    daemon_ = std::make_unique<testsupport::Daemon>(DANERELAY_BINARY, instance_->config, instance_->log);
    ASSERT_TRUE(daemon_->wait_listening("127.0.0.1", instance_->submission_port, 20s)) << daemon_->log();
  }

  void TearDown() override {
    if (daemon_) {
      daemon_->signal(SIGTERM);
      EXPECT_EQ(daemon_->wait(20s), 0) << daemon_->log();
      if (HasFailure()) std::cerr << "---- daemon log ----\n" << daemon_->log();
    }
  }

  std::unique_ptr<testsupport::SmtpSink> sink(const std::string& address, const std::string& cert_host,
                                              testsupport::SinkOptions o = {}) {
    return shared->sink(address, cert_host, std::move(o));
  }

  // `danerelay -c CONFIG ARGS` → {exit code, stdout}.
  std::pair<int, std::string> cli(const std::string& args) {
    const std::string cmd = std::string(DANERELAY_BINARY) + " -c " + instance_->config.string() + " " + args + " 2>/dev/null";
    FILE* p = popen(cmd.c_str(), "r");
    std::string out;
    char buf[4096];
    while (std::size_t n = fread(buf, 1, sizeof buf, p)) out.append(buf, n);
    const int st = pclose(p);
    return {WIFEXITED(st) ? WEXITSTATUS(st) : -1, out};
  }

  static std::string message(const std::string& subject, const std::string& body = "Hello over DANE.\r\n") {
    return "From: <sender@danetta.test>\r\nTo: <user@secure.test>\r\nSubject: " + subject +
           "\r\nMessage-ID: <" + subject + "@org.test>\r\n\r\n" + body;
  }

  // Submits one message through the relay listener (allowed network, no AUTH); the 250 reply.
  std::string submit(const std::string& to, const std::string& subject, const std::string& from = "sender@danetta.test",
                     const std::string& mail_params = "", const std::string& rcpt_params = "") {
    testsupport::SmtpInjector c("127.0.0.1", instance_->relay_port);
    c.command("EHLO exchange.org.test");
    auto r = c.send(from, {to}, message(subject), mail_params, rcpt_params);
    c.quit();
    return r;
  }

  static int bodies_with(const testsupport::SmtpSink& s, const std::string& text) {
    int n = 0;
    for (const auto& t : s.stats().transactions) {
      if (t.body && t.body->find(text) != std::string::npos) ++n;
    }
    return n;
  }

  static bool wait_for(const std::function<bool()>& done, std::chrono::milliseconds limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline) {
      if (done()) return true;
      std::this_thread::sleep_for(20ms);
    }
    return done();
  }

  std::unique_ptr<Instance> instance_;
  std::unique_ptr<testsupport::Daemon> daemon_;
};

#define NEED_SINK(s) \
  if (!(s)) GTEST_SKIP() << "cannot listen on port 25: run as root, as CI does"

TEST_F(RelayEndToEnd, AcceptedMessageIsDeliveredWithDaneAndRemovedFromTheQueue) {
  auto mx = sink("127.0.0.11", "mx.secure.test");
  auto mx6 = sink("::1", "mx.secure.test");
  NEED_SINK(mx && mx6);
  start();
  const std::string reply = submit("user@secure.test", "first");
  ASSERT_EQ(reply.substr(0, 3), "250") << reply;
  const std::string qid = testsupport::SmtpInjector::queued_as(reply);
  ASSERT_EQ(qid.size(), 12u) << reply;
  ASSERT_TRUE(daemon_->wait_log(qid + ": removed", 20s)) << daemon_->log();
  EXPECT_EQ(bodies_with(*mx, "Subject: first") + bodies_with(*mx6, "Subject: first"), 1);
  const std::string log = daemon_->log();
  EXPECT_NE(log.find(qid + ": client=unknown[127.0.0.1]"), std::string::npos) << log;
  EXPECT_NE(log.find(qid + ": from=<sender@danetta.test>, size="), std::string::npos) << log;
  EXPECT_NE(log.find("Verified TLS connection established to mx.secure.test["), std::string::npos) << log;
  EXPECT_TRUE(std::regex_search(log, std::regex(qid + ": to=<user@secure\\.test>, relay=mx\\.secure\\.test\\[[^\\]]+\\]:25, "
                                                      "delay=[0-9.]+, delays=[0-9.]+/[0-9.]+/[0-9.]+/[0-9.]+, dsn=2\\.0\\.0, status=sent")))
      << log;
  // The relay added its Received: header, naming the queue id.
  std::string body;
  for (auto* s : {mx.get(), mx6.get()}) {
    for (const auto& t : s->stats().transactions) {
      if (t.body) body = *t.body;
    }
  }
  EXPECT_EQ(body.rfind("Received: from exchange.org.test (unknown [127.0.0.1])", 0), 0u) << body;
  EXPECT_NE(body.find("by relay.danerelay.test (danerelay) with ESMTP id " + qid), std::string::npos) << body;
  EXPECT_TRUE(std::filesystem::is_empty(instance_->state / "spool" / "msg"));
}

// Issue 11 item 6: inbound clients named through the daemon's own validating resolver over the
// world's signed reverse zones. Forward-confirmed → the name in smtpd's lines and in the Received:
// header the destination gets; a PTR whose name does not point back → unknown, with Postfix's warning.
TEST_F(RelayEndToEnd, InboundClientsAreNamedByForwardConfirmedReverseDns) {
  auto mx = sink("127.0.0.11", "mx.secure.test");
  auto mx6 = sink("::1", "mx.secure.test");
  NEED_SINK(mx && mx6);
  start();
  const std::vector<std::string> sources{"127.0.0.161", "127.0.0.162"};
  std::vector<std::string> qids;
  for (std::size_t i = 0; i < sources.size(); ++i) {
    testsupport::SmtpInjector c("127.0.0.1", instance_->relay_port, 30s, false, sources[i]);
    c.command("EHLO exchange.org.test");
    const std::string r = c.send("sender@danetta.test", {"user@secure.test"}, message("named" + std::to_string(i)));
    c.quit();
    ASSERT_EQ(r.substr(0, 3), "250") << r;
    qids.push_back(testsupport::SmtpInjector::queued_as(r));
  }
  for (const auto& qid : qids) ASSERT_TRUE(daemon_->wait_log(qid + ": removed", 20s)) << daemon_->log();
  const std::string log = daemon_->log();
  EXPECT_NE(log.find("connect from exchange.clients.test[127.0.0.161]"), std::string::npos) << log;
  EXPECT_NE(log.find(qids[0] + ": client=exchange.clients.test[127.0.0.161]"), std::string::npos) << log;
  EXPECT_NE(log.find("hostname forged.clients.test does not resolve to address 127.0.0.162"), std::string::npos) << log;
  EXPECT_NE(log.find("connect from unknown[127.0.0.162]"), std::string::npos) << log;
  EXPECT_NE(log.find(qids[1] + ": client=unknown[127.0.0.162]"), std::string::npos) << log;
  const auto delivered = [&](const std::string& subject) {
    for (auto* s : {mx.get(), mx6.get()}) {
      for (const auto& t : s->stats().transactions) {
        if (t.body && t.body->find("Subject: " + subject + "\r\n") != std::string::npos) return *t.body;
      }
    }
    return std::string();
  };
  EXPECT_EQ(delivered("named0").rfind("Received: from exchange.org.test (exchange.clients.test [127.0.0.161])", 0), 0u)
      << delivered("named0");
  EXPECT_EQ(delivered("named1").rfind("Received: from exchange.org.test (unknown [127.0.0.162])", 0), 0u)
      << delivered("named1");
}

TEST_F(RelayEndToEnd, ReverseLookupOffLeavesEveryClientUnknown) {
  start("", "reverse_lookup = false\n");
  {
    testsupport::SmtpInjector c("127.0.0.1", instance_->relay_port, 30s, false, "127.0.0.161");
    c.command("EHLO exchange.org.test");
    c.quit();
  }
  ASSERT_TRUE(daemon_->wait_log("disconnect from unknown[127.0.0.161]", 20s)) << daemon_->log();
  EXPECT_NE(daemon_->log().find("connect from unknown[127.0.0.161]"), std::string::npos) << daemon_->log();
  EXPECT_EQ(daemon_->log().find("exchange.clients.test"), std::string::npos) << daemon_->log();
}

TEST_F(RelayEndToEnd, D45_DaneMismatchIsDeferredRetriedAfterBackoffAndDeliveredOnceFixed) {
  // mx.secure.test first presents a certificate its TLSA records do not match: nothing may be sent.
  auto wrong = sink("127.0.0.11", "mx1.multi.test");
  auto wrong6 = sink("::1", "mx1.multi.test");
  NEED_SINK(wrong && wrong6);
  start("[queue]\nmin_backoff = \"1s\"\nmax_backoff = \"2s\"\n");
  const std::string reply = submit("user@secure.test", "retry");
  ASSERT_EQ(reply.substr(0, 3), "250") << reply;
  const std::string qid = testsupport::SmtpInjector::queued_as(reply);
  ASSERT_TRUE(daemon_->wait_log(qid + ": to=<user@secure.test>", 20s)) << daemon_->log();
  EXPECT_NE(daemon_->log().find("dsn=4.7.5, status=deferred (Server certificate not verified)"), std::string::npos)
      << daemon_->log();
  EXPECT_EQ(wrong->stats().bodies() + wrong6->stats().bodies(), 0) << "no body to a host that failed DANE";
  // The operator fixes the certificate; the next attempt (after min_backoff) delivers.
  wrong.reset();
  wrong6.reset();
  auto right = sink("127.0.0.11", "mx.secure.test");
  auto right6 = sink("::1", "mx.secure.test");
  ASSERT_TRUE(right && right6);
  ASSERT_TRUE(daemon_->wait_log(qid + ": removed", 30s)) << daemon_->log();
  EXPECT_EQ(bodies_with(*right, "Subject: retry") + bodies_with(*right6, "Subject: retry"), 1);
}

TEST_F(RelayEndToEnd, B01_UndeliverableMailBouncesAtTheLifetimeWithAnRfc3464ReportExplainingDane) {
  // Both MX hosts of twomx.test fail DANE authentication, for the whole (short) lifetime.
  auto mx1 = sink("127.0.0.131", "mx.danetta.test");
  auto mx2 = sink("127.0.0.132", "mx.danetta.test");
  // The sender's own domain receives the bounce (DANE-TA at mx.danetta.test).
  auto home = sink("127.0.0.141", "mx.danetta.test");
  NEED_SINK(mx1 && mx2 && home);
  start("[queue]\nmin_backoff = \"1s\"\nmax_backoff = \"1s\"\nmax_lifetime = \"3s\"\n");
  const std::string reply = submit("user@twomx.test", "doomed", "sender@danetta.test", "RET=HDRS ENVID=env+2Bid",
                                   "NOTIFY=FAILURE ORCPT=rfc822;user@twomx.test");
  ASSERT_EQ(reply.substr(0, 3), "250") << reply;
  const std::string qid = testsupport::SmtpInjector::queued_as(reply);
  ASSERT_TRUE(daemon_->wait_log(qid + ": from=<sender@danetta.test>, status=expired, returned to sender", 30s))
      << daemon_->log();
  ASSERT_TRUE(wait_for([&] { return home->stats().bodies() >= 1; }, 30s)) << daemon_->log();
  EXPECT_EQ(mx1->stats().bodies() + mx2->stats().bodies(), 0);
  const auto t = home->stats().transactions.at(0);
  EXPECT_EQ(t.mail.rfind("<>", 0), 0u) << "a bounce has the null sender: " << t.mail;
  ASSERT_EQ(t.rcpts.size(), 1u);
  EXPECT_EQ(t.rcpts[0].rfind("<sender@danetta.test>", 0), 0u);
  const std::string& b = *t.body;
  EXPECT_NE(b.find("Content-Type: multipart/report; report-type=delivery-status;"), std::string::npos) << b;
  EXPECT_NE(b.find("Content-Type: message/delivery-status"), std::string::npos) << b;
  EXPECT_NE(b.find("Original-Envelope-Id: env+2Bid"), std::string::npos) << b;
  EXPECT_NE(b.find("Final-Recipient: rfc822; user@twomx.test"), std::string::npos) << b;
  EXPECT_NE(b.find("Original-Recipient: rfc822;user@twomx.test"), std::string::npos) << b;
  EXPECT_NE(b.find("Action: failed"), std::string::npos) << b;
  // Postfix keeps the recorded 4.x.x code for mail that expired after deferrals (Action: failed).
  EXPECT_NE(b.find("Status: 4.7.5"), std::string::npos) << b;
  EXPECT_NE(b.find("The destination requires authenticated TLS (DANE) and its certificate did"), std::string::npos) << b;
  EXPECT_NE(b.find("Content-Type: text/rfc822-headers"), std::string::npos) << "RET=HDRS: " << b;
  EXPECT_NE(b.find("Subject: doomed"), std::string::npos);
  EXPECT_EQ(b.find("Hello over DANE."), std::string::npos) << "RET=HDRS returns no body";
  ASSERT_TRUE(daemon_->wait_log(qid + ": removed", 10s));
}

// A message whose header section carries `received` Received: fields (hop n → hop n+1), then
// the usual fields; the body has more Received: lines when `body_received` (they never count).
static std::string with_hops(int received, const std::string& subject, int body_received = 0) {
  std::string m;
  for (int i = received; i > 0; --i) {
    m += "Received: from hop" + std::to_string(i) + ".org.test by hop" + std::to_string(i + 1) +
         ".org.test with ESMTP; Mon, 1 Jan 2024 00:00:00 +0000\r\n";
  }
  m += "From: <sender@danetta.test>\r\nTo: <user@secure.test>\r\nSubject: " + subject + "\r\nMessage-ID: <" + subject +
       "@org.test>\r\n\r\nHello over DANE.\r\n";
  for (int i = 0; i < body_received; ++i) m += "Received: from pasted.org.test by pasted.org.test; forwarded\r\n";
  return m;
}

// Received: fields in the header section of `message` (none of these tests folds them).
static int count_received(const std::string& message) {
  int n = 0;
  std::istringstream in(message.substr(0, message.find("\r\n\r\n") + 2));
  for (std::string line; std::getline(in, line);) n += line.rfind("Received:", 0) == 0 ? 1 : 0;
  return n;
}

// Submits `message` on a fresh connection to the relay listener; the reply to the final ".".
static std::string submit_raw(std::uint16_t port, const std::string& message) {
  testsupport::SmtpInjector c("127.0.0.1", port);
  c.command("EHLO exchange.org.test");
  auto r = c.send("sender@danetta.test", {"user@secure.test"}, message);
  c.quit();
  return r;
}

// Checklist L-01, a mail loop by hop count (Postfix hop_count_limit): the inbound server counts
// the message's Received: fields plus the one it adds and refuses the message at the end of DATA
// when that reaches limits.max_hops. The default is 50: 49 received + ours = 50 → 554 5.4.6, nothing
// queued or delivered; 48 + ours = 49 → accepted and delivered with 49 Received: fields.
TEST_F(RelayEndToEnd, L01_TooManyReceivedFieldsAreRefusedAtTheEndOfDataAndNothingIsQueued) {
  auto mx = sink("127.0.0.11", "mx.secure.test");
  auto mx6 = sink("::1", "mx.secure.test");
  NEED_SINK(mx && mx6);
  start("[queue]\nmin_backoff = \"1h\"\nmax_backoff = \"1h\"\n");
  for (const int n : {49, 60}) {
    const std::string subject = "loop" + std::to_string(n);
    EXPECT_EQ(submit_raw(instance_->relay_port, with_hops(n, subject)), "554 5.4.6 Too many hops") << n;
    EXPECT_EQ(cli("queue list").second, "Mail queue is empty\n") << n;
    EXPECT_TRUE(std::filesystem::is_empty(instance_->state / "spool" / "msg")) << n;
    EXPECT_TRUE(std::filesystem::is_empty(instance_->state / "spool" / "tmp")) << n;
  }
  const std::string log = daemon_->log();
  EXPECT_TRUE(std::regex_search(log, std::regex(": reject: END-OF-MESSAGE from unknown\\[127\\.0\\.0\\.1\\]: 554 5\\.4\\.6 Too many hops;")))
      << log;
  EXPECT_NE(log.find(": message rejected: hopcount exceeded"), std::string::npos) << log;
  EXPECT_EQ(log.find("message-id=<loop49@org.test>"), std::string::npos) << "a refused message is never logged as queued";

  // The other side of the boundary, and below it: accepted, delivered, our Received: on top.
  for (const int n : {48, 47}) {
    const std::string subject = "hops" + std::to_string(n);
    const std::string reply = submit_raw(instance_->relay_port, with_hops(n, subject));
    ASSERT_EQ(reply.substr(0, 3), "250") << n << ": " << reply;
    const std::string qid = testsupport::SmtpInjector::queued_as(reply);
    ASSERT_TRUE(daemon_->wait_log(qid + ": removed", 20s)) << daemon_->log();
    ASSERT_EQ(bodies_with(*mx, "Subject: " + subject) + bodies_with(*mx6, "Subject: " + subject), 1) << n;
    for (auto* s : {mx.get(), mx6.get()}) {
      for (const auto& t : s->stats().transactions) {
        if (t.body && t.body->find("Subject: " + subject) != std::string::npos) {
          EXPECT_EQ(count_received(*t.body), n + 1) << *t.body;
          EXPECT_EQ(t.body->rfind("Received: from exchange.org.test (unknown [127.0.0.1])", 0), 0u) << *t.body;
        }
      }
    }
  }
  EXPECT_EQ(bodies_with(*mx, "Subject: loop") + bodies_with(*mx6, "Subject: loop"), 0) << "refused messages are never delivered";
  EXPECT_EQ(mx->stats().bodies() + mx6->stats().bodies(), 2);
  EXPECT_EQ(mx->stats().transactions.size() + mx6->stats().transactions.size(), 2u) << "no MAIL for a refused message";
}

// The same with [limits] max_hops = 5: 4 + ours = 5 refused, 3 + ours = 4 accepted; Received:
// lines in the body (a forwarded message pasted in) do not count.
TEST_F(RelayEndToEnd, L01_ConfiguredMaxHopsIsTheLimit) {
  auto mx = sink("127.0.0.11", "mx.secure.test");
  auto mx6 = sink("::1", "mx.secure.test");
  NEED_SINK(mx && mx6);
  start("[limits]\nmax_hops = 5\n\n[queue]\nmin_backoff = \"1h\"\nmax_backoff = \"1h\"\n");
  EXPECT_EQ(submit_raw(instance_->relay_port, with_hops(4, "five4")), "554 5.4.6 Too many hops");
  EXPECT_EQ(cli("queue list").second, "Mail queue is empty\n");
  EXPECT_TRUE(std::filesystem::is_empty(instance_->state / "spool" / "msg"));
  std::vector<std::string> qids;
  for (const auto& [n, in_body, subject] : {std::tuple{3, 0, "five3"}, std::tuple{3, 20, "pasted"}}) {
    const std::string reply = submit_raw(instance_->relay_port, with_hops(n, subject, in_body));
    ASSERT_EQ(reply.substr(0, 3), "250") << subject << ": " << reply;
    qids.push_back(testsupport::SmtpInjector::queued_as(reply));
  }
  for (const auto& qid : qids) ASSERT_TRUE(daemon_->wait_log(qid + ": removed", 20s)) << daemon_->log();
  EXPECT_EQ(bodies_with(*mx, "Subject: five3") + bodies_with(*mx6, "Subject: five3"), 1);
  EXPECT_EQ(bodies_with(*mx, "Subject: pasted") + bodies_with(*mx6, "Subject: pasted"), 1);
  EXPECT_EQ(bodies_with(*mx, "Subject: five4") + bodies_with(*mx6, "Subject: five4"), 0);
  EXPECT_EQ(mx->stats().bodies() + mx6->stats().bodies(), 2);
  EXPECT_EQ(mx->stats().transactions.size() + mx6->stats().transactions.size(), 2u) << "no MAIL for a refused message";
}

// An MX RRset whose targets are all invalid host names (badmx.test: "-bad-", "under_score",
// "bang!", each with a secure address) is a publishing error: deferred 4.4.3 with the reason,
// never bounced as null MX (5.1.10), and no connection to the addresses of the invalid names.
TEST_F(RelayEndToEnd, MxRrsetWithOnlyInvalidHostNamesIsDeferredNeverBounced) {
  auto bad1 = sink("127.0.0.151", "mx.secure.test");
  auto bad2 = sink("127.0.0.152", "mx.secure.test");
  auto bad3 = sink("127.0.0.153", "mx.secure.test");
  auto home = sink("127.0.0.141", "mx.danetta.test");  // a bounce would go to the sender here
  NEED_SINK(bad1 && bad2 && bad3 && home);
  start("[queue]\nmin_backoff = \"1s\"\nmax_backoff = \"1s\"\n");
  const std::string reply = submit("user@badmx.test", "badmx");
  ASSERT_EQ(reply.substr(0, 3), "250") << reply;
  const std::string qid = testsupport::SmtpInjector::queued_as(reply);
  // Two attempts (min_backoff 1 s): the deferral holds, it is not a first-attempt accident.
  ASSERT_TRUE(wait_for(
      [&] {
        const std::string l = daemon_->log();
        std::size_t n = 0;
        for (auto p = l.find(qid + ": to=<user@badmx.test>"); p != std::string::npos; p = l.find(qid + ": to=<user@badmx.test>", p + 1)) ++n;
        return n >= 2;
      },
      20s))
      << daemon_->log();
  const std::string log = daemon_->log();
  EXPECT_TRUE(std::regex_search(log, std::regex(qid + ": to=<user@badmx\\.test>, relay=none, delay=[0-9.]+, delays=[0-9.]+/[0-9.]+/[0-9.]+/[0-9.]+, "
                                                      "dsn=4\\.4\\.3, status=deferred \\(MX RRset for badmx\\.test has no valid host names\\)")))
      << log;
  EXPECT_EQ(log.find("5.1.10"), std::string::npos) << log;
  EXPECT_EQ(log.find("status=bounced"), std::string::npos) << log;
  EXPECT_EQ(log.find("nullMX"), std::string::npos) << log;
  EXPECT_EQ(log.find(qid + ": removed"), std::string::npos) << "still queued";
  const auto [rc, listed] = cli("queue list");
  EXPECT_EQ(rc, 0);
  EXPECT_NE(listed.find(qid), std::string::npos) << listed;
  EXPECT_NE(listed.find("MX RRset for badmx.test has no valid host names"), std::string::npos) << listed;
  EXPECT_EQ(bad1->stats().connections + bad2->stats().connections + bad3->stats().connections, 0);
  EXPECT_EQ(home->stats().connections, 0) << "no bounce, no delay notice";
  EXPECT_EQ(cli("queue delete " + qid).first, 0);
}

TEST_F(RelayEndToEnd, ClientOutsideTheAllowedNetworksWithoutAuthIsRefused) {
  start();
  testsupport::SmtpInjector c("127.0.0.1", instance_->submission_port);
  c.command("EHLO printer.org.test");
  EXPECT_EQ(c.starttls().substr(0, 3), "220");
  c.command("EHLO printer.org.test");
  EXPECT_EQ(c.command("MAIL FROM:<printer@org.test>").substr(0, 3), "250");
  EXPECT_EQ(c.command("RCPT TO:<someone@secure.test>"), "554 5.7.1 <someone@secure.test>: Relay access denied");
  EXPECT_NE(daemon_->log().find("NOQUEUE: reject: RCPT from unknown[127.0.0.1]: 554 5.7.1"), std::string::npos)
      << daemon_->log();
  c.quit();
}

TEST_F(RelayEndToEnd, AuthIsOfferedAndAcceptedOnlyAfterStarttls) {
  auto mx = sink("127.0.0.11", "mx.secure.test");
  auto mx6 = sink("::1", "mx.secure.test");
  NEED_SINK(mx && mx6);
  start();
  testsupport::SmtpInjector c("127.0.0.1", instance_->submission_port);
  const std::string plain_ehlo = c.command("EHLO exchange.org.test");
  EXPECT_EQ(plain_ehlo.find("AUTH"), std::string::npos) << plain_ehlo;
  EXPECT_NE(plain_ehlo.find("STARTTLS"), std::string::npos) << plain_ehlo;
  EXPECT_EQ(c.auth_plain("alice", "wonderland").substr(0, 3), "538") << "no AUTH in the clear";
  EXPECT_EQ(c.command("MAIL FROM:<alice@org.test>").substr(0, 3), "530") << "require_tls";
  ASSERT_EQ(c.starttls().substr(0, 3), "220");
  const std::string tls_ehlo = c.command("EHLO exchange.org.test");
  EXPECT_NE(tls_ehlo.find("AUTH PLAIN LOGIN"), std::string::npos) << tls_ehlo;
  EXPECT_EQ(c.auth_login("alice", "wrong").substr(0, 3), "535");
  EXPECT_EQ(c.auth_login("alice", "wonderland").substr(0, 3), "235");
  const std::string reply = c.send("alice@org.test", {"user@secure.test"}, message("authenticated"));
  ASSERT_EQ(reply.substr(0, 3), "250") << reply;
  c.quit();
  const std::string qid = testsupport::SmtpInjector::queued_as(reply);
  ASSERT_TRUE(daemon_->wait_log(qid + ": removed", 20s)) << daemon_->log();
  EXPECT_NE(daemon_->log().find(qid + ": client=unknown[127.0.0.1], sasl_method=LOGIN, sasl_username=alice"),
            std::string::npos)
      << daemon_->log();
  std::string body;
  for (auto* s : {mx.get(), mx6.get()}) {
    for (const auto& t : s->stats().transactions) {
      if (t.body) body = *t.body;
    }
  }
  EXPECT_NE(body.find("with ESMTPSA id " + qid), std::string::npos) << body;
  // Item 10: the SASL login name stays out of Received: unless the listener sets auth_header.
  EXPECT_EQ(body.find("Authenticated sender"), std::string::npos) << body;
}

TEST_F(RelayEndToEnd, DiskBelowTheReserveGives452AndLosesNothing) {
  start("[queue]\nmin_free_space = \"1000000TB\"\n");
  testsupport::SmtpInjector c("127.0.0.1", instance_->relay_port);
  c.command("EHLO exchange.org.test");
  EXPECT_EQ(c.command("MAIL FROM:<a@org.test>").rfind("452 4.3.1", 0), 0u);
  c.quit();
}

TEST_F(RelayEndToEnd, D46_QueueOperationsAgainstTheRunningDaemon) {
  // bogus-ds.test never validates: its mail stays deferred (long backoff, so it waits).
  start("[queue]\nmin_backoff = \"1h\"\nmax_backoff = \"1h\"\n");
  const std::string reply = submit("user@bogus-ds.test", "queued");
  ASSERT_EQ(reply.substr(0, 3), "250") << reply;
  const std::string qid = testsupport::SmtpInjector::queued_as(reply);
  ASSERT_TRUE(daemon_->wait_log(qid + ": to=<user@bogus-ds.test>", 20s)) << daemon_->log();
  ASSERT_TRUE(daemon_->wait_log("status=deferred", 5s));

  auto [rc, out] = cli("queue list");
  EXPECT_EQ(rc, 0);
  EXPECT_EQ(out.rfind("-Queue ID-", 0), 0u) << out;
  EXPECT_NE(out.find(qid), std::string::npos) << out;
  EXPECT_NE(out.find("sender@danetta.test"), std::string::npos) << out;
  EXPECT_NE(out.find("user@bogus-ds.test"), std::string::npos) << out;
  EXPECT_TRUE(std::regex_search(out, std::regex("\n-- [0-9]+ Kbytes in 1 Request\\.\n$"))) << out;

  auto [jrc, json] = cli("queue list --json");
  EXPECT_EQ(jrc, 0);
  // postqueue -j spacing: "name": "value".
  EXPECT_NE(json.find("\"queue_id\": \"" + qid + "\""), std::string::npos) << json;
  EXPECT_NE(json.find("\"queue_name\": \"deferred\""), std::string::npos) << json;

  auto [src, shown] = cli("queue show " + qid);
  EXPECT_EQ(src, 0);
  EXPECT_NE(shown.find("Subject: queued"), std::string::npos) << shown;

  EXPECT_EQ(cli("queue hold " + qid).first, 0);
  EXPECT_NE(cli("queue list").second.find(qid + "!"), std::string::npos) << "held messages carry '!'";
  EXPECT_EQ(cli("queue release " + qid).first, 0);
  EXPECT_EQ(cli("queue list").second.find(qid + "!"), std::string::npos);

  EXPECT_EQ(cli("queue flush " + qid).first, 0);
  ASSERT_TRUE(wait_for(
      [&] {
        const std::string l = daemon_->log();
        std::size_t n = 0;
        for (std::size_t p = l.find(qid + ": to=<user@bogus-ds.test>"); p != std::string::npos;
             p = l.find(qid + ": to=<user@bogus-ds.test>", p + 1)) {
          ++n;
        }
        return n >= 2;
      },
      20s))
      << "flush ran a second attempt at once\n"
      << daemon_->log();

  EXPECT_EQ(cli("queue delete " + qid).first, 0);
  ASSERT_TRUE(daemon_->wait_log(qid + ": removed", 10s));
  EXPECT_EQ(cli("queue list").second, "Mail queue is empty\n");
  EXPECT_EQ(cli("queue delete " + qid).first, 1) << "no such message";
}

TEST_F(RelayEndToEnd, D46_DelayNoticeAtTheConfiguredDelayWarningTime) {
  auto home = sink("127.0.0.141", "mx.danetta.test");
  NEED_SINK(home);
  start("[queue]\nmin_backoff = \"1s\"\nmax_backoff = \"1s\"\ndelay_warning = \"2s\"\n");
  const std::string reply = submit("user@bogus-ds.test", "slow");
  ASSERT_EQ(reply.substr(0, 3), "250") << reply;
  const std::string qid = testsupport::SmtpInjector::queued_as(reply);
  ASSERT_TRUE(daemon_->wait_log(qid + ": sender delay notification: ", 30s)) << daemon_->log();
  ASSERT_TRUE(wait_for([&] { return home->stats().bodies() >= 1; }, 20s)) << daemon_->log();
  const std::string b = *home->stats().transactions.at(0).body;
  EXPECT_NE(b.find("Action: delayed"), std::string::npos) << b;
  EXPECT_NE(b.find("Will-Retry-Until:"), std::string::npos) << b;
  EXPECT_NE(b.find("THIS IS A WARNING MESSAGE ONLY"), std::string::npos) << b;
  EXPECT_EQ(cli("queue delete " + qid).first, 0);
}

TEST_F(RelayEndToEnd, RestartRecoversTheQueue) {
  start("[queue]\nmin_backoff = \"1h\"\nmax_backoff = \"1h\"\n");
  const std::string reply = submit("user@bogus-ds.test", "survivor");
  const std::string qid = testsupport::SmtpInjector::queued_as(reply);
  ASSERT_TRUE(daemon_->wait_log(qid + ": to=<user@bogus-ds.test>", 20s));
  daemon_->signal(SIGKILL);
  daemon_->wait();
  daemon_ = std::make_unique<testsupport::Daemon>(DANERELAY_BINARY, instance_->config, instance_->log);
  ASSERT_TRUE(daemon_->wait_listening("127.0.0.1", instance_->relay_port, 20s)) << daemon_->log();
  ASSERT_TRUE(daemon_->wait_log("queue: 1 message recovered", 5s)) << daemon_->log();
  EXPECT_NE(cli("queue list").second.find(qid), std::string::npos);
}

}  // namespace
}  // namespace danerelay::relay::e2e

namespace danerelay::relay::e2e {
namespace {

// The line index at which the syscall started on `line` (of process `pid`) completed: the line
// itself, or the "<... NAME resumed>" line strace -f prints when another process interleaved.
std::size_t completion(const std::vector<std::string>& lines, std::size_t line) {
  if (lines[line].find("<unfinished ...>") == std::string::npos) return line;
  const std::string pid = lines[line].substr(0, lines[line].find(' '));
  for (std::size_t i = line + 1; i < lines.size(); ++i) {
    if (lines[i].rfind(pid + " ", 0) == 0 && lines[i].find("resumed>") != std::string::npos) return i;
  }
  return lines.size();
}

TEST_F(RelayEndToEnd, TheLogRecordAndTheSegmentNameAreFlushedBeforeThe250) {
  if (std::system("strace -V >/dev/null 2>&1") != 0) GTEST_SKIP() << "strace is not installed";
  static int counter = 0;
  instance_ = std::make_unique<Instance>(*shared, shared->dir.path() / ("s" + std::to_string(++counter)),
                                         "[queue]\nmin_backoff = \"1h\"\nmax_backoff = \"1h\"\n");
  const auto trace = instance_->dir / "strace.txt";
  daemon_ = std::make_unique<testsupport::Daemon>(
      DANERELAY_BINARY, instance_->config, instance_->log,
      // LeakSanitizer cannot run under ptrace (the sanitizer build of the suite): no leak check here.
      std::vector<std::string>{"env", "ASAN_OPTIONS=detect_leaks=0", "strace", "-f", "-y", "-s", "256", "-e",
                               "trace=fdatasync,fsync,rename,renameat,renameat2,sendmsg,sendto,write,writev", "-o",
                               trace.string()});
  ASSERT_TRUE(daemon_->wait_listening("127.0.0.1", instance_->relay_port, 30s)) << daemon_->log();
  const std::string reply = submit("user@bogus-ds.test", "durable");
  ASSERT_EQ(reply.substr(0, 3), "250") << reply;
  const std::string qid = testsupport::SmtpInjector::queued_as(reply);
  // SIGTERM to the traced daemon (strace's child); strace exits with it.
  const std::string tracer = std::to_string(daemon_->pid());
  const int traced = std::atoi(read_file("/proc/" + tracer + "/task/" + tracer + "/children").c_str());
  ASSERT_GT(traced, 0);
  ::kill(traced, SIGTERM);
  ASSERT_EQ(daemon_->wait(30s), 0) << daemon_->log();
  daemon_.reset();

  std::vector<std::string> lines;
  {
    std::istringstream in(read_file(trace));
    for (std::string l; std::getline(in, l);) lines.push_back(l);
  }
  // The message goes to the segment log (it is small): its record is written to seg/N, the
  // segment is flushed, and, the segment being new, the seg/ directory too; then the 250.
  std::size_t written = lines.size(), data_sync = lines.size(), dir_sync = lines.size(), replied = lines.size();
  for (std::size_t i = 0; i < lines.size(); ++i) {
    const std::string& l = lines[i];
    if (written == lines.size() && l.find("writev(") != std::string::npos && l.find("/spool/seg/") != std::string::npos &&
        l.find("\\\"id\\\":\\\"" + qid + "\\\"") != std::string::npos) {
      written = completion(lines, i);
    } else if (written != lines.size() && data_sync == lines.size() && i > written && l.find("fdatasync(") != std::string::npos &&
               l.find("/spool/seg/") != std::string::npos) {
      data_sync = completion(lines, i);
    } else if (written != lines.size() && dir_sync == lines.size() && i > written && l.find("fsync(") != std::string::npos &&
               l.find("/spool/seg>") != std::string::npos) {
      dir_sync = completion(lines, i);
    } else if (l.find("queued as " + qid) != std::string::npos && replied == lines.size()) {
      replied = i;  // the write starts here
    }
  }
  const std::string all = read_file(trace);
  ASSERT_LT(replied, lines.size()) << "no 250 reply seen\n" << all;
  ASSERT_LT(written, lines.size()) << "no write of " << qid << "'s record to the segment log\n" << all;
  ASSERT_LT(data_sync, lines.size()) << "no fdatasync of the segment after the write\n" << all;
  ASSERT_LT(dir_sync, lines.size()) << "no fsync of the seg/ directory after the segment was made\n" << all;
  EXPECT_LT(written, data_sync) << "record written before the flush";
  EXPECT_LT(data_sync, replied) << "250 written only after the record is durable";
  EXPECT_LT(dir_sync, replied) << "250 written only after the new segment's name is durable";
}

}  // namespace
}  // namespace danerelay::relay::e2e

namespace danerelay::relay::e2e {
namespace {

TEST_F(RelayEndToEnd, ALargeMessageIsFlushedAndRenamedIntoMsgBeforeThe250) {
  if (std::system("strace -V >/dev/null 2>&1") != 0) GTEST_SKIP() << "strace is not installed";
  static int counter = 0;
  instance_ = std::make_unique<Instance>(*shared, shared->dir.path() / ("s" + std::to_string(++counter)),
                                         "[queue]\nmin_backoff = \"1h\"\nmax_backoff = \"1h\"\n");
  const auto trace = instance_->dir / "strace.txt";
  daemon_ = std::make_unique<testsupport::Daemon>(
      DANERELAY_BINARY, instance_->config, instance_->log,
      // LeakSanitizer cannot run under ptrace (the sanitizer build of the suite): no leak check here.
      std::vector<std::string>{"env", "ASAN_OPTIONS=detect_leaks=0", "strace", "-f", "-y", "-s", "256", "-e",
                               "trace=fdatasync,fsync,rename,renameat,renameat2,sendmsg,sendto,write,writev", "-o",
                               trace.string()});
  ASSERT_TRUE(daemon_->wait_listening("127.0.0.1", instance_->relay_port, 30s)) << daemon_->log();
  // 300 KiB: past the segment log's limit for one record, so it streams to tmp/ and is renamed.
  std::string body;
  while (body.size() < 300 * 1024) body += "A line of a large message that goes to its own file in msg/.\r\n";
  std::string reply;
  {
    testsupport::SmtpInjector c("127.0.0.1", instance_->relay_port);
    c.command("EHLO exchange.org.test");
    reply = c.send("sender@danetta.test", {"user@bogus-ds.test"}, message("durable-large", body));
    c.quit();
  }
  ASSERT_EQ(reply.substr(0, 3), "250") << reply;
  const std::string qid = testsupport::SmtpInjector::queued_as(reply);
  // SIGTERM to the traced daemon (strace's child); strace exits with it.
  const std::string tracer = std::to_string(daemon_->pid());
  const int traced = std::atoi(read_file("/proc/" + tracer + "/task/" + tracer + "/children").c_str());
  ASSERT_GT(traced, 0);
  ::kill(traced, SIGTERM);
  ASSERT_EQ(daemon_->wait(30s), 0) << daemon_->log();
  daemon_.reset();

  std::vector<std::string> lines;
  {
    std::istringstream in(read_file(trace));
    for (std::string l; std::getline(in, l);) lines.push_back(l);
  }
  std::size_t data_sync = lines.size(), renamed = lines.size(), dir_sync = lines.size(), replied = lines.size();
  for (std::size_t i = 0; i < lines.size(); ++i) {
    const std::string& l = lines[i];
    if (data_sync == lines.size() && l.find("fdatasync(") != std::string::npos && l.find("/tmp/" + qid + ">") != std::string::npos) {
      data_sync = completion(lines, i);
    } else if (renamed == lines.size() && l.find("rename") != std::string::npos && l.find("/msg>, \"" + qid + "\"") != std::string::npos) {
      renamed = completion(lines, i);
    } else if (renamed != lines.size() && dir_sync == lines.size() && i > renamed && l.find("fsync(") != std::string::npos &&
               l.find("/spool/msg>") != std::string::npos) {
      dir_sync = completion(lines, i);
    } else if (l.find("queued as " + qid) != std::string::npos && replied == lines.size()) {
      replied = i;  // the write starts here
    }
  }
  const std::string all = read_file(trace);
  ASSERT_LT(replied, lines.size()) << "no 250 reply seen\n" << all;
  ASSERT_LT(data_sync, lines.size()) << "no fdatasync of tmp/" << qid << "\n" << all;
  ASSERT_LT(renamed, lines.size()) << "no rename tmp/" << qid << " → msg/" << qid << "\n" << all;
  ASSERT_LT(dir_sync, lines.size()) << "no fsync of the msg/ directory after the rename\n" << all;
  EXPECT_LT(data_sync, renamed) << "file data flushed before the rename";
  EXPECT_LT(renamed, dir_sync) << "directory flushed after the rename";
  EXPECT_LT(dir_sync, replied) << "250 written only after the directory entry is durable";
}

}  // namespace
}  // namespace danerelay::relay::e2e
