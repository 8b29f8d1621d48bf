// config/config.hpp — danerelay's configuration as plain values.
//
// What this is: the in-memory shape of /etc/danerelay/danerelay.toml. Every member carries its
// default, so a default-constructed Config is the documented default configuration
// (config/example.toml lists the same values). No toml++ type appears here: config/load.cpp
// turns TOML into these structs and reports errors as FILE:LINE:COL; everything else in the
// program reads only these structs.
//
// Vocabulary follows Postfix where operators already know it: TLS security level names
// (smtp_tls_security_level / smtp_tls_policy_maps) and the leading-dot rule for subdomains.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace danerelay::config {

using Duration = std::chrono::milliseconds;

// Where a value was written, for diagnostics that point at the config line (0 = not from a file).
struct SourceLocation {
  std::string file;
  std::uint32_t line = 0;
  std::uint32_t column = 0;
};

// Per-destination TLS security level (Postfix names; weakest first).
//   none       plaintext only
//   may        opportunistic TLS; plaintext when STARTTLS is absent or fails
//   encrypt    TLS required, peer not authenticated
//   dane       opportunistic DANE (RFC 7672): usable secure TLSA → authenticated TLS required,
//              unusable secure TLSA → TLS required, no/insecure TLSA → like "may". The default.
//   dane_only  mandatory DANE ("dane-only"): no usable secure TLSA → defer (D-14, D-20)
//   verify     PKIX: system CA store, name checks against the MX host name
//   secure     PKIX: system CA store, name checks against the next-hop domain
enum class TlsLevel { none, may, encrypt, dane, dane_only, verify, secure };

[[nodiscard]] std::string_view to_string(TlsLevel level) noexcept;  // "dane-only" etc.
[[nodiscard]] std::optional<TlsLevel> parse_tls_level(std::string_view text) noexcept;

// An IPv4 or IPv6 network in CIDR form ("10.0.0.0/8", "2001:db8::/32", "192.0.2.7" = /32).
struct Cidr {
  bool v6 = false;
  std::array<std::uint8_t, 16> bytes{};  // network address, v4 in the first 4 bytes
  std::uint8_t prefix = 0;
  std::string text;                      // as written, for messages

  [[nodiscard]] static std::optional<Cidr> parse(std::string_view text);
  // True when `address` (4 or 16 bytes, network order) lies inside this network.
  [[nodiscard]] bool contains(const std::uint8_t* address, std::size_t length) const noexcept;
};

// "host:port", "[v6addr]:port" or "host" (then default_port applies).
struct Endpoint {
  std::string host;
  std::uint16_t port = 0;
  [[nodiscard]] static std::optional<Endpoint> parse(std::string_view text, std::uint16_t default_port);
};

struct ServerSettings {
  std::string hostname;                                    // EHLO/Received name; empty → gethostname()
  std::filesystem::path state_dir = "/var/lib/danerelay";  // spool, RFC 5011 trust anchor
};

struct Listener {
  enum class Tls { none, starttls, implicit };
  enum class Auth { none, optional, required };
  std::string name = "relay";
  Endpoint address{"::", 25};
  Tls tls = Tls::starttls;
  bool require_tls = false;                       // STARTTLS before MAIL
  Auth auth = Auth::none;
  std::vector<std::string> auth_mechanisms{"PLAIN", "LOGIN"};
  std::vector<Cidr> allow_networks;               // clients that may relay without AUTH
  SourceLocation where;
};

struct Limits {
  std::uint64_t max_message_size = 50ull * 1000 * 1000;  // bytes, advertised as SIZE
  std::uint32_t max_recipients = 1000;                   // RFC 5321 §4.5.3.1.8: at least 100
  std::uint32_t max_line_length = 1000;                  // RFC 5321 §4.5.3.1.6 text line incl. CRLF
  std::uint32_t max_command_length = 512;                // RFC 5321 §4.5.3.1.4 (+ extensions)
  std::uint32_t max_connections = 500;
  std::uint32_t max_connections_per_client = 50;
  std::uint32_t max_errors = 10;                         // bad commands before disconnect
  Duration command_timeout = std::chrono::minutes(5);
  Duration data_timeout = std::chrono::minutes(10);
};

struct TlsServerSettings {
  std::filesystem::path cert_file;  // PEM chain, leaf first; empty → no inbound STARTTLS
  std::filesystem::path key_file;
};

