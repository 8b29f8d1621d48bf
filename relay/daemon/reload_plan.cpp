// relay/daemon/reload_plan.cpp — see reload_plan.hpp.
#include "relay/daemon/reload_plan.hpp"

#include <utility>

namespace danerelay::relay {

namespace {

// A listener without its source position: moving a line in the file changes nothing.
config::Listener unplaced(config::Listener l) {
  l.where = {};
  return l;
}

config::PolicySettings unplaced(config::PolicySettings p) {
  p.default_where = {};
  for (auto& d : p.destinations) d.where = {};
  return p;
}

// The listeners as bound: what only a restart changes.
bool same_sockets(const std::vector<config::Listener>& a, const std::vector<config::Listener>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (a[i].name != b[i].name || a[i].address != b[i].address || a[i].tls != b[i].tls) return false;
  }
  return true;
}

// Keeps the running value of a restart-only key, and says so when the new file changed it.
template <class T>
void keep(ReloadPlan& plan, const char* key, T& next_value, const T& running_value) {
  if (next_value == running_value) return;
  plan.restart_needed.emplace_back(key);
  next_value = running_value;
}

}  // namespace

ReloadPlan plan_reload(const config::Config& running, const config::Config& next) {
  ReloadPlan plan;
  plan.effective = next;
  config::Config& e = plan.effective;

  // Listeners: bound sockets need a restart; the rest applies per listener.
  if (!same_sockets(running.listeners, next.listeners)) {
    plan.restart_needed.emplace_back("listeners (added, removed, renamed, moved or TLS mode changed)");
    e.listeners = running.listeners;
  } else {
    for (std::size_t i = 0; i < next.listeners.size(); ++i) {
      if (unplaced(running.listeners[i]) != unplaced(next.listeners[i])) {
        plan.applied.push_back("listener \"" + next.listeners[i].name + "\"");
      }
    }
  }

  keep(plan, "server.state_dir", e.server.state_dir, running.server.state_dir);
  keep(plan, "server.control_socket", e.server.control_socket, running.server.control_socket);
  if (e.server.hostname != running.server.hostname) plan.applied.emplace_back("server.hostname");
  if (e.server.credentials_file != running.server.credentials_file) plan.applied.emplace_back("server.credentials_file");
  {
    config::ServerSettings rest = e.server;  // any other [server] key (reverse_lookup, …)
    rest.hostname = running.server.hostname;
    rest.credentials_file = running.server.credentials_file;
    if (rest != running.server) plan.applied.emplace_back("server");
  }

  keep(plan, "limits.client_ipv6_prefix", e.limits.client_ipv6_prefix, running.limits.client_ipv6_prefix);
  if (e.limits != running.limits) plan.applied.emplace_back("limits");

  plan.tls_server_changed = e.tls.server != running.tls.server;
  plan.tls_client_changed = e.tls.client != running.tls.client;
  if (plan.tls_server_changed) plan.applied.emplace_back("tls.server");
  if (plan.tls_client_changed) plan.applied.emplace_back("tls.client");

  keep(plan, "dns", e.dns, running.dns);

  keep(plan, "delivery.max_concurrency", e.delivery.max_concurrency, running.delivery.max_concurrency);
  keep(plan, "delivery.max_concurrency_per_destination", e.delivery.max_concurrency_per_destination,
       running.delivery.max_concurrency_per_destination);
  keep(plan, "delivery.connection_cache_time", e.delivery.connection_cache_time, running.delivery.connection_cache_time);
  keep(plan, "delivery.connection_reuse_limit", e.delivery.connection_reuse_limit, running.delivery.connection_reuse_limit);
  if (e.delivery != running.delivery) plan.applied.emplace_back("delivery");

  if (unplaced(e.policy) != unplaced(running.policy)) plan.applied.emplace_back("policy");

  keep(plan, "queue.directory", e.queue.directory, running.queue.directory);
  keep(plan, "queue.min_free_space", e.queue.min_free_space, running.queue.min_free_space);
  if (e.queue != running.queue) plan.applied.emplace_back("queue");

  keep(plan, "log.target", e.log.target, running.log.target);
  keep(plan, "log.syslog_name", e.log.syslog_name, running.log.syslog_name);
  if (e.log != running.log) plan.applied.emplace_back("log");

  keep(plan, "metrics", e.metrics, running.metrics);
  return plan;
}

}  // namespace danerelay::relay
