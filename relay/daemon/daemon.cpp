// relay/daemon/daemon.cpp — see daemon.hpp: the wiring of every room into the running smarthost.
//
// Start-up order, each step fatal when it fails (exit 2 for configuration, 1 otherwise):
//   1. configuration and logging (done by the caller, relay/cli/cmd_run.cpp);
//   2. the trust anchor and the validating resolver (its DNSSEC self-test then runs every minute
//      until it passes: an operator behind a DNSSEC-stripping network sees it at once);
//   3. the spool: recovered (half-written files from a crash discarded, every complete message
//      rescheduled) BEFORE any listener accepts mail;
//   4. the queue manager with the delivery path (policy → DNS → DANE → SMTP client, connection
//      cache, concurrency limits) and the control socket for `danerelay queue`;
//   5. the inbound listeners.
// SIGINT/SIGTERM: listeners close, attempts in flight get a few seconds to finish, then exit 0.
// Whatever was not finished stays in the spool for the next start (at-least-once).
// SIGHUP: the server certificate and the credentials file are re-read.
// systemd (Type=notify): READY=1 once the self-test passed, STATUS=, RELOADING=1, STOPPING=1,
// WATCHDOG=1 (service_notify.hpp).
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include <csignal>
#include <functional>
#include <utility>
#include <iostream>

#include "relay/daemon/daemon.hpp"

#include "dns/resolver.hpp"
#include "relay/delivery/concurrency.hpp"
#include "relay/delivery/connection_cache.hpp"
#include "relay/control/control_socket.hpp"
#include "relay/queue/inbound_store.hpp"
#include "relay/core/exit_codes.hpp"
#include "relay/core/logging.hpp"
#include "relay/queue/queue_manager.hpp"
#include "relay/daemon/own_endpoints.hpp"
#include "relay/daemon/resolver_setup.hpp"
#include "relay/daemon/service_notify.hpp"
#include "relay/delivery/smtp_connector.hpp"
#include "relay/queue/spool.hpp"
#include "smtp/credentials.hpp"
#include "smtp/server.hpp"
#include "tls/client_context.hpp"
#include "tls/server_context.hpp"

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"  // false positive on coroutine frames (g++ 12)
#endif

