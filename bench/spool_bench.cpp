// bench/spool_bench.cpp — what durable queueing costs on this disk, and what group commit buys.
//
//   spool_bench [DIR] [--messages N]
//
// Part 1 times five ways of making N 4 KiB messages durable, each ending with the message under
// its final name (except the journal, which has no per-message names):
//   serial        per message: create, write, fdatasync, rename, fsync dir (1 thread)
//   serial x8     the same in 8 threads (the kernel may merge their journal commits)
//   batch32       32 files written, sync_file_range each, fdatasync each, renames, ONE dir fsync
//                 (the scheme relay/queue/spool.cpp implements)
//   batch32 x8    the same, with the fdatasync calls issued from 8 threads at once (what the
//                 spool does since the sequential calls measured no better than serial here)
//   batch32+syncfs 32 files written and renamed, then one syncfs (flushes the whole file system,
//                 other processes' data included: not what a well-behaved daemon does)
//   journal       4 KiB records appended to one file, one fdatasync per 32 records
// Part 2 drives relay::Spool itself: C coroutines committing in a loop, C = 1, 10, 50, for 4 KiB
// and 100 KiB messages: commits/s, messages per flush round, p50/p99 commit latency, and CPU
// seconds (user+system, all threads) per 1,000 messages.
//
// DIR defaults to /var/tmp (a real disk; /tmp may be tmpfs, where flushes cost nothing). Work
// happens in DIR/spool_bench-PID, removed afterwards. Prints figures; asserts nothing.
#include "relay/queue/spool.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fmt/core.h>

#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

// g++ 12 false positive on coroutine frames (see smtp/client_session.cpp).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

namespace {

namespace asio = boost::asio;
namespace fs = std::filesystem;
using namespace danerelay;
using Steady = std::chrono::steady_clock;

[[noreturn]] void die(const std::string& what) { throw std::system_error(errno, std::generic_category(), what); }

void check(bool ok, const std::string& what) {
  if (!ok) die(what);
}

int open_dir(const fs::path& p) {
  const int fd = ::open(p.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  check(fd >= 0, "open " + p.string());
  return fd;
}

void write_all(int fd, const std::string& data) {
  std::size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    check(n > 0 || errno == EINTR, "write");
    if (n > 0) done += static_cast<std::size_t>(n);
  }
}

double seconds_since(Steady::time_point t0) { return std::chrono::duration<double>(Steady::now() - t0).count(); }

double cpu_seconds() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  auto tv = [](const timeval& t) { return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6; };
  return tv(u.ru_utime) + tv(u.ru_stime);
}

// A fresh tmp/ + msg/ pair for one raw strategy.
struct RawDirs {
  fs::path root;
  int tmp = -1, msg = -1;
  explicit RawDirs(const fs::path& r) : root(r) {
    fs::create_directories(root / "tmp");
    fs::create_directories(root / "msg");
    tmp = open_dir(root / "tmp");
    msg = open_dir(root / "msg");
  }
  ~RawDirs() {
    ::close(tmp);
    ::close(msg);
    std::error_code ec;
    fs::remove_all(root, ec);
  }
  RawDirs(const RawDirs&) = delete;
  RawDirs& operator=(const RawDirs&) = delete;
};

int create(int dir, const std::string& name) {
  const int fd = ::openat(dir, name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  check(fd >= 0, "create " + name);
  return fd;
}

void serial_range(RawDirs& d, int first, int last, const std::string& data) {
  for (int i = first; i < last; ++i) {
    const std::string name = std::to_string(i);
    const int fd = create(d.tmp, name);
    write_all(fd, data);
    check(::fdatasync(fd) == 0, "fdatasync");
    ::close(fd);
    check(::renameat(d.tmp, name.c_str(), d.msg, name.c_str()) == 0, "rename");
    check(::fsync(d.msg) == 0, "fsync dir");
  }
}

void batched(RawDirs& d, int n, const std::string& data, bool use_syncfs, bool parallel = false) {
  constexpr int kBatch = 32;
  for (int first = 0; first < n; first += kBatch) {
    const int last = std::min(n, first + kBatch);
    std::vector<int> fds;
    for (int i = first; i < last; ++i) {
      fds.push_back(create(d.tmp, std::to_string(i)));
      write_all(fds.back(), data);
    }
    if (use_syncfs) {
      for (int i = first; i < last; ++i) {
        const std::string name = std::to_string(i);
        check(::renameat(d.tmp, name.c_str(), d.msg, name.c_str()) == 0, "rename");
      }
      check(::syncfs(d.msg) == 0, "syncfs");
    } else {
      for (int fd : fds) (void)::sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE);
      if (parallel) {
        std::vector<std::thread> threads;
        for (int t = 0; t < 8; ++t) {
          threads.emplace_back([&, t] {
            for (std::size_t k = static_cast<std::size_t>(t); k < fds.size(); k += 8) check(::fdatasync(fds[k]) == 0, "fdatasync");
          });
        }
        for (auto& th : threads) th.join();
      } else {
        for (int fd : fds) check(::fdatasync(fd) == 0, "fdatasync");
      }
      for (int i = first; i < last; ++i) {
        const std::string name = std::to_string(i);
        check(::renameat(d.tmp, name.c_str(), d.msg, name.c_str()) == 0, "rename");
      }
      check(::fsync(d.msg) == 0, "fsync dir");
    }
    for (int fd : fds) ::close(fd);
  }
}

void journal(RawDirs& d, int n, const std::string& data) {
  const int fd = create(d.msg, "journal");
  for (int i = 0; i < n; ++i) {
    write_all(fd, data);
    if ((i + 1) % 32 == 0 || i + 1 == n) check(::fdatasync(fd) == 0, "fdatasync");
  }
  // The file's creation must be durable too (once, not per record).
  check(::fsync(d.msg) == 0, "fsync dir");
  ::close(fd);
}