struct TlsClientSettings {
  // RFC 7671 §9 digest agility: strongest first. Only "sha512" and "sha256" are known.
  std::vector<std::string> digest_order{"sha512", "sha256"};
  std::string min_protocol = "TLSv1.2";  // "TLSv1.2" or "TLSv1.3"
  std::filesystem::path ca_file;         // PKIX trust store for verify/secure; empty → system default
  std::filesystem::path ca_path;
};

struct TlsSettings {
  TlsServerSettings server;
  TlsClientSettings client;
};

struct DnsSettings {
  // Trust anchor. Empty → "<state_dir>/root.key", seeded from `trust_anchor_seed` when missing
  // or older, and kept current with RFC 5011 (ub_ctx_add_ta_autr) when `auto_update`.
  std::filesystem::path trust_anchor;
  std::filesystem::path trust_anchor_seed = "/usr/share/dns/root.key";
  bool trust_anchor_auto_update = true;
  std::vector<std::string> forwarders;                          // "192.0.2.53", "192.0.2.53@5353"; libunbound still validates
  std::filesystem::path unbound_config;                         // extra unbound.conf (auth-zones in tests)
  std::vector<std::pair<std::string, std::string>> unbound_options;  // ub_ctx_set_option("name:", "value")
  Duration query_timeout = std::chrono::seconds(20);            // per query; expiry → error verdict "timeout"
  std::string self_test_name = ".";                             // start-up check: DNSKEY here must validate
};

struct DeliverySettings {
  std::uint16_t port = 25;                 // SMTP port and TLSA query name _<port>._tcp (D-30)
  std::string source_address_v4;           // empty → kernel's choice
  std::string source_address_v6;
  Duration connect_timeout = std::chrono::seconds(30);
  std::uint32_t max_concurrency = 100;     // all destinations together
  std::uint32_t max_concurrency_per_destination = 20;
};

// A route: where a destination's mail goes instead of its MX hosts.
//   "mail.partner.example:587"    a non-MX destination (RFC 7672 §2.2.2, D-22): DANE still applies
//   "[mail.partner.example]:587"  the same (brackets: no MX lookup, as in Postfix)
//   "[192.0.2.1]:25"              an address literal: DANE does not apply (D-15)
struct NextHop {
  std::string host;                  // without brackets
  std::uint16_t port = 0;            // 0 → delivery.port
  bool address_literal = false;
};

// One [policy.destination."NAME"] table. NAME "example.org" matches that domain only;
// ".example.org" matches every subdomain of it (Postfix smtp_tls_policy_maps rule).
struct DestinationPolicy {
  std::string pattern;
  std::optional<TlsLevel> level;
  std::optional<NextHop> nexthop;
  std::vector<std::string> match;   // verify/secure: extra names the certificate may carry
  SourceLocation where;
};

struct PolicySettings {
  TlsLevel default_level = TlsLevel::dane;
  std::vector<DestinationPolicy> destinations;

  // The most specific table for `domain` (lower-case, no trailing dot): an exact match first,
  // then ".parent" tables from the closest parent up; nullptr when none applies.
  [[nodiscard]] const DestinationPolicy* find(std::string_view domain) const noexcept;
};

struct QueueSettings {
  std::filesystem::path directory;   // empty → "<state_dir>/spool"
  Duration min_backoff = std::chrono::seconds(300);
  Duration max_backoff = std::chrono::seconds(4000);
  Duration max_lifetime = std::chrono::hours(24 * 5);
  Duration delay_warning = std::chrono::hours(4);  // 0 → no delay notices
};

struct LogSettings {
  enum class Format { postfix, json };
  Format format = Format::postfix;
  std::string syslog_name = "danerelay";
  std::string level = "info";        // trace|debug|info|warn|error|critical|off
  bool tls_feature_status = false;   // Postfix 3.11 "tls=" field; off: pflogsumm 1.1.5 drops such lines
};

struct MetricsSettings {
  bool enabled = false;
  Endpoint address{"127.0.0.1", 9425};
};

struct Config {
  std::filesystem::path source;      // file it was loaded from (empty for defaults)
  ServerSettings server;
  std::vector<Listener> listeners;   // empty in the file → one default "relay" listener
  Limits limits;
  TlsSettings tls;
  DnsSettings dns;
  DeliverySettings delivery;
  PolicySettings policy;
  QueueSettings queue;
  LogSettings log;
  MetricsSettings metrics;
};

}  // namespace danerelay::config
