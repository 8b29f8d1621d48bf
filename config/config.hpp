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
//
// Every struct compares with == (member-wise), so tests can check "this file loads as the
// defaults". The value syntaxes (durations, sizes, host names) live in config/values.hpp; the
// key-by-key reference is config/REFERENCE.md.
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
  friend bool operator==(const SourceLocation&, const SourceLocation&) = default;
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

  // Accepts "a.b.c.d[/0..32]", "v6[/0..128]" and Postfix's "[v6]/len". Host bits beyond the
  // prefix are cleared, as Postfix mynetworks does ("10.1.2.3/8" is 10.0.0.0/8).
  [[nodiscard]] static std::optional<Cidr> parse(std::string_view text);
  // True when `address` (4 or 16 bytes, network order) lies inside this network. An IPv4-mapped
  // IPv6 address (::ffff:a.b.c.d, what a "[::]" listener sees for IPv4 clients) is matched as
  // the IPv4 address it carries.
  [[nodiscard]] bool contains(const std::uint8_t* address, std::size_t length) const noexcept;
  friend bool operator==(const Cidr&, const Cidr&) = default;
};

// "host:port", "[v6addr]:port" or "host" (then default_port applies).
struct Endpoint {
  std::string host;        // IPv4 literal, IPv6 literal (without brackets) or host name
  std::uint16_t port = 0;
  // host is an IPv4 literal, a bracketed IPv6 literal or a host name (LDH labels, lower-cased,
  // trailing dot removed); an unbracketed IPv6 address is rejected because "2001:db8::1:25" is
  // ambiguous. Without ":port", default_port applies; default_port 0 makes the port mandatory.
  [[nodiscard]] static std::optional<Endpoint> parse(std::string_view text, std::uint16_t default_port);
  friend bool operator==(const Endpoint&, const Endpoint&) = default;
};

struct ServerSettings {
  std::string hostname;                                    // EHLO/Received name; empty → gethostname()
  std::filesystem::path state_dir = "/var/lib/danerelay";  // spool, RFC 5011 trust anchor
  std::filesystem::path control_socket;                    // queue-operations socket; empty → "<state_dir>/control.sock"
  // SMTP AUTH users: "name:crypt-hash" lines (yescrypt, SHA-512-crypt, bcrypt; see REFERENCE.md).
  // Empty → no AUTH is possible (listeners with auth = "required" accept no mail).
  std::filesystem::path credentials_file;
  // Inbound client names (Postfix smtpd): a forward-confirmed reverse lookup (PTR, then the name's
  // A/AAAA must hold the address) through the relay's validating resolver names the client in the
  // logs and Received:; otherwise, and when false (no query at all), the client is "unknown".
  bool reverse_lookup = true;
  Duration reverse_lookup_timeout = std::chrono::seconds(5);  // PTR + A/AAAA together; expiry → "unknown"
  friend bool operator==(const ServerSettings&, const ServerSettings&) = default;
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
  // "(Authenticated sender: LOGIN)" in Received: (Postfix smtpd_sasl_authenticated_header):
  // off, the SASL login name stays out of headers the recipients see.
  bool auth_header = false;
  // Scale-out behind a TCP load balancer (haproxy's PROXY protocol, v1 or v2, smtp/proxy_protocol.hpp):
  // every connection must start with a PROXY header, and only connections from proxy_from (the
  // balancers) are accepted at all; the header's source address is then the client for
  // allow_networks, the per-client limits, the client name, Received: and the logs. The loader
  // refuses proxy_protocol without proxy_from and proxy_from without proxy_protocol.
  bool proxy_protocol = false;
  std::vector<Cidr> proxy_from;
  SourceLocation where;
  friend bool operator==(const Listener&, const Listener&) = default;
};

