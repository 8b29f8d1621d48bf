// dns/plan.hpp — RFC 7672 destination resolution as a pure function: DNS answers in, delivery
// plan out.
//
// What this is: the sans-I/O planner. `advance_plan(request, answers)` looks at the answers gathered
// so far and either names the queries it still needs (all that can be asked in parallel) or
// returns the finished DeliveryPlan. The driver (dns/destination.hpp) loops: ask the resolver,
// add the answers, call advance_plan again. Tests drive the same function from tables of answers,
// and also through libunbound against a real signed hierarchy.
//
// What this is not: the TLS policy. The plan records DNS facts — MX and address security, the
// TLSA RRset found (or why none) — and which hosts cannot be used at all. Whether TLSA records
// are *usable*, and so whether a host needs authenticated TLS, depends on the configured digests
// and is decided by tls/ (RFC 7672 §2.2, D-10…D-14, D-33).
//
// Spec: RFC 7672 §2.1 (DNS errors), §2.2.1 (MX), §2.2.2 (non-MX destinations, CNAMEs),
// §2.2.3 (TLSA lookup); RFC 5321 §5.1 (MX order, implicit MX); RFC 7505 (null MX).
// Checklist ids (../shared/rfc-checklist.md) are cited at the lines that implement them.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "dns/types.hpp"

namespace danerelay::dns {

// A configured next hop instead of the MX lookup (RFC 7672 §2.2.2: a non-MX destination, D-22).
struct Route {
  std::string host;               // host name, or an IP address when address_literal
  std::uint16_t port = 0;         // 0 → PlanRequest::port
  bool address_literal = false;   // DANE does not apply (D-15)
};

struct PlanRequest {
  std::string domain;             // recipient domain (normalized), or "[192.0.2.1]" / "[IPv6:…]"
  std::uint16_t port = 25;        // SMTP port; TLSA at _<port>._tcp.<base> (D-30)
  std::optional<Route> route;
  std::uint64_t shuffle_seed = 0; // order among equal-preference MX hosts (RFC 5321 §5.1)
  std::size_t max_hosts = 10;     // MX hosts kept after sorting
  // False when the destination's TLS level does not use DANE (none, may, encrypt, verify,
  // secure): no TLSA query is made, so a broken TLSA zone cannot make such a host unusable.
  bool lookup_tlsa = true;
};

enum class DestinationKind { mx, implicit_mx, nexthop, address_literal };
// deliver: at least one host is usable. failed: none is; `DeliveryPlan::problem` says why, and
// the relay's outcome policy (relay/delivery/outcome.hpp) decides whether that defers or bounces.
enum class PlanStatus { deliver, failed };

// What DNS says is wrong with a destination or one host: a fact, never a status code.
enum class Problem {
  none,
  bad_domain,             // the recipient domain is not a valid host name
  bad_address_literal,    // "[…]" that is not an address
  bad_nexthop_address,    // a configured address-literal next hop that is not an address
  mx_lookup_failed,       // SERVFAIL, timeout, bogus (D-05)
  mx_malformed,           // an MX record that does not decode (D-05)
  mx_no_valid_names,      // every MX target is an invalid host name (not null MX)
  null_mx,                // RFC 7505: "MX 0 ." alone
  domain_not_found,       // NXDOMAIN for the MX query
  no_hosts,               // nothing left to try
  resolution_incomplete,  // the planner did not converge (a bug, never a guess)
  host_lookup_failed,     // A/AAAA lookup failure with no address found (D-06, D-23)
  host_not_found,         // the host definitively has no address
  tlsa_lookup_failed,     // a TLSA lookup failed (D-07, D-08, D-13)
};

// What DNS says about TLSA for one host. Only `found` carries records.
enum class TlsaState {
  not_applicable,    // address literal: DANE does not apply (D-15)
  insecure_address,  // address RRset / CNAME chain not secure: TLSA not looked up (D-24, D-26)
  found,             // secure TLSA RRset (usable or not is tls/'s call)
  secure_denial,     // secure NXDOMAIN/NODATA at every candidate base domain (D-04, D-28)
  insecure,          // TLSA lookup insecure at the candidates: DANE does not apply (D-28, D-31)
  error,             // a TLSA lookup failed (SERVFAIL, timeout, bogus): host unusable (D-07, D-13)
  not_requested,     // the destination's TLS level does not use DANE: TLSA not looked up
};

[[nodiscard]] std::string_view to_string(DestinationKind kind) noexcept;
[[nodiscard]] std::string_view to_string(PlanStatus status) noexcept;
[[nodiscard]] std::string_view to_string(TlsaState state) noexcept;
[[nodiscard]] std::string_view to_string(Problem problem) noexcept;

struct HostTlsa {
  TlsaState state = TlsaState::not_applicable;
  std::vector<std::string> candidates;  // base domain candidates in order (D-25, D-26, D-27, D-35)
  std::string base_domain;              // candidate whose answer decided; SNI and reference id (D-32, D-43)
  std::string qname;                    // _<port>._tcp.<base_domain>
  std::string owner;                    // qname after CNAME expansion (D-31)
  std::vector<TlsaRecord> records;      // the secure RRset, when found
  std::size_t malformed = 0;            // secure RDATA too short to be a TLSA record: unusable, but
                                        // still commits the host to TLS (D-33)
  std::string detail;                   // answer description for the logs
};

struct Host {
  std::string name;                     // as published in the MX RRset (D-19) or configured
  std::string expanded;                 // after CNAME expansion of the address lookup
  std::uint16_t preference = 0;
  Verdict address_security = Verdict::error;  // secure | insecure once addresses were found
  bool cname_secure = false;            // expanded != name: the initial CNAME validated (D-26)
  std::vector<IpAddress> addresses;
  HostTlsa tlsa;
  bool usable = false;
  Problem problem = Problem::none;      // when unusable: why
  std::string reason;                   // when unusable: Postfix wording
  std::vector<std::string> notes;       // why, in detail (validator reasons, partial failures)
};

struct DeliveryPlan {
  std::string domain;
  std::string next_hop;                 // domain after CNAME expansion of the MX lookup (D-17)
  DestinationKind kind = DestinationKind::mx;
  std::uint16_t port = 25;
  // The MX RRset's verdict (for implicit MX: the NODATA proof's). A configured next hop or an
  // address literal has no MX lookup; it is reported as secure, since the next hop comes from
  // the operator's configuration, not from DNS.
  Verdict mx_security = Verdict::error;
  PlanStatus status = PlanStatus::failed;
  Problem problem = Problem::none;      // when failed: why (for a host problem: the host reported)
  std::string reason;                   // when failed: Postfix wording
  std::vector<Host> hosts;              // in the order to try them
  std::vector<std::string> notes;

  // RFC 7672 §2.2.1 / D-18: DANE may still authenticate the hosts, but never as "Verified",
  // and dane-only must defer (D-20).
  [[nodiscard]] bool mx_insecure() const noexcept {
    return (kind == DestinationKind::mx || kind == DestinationKind::implicit_mx) && mx_security != Verdict::secure;
  }
};

using AnswerMap = std::map<Query, Answer>;

struct PlanStep {
  std::vector<Query> queries;           // still needed; ask them all, then call advance_plan again
  std::optional<DeliveryPlan> plan;     // set when done (then queries is empty)
};

// The planner. Pure and deterministic: the same request and answers give the same step.
[[nodiscard]] PlanStep advance_plan(const PlanRequest& request, const AnswerMap& answers);

// "_25._tcp.mx.example.org"
[[nodiscard]] std::string tlsa_qname(std::uint16_t port, std::string_view base_domain);

}  // namespace danerelay::dns
