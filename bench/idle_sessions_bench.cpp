// bench/idle_sessions_bench.cpp — what an idle inbound session costs the server in memory
// (issue 12 §3: 1,000 idle sessions at ≤ 64 KiB each).
//
// The real smtp::Server runs in this process on 127.0.0.1 (one io_context thread, no TLS, no
// reverse lookup), over a store that accepts nothing (the sessions never reach DATA). A forked
// child opens N connections with blocking POSIX sockets; each reads the 220 greeting, sends EHLO,
// reads the whole 250 reply, then stays open and silent. So the server holds N sessions parked
// in their next command read — the state a relay is in with many slow or idle clients. The
// child's memory is its own (a separate process), so the figures are the server's alone:
//   RSS      VmRSS from /proc/self/status
//   private  Private_Clean + Private_Dirty from /proc/self/smaps_rollup (pages no other process shares)
// each read before the child connects and once it has N sessions past EHLO, printed as a
// difference and per session. What the kernel holds per socket (buffers) is not in either.
//
//   idle_sessions_bench [--sessions N] [--in-data]      (default 1000; raises RLIMIT_NOFILE to fit)
//
// --in-data: 1,000 messages IN FLIGHT instead (issue 12 §3, RSS with 1,000 in flight ≤ 64 MiB):
// the store is the real Spool in a fresh directory under /tmp; each client goes on past EHLO with
// MAIL, RCPT, DATA and 4 KiB of body, never the final dot, then stays silent. The server holds N
// sessions mid-DATA, each with its spool writer and buffered body — a relay whose clients all
// stall in the middle of a message.
// Bounded: every socket has a 10 s send/receive timeout, the parent waits at most 120 s for the
// child, and the child exits when the parent closes the control pipe (or after 120 s).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <spdlog/sinks/null_sink.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "relay/queue/spool.hpp"
#include "smtp/server.hpp"

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"  // false positive on coroutine frames (g++ 12)
#endif

namespace {

namespace asio = boost::asio;
using namespace danerelay;

// Nothing gets this far in the bench; a session that tried would see a full disk.
class NoStore final : public smtp::MessageStore {
 public:
  bool has_space(std::uint64_t) override { return false; }
  std::unique_ptr<smtp::MessageSink> begin() override { return nullptr; }
};

// --in-data: the real Spool's writers; nothing is ever committed (no client sends the final dot).
class SpoolStore final : public smtp::MessageStore {
 public:
  explicit SpoolStore(relay::Spool& spool) : spool_(spool) {}
  bool has_space(std::uint64_t size) override { return spool_.has_space(size); }
  std::unique_ptr<smtp::MessageSink> begin() override { return std::make_unique<Sink>(spool_.begin()); }

 private:
  class Sink final : public smtp::MessageSink {
   public:
    explicit Sink(std::unique_ptr<relay::Spool::Writer> w) : writer_(std::move(w)), id_(writer_->id().str()) {}
    [[nodiscard]] const std::string& queue_id() const noexcept override { return id_; }
    void write(std::string_view bytes) override { writer_->write(bytes); }
    asio::awaitable<smtp::CommitResult> commit(smtp::InboundEnvelope) override {
      co_return smtp::CommitResult{false, "the bench commits nothing"};
    }

   private:
    std::unique_ptr<relay::Spool::Writer> writer_;
    std::string id_;
  };
  relay::Spool& spool_;
};

struct Memory {
  long rss_kib = 0;
  long private_kib = 0;
};

long field_kib(const char* path, const char* name) {
  std::ifstream in(path);
  long total = 0;
  const std::string want = std::string(name) + ":";
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(want, 0) == 0) total += std::strtol(line.c_str() + want.size(), nullptr, 10);
  }
  return total;
}

Memory memory_now() {
  Memory m;
  m.rss_kib = field_kib("/proc/self/status", "VmRSS");
  m.private_kib = field_kib("/proc/self/smaps_rollup", "Private_Clean") + field_kib("/proc/self/smaps_rollup", "Private_Dirty");
  return m;
}

