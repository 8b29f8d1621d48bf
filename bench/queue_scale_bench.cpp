// bench/queue_scale_bench.cpp — what a large queue costs the queue manager: memory per deferred
// message, the time to build the index at a restart, and a destination's drain after an outage.
//
//   queue_scale_bench [--messages N[,N…]] [--dir DIR] [--live] [--restart] [--drain-limit S]
//
// Per N (default 20000,100000), in a fresh QueueManager on a real Spool under DIR (default
// /var/tmp; work in DIR/queue_scale_bench-PID, removed afterwards):
//   load     N messages as Spool::recover() hands them over after a restart, each deferred once
//            to one of 50 destinations (one recipient, a 4.4.1 "connection refused" reason,
//            remote MTA and diagnostic, the ones real deferrals repeat across thousands of
//            messages), given to QueueManager::load(): its wall time (the index build), and
//            VmRSS / smaps_rollup Rss and Private before and after, per message.
//   live     (--live) the same N enqueued as new mail whose first attempt defers (the attempt
//            saves each state file on DIR's disk): RSS per message once all have been tried.
//   drain    then all N are for one destination (drain.test) that has come back: `queue flush`,
//            deliveries through a real ConcurrencyLimiter (total 20, per destination 5) that
//            each take one event-loop turn; one message for other.test enqueued once the drain
//            is under way. Figures: CPU-s and wall time to drain, the most attempts in flight and
//            the most limiter waiters at once (a stampede shows as ≈N), the most concurrent
//            deliveries to drain.test (must be ≤ 5), and how many drain.test messages were
//            delivered before the other.test one. Bounded by --drain-limit seconds (default 120).
//   restart  (--restart) N real 4 KiB messages committed to a spool of their own under DIR, each
//            with a saved deferred state (as a queue looks after an outage), then what a daemon
//            start does before its listeners open (relay/daemon/daemon.cpp): a fresh Spool,
//            Spool::recover() (the scan: every msg/ and state/ file read and checked) and
//            QueueManager::load(). Timed with the files in the page cache and, as root, again
//            after dropping it (echo 3 > /proc/sys/vm/drop_caches: a cold boot's disk reads).
// Prints figures; asserts nothing. Messages in `load` have no spool files (the figures are the
// manager's memory, not the spool's); their removal after delivery logs nothing (logs off).
#include "relay/queue/queue_manager.hpp"

#include "relay/core/logging.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fmt/core.h>
#include <malloc.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

// g++ 12 false positive on coroutine frames (see smtp/client_session.cpp).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

