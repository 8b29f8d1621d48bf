// relay/cli/cmd_check_config.cpp — `danerelay check-config [-c FILE]`: every error as
// FILE:LINE:COL: error: …, exit 2 when there is any; unknown keys are errors (a mistyped security
// setting must never pass silently).
#include <algorithm>
#include <iostream>

#include "config/load.hpp"
#include "relay/cli/commands.hpp"

namespace danerelay::relay {

std::optional<config::Config> load_config(const GlobalOptions& options) {
  std::error_code ec;
  if (!options.config_given && !std::filesystem::exists(options.config_path, ec)) {
    std::cerr << "danerelay: " << options.config_path.string() << " not found; using the built-in defaults\n";
    // An empty file is exactly the defaults (including the default listener).
    auto defaults = config::load_string("", "(built-in defaults)");
    return std::move(defaults.config);
  }
  auto result = config::load_file(options.config_path);
  for (const auto& d : result.errors) std::cerr << d.str() << '\n';
  if (!result.ok()) return std::nullopt;
  return std::move(result.config);
}

std::vector<std::string> config_warnings(const config::Config& cfg) {
  std::vector<std::string> out;
  for (const auto& l : cfg.listeners) {
    std::string where = l.where.file.empty() ? cfg.source.string() : l.where.file;
    if (l.where.line > 0) where += ":" + std::to_string(l.where.line) + ":" + std::to_string(l.where.column);
    if (where.empty()) where = "(built-in defaults)";
    const std::string name = "listener \"" + l.name + "\"";
    using Auth = config::Listener::Auth;
    if (l.auth == Auth::none && l.allow_networks.empty()) {
      out.push_back(where + ": warning: " + name +
                    ": auth = \"none\" and allow_networks is empty: no client may relay through it (every RCPT gets 554 5.7.1)");
    }
    if (l.auth != Auth::none && cfg.server.credentials_file.empty()) {
      out.push_back(where + ": warning: " + name + ": AUTH is enabled but server.credentials_file is not set: nobody can authenticate");
    }
    // Behind a balancer, a header that names no client (the balancer's health check, v2 LOCAL,
    // v1 UNKNOWN) leaves the balancer as the client: in allow_networks, those sessions may relay.
    // Two networks overlap exactly when one holds the other's network address.
    if (l.proxy_protocol) {
      for (const auto& balancer : l.proxy_from) {
        const auto overlaps = [&](const config::Cidr& net) {
          return net.contains(balancer.bytes.data(), balancer.v6 ? 16 : 4) ||
                 balancer.contains(net.bytes.data(), net.v6 ? 16 : 4);
        };
        const auto it = std::find_if(l.allow_networks.begin(), l.allow_networks.end(), overlaps);
        if (it != l.allow_networks.end()) {
          out.push_back(where + ": warning: " + name + ": allow_networks entry " + it->text + " holds the balancer " +
                        balancer.text + " (proxy_from): connections whose PROXY header names no client (health checks, "
                        "LOCAL, UNKNOWN) may relay as the balancer");
        }
      }
    }
    if (l.auth != Auth::none && l.tls == config::Listener::Tls::none) {
      out.push_back(where + ": warning: " + name + ": AUTH is only offered over TLS, and this listener has tls = \"none\"");
    }
  }
  return out;
}

int cmd_check_config(const GlobalOptions& options) {
  auto result = config::load_file(options.config_path);
  for (const auto& d : result.errors) std::cerr << d.str() << '\n';
  if (!result.ok()) {
    std::cerr << options.config_path.string() << ": " << result.errors.size() << " error"
              << (result.errors.size() == 1 ? "" : "s") << '\n';
    return kExitConfig;
  }
  for (const auto& w : config_warnings(*result.config)) std::cerr << w << '\n';
  std::cout << options.config_path.string() << ": configuration OK\n";
  return kExitOk;
}

}  // namespace danerelay::relay
