// tests/relay/haproxy_e2e_test.cpp — scale-out behind a load balancer (issue 12 §4), end to end:
// Debian's haproxy on loopback, `mode tcp`, round robin over two `danerelay run` instances, each
// with its own state directory (spool, control socket) and the same certificates, writing a PROXY
// v2 header to each connection (`send-proxy-v2`). The instances' "lb" listener accepts PROXY
// headers from haproxy only (proxy_from = 127.0.0.1, where haproxy connects from) and lets
// 127.0.0.2 relay, not 127.0.0.1 (haproxy itself) nor 127.0.0.3.
//
// What it checks: the allow-list decision follows the client haproxy saw (127.0.0.2 gets 250 and
// its message is delivered, 127.0.0.3 gets 554 5.7.1), both instances took connections, and the
// log lines and the delivered Received: field name 127.0.0.2 / 127.0.0.3, never haproxy's address;
// haproxy's own health checks (option smtpchk, a LOCAL header) are sessions of the balancer.
// The haproxy configuration written here is the README's snippet ("Scale-out behind a load
// balancer"). haproxy missing is a failure, not a skip (scripts/install-deps.sh installs it).
//
// Bounded: haproxy's listening socket is awaited in /proc/net/tcp (a probe connection would be
// proxied to an instance and show up in its log as a client 127.0.0.1), every other wait is a
// Daemon or SmtpInjector bound.
#include <unistd.h>

#include <gtest/gtest.h>

#include <csignal>
#include <cstdio>
#include <fstream>
#include <regex>
#include <thread>

#include "tests/relay/relay_fixture.hpp"

namespace danerelay::relay::e2e {
namespace {

using namespace std::chrono_literals;

Shared* shared = nullptr;

// The haproxy binary: PATH first, then Debian's /usr/sbin (not in a non-root PATH).
std::string haproxy_binary() {
  for (const char* candidate : {"/usr/sbin/haproxy", "/usr/bin/haproxy", "/usr/local/sbin/haproxy"}) {
    if (::access(candidate, X_OK) == 0) return candidate;
  }
  return {};
}

// True once something listens on 127.0.0.1:port (an IPv4 LISTEN row in /proc/net/tcp), false
// after `timeout`. Reads the table instead of connecting: see the file comment.
bool listening(std::uint16_t port, std::chrono::milliseconds timeout) {
  char local[32];
  std::snprintf(local, sizeof local, "0100007F:%04X", port);
  for (auto end = std::chrono::steady_clock::now() + timeout; std::chrono::steady_clock::now() < end;) {
    std::ifstream table("/proc/net/tcp");
    std::string line;
    while (std::getline(table, line)) {
      std::istringstream fields(line);
      std::string slot, address, remote, state;
      fields >> slot >> address >> remote >> state;
      if (address == local && state == "0A") return true;
    }
    std::this_thread::sleep_for(20ms);
  }
  return false;
}

// The lines of `log` that contain `text`.
int count(const std::string& log, const std::string& text) {
  int n = 0;
  for (auto at = log.find(text); at != std::string::npos; at = log.find(text, at + text.size())) ++n;
  return n;
}

class HaproxyEndToEnd : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { shared = new Shared(); }
  static void TearDownTestSuite() {
    delete shared;
    shared = nullptr;
  }

  void TearDown() override {
    if (haproxy_) {
      haproxy_->signal(SIGTERM);
      (void)haproxy_->wait(10s);
      if (HasFailure()) std::cerr << "---- haproxy log ----\n" << haproxy_->log();
    }
    for (std::size_t i = 0; i < daemons_.size(); ++i) {
      daemons_[i]->signal(SIGTERM);
      EXPECT_EQ(daemons_[i]->wait(20s), 0) << daemons_[i]->log();
      if (HasFailure()) {
        const std::string log = daemons_[i]->log();
        std::cerr << "---- instance " << i << " log (last 8 KB) ----\n" << (log.size() > 8192 ? log.substr(log.size() - 8192) : log);
      }
    }
  }