namespace danerelay::relay {

namespace asio = boost::asio;

namespace {

// Runs the DNSSEC self-test until it passes; then the daemon is ready (service_notify.hpp).
// Pointers, not references: coroutine parameters by value (g++ 12).
asio::awaitable<void> self_test_loop(dns::Resolver* resolver, std::string name, ServiceNotifier* notifier,
                                     QueueManager* queue, std::function<void()> on_ready) {
  auto log = logger("dns");
  asio::steady_timer timer(co_await asio::this_coro::executor);
  for (;;) {
    auto t = co_await dns::self_test(*resolver, name);
    if (t.ok) {
      log->info("{}", t.summary());
      notifier->ready(service_status(queue->size(), queue->counters()));
      on_ready();
      co_return;
    }
    log->critical("{}; retrying in 60 s", t.summary());
    notifier->status("not ready: " + t.summary() + "; retrying in 60 s");
    timer.expires_after(std::chrono::seconds(60));
    co_await timer.async_wait(asio::use_awaitable);
  }
}

// Every `every`: call `tick` (the watchdog ping, the STATUS line), from the event loop, so that
// a stalled loop stops it.
asio::awaitable<void> every(std::chrono::microseconds every, std::function<void()> tick) {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  for (;;) {
    tick();
    timer.expires_after(every);
    co_await timer.async_wait(asio::use_awaitable);
  }
}

}  // namespace

int run_daemon(config::Config cfg) {
  auto log = logger("main");
  asio::io_context io(1);
  std::unique_ptr<dns::UnboundResolver> resolver;
  try {
    resolver = open_resolver(io, cfg);
  } catch (const dns::SetupError& e) {
    log->critical("{}", e.what());
    return kExitConfig;
  }

  // TLS: the client context for delivery; the server context for inbound STARTTLS / port 465.
  asio::ssl::context client_tls(tls::make_client_context(cfg.tls.client).release());
  std::shared_ptr<tls::ServerContext> server_tls;
  if (!cfg.tls.server.cert_file.empty()) {
    try {
      server_tls = std::make_shared<tls::ServerContext>(cfg.tls.server);
    } catch (const std::exception& e) {
      log->critical("{}", e.what());
      return kExitConfig;
    }
  }
  std::shared_ptr<smtp::Credentials> credentials;
  if (!cfg.server.credentials_file.empty()) {
    try {
      auto loaded = smtp::Credentials::load(cfg.server.credentials_file);
      for (const auto& w : loaded.warnings) log->warn("{}", w);
      credentials = std::make_shared<smtp::Credentials>(std::move(loaded.credentials));
    } catch (const std::exception& e) {
      log->critical("{}", e.what());
      return kExitConfig;
    }
  }

  // The spool, recovered before anything is accepted.
  std::unique_ptr<Spool> spool;
  std::vector<QueuedMessage> recovered;
  try {
    SpoolOptions so;
    so.directory = spool_directory(cfg);
    so.min_free_space = cfg.queue.min_free_space;
    spool = std::make_unique<Spool>(io.get_executor(), so);
    std::vector<std::string> warnings;
    recovered = spool->recover(&warnings);
    for (const auto& w : warnings) log->warn("{}", w);
  } catch (const std::exception& e) {
    log->critical("spool: {}", e.what());
    return kExitFailure;
  }

  auto smtp_log = logger("smtp");
  LogSink smtp_sink = [smtp_log](const std::string& line) { smtp_log->info("{}", line); };
  ConnectionCache cache(io.get_executor(), cfg.delivery.connection_cache_time,
                        static_cast<int>(cfg.delivery.connection_reuse_limit));
  ConcurrencyLimiter limiter(io.get_executor(), cfg.delivery.max_concurrency, cfg.delivery.max_concurrency_per_destination);
  // L-01: delivery never connects to one of these (a route or MX pointing back at us would loop).
  ConnectorSettings connector_cfg = connector_settings(cfg);
  {
    std::string error;
    const std::vector<InterfaceAddress> interfaces = interface_addresses(&error);
    if (!error.empty()) log->warn("loop detection: {}; wildcard listeners count as loopback only", error);
    connector_cfg.own_endpoints = std::make_shared<const OwnEndpoints>(own_endpoints(cfg.listeners, interfaces));
    log->info("loop detection: own endpoints {}", to_string(*connector_cfg.own_endpoints));
  }
  Connector connector = smtp_connector(io.get_executor(), client_tls, connector_cfg, smtp_sink, &cache);
  QueueManager queue(io.get_executor(), cfg, *spool,
                     make_delivery_function(io.get_executor(), cfg, *resolver, limiter, connector, smtp_sink));
  if (!recovered.empty()) log->info("queue: {} message{} recovered from {}", recovered.size(), recovered.size() == 1 ? "" : "s",
                                    spool->directory().string());
  queue.load(std::move(recovered));

  ControlServer control(io.get_executor(), control_socket_path(cfg), queue, logger("control"));
  try {
    control.start();
  } catch (const std::exception& e) {
    log->critical("control socket: {}", e.what());
    return kExitFailure;
  }

  InboundStore store(*spool, queue);
  // Process-wide, shared by every listener: connection counts and AUTH failures per client
  // (an IPv6 client counted per limits.client_ipv6_prefix network).
  auto tracker = std::make_shared<smtp::ConnectionTracker>(cfg.limits.max_connections, cfg.limits.max_connections_per_client,
                                                           cfg.limits.client_ipv6_prefix);
  auto auth_failures = std::make_shared<smtp::AuthFailureLimiter>(cfg.limits.max_auth_failures_per_client,
                                                                  cfg.limits.client_ipv6_prefix);
  auto pool = std::make_shared<smtp::AuthPool>(2);
  std::vector<std::unique_ptr<smtp::Server>> servers;
  for (const auto& l : cfg.listeners) {
    smtp::ServerSettings ss;
    ss.listener = l;
    ss.limits = cfg.limits;
    ss.hostname = cfg.server.hostname;
    ss.tls = server_tls;
    ss.credentials = credentials;
    ss.log = logger("smtpd");
    ss.tracker = tracker;
    ss.auth_failures = auth_failures;
    ss.auth_pool = pool;
    // Client names through the same validating resolver as delivery (server.reverse_lookup).
    ss.reverse_lookup = cfg.server.reverse_lookup;
    ss.resolver = resolver.get();
    ss.reverse_lookup_timeout = cfg.server.reverse_lookup_timeout;
    auto server = std::make_unique<smtp::Server>(io.get_executor(), ss, store);
    try {
      server->start();
    } catch (const std::exception& e) {
      log->critical("listener {}: {}", l.name, e.what());
      return kExitFailure;
    }
    log->info("listener {} on {}", l.name, server->local_endpoint_text());
    servers.push_back(std::move(server));
  }

  ServiceNotifier notifier;
  bool ready = false;
  const auto status_text = [&] { return service_status(queue.size(), queue.counters()); };

  asio::signal_set signals(io, SIGINT, SIGTERM, SIGHUP);
  std::function<void()> wait_signal;
  wait_signal = [&] {
    signals.async_wait([&](boost::system::error_code ec, int signo) {
      if (ec) return;
      if (signo == SIGHUP) {
        log->info("SIGHUP: reloading the server certificate and the credentials file");
        notifier.reloading();
        try {
          if (server_tls) server_tls->reload();
          if (credentials && !cfg.server.credentials_file.empty()) {
            auto loaded = smtp::Credentials::load(cfg.server.credentials_file);
            for (const auto& w : loaded.warnings) log->warn("{}", w);
            *credentials = std::move(loaded.credentials);
          }
        } catch (const std::exception& e) {
          log->error("reload failed, keeping the previous settings: {}", e.what());
        }
        if (ready) {
          notifier.ready(status_text());
        } else {
          notifier.status("not ready: waiting for the DNSSEC self-test");
        }
        wait_signal();
        return;
      }
      log->info("signal {}: stopping", signo);
      notifier.stopping();
      for (auto& s : servers) s->stop();
      control.stop();
      asio::co_spawn(
          io,
          [&]() -> asio::awaitable<void> {
            co_await queue.shutdown(std::chrono::seconds(5));
            cache.clear();
            io.stop();
          },
          asio::detached);
    });
  };
  wait_signal();
  if (notifier.active()) notifier.status("not ready: waiting for the DNSSEC self-test");
  asio::co_spawn(io,
                 self_test_loop(resolver.get(), cfg.dns.self_test_name, &notifier, &queue,
                                [&] {
                                  ready = true;
                                  if (!notifier.active()) return;
                                  // STATUS every 10 s; the first went with READY=1.
                                  asio::co_spawn(io, every(std::chrono::seconds(10), [&, first = true]() mutable {
                                                   if (!std::exchange(first, false)) notifier.status(status_text());
                                                 }),
                                                 asio::detached);
                                }),
                 asio::detached);
  // WatchdogSec=: a ping at half the interval, from the event loop (a stalled loop misses it).
  if (const auto interval = notifier.watchdog_interval()) {
    log->info("systemd watchdog every {} ms", std::chrono::duration_cast<std::chrono::milliseconds>(*interval / 2).count());
    asio::co_spawn(io, every(*interval / 2, [&] { notifier.watchdog(); }), asio::detached);
  }
  log->info("daemon started; configuration {}; {} listener{}; queue {} message{}",
            cfg.source.empty() ? std::string("(defaults)") : cfg.source.string(), servers.size(),
            servers.size() == 1 ? "" : "s", queue.size(), queue.size() == 1 ? "" : "s");
  io.run();
  servers.clear();
  resolver.reset();
  const SpoolStats st = spool->stats();
  log->info("stopped; spool: {} message{} committed in {} flush round{}, {} state write{}, {} removal{}", st.commits,
            st.commits == 1 ? "" : "s", st.flush_rounds, st.flush_rounds == 1 ? "" : "s", st.state_writes,
            st.state_writes == 1 ? "" : "s", st.removals, st.removals == 1 ? "" : "s");
  return kExitOk;
}

}  // namespace danerelay::relay
