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

class JournalEndToEnd : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { shared = new Shared(); }
  static void TearDownTestSuite() {
    delete shared;
    shared = nullptr;
  }

  // The journal socket, in this process's own mount namespace (the daemon inherits it).
  void own_the_journal() {
    ASSERT_EQ(::unshare(CLONE_NEWNS), 0) << std::strerror(errno) << " (needs root, as CI has)";
    ASSERT_EQ(::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr), 0) << std::strerror(errno);
    ASSERT_EQ(::mount("tmpfs", "/run", "tmpfs", 0, "mode=0755"), 0) << std::strerror(errno);
    ASSERT_EQ(::mkdir("/run/systemd", 0755), 0);
    ASSERT_EQ(::mkdir("/run/systemd/journal", 0755), 0);
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ASSERT_GE(fd_, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strcpy(addr.sun_path, "/run/systemd/journal/socket");
    ASSERT_EQ(::bind(fd_, reinterpret_cast<const sockaddr*>(&addr), sizeof addr), 0) << std::strerror(errno);
    int big = 4 << 20;
    (void)::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
    // journald reads at once; so does this thread. (A datagram socket's queue is short: a reader
    // that waits makes the writer block, as a stalled journald would.)
    reader_ = std::thread([this] {
      std::array<char, 65536> buf{};
      while (!stop_) {
        pollfd p{fd_, POLLIN, 0};
        if (::poll(&p, 1, 50) <= 0) continue;
        const ssize_t n = ::recv(fd_, buf.data(), buf.size(), 0);
        if (n <= 0) continue;
        std::lock_guard lock(mutex_);
        entries_.push_back(parse_datagram(std::string_view(buf.data(), static_cast<std::size_t>(n))));
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
      std::cerr << "---- journal entries ----\n";
      for (const auto& e : entries_) std::cerr << short_line(e) << "\n";
    }
    if (fd_ >= 0) ::close(fd_);
  }

  // Reads datagrams until one's MESSAGE contains `text` or `limit` passes.
  bool wait_message(const std::string& text, std::chrono::milliseconds limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    for (;;) {
      {
        std::lock_guard lock(mutex_);
        for (const auto& e : entries_) {
          const auto m = e.find("MESSAGE");
          if (m != e.end() && m->second.find(text) != std::string::npos) return true;
        }
      }
      if (std::chrono::steady_clock::now() >= deadline) return false;
      std::this_thread::sleep_for(20ms);
    }
  }

  // As `journalctl -o short` prints an entry (the time is the receive time, the host fixed).
  std::string short_line(const Entry& e) const {
    std::time_t now = std::time(nullptr);
    std::tm tm{};
    localtime_r(&now, &tm);
    char stamp[32];
    std::strftime(stamp, sizeof stamp, "%b %d %H:%M:%S", &tm);
    const auto id = e.find("SYSLOG_IDENTIFIER");
    const auto msg = e.find("MESSAGE");
    return std::string(stamp) + " relayhost " + (id == e.end() ? std::string("?") : id->second) + "[" +
           std::to_string(daemon_ ? daemon_->pid() : 0) + "]: " + (msg == e.end() ? std::string() : msg->second);
  }

  std::string submit(const std::string& to, const std::string& subject) {
    testsupport::SmtpInjector c("127.0.0.1", instance_->relay_port);
    c.command("EHLO exchange.org.test");
    auto r = c.send("sender@danetta.test", {to},
                    "From: <sender@danetta.test>\r\nTo: <" + to + ">\r\nSubject: " + subject + "\r\nMessage-ID: <" + subject +
                        "@org.test>\r\n\r\njournal\r\n");
    c.quit();
    return r;
  }

  int fd_ = -1;
  std::thread reader_;
  std::atomic<bool> stop_{false};
  std::mutex mutex_;
  std::vector<Entry> entries_;
  std::unique_ptr<Instance> instance_;
  std::unique_ptr<testsupport::Daemon> daemon_;
};

TEST_F(JournalEndToEnd, PflogsummCountsWhatJournalctlShortPrintsAndTheFieldsAreThere) {
  auto mx = shared->sink("127.0.0.11", "mx.secure.test");
  auto mx6 = shared->sink("::1", "mx.secure.test");
  auto sender_mx = shared->sink("127.0.0.141", "mx.danetta.test");
  if (!(mx && mx6 && sender_mx)) GTEST_SKIP() << "cannot listen on port 25: run as root, as CI does";
  own_the_journal();
  if (HasFatalFailure()) return;
  instance_ = std::make_unique<Instance>(*shared, shared->dir.path() / "j1", "[log]\ntarget = \"journal\"\n");
  daemon_ = std::make_unique<testsupport::Daemon>(DANERELAY_BINARY, instance_->config, instance_->log);
  ASSERT_TRUE(daemon_->wait_listening("127.0.0.1", instance_->submission_port, 20s));
  ASSERT_TRUE(wait_message("daemon started", 10s));

  // One delivered, one deferred (bogus DNSSEC), one bounced (null MX, whose notice is delivered).
  for (const auto& [to, subject] : {std::pair{std::string("user@secure.test"), std::string("sent")},
                                    std::pair{std::string("user@bogus-ds.test"), std::string("deferred")},
                                    std::pair{std::string("user@nullmx.test"), std::string("bounced")}}) {
    ASSERT_EQ(submit(to, subject).substr(0, 3), "250");
  }
  ASSERT_TRUE(wait_message("to=<user@secure.test>", 20s));
  ASSERT_TRUE(wait_message("to=<user@bogus-ds.test>", 20s));
  ASSERT_TRUE(wait_message("to=<sender@danetta.test>", 20s));  // the bounce's notice, delivered
  daemon_->signal(SIGTERM);
  ASSERT_EQ(daemon_->wait(20s), 0);
  ASSERT_TRUE(wait_message("stopped; spool", 5s));
  stop_reader();

  // Nothing went to stderr: the journal has every line.
  EXPECT_EQ(daemon_->log(), "");

  // The fields of the delivery lines.
  int sent = 0;
  for (const auto& e : entries_) {
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
    for (const auto& e : entries_) out << short_line(e) << "\n";
  }
  const std::string cmd = "pflogsumm --syslog-name=danerelay " + file.string() + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::map<std::string, int> totals;
  std::array<char, 512> buf{};
  const std::regex row(R"(^\s+(\d+)\s+(delivered|deferred|bounced)\b)");
  while (std::fgets(buf.data(), buf.size(), p) != nullptr) {
    std::cmatch m;
    if (std::regex_search(buf.data(), m, row) && !totals.contains(m[2].str())) totals[m[2].str()] = std::stoi(m[1].str());
  }
  pclose(p);
  EXPECT_EQ(totals["delivered"], 2);  // user@secure.test and the notice to sender@danetta.test
  EXPECT_EQ(totals["deferred"], 1);
  EXPECT_EQ(totals["bounced"], 1);
}

// `log.target = "syslog"`: syslog(3) datagrams on /dev/log, a socket of the test's own in a private
// /dev (a tmpfs with the real null, zero, random and urandom bound in), written out as rsyslog
// writes them ("<PRI>" off, the host name after the time stamp) and counted by pflogsumm.
TEST_F(JournalEndToEnd, SyslogTargetWritesClassicLinesPflogsummCounts) {
  auto mx = shared->sink("127.0.0.11", "mx.secure.test");
  auto mx6 = shared->sink("::1", "mx.secure.test");
  auto sender_mx = shared->sink("127.0.0.141", "mx.danetta.test");
  if (!(mx && mx6 && sender_mx)) GTEST_SKIP() << "cannot listen on port 25: run as root, as CI does";
  ASSERT_EQ(::unshare(CLONE_NEWNS), 0) << std::strerror(errno) << " (needs root, as CI has)";
  ASSERT_EQ(::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr), 0) << std::strerror(errno);
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
  fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd_, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strcpy(addr.sun_path, "/dev/log");
  ASSERT_EQ(::bind(fd_, reinterpret_cast<const sockaddr*>(&addr), sizeof addr), 0) << std::strerror(errno);
  std::vector<std::string> lines;
  std::mutex lines_mutex;
  std::atomic<bool> stop{false};
  std::thread reader([&] {
    std::array<char, 65536> buf{};
    while (!stop) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      const ssize_t n = ::recv(fd_, buf.data(), buf.size(), 0);
      if (n <= 0) continue;
      std::lock_guard lock(lines_mutex);
      lines.emplace_back(buf.data(), static_cast<std::size_t>(n));
    }
  });
  const auto wait_line = [&](const std::string& text, std::chrono::milliseconds limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    for (;;) {
      {
        std::lock_guard lock(lines_mutex);
        for (const auto& l : lines) {
          if (l.find(text) != std::string::npos) return true;
        }
      }
      if (std::chrono::steady_clock::now() >= deadline) return false;
      std::this_thread::sleep_for(20ms);
    }
  };

  instance_ = std::make_unique<Instance>(*shared, shared->dir.path() / "s1", "[log]\ntarget = \"syslog\"\n");
  daemon_ = std::make_unique<testsupport::Daemon>(DANERELAY_BINARY, instance_->config, instance_->log);
  EXPECT_TRUE(daemon_->wait_listening("127.0.0.1", instance_->submission_port, 20s));
  EXPECT_TRUE(wait_line("daemon started", 10s));
  for (const auto& to : {std::string("user@secure.test"), std::string("user@bogus-ds.test"), std::string("user@nullmx.test")}) {
    EXPECT_EQ(submit(to, "syslog").substr(0, 3), "250");
  }
  EXPECT_TRUE(wait_line("to=<user@secure.test>", 20s));
  EXPECT_TRUE(wait_line("to=<user@bogus-ds.test>", 20s));
  EXPECT_TRUE(wait_line("to=<sender@danetta.test>", 20s));
  daemon_->signal(SIGTERM);
  EXPECT_EQ(daemon_->wait(20s), 0);
  EXPECT_TRUE(wait_line("stopped; spool", 5s));
  stop = true;
  reader.join();
  const pid_t pid = daemon_->pid();
  daemon_.reset();
  EXPECT_EQ(read_file(instance_->log), "") << "nothing on stderr";

  // "<22>Dec  3 12:00:00 danerelay/smtp[PID]: QID: to=…": facility mail (2), severity info (6).
  const std::regex shape(R"(^<(\d+)>([A-Z][a-z]{2} [ 0-9]\d \d\d:\d\d:\d\d) (danerelay/[a-z]+)\[(\d+)\]: (.*)$)");
  const fs::path file = instance_->dir / "syslog.log";
  {
    std::ofstream out(file);
    for (const auto& l : lines) {
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
  const std::string cmd = "pflogsumm --syslog-name=danerelay " + file.string() + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::map<std::string, int> totals;
  std::array<char, 512> buf{};
  const std::regex row(R"(^\s+(\d+)\s+(delivered|deferred|bounced)\b)");
  while (std::fgets(buf.data(), buf.size(), p) != nullptr) {
    std::cmatch m;
    if (std::regex_search(buf.data(), m, row) && !totals.contains(m[2].str())) totals[m[2].str()] = std::stoi(m[1].str());
  }
  pclose(p);
  EXPECT_EQ(totals["delivered"], 2);
  EXPECT_EQ(totals["deferred"], 1);
  EXPECT_EQ(totals["bounced"], 1);
}

}  // namespace
}  // namespace danerelay::relay::e2e
