// relay/daemon/reload_plan.hpp — what a reload (SIGHUP, `systemctl reload`) does with a new
// configuration: a pure comparison of the running configuration with the new one.
//
// Rules:
// - The whole file is re-read. It is applied only when it loads without an error; otherwise
//   the running configuration stays in force (the daemon logs the diagnostics).
// - Applied at once, for what starts after the reload (new inbound sessions, new delivery
//   attempts, the next retry decision); open sessions and attempts in flight keep the
//   configuration they started with, and queued mail is not touched: server.hostname,
//   server.credentials_file, each listener's require_tls / auth / auth_mechanisms /
//   allow_networks / auth_header / proxy_protocol / proxy_from, [limits] (but
//   client_ipv6_prefix), [tls] (server certificate and key, client protocol, CA and digest
//   order), [delivery] (but the
//   concurrency and connection-cache keys), [policy], [queue] backoff / lifetime / delay
//   warning, log.level / format / tls_feature_status.
// - Needs a restart, and is named in a warning while the running value stays in force:
//   the listeners themselves (added, removed, renamed, moved, or a changed TLS mode),
//   server.state_dir, server.control_socket, queue.directory, queue.min_free_space, [dns],
//   [metrics], log.target, log.syslog_name, limits.client_ipv6_prefix, delivery.max_concurrency,
//   delivery.max_concurrency_per_destination, delivery.connection_cache_time and
//   delivery.connection_reuse_limit.
// Source positions (file:line of a rule) are not a change.
#pragma once

#include <string>
#include <vector>

#include "config/config.hpp"

namespace danerelay::relay {

struct ReloadPlan {
  config::Config effective;                 // the new configuration, with every restart-only value kept from the running one
  std::vector<std::string> applied;         // reloadable keys or sections that changed: "policy", "limits", "listener \"submission\"" …
  std::vector<std::string> restart_needed;  // keys that changed but keep their running value until a restart
  bool tls_server_changed = false;          // [tls.server]: a new server context is needed
  bool tls_client_changed = false;          // [tls.client]: a new client context is needed
};

[[nodiscard]] ReloadPlan plan_reload(const config::Config& running, const config::Config& next);

}  // namespace danerelay::relay