// The child's client: connect, 220, EHLO, the full 250 reply; with `in_data` also MAIL, RCPT,
// DATA (354) and 4 KiB of body without the final dot. False on any failure.
bool open_idle_session(int fd, std::uint16_t port, bool in_data) {
  timeval tv{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) return false;
  std::string in;
  // Reads until a line "NNN <text>\r\n" (the last line of a reply) is complete and checks that
  // the reply's code starts with `expect`; bounded.
  auto read_reply = [&](char expect) -> bool {
    for (int i = 0; i < 64; ++i) {
      for (std::size_t start = 0;;) {
        const auto lf = in.find("\r\n", start);
        if (lf == std::string::npos) break;
        if (lf - start >= 4 && in[start + 3] == ' ') {
          const bool ok = in[start] == expect;
          in.erase(0, lf + 2);
          return ok;
        }
        start = lf + 2;
      }
      char buf[1024];
      const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) return false;
      in.append(buf, static_cast<std::size_t>(n));
    }
    return false;
  };
  auto send_all = [&](const std::string& bytes) {
    return ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(bytes.size());
  };
  if (!read_reply('2') || !send_all("EHLO idle.bench.test\r\n") || !read_reply('2')) return false;
  if (!in_data) return true;
  if (!send_all("MAIL FROM:<sender@bench.test>\r\n") || !read_reply('2')) return false;
  if (!send_all("RCPT TO:<rcpt@secure.test>\r\n") || !read_reply('2')) return false;
  if (!send_all("DATA\r\n") || !read_reply('3')) return false;
  std::string body = "Subject: in flight\r\n\r\n";
  while (body.size() < 4096) body += std::string(76, 'x') + "\r\n";
  return send_all(body);  // no final dot: the message stays in flight
}

void raise_nofile(rlim_t want) {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return;
  if (rl.rlim_cur >= want) return;
  rl.rlim_cur = std::min(want, rl.rlim_max);
  if (setrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur < want) {
    std::fprintf(stderr, "warning: RLIMIT_NOFILE is %lu, fewer than the %lu descriptors wanted\n",
                 static_cast<unsigned long>(rl.rlim_cur), static_cast<unsigned long>(want));
  }
}

}  // namespace

