// relay/delivery/smtp_connector.hpp — the Connector the delivery loop uses in production: one
// smtp::ClientSession per attempt, the envelope mapped onto MAIL/RCPT with its DSN parameters,
// the body streamed from the spool file, and the TLS lines logged as Postfix writes them
// ("Matched DANE EE certificate …", "Verified TLS connection established to …", "server
// certificate verification failed for …").
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ssl/context.hpp>

#include <memory>
#include <optional>
#include <string>

#include "config/config.hpp"
#include "relay/core/live_config.hpp"
#include "relay/delivery/connection_cache.hpp"
#include "relay/delivery/delivery.hpp"
#include "relay/delivery/loop_detection.hpp"
#include "smtp/client_session.hpp"

namespace danerelay::relay {

// What one new connection's TLS came to, for the observer (metrics). Reused connections are not
// reported again. `failure` is why the host was not used, if it was not.
struct ConnectionReport {
  bool tls_attempted = false;   // a STARTTLS handshake was started
  bool tls_established = false;
  std::string trust;            // "Verified", "Trusted", "Untrusted", "Anonymous"; empty: no TLS
  std::optional<smtp::HostFailure::Kind> failure;
  std::optional<std::chrono::microseconds> handshake;  // the handshake's duration, when one ran
};
using ConnectionObserver = std::function<void(const ConnectionReport&)>;

struct ConnectorSettings {
  std::string helo_name = "localhost";
  smtp::Timeouts timeouts;
  std::optional<boost::asio::ip::address> source_v4;
  std::optional<boost::asio::ip::address> source_v6;
  // L-01: the relay's own listener endpoints (relay/daemon/own_endpoints.hpp); an attempt that
  // would reach one of them is refused without a connection (refuse_own_endpoints).
  std::shared_ptr<const OwnEndpoints> own_endpoints;
  // Told about every new connection once open() returned (null: nobody). On the event loop.
  ConnectionObserver on_connection;
};

// From the configuration: [delivery] timeouts and source addresses, server.hostname (or the
// machine's name) as the EHLO name. The own endpoints need the machine's interfaces: the daemon
// sets them.
[[nodiscard]] ConnectorSettings connector_settings(const config::Config& config);

// The cache key of an attempt (connection_cache.hpp): everything the session's authentication
// depended on.
[[nodiscard]] CacheKey cache_key(const HostAttempt& attempt);

// What a connector uses that a reload may replace: the client TLS context (tls.client) and the
// settings. An attempt uses the one in force when it starts. A replaced context must outlive the
// sessions made with it (the daemon keeps it, and clears the connection cache).
struct ConnectorRuntime {
  std::shared_ptr<boost::asio::ssl::context> tls;
  ConnectorSettings settings;
};
using LiveConnector = Live<ConnectorRuntime>;

// A Connector bound to an executor, the client TLS context and, optionally, a connection cache
// (both must outlive it) and a log. With a cache, a session left reusable after its transaction
// is kept for the next attempt with the same CacheKey; plaintext retries never use the cache.
// With settings.own_endpoints, attempts that loop back to the relay are refused first (L-01).
[[nodiscard]] Connector smtp_connector(boost::asio::any_io_executor executor, boost::asio::ssl::context& tls_context,
                                       ConnectorSettings settings, LogSink log, ConnectionCache* cache = nullptr);
// The same, with a runtime that a reload replaces (`runtime` is shared with the daemon).
[[nodiscard]] Connector smtp_connector(boost::asio::any_io_executor executor, std::shared_ptr<const LiveConnector> runtime,
                                       LogSink log, ConnectionCache* cache = nullptr);

}  // namespace danerelay::relay
