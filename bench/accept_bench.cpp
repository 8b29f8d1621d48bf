// bench/accept_bench.cpp — how fast danerelay accepts mail, and relays it end to end.
//
// Part 1, the accept path (in-process): the real smtp::Server on 127.0.0.1 over the real Spool
// (fdatasync + rename + directory fsync before every 250, group-committed), with a store that
// keeps what it accepts (no delivery), so the figures are SMTP parsing + durable commit + reply.
// The clients run in a forked child process (blocking SMTP clients, one connection per client
// thread, many transactions per connection), so the server's CPU time (getrusage in the parent)
// excludes them. Printed per message size (4 KiB, 100 KiB) × concurrency (1, 10, 50):
// messages/s, p50/p99 latency from the end of DATA to the 250, messages per flush round, and
// server CPU-seconds per 1,000 messages.
//
// Part 2, end to end (needs root for sinks on port 25; skipped otherwise): `danerelay run` as a
// child process with the signed test world, the same clients, delivery over DANE (TLS 1.3,
// DANE-EE) to an in-process sink: messages/s from the first submission to the last delivery,
// and the daemon's CPU-seconds per 1,000 messages (from /proc/PID/stat).
//
//   accept_bench [--messages N]      (default 2000 per run; bounded: every run stops at N)
// Spool files go under /var/tmp (a real disk, not tmpfs) and are removed afterwards.
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <thread>
#include <vector>

#include "relay/queue/spool.hpp"
#include "smtp/server.hpp"
#include "tests/support/daemon.hpp"
#include "tests/support/pki.hpp"
#include "tests/support/smtp_injector.hpp"
#include "tests/support/smtp_sink.hpp"
#include "tests/support/temp_dir.hpp"
#include "tests/support/world.hpp"

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"  // false positive on coroutine frames (g++ 12)
#endif

namespace {

namespace asio = boost::asio;
namespace fs = std::filesystem;
using namespace danerelay;

// The accept path's store: commit into the spool, keep nothing in memory.
class BenchStore final : public smtp::MessageStore {
 public:
  explicit BenchStore(relay::Spool& spool) : spool_(spool) {}
  bool has_space(std::uint64_t size) override { return spool_.has_space(size); }
  std::unique_ptr<smtp::MessageSink> begin() override { return std::make_unique<Sink>(spool_); }

 private:
  class Sink final : public smtp::MessageSink {
   public:
    explicit Sink(relay::Spool& spool) : spool_(spool), writer_(spool.begin()), id_(writer_->id().str()) {}
    const std::string& queue_id() const noexcept override { return id_; }
    void write(std::string_view bytes) override { writer_->write(bytes); }
    asio::awaitable<smtp::CommitResult> commit(smtp::InboundEnvelope envelope) override {
      relay::Envelope env;
      env.id = writer_->id();
      env.sender = envelope.sender;
      for (const auto& r : envelope.recipients) env.recipients.push_back(relay::Recipient{r.address, r.orcpt, r.notify});
      const relay::SpoolResult r = co_await spool_.commit(std::move(writer_), env);
      co_return smtp::CommitResult{r.ok(), r.error};
    }