void raw_strategies(const fs::path& base, int n) {
  const std::string data(4096, 'x');
  fmt::print("Raw strategies, {} messages of 4 KiB each:\n", n);
  fmt::print("  {:<62} {:>10} {:>10}\n", "strategy", "msgs/s", "seconds");
  auto time = [&](const char* label, const std::function<void(RawDirs&)>& body) {
    RawDirs d(base / "raw");
    ::sync();  // start each from a quiet disk
    const auto t0 = Steady::now();
    body(d);
    const double s = seconds_since(t0);
    fmt::print("  {:<62} {:>10.0f} {:>10.2f}\n", label, n / s, s);
  };
  time("fsync per file, 1 writer (+rename, dir fsync each)", [&](RawDirs& d) { serial_range(d, 0, n, data); });
  time("fsync per file, 8 threads (+rename, dir fsync each)", [&](RawDirs& d) {
    std::vector<std::thread> threads;
    for (int t = 0; t < 8; ++t) threads.emplace_back([&, t] { serial_range(d, n * t / 8, n * (t + 1) / 8, data); });
    for (auto& th : threads) th.join();
  });
  time("batch 32: sync_file_range+fdatasync each, 1 dir fsync", [&](RawDirs& d) { batched(d, n, data, false); });
  time("batch 32: sync_file_range+fdatasync x8 threads, 1 dir fsync", [&](RawDirs& d) { batched(d, n, data, false, true); });
  time("batch 32: renames + one syncfs", [&](RawDirs& d) { batched(d, n, data, true); });
  time("append journal, one fdatasync per 32 records", [&](RawDirs& d) { journal(d, n, data); });
}

struct SpoolFigures {
  double seconds = 0;
  double cpu = 0;
  std::uint64_t rounds = 0;
  std::vector<double> latency_ms;
  int failures = 0;
};

SpoolFigures run_spool(const fs::path& dir, int n, int concurrency, std::size_t size) {
  SpoolFigures out;
  asio::io_context io;
  relay::SpoolOptions options;
  options.directory = dir;
  auto spool = std::make_unique<relay::Spool>(io.get_executor(), options);
  const std::string text(size, 'm');
  int started = 0;
  out.latency_ms.reserve(static_cast<std::size_t>(n));
  auto worker = [&]() -> asio::awaitable<void> {
    while (started < n) {
      ++started;
      auto writer = spool->begin();
      // As the SMTP server would: the body arrives in pieces.
      for (std::size_t at = 0; at < text.size(); at += 16384) writer->write(std::string_view(text).substr(at, 16384));
      relay::Envelope env;
      env.id = writer->id();
      env.sender = "bench@example.org";
      env.recipients.push_back(relay::Recipient{"rcpt@example.net", "", relay::notify_unset});
      const auto t0 = Steady::now();
      relay::SpoolResult r = co_await spool->commit(std::move(writer), env);
      out.latency_ms.push_back(seconds_since(t0) * 1000.0);
      if (!r.ok()) ++out.failures;
    }
  };
  const double cpu0 = cpu_seconds();
  const auto t0 = Steady::now();
  for (int c = 0; c < concurrency; ++c) asio::co_spawn(io, worker(), asio::detached);
  io.run();
  out.seconds = seconds_since(t0);
  out.cpu = cpu_seconds() - cpu0;
  out.rounds = spool->stats().flush_rounds;
  spool.reset();
  std::error_code ec;
  fs::remove_all(dir, ec);
  return out;
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<std::size_t>(p * static_cast<double>(v.size())))];
}

void spool_figures(const fs::path& base, int n) {
  fmt::print("\nrelay::Spool (group commit on one disk thread), {} commits per row:\n", n);
  fmt::print("  {:>8} {:>6} {:>10} {:>12} {:>10} {:>10} {:>16}\n", "size", "conc", "commits/s", "msgs/round", "p50 ms", "p99 ms", "CPU s/1000 msgs");
  for (std::size_t size : {std::size_t{4096}, std::size_t{100 * 1024}}) {
    for (int c : {1, 10, 50}) {
      ::sync();
      const auto f = run_spool(base / "spool", n, c, size);
      fmt::print("  {:>8} {:>6} {:>10.0f} {:>12.1f} {:>10.2f} {:>10.2f} {:>16.3f}{}\n", size == 4096 ? "4 KiB" : "100 KiB", c, n / f.seconds,
                 f.rounds == 0 ? 0.0 : static_cast<double>(n) / static_cast<double>(f.rounds), percentile(f.latency_ms, 0.50),
                 percentile(f.latency_ms, 0.99), f.cpu * 1000.0 / n, f.failures == 0 ? "" : fmt::format("  ({} failed)", f.failures));
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  fs::path dir = "/var/tmp";
  int n = 2000;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--messages" && i + 1 < argc) {
      n = std::max(1, std::atoi(argv[++i]));
    } else if (a == "-h" || a == "--help") {
      fmt::print("usage: spool_bench [DIR] [--messages N]   (default DIR /var/tmp, N 2000)\n");
      return 0;
    } else {
      dir = a;
    }
  }
  const fs::path base = dir / ("spool_bench-" + std::to_string(::getpid()));
  try {
    fs::create_directories(base);
    fmt::print("spool_bench: {} ({} CPUs)\n\n", base.string(), std::thread::hardware_concurrency());
    raw_strategies(base, n);
    spool_figures(base, n);
  } catch (const std::exception& e) {
    fmt::print(stderr, "spool_bench: {}\n", e.what());
    std::error_code ec;
    fs::remove_all(base, ec);
    return 1;
  }
  std::error_code ec;
  fs::remove_all(base, ec);
  return 0;
}
