// relay/cli/check_report.hpp — what `danerelay check DOMAIN` reports, as data, and its two
// renderings: danecheck-like lines for a person, one JSON document for monitoring.
//
// What this is: pure functions. make_check() takes what the delivery code computed — the
// resolution (dns::resolve_destination), the routing (relay::route_for: level and the rule that
// set it) and the per-host tls::decide() policy — and keeps the facts a person asks about: the MX
// RRset and its DNSSEC verdict, each host's A/AAAA answers, its TLSA RRset with each record's
// usability and why, the effective level and its config rule, what the delivery would do with
// each host. With --connect the caller adds one relay::ProbeResult per address (the delivery's
// own client, up to the handshake and QUIT). finish_check() then decides, from those facts only:
// warnings, whether the domain is deliverable, and internet.nl's three summary headings
// ("DANE existence / DANE validity / DANE rollover scheme").
//
// Exit status (check_exit): 0 deliverable under the effective policy (a failing host with
// another that works is a warning), 1 the delivery would defer or bounce (or, with --strict, any
// host or address fails), 3 the DNSSEC self-test failed. 2 (config) and 64 (usage) are decided
// before a report exists.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "dns/destination.hpp"
#include "relay/delivery/probe.hpp"
#include "relay/delivery/routing.hpp"
#include "tls/policy.hpp"

namespace danerelay::relay {

// One DNS answer as danecheck prints it: "name. IN TYPE ; verdict" and its records.
struct DnsLine {
  std::string name;
  std::string type;                  // "MX", "A", "AAAA", "TLSA"
  std::string verdict;               // dns::Answer::describe(): "secure", "insecure NODATA", "bogus (…)", "servfail"
  std::string via;                   // owner after CNAME expansion, when different
  std::vector<std::string> records;  // presentation form
};

// One record of a secure TLSA RRset and whether a DANE SMTP client may use it (RFC 7672 §3.1.3,
// RFC 7671 §9: the same filter the delivery applies, tls::usable_records).
struct TlsaCheck {
  std::string record;  // "3 1 1 ef97…"
  bool usable = false;
  std::string why;     // usable: "DANE-EE(3) SPKI(1) SHA2-256(1)"; else the reason it is not
};

struct AddressCheck {
  std::string address;
  bool pass = false;
  std::string trust;        // "Verified", "Trusted", "Untrusted", "Anonymous"; "" without TLS
  std::string protocol;     // "TLSv1.3"
  std::string cipher;
  std::string matched;      // the TLSA record that matched
  int depth = -1;
  std::string peer_name;    // the name the certificate matched (DANE-TA, PKIX)
  bool starttls_offered = false;
  bool handshake = false;   // a TLS handshake was attempted (STARTTLS offered and accepted)
  std::string failure;      // the handshake or session failure, Postfix's words
  std::string note;         // e.g. the plaintext retry after a failed opportunistic handshake
  std::vector<std::string> log;  // Postfix's TLS lines for this session
};

struct HostCheck {
  std::string name;
  std::string expanded;
  std::uint16_t preference = 0;
  bool mx_host = false;                // a host of an MX RRset (has a preference)
  std::vector<DnsLine> address_answers;
  std::string address_security;        // "secure" / "insecure" once addresses were found
  std::vector<std::string> addresses;
  std::string tlsa_state;              // dns::to_string(TlsaState)
  std::string tlsa_text;               // one readable line: "none (secure denial)", "LOOKUP ERROR: …"
  std::optional<DnsLine> tlsa_answer;  // the TLSA lookup that decided, when one was made
  std::vector<TlsaCheck> tlsa;         // the secure RRset, when found
  std::size_t malformed = 0;
  bool planned_usable = false;         // the planner kept the host (its lookups did not fail)
  std::string requirement;             // tls::to_string(Requirement); "" when the host is unusable
  std::string tls_feature;             // Postfix 3.11 tls= value
  std::string sni;
  std::vector<std::string> notes;
  std::string problem;                 // why the delivery would not use it: "4.7.5 TLSA lookup error …"
  bool connected = false;              // --connect ran for this host
  std::vector<AddressCheck> connects;
  bool ok = false;                     // set by finish_check
};

struct SummaryLine {
  std::string result;  // "yes" / "partly" / "no" / "valid" / "invalid" / "untested" / "ok" / "none" / "n/a"
  std::string text;
};

struct CheckReport {
  bool probe = false;                  // `danerelay probe`: one server, not a recipient domain
  std::string domain;
  std::uint16_t port = 25;
  bool self_test_ok = true;
  std::string self_test;               // dns::SelfTest::summary(); "" when skipped
  std::string level;                   // config::to_string
  std::string rule;                    // "default" or "[policy.destination.\"x\"] at FILE:LINE"
  std::string rule_file;
  std::uint32_t rule_line = 0;
  std::string kind;                    // dns::to_string(DestinationKind)
  std::string next_hop;
  std::string mx_security;             // the plan's MX verdict
  std::optional<DnsLine> mx_answer;
  std::vector<HostCheck> hosts;
  std::vector<std::string> notes;
  std::string plan_status;             // "deliver" / "failed"
  std::string plan_action;             // "deliver", "defer", "bounce"
  std::string plan_dsn;
  std::string plan_text;
  bool connected = false;
  // finish_check:
  bool deliverable = false;
  std::vector<std::string> warnings;
  SummaryLine dane_existence, dane_validity, dane_rollover;
};

// The facts of one resolution under one routing (the policy of each host decided as delivery does).
[[nodiscard]] CheckReport make_check(const dns::Resolution& resolution, const Routing& routing, const config::Config& config);

// The policy delivery would use for each host of the plan (tls::decide with the configured digests
// and the destination's match list); defer for hosts the planner made unusable.
[[nodiscard]] tls::HostPolicy host_policy(const dns::DeliveryPlan& plan, const dns::Host& host, const Routing& routing,
                                          const config::Config& config);

// One --connect result for host `index` of the report.
void add_probe(CheckReport& report, std::size_t index, const ProbeResult& probe);

// Warnings, deliverability and the summary, from the facts.
void finish_check(CheckReport& report);

[[nodiscard]] int check_exit(const CheckReport& report, bool strict) noexcept;

[[nodiscard]] std::string format_check(const CheckReport& report);
[[nodiscard]] nlohmann::json check_json(const CheckReport& report, bool strict);

// "DANE-EE(3) SPKI(1) SHA2-256(1)" (RFC 7218 acronyms).
[[nodiscard]] std::string tlsa_parameters(const dns::TlsaRecord& record);

// Per record: usable or why not, with the same filter and digest agility as the delivery.
[[nodiscard]] std::vector<TlsaCheck> tlsa_checks(const std::vector<dns::TlsaRecord>& records,
                                                 const std::vector<std::string>& digest_order);

}  // namespace danerelay::relay
