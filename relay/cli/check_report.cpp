// relay/cli/check_report.cpp — see check_report.hpp. Pure: facts in, report and text out.
#include "relay/cli/check_report.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "relay/cli/plan_format.hpp"
#include "relay/core/exit_codes.hpp"
#include "relay/delivery/outcome.hpp"

namespace danerelay::relay {

namespace {

std::string action_word(Action a) {
  switch (a) {
    case Action::delivered: return "deliver";
    case Action::next_host: return "next host";
    case Action::defer: return "defer";
    case Action::bounce: return "bounce";
  }
  return "defer";
}

std::optional<DnsLine> dns_line(const dns::Resolution& res, const std::string& name, dns::RRType type) {
  auto it = res.answers.find(dns::Query{name, type});
  if (it == res.answers.end()) return std::nullopt;
  const dns::Answer& a = it->second;
  DnsLine l;
  l.name = name;
  l.type = std::string(dns::to_string(type));
  l.verdict = a.describe();
  if (!a.canonical_name.empty() && a.canonical_name != name) l.via = a.canonical_name;
  for (const auto& rd : a.rdata) l.records.push_back(rdata_text(type, rd));
  return l;
}

std::string rule_text(const Routing& routing, const config::Config& config) {
  if (routing.policy == nullptr) {
    const auto& w = config.policy.default_where;
    return w.line == 0 ? "default" : fmt::format("default: [policy] default at {}:{}", w.file, w.line);
  }
  const auto& w = routing.policy->where;
  std::string s = fmt::format("[policy.destination.\"{}\"]", routing.policy->pattern);
  if (w.line != 0) s += fmt::format(" at {}:{}", w.file, w.line);
  return s;
}

std::string dns_text(const DnsLine& l, std::string_view indent) {
  std::string out = fmt::format("{}{}. IN {} ; {}{}\n", indent, l.name, l.type, l.verdict, l.via.empty() ? "" : " via CNAME " + l.via);
  for (const auto& r : l.records) out += fmt::format("{}    {}\n", indent, r);
  return out;
}

nlohmann::json dns_json(const DnsLine& l) {
  nlohmann::json j{{"name", l.name}, {"type", l.type}, {"verdict", l.verdict}, {"records", l.records}};
  if (!l.via.empty()) j["via_cname"] = l.via;
  return j;
}

// Hosts whose TLSA RRset was found (secure) — DANE is published for them.
bool has_dane(const HostCheck& h) { return h.tlsa_state == "found"; }
bool has_usable(const HostCheck& h) {
  return std::any_of(h.tlsa.begin(), h.tlsa.end(), [](const TlsaCheck& t) { return t.usable; });
}

}  // namespace

std::string tlsa_parameters(const dns::TlsaRecord& r) {
  static constexpr const char* usages[] = {"PKIX-TA", "PKIX-EE", "DANE-TA", "DANE-EE"};
  static constexpr const char* selectors[] = {"Cert", "SPKI"};
  static constexpr const char* mtypes[] = {"Full", "SHA2-256", "SHA2-512"};
  auto name = [](auto& table, std::uint8_t v) {
    return fmt::format("{}({})", v < std::size(table) ? table[v] : "unknown", v);
  };
  return name(usages, r.usage) + " " + name(selectors, r.selector) + " " + name(mtypes, r.matching_type);
}

std::vector<TlsaCheck> tlsa_checks(const std::vector<dns::TlsaRecord>& records, const std::vector<std::string>& digest_order) {
  // The delivery's filter over the whole RRset (agility depends on the other records), then each
  // record alone for the reason it was dropped, if it was.
  const std::vector<dns::TlsaRecord> usable = tls::usable_records(records, digest_order);
  std::vector<TlsaCheck> out;
  for (const dns::TlsaRecord& r : records) {
    TlsaCheck c;
    c.record = r.to_string();
    c.usable = std::find(usable.begin(), usable.end(), r) != usable.end();
    if (c.usable) {
      c.why = tlsa_parameters(r);
    } else {
      std::vector<std::string> why;
      const std::vector<dns::TlsaRecord> alone{r};
      (void)tls::usable_records(alone, digest_order, &why);
      if (why.empty()) {
        c.why = "superseded by a stronger digest for the same usage and selector (RFC 7671 §9)";
      } else {
        // "1 1 1 ab…: PKIX-EE usage unusable for SMTP (D-38)": the part after the record.
        const auto colon = why.front().find(": ");
        c.why = colon == std::string::npos ? why.front() : why.front().substr(colon + 2);
      }
    }
    out.push_back(std::move(c));
  }
  return out;
}

tls::HostPolicy host_policy(const dns::DeliveryPlan& plan, const dns::Host& host, const Routing& routing, const config::Config& config) {
  if (!host.usable) {
    tls::HostPolicy p;
    p.level = routing.level;
    p.requirement = tls::Requirement::defer;
    p.reason = outcome_of(host).text;
    return p;
  }
  std::vector<std::string> match;
  if (routing.policy != nullptr) match = routing.policy->match;
  return tls::decide(plan, host, routing.level, config.tls.client.digest_order, match);
}

CheckReport make_check(const dns::Resolution& res, const Routing& routing, const config::Config& config) {
  const dns::DeliveryPlan& p = res.plan;
  CheckReport r;
  r.domain = p.domain;
  r.port = p.port;
  r.level = std::string(config::to_string(routing.level));
  r.rule = rule_text(routing, config);
  const config::SourceLocation& where = routing.policy != nullptr ? routing.policy->where : config.policy.default_where;
  r.rule_file = where.file;
  r.rule_line = where.line;
  r.kind = std::string(dns::to_string(p.kind));
  r.next_hop = p.next_hop;
  r.mx_security = std::string(dns::to_string(p.mx_security));
  if (p.kind == dns::DestinationKind::mx || p.kind == dns::DestinationKind::implicit_mx) {
    r.mx_answer = dns_line(res, p.domain, dns::RRType::MX);
  }
  r.notes = p.notes;
  r.plan_status = std::string(dns::to_string(p.status));
  if (p.status == dns::PlanStatus::failed) {
    const Outcome o = outcome_of(p);
    r.plan_action = action_word(o.action);
    r.plan_dsn = o.status;
    r.plan_text = o.text;
  } else {
    r.plan_action = "deliver";
  }
  for (const dns::Host& h : p.hosts) {
    HostCheck c;
    c.name = h.name;
    c.expanded = h.expanded;
    c.preference = h.preference;
    c.mx_host = p.kind == dns::DestinationKind::mx;
    for (dns::RRType t : {dns::RRType::A, dns::RRType::AAAA}) {
      if (auto l = dns_line(res, h.name, t)) c.address_answers.push_back(std::move(*l));
    }
    if (!h.addresses.empty()) c.address_security = std::string(dns::to_string(h.address_security));
    for (const auto& a : h.addresses) c.addresses.push_back(a.to_string());
    c.tlsa_state = std::string(dns::to_string(h.tlsa.state));
    c.tlsa_text = tlsa_line(h);
    if (!h.tlsa.qname.empty()) c.tlsa_answer = dns_line(res, h.tlsa.qname, dns::RRType::TLSA);
    c.tlsa = tlsa_checks(h.tlsa.records, config.tls.client.digest_order);
    c.malformed = h.tlsa.malformed;
    c.planned_usable = h.usable;
    c.notes = h.notes;
    const tls::HostPolicy policy = host_policy(p, h, routing, config);
    if (!h.usable) {
      const Outcome o = outcome_of(h);
      c.problem = o.status + " " + o.text;
    } else {
      c.requirement = std::string(tls::to_string(policy.requirement));
      c.tls_feature = policy.tls_feature;
      c.sni = policy.sni;
      for (const auto& n : policy.notes) c.notes.push_back(n);
      if (policy.requirement == tls::Requirement::defer) {
        const Outcome o = outcome_of(Failure::tls_policy, policy.reason, h.name);
        c.problem = o.status + " " + o.text;
      }
    }
    r.hosts.push_back(std::move(c));
  }
  return r;
}

void add_probe(CheckReport& report, std::size_t index, const ProbeResult& probe) {
  HostCheck& h = report.hosts.at(index);
  h.connected = true;
  report.connected = true;
  AddressCheck a;
  a.address = probe.address;
  a.pass = probe_passes(probe);
  a.starttls_offered = probe.starttls_offered;
  a.handshake = probe.report.has_value();
  a.log = probe.log;
  if (probe.report && probe.report->established) {
    const tls::PeerReport& t = *probe.report;
    a.trust = std::string(tls::to_string(t.trust));
    a.protocol = t.protocol;
    a.cipher = t.cipher;
    if (t.matched) {
      a.matched = t.matched->to_string();
      a.depth = t.match_depth;
    }
    a.peer_name = t.peer_name;
  }
  if (probe.failure) {
    a.failure = probe.failure->text;
    if (probe.report && !probe.report->failure.empty() && probe.report->failure != probe.failure->text) {
      a.failure += " (" + probe.report->failure + ")";
    }
    if (a.pass) a.note = "TLS is opportunistic here: the delivery retries this address without TLS (D-12)";
  } else if (!probe.tls) {
    a.note = probe.starttls_offered ? "plaintext (the policy does not use TLS)"
                                    : "plaintext: STARTTLS not offered, and TLS is opportunistic here (D-12)";
  }
  h.connects.push_back(std::move(a));
}

void finish_check(CheckReport& r) {
  r.warnings.clear();
  int ok_hosts = 0;
  for (HostCheck& h : r.hosts) {
    h.ok = h.problem.empty();
    if (h.ok && h.connected) {
      h.ok = std::any_of(h.connects.begin(), h.connects.end(), [](const AddressCheck& a) { return a.pass; });
    }
    if (!h.problem.empty()) r.warnings.push_back(fmt::format("{}: not used: {}", h.name, h.problem));
    for (const AddressCheck& a : h.connects) {
      if (!a.pass) r.warnings.push_back(fmt::format("{}[{}]:{}: {}", h.name, a.address, r.port, a.failure));
    }
    ok_hosts += h.ok ? 1 : 0;
  }
  r.deliverable = r.plan_status == "deliver" && ok_hosts > 0;
  if (!r.deliverable) r.warnings.clear();  // the verdict says it; warnings are for a domain that works

  // internet.nl's headings, over the hosts the domain's mail goes to.
  const auto n = static_cast<int>(r.hosts.size());
  const int with_tlsa = static_cast<int>(std::count_if(r.hosts.begin(), r.hosts.end(), has_dane));
  if (n == 0) {
    r.dane_existence = {"n/a", "no mail server hosts to check"};
  } else if (r.mx_security != "secure") {
    r.dane_existence = {"no", fmt::format("the MX RRset is {}: DANE does not apply to the destination (RFC 7672 §2.2.1)", r.mx_security)};
  } else if (with_tlsa == n) {
    r.dane_existence = {"yes", fmt::format("every mail server host has a secure TLSA RRset ({} of {})", with_tlsa, n)};
  } else if (with_tlsa > 0) {
    r.dane_existence = {"partly", fmt::format("{} of {} mail server hosts have a secure TLSA RRset", with_tlsa, n)};
  } else {
    r.dane_existence = {"no", "no mail server host has a secure TLSA RRset"};
  }

  if (with_tlsa == 0) {
    r.dane_validity = {"n/a", "no TLSA records to validate"};
  } else {
    std::vector<std::string> bad;
    std::vector<std::string> unreached;  // no handshake: nothing to judge the records by
    bool tested = false;
    for (const HostCheck& h : r.hosts) {
      if (!has_dane(h)) continue;
      if (!has_usable(h)) {
        bad.push_back(h.name + ": no usable record");
        continue;
      }
      for (const AddressCheck& a : h.connects) {
        if (!a.handshake) {
          unreached.push_back(fmt::format("{}[{}]", h.name, a.address));
          continue;
        }
        tested = true;
        if (a.matched.empty()) bad.push_back(fmt::format("{}[{}]: no match", h.name, a.address));
      }
    }
    auto join = [](const std::vector<std::string>& v) {
      std::string list;
      for (const auto& b : v) list += (list.empty() ? "" : ", ") + b;
      return list;
    };
    const std::string not_reached = unreached.empty() ? "" : "; no TLS handshake with " + join(unreached);
    if (!bad.empty()) {
      r.dane_validity = {"invalid", join(bad) + not_reached};
    } else if (tested) {
      r.dane_validity = {"valid", "every certificate presented matched a usable TLSA record" + not_reached};
    } else if (r.connected && !unreached.empty()) {
      r.dane_validity = {"untested", "every TLSA RRset has usable records, but" + not_reached.substr(1)};
    } else {
      r.dane_validity = {"untested", "every TLSA RRset has usable records; --connect checks them against the certificates"};
    }
  }

  if (with_tlsa == 0) {
    r.dane_rollover = {"n/a", "no TLSA records"};
  } else {
    // RFC 7671 §8.1, §8.4: a second usable record (the next key as "3 1 1", or the issuer as
    // "2 x 1") lets the certificate change without a window where nothing matches.
    std::vector<std::string> single;
    for (const HostCheck& h : r.hosts) {
      if (!has_dane(h)) continue;
      const auto usable = std::count_if(h.tlsa.begin(), h.tlsa.end(), [](const TlsaCheck& t) { return t.usable; });
      if (usable < 2) single.push_back(h.name);
    }
    if (single.empty()) {
      r.dane_rollover = {"ok", "every host publishes at least two usable records (current + next, or DANE-EE + DANE-TA)"};
    } else {
      std::string list;
      for (const auto& s : single) list += (list.empty() ? "" : ", ") + s;
      r.dane_rollover = {"none", list + ": a single usable record; publish the next key's \"3 1 1\" or the issuer's \"2 x 1\" too (RFC 7671 §8)"};
    }
  }
}

int check_exit(const CheckReport& r, bool strict) noexcept {
  if (!r.self_test_ok) return kExitSelfTest;
  if (!r.deliverable) return kExitFailure;
  if (strict && !r.warnings.empty()) return kExitFailure;
  return kExitOk;
}

std::string format_check(const CheckReport& r) {
  std::string out;
  if (r.probe) {
    out += fmt::format("{}: one server (probe), port {}\n", r.domain, r.port);
  } else if (r.kind == "nexthop") {
    out += fmt::format("{}: configured next hop {}, port {}\n", r.domain, r.next_hop, r.port);
  } else if (r.kind == "address-literal") {
    out += fmt::format("{}: address literal (no DNS, no DANE), port {}\n", r.domain, r.port);
  } else {
    out += fmt::format("{}: port {}\n", r.domain, r.port);
  }
  out += fmt::format("  policy: {} ({})\n", r.level, r.rule);
  if (r.mx_answer) out += dns_text(*r.mx_answer, "  ");
  if (r.kind == "implicit-mx") out += "  no MX: the domain is its own mail server host (implicit MX)\n";
  if (r.next_hop != r.domain && r.kind != "nexthop") out += fmt::format("  next hop after CNAME: {}\n", r.next_hop);
  int i = 0;
  for (const HostCheck& h : r.hosts) {
    out += h.mx_host ? fmt::format("  [{}] {} (preference {})\n", ++i, h.name, h.preference) : fmt::format("  [{}] {}\n", ++i, h.name);
    if (h.expanded != h.name && !h.expanded.empty()) out += fmt::format("      CNAME → {}\n", h.expanded);
    for (const DnsLine& l : h.address_answers) out += dns_text(l, "      ");
    if (h.tlsa_answer) {
      out += dns_text(DnsLine{h.tlsa_answer->name, "TLSA", h.tlsa_answer->verdict, h.tlsa_answer->via, {}}, "      ");
    } else {
      out += "      " + h.tlsa_text + "\n";
    }
    for (const TlsaCheck& t : h.tlsa) out += fmt::format("          {} ; {}: {}\n", t.record, t.usable ? "usable" : "UNUSABLE", t.why);
    for (std::size_t k = 0; k < h.malformed; ++k) out += "          (malformed RDATA) ; UNUSABLE: shorter than 3 octets (D-33)\n";
    for (const auto& n : h.notes) out += fmt::format("      note: {}\n", n);
    if (!h.problem.empty()) {
      out += fmt::format("      NOT USED: {}\n", h.problem);
    } else {
      out += fmt::format("      TLS: {}{}\n", h.requirement, h.sni.empty() ? "" : ", SNI " + h.sni);
    }
    for (const AddressCheck& a : h.connects) {
      std::string line = fmt::format("      {}: {}", a.pass ? "pass" : "fail", a.address);
      if (!a.matched.empty()) {
        line += fmt::format(": TLSA match: depth = {}, name = {}: {}", a.depth, a.peer_name.empty() ? h.name : a.peer_name, a.matched);
      }
      if (!a.trust.empty()) line += fmt::format(" ({} {} {})", a.trust, a.protocol, a.cipher);
      if (!a.failure.empty()) line += ": " + a.failure;
      if (!a.note.empty()) line += "; " + a.note;
      out += line + "\n";
    }
  }
  for (const auto& n : r.notes) out += fmt::format("  note: {}\n", n);
  for (const auto& w : r.warnings) out += fmt::format("  warning: {}\n", w);
  out += fmt::format("  DANE existence: {}: {}\n", r.dane_existence.result, r.dane_existence.text);
  out += fmt::format("  DANE validity: {}: {}\n", r.dane_validity.result, r.dane_validity.text);
  out += fmt::format("  DANE rollover scheme: {}: {}\n", r.dane_rollover.result, r.dane_rollover.text);
  if (r.deliverable) {
    int ok = 0;
    for (const auto& h : r.hosts) ok += h.ok ? 1 : 0;
    out += fmt::format("  verdict: deliverable under {} ({} of {} host{} usable{})\n", r.level, ok, r.hosts.size(),
                       r.hosts.size() == 1 ? "" : "s", r.connected ? ", connected" : "");
  } else if (r.plan_status == "failed") {
    out += fmt::format("  verdict: {} {} {}\n", r.plan_action == "bounce" ? "BOUNCE" : "DEFER", r.plan_dsn, r.plan_text);
  } else {
    out += "  verdict: DEFER: no host can be used under the effective policy\n";
  }
  return out;
}

nlohmann::json check_json(const CheckReport& r, bool strict) {
  using nlohmann::json;
  json j;
  j["domain"] = r.domain;
  j["probe"] = r.probe;
  j["port"] = r.port;
  j["self_test"] = {{"ok", r.self_test_ok}, {"summary", r.self_test}};
  j["policy"] = {{"level", r.level}, {"rule", r.rule}};
  if (r.rule_line != 0) {
    j["policy"]["file"] = r.rule_file;
    j["policy"]["line"] = r.rule_line;
  }
  j["destination"] = {{"kind", r.kind}, {"next_hop", r.next_hop}, {"mx_security", r.mx_security}};
  j["mx"] = r.mx_answer ? dns_json(*r.mx_answer) : json(nullptr);
  j["hosts"] = json::array();
  for (const HostCheck& h : r.hosts) {
    json hj{{"name", h.name}, {"expanded", h.expanded}, {"addresses", h.addresses}, {"address_security", h.address_security}};
    if (h.mx_host) hj["preference"] = h.preference;
    hj["address_lookups"] = json::array();
    for (const DnsLine& l : h.address_answers) hj["address_lookups"].push_back(dns_json(l));
    json tj{{"state", h.tlsa_state}, {"text", h.tlsa_text}, {"malformed", h.malformed}};
    if (h.tlsa_answer) tj["lookup"] = dns_json(*h.tlsa_answer);
    tj["records"] = json::array();
    for (const TlsaCheck& t : h.tlsa) tj["records"].push_back({{"record", t.record}, {"usable", t.usable}, {"why", t.why}});
    hj["tlsa"] = tj;
    hj["planned_usable"] = h.planned_usable;
    hj["requirement"] = h.requirement;
    hj["tls_feature"] = h.tls_feature;
    hj["sni"] = h.sni;
    hj["notes"] = h.notes;
    hj["problem"] = h.problem;
    hj["ok"] = h.ok;
    if (h.connected) {
      hj["connect"] = json::array();
      for (const AddressCheck& a : h.connects) {
        json aj{{"address", a.address},   {"pass", a.pass},     {"starttls_offered", a.starttls_offered},
                {"trust", a.trust},       {"protocol", a.protocol}, {"cipher", a.cipher},
                {"handshake", a.handshake}, {"peer_name", a.peer_name}, {"failure", a.failure}, {"note", a.note}, {"log", a.log}};
        if (!a.matched.empty()) {
          aj["matched"] = a.matched;
          aj["depth"] = a.depth;
        } else {
          aj["matched"] = nullptr;
        }
        hj["connect"].push_back(std::move(aj));
      }
    }
    j["hosts"].push_back(std::move(hj));
  }
  j["notes"] = r.notes;
  j["plan"] = {{"status", r.plan_status}, {"action", r.plan_action}, {"dsn", r.plan_dsn}, {"text", r.plan_text}};
  j["connected"] = r.connected;
  j["warnings"] = r.warnings;
  j["deliverable"] = r.deliverable;
  j["summary"] = {{"dane_existence", {{"result", r.dane_existence.result}, {"text", r.dane_existence.text}}},
                  {"dane_validity", {{"result", r.dane_validity.result}, {"text", r.dane_validity.text}}},
                  {"dane_rollover_scheme", {{"result", r.dane_rollover.result}, {"text", r.dane_rollover.text}}}};
  j["exit"] = check_exit(r, strict);
  return j;
}

}  // namespace danerelay::relay
