// tests/relay/reload_e2e_test.cpp — `systemctl reload` (SIGHUP) end to end: `danerelay run` as a
// child process over the signed test world; the configuration file is rewritten and the daemon
// signalled (relay/daemon/reload_plan.hpp says what applies and what needs a restart).
//
// Mail for reload.test goes by a route ("[127.0.0.1]:PORT", an address literal: no DANE, D-15) to
// a sink without STARTTLS, so the policy level decides what happens: "may" delivers in
// plaintext, "encrypt" defers ("TLS is required, but was not offered"). Every wait is bounded.
#include <gtest/gtest.h>

#include <csignal>
#include <fstream>
#include <regex>
#include <thread>

#include "tests/relay/relay_fixture.hpp"

namespace danerelay::relay::e2e {
namespace {

using namespace std::chrono_literals;

Shared* shared = nullptr;

// `text` with the first `from` replaced by `to`; fails the test when `from` is not there.
std::string replaced(std::string text, const std::string& from, const std::string& to) {
  const auto at = text.find(from);
  EXPECT_NE(at, std::string::npos) << "not in the configuration: " << from;
  if (at != std::string::npos) text.replace(at, from.size(), to);
  return text;
}

class ReloadEndToEnd : public DaemonTest {
 protected:
  ReloadEndToEnd() : DaemonTest(shared, "r") {}
  static void SetUpTestSuite() { shared = new Shared(); }
  static void TearDownTestSuite() {
    delete shared;
    shared = nullptr;
  }

  void SetUp() override {
    testsupport::SinkOptions o;
    o.starttls = false;
    sink_ = std::make_unique<testsupport::SmtpSink>(o);
  }

  // The policy for reload.test at `level`, routed to the sink.
  std::string policy(const std::string& level) const {
    return "[policy.destination.\"reload.test\"]\nlevel = \"" + level + "\"\nnexthop = \"[127.0.0.1]:" +
           std::to_string(sink_->port()) + "\"\n";
  }

  void start(const std::string& extra) {
    DaemonTest::start(extra);
    original_ = read_file(instance_->config);
  }

  // Rewrites the file as `text`, signals SIGHUP, waits for the reload's last line (`until`).
  void reload(const std::string& text, const std::string& until) {
    std::ofstream(instance_->config, std::ios::trunc) << text;
    daemon_->signal(SIGHUP);
    ASSERT_TRUE(daemon_->wait_log(until, 10s)) << tail(daemon_->log());
  }

  std::string submit(const std::string& to, const std::string& subject) { return DaemonTest::submit(to, subject, "reloaded"); }

  // Waits for the delivery line of `qid` and returns its status= word.
  std::string status_of(const std::string& qid) {
    const std::regex line(qid + R"(: to=<[^>]+>, relay=[^ ]+, .*status=([a-z]+))");
    std::smatch m;
    for (int i = 0; i < 500; ++i) {  // ≤ 10 s
      const std::string log = daemon_->log();
      if (std::regex_search(log, m, line)) return m[1];
      std::this_thread::sleep_for(20ms);
    }
    return "(no delivery line)";
  }

  std::unique_ptr<testsupport::SmtpSink> sink_;
  std::string original_;
};

// The issue's case: a reload that applies a new policy table. "may" delivered in plaintext; after
// the reload the same destination at "encrypt" defers (D-11: never plaintext once TLS is required).
TEST_F(ReloadEndToEnd, D11_ANewPolicyTableAppliesToTheNextMessage) {
  start(policy("may"));
  const std::string first = testsupport::SmtpInjector::queued_as(submit("user@reload.test", "before"));
  ASSERT_EQ(first.size(), 12u);
  EXPECT_EQ(status_of(first), "sent") << tail(daemon_->log());
  EXPECT_EQ(sink_->bodies(), 1);

  const std::string next = replaced(original_, "level = \"may\"", "level = \"encrypt\"");
  reload(next, "reload done");
  EXPECT_NE(daemon_->log().find("reload done: changed policy"), std::string::npos) << tail(daemon_->log());

  const std::string second = testsupport::SmtpInjector::queued_as(submit("user@reload.test", "after"));
  ASSERT_EQ(second.size(), 12u);
  EXPECT_EQ(status_of(second), "deferred") << tail(daemon_->log());
  EXPECT_NE(daemon_->log().find(second + ": to=<user@reload.test>"), std::string::npos);
  EXPECT_NE(daemon_->log().find("TLS is required, but was not offered"), std::string::npos) << tail(daemon_->log());
  EXPECT_EQ(sink_->bodies(), 1) << "the second message went out although the new policy requires TLS";
}

// An allow-list is part of the reload: new sessions from 127.0.0.1 may no longer relay.
TEST_F(ReloadEndToEnd, ANarrowedAllowListAppliesToNewSessions) {
  start(policy("may"));
  ASSERT_EQ(submit("user@reload.test", "allowed").substr(0, 3), "250");
  const std::string next =
      replaced(original_, "allow_networks = [\"127.0.0.0/8\", \"::1/128\"]", "allow_networks = [\"10.0.0.0/8\"]");
  reload(next, "reload done");
  EXPECT_NE(daemon_->log().find("listener \"relay\""), std::string::npos) << tail(daemon_->log());
  const std::string reply = submit("user@reload.test", "refused");
  EXPECT_NE(reply.find("554 5.7.1"), std::string::npos) << reply;
}

// A file that does not load is refused with its diagnostics (file:line); the running
// configuration stays in force, and the daemon keeps running.
TEST_F(ReloadEndToEnd, ABrokenFileIsRefusedAndTheRunningConfigurationStays) {
  start(policy("may"));
  const std::string broken = replaced(original_, "level = \"may\"", "level = \"encrypt\"\nlevle = \"may\"");
  reload(broken, "reload refused");
  const std::string log = daemon_->log();
  EXPECT_NE(log.find(instance_->config.string() + ":"), std::string::npos) << tail(log);  // the diagnostic names the file
  EXPECT_NE(log.find("levle"), std::string::npos) << tail(log);
  EXPECT_NE(log.find("the running configuration stays in force"), std::string::npos) << tail(log);
  EXPECT_EQ(log.find("reload done"), std::string::npos) << tail(log);
  // Still "may": the half-edited "encrypt" above did not apply.
  const std::string qid = testsupport::SmtpInjector::queued_as(submit("user@reload.test", "still-may"));
  ASSERT_EQ(qid.size(), 12u);
  EXPECT_EQ(status_of(qid), "sent") << tail(daemon_->log());
  EXPECT_TRUE(daemon_->running());
}

// Keys that need a restart are named in a warning and keep their running values: the listener
// stays on its port.
TEST_F(ReloadEndToEnd, ARestartOnlyChangeIsNamedAndTheListenerStays) {
  start(policy("may"));
  std::string next = replaced(original_, "127.0.0.1:" + std::to_string(instance_->relay_port),
                              "127.0.0.1:" + std::to_string(testsupport::free_port()));
  next = replaced(next, "query_timeout = \"5s\"", "query_timeout = \"3s\"");
  reload(next, "reload done");
  const std::string log = daemon_->log();
  EXPECT_NE(log.find("warning: reload: listeners"), std::string::npos) << tail(log);
  EXPECT_NE(log.find("warning: reload: dns changed but needs a restart; the running value stays in force"), std::string::npos)
      << tail(log);
  EXPECT_EQ(submit("user@reload.test", "same-port").substr(0, 3), "250");
}

}  // namespace
}  // namespace danerelay::relay::e2e
