// relay/cli/cmd_resolve.cpp — `danerelay resolve DOMAIN…`: the RFC 7672 delivery plan for each
// domain, from the same resolver, trust anchor and planner that delivery uses.
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <iostream>
#include <random>

#include "dns/destination.hpp"
#include "relay/cli/commands.hpp"
#include "relay/cli/run_task.hpp"
#include "relay/core/logging.hpp"
#include "relay/cli/plan_format.hpp"
#include "relay/daemon/resolver_setup.hpp"
#include "relay/delivery/routing.hpp"

namespace danerelay::relay {

namespace asio = boost::asio;

int cmd_resolve(const GlobalOptions& options, const ResolveOptions& resolve) {
  auto cfg = load_config(options);
  if (!cfg) return kExitConfig;
  if (resolve.port) cfg->delivery.port = *resolve.port;
  setup_logging(cfg->log);

  asio::io_context io;
  std::unique_ptr<dns::UnboundResolver> resolver;
  try {
    resolver = open_resolver(io, *cfg);
  } catch (const dns::SetupError& e) {
    std::cerr << "danerelay: " << e.what() << '\n';
    return kExitConfig;
  }

  int rc = kExitOk;
  std::random_device rd;
  run_task(
      io, "resolve",
      [&]() -> asio::awaitable<void> {
        if (!resolve.skip_self_test) {
          auto t = co_await dns::self_test(*resolver, cfg->dns.self_test_name);
          std::cout << t.summary() << "\n\n";
          if (!t.ok) rc = kExitFailure;
        }
        for (const auto& domain : resolve.domains) {
          Routing routing = route_for(*cfg, domain, (static_cast<std::uint64_t>(rd()) << 32) | rd());
          auto res = co_await dns::resolve_destination(*resolver, routing.request);
          std::cout << format_plan(res, routing);
          if (resolve.trace) std::cout << "  answers (" << res.rounds << " rounds):\n" << format_trace(res);
          std::cout << '\n';
        }
        resolver.reset();
      },
      rc);
  return rc;
}

}  // namespace danerelay::relay
