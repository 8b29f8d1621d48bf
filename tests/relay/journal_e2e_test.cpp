// tests/relay/journal_e2e_test.cpp — `log.target = "journal"` end to end: the daemon writes to
// journald's native socket, which this test owns. In a private mount namespace a tmpfs covers
// /run, and the test binds /run/systemd/journal/socket itself (no systemd runs in CI). It then
// renders each datagram as `journalctl -o short` prints an entry
// ("Mmm dd hh:mm:ss HOST SYSLOG_IDENTIFIER[PID]: MESSAGE") and runs Debian's pflogsumm over exactly
// that: no prefix of the test's own is added to the daemon's lines. It also checks the fields
// (identifier per service, priority, facility mail, queue id, recipient domain, DSN, status).
#include <gtest/gtest.h>

#include <poll.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <mutex>
#include <thread>
#include <csignal>
#include <cstring>
#include <ctime>
#include <map>
#include <regex>

#include "tests/relay/relay_fixture.hpp"

namespace danerelay::relay::e2e {
namespace {

using namespace std::chrono_literals;
using Entry = std::map<std::string, std::string>;

Shared* shared = nullptr;

// journald's native protocol (systemd.journal-fields(7), "Native Journal Protocol"): fields
// separated by '\n', each NAME=value, or NAME '\n' <le64 length> value '\n' for binary values.
Entry parse_datagram(std::string_view d) {
  Entry e;
  while (!d.empty()) {
    const auto nl = d.find('\n');
    const auto eq = d.find('=');
    if (eq != std::string_view::npos && (nl == std::string_view::npos || eq < nl)) {
      const auto end = nl == std::string_view::npos ? d.size() : nl;
      e[std::string(d.substr(0, eq))] = std::string(d.substr(eq + 1, end - eq - 1));
      d.remove_prefix(std::min(d.size(), end + 1));
    } else {
      if (nl == std::string_view::npos || d.size() < nl + 1 + 8) break;
      const std::string name(d.substr(0, nl));
      std::uint64_t len = 0;
      for (int i = 7; i >= 0; --i) len = (len << 8) | static_cast<unsigned char>(d[nl + 1 + static_cast<std::size_t>(i)]);
      const auto start = nl + 1 + 8;
      if (d.size() < start + len + 1) break;
      e[name] = std::string(d.substr(start, len));
      d.remove_prefix(start + len + 1);
    }
  }
  return e;
}

// Debian's pflogsumm over `file`: its "Grand Totals" delivered / deferred / bounced.
std::map<std::string, int> pflogsumm_totals(const fs::path& file) {
  std::map<std::string, int> totals;
  const std::string cmd = "pflogsumm --syslog-name=danerelay " + file.string() + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return totals;
  std::array<char, 512> buf{};
  const std::regex row(R"(^\s+(\d+)\s+(delivered|deferred|bounced)\b)");
  while (std::fgets(buf.data(), buf.size(), p) != nullptr) {
    std::cmatch m;
    if (std::regex_search(buf.data(), m, row) && !totals.contains(m[2].str())) totals[m[2].str()] = std::stoi(m[1].str());
  }
  pclose(p);
  return totals;
}

class JournalEndToEnd : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { shared = new Shared(); }
  static void TearDownTestSuite() {
    delete shared;
    shared = nullptr;
  }

  // Mounts from here on are this process's own (the daemon inherits them).
  static void private_mounts() {
    ASSERT_EQ(::unshare(CLONE_NEWNS), 0) << std::strerror(errno) << " (needs root, as CI has)";
    ASSERT_EQ(::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr), 0) << std::strerror(errno);
  }

