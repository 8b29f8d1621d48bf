// dns/plan.cpp — the RFC 7672 §2.2 destination planner (see plan.hpp). Pure: no I/O, no clock;
// randomness only from the request's seed.
//
// The planner recomputes the whole plan from the answers on every call. A destination needs at
// most five rounds (MX → A/AAAA → CNAME check → TLSA at two candidates) over a handful of
// records, so recomputation costs microseconds and keeps every step a plain function of its input.
#include "dns/plan.hpp"

#include <algorithm>
#include <random>

#include "smtp/syntax.hpp"

namespace danerelay::dns {

std::string_view to_string(DestinationKind kind) noexcept {
  switch (kind) {
    case DestinationKind::mx: return "mx";
    case DestinationKind::implicit_mx: return "implicit-mx";
    case DestinationKind::nexthop: return "nexthop";
    case DestinationKind::address_literal: return "address-literal";
  }
  return "?";
}

std::string_view to_string(PlanStatus status) noexcept {
  switch (status) {
    case PlanStatus::deliver: return "deliver";
    case PlanStatus::failed: return "failed";
  }
  return "?";
}

std::string_view to_string(Problem problem) noexcept {
  switch (problem) {
    case Problem::none: return "none";
    case Problem::bad_domain: return "bad_domain";
    case Problem::bad_address_literal: return "bad_address_literal";
    case Problem::bad_nexthop_address: return "bad_nexthop_address";
    case Problem::mx_lookup_failed: return "mx_lookup_failed";
    case Problem::mx_malformed: return "mx_malformed";
    case Problem::mx_no_valid_names: return "mx_no_valid_names";
    case Problem::null_mx: return "null_mx";
    case Problem::domain_not_found: return "domain_not_found";
    case Problem::no_hosts: return "no_hosts";
    case Problem::resolution_incomplete: return "resolution_incomplete";
    case Problem::host_lookup_failed: return "host_lookup_failed";
    case Problem::host_not_found: return "host_not_found";
    case Problem::tlsa_lookup_failed: return "tlsa_lookup_failed";
  }
  return "?";
}

std::string_view to_string(TlsaState state) noexcept {
  switch (state) {
    case TlsaState::not_applicable: return "not-applicable";
    case TlsaState::insecure_address: return "insecure-address";
    case TlsaState::found: return "found";
    case TlsaState::secure_denial: return "secure-denial";
    case TlsaState::insecure: return "insecure";
    case TlsaState::error: return "error";
    case TlsaState::not_requested: return "not-requested";
  }
  return "?";
}

std::string tlsa_qname(std::uint16_t port, std::string_view base_domain) {
  return "_" + std::to_string(port) + "._tcp." + std::string(base_domain);
}

namespace {

// Postfix's wording (smtp_addr.c, dns_strerror) so that operators' log tools keep working.
std::string not_found_text(std::string_view name, RRType type, bool temporary) {
  std::string out = "Host or domain name not found. Name service error for name=" + std::string(name) +
                    " type=" + std::string(to_string(type)) + ": Host not found";
  if (temporary) out += ", try again";
  return out;
}

const Answer* find(const AnswerMap& answers, const std::string& name, RRType type) {
  auto it = answers.find(Query{name, type});
  return it == answers.end() ? nullptr : &it->second;
}

// Requests a query once per round.
void need(std::vector<Query>& queries, std::string name, RRType type) {
  Query q{std::move(name), type};
  if (std::find(queries.begin(), queries.end(), q) == queries.end()) queries.push_back(std::move(q));
}

std::optional<IpAddress> parse_literal(std::string_view text) {
  // "[192.0.2.1]", "[IPv6:2001:db8::1]", "[2001:db8::1]" (smtp/syntax.hpp) or a bare address.
  if (text.starts_with('[')) {
    const auto literal = syntax::parse_address_literal(text, true);
    if (!literal) return std::nullopt;
    return IpAddress::parse(literal->address);
  }
  return IpAddress::parse(text);
}

Host literal_host(std::string display, IpAddress ip, std::uint16_t preference) {
  Host h;
  h.name = std::move(display);
  h.expanded = h.name;
  h.preference = preference;
  h.address_security = Verdict::insecure;
  h.addresses.push_back(ip);
  h.tlsa.state = TlsaState::not_applicable;  // D-15
  h.usable = true;
  return h;
}

void mark_unusable(Host& h, Problem problem, std::string reason) {
  h.usable = false;
  h.problem = problem;
  h.reason = std::move(reason);
}

// RFC 7672 §2.2.3: look up TLSA at each candidate base domain in turn.
// Returns false when another query is needed first.
bool resolve_tlsa(Host& h, const PlanRequest& req, std::uint16_t port, const AnswerMap& answers,
                  std::vector<Query>& queries) {
  bool any_insecure = false;
  for (const std::string& candidate : h.tlsa.candidates) {
    const std::string qname = tlsa_qname(port, candidate);
    const Answer* a = find(answers, qname, RRType::TLSA);
    if (a == nullptr) {
      need(queries, qname, RRType::TLSA);
      return false;
    }
    h.tlsa.base_domain = candidate;
    h.tlsa.qname = qname;
    h.tlsa.owner = a->canonical_name.empty() ? qname : a->canonical_name;
    h.tlsa.detail = a->describe();
    if (!a->ok()) {
      // D-07, D-08, D-13: any failure while locating TLSA records makes the host unusable;
      // an error is never read as "no records".
      h.tlsa.state = TlsaState::error;
      h.tlsa.records.clear();
      mark_unusable(h, Problem::tlsa_lookup_failed, "TLSA lookup error for " + h.name + ":" + std::to_string(port));
      return true;
    }
    if (a->secure() && a->has_data()) {
      // D-33: one secure TLSA record, even an unusable or malformed one, commits the host to TLS.
      h.tlsa.state = TlsaState::found;
      for (const auto& rd : a->rdata) {
        if (auto r = decode_tlsa(rd)) {
          h.tlsa.records.push_back(std::move(*r));
        } else {
          ++h.tlsa.malformed;
        }
      }
      return true;
    }
    // Secure denial or an insecure answer (also one reached through an insecure CNAME, D-31):
    // this candidate gives nothing; try the next one (D-27, D-28).
    if (!a->secure()) any_insecure = true;
  }
  (void)req;
  h.tlsa.state = any_insecure ? TlsaState::insecure : TlsaState::secure_denial;
  if (h.tlsa.candidates.size() > 1) h.tlsa.base_domain = h.tlsa.candidates.front();
  if (!h.tlsa.base_domain.empty()) h.tlsa.qname = tlsa_qname(port, h.tlsa.base_domain);
  return true;
}

// RFC 7672 §2.2.2 for one host: addresses first (D-23), then the TLSA candidates.
// Returns false while queries are outstanding.
bool resolve_host(Host& h, const PlanRequest& req, std::uint16_t port, const AnswerMap& answers,
                  std::vector<Query>& queries) {
  if (h.tlsa.state == TlsaState::not_applicable && !h.addresses.empty()) return true;  // literal

  const Answer* a4 = find(answers, h.name, RRType::A);
  const Answer* a6 = find(answers, h.name, RRType::AAAA);
  if (a4 == nullptr) need(queries, h.name, RRType::A);
  if (a6 == nullptr) need(queries, h.name, RRType::AAAA);
  if (a4 == nullptr || a6 == nullptr) return false;

  h.addresses.clear();
  h.notes.clear();
  bool all_secure = true;
  bool any_ok = false;
  bool any_error = false;
  std::string expanded;
  for (const Answer* a : {a4, a6}) {
    if (!a->ok()) {
      any_error = true;
      h.notes.push_back(std::string(to_string(a->query.type)) + " " + h.name + ": " + a->describe());
      continue;
    }
    any_ok = true;
    if (!a->secure()) all_secure = false;
    if (expanded.empty() && !a->canonical_name.empty()) expanded = a->canonical_name;
    for (const auto& rd : a->rdata) {
      if (auto ip = decode_address(a->query.type, rd)) {
        h.addresses.push_back(*ip);
      } else {
        h.notes.push_back(std::string(to_string(a->query.type)) + " " + h.name + ": malformed address record ignored");
      }
    }
  }
  h.expanded = expanded.empty() ? h.name : expanded;

  if (h.addresses.empty()) {
    // D-23: no addresses, no delivery to this host. A lookup failure is temporary (D-06: the
    // other MX hosts may still be used); a definitive "no such host" is permanent.
    h.address_security = any_ok ? (all_secure ? Verdict::secure : Verdict::insecure) : Verdict::error;
    h.tlsa.state = TlsaState::not_applicable;
    if (any_error) {
      mark_unusable(h, Problem::host_lookup_failed, not_found_text(h.name, a4->ok() ? RRType::AAAA : RRType::A, true));
    } else {
      mark_unusable(h, Problem::host_not_found, not_found_text(h.name, RRType::A, false));
    }
    return true;
  }
  h.address_security = all_secure ? Verdict::secure : Verdict::insecure;
  h.usable = true;
  if (!req.lookup_tlsa) {
    h.tlsa.state = TlsaState::not_requested;
    return true;
  }

  if (h.tlsa.candidates.empty()) {
    if (h.address_security == Verdict::secure) {
      // D-25 / D-27 / R-06: a secure chain puts the expanded name first, then the original.
      // Intermediate names of the chain are never candidates (D-35).
      if (h.expanded != h.name) h.tlsa.candidates.push_back(h.expanded);
      h.tlsa.candidates.push_back(h.name);
    } else if (h.expanded != h.name) {
      // D-26: the chain ends insecure; if the initial CNAME itself validated, the original name
      // is still a candidate. Ask for the CNAME explicitly, as Postfix's qname_secure() does.
      const Answer* c = find(answers, h.name, RRType::CNAME);
      if (c == nullptr) {
        need(queries, h.name, RRType::CNAME);
        return false;
      }
      if (c->secure() && c->has_data()) {
        h.cname_secure = true;
        h.tlsa.candidates.push_back(h.name);
      } else {
        h.notes.push_back("CNAME " + h.name + ": " + c->describe() + "; DANE does not apply");
      }
    }
  }
  if (h.tlsa.candidates.empty()) {
    // D-24: an insecure address RRset means no TLSA query at all — a broken TLSA zone behind
    // an unsigned host (the Outlook SERVFAIL case) must not turn into a deferral.
    h.tlsa.state = TlsaState::insecure_address;
    return true;
  }
  return resolve_tlsa(h, req, port, answers, queries);
}

std::vector<Host> hosts_from_mx(const Answer& mx, const PlanRequest& req, DeliveryPlan& plan, bool& malformed,
                                bool& null_mx) {
  std::vector<MxRecord> records;
  for (const auto& rd : mx.rdata) {
    auto r = decode_mx(rd);
    if (!r) {
      malformed = true;
      return {};
    }
    records.push_back(std::move(*r));
  }
  // RFC 7505 §3: a single MX with an empty target means the domain accepts no mail. A "." mixed
  // with real hosts is a publishing error; those real hosts are still used.
  const bool null_only = std::all_of(records.begin(), records.end(), [](const MxRecord& r) { return r.exchange == "."; });
  if (null_only) {
    null_mx = true;
    return {};
  }
  std::erase_if(records, [&](const MxRecord& r) {
    if (r.exchange != ".") return false;
    plan.notes.push_back("null MX record ignored next to other MX records");
    return true;
  });

  // D-16: sort by preference only; TLSA presence never reorders hosts. Equal preferences are
  // shuffled (RFC 5321 §5.1) with the request's seed, so a plan is reproducible.
  std::stable_sort(records.begin(), records.end(),
                   [](const MxRecord& a, const MxRecord& b) { return a.preference < b.preference; });
  std::mt19937_64 rng(req.shuffle_seed);
  for (auto first = records.begin(); first != records.end();) {
    auto last = std::find_if(first, records.end(), [&](const MxRecord& r) { return r.preference != first->preference; });
    std::shuffle(first, last, rng);
    first = last;
  }

  std::vector<Host> hosts;
  for (const MxRecord& r : records) {
    if (std::any_of(hosts.begin(), hosts.end(), [&](const Host& h) { return h.name == r.exchange; })) continue;
    if (hosts.size() >= req.max_hosts) {
      plan.notes.push_back("MX hosts beyond the first " + std::to_string(req.max_hosts) + " ignored");
      break;
    }
    if (auto ip = parse_literal(r.exchange)) {
      // D-15: an MX that names an address instead of a host: DANE cannot apply to it.
      hosts.push_back(literal_host(r.exchange, *ip, r.preference));
      plan.notes.push_back("MX " + r.exchange + " is an IP address: DANE does not apply to it");
      continue;
    }
    if (!syntax::is_host_name(r.exchange)) {
      plan.notes.push_back("MX target \"" + r.exchange + "\" is not a valid host name; ignored");
      continue;
    }
    Host h;
    h.name = r.exchange;
    h.expanded = r.exchange;
    h.preference = r.preference;
    hosts.push_back(std::move(h));
  }
  return hosts;
}

void finish(DeliveryPlan& plan) {
  const auto usable = std::find_if(plan.hosts.begin(), plan.hosts.end(), [](const Host& h) { return h.usable; });
  if (usable != plan.hosts.end()) {
    plan.status = PlanStatus::deliver;
    return;
  }
  plan.status = PlanStatus::failed;
  if (plan.hosts.empty()) {
    plan.problem = Problem::no_hosts;
    plan.reason = "no usable MX host for " + plan.domain;
    return;
  }
  // Every host failed. The best-preference host whose problem may pass is reported; only when
  // every host is definitively absent is the absence reported.
  const auto temp = std::find_if(plan.hosts.begin(), plan.hosts.end(),
                                 [](const Host& h) { return h.problem != Problem::host_not_found; });
  const Host& report = temp != plan.hosts.end() ? *temp : plan.hosts.front();
  plan.problem = report.problem;
  plan.reason = report.reason;
}

}  // namespace

PlanStep advance_plan(const PlanRequest& req, const AnswerMap& answers) {
  PlanStep step;
  DeliveryPlan plan;
  plan.domain = req.domain;
  plan.next_hop = req.domain;
  plan.port = req.port;

  // D-15: an address-literal destination bypasses DNS and DANE.
  if (!req.domain.empty() && req.domain.front() == '[') {
    plan.kind = DestinationKind::address_literal;
    plan.mx_security = Verdict::secure;
    if (auto ip = parse_literal(req.domain)) {
      plan.hosts.push_back(literal_host(req.domain, *ip, 0));
      plan.status = PlanStatus::deliver;
    } else {
      plan.problem = Problem::bad_address_literal;
      plan.reason = "bad address literal " + req.domain;
    }
    step.plan = std::move(plan);
    return step;
  }

  if (req.route) {
    // D-22: a configured next hop is a non-MX destination; DANE applies to its name (§2.2.2).
    plan.kind = req.route->address_literal ? DestinationKind::address_literal : DestinationKind::nexthop;
    plan.mx_security = Verdict::secure;
    if (req.route->port != 0) plan.port = req.route->port;
    plan.next_hop = req.route->host;
    if (req.route->address_literal) {
      auto ip = parse_literal(req.route->host);
      if (!ip) {
        plan.problem = Problem::bad_nexthop_address;
        plan.reason = "bad next-hop address " + req.route->host;
        step.plan = std::move(plan);
        return step;
      }
      plan.hosts.push_back(literal_host("[" + ip->to_string() + "]", *ip, 0));
    } else {
      Host h;
      h.name = normalize_name(req.route->host);
      h.expanded = h.name;
      plan.hosts.push_back(std::move(h));
    }
  } else {
    if (!syntax::is_host_name(req.domain)) {
      plan.problem = Problem::bad_domain;
      plan.reason = "bad destination domain " + req.domain;
      step.plan = std::move(plan);
      return step;
    }
    const Answer* mx = find(answers, req.domain, RRType::MX);
    if (mx == nullptr) {
      need(step.queries, req.domain, RRType::MX);
      return step;
    }
    plan.mx_security = mx->verdict;
    if (!mx->canonical_name.empty()) plan.next_hop = mx->canonical_name;  // D-17: CNAME followed
    if (!mx->ok()) {
      // D-05: an MX lookup that fails (SERVFAIL, timeout, bogus) delays the whole domain; there
      // is no fallback to an implicit MX or A lookup.
      plan.problem = Problem::mx_lookup_failed;
      plan.reason = not_found_text(req.domain, RRType::MX, true);
      plan.notes.push_back("MX " + req.domain + ": " + mx->describe());
      step.plan = std::move(plan);
      return step;
    }
    if (mx->nxdomain) {
      plan.problem = Problem::domain_not_found;
      plan.reason = not_found_text(req.domain, RRType::MX, false);
      step.plan = std::move(plan);
      return step;
    }
    if (mx->rdata.empty()) {
      // RFC 5321 §5.1: no MX RRset → the domain itself is the host (implicit MX, D-22).
      plan.kind = DestinationKind::implicit_mx;
      Host h;
      h.name = plan.next_hop;
      h.expanded = plan.next_hop;
      plan.hosts.push_back(std::move(h));
    } else {
      plan.kind = DestinationKind::mx;
      bool malformed = false;
      bool null_mx = false;
      plan.hosts = hosts_from_mx(*mx, req, plan, malformed, null_mx);
      if (malformed) {
        plan.problem = Problem::mx_malformed;  // D-05: a malformed answer is a lookup failure
        plan.reason = not_found_text(req.domain, RRType::MX, true);
        plan.notes.push_back("MX " + req.domain + ": malformed record");
        step.plan = std::move(plan);
        return step;
      }
      if (plan.hosts.empty() && null_mx) {
        plan.problem = Problem::null_mx;  // RFC 7505 §4.2, N-01
        plan.reason = "Domain " + req.domain + " does not accept mail (nullMX)";
        step.plan = std::move(plan);
        return step;
      }
      if (plan.hosts.empty()) {
        // Every target was an invalid host name: a publishing error that may be fixed, not a
        // statement that the domain takes no mail.
        plan.problem = Problem::mx_no_valid_names;
        plan.reason = "MX RRset for " + req.domain + " has no valid host names";
        step.plan = std::move(plan);
        return step;
      }
    }
  }

  bool done = true;
  for (Host& h : plan.hosts) {
    if (!resolve_host(h, req, plan.port, answers, step.queries)) done = false;
  }
  if (!done) return step;
  finish(plan);
  step.plan = std::move(plan);
  return step;
}

}  // namespace danerelay::dns