struct Limits {
  std::uint64_t max_message_size = 50ull * 1000 * 1000;  // bytes, advertised as SIZE
  std::uint32_t max_recipients = 1000;                   // RFC 5321 §4.5.3.1.8: at least 100
  std::uint32_t max_line_length = 1000;                  // RFC 5321 §4.5.3.1.6 text line incl. CRLF
  std::uint32_t max_command_length = 512;                // RFC 5321 §4.5.3.1.4 (+ extensions)
  std::uint32_t max_connections = 500;
  std::uint32_t max_connections_per_client = 50;
  std::uint32_t max_errors = 10;                         // bad commands before disconnect
  // Mail loops (checklist L-01, Postfix hop_count_limit): a message whose Received: fields,
  // danerelay's own included, number max_hops or more is rejected (554 5.4.6).
  std::uint32_t max_hops = 50;
  Duration command_timeout = std::chrono::minutes(5);    // a whole command line, from when its reading starts
  Duration data_timeout = std::chrono::minutes(10);      // each DATA line; and DATA as a whole, plus bytes / min_data_rate
  std::uint32_t min_data_rate = 500;                     // bytes/s (Postfix 3.7 smtpd_min_data_rate)
  // IPv6 clients are counted per network of this prefix length (connection and AUTH limits);
  // IPv4 clients per address.
  std::uint32_t client_ipv6_prefix = 64;
  std::uint32_t max_auth_failures_per_client = 10;       // failed AUTH per client per 5 minutes
  friend bool operator==(const Limits&, const Limits&) = default;
};

struct TlsServerSettings {
  std::filesystem::path cert_file;  // PEM chain, leaf first; empty → no inbound STARTTLS
  std::filesystem::path key_file;
  friend bool operator==(const TlsServerSettings&, const TlsServerSettings&) = default;
};

struct TlsClientSettings {
  // RFC 7671 §9 digest agility: strongest first. Only "sha512" and "sha256" are known.
  std::vector<std::string> digest_order{"sha512", "sha256"};
  std::string min_protocol = "TLSv1.2";  // "TLSv1.2" or "TLSv1.3"
  std::filesystem::path ca_file;         // PKIX trust store for verify/secure; empty → system default
  std::filesystem::path ca_path;
  friend bool operator==(const TlsClientSettings&, const TlsClientSettings&) = default;
};

struct TlsSettings {
  TlsServerSettings server;
  TlsClientSettings client;
  friend bool operator==(const TlsSettings&, const TlsSettings&) = default;
};

struct DnsSettings {
  // Trust anchor. Empty → "<state_dir>/root.key", seeded from `trust_anchor_seed` when missing
  // or older, and kept current with RFC 5011 (ub_ctx_add_ta_autr) when `auto_update`.
  std::filesystem::path trust_anchor;
  std::filesystem::path trust_anchor_seed = "/usr/share/dns/root.key";
  bool trust_anchor_auto_update = true;
  std::vector<std::string> forwarders;                          // "192.0.2.53", "192.0.2.53@5353"; libunbound still validates
  std::filesystem::path unbound_config;                         // extra unbound.conf (auth-zones in tests)
  // In file order, one pair per value: {"infra-cache-max-rtt", "300"}. The name is stored
  // WITHOUT the trailing colon; the caller passes ub_ctx_set_option(ctx, name + ":", value).
  // Booleans are stored as "yes"/"no", integers in decimal; an array value gives one pair per
  // element (for options unbound accepts repeatedly).
  std::vector<std::pair<std::string, std::string>> unbound_options;
  Duration query_timeout = std::chrono::seconds(20);            // per query; expiry → error verdict "timeout"
  std::string self_test_name = ".";                             // start-up check: DNSKEY here must validate
  friend bool operator==(const DnsSettings&, const DnsSettings&) = default;
};

struct DeliverySettings {
  std::uint16_t port = 25;                 // SMTP port and TLSA query name _<port>._tcp (D-30)
  std::string source_address_v4;           // empty → kernel's choice
  std::string source_address_v6;
  Duration connect_timeout = std::chrono::seconds(30);
  // RFC 5321 §4.5.3.2 reply timeouts (Postfix's smtp_*_timeout defaults).
  Duration greeting_timeout = std::chrono::seconds(300);    // the initial 220
  Duration helo_timeout = std::chrono::seconds(300);        // EHLO/HELO
  Duration starttls_timeout = std::chrono::seconds(300);    // STARTTLS reply and the TLS handshake
  Duration mail_timeout = std::chrono::seconds(300);        // MAIL FROM
  Duration rcpt_timeout = std::chrono::seconds(300);        // RCPT TO
  Duration data_init_timeout = std::chrono::seconds(120);   // DATA → 354
  Duration data_block_timeout = std::chrono::seconds(180);  // each write of message data
  Duration data_done_timeout = std::chrono::seconds(600);   // the reply to the final "."
  Duration quit_timeout = std::chrono::seconds(300);
  // Connection reuse: an idle session is kept this long for the next message to the same
  // destination (same domain, host, TLSA base domain and level), for at most this many messages.
  Duration connection_cache_time = std::chrono::seconds(2);
  std::uint32_t connection_reuse_limit = 100;
  std::uint32_t max_concurrency = 100;     // all destinations together
  std::uint32_t max_concurrency_per_destination = 20;
  friend bool operator==(const DeliverySettings&, const DeliverySettings&) = default;
};