  // Binds a datagram socket at `path` and reads it at once from a thread, as journald and syslogd
  // do. (A datagram socket's queue is short: a reader that waits makes the writer block, as a
  // stalled journald would.)
  void listen(const char* path) {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ASSERT_GE(fd_, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strcpy(addr.sun_path, path);
    ASSERT_EQ(::bind(fd_, reinterpret_cast<const sockaddr*>(&addr), sizeof addr), 0) << std::strerror(errno);
    int big = 4 << 20;
    (void)::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
    reader_ = std::thread([this] {
      std::array<char, 65536> buf{};
      while (!stop_) {
        pollfd p{fd_, POLLIN, 0};
        if (::poll(&p, 1, 50) <= 0) continue;
        const ssize_t n = ::recv(fd_, buf.data(), buf.size(), 0);
        if (n <= 0) continue;
        std::lock_guard lock(mutex_);
        datagrams_.emplace_back(buf.data(), static_cast<std::size_t>(n));
      }
    });
  }

  void stop_reader() {
    stop_ = true;
    if (reader_.joinable()) reader_.join();
  }

  void TearDown() override {
    if (daemon_) {
      daemon_->signal(SIGTERM);
      EXPECT_EQ(daemon_->wait(20s), 0);
    }
    stop_reader();
    if (HasFailure()) {
      std::cerr << "---- datagrams ----\n";
      for (const auto& d : datagrams_) std::cerr << d << "\n--\n";
    }
    if (fd_ >= 0) ::close(fd_);
  }

  // True once a datagram contains `text`, false after `limit`.
  bool wait_datagram(const std::string& text, std::chrono::milliseconds limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    for (;;) {
      {
        std::lock_guard lock(mutex_);
        for (const auto& d : datagrams_) {
          if (d.find(text) != std::string::npos) return true;
        }
      }
      if (std::chrono::steady_clock::now() >= deadline) return false;
      std::this_thread::sleep_for(20ms);
    }
  }

  // The daemon with `[log] target = TARGET`: one message delivered, one deferred (bogus DNSSEC),
  // one bounced (null MX, whose notice is delivered), then a clean stop. Returns its pid; the
  // datagrams are complete afterwards.
  pid_t run_the_mix(const std::string& target) {
    instance_ = std::make_unique<Instance>(*shared, shared->dir.path() / target, "[log]\ntarget = \"" + target + "\"\n");
    daemon_ = std::make_unique<testsupport::Daemon>(DANERELAY_BINARY, instance_->config, instance_->log);
    EXPECT_TRUE(daemon_->wait_listening("127.0.0.1", instance_->submission_port, 20s));
    EXPECT_TRUE(wait_datagram("daemon started", 10s));
    for (const auto& to : {std::string("user@secure.test"), std::string("user@bogus-ds.test"), std::string("user@nullmx.test")}) {
      EXPECT_EQ(submit(to).substr(0, 3), "250");
    }
    EXPECT_TRUE(wait_datagram("to=<user@secure.test>", 20s));
    EXPECT_TRUE(wait_datagram("to=<user@bogus-ds.test>", 20s));
    EXPECT_TRUE(wait_datagram("to=<sender@danetta.test>", 20s));  // the bounce's notice, delivered
    daemon_->signal(SIGTERM);
    EXPECT_EQ(daemon_->wait(20s), 0);
    EXPECT_TRUE(wait_datagram("stopped; spool", 5s));
    stop_reader();
    const pid_t pid = daemon_->pid();
    daemon_.reset();
    // Nothing went to stderr: the journal or syslog has every line.
    EXPECT_EQ(read_file(instance_->log), "");
    return pid;
  }

  std::string submit(const std::string& to) {
    testsupport::SmtpInjector c("127.0.0.1", instance_->relay_port);
    c.command("EHLO exchange.org.test");
    auto r = c.send("sender@danetta.test", {to},
                    "From: <sender@danetta.test>\r\nTo: <" + to + ">\r\nSubject: logging\r\n\r\nlogging\r\n");
    c.quit();
    return r;
  }

  bool have_sinks() {
    mx_ = shared->sink("127.0.0.11", "mx.secure.test");
    mx6_ = shared->sink("::1", "mx.secure.test");
    sender_mx_ = shared->sink("127.0.0.141", "mx.danetta.test");
    return mx_ && mx6_ && sender_mx_;
  }

  int fd_ = -1;
  std::thread reader_;
  std::atomic<bool> stop_{false};
  std::mutex mutex_;
  std::vector<std::string> datagrams_;
  std::unique_ptr<testsupport::SmtpSink> mx_, mx6_, sender_mx_;
  std::unique_ptr<Instance> instance_;
  std::unique_ptr<testsupport::Daemon> daemon_;
};

// As `journalctl -o short` prints an entry (the time is the receive time, the host fixed).
std::string short_line(const Entry& e, pid_t pid) {
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  localtime_r(&now, &tm);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%b %d %H:%M:%S", &tm);
  const auto id = e.find("SYSLOG_IDENTIFIER");
  const auto msg = e.find("MESSAGE");
  return std::string(stamp) + " relayhost " + (id == e.end() ? std::string("?") : id->second) + "[" + std::to_string(pid) +
         "]: " + (msg == e.end() ? std::string() : msg->second);
}

TEST_F(JournalEndToEnd, PflogsummCountsWhatJournalctlShortPrintsAndTheFieldsAreThere) {
  if (!have_sinks()) GTEST_SKIP() << "cannot listen on port 25: run as root, as CI does";
  private_mounts();
  if (HasFatalFailure()) return;
  // A tmpfs over /run holds the journal socket (no systemd runs in CI).
  ASSERT_EQ(::mount("tmpfs", "/run", "tmpfs", 0, "mode=0755"), 0) << std::strerror(errno);
  ASSERT_EQ(::mkdir("/run/systemd", 0755), 0);
  ASSERT_EQ(::mkdir("/run/systemd/journal", 0755), 0);
  listen("/run/systemd/journal/socket");
  if (HasFatalFailure()) return;
  const pid_t pid = run_the_mix("journal");

  std::vector<Entry> entries;
  for (const auto& d : datagrams_) entries.push_back(parse_datagram(d));
  int sent = 0;
  for (const auto& e : entries) {
    ASSERT_TRUE(e.contains("SYSLOG_IDENTIFIER") && e.contains("PRIORITY") && e.contains("MESSAGE"));
    EXPECT_EQ(e.at("SYSLOG_FACILITY"), "2");
    EXPECT_EQ(e.at("SYSLOG_IDENTIFIER").rfind("danerelay/", 0), 0u) << e.at("SYSLOG_IDENTIFIER");
    EXPECT_EQ(e.at("MESSAGE").find("danerelay/"), std::string::npos) << "journald adds the identifier: " << e.at("MESSAGE");
    const std::string& m = e.at("MESSAGE");
    if (m.find("to=<user@secure.test>") != std::string::npos) {
      ++sent;
      EXPECT_EQ(e.at("SYSLOG_IDENTIFIER"), "danerelay/smtp");
      EXPECT_EQ(e.at("PRIORITY"), "6");
      EXPECT_EQ(e.at("DANERELAY_RECIPIENT_DOMAIN"), "secure.test");
      EXPECT_EQ(e.at("DANERELAY_DSN"), "2.0.0");
      EXPECT_EQ(e.at("DANERELAY_STATUS"), "sent");
      EXPECT_EQ(e.at("DANERELAY_QUEUE_ID"), m.substr(0, 12));
    }
    if (m.find("to=<user@bogus-ds.test>") != std::string::npos) {
      EXPECT_EQ(e.at("DANERELAY_STATUS"), "deferred");
      EXPECT_EQ(e.at("DANERELAY_DSN"), "4.4.3");
    }
    if (m.find("to=<user@nullmx.test>") != std::string::npos) {
      EXPECT_EQ(e.at("DANERELAY_STATUS"), "bounced");
    }
  }
  EXPECT_EQ(sent, 1);

  // journalctl -o short, then pflogsumm, as an operator runs it.
  const fs::path file = instance_->dir / "journal-short.log";
  {
    std::ofstream out(file);
    for (const auto& e : entries) out << short_line(e, pid) << "\n";
  }
  auto totals = pflogsumm_totals(file);
  EXPECT_EQ(totals["delivered"], 2);  // user@secure.test and the notice to sender@danetta.test
  EXPECT_EQ(totals["deferred"], 1);
  EXPECT_EQ(totals["bounced"], 1);
}

// `log.target = "syslog"`: syslog(3) datagrams on /dev/log, a socket of the test's own in a private
// /dev (a tmpfs with the real null, zero, random and urandom bound in), written out as rsyslog
// writes them ("<PRI>" off, the host name after the time stamp) and counted by pflogsumm.
TEST_F(JournalEndToEnd, SyslogTargetWritesClassicLinesPflogsummCounts) {
  if (!have_sinks()) GTEST_SKIP() << "cannot listen on port 25: run as root, as CI does";
  private_mounts();
  if (HasFatalFailure()) return;
  // The real /dev stays reachable only while the four nodes are bound in, through a directory of
  // its own that is detached and removed with rmdir at once: the test's temporary directory is
  // deleted recursively at the end, and must never reach into the machine's /dev (it once did:
  // remove_all through a bind mount of /dev deletes the host's /dev entries).
  char old_dev_template[] = "/tmp/danerelay-old-dev-XXXXXX";
  ASSERT_NE(::mkdtemp(old_dev_template), nullptr) << std::strerror(errno);
  const std::string old_dev = old_dev_template;
  ASSERT_EQ(::mount("/dev", old_dev.c_str(), nullptr, MS_BIND, nullptr), 0) << std::strerror(errno);
  const int dev_tmpfs = ::mount("tmpfs", "/dev", "tmpfs", 0, "mode=0755");
  const int dev_tmpfs_errno = errno;
  bool nodes_ok = dev_tmpfs == 0;
  for (const char* node : {"null", "zero", "random", "urandom"}) {
    if (!nodes_ok) break;
    const std::string target = std::string("/dev/") + node;
    std::ofstream(target).close();
    nodes_ok = ::mount((old_dev + "/" + node).c_str(), target.c_str(), nullptr, MS_BIND, nullptr) == 0;
  }
  ASSERT_EQ(::umount2(old_dev.c_str(), MNT_DETACH), 0) << std::strerror(errno);
  ASSERT_EQ(::rmdir(old_dev.c_str()), 0) << std::strerror(errno);
  ASSERT_EQ(dev_tmpfs, 0) << std::strerror(dev_tmpfs_errno);
  ASSERT_TRUE(nodes_ok) << std::strerror(errno);
  listen("/dev/log");
  if (HasFatalFailure()) return;
  const pid_t pid = run_the_mix("syslog");

  // "<22>Dec  3 12:00:00 danerelay/smtp[PID]: QID: to=…": facility mail (2), severity info (6).
  const std::regex shape(R"(^<(\d+)>([A-Z][a-z]{2} [ 0-9]\d \d\d:\d\d:\d\d) (danerelay/[a-z]+)\[(\d+)\]: (.*)$)");
  const fs::path file = instance_->dir / "syslog.log";
  {
    std::ofstream out(file);
    for (const auto& l : datagrams_) {
      std::smatch m;
      ASSERT_TRUE(std::regex_match(l, m, shape)) << l;
      EXPECT_EQ(std::stoi(m[1].str()) >> 3, 2) << "facility mail: " << l;
      EXPECT_EQ(m[4].str(), std::to_string(pid)) << l;
      if (m[5].str().find("to=<user@secure.test>") != std::string::npos) {
        EXPECT_EQ(m[3].str(), "danerelay/smtp");
        EXPECT_EQ(std::stoi(m[1].str()), 2 * 8 + 6);
      }
      out << m[2].str() << " relayhost " << m[3].str() << "[" << m[4].str() << "]: " << m[5].str() << "\n";
    }
  }
  auto totals = pflogsumm_totals(file);
  EXPECT_EQ(totals["delivered"], 2);
  EXPECT_EQ(totals["deferred"], 1);
  EXPECT_EQ(totals["bounced"], 1);
}

}  // namespace
}  // namespace danerelay::relay::e2e
