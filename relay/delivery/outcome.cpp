// relay/delivery/outcome.cpp — see outcome.hpp. The table below is the policy; the functions after it
// only look rows up and fill in the reporter's words.
#include "relay/delivery/outcome.hpp"

#include <fmt/format.h>

#include <array>

namespace danerelay::relay {

namespace {

using A = Action;
using F = Failure;

// clang-format off
constexpr std::array kRules{
    // The destination (dns::Problem on the plan).
    Rule{F::bad_domain,            "bad_domain",            A::bounce,    "5.1.2",  "{detail}", false},
    Rule{F::bad_address_literal,   "bad_address_literal",   A::bounce,    "5.1.2",  "{detail}", false},
    Rule{F::bad_nexthop_address,   "bad_nexthop_address",   A::defer,     "4.3.5",  "{detail}", false},
    Rule{F::mx_lookup_failed,      "mx_lookup_failed",      A::defer,     "4.4.3",  "{detail}", false},               // D-05
    Rule{F::mx_malformed,          "mx_malformed",          A::defer,     "4.4.3",  "{detail}", false},               // D-05
    Rule{F::mx_no_valid_names,     "mx_no_valid_names",     A::defer,     "4.4.3",  "MX RRset for {name} has no valid host names", false},
    Rule{F::null_mx,               "null_mx",               A::bounce,    "5.1.10", "Domain {name} does not accept mail (nullMX)", false},  // N-01
    Rule{F::domain_not_found,      "domain_not_found",      A::bounce,    "5.4.4",  "{detail}", false},
    Rule{F::no_hosts,              "no_hosts",              A::defer,     "4.4.3",  "no usable MX host for {name}", false},
    Rule{F::resolution_incomplete, "resolution_incomplete", A::defer,     "4.3.0",  "internal error: destination resolution did not converge", false},
    // One host (dns::Problem on a host): never connected to; the next host is tried.
    Rule{F::host_lookup_failed,    "host_lookup_failed",    A::next_host, "4.4.3",  "{detail}", false},               // D-06
    Rule{F::host_not_found,        "host_not_found",        A::next_host, "5.4.4",  "{detail}", false},               // D-23
    Rule{F::tlsa_lookup_failed,    "tlsa_lookup_failed",    A::next_host, "4.7.5",  "{detail}", false},               // D-07, D-13
    Rule{F::tls_policy,            "tls_policy",            A::next_host, "4.7.5",  "{detail}", false},               // D-14, D-20, P-02
    // The destination is ourselves (L-01, Postfix smtp_addr.c and smtp_connect.c): the best MX
    // bounces; a configured next hop is a configuration problem and waits for the fix (Postfix's
    // relayhost rule: 4.3.5, the text kept).
    Rule{F::loops_back,            "loops_back",            A::bounce,    "5.4.6",  "mail for {name} loops back to myself", false},
    Rule{F::route_loops_back,      "route_loops_back",      A::defer,     "4.3.5",  "mail for {name} loops back to myself", false},
    // One connection (smtp::HostFailure::Kind). A refusal in words keeps the server's detail, class 4.
    Rule{F::connect,               "connect",               A::next_host, "4.4.1",  "{detail}", false},
    Rule{F::lost_connection,       "lost_connection",       A::next_host, "4.4.2",  "{detail}", false},
    Rule{F::timeout,               "timeout",               A::next_host, "4.4.2",  "{detail}", false},
    Rule{F::protocol,              "protocol",              A::next_host, "4.5.0",  "{detail}", true},
    Rule{F::greeting_rejected,     "greeting_rejected",     A::next_host, "4.0.0",  "{detail}", true},
    Rule{F::helo_rejected,         "helo_rejected",         A::next_host, "4.0.0",  "{detail}", true},
    Rule{F::tls_not_offered,       "tls_not_offered",       A::next_host, "4.7.4",  "{detail}", false},               // D-10, D-11
    Rule{F::starttls_rejected,     "starttls_rejected",     A::next_host, "4.7.4",  "{detail}", true},               // D-10, D-11
    Rule{F::tls_injection,         "tls_injection",         A::next_host, "4.7.5",  "{detail}", false},
    Rule{F::tls_handshake,         "tls_handshake",         A::next_host, "4.7.5",  "{detail}", false},               // D-12
    Rule{F::tls_authentication,    "tls_authentication",    A::next_host, "4.7.5",  "{detail}", false},               // D-39, D-45
    Rule{F::local_io,              "local_io",              A::next_host, "4.3.0",  "{detail}", false},
    // Checked before the commands (smtp::LocalCheck).
    Rule{F::smtputf8_not_offered,  "smtputf8_not_offered",  A::bounce,    "5.6.7",  "{detail}", false},               // RFC 6531 §3.4
    Rule{F::size_exceeded,         "size_exceeded",         A::bounce,    "5.3.4",  "{detail}", false},               // RFC 1870 §6.1
    Rule{F::bad_sender_syntax,     "bad_sender_syntax",     A::bounce,    "5.1.7",  "bad sender address syntax", false},
    Rule{F::bad_recipient_syntax,  "bad_recipient_syntax",  A::bounce,    "5.1.3",  "bad recipient address syntax", false},
    // The queue.
    Rule{F::no_domain_part,        "no_domain_part",        A::bounce,    "5.1.3",  "bad address syntax: no domain part", false},
    Rule{F::bad_idn_domain,        "bad_idn_domain",        A::bounce,    "5.1.2",  "invalid internationalized domain name {name}", false},
    Rule{F::internal_error,        "internal_error",        A::defer,     "4.3.0",  "internal error: {detail}", false},
    Rule{F::expired,               "expired",               A::bounce,    "4.4.7",  "message expired in queue", false},
    Rule{F::expired_by_admin,      "expired_by_admin",      A::bounce,    "4.4.7",  "message expired by the administrator", false},
};
// clang-format on

constexpr bool rows_in_order() {
  for (std::size_t i = 0; i < kRules.size(); ++i) {
    if (static_cast<std::size_t>(kRules[i].failure) != i) return false;
  }
  return kRules.size() == static_cast<std::size_t>(Failure::expired_by_admin) + 1;
}
static_assert(rows_in_order(), "one row per Failure, in enum order");

bool valid_status(std::string_view s) {
  // class "." subject "." detail: 1 digit, 1–3 digits, 1–3 digits (RFC 3463 §2).
  if (s.size() < 5 || s[1] != '.') return false;
  std::size_t i = 2;
  for (int part = 0; part < 2; ++part) {
    std::size_t digits = 0;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i, ++digits;
    if (digits == 0 || digits > 3) return false;
    if (part == 0) {
      if (i >= s.size() || s[i] != '.') return false;
      ++i;
    }
  }
  return i == s.size() && s[0] >= '2' && s[0] <= '5';
}

// The server's enhanced code with the class of its reply (RFC 3463 §2: the class must agree),
// or `fallback` when it sent none.
std::string with_class(const smtp::Reply& reply, char klass, std::string_view fallback) {
  if (!valid_status(reply.enhanced)) return std::string(fallback);
  std::string s = reply.enhanced;
  s[0] = klass;
  return s;
}

}  // namespace

std::span<const Rule> outcome_rules() noexcept { return kRules; }

const Rule& rule_for(Failure failure) noexcept { return kRules[static_cast<std::size_t>(failure)]; }

std::string_view to_string(Failure failure) noexcept { return rule_for(failure).name; }

Outcome outcome_of(Failure failure, std::string_view detail, std::string_view name) {
  const Rule& rule = rule_for(failure);
  Outcome o;
  o.failure = failure;
  o.action = rule.action;
  o.status = std::string(rule.status);
  o.text = fmt::format(fmt::runtime(rule.text), fmt::arg("detail", detail), fmt::arg("name", name));
  return o;
}

Failure failure_of(dns::Problem problem) noexcept {
  using P = dns::Problem;
  switch (problem) {
    case P::bad_domain: return F::bad_domain;
    case P::bad_address_literal: return F::bad_address_literal;
    case P::bad_nexthop_address: return F::bad_nexthop_address;
    case P::mx_lookup_failed: return F::mx_lookup_failed;
    case P::mx_malformed: return F::mx_malformed;
    case P::mx_no_valid_names: return F::mx_no_valid_names;
    case P::null_mx: return F::null_mx;
    case P::domain_not_found: return F::domain_not_found;
    case P::no_hosts: return F::no_hosts;
    case P::resolution_incomplete: return F::resolution_incomplete;
    case P::host_lookup_failed: return F::host_lookup_failed;
    case P::host_not_found: return F::host_not_found;
    case P::tlsa_lookup_failed: return F::tlsa_lookup_failed;
    case P::none: break;
  }
  return F::internal_error;  // a plan that failed without saying why
}

Failure failure_of(smtp::HostFailure::Kind kind) noexcept {
  using K = smtp::HostFailure::Kind;
  switch (kind) {
    case K::policy_defer: return F::tls_policy;
    case K::connect: return F::connect;
    case K::lost_connection: return F::lost_connection;
    case K::timeout: return F::timeout;
    case K::protocol: return F::protocol;
    case K::greeting_rejected: return F::greeting_rejected;
    case K::helo_rejected: return F::helo_rejected;
    case K::tls_not_offered: return F::tls_not_offered;
    case K::starttls_rejected: return F::starttls_rejected;
    case K::tls_injection: return F::tls_injection;
    case K::tls_handshake: return F::tls_handshake;
    case K::tls_authentication: return F::tls_authentication;
    case K::local: return F::local_io;
  }
  return F::internal_error;
}

Failure failure_of(smtp::LocalCheck check) noexcept {
  using C = smtp::LocalCheck;
  switch (check) {
    case C::smtputf8_not_offered: return F::smtputf8_not_offered;
    case C::size_exceeded: return F::size_exceeded;
    case C::bad_sender_syntax: return F::bad_sender_syntax;
    case C::bad_recipient_syntax: return F::bad_recipient_syntax;
  }
  return F::internal_error;
}

Outcome outcome_of(const smtp::HostFailure& failure) {
  Outcome o = outcome_of(failure_of(failure.kind), failure.text);
  // A refusal in words before MAIL (or a refused RSET): the host is unusable, nobody is bounced
  // for it, so the server's detail is kept with class 4 (Postfix smtp_skip_5xx_greeting).
  if (failure.reply && rule_for(o.failure).server_detail) o.status = with_class(*failure.reply, '4', o.status);
  return o;
}

Outcome reply_outcome(const smtp::Reply& reply, std::string text) {
  Outcome o;
  o.reply_decided = true;
  o.text = std::move(text);
  const int klass = reply.code / 100;
  if (klass == 2) {
    o.action = Action::delivered;
    o.status = with_class(reply, '2', "2.0.0");
  } else if (klass == 4) {
    o.action = Action::defer;
    o.status = with_class(reply, '4', "4.0.0");
  } else if (klass == 5) {
    o.action = Action::bounce;
    o.status = with_class(reply, '5', "5.0.0");
  } else {
    o.action = Action::defer;  // a 3xx where none belongs: the server broke the protocol
    o.status = "4.5.0";
  }
  return o;
}

Outcome outcome_of(const smtp::RecipientOutcome& r) {
  if (r.reply) return reply_outcome(*r.reply, r.text);
  if (r.check) return outcome_of(failure_of(*r.check), r.text);
  if (r.broken) {
    Outcome o = outcome_of(failure_of(*r.broken), r.text);
    o.action = Action::defer;  // the transaction broke: what it left undecided waits
    return o;
  }
  return outcome_of(Failure::internal_error, "no outcome for this recipient");
}

Outcome outcome_of(const dns::Host& host) { return outcome_of(failure_of(host.problem), host.reason, host.name); }

Outcome outcome_of(const dns::DeliveryPlan& plan) {
  Outcome o = outcome_of(failure_of(plan.problem), plan.reason, plan.domain);
  // A host's problem reported for the whole plan: no host is left, so it waits, unless every
  // host is definitively absent.
  if (o.action == Action::next_host) o.action = o.status.starts_with('5') ? Action::bounce : Action::defer;
  return o;
}

}  // namespace danerelay::relay
