// relay/cmd_run.cpp — `danerelay run`: the daemon in the foreground.
//
// What runs today: configuration, logging, the trust anchor (seeded and RFC 5011-managed), the
// validating resolver and its DNSSEC self-test — repeated every minute until it passes, so an
// operator behind a DNSSEC-stripping resolver sees it at once and again until fixed. The inbound
// listeners, the queue and delivery are later issues; until then the daemon idles here.
// SIGINT/SIGTERM stop it.
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <csignal>
#include <iostream>

#include "dns/resolver.hpp"
#include "relay/commands.hpp"
#include "relay/logging.hpp"
#include "relay/resolver_setup.hpp"

namespace danerelay::relay {

namespace asio = boost::asio;

namespace {

asio::awaitable<void> self_test_loop(dns::Resolver& resolver, std::string name) {
  auto log = logger("dns");
  asio::steady_timer timer(co_await asio::this_coro::executor);
  for (;;) {
    auto t = co_await dns::self_test(resolver, name);
    if (t.ok) {
      log->info("{}", t.summary());
      co_return;
    }
    log->critical("{}; retrying in 60 s", t.summary());
    timer.expires_after(std::chrono::seconds(60));
    co_await timer.async_wait(asio::use_awaitable);
  }
}

}  // namespace

int cmd_run(const GlobalOptions& options) {
  auto cfg = load_config(options);
  if (!cfg) return kExitConfig;
  setup_logging(cfg->log);
  auto log = logger("main");

  asio::io_context io;
  std::unique_ptr<dns::UnboundResolver> resolver;
  try {
    resolver = open_resolver(io, *cfg);
  } catch (const dns::SetupError& e) {
    log->critical("{}", e.what());
    return kExitConfig;
  }

  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](boost::system::error_code ec, int signo) {
    if (ec) return;
    log->info("signal {}: stopping", signo);
    io.stop();
  });
  asio::co_spawn(io, self_test_loop(*resolver, cfg->dns.self_test_name), asio::detached);
  log->info("daemon started; configuration {}", cfg->source.empty() ? std::string("(defaults)") : cfg->source.string());
  io.run();
  resolver.reset();
  return kExitOk;
}

}  // namespace danerelay::relay