   private:
    relay::Spool& spool_;
    std::unique_ptr<relay::Spool::Writer> writer_;
    std::string id_;
  };
  relay::Spool& spool_;
};

std::string make_message(std::size_t size, int n) {
  std::string m = "From: <bench@org.test>\r\nTo: <user@secure.test>\r\nSubject: bench-" + std::to_string(n) +
                  "\r\nMessage-ID: <bench-" + std::to_string(n) + "@org.test>\r\n\r\n";
  const std::string line(76, 'x');
  while (m.size() + 78 <= size) m += line + "\r\n";
  return m;
}

struct ClientResult {
  int accepted = 0;
  std::vector<double> latencies_ms;  // end of DATA → 250
  double seconds = 0;
};

// In a forked child: `clients` threads × their share of `total` messages to address:port.
// Returns what the child measured (through a file), and the wall time.
ClientResult run_clients(std::uint16_t port, int clients, int total, std::size_t size, const fs::path& out_file) {
  const pid_t pid = fork();
  if (pid == 0) {
    std::atomic<int> next{0};
    std::vector<std::vector<double>> lat(static_cast<std::size_t>(clients));
    std::vector<std::thread> threads;
    const auto t0 = std::chrono::steady_clock::now();
    for (int c = 0; c < clients; ++c) {
      threads.emplace_back([&, c] {
        try {
          testsupport::SmtpInjector s("127.0.0.1", port, std::chrono::seconds(60));
          s.command("EHLO bench.org.test");
          for (int n = next++; n < total; n = next++) {
            const std::string msg = make_message(size, n);
            s.command("MAIL FROM:<bench@org.test>");
            s.command("RCPT TO:<user@secure.test>");
            s.command("DATA");
            std::string data = msg + ".\r\n";
            const auto d0 = std::chrono::steady_clock::now();
            const std::string r = s.raw(data, 1);
            const auto d1 = std::chrono::steady_clock::now();
            if (r.rfind("250", 0) == 0) lat[static_cast<std::size_t>(c)].push_back(std::chrono::duration<double, std::milli>(d1 - d0).count());
          }
          s.quit();
        } catch (const std::exception& e) {
          std::fprintf(stderr, "client: %s\n", e.what());
        }
      });
    }
    for (auto& t : threads) t.join();
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::ofstream out(out_file, std::ios::binary);
    out << secs << "\n";
    for (const auto& v : lat) {
      for (double x : v) out << x << "\n";
    }
    out.close();
    _exit(0);
  }
  int st = 0;
  waitpid(pid, &st, 0);
  ClientResult r;
  std::ifstream in(out_file);
  in >> r.seconds;
  double x = 0;
  while (in >> x) r.latencies_ms.push_back(x);
  r.accepted = static_cast<int>(r.latencies_ms.size());
  std::sort(r.latencies_ms.begin(), r.latencies_ms.end());
  return r;
}

double percentile(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  const auto i = static_cast<std::size_t>(p * static_cast<double>(sorted.size() - 1));
  return sorted[i];
}

double cpu_seconds_self() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

double cpu_seconds_of(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto p = s.rfind(')');
  if (p == std::string::npos) return 0;
  std::vector<std::string> f;
  std::string cur;
  for (std::size_t i = p + 2; i < s.size(); ++i) {
    if (s[i] == ' ') {
      f.push_back(cur);
      cur.clear();
    } else {
      cur += s[i];
    }
  }
  // Fields after the name: state is f[0]; utime = field 14 → f[11], stime → f[12].
  if (f.size() < 13) return 0;
  return (std::stod(f[11]) + std::stod(f[12])) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

void accept_path(int messages) {
  std::printf("== accept path: smtp::Server + Spool (segment log append + fdatasync before 250; files for > 256 KiB), no delivery\n");
  std::printf("%-8s %-8s %10s %10s %10s %12s %16s\n", "size", "clients", "msg/s", "p50 ms", "p99 ms", "msgs/flush",
              "CPU-s/1000 msgs");
  for (std::size_t size : {std::size_t{4096}, std::size_t{100 * 1024}}) {
    for (int clients : {1, 10, 50}) {
      testsupport::TempDir dir("danerelay-accept-bench");
      (void)dir;
      const fs::path spool_dir = fs::path("/var/tmp") / ("danerelay-accept-bench-" + std::to_string(getpid()));
      fs::remove_all(spool_dir);
      asio::io_context io(1);
      relay::SpoolOptions so;
      so.directory = spool_dir;
      relay::Spool spool(io.get_executor(), so);
      BenchStore store(spool);
      smtp::ServerSettings ss;
      ss.listener.name = "bench";
      ss.listener.address = config::Endpoint{"127.0.0.1", 0};
      ss.listener.tls = config::Listener::Tls::none;
      ss.listener.allow_networks.push_back(*config::Cidr::parse("127.0.0.0/8"));
      ss.limits.max_connections_per_client = 100;
      ss.hostname = "relay.bench.test";
      ss.log = std::make_shared<spdlog::logger>("bench-null");  // no sinks: logging off
      smtp::Server server(io.get_executor(), ss, store);
      server.start();
      const std::uint16_t port = server.local_endpoint().port();
      std::thread loop([&] {
        auto guard = asio::make_work_guard(io);
        io.run();
      });
      const double cpu0 = cpu_seconds_self();
      const int n = size > 10000 ? std::max(200, messages / 4) : messages;
      const auto r = run_clients(port, clients, n, size, dir.path() / "lat.txt");
      const double cpu1 = cpu_seconds_self();
      const auto st = spool.stats();
      asio::post(io, [&] {
        server.stop();
        io.stop();
      });
      loop.join();
      std::printf("%-8s %-8d %10.0f %10.2f %10.2f %12.1f %16.3f\n", size > 10000 ? "100KiB" : "4KiB", clients,
                  r.accepted / r.seconds, percentile(r.latencies_ms, 0.5), percentile(r.latencies_ms, 0.99),
                  st.flush_rounds ? static_cast<double>(st.commits) / static_cast<double>(st.flush_rounds) : 0.0,
                  r.accepted ? (cpu1 - cpu0) * 1000.0 / r.accepted : 0.0);
      std::fflush(stdout);
      fs::remove_all(spool_dir);
    }
  }
}

void end_to_end(int messages) {
  std::printf("\n== end to end: danerelay run → DANE (TLS 1.3, 3 1 1) → local sink on mx.secure.test:25\n");
  testsupport::TempDir dir("danerelay-e2e-bench");
  auto world = testsupport::build_world(dir.path() / "world");
  testsupport::Pki pki(dir.path() / "pki");
  const auto chain = pki.write_chain("mx.chain.pem", {&world.host_certs.at("mx.secure.test"), &world.ca});
  testsupport::SinkOptions o;
  o.port = 25;
  o.chain_file = chain;
  o.key_file = world.host_certs.at("mx.secure.test").key_file;
  o.max_connections = 256;
  o.max_body_bytes = 256 * 1024;
  std::unique_ptr<testsupport::SmtpSink> s4, s6;
  try {
    o.address = "127.0.0.11";
    s4 = std::make_unique<testsupport::SmtpSink>(o);
    o.address = "::1";
    s6 = std::make_unique<testsupport::SmtpSink>(o);
  } catch (const std::exception& e) {
    std::printf("skipped: cannot listen on port 25 (%s); run as root\n", e.what());
    return;
  }
  std::printf("%-8s %-8s %10s %10s %10s %16s\n", "size", "clients", "msg/s", "p50 ms", "p99 ms", "CPU-s/1000 msgs");
  int run = 0;
  for (std::size_t size : {std::size_t{4096}, std::size_t{100 * 1024}}) {
    for (int clients : {1, 10, 50}) {
      ++run;
      const fs::path inst = fs::path("/var/tmp") / ("danerelay-e2e-bench-" + std::to_string(getpid()) + "-" + std::to_string(run));
      fs::remove_all(inst);
      fs::create_directories(inst / "state");
      const std::uint16_t port = testsupport::free_port();
      std::string text;
      {
        std::ifstream in(world.config_file);
        text.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
      }
      const auto p = text.find("state_dir = ");
      text.replace(p, text.find('\n', p) - p, "state_dir = \"" + (inst / "state").string() + "\"");
      text += "\n[log]\nlevel = \"warn\"\n\n[[listener]]\nname = \"relay\"\naddress = \"127.0.0.1:" + std::to_string(port) +
              "\"\ntls = \"none\"\nallow_networks = [\"127.0.0.0/8\"]\n\n[limits]\nmax_connections_per_client = 100\n";
      std::ofstream(inst / "danerelay.toml") << text;
      testsupport::Daemon daemon(DANERELAY_BINARY, inst / "danerelay.toml", inst / "log");
      if (!daemon.wait_listening("127.0.0.1", port, std::chrono::seconds(20))) {
        std::printf("daemon did not start:\n%s\n", daemon.log().c_str());
        return;
      }
      const int before = s4->bodies() + s6->bodies();
      const double cpu0 = cpu_seconds_of(daemon.pid());
      const int n = size > 10000 ? std::max(200, messages / 4) : messages;
      const auto t0 = std::chrono::steady_clock::now();
      const auto r = run_clients(port, clients, n, size, dir.path() / "lat.txt");
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(300);
      while (s4->bodies() + s6->bodies() - before < r.accepted && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
      }
      const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      const double cpu1 = cpu_seconds_of(daemon.pid());
      const int delivered = s4->bodies() + s6->bodies() - before;
      daemon.signal(SIGTERM);
      daemon.wait();
      std::printf("%-8s %-8d %10.0f %10.2f %10.2f %16.3f%s\n", size > 10000 ? "100KiB" : "4KiB", clients, delivered / secs,
                  percentile(r.latencies_ms, 0.5), percentile(r.latencies_ms, 0.99),
                  delivered ? (cpu1 - cpu0) * 1000.0 / delivered : 0.0,
                  delivered < r.accepted ? "  (not all delivered in time)" : "");
      std::fflush(stdout);
      fs::remove_all(inst);
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  int messages = 2000;
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], "--messages") == 0) messages = std::max(50, std::atoi(argv[i + 1]));
  }
  std::printf("accept_bench: %d messages per 4 KiB run (%d per 100 KiB run); %u cores\n", messages,
              std::max(200, messages / 4), std::thread::hardware_concurrency());
  accept_path(messages);
  end_to_end(messages);
  return 0;
}
