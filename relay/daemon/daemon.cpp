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
// SIGHUP: the whole configuration file is re-read and applied as reload_plan.hpp says; a file
// that does not load is refused and the running configuration stays (reload()).
// systemd (Type=notify): READY=1 once the self-test passed, STATUS=, RELOADING=1, STOPPING=1,
// WATCHDOG=1 (service_notify.hpp).
// [metrics] enabled: the rooms' observer hooks feed relay/metrics, served on metrics.address
// (/metrics, /healthz/live, /healthz/ready: ready once the self-test passed, after the queue was
// loaded and the listeners came up).
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include <csignal>
#include <fstream>
#include <functional>
#include <utility>
#include <iostream>

#include "relay/daemon/daemon.hpp"

#include "dns/observed_resolver.hpp"
#include "dns/resolver.hpp"
#include "relay/delivery/concurrency.hpp"
#include "relay/delivery/connection_cache.hpp"
#include "relay/control/control_socket.hpp"
#include "relay/queue/inbound_store.hpp"
#include "relay/core/exit_codes.hpp"
#include "relay/core/logging.hpp"
#include "relay/queue/queue_manager.hpp"
#include "config/load.hpp"
#include "relay/core/live_config.hpp"
#include "relay/daemon/own_endpoints.hpp"
#include "relay/daemon/reload_plan.hpp"
#include "relay/daemon/resolver_setup.hpp"
#include "relay/daemon/service_notify.hpp"
#include "relay/metrics/http_server.hpp"
#include "relay/metrics/relay_metrics.hpp"
#include "relay/posture/page.hpp"
#include "relay/posture/recorder.hpp"
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
                                     QueueManager* queue, posture::DnssecState* state, std::function<void()> on_ready) {
  auto log = logger("dns");
  asio::steady_timer timer(co_await asio::this_coro::executor);
  for (;;) {
    auto t = co_await dns::self_test(*resolver, name);
    state->self_test_done = true;
    state->self_test_ok = t.ok;
    state->self_test_text = t.summary();
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

// The trust anchor file as the posture page shows it: at most 16 KiB of it.
std::string anchor_text(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  std::string text(16 * 1024, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<std::size_t>(std::max<std::streamsize>(in.gcount(), 0)));
  return text;
}

// The settings of one inbound listener, from the configuration in force.
smtp::ServerSettings server_settings(const config::Config& cfg, const config::Listener& listener,
                                     std::shared_ptr<tls::ServerContext> server_tls,
                                     std::shared_ptr<smtp::Credentials> credentials) {
  smtp::ServerSettings ss;
  ss.listener = listener;
  ss.limits = cfg.limits;
  ss.hostname = cfg.server.hostname;
  ss.reverse_lookup = cfg.server.reverse_lookup;
  ss.reverse_lookup_timeout = cfg.server.reverse_lookup_timeout;
  ss.tls = std::move(server_tls);
  ss.credentials = std::move(credentials);
  return ss;
}

std::shared_ptr<smtp::Credentials> load_credentials(const std::filesystem::path& file, spdlog::logger& log) {
  if (file.empty()) return nullptr;
  auto loaded = smtp::Credentials::load(file);  // throws with the file's name and line
  for (const auto& w : loaded.warnings) log.warn("{}", w);
  return std::make_shared<smtp::Credentials>(std::move(loaded.credentials));
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
  // Registered first: a signal from here on waits in the set until the loop handles it. Registered
  // after the listeners opened, a SIGHUP sent as soon as they were logged (a reload right after a
  // start, as a test or `systemctl reload` does) met the default action and killed the daemon.
  asio::signal_set signals(io, SIGINT, SIGTERM, SIGHUP);
  std::unique_ptr<dns::UnboundResolver> resolver;
  dns::TrustAnchor anchor;
  try {
    resolver = open_resolver(io, cfg, &anchor);
  } catch (const dns::SetupError& e) {
    log->critical("{}", e.what());
    return kExitConfig;
  }

  // The configuration in force; a reload replaces it (reload_plan.hpp).
  const auto live = std::make_shared<LiveConfig>(cfg);
  // TLS: the client context for delivery; the server context for inbound STARTTLS / port 465.
  auto client_tls = std::make_shared<asio::ssl::context>(tls::make_client_context(cfg.tls.client).release());
  std::vector<std::shared_ptr<asio::ssl::context>> retired_client_tls;  // replaced by reloads: sessions may still use them
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
  try {
    credentials = load_credentials(cfg.server.credentials_file, *log);
  } catch (const std::exception& e) {
    log->critical("{}", e.what());
    return kExitConfig;
  }

  // Metrics: only when enabled; then every hook below is connected to it.
  std::unique_ptr<metrics::RelayMetrics> relay_metrics;
  if (cfg.metrics.enabled) relay_metrics = std::make_unique<metrics::RelayMetrics>(DANERELAY_VERSION);
  metrics::RelayMetrics* const m = relay_metrics.get();
  dns::ObservedResolver delivery_resolver(*resolver, m ? dns::ObservedResolver::Observer([m](const dns::Answer& a) { m->dns_answer(a); })
                                                       : dns::ObservedResolver::Observer());

  // The spool, recovered before anything is accepted.
  std::unique_ptr<Spool> spool;
  std::vector<QueuedMessage> recovered;
  try {
    SpoolOptions so;
    so.directory = spool_directory(cfg);
    so.min_free_space = cfg.queue.min_free_space;
    if (m) so.on_flush = [m](std::size_t n) { m->flush(n); };  // on the disk thread (the registry locks)
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
  if (m) connector_cfg.on_connection = [m](const ConnectionReport& c) { m->connection(c); };
  const auto own = connector_cfg.own_endpoints;
  const auto live_connector = std::make_shared<LiveConnector>(ConnectorRuntime{client_tls, connector_cfg});
  Connector connector = smtp_connector(io.get_executor(), live_connector, smtp_sink, &cache);
  QueueManager queue(io.get_executor(), live, *spool,
                     make_delivery_function(io.get_executor(), live, delivery_resolver, limiter, connector, smtp_sink));
  if (m) queue.add_result_observer([m](const Envelope& e, const RecipientResult& r) { m->result(e, r); });
  // The posture history (relay/posture): every recipient result, kept in <state_dir>, saved every
  // 5 minutes and at the stop; `danerelay report` reads the file, the page at the metrics
  // listener's "/" shows it.
  posture::Recorder recorder(posture::history_file(cfg));
  if (auto warning = recorder.load()) log->warn("posture history: {}", *warning);
  queue.add_result_observer([&recorder](const Envelope& e, const RecipientResult& r) { recorder.record(e, r); });
  posture::DnssecState dnssec_state;
  dnssec_state.trust_anchor = anchor.file.string() + (anchor.managed ? " (RFC 5011 managed)" : " (static)");
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
    smtp::ServerSettings ss = server_settings(cfg, l, server_tls, credentials);
    ss.log = logger("smtpd");
    ss.tracker = tracker;
    ss.auth_failures = auth_failures;
    ss.auth_pool = pool;
    if (m) ss.observer = std::make_shared<const smtp::ServerObserver>(m->server_observer());
    // Client names through the same validating resolver as delivery (server.reverse_lookup).
    ss.resolver = resolver.get();
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
  std::unique_ptr<metrics::HttpServer> metrics_http;
  if (m) {
    m->set_probe([&queue, &ready] {
      const QueueSnapshot q = queue.snapshot();
      metrics::Probe p{q.active, q.deferred, q.hold, std::chrono::seconds(0), ready};
      if (q.oldest_arrival) {
        p.oldest_age = std::max(std::chrono::seconds(0), std::chrono::duration_cast<std::chrono::seconds>(Clock::now() - *q.oldest_arrival));
      }
      return p;
    });
    metrics::HttpSettings hs;
    hs.address = cfg.metrics.address;
    hs.allow_networks = cfg.metrics.allow_networks;
    hs.metrics = [m] { return m->scrape(); };
    hs.ready = [&ready] { return ready; };
    hs.page = [&] {
      posture::Snapshot snap;
      snap.now = recorder.now();
      snap.hostname = live->get()->server.hostname;
      snap.history = recorder.history();
      snap.queue = posture::queue_state(queue.list(), snap.now);
      snap.dnssec = dnssec_state;
      snap.dnssec.trust_anchor_text = anchor_text(anchor.file);
      posture::Page page = posture::render_page(snap);
      metrics::HttpResponse response;
      response.body = std::move(page.body);
      response.content_type = std::move(page.content_type);
      response.headers = std::move(page.headers);
      return response;
    };  // set once the self-test passed; queue and listeners are up by now
    hs.log = logger("metrics");
    metrics_http = std::make_unique<metrics::HttpServer>(io.get_executor(), std::move(hs));
    try {
      metrics_http->start();
    } catch (const std::exception& e) {
      log->critical("{}", e.what());
      return kExitFailure;
    }
    const auto ep = metrics_http->local_endpoint();
    log->info("metrics on {}:{}", ep.address().is_v6() ? "[" + ep.address().to_string() + "]" : ep.address().to_string(), ep.port());
  }
  const auto status_text = [&] { return service_status(queue.size(), queue.counters()); };

  // SIGHUP: re-read the whole file. Everything that can fail is built before anything changes,
  // so a reload applies entirely or not at all.
  const auto reload = [&] {
    const auto running = live->get();
    std::error_code ec;
    if (running->source.empty() || !std::filesystem::is_regular_file(running->source, ec)) {
      log->error("reload refused: the daemon was started without a configuration file (running on the built-in defaults)");
      return;
    }
    log->info("SIGHUP: reloading the configuration from {}", running->source.string());
    config::LoadResult loaded = config::load_file(running->source);
    if (!loaded.ok()) {
      for (const auto& d : loaded.errors) log->error("{}", d.str());
      log->error("reload refused: {} error{} in {}; the running configuration stays in force", loaded.errors.size(),
                 loaded.errors.size() == 1 ? "" : "s", running->source.string());
      return;
    }
    ReloadPlan plan = plan_reload(*running, *loaded.config);
    const config::Config& next = plan.effective;
    std::shared_ptr<smtp::Credentials> next_credentials;
    std::shared_ptr<asio::ssl::context> next_client_tls = live_connector->get()->tls;
    std::shared_ptr<tls::ServerContext> next_server_tls = server_tls;
    try {
      next_credentials = load_credentials(next.server.credentials_file, *log);
      if (plan.tls_client_changed) {
        next_client_tls = std::make_shared<asio::ssl::context>(tls::make_client_context(next.tls.client).release());
      }
      // Last, because it replaces the running context when it succeeds: the same files are
      // re-read too (a renewed certificate).
      if (next.tls.server.cert_file.empty()) {
        next_server_tls = nullptr;
      } else if (server_tls && !plan.tls_server_changed) {
        server_tls->reload();
      } else {
        next_server_tls = std::make_shared<tls::ServerContext>(next.tls.server);
      }
    } catch (const std::exception& e) {
      log->error("reload refused: {}; the running configuration stays in force", e.what());
      return;
    }
    // Commit: what starts from now on uses the new configuration.
    live->set(next);
    ConnectorSettings next_connector = connector_settings(next);
    next_connector.own_endpoints = own;
    next_connector.on_connection = live_connector->get()->settings.on_connection;  // the metrics hook stays
    if (next_client_tls != live_connector->get()->tls) {
      retired_client_tls.push_back(live_connector->get()->tls);
      cache.clear();  // cached sessions were authenticated with the old client settings
    }
    live_connector->set(ConnectorRuntime{next_client_tls, std::move(next_connector)});
    server_tls = next_server_tls;
    credentials = next_credentials;
    tracker->set_limits(next.limits.max_connections, next.limits.max_connections_per_client);
    auth_failures->set_max_failures(next.limits.max_auth_failures_per_client);
    for (std::size_t i = 0; i < servers.size(); ++i) {
      servers[i]->update(server_settings(next, next.listeners[i], server_tls, credentials));
    }
    setup_logging(next.log);
    std::string applied;
    for (const auto& a : plan.applied) applied += (applied.empty() ? "" : ", ") + a;
    // The warnings come first: "reload done" is the reload's last line, which a script (and the
    // end-to-end test) waits for.
    for (const auto& key : plan.restart_needed) {
      log->warn("reload: {} changed but needs a restart; the running value stays in force", key);
    }
    log->info("reload done: {}", applied.empty() ? std::string("no change but the certificate and credentials re-read") : "changed " + applied);
  };

  std::function<void()> wait_signal;
  wait_signal = [&] {
    signals.async_wait([&](boost::system::error_code ec, int signo) {
      if (ec) return;
      if (signo == SIGHUP) {
        notifier.reloading();
        reload();
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
            if (auto error = recorder.save()) log->error("posture history: {}", *error);
            cache.clear();
            io.stop();
          },
          asio::detached);
    });
  };
  wait_signal();
  if (notifier.active()) notifier.status("not ready: waiting for the DNSSEC self-test");
  asio::co_spawn(io,
                 self_test_loop(resolver.get(), cfg.dns.self_test_name, &notifier, &queue, &dnssec_state,
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
  // The posture history to disk every 5 minutes (a crash loses at most that much of it; the
  // delivery log has every line).
  asio::co_spawn(io, every(std::chrono::minutes(5), [&, first = true]() mutable {
                   if (std::exchange(first, false)) return;
                   if (auto error = recorder.save()) log->error("posture history: {}", *error);
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
