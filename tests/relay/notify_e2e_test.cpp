// tests/relay/notify_e2e_test.cpp — `danerelay run` under a service manager of the test's own:
// NOTIFY_SOCKET names a datagram socket this test binds, WATCHDOG_USEC turns the watchdog on, and
// the test reads what the daemon says (sd_notify(3), relay/daemon/service_notify.hpp): a status
// while it is not ready, READY=1 only once the DNSSEC self-test passed, WATCHDOG=1 at half the
// interval, RELOADING=1 with MONOTONIC_USEC then READY=1 around SIGHUP, STOPPING=1 on SIGTERM.
// Every wait is bounded.
#include <gtest/gtest.h>

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <regex>

#include "tests/relay/relay_fixture.hpp"

namespace danerelay::relay::e2e {
namespace {

using namespace std::chrono_literals;

Shared* shared = nullptr;

// The notify socket: what systemd's end of sd_notify is.
class NotifySocket {
 public:
  explicit NotifySocket(const fs::path& path) : path_(path) {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    const std::string p = path.string();
    if (fd_ < 0 || p.size() >= sizeof addr.sun_path) throw std::runtime_error("notify socket");
    std::copy(p.begin(), p.end(), addr.sun_path);
    if (::bind(fd_, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) throw std::runtime_error("bind " + p);
  }
  ~NotifySocket() {
    if (fd_ >= 0) ::close(fd_);
  }
  NotifySocket(const NotifySocket&) = delete;
  NotifySocket& operator=(const NotifySocket&) = delete;

  // Datagrams until one contains `text` (returned last) or `timeout`; everything is kept in all().
  std::optional<std::string> wait_for(const std::string& text, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      for (std::size_t i = seen_; i < all_.size(); ++i) {
        if (all_[i].find(text) != std::string::npos) {
          seen_ = i + 1;
          return all_[i];
        }
      }
      seen_ = all_.size();
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return std::nullopt;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      char buf[4096];
      const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n > 0) all_.emplace_back(buf, static_cast<std::size_t>(n));
    }
  }
  [[nodiscard]] int count(const std::string& text) const {
    int n = 0;
    for (const auto& d : all_) n += d.find(text) != std::string::npos ? 1 : 0;
    return n;
  }
  [[nodiscard]] std::string dump() const {
    std::string out;
    for (const auto& d : all_) out += "[" + d + "]\n";
    return out;
  }

 private:
  fs::path path_;
  int fd_ = -1;
  std::vector<std::string> all_;
  std::size_t seen_ = 0;
};

class NotifyEndToEnd : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { shared = new Shared(); }
  static void TearDownTestSuite() {
    delete shared;
    shared = nullptr;
  }

  // `self_test_name`: the daemon's dns.self_test_name ("." passes; a bogus zone never does).
  void start(const std::string& self_test_name, const std::string& watchdog_usec) {
    static int counter = 0;
    const fs::path where = shared->dir.path() / ("n" + std::to_string(++counter));
    instance_ = std::make_unique<Instance>(*shared, where, "");
    std::string text = read_file(instance_->config);
    const auto dns = text.find("[dns]\n");
    ASSERT_NE(dns, std::string::npos);
    text.insert(dns + 6, "self_test_name = \"" + self_test_name + "\"\n");
    std::ofstream(instance_->config) << text;
    notify_ = std::make_unique<NotifySocket>(where / "notify.sock");
    ::setenv("NOTIFY_SOCKET", (where / "notify.sock").c_str(), 1);
    if (!watchdog_usec.empty()) ::setenv("WATCHDOG_USEC", watchdog_usec.c_str(), 1);
    daemon_ = std::make_unique<testsupport::Daemon>(DANERELAY_BINARY, instance_->config, instance_->log);
    ::unsetenv("NOTIFY_SOCKET");
    ::unsetenv("WATCHDOG_USEC");
    ASSERT_TRUE(daemon_->wait_listening("127.0.0.1", instance_->submission_port, 20s)) << daemon_->log();
  }

  void TearDown() override {
    if (daemon_ && daemon_->running()) {
      daemon_->signal(SIGTERM);
      EXPECT_EQ(daemon_->wait(20s), 0) << daemon_->log();
    }
    if (HasFailure() && notify_) std::cerr << "---- notify datagrams ----\n" << notify_->dump();
  }

  std::unique_ptr<Instance> instance_;
  std::unique_ptr<NotifySocket> notify_;
  std::unique_ptr<testsupport::Daemon> daemon_;
};

TEST_F(NotifyEndToEnd, ReadyOnlyAfterTheSelfTestThenWatchdogReloadAndStopping) {
  start(".", "400000");  // WatchdogSec=0.4s: a ping every 200 ms
  const auto waiting = notify_->wait_for("STATUS=not ready: waiting for the DNSSEC self-test", 10s);
  EXPECT_TRUE(waiting) << notify_->dump();
  const auto ready = notify_->wait_for("READY=1", 10s);
  ASSERT_TRUE(ready) << notify_->dump();
  // Listeners were up (wait_listening) and the self-test had passed when READY=1 came.
  EXPECT_NE(daemon_->log().find("DNSSEC self-test (. DNSKEY): validation works"), std::string::npos) << daemon_->log();
  EXPECT_EQ(*ready, "READY=1\nSTATUS=queue 0 messages; since start: 0 recipients delivered, 0 deferrals, 0 bounced");
  EXPECT_NE(daemon_->log().find("systemd watchdog every 200 ms"), std::string::npos) << daemon_->log();

  const int pings_before = notify_->count("WATCHDOG=1");
  std::this_thread::sleep_for(1100ms);
  (void)notify_->wait_for("no such datagram", 10ms);  // drain what arrived
  const int pings = notify_->count("WATCHDOG=1") - pings_before;
  EXPECT_GE(pings, 3) << notify_->dump();  // ~5 at 200 ms; a loaded machine may lose some
  EXPECT_LE(pings, 8) << notify_->dump();

  daemon_->signal(SIGHUP);
  const auto reloading = notify_->wait_for("RELOADING=1", 10s);
  ASSERT_TRUE(reloading) << notify_->dump();
  EXPECT_TRUE(std::regex_search(*reloading, std::regex("^RELOADING=1\nMONOTONIC_USEC=[0-9]+\n"))) << *reloading;
  EXPECT_TRUE(notify_->wait_for("READY=1", 10s)) << notify_->dump();

  daemon_->signal(SIGTERM);
  const auto stopping = notify_->wait_for("STOPPING=1", 10s);
  EXPECT_TRUE(stopping) << notify_->dump();
  EXPECT_EQ(daemon_->wait(20s), 0) << daemon_->log();
}

// A relay that cannot validate DNSSEC must not look healthy: no READY=1, and STATUS says why.
TEST_F(NotifyEndToEnd, NeverReadyWhileTheSelfTestFails) {
  start("bogus-ds.test", "");
  const auto why = notify_->wait_for("STATUS=not ready: DNSSEC self-test (bogus-ds.test DNSKEY)", 15s);
  EXPECT_TRUE(why) << notify_->dump() << daemon_->log();
  std::this_thread::sleep_for(500ms);
  (void)notify_->wait_for("no such datagram", 10ms);
  EXPECT_EQ(notify_->count("READY=1"), 0) << notify_->dump();
  EXPECT_EQ(notify_->count("WATCHDOG=1"), 0) << notify_->dump();  // no WATCHDOG_USEC, no pings
}

}  // namespace
}  // namespace danerelay::relay::e2e