  // One instance: the fixture's listeners plus "lb" behind haproxy, mail for lb.test to the sink.
  void start_instance(std::uint16_t lb_port) {
    const std::string extra = "[[listener]]\nname = \"lb\"\naddress = \"127.0.0.1:" + std::to_string(lb_port) +
                              "\"\ntls = \"starttls\"\nauth = \"none\"\nallow_networks = [\"127.0.0.2/32\"]\n"
                              "proxy_protocol = true\nproxy_from = [\"127.0.0.1/32\"]\n\n"
                              "[policy.destination.\"lb.test\"]\nlevel = \"may\"\nnexthop = \"[127.0.0.1]:" +
                              std::to_string(sink_->port()) + "\"\n";
    instances_.push_back(std::make_unique<Instance>(*shared, shared->dir.path() / ("h" + std::to_string(++counter_)), extra));
    const Instance& in = *instances_.back();
    daemons_.push_back(std::make_unique<testsupport::Daemon>(DANERELAY_BINARY, in.config, in.log));
    ASSERT_TRUE(daemons_.back()->wait_listening("127.0.0.1", in.submission_port, 20s)) << daemons_.back()->log();
    ASSERT_TRUE(daemons_.back()->wait_log("listener lb on 127.0.0.1:" + std::to_string(lb_port), 10s)) << daemons_.back()->log();
  }

  // haproxy in front of the instances' "lb" listeners; returns the frontend port.
  std::uint16_t start_haproxy(const std::vector<std::uint16_t>& backends) {
    const std::string binary = haproxy_binary();
    EXPECT_FALSE(binary.empty()) << "haproxy is not installed (scripts/install-deps.sh installs it); this test "
                                    "must run, so it fails instead of skipping";
    if (binary.empty()) return 0;
    const std::uint16_t port = testsupport::free_port();
    const fs::path dir = shared->dir.path() / ("haproxy" + std::to_string(++counter_));
    fs::create_directories(dir);
    std::ostringstream cfg;
    cfg << "global\n    nbthread 1\n\n"
        << "defaults\n    mode tcp\n    timeout connect 5s\n    timeout client 10m\n    timeout server 10m\n\n"
        << "frontend smtp\n    bind 127.0.0.1:" << port << "\n    default_backend relays\n\n"
        << "backend relays\n    balance roundrobin\n    option smtpchk\n";
    char name = 'a';
    for (const auto backend : backends) {
      cfg << "    server " << name++ << " 127.0.0.1:" << backend << " check send-proxy-v2\n";
    }
    const fs::path file = dir / "haproxy.cfg";
    std::ofstream(file) << cfg.str();
    haproxy_ = std::make_unique<testsupport::Daemon>(std::vector<std::string>{binary, "-db", "-f", file.string()},
                                                     dir / "haproxy.log");
    EXPECT_TRUE(listening(port, 10s)) << haproxy_->log();
    return port;
  }

  // One message through haproxy from `source`; the reply to the final "." (or the failing one).
  static std::string submit(std::uint16_t port, const std::string& source, const std::string& subject) {
    testsupport::SmtpInjector c("127.0.0.1", port, 30s, false, source);
    EXPECT_EQ(c.greeting().substr(0, 4), "220 ") << c.greeting();
    c.command("EHLO exchange.org.test");
    auto r = c.send("sender@org.test", {"user@lb.test"},
                    "From: <sender@org.test>\r\nTo: <user@lb.test>\r\nSubject: " + subject + "\r\nMessage-ID: <" + subject +
                        "@org.test>\r\n\r\nbalanced\r\n");
    c.quit();
    return r;
  }