// A route: where a destination's mail goes instead of its MX hosts.
//   "mail.partner.example:587"    a non-MX destination (RFC 7672 §2.2.2, D-22): DANE still applies
//   "[mail.partner.example]:587"  the same (brackets: no MX lookup, as in Postfix)
//   "[192.0.2.1]:25"              an address literal: DANE does not apply (D-15)
//   "[IPv6:2001:db8::1]:25"       RFC 5321 §4.1.3 spelling; "[2001:db8::1]:25" is the same
struct NextHop {
  std::string host;                  // without brackets (and without "IPv6:"); names lower-cased
  std::uint16_t port = 0;            // 0 → delivery.port
  bool address_literal = false;
  // Also accepts "host" and "host:port" without brackets; an unbracketed IPv4 address is an
  // address literal too. Host names must be LDH labels of at most 63 octets, 253 in total.
  [[nodiscard]] static std::optional<NextHop> parse(std::string_view text);
  friend bool operator==(const NextHop&, const NextHop&) = default;
};

// One [policy.destination."NAME"] table. NAME "example.org" matches that domain only;
// ".example.org" matches every subdomain of it (Postfix smtp_tls_policy_maps rule).
struct DestinationPolicy {
  std::string pattern;
  std::optional<TlsLevel> level;
  std::optional<NextHop> nexthop;
  std::vector<std::string> match;   // verify/secure: replaces the level's names (P-01; tls/policy.hpp)
  SourceLocation where;
  friend bool operator==(const DestinationPolicy&, const DestinationPolicy&) = default;
};

struct PolicySettings {
  TlsLevel default_level = TlsLevel::dane;
  SourceLocation default_where;     // where [policy] default was set (line 0: built in); `check` names it
  std::vector<DestinationPolicy> destinations;

  // The most specific table for `domain` (lower-case, no trailing dot): an exact match first,
  // then ".parent" tables from the closest parent up; nullptr when none applies.
  // Comparison ignores ASCII case and one trailing dot, so callers need not normalize.
  [[nodiscard]] const DestinationPolicy* find(std::string_view domain) const noexcept;
  friend bool operator==(const PolicySettings&, const PolicySettings&) = default;
};

struct QueueSettings {
  std::filesystem::path directory;   // empty → "<state_dir>/spool"
  Duration min_backoff = std::chrono::seconds(300);
  Duration max_backoff = std::chrono::seconds(4000);
  Duration max_lifetime = std::chrono::hours(24 * 5);
  Duration delay_warning = std::chrono::hours(4);  // 0 → no delay notices
  std::uint64_t min_free_space = 100ull * 1000 * 1000;  // bytes free on the spool's file system, else 452 4.3.1
  friend bool operator==(const QueueSettings&, const QueueSettings&) = default;
};

struct LogSettings {
  enum class Format { postfix, json };
  Format format = Format::postfix;
  // Where lines go: journald natively (SYSLOG_IDENTIFIER=<syslog_name>/<service>, priority,
  // facility mail, structured fields), syslog(3), or stderr. `auto`: journald when started by
  // systemd with its output on the journal (JOURNAL_STREAM), else stderr.
  enum class Target { automatic, journal, syslog, stderr_ };
  Target target = Target::automatic;
  std::string syslog_name = "danerelay";
  std::string level = "info";        // trace|debug|info|warn|error|critical|off
  bool tls_feature_status = false;   // Postfix 3.11 "tls=" field; off: pflogsumm 1.1.5 drops such lines
  friend bool operator==(const LogSettings&, const LogSettings&) = default;
};

// The Prometheus /metrics and /healthz/* HTTP listener (relay/metrics/http_server.hpp).
struct MetricsSettings {
  bool enabled = false;
  Endpoint address{"127.0.0.1", 9425};
  // Clients that may ask; others get 403 and a closed connection. Default: loopback only.
  std::vector<Cidr> allow_networks{*Cidr::parse("127.0.0.0/8"), *Cidr::parse("::1/128")};
  friend bool operator==(const MetricsSettings&, const MetricsSettings&) = default;
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
  friend bool operator==(const Config&, const Config&) = default;
};

}  // namespace danerelay::config
