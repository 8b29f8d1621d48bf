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
//   idle_sessions_bench [--sessions N]      (default 1000; raises RLIMIT_NOFILE to fit)
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
#include <fstream>
#include <future>
#include <string>
#include <thread>
#include <vector>

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

// The child's client: connect, 220, EHLO, the full 250 reply. False on any failure.
bool open_idle_session(int fd, std::uint16_t port) {
  timeval tv{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) return false;
  std::string in;
  // Reads until a line "NNN <text>\r\n" (the last line of a reply) is complete; bounded.
  auto read_reply = [&]() -> bool {
    for (int i = 0; i < 64; ++i) {
      for (std::size_t start = 0;;) {
        const auto lf = in.find("\r\n", start);
        if (lf == std::string::npos) break;
        if (lf - start >= 4 && in[start + 3] == ' ') {
          in.erase(0, lf + 2);
          return true;
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
  if (!read_reply()) return false;
  const std::string ehlo = "EHLO idle.bench.test\r\n";
  if (::send(fd, ehlo.data(), ehlo.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(ehlo.size())) return false;
  return read_reply();
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
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--sessions") == 0 && i + 1 < argc) {
      sessions = std::atoi(argv[++i]);
    } else {
      std::fprintf(stderr, "usage: %s [--sessions N]\n", argv[0]);
      return 2;
    }
  }
  if (sessions < 1 || sessions > 100000) {
    std::fprintf(stderr, "--sessions: 1..100000\n");
    return 2;
  }
  raise_nofile(static_cast<rlim_t>(sessions) + 64);  // the server's N, the child's N (its own table), spare

  asio::io_context io(1);
  NoStore store;
  smtp::ServerSettings s;
  s.listener.name = "bench";
  s.listener.address = config::Endpoint{"127.0.0.1", 0};
  s.listener.tls = config::Listener::Tls::none;
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
    if (fd < 0 || !open_idle_session(fd, port)) {
      std::fprintf(stderr, "warm-up session failed\n");
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
      if (!open_idle_session(fd, port)) break;
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

  if (opened != sessions) {
    std::fprintf(stderr, "only %d of %d sessions opened\n", opened, sessions);
    return 1;
  }
  const double n = sessions;
  std::printf("== idle inbound sessions: %d past EHLO, opened in %.2f s (plain TCP, no reverse lookup)\n", sessions, open_s);
  std::printf("%-10s %12s %12s %12s %16s\n", "memory", "before KiB", "idle KiB", "closed KiB", "KiB per session");
  std::printf("%-10s %12ld %12ld %12ld %16.1f\n", "RSS", before.rss_kib, during.rss_kib, after.rss_kib,
              static_cast<double>(during.rss_kib - before.rss_kib) / n);
  std::printf("%-10s %12ld %12ld %12ld %16.1f\n", "private", before.private_kib, during.private_kib, after.private_kib,
              static_cast<double>(during.private_kib - before.private_kib) / n);
  return 0;
}
