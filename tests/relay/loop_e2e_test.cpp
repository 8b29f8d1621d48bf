// tests/relay/loop_e2e_test.cpp — checklist L-01 part 2, "loops back to myself", end to end:
// `danerelay run` as a child process over the signed test world, one message injected whose
// route (or best MX) is one of the relay's own listeners. Before L-01 the relay delivered it to
// itself, accepted it again, delivered it again… (one message, ~7,000 copies in 25 s); now no
// connection is made and the log says "mail for X loops back to myself" (Postfix smtp_addr.c).
//
// The count that matters: how many messages the relay's listeners accepted ("client=" lines, one
// per accepted message). Exactly one — the injected one. Every wait is bounded.
#include <gtest/gtest.h>

#include <csignal>
#include <functional>
#include <regex>
#include <thread>

#include "tests/relay/relay_fixture.hpp"

namespace danerelay::relay::e2e {
namespace {

using namespace std::chrono_literals;

Shared* shared = nullptr;

class LoopEndToEnd : public DaemonTest {
 protected:
  LoopEndToEnd() : DaemonTest(shared, "l") {}
  static void SetUpTestSuite() { shared = new Shared(); }
  static void TearDownTestSuite() {
    delete shared;
    shared = nullptr;
  }

  std::string submit(const std::string& to, const std::string& subject) { return DaemonTest::submit(to, subject, "round and round"); }

  // Messages the relay's listeners accepted: smtpd logs "QID: client=…" once per message.
  static int accepted(const std::string& log) {
    int n = 0;
    for (auto at = log.find(": client="); at != std::string::npos; at = log.find(": client=", at + 1)) ++n;
    return n;
  }

};

// A configured route to the relay's own listener ([127.0.0.1]:<its port>): Postfix treats a
// relayhost that loops back as a configuration problem and defers (4.3.5), keeping the text.
TEST_F(LoopEndToEnd, L01_RouteToTheRelaysOwnListenerIsNeverConnectedToAndDefers) {
  start("[policy.destination.\"loop.test\"]\nnexthop = \"[127.0.0.1]:@RELAY_PORT@\"\n");
  const std::string reply = submit("user@loop.test", "route-loop");
  ASSERT_EQ(reply.substr(0, 3), "250") << reply;
  const std::string qid = testsupport::SmtpInjector::queued_as(reply);
  ASSERT_EQ(qid.size(), 12u) << reply;
  // Bounded: on a relay without loop detection this never appears and the message circles.
  const bool said = daemon_->wait_log("loops back to myself", 15s);
  const std::string log = daemon_->log();
  EXPECT_TRUE(said) << tail(log);
  EXPECT_EQ(accepted(log), 1) << "the message was relayed to the relay itself, again and again";
  EXPECT_TRUE(std::regex_search(log, std::regex(qid + R"(: to=<user@loop\.test>, relay=none, delay=[0-9.]+, )"
                                                      R"(delays=[0-9.]+/[0-9.]+/[0-9.]+/[0-9.]+, dsn=4\.3\.5, )"
                                                      R"(status=deferred \(mail for loop\.test loops back to myself\))")))
      << tail(log);
  EXPECT_NE(log.find(qid + ": warning: next hop 127.0.0.1[127.0.0.1]:" + std::to_string(instance_->relay_port) +
                     " for loop.test is a listener of this relay: configuration problem"),
            std::string::npos)
      << tail(log);
  EXPECT_EQ(log.find("status=sent"), std::string::npos) << tail(log);
  // Still exactly one after a while: the deferral waits for its back-off (minutes), nothing circles.
  std::this_thread::sleep_for(1s);
  EXPECT_EQ(accepted(daemon_->log()), 1);
}

// The best MX is ourselves: a wildcard listener on [::]:25 (every interface address, loopback's
// 127.0.0.0/8 included) and user@insecure.test, whose only MX (preference 10) is 127.0.0.31.
// Postfix bounces: 5.4.6 "mail for insecure.test loops back to myself", relay=none.
TEST_F(LoopEndToEnd, L01_BestMxOnAWildcardListenerBouncesWithLoopsBackToMyself) {
  // The daemon must bind port 25: root only (as in CI). A sink probes the privilege first.
  if (!shared->sink("127.0.0.31", "")) GTEST_SKIP() << "cannot listen on port 25: run as root, as CI does";
  start("[[listener]]\nname = \"mx\"\naddress = \"[::]:25\"\ntls = \"starttls\"\nauth = \"none\"\n"
        "allow_networks = [\"127.0.0.0/8\", \"::1/128\"]\n");
  const std::string reply = submit("user@insecure.test", "mx-loop");
  ASSERT_EQ(reply.substr(0, 3), "250") << reply;
  const std::string qid = testsupport::SmtpInjector::queued_as(reply);
  ASSERT_EQ(qid.size(), 12u) << reply;
  const bool said = daemon_->wait_log("loops back to myself", 15s);
  // The notice to the sender is tried after the original's line: wait for it too, not a race.
  const bool notice_tried = daemon_->wait_log("to=<sender@danetta.test>, relay=none", 15s);
  const std::string log = daemon_->log();
  EXPECT_TRUE(said) << tail(log);
  EXPECT_TRUE(notice_tried) << tail(log);
  EXPECT_EQ(accepted(log), 1) << "the message was relayed to the relay itself, again and again";
  EXPECT_TRUE(std::regex_search(log, std::regex(qid + R"(: to=<user@insecure\.test>, relay=none, delay=[0-9.]+, )"
                                                      R"(delays=[0-9.]+/[0-9.]+/[0-9.]+/[0-9.]+, dsn=5\.4\.6, )"
                                                      R"(status=bounced \(mail for insecure\.test loops back to myself\))")))
      << tail(log);
  EXPECT_NE(log.find(qid + ": mx.insecure.test[127.0.0.31]:25 (MX preference 10) is a listener of this relay"), std::string::npos)
      << tail(log);
  // The notice to the sender loops too (danetta.test's MX is 127.0.0.31's neighbour 127.0.0.141):
  // a bounce is never bounced, so it ends there.
  EXPECT_NE(log.find("to=<sender@danetta.test>, relay=none"), std::string::npos) << tail(log);
  EXPECT_EQ(log.find("status=sent"), std::string::npos) << tail(log);
  std::this_thread::sleep_for(1s);
  EXPECT_EQ(accepted(daemon_->log()), 1);
}

}  // namespace
}  // namespace danerelay::relay::e2e
