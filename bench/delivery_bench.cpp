// bench/delivery_bench.cpp — outbound delivery throughput to a local DANE sink, side by side:
// N messages to secure.test (libunbound over the signed test world, DANE-EE 3 1 1, TLS 1.3)
// through the real delivery loop and SMTP client, once opening a connection per message and once
// with the connection cache. Prints messages/s, TLS handshakes per message and the client's
// CPU-seconds per 1,000 messages (getrusage; the sink runs in this process too, on its own
// thread, so its CPU is included — an upper bound for the client). Asserts nothing.
//
//   build/bench/delivery_bench [N]      (default 300; needs port 25 on 127.0.0.11: run as root)
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/context.hpp>

#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <stdexcept>

#include "dns/destination.hpp"
#include "relay/delivery/delivery.hpp"
#include "relay/delivery/smtp_connector.hpp"
#include "tests/support/smtp_sink.hpp"
#include "tests/support/temp_dir.hpp"
#include "tests/support/world.hpp"
#include "tls/client_context.hpp"

namespace {

namespace asio = boost::asio;
using namespace danerelay;
using Clock = std::chrono::steady_clock;

double cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

struct Figures {
  int sent = 0;
  double seconds = 0;
  double cpu = 0;
  int connections = 0;
  int handshakes = 0;
};

Figures run(const testsupport::World& world, const std::filesystem::path& body, const std::filesystem::path& chain, int n, bool reuse) {
  testsupport::SinkOptions so;
  so.address = "127.0.0.11";
  so.port = 25;
  so.chain_file = chain;
  so.key_file = world.host_certs.at("mx.secure.test").key_file;
  so.max_connections = n + 8;
  testsupport::SmtpSink sink(so);

  asio::io_context io;
  const config::DnsSettings dns_settings = testsupport::dns_settings(world);
  auto anchor = dns::prepare_trust_anchor(dns_settings, world.state_dir);
  dns::UnboundResolver resolver(io.get_executor(), dns_settings, anchor);
  asio::ssl::context tls_context(tls::make_client_context(config::TlsClientSettings{}).release());
  relay::ConnectionCache cache(io.get_executor(), std::chrono::seconds(60), 1'000'000);
  relay::ConnectorSettings cs;
  cs.helo_name = "relay.danerelay.test";
  auto connector = relay::smtp_connector(io.get_executor(), tls_context, cs, [](const std::string&) {}, reuse ? &cache : nullptr);

  Figures f;
  const double cpu0 = cpu_seconds();
  const auto t0 = Clock::now();
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        dns::PlanRequest req;
        req.domain = "secure.test";
        auto resolution = co_await dns::resolve_destination(resolver, req);
        for (int i = 0; i < n; ++i) {
          relay::Envelope env;
          env.sender = "bench@org.test";
          env.recipients.push_back(relay::Recipient{"user@secure.test", {}, relay::notify_unset});
          env.body = body;
          env.size = 4096;
          relay::DeliverySettings ds;
          auto results = co_await relay::deliver(env, resolution.plan, ds, connector, [](const std::string&) {});
          if (results.at(0).status == relay::DeliveryStatus::sent) ++f.sent;
        }
        cache.clear();
      },
      [](std::exception_ptr e) {
        if (e) std::rethrow_exception(e);
      });
  io.run();
  f.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  f.cpu = cpu_seconds() - cpu0;
  sink.wait_sessions_ended(1, std::chrono::seconds(5));
  const auto st = sink.stats();
  f.connections = st.connections;
  f.handshakes = st.tls_handshakes;
  return f;
}

void print(const char* name, const Figures& f) {
  std::printf("%-22s %6d sent %8.1f msg/s   %6.3f handshakes/msg   %6.2f CPU-s per 1000 msgs   (%d connections)\n", name, f.sent,
              f.sent / f.seconds, f.sent ? static_cast<double>(f.handshakes) / f.sent : 0.0, f.sent ? f.cpu * 1000.0 / f.sent : 0.0,
              f.connections);
}

}  // namespace

int main(int argc, char** argv) {
  const int n = argc > 1 ? std::max(1, std::atoi(argv[1])) : 300;
  testsupport::TempDir dir("danerelay-delivery-bench");
  auto world = testsupport::build_world(dir.path() / "world");
  testsupport::Pki pki(dir.path() / "pki");
  const auto chain = pki.write_chain("mx.chain.pem", {&world.host_certs.at("mx.secure.test"), &world.ca});
  const auto body = dir.path() / "body.eml";
  {
    std::ofstream out(body);
    out << "Subject: benchmark\r\n\r\n";
    for (int i = 0; i < 60; ++i) out << std::string(64, 'x') << "\r\n";  // ~4 KiB
  }
  try {
    std::printf("%d messages of ~4 KiB each to secure.test (DANE-EE, TLS 1.3) on loopback, sink in-process\n\n", n);
    const auto fresh = run(world, body, chain, n, false);
    const auto reused = run(world, body, chain, n, true);
    print("connection per message", fresh);
    print("connection reuse", reused);
    std::printf("\nreuse speed-up: %.1fx\n", (reused.sent / reused.seconds) / (fresh.sent / fresh.seconds));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "delivery_bench: %s (listening on 127.0.0.11:25 needs root)\n", e.what());
    return 1;
  }
  return 0;
}