  std::unique_ptr<testsupport::SmtpSink> sink_;
  std::vector<std::unique_ptr<Instance>> instances_;
  std::vector<std::unique_ptr<testsupport::Daemon>> daemons_;
  std::unique_ptr<testsupport::Daemon> haproxy_;
  int counter_ = 0;
};

// Watched failing before the listeners read PROXY headers: every session began with the header's
// bytes as an unknown command, and the client was haproxy's 127.0.0.1.
TEST_F(HaproxyEndToEnd, RoundRobinOverTwoInstancesKeepsTheRealClient) {
  testsupport::SinkOptions o;
  o.starttls = false;
  sink_ = std::make_unique<testsupport::SmtpSink>(o);
  const std::uint16_t lb_a = testsupport::free_port();
  std::uint16_t lb_b = 0;
  do lb_b = testsupport::free_port();
  while (lb_b == lb_a);
  ASSERT_NO_FATAL_FAILURE(start_instance(lb_a));
  ASSERT_NO_FATAL_FAILURE(start_instance(lb_b));
  const std::uint16_t port = start_haproxy({lb_a, lb_b});
  ASSERT_NE(port, 0);
  ASSERT_FALSE(HasFailure());

  // Round robin alternates the instances, so two consecutive connections from each client reach
  // both instances, whichever instance haproxy starts with.
  std::vector<std::string> queued;
  for (int i = 0; i < 2; ++i) {
    const std::string reply = submit(port, "127.0.0.2", "allowed" + std::to_string(i));
    EXPECT_EQ(reply.substr(0, 24), "250 2.0.0 Ok: queued as ") << reply;
    queued.push_back(testsupport::SmtpInjector::queued_as(reply));
  }
  for (int i = 0; i < 2; ++i) {
    const std::string reply = submit(port, "127.0.0.3", "refused" + std::to_string(i));
    EXPECT_NE(reply.find("554 5.7.1 <user@lb.test>: Relay access denied"), std::string::npos) << reply;
  }

  // Both messages delivered, each with a Received: field naming 127.0.0.2.
  for (int i = 0; i < 500 && sink_->bodies() < 2; ++i) std::this_thread::sleep_for(20ms);  // ≤ 10 s
  const auto stats = sink_->stats();
  ASSERT_EQ(stats.bodies(), 2);
  for (const auto& t : stats.transactions) {
    if (!t.body) continue;
    EXPECT_NE(t.body->find("(unknown [127.0.0.2])"), std::string::npos) << *t.body;
    EXPECT_EQ(t.body->find("[127.0.0.1]"), std::string::npos) << *t.body;
  }

  // Each instance served one connection of each client (its own queue id among the accepted),
  // and named the real clients; haproxy's 127.0.0.1 is never the client on "lb".
  const std::regex lb_client(R"(client=unknown\[127\.0\.0\.2\])");
  int accepted_total = 0;
  for (std::size_t i = 0; i < daemons_.size(); ++i) {
    ASSERT_TRUE(daemons_[i]->wait_log("disconnect from unknown[127.0.0.3]", 10s)) << "instance " << i << " saw no 127.0.0.3";
    const std::string log = daemons_[i]->log();
    EXPECT_EQ(count(log, " connect from unknown[127.0.0.2]"), 1) << "instance " << i;
    EXPECT_EQ(count(log, " connect from unknown[127.0.0.3]"), 1) << "instance " << i;
    EXPECT_EQ(count(log, "NOQUEUE: reject: RCPT from unknown[127.0.0.3]: 554 5.7.1"), 1) << "instance " << i;
    EXPECT_EQ(count(log, "PROXY header"), 0) << "instance " << i << " refused a header";
    int accepted = 0;
    for (const auto& qid : queued) accepted += count(log, qid + ": client=unknown[127.0.0.2]");
    EXPECT_EQ(accepted, 1) << "instance " << i << " accepted " << accepted << " of the allowed messages";
    accepted_total += accepted;
    // haproxy's health checks (option smtpchk: HELO, QUIT) come with a LOCAL header: the balancer
    // is their client. They never send MAIL or RCPT.
    EXPECT_TRUE(daemons_[i]->wait_log("disconnect from unknown[127.0.0.1] helo=1", 10s)) << "instance " << i;
    EXPECT_EQ(count(log, "RCPT from unknown[127.0.0.1]"), 0) << "instance " << i;
    EXPECT_EQ(count(log, "client=unknown[127.0.0.1]"), 0) << "instance " << i;
  }
  EXPECT_EQ(accepted_total, 2);
}

}  // namespace
}  // namespace danerelay::relay::e2e
