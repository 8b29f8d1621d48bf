// relay/cli/commands.hpp — the subcommands of the one `danerelay` binary (one .cpp each).
// Exit codes: relay/core/exit_codes.hpp.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"
#include "relay/core/exit_codes.hpp"

namespace danerelay::relay {

inline constexpr const char* kDefaultConfigPath = "/etc/danerelay/danerelay.toml";

struct GlobalOptions {
  std::filesystem::path config_path = kDefaultConfigPath;
  bool config_given = false;   // -c was used: the file must exist
};

// Loads the configuration, printing FILE:LINE:COL diagnostics to stderr. Without -c and without
// the default file, the built-in defaults are used (and said so on stderr).
[[nodiscard]] std::optional<config::Config> load_config(const GlobalOptions& options);

// Settings that are valid but almost certainly not what the operator meant ("FILE:LINE:COL:
// warning: …"): a listener nobody may relay through, AUTH without a credentials file or without
// TLS. check-config prints them; run logs them.
[[nodiscard]] std::vector<std::string> config_warnings(const config::Config& cfg);

struct ResolveOptions {
  std::vector<std::string> domains;
  std::optional<std::uint16_t> port;
  bool trace = false;
  bool skip_self_test = false;
};

// `danerelay check DOMAIN`: see cmd_check.cpp and check_report.hpp.
struct CheckOptions {
  std::string domain;
  std::optional<std::uint16_t> port;
  bool connect = false;         // one STARTTLS handshake per address (then QUIT; never MAIL)
  bool json = false;            // one JSON document instead of the lines
  bool strict = false;          // any failing host or address exits 1
  bool skip_self_test = false;
};

// `danerelay probe HOST[:PORT]`: see cmd_probe.cpp.
struct ProbeOptions {
  std::string target;           // HOST, HOST:PORT, ADDRESS, [ADDRESS]:PORT
  std::string tlsa_from;        // use the TLSA RRset at _PORT._tcp.NAME instead of HOST's
  bool json = false;
};

struct ProbeTarget {
  std::string host;             // a host name or an IP address (without brackets)
  std::uint16_t port = 25;
  bool address = false;         // host is an IP address
};
// "mx.example.org", "mx.example.org:2525", "192.0.2.1", "[192.0.2.1]:25", "[IPv6:2001:db8::1]:25",
// "2001:db8::1" (a bare IPv6 address takes no port); nullopt when it is none of them.
[[nodiscard]] std::optional<ProbeTarget> parse_probe_target(std::string_view text, std::uint16_t default_port);

// `danerelay queue VERB [ID] [--json]`: list/show work with or without the daemon (the spool is
// read directly when no daemon answers on the control socket); flush/delete/hold/release/expire
// need the daemon.
struct QueueOptions {
  std::string verb;    // "list", "show", "flush", "delete", "hold", "release", "expire"
  std::string id;      // queue id; "ALL" for delete; empty for flush means every message
  bool json = false;   // list: postqueue -j JSON Lines instead of mailq text
};

// `danerelay report [--since DURATION] [--format csv|json]`: the posture history as a series.
struct ReportOptions {
  std::string since = "30d";   // config duration syntax, 1s..30d; up to 24h: 5-minute buckets, else days
  std::string format = "csv";  // "csv" or "json"
};

int cmd_check_config(const GlobalOptions& options);
int cmd_resolve(const GlobalOptions& options, const ResolveOptions& resolve);
int cmd_check(const GlobalOptions& options, const CheckOptions& check);
int cmd_probe(const GlobalOptions& options, const ProbeOptions& probe);
int cmd_run(const GlobalOptions& options);
int cmd_queue(const GlobalOptions& options, const QueueOptions& queue);
int cmd_report(const GlobalOptions& options, const ReportOptions& report);

}  // namespace danerelay::relay
