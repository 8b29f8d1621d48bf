// relay/core/failure.hpp — the vocabulary of the outcome policy (relay/delivery/outcome.hpp): what a delivery
// attempt does with recipients, and every kind of failure it can report. No dependencies, so a
// RecipientResult can carry the kind that decided it (for the log, the queue and metrics).
#pragma once

namespace danerelay::relay {

// What the attempt does with the recipients the failure touches.
enum class Action {
  delivered,  // a 2xx reply to the final "." (only from reply_outcome)
  next_host,  // this host (address) is not used for this message; deferred when none is left
  defer,      // the recipients stay queued and are tried again later
  bounce,     // the recipients are returned to the sender
};

// Every failure kind, whichever layer reports it.
enum class Failure {
  // The destination, from the DNS plan (dns::Problem).
  bad_domain,
  bad_address_literal,
  bad_nexthop_address,
  mx_lookup_failed,
  mx_malformed,
  mx_no_valid_names,
  null_mx,
  domain_not_found,
  no_hosts,
  resolution_incomplete,
  // One host, from the DNS plan.
  host_lookup_failed,
  host_not_found,
  tlsa_lookup_failed,
  // One host, from the TLS policy (Requirement::defer: mandatory DANE or PKIX cannot be met).
  tls_policy,
  // The destination is this relay itself (L-01): a host address is one of its own listener
  // endpoints (relay/delivery/loop_detection.hpp). No connection is made.
  loops_back,        // the best MX (or the recipient's address literal) is ourselves
  route_loops_back,  // a configured next hop (policy.destination.*.nexthop) is ourselves
  // One connection (smtp::HostFailure::Kind).
  connect,
  lost_connection,
  timeout,
  protocol,
  greeting_rejected,
  helo_rejected,
  tls_not_offered,
  starttls_rejected,
  tls_injection,
  tls_handshake,
  tls_authentication,
  local_io,
  // One message or recipient, checked before its commands (smtp::LocalCheck).
  smtputf8_not_offered,
  size_exceeded,
  bad_sender_syntax,
  bad_recipient_syntax,
  // The queue.
  no_domain_part,
  bad_idn_domain,
  internal_error,
  expired,
  expired_by_admin,
};

}  // namespace danerelay::relay