namespace {

namespace asio = boost::asio;
namespace fs = std::filesystem;
using namespace danerelay;
using namespace danerelay::relay;
using Steady = std::chrono::steady_clock;

double cpu_seconds() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) + (u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

struct Memory {
  long rss_kib = 0;      // VmRSS
  long private_kib = 0;  // smaps_rollup Private_Clean + Private_Dirty
  std::size_t heap_in_use = 0;  // mallinfo2: bytes malloc handed out and not freed (no fragmentation)
};

long field_kib(const std::string& file, const std::string& name) {
  std::ifstream in(file);
  std::string key;
  long total = 0;
  while (in >> key) {
    long v = 0;
    if (key == name + ":" && (in >> v)) total += v;
    in.ignore(1 << 16, '\n');
  }
  return total;
}

Memory memory() {
  Memory m;
  m.rss_kib = field_kib("/proc/self/status", "VmRSS");
  m.private_kib = field_kib("/proc/self/smaps_rollup", "Private_Clean") + field_kib("/proc/self/smaps_rollup", "Private_Dirty");
  const struct mallinfo2 mi = mallinfo2();
  m.heap_in_use = mi.uordblks + mi.hblkhd;
  return m;
}

constexpr int kDomains = 50;

// What one deferral to `domain` leaves in a recipient's state (postfix-style texts).
void deferred_state(RecipientState& s, const std::string& domain, std::int64_t now_s) {
  s.status = RecipientStatus::pending;
  s.dsn = "4.4.1";
  s.reason = "connect to mx1." + domain + "[192.0.2.25]:25: Connection refused";
  s.remote_mta = "mx1." + domain;
  s.diagnostic = "";
  s.last_attempt = now_s;
}

QueuedMessage make_message(int i, const std::string& domain, const fs::path& spool) {
  QueuedMessage m;
  Envelope& e = m.envelope;
  e.sender = "invoices@billing.example.org";
  e.recipients.push_back(Recipient{fmt::format("customer{:06}@{}", i, domain), {}, notify_unset});
  e.size = 4096;
  e.body = spool / "msg" / e.id.str();
  e.body_offset = 0;
  m.state.recipients.resize(1);
  return m;
}

// Message i of a queue after an outage: to one of the kDomains destinations, deferred once, next
// attempt in an hour.
QueuedMessage deferred_message(std::size_t i, const fs::path& spool, std::int64_t now_s) {
  const std::string domain = fmt::format("dest{:02}.example", i % kDomains);
  QueuedMessage m = make_message(static_cast<int>(i), domain, spool);
  deferred_state(m.state.recipients[0], domain, now_s);
  m.state.attempts = 1;
  m.state.next_attempt = (now_s + 3600) * 1000;
  return m;
}

struct Phase {
  std::size_t n = 0;
  double seconds = 0;
  Memory before, after;
};

void print_memory(const char* what, const Phase& p) {
  const double per_rss = static_cast<double>(p.after.rss_kib - p.before.rss_kib) * 1024.0 / static_cast<double>(p.n);
  const double per_priv = static_cast<double>(p.after.private_kib - p.before.private_kib) * 1024.0 / static_cast<double>(p.n);
  const double per_heap = (static_cast<double>(p.after.heap_in_use) - static_cast<double>(p.before.heap_in_use)) /
                          static_cast<double>(p.n);
  fmt::print("  {:<6} N={:>7}  {:7.3f} s  RSS {:>7} → {:>7} KiB  {:7.0f} B/msg  private {:7.0f} B/msg  heap in use {:7.0f} B/msg\n",
             what, p.n, p.seconds, p.before.rss_kib, p.after.rss_kib, per_rss, per_priv, per_heap);
}

// Coroutines with by-value parameters (g++ 12 miscompiles coroutine lambdas' captures).
asio::awaitable<void> flush_all(QueueManager* qm) { (void)co_await qm->flush(std::nullopt); }
asio::awaitable<void> stop(QueueManager* qm) { co_await qm->shutdown(std::chrono::milliseconds(2000)); }

asio::awaitable<void> commit_one(Spool* spool, std::string text, Envelope env, MessageState state, std::size_t* done,
                                 std::size_t* failed) {
  SpoolResult r = co_await spool->commit(std::move(text), env);
  if (r.ok()) r = co_await spool->save(env.id, std::move(state));
  ++*(r.ok() ? done : failed);
}

// The restart phase (see the header): fills a spool, then times recover() + load() on it.
void restart(std::size_t n, const fs::path& dir, const config::Config& cfg) {
  const fs::path spool_dir = dir / fmt::format("restart-{}", n);
  const std::int64_t now_s = std::chrono::duration_cast<std::chrono::seconds>(Clock::now().time_since_epoch()).count();
  {
    asio::io_context io;
    SpoolOptions so;
    so.directory = spool_dir;
    Spool spool(io.get_executor(), so);
    std::string body = "From: <invoices@billing.example.org>\r\nSubject: invoice\r\n\r\n";
    while (body.size() < 4096) body += std::string(76, 'x') + "\r\n";
    std::size_t done = 0, failed = 0;
    const auto t0 = Steady::now();
    for (std::size_t i = 0; i < n; ++i) {
      QueuedMessage m = deferred_message(i, so.directory, now_s);
      asio::co_spawn(io, commit_one(&spool, body, m.envelope, m.state, &done, &failed), asio::detached);
      if (i % 512 == 511) {
        while (done + failed + 2048 < i) io.run_one_for(std::chrono::milliseconds(100));  // bounded backlog
      }
    }
    while (done + failed < n && Steady::now() - t0 < std::chrono::seconds(600)) io.run_one_for(std::chrono::milliseconds(100));
    fmt::print("  restart N={:>7}  spool filled in {:.1f} s ({} committed with state, {} failed)\n", n,
               std::chrono::duration<double>(Steady::now() - t0).count(), done, failed);
  }
  for (const bool cold : {false, true}) {
    if (cold) {
      ::sync();
      std::ofstream drop("/proc/sys/vm/drop_caches");
      if (!(drop << "3\n") || !drop.flush()) {
        fmt::print("  restart N={:>7}  cold: not measured (dropping the page cache needs root)\n", n);
        break;
      }
    }
    asio::io_context io;
    const auto t0 = Steady::now();
    SpoolOptions so;
    so.directory = spool_dir;
    Spool spool(io.get_executor(), so);
    std::vector<std::string> warnings;
    std::vector<QueuedMessage> recovered = spool.recover(&warnings);
    const double scan = std::chrono::duration<double>(Steady::now() - t0).count();
    const std::size_t count = recovered.size();
    QueueManager qm(io.get_executor(), cfg, spool, [](Envelope, std::string, int) -> asio::awaitable<std::vector<RecipientResult>> {
      co_return std::vector<RecipientResult>{};  // never called: every message is due in an hour
    });
    qm.load(std::move(recovered));
    const double total = std::chrono::duration<double>(Steady::now() - t0).count();
    fmt::print("  restart N={:>7}  {}: {} recovered ({} warnings) in {:.2f} s (scan {:.2f} s, index {:.2f} s)\n", n,
               cold ? "cold page cache" : "warm page cache", count, warnings.size(), total, scan, total - scan);
    asio::co_spawn(io, stop(&qm), asio::detached);
    io.run_for(std::chrono::seconds(3));
  }
  std::error_code ec;
  fs::remove_all(spool_dir, ec);
}

void run(std::size_t n, const fs::path& dir, bool live, double drain_limit_s) {
  asio::io_context io;
  // Keeps run_one_for() from stopping the context whenever it runs out of work.
  auto guard = asio::make_work_guard(io);
  config::Config cfg;
  cfg.queue.min_backoff = std::chrono::hours(1);
  cfg.queue.max_backoff = std::chrono::hours(4);
  cfg.queue.max_lifetime = std::chrono::hours(24 * 5);
  cfg.queue.delay_warning = std::chrono::milliseconds(0);
  // The limiter's limits below: the queue manager caps its attempts in flight at twice them.
  cfg.delivery.max_concurrency = 20;
  cfg.delivery.max_concurrency_per_destination = 5;
  SpoolOptions so;
  so.directory = dir / fmt::format("spool-{}", n);
  Spool spool(io.get_executor(), so);
  ConcurrencyLimiter limiter(io.get_executor(), cfg.delivery.max_concurrency, cfg.delivery.max_concurrency_per_destination);

  bool drain_mode = false;
  std::size_t in_flight = 0, max_in_flight = 0, max_waiting = 0, drain_active = 0, max_drain_active = 0;
  std::size_t drained = 0, drained_before_other = SIZE_MAX;
  auto deliver = [&](Envelope env, std::string domain, int) -> asio::awaitable<std::vector<RecipientResult>> {
    ++in_flight;
    max_in_flight = std::max(max_in_flight, in_flight);
    std::vector<RecipientResult> out;
    if (!drain_mode) {
      for (const auto& r : env.recipients) {
        RecipientResult res;
        res.recipient = r;
        res.status = DeliveryStatus::deferred;
        res.dsn = "4.4.1";
        res.reason = "connect to mx1." + domain + "[192.0.2.25]:25: Connection refused";
        out.push_back(std::move(res));
      }
      --in_flight;
      co_return out;
    }
    max_waiting = std::max(max_waiting, limiter.waiting() + 1);
    Permit permit = co_await limiter.acquire(domain);
    if (domain == "drain.test") max_drain_active = std::max(max_drain_active, ++drain_active);
    co_await asio::post(io, asio::use_awaitable);  // one event-loop turn: the "SMTP session"
    if (domain == "drain.test") {
      --drain_active;
      ++drained;
    } else {
      drained_before_other = drained;
    }
    for (const auto& r : env.recipients) {
      RecipientResult res;
      res.recipient = r;
      res.status = DeliveryStatus::sent;
      res.dsn = "2.0.0";
      res.reason = "250 2.0.0 Ok";
      res.reply_code = 250;
      res.relay_host = "mx1." + domain;
      out.push_back(std::move(res));
    }
    --in_flight;
    co_return out;
  };

  malloc_trim(0);
  const Memory base = memory();
  auto qm = std::make_unique<QueueManager>(io.get_executor(), cfg, spool, deliver);
  const std::int64_t now_s = std::chrono::duration_cast<std::chrono::seconds>(Clock::now().time_since_epoch()).count();

  Phase load;
  load.n = n;
  {
    std::vector<QueuedMessage> recovered;
    recovered.reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
      QueuedMessage m = deferred_message(i, so.directory, now_s);
      recovered.push_back(std::move(m));
    }
    load.before = memory();  // the recovered vector is not the manager's: it is gone after load
    const auto t0 = Steady::now();
    qm->load(std::move(recovered));
    load.seconds = std::chrono::duration<double>(Steady::now() - t0).count();
  }
  load.after = memory();
  load.before.rss_kib = base.rss_kib;
  load.before.private_kib = base.private_kib;
  load.before.heap_in_use = base.heap_in_use;
  print_memory("load", load);

  if (live) {
    Phase lp;
    lp.n = n;
    lp.before = memory();
    const auto t0 = Steady::now();
    const std::uint64_t saves = spool.stats().state_writes;
    for (std::size_t i = 0; i < n; ++i) {
      const std::string domain = fmt::format("dest{:02}.example", i % kDomains);
      qm->enqueue(make_message(static_cast<int>(i), domain, so.directory));
      if (i % 256 == 255) io.poll();
    }
    // Until every first attempt has ended and saved its state (bounded).
    while ((qm->active() > 0 || spool.stats().state_writes < saves + n) && Steady::now() - t0 < std::chrono::seconds(300))
      io.run_one_for(std::chrono::milliseconds(100));
    lp.seconds = std::chrono::duration<double>(Steady::now() - t0).count();
    malloc_trim(0);
    lp.after = memory();
    print_memory("live", lp);
  }

  // The drain: a fresh manager with N messages for drain.test, deferred once.
  qm.reset();
  io.poll();
  qm = std::make_unique<QueueManager>(io.get_executor(), cfg, spool, deliver);
  {
    std::vector<QueuedMessage> recovered;
    recovered.reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
      QueuedMessage m = make_message(static_cast<int>(i), "drain.test", so.directory);
      deferred_state(m.state.recipients[0], "drain.test", now_s);
      m.state.attempts = 1;
      m.state.next_attempt = (now_s + 3600) * 1000;
      recovered.push_back(std::move(m));
    }
    qm->load(std::move(recovered));
  }
  drain_mode = true;
  in_flight = max_in_flight = max_waiting = 0;
  const double cpu0 = cpu_seconds();
  const auto t0 = Steady::now();
  const auto deadline = t0 + std::chrono::duration_cast<Steady::duration>(std::chrono::duration<double>(drain_limit_s));
  asio::co_spawn(io, flush_all(qm.get()), asio::detached);
  bool other_sent = false;
  while (qm->size() > 0 && Steady::now() < deadline) {
    io.run_one_for(std::chrono::milliseconds(100));
    if (!other_sent && drained >= std::min<std::size_t>(n / 10, 1000)) {
      other_sent = true;
      qm->enqueue(make_message(0, "other.test", so.directory));
    }
  }
  const double cpu = cpu_seconds() - cpu0;
  const double wall = std::chrono::duration<double>(Steady::now() - t0).count();
  fmt::print("  drain  N={:>7}  {} in {:.2f} s wall, {:.2f} CPU-s ({:.1f} µs CPU per message); most in flight {}, "
             "most limiter waiters {}, most concurrent to drain.test {} (limit 5); other.test delivered after {} of drain.test\n",
             n, qm->size() == 0 ? "drained" : fmt::format("NOT drained ({} left)", qm->size()), wall, cpu,
             cpu * 1e6 / static_cast<double>(std::max<std::size_t>(drained, 1)), max_in_flight, max_waiting, max_drain_active,
             drained_before_other == SIZE_MAX ? std::string("(not yet)") : std::to_string(drained_before_other));
  asio::co_spawn(io, stop(qm.get()), asio::detached);
  for (const auto stop_by = Steady::now() + std::chrono::seconds(3); qm->active() > 0 && Steady::now() < stop_by;)
    io.run_one_for(std::chrono::milliseconds(100));
  io.poll();
  qm.reset();
  guard.reset();
  io.poll();
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::size_t> sizes{20000, 100000};
  fs::path dir = "/var/tmp";
  bool live = false;
  bool restarts = false;
  double drain_limit = 120;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--messages" && i + 1 < argc) {
      sizes.clear();
      std::string list = argv[++i];
      for (std::size_t pos = 0; pos < list.size();) {
        const auto comma = list.find(',', pos);
        sizes.push_back(std::stoul(list.substr(pos, comma - pos)));
        pos = comma == std::string::npos ? list.size() : comma + 1;
      }
    } else if (a == "--dir" && i + 1 < argc) {
      dir = argv[++i];
    } else if (a == "--live") {
      live = true;
    } else if (a == "--restart") {
      restarts = true;
    } else if (a == "--drain-limit" && i + 1 < argc) {
      drain_limit = std::stod(argv[++i]);
    } else {
      fmt::print(stderr, "usage: queue_scale_bench [--messages N[,N…]] [--dir DIR] [--live] [--restart] [--drain-limit S]\n");
      return 64;
    }
  }
  config::LogSettings quiet;
  quiet.level = "off";
  setup_logging(quiet);
  const fs::path work = dir / fmt::format("queue_scale_bench-{}", ::getpid());
  fs::create_directories(work);
  fmt::print("queue_scale_bench: {} (one recipient per message, 50 destinations)\n", work.string());
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  for (std::size_t n : sizes) {
    run(n, work, live, drain_limit);
    if (restarts) {
      config::Config cfg;
      restart(n, work, cfg);
    }
  }
  std::error_code ec;
  fs::remove_all(work, ec);
  return 0;
}
