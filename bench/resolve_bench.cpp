// bench/resolve_bench.cpp — destination resolution latency through libunbound against the signed
// test world: for every scenario domain, the cold time (fresh libunbound context: every answer
// validated from the trust anchor down) and the warm time (same context, answers cached), plus
// the number of planner rounds and DNS queries. Prints a table; asserts nothing.
//
//   build/bench/resolve_bench [ITERATIONS]     (default 20 warm runs per domain)
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "dns/destination.hpp"
#include "tests/support/temp_dir.hpp"
#include "tests/support/world.hpp"

namespace {

namespace asio = boost::asio;
using namespace danerelay;
using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t) { return std::chrono::duration<double, std::milli>(Clock::now() - t).count(); }

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  const int iterations = argc > 1 ? std::max(1, std::atoi(argv[1])) : 20;
  testsupport::TempDir dir("danerelay-bench");
  const auto t_world = Clock::now();
  auto world = testsupport::build_world(dir.path());
  std::printf("test world: %zu domains, built in %.0f ms (keys, signatures, certificates)\n\n", world.domains.size(),
              ms_since(t_world));

  const config::DnsSettings s = testsupport::dns_settings(world, std::chrono::seconds(20));
  auto anchor = dns::prepare_trust_anchor(s, world.state_dir);

  std::printf("%-26s %-8s %7s %9s %10s %10s\n", "domain", "plan", "rounds", "queries", "cold ms", "warm ms");
  for (const auto& d : world.domains) {
    if (d.name == "routed.test" || d.name == "literal.test") continue;  // config routes: no DNS of their own
    dns::PlanRequest req;
    req.domain = d.name;
    double cold = 0;
    std::vector<double> warm;
    dns::Resolution last;
    asio::io_context io;
    {
      dns::UnboundResolver resolver(io.get_executor(), s, anchor);
      asio::co_spawn(
          io,
          [&]() -> asio::awaitable<void> {
            auto t = Clock::now();
            last = co_await dns::resolve_destination(resolver, req);
            cold = ms_since(t);
            for (int i = 0; i < iterations; ++i) {
              t = Clock::now();
              req.shuffle_seed = static_cast<std::uint64_t>(i);
              last = co_await dns::resolve_destination(resolver, req);
              warm.push_back(ms_since(t));
            }
          },
          [](std::exception_ptr e) {
            if (e) std::rethrow_exception(e);
          });
      io.run();
    }
    std::printf("%-26s %-8s %7d %9zu %10.2f %10.3f\n", d.name.c_str(), std::string(dns::to_string(last.plan.status)).c_str(),
                last.rounds, last.order.size(), cold, median(warm));
  }
  std::printf("\ncold: first resolution on a new libunbound context (validation from the root down);\n"
              "warm: median of %d further resolutions on the same context (cached).\n",
              iterations);
  return 0;
}
