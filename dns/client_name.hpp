// dns/client_name.hpp — the name of an inbound SMTP client, decided from DNS answers: forward-
// confirmed reverse DNS (FCrDNS), as Postfix smtpd names its clients (smtpd_peer.c).
//
// What this is: pure functions, no I/O. The reverse name of an address (RFC 1035 §3.5
// in-addr.arpa, RFC 3596 §2.5 ip6.arpa), the forward queries a PTR answer calls for, and the
// decision. dns/client_name_lookup.hpp asks the queries; smtp/server_session.cpp logs the result.
//
// The rule (Postfix: "Reject the hostname if it does not list the peer address. Without further
// validation or qualification, such information must not be allowed to enter the audit trail"):
// a PTR name is the client's name only when its own A (IPv4 client) or AAAA (IPv6 client) RRset
// contains the client address. Everything else is "unknown":
//   * the PTR answer is an error (SERVFAIL, timeout, ...) or bogus: a bogus answer is never used,
//     not even for a log line (checklist D-03: bogus is a lookup error);
//   * there is no PTR (NXDOMAIN, NODATA);
//   * no PTR name is a valid host name (smtp/syntax.hpp is_host_name: LDH labels, no numeric
//     top-level label; "under_score.example" is not one);
//   * no name's forward answer holds the address — a mismatch, no address, or a forward answer
//     that is an error or bogus.
// Insecure answers count (most reverse zones are unsigned): the name is for logs and the
// Received: header, never for an access decision.
//
// Several PTR records: the valid names are tried in sorted order (libunbound may rotate an
// RRset), at most kMaxClientNameCandidates of them; the first confirmed one wins.
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "dns/types.hpp"

namespace danerelay::dns {

inline constexpr std::string_view kUnknownClient = "unknown";
inline constexpr std::size_t kMaxClientNameCandidates = 4;

// "161.0.0.127.in-addr.arpa", "1.0.0.0.….0.ip6.arpa" (normalized: no trailing dot).
[[nodiscard]] std::string reverse_name(const IpAddress& address);

enum class ClientNameStatus {
  confirmed,        // the name's A/AAAA holds the address
  disabled,         // server.reverse_lookup = false: nothing was asked
  no_ptr,           // NXDOMAIN or NODATA
  ptr_failed,       // the PTR lookup failed (SERVFAIL, timeout, malformed, ...)
  ptr_bogus,        // the PTR answer failed DNSSEC validation
  invalid_name,     // PTR records, none of them a valid host name
  forward_failed,   // no forward answer usable: error or bogus
  not_confirmed,    // forward answers, none holding the address
  timeout,          // server.reverse_lookup_timeout expired first
  cancelled,        // the session ended before the lookup did
};

[[nodiscard]] std::string_view to_string(ClientNameStatus status) noexcept;

struct ClientName {
  std::string name{kUnknownClient};  // the confirmed host name, else "unknown"
  ClientNameStatus status = ClientNameStatus::disabled;
  std::string ptr_name;              // the PTR name the status is about (invalid, not confirmed, ...); may be empty
  std::string detail;                // the failed answer, described ("bogus (…)", "servfail (rcode 2)")
  [[nodiscard]] bool confirmed() const noexcept { return status == ClientNameStatus::confirmed; }
};

// The PTR query for `address`.
[[nodiscard]] Query ptr_query(const IpAddress& address);

// The forward queries the PTR answer calls for: one per candidate name (valid host names,
// deduplicated, sorted, at most kMaxClientNameCandidates), type A for an IPv4 client, AAAA for
// IPv6. Empty when the PTR answer is not usable or names nobody.
[[nodiscard]] std::vector<Query> forward_queries(const IpAddress& address, const Answer& ptr);

// The decision. `forward` holds the answers to forward_queries(address, ptr), in any order
// (missing ones count as failed).
[[nodiscard]] ClientName decide_client_name(const IpAddress& address, const Answer& ptr, std::span<const Answer> forward);

// The warning an operator should see, in Postfix smtpd's words where it has them
// ("hostname NAME does not resolve to address ADDR[: why]"); empty when there is nothing to say
// (confirmed, disabled, no PTR, cancelled). `address` as logged ("10.1.2.3", "2001:db8::1").
[[nodiscard]] std::string client_name_warning(const ClientName& name, std::string_view address);

}  // namespace danerelay::dns