int main(int argc, char** argv) {
  int sessions = 1000;
  bool in_data = false;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--sessions") == 0 && i + 1 < argc) {
      sessions = std::atoi(argv[++i]);
    } else if (std::strcmp(argv[i], "--in-data") == 0) {
      in_data = true;
    } else {
      std::fprintf(stderr, "usage: %s [--sessions N] [--in-data]\n", argv[0]);
      return 2;
    }
  }
  if (sessions < 1 || sessions > 100000) {
    std::fprintf(stderr, "--sessions: 1..100000\n");
    return 2;
  }
  raise_nofile(static_cast<rlim_t>(sessions) + 64);  // the server's N, the child's N (its own table), spare

  asio::io_context io(1);
  NoStore no_store;
  std::unique_ptr<relay::Spool> spool;
  std::unique_ptr<SpoolStore> spool_store;
  std::filesystem::path spool_dir;
  if (in_data) {
    char tmpl[] = "/tmp/danerelay-inflight-XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) {
      std::perror("mkdtemp");
      return 1;
    }
    spool_dir = tmpl;
    relay::SpoolOptions so;
    so.directory = spool_dir / "spool";
    spool = std::make_unique<relay::Spool>(io.get_executor(), so);
    spool_store = std::make_unique<SpoolStore>(*spool);
  }
  smtp::MessageStore& store = in_data ? static_cast<smtp::MessageStore&>(*spool_store) : no_store;
  smtp::ServerSettings s;
  s.listener.name = "bench";
  s.listener.address = config::Endpoint{"127.0.0.1", 0};
  s.listener.tls = config::Listener::Tls::none;
  s.listener.allow_networks = {*config::Cidr::parse("127.0.0.0/8")};  // --in-data: RCPT may relay
  s.limits.max_connections = static_cast<std::uint32_t>(sessions) + 16;
  s.limits.max_connections_per_client = static_cast<std::uint32_t>(sessions) + 16;
  s.hostname = "relay.bench.test";
  s.reverse_lookup = false;
  s.log = std::make_shared<spdlog::logger>("idle-bench", std::make_shared<spdlog::sinks::null_sink_mt>());
  smtp::Server server(io.get_executor(), std::move(s), store);
  server.start();
  const std::uint16_t port = server.local_endpoint().port();
  auto guard = asio::make_work_guard(io);
  std::thread io_thread([&] { io.run(); });

  // Warm up: one session through EHLO and out, so that the first-use costs (the logger's
  // formatting buffers, the allocator's arena for the io thread) are not counted per session.
  {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || !open_idle_session(fd, port, in_data)) {
      std::fprintf(stderr, "warm-up session failed\n");
      io.stop();
      io_thread.join();
      return 1;
    }
    ::close(fd);
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }

  int ready[2];
  int release[2];
  if (pipe(ready) != 0 || pipe(release) != 0) return 1;
  const Memory before = memory_now();
  const auto t0 = std::chrono::steady_clock::now();
  const pid_t pid = fork();
  if (pid == 0) {
    ::close(ready[0]);
    ::close(release[1]);
    std::vector<int> fds;
    int opened = 0;
    for (int i = 0; i < sessions; ++i) {
      const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
      if (fd < 0) break;
      fds.push_back(fd);
      if (!open_idle_session(fd, port, in_data)) break;
      ++opened;
    }
    (void)!::write(ready[1], &opened, sizeof opened);
    pollfd p{release[0], POLLIN, 0};
    (void)::poll(&p, 1, 120 * 1000);  // until the parent has measured (it closes the pipe)
    for (int fd : fds) ::close(fd);
    _exit(0);
  }
  ::close(ready[1]);
  ::close(release[0]);
  int opened = 0;
  pollfd p{ready[0], POLLIN, 0};
  if (::poll(&p, 1, 120 * 1000) != 1 || ::read(ready[0], &opened, sizeof opened) != sizeof opened) opened = -1;
  const double open_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  // The last EHLO reply was sent before the server parked the session in its next read; give the
  // io thread a moment to get there.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const Memory during = memory_now();
  ::close(release[1]);
  int st = 0;
  waitpid(pid, &st, 0);
  // The sessions see EOF and end; then the memory they held (what stays mapped is the allocator's).
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  const Memory after = memory_now();
  server.stop();
  guard.reset();
  io.stop();
  io_thread.join();
  spool_store.reset();
  spool.reset();
  if (!spool_dir.empty()) std::filesystem::remove_all(spool_dir);

  if (opened != sessions) {
    std::fprintf(stderr, "only %d of %d sessions opened\n", opened, sessions);
    return 1;
  }
  const double n = sessions;
  if (in_data) {
    std::printf("== messages in flight: %d sessions mid-DATA with 4 KiB of body each, over the real Spool, opened in %.2f s (plain TCP, no reverse lookup)\n",
                sessions, open_s);
  } else {
    std::printf("== idle inbound sessions: %d past EHLO, opened in %.2f s (plain TCP, no reverse lookup)\n", sessions, open_s);
  }
  std::printf("%-10s %12s %12s %12s %16s\n", "memory", "before KiB", in_data ? "held KiB" : "idle KiB", "closed KiB", "KiB per session");
  std::printf("%-10s %12ld %12ld %12ld %16.1f\n", "RSS", before.rss_kib, during.rss_kib, after.rss_kib,
              static_cast<double>(during.rss_kib - before.rss_kib) / n);
  std::printf("%-10s %12ld %12ld %12ld %16.1f\n", "private", before.private_kib, during.private_kib, after.private_kib,
              static_cast<double>(during.private_kib - before.private_kib) / n);
  return 0;
}
