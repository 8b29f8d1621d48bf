// relay/cli/cmd_check.cpp — `danerelay check DOMAIN [--connect] [--json] [-p PORT] [--strict]`:
// what the relay would do with mail for DOMAIN, step by step, from the code the delivery runs:
// route_for (the level and the config rule that set it), dns::resolve_destination (the RFC 7672
// plan through the relay's own validating resolver), tls::decide (each host's requirement) and,
// with --connect, relay::probe (the delivery's SMTP client and DANE TLS up to the handshake and
// QUIT, never MAIL) for every address of every host the delivery would use. The facts and their
// verdict are relay/cli/check_report.*; this file is the I/O around them.
#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <iostream>
#include <random>

#include "dns/destination.hpp"
#include "relay/cli/check_report.hpp"
#include "relay/cli/commands.hpp"
#include "relay/cli/run_task.hpp"
#include "relay/core/logging.hpp"
#include "relay/daemon/resolver_setup.hpp"
#include "relay/delivery/probe.hpp"
#include "relay/delivery/routing.hpp"
#include "relay/delivery/smtp_connector.hpp"
#include "tls/client_context.hpp"

namespace danerelay::relay {

namespace asio = boost::asio;

int cmd_check(const GlobalOptions& options, const CheckOptions& check) {
  auto cfg = load_config(options);
  if (!cfg) return kExitConfig;
  // As the queue does for a recipient domain: a UTF-8 domain is looked up as its A-label form.
  const std::optional<std::string> domain = dns_domain(check.domain);
  if (!domain) {
    std::cerr << "danerelay check: " << check.domain << ": not a valid (internationalized) domain name\n";
    return kExitUsage;
  }
  if (check.port) cfg->delivery.port = *check.port;
  setup_logging(cfg->log);

  asio::io_context io;
  std::unique_ptr<dns::UnboundResolver> resolver;
  std::unique_ptr<asio::ssl::context> tls_context;
  try {
    resolver = open_resolver(io, *cfg);
    tls_context = std::make_unique<asio::ssl::context>(tls::make_client_context(cfg->tls.client).release());
  } catch (const std::exception& e) {
    std::cerr << "danerelay: " << e.what() << '\n';
    return kExitConfig;
  }

  int rc = kExitFailure;
  std::random_device rd;
  const std::uint64_t seed = (static_cast<std::uint64_t>(rd()) << 32) | rd();
  const ConnectorSettings settings = connector_settings(*cfg);
  run_task(
      io, "check",
      [&]() -> asio::awaitable<void> {
        dns::SelfTest t;
        t.ok = true;
        if (!check.skip_self_test) t = co_await dns::self_test(*resolver, cfg->dns.self_test_name);
        Routing routing = route_for(*cfg, *domain, seed);
        dns::Resolution res = co_await dns::resolve_destination(*resolver, routing.request);
        CheckReport report = make_check(res, routing, *cfg);
        report.self_test_ok = t.ok;
        if (!check.skip_self_test) report.self_test = t.summary();
        if (check.connect) {
          // Named, not a temporary: g++ 12 bit-copies prvalue class arguments of a coroutine
          // called inside co_await.
          const asio::any_io_executor executor = io.get_executor();
          for (std::size_t i = 0; i < res.plan.hosts.size(); ++i) {
            const dns::Host& host = res.plan.hosts[i];
            if (!report.hosts[i].problem.empty()) continue;  // the delivery would not connect either
            const tls::HostPolicy policy = host_policy(res.plan, host, routing, *cfg);
            for (const dns::IpAddress& address : host.addresses) {
              ProbeResult p = co_await probe(executor, tls_context.get(), settings, host.name, address, res.plan.port, policy);
              add_probe(report, i, p);
            }
          }
        }
        finish_check(report);
        if (check.json) {
          std::cout << check_json(report, check.strict).dump(2) << '\n';
        } else {
          if (!report.self_test.empty()) std::cout << report.self_test << "\n\n";
          std::cout << format_check(report);
        }
        rc = check_exit(report, check.strict);
        resolver.reset();
      },
      rc);
  return rc;
}

}  // namespace danerelay::relay
