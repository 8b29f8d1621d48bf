// tests/support/world.hpp — the standard test world: one signed (or deliberately broken) zone per
// RFC 7672 scenario, certificates for the MX hosts with TLSA records computed from them, and a
// danerelay.toml that points the relay at it.
//
// Built on Hierarchy (signed zones) and Pki (certificates); used by the integration tests, by
// `danerelay-testzones` (the quick start) and by the TLS and delivery tests to come. Every host
// address is on loopback (127.0.0.x, ::1), so sinks can later listen at exactly those addresses.
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "tests/support/hierarchy.hpp"
#include "tests/support/pki.hpp"

namespace danerelay::testsupport {

struct WorldDomain {
  std::string name;         // recipient domain
  std::string scenario;     // what it exercises, for humans
};

struct World {
  Hierarchy::Built dns;
  Cert ca;                                    // issues every host certificate
  std::map<std::string, Cert> host_certs;     // MX host name → its leaf certificate
  std::vector<WorldDomain> domains;           // in a sensible order for a demo
  std::filesystem::path config_file;          // danerelay.toml using this world
  std::filesystem::path state_dir;
};

struct WorldOptions {
  std::string dead_server_address = "127.0.0.254";
  std::string query_timeout = "5s";           // TOML duration for dns.query_timeout
};

// Builds the world under dir (created if missing). Takes ~0.1 s (keys, signatures, certificates).
[[nodiscard]] World build_world(const std::filesystem::path& dir, const WorldOptions& options = {});

// The resolver settings pointing at the world (what its danerelay.toml says): its trust anchor
// (static), its unbound.conf with the auth-zones, `timeout` per query.
[[nodiscard]] config::DnsSettings dns_settings(const World& world,
                                               std::chrono::milliseconds timeout = std::chrono::seconds(5));

}  // namespace danerelay::testsupport
