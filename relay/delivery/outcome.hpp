// relay/delivery/outcome.hpp — the one delivery-outcome policy: every way a delivery attempt can fail maps
// to (action, enhanced status, reply text) in one table (outcome.cpp), tested as a table.
//
// What this is: the only place where a failure becomes a DSN code (RFC 3463) and a decision. The
// layers below report *what happened* as typed values: the DNS planner a dns::Problem, the TLS
// policy Requirement::defer, the SMTP client a HostFailure::Kind, a LocalCheck or the server's
// Reply. They never write a status code. The queue's own failures (no domain part, an internal
// error, the lifetime) are rows here too.
//
// Rules (Postfix smtp_trouble.c, RFC 5321 §4.2.1, §3.8; RFC 7672 §2.2; RFC 7505):
// - A refusal before MAIL (greeting, EHLO/HELO, STARTTLS), 4xx or 5xx, makes that host unusable
//   for this message, exactly like a connection failure: the next MX is tried, and if none
//   delivers the recipients are deferred with a 4.x.x status (the server's detail, class 4).
//   A refusal before MAIL never bounces a recipient (Postfix smtp_skip_5xx_greeting, and the
//   5xx EHLO/STARTTLS cases likewise).
// - Once a transaction runs, the server's reply decides: 2xx sent, 4xx deferred, 5xx bounced,
//   with the server's enhanced code (its class corrected to the reply's when they disagree).
// - DNS: a failed or malformed MX lookup, an MX RRset whose targets are all invalid names, and
//   a failed host or TLSA lookup defer (4.4.3, 4.7.5); NXDOMAIN and null MX bounce (5.4.4,
//   5.1.10 N-01); only a definitive absence of every host bounces.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "dns/plan.hpp"
#include "relay/core/failure.hpp"
#include "smtp/client_session.hpp"
#include "smtp/reply.hpp"

namespace danerelay::relay {

struct Rule {
  Failure failure;
  std::string_view name;  // "tls_authentication": for logs and, in the next issue, metrics labels
  Action action;             // for a host-level row (next_host): a plan that fails with it defers
                             // on a 4.x.x status and bounces on a 5.x.x one
  std::string_view status;  // the enhanced status (RFC 3463) the recipients get
  std::string_view text;    // the reason; "{detail}" is what the reporter said, "{name}" the domain or host
  bool server_detail;       // a server reply caused it: its enhanced detail is kept, with class 4
};

// The table, in Failure order; every Failure has exactly one row.
[[nodiscard]] std::span<const Rule> outcome_rules() noexcept;
[[nodiscard]] const Rule& rule_for(Failure failure) noexcept;
[[nodiscard]] std::string_view to_string(Failure failure) noexcept;

// A decision for the recipients one failure (or one reply) touches.
struct Outcome {
  Failure failure = Failure::internal_error;  // meaningless when `reply_decided`
  bool reply_decided = false;                 // a server reply in a transaction decided it
  Action action = Action::defer;
  std::string status;                         // "4.7.5"
  std::string text;
};

// One failure kind with the reporter's words (`detail`) about `name` (domain or host).
[[nodiscard]] Outcome outcome_of(Failure failure, std::string_view detail = {}, std::string_view name = {});

// The layers' typed values, mapped to their rows.
[[nodiscard]] Failure failure_of(dns::Problem problem) noexcept;
[[nodiscard]] Failure failure_of(smtp::HostFailure::Kind kind) noexcept;
[[nodiscard]] Failure failure_of(smtp::LocalCheck check) noexcept;

// A host-level failure from the SMTP client. When a server reply caused it (a refusal before
// MAIL, a bad RSET reply), the status keeps the server's detail with class 4 (the host is only
// unusable, nobody is bounced for it).
[[nodiscard]] Outcome outcome_of(const smtp::HostFailure& failure);

// A server reply in a transaction: 2xx sent (action unused), 4xx defer, 5xx bounce, anything else
// (a 3xx where none belongs) deferred as a protocol error 4.5.0. `text` is the client's wording.
[[nodiscard]] Outcome reply_outcome(const smtp::Reply& reply, std::string text);

// One recipient's outcome as the SMTP client reported it: its reply, its local check, or the
// connection failure that left it undecided.
[[nodiscard]] Outcome outcome_of(const smtp::RecipientOutcome& outcome);

// A DNS plan that delivers nowhere (status failed) and a host the plan marked unusable.
[[nodiscard]] Outcome outcome_of(const dns::DeliveryPlan& plan);
[[nodiscard]] Outcome outcome_of(const dns::Host& host);

}  // namespace danerelay::relay
