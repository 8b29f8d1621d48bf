// relay/cli/plan_format.cpp — see plan_format.hpp. Pure formatting; no I/O.
#include "relay/cli/plan_format.hpp"

#include <fmt/format.h>

#include "relay/delivery/outcome.hpp"

namespace danerelay::relay {

std::string tlsa_line(const dns::Host& h) {
  const auto& t = h.tlsa;
  switch (t.state) {
    case dns::TlsaState::not_applicable:
      return "TLSA: not applicable (address literal: DANE does not apply)";
    case dns::TlsaState::insecure_address:
      return "TLSA: not looked up (address records insecure: DANE does not apply)";
    case dns::TlsaState::found: {
      std::string s = fmt::format("TLSA {}: secure, {} record{}", t.qname, t.records.size() + t.malformed,
                                  t.records.size() + t.malformed == 1 ? "" : "s");
      if (t.owner != t.qname) s += fmt::format(" (via CNAME {})", t.owner);
      if (t.malformed > 0) s += fmt::format(", {} malformed", t.malformed);
      return s;
    }
    case dns::TlsaState::secure_denial:
      return fmt::format("TLSA {}: none (secure denial)", t.qname);
    case dns::TlsaState::insecure:
      return fmt::format("TLSA {}: insecure (DANE does not apply)", t.qname);
    case dns::TlsaState::not_requested:
      return "TLSA: not looked up (the policy level does not use DANE)";
    case dns::TlsaState::error:
      return fmt::format("TLSA {}: LOOKUP ERROR: {}", t.qname, t.detail);
  }
  return "TLSA: ?";
}

std::string rdata_text(dns::RRType type, const std::vector<std::uint8_t>& rd) {
  switch (type) {
    case dns::RRType::A:
    case dns::RRType::AAAA:
      if (auto ip = dns::decode_address(type, rd)) return ip->to_string();
      break;
    case dns::RRType::MX:
      if (auto mx = dns::decode_mx(rd)) return fmt::format("{} {}.", mx->preference, mx->exchange == "." ? "" : mx->exchange);
      break;
    case dns::RRType::TLSA:
      if (auto t = dns::decode_tlsa(rd)) return t->to_string();
      break;
    case dns::RRType::CNAME:
      if (auto c = dns::decode_cname(rd)) return *c + ".";
      break;
    default:
      break;
  }
  return "\\# " + std::to_string(rd.size()) + " " + dns::to_hex(rd);
}

std::string format_plan(const dns::Resolution& res, const Routing& routing) {
  const auto& p = res.plan;
  std::string out;
  std::string mx;
  switch (p.kind) {
    case dns::DestinationKind::mx: mx = fmt::format("MX RRset {}", dns::to_string(p.mx_security)); break;
    case dns::DestinationKind::implicit_mx: mx = fmt::format("no MX (implicit MX, denial {})", dns::to_string(p.mx_security)); break;
    case dns::DestinationKind::nexthop: mx = fmt::format("configured next hop {} (no MX lookup)", p.next_hop); break;
    case dns::DestinationKind::address_literal: mx = "address literal (no DNS, no DANE)"; break;
  }
  out += fmt::format("{}: {}, port {}\n", p.domain, mx, p.port);
  if (p.next_hop != p.domain && p.kind != dns::DestinationKind::nexthop) out += fmt::format("  next hop after CNAME: {}\n", p.next_hop);
  out += fmt::format("  policy: {}{}\n", config::to_string(routing.level),
                     routing.policy != nullptr ? fmt::format(" (from [policy.destination.\"{}\"])", routing.policy->pattern)
                                               : std::string(" (default)"));
  if (p.mx_insecure() && !p.hosts.empty()) {
    out += "  MX insecure: hosts may still be authenticated by their TLSA records, but only as \"Trusted\", never \"Verified\"; dane-only defers\n";
  }
  int i = 0;
  for (const auto& h : p.hosts) {
    if (p.kind == dns::DestinationKind::mx) {
      out += fmt::format("  [{}] {}  preference {}\n", ++i, h.name, h.preference);
    } else {
      out += fmt::format("  [{}] {}\n", ++i, h.name);
    }
    if (h.expanded != h.name) out += fmt::format("      CNAME → {}{}\n", h.expanded, h.cname_secure ? " (initial CNAME secure)" : "");
    std::string addrs;
    for (const auto& a : h.addresses) addrs += (addrs.empty() ? "" : ", ") + a.to_string();
    if (!h.addresses.empty()) out += fmt::format("      addresses ({}): {}\n", dns::to_string(h.address_security), addrs);
    if (h.tlsa.state != dns::TlsaState::not_applicable || !h.addresses.empty()) out += "      " + tlsa_line(h) + "\n";
    for (const auto& r : h.tlsa.records) out += fmt::format("        {} IN TLSA {}\n", h.tlsa.owner, r.to_string());
    for (const auto& n : h.notes) out += fmt::format("      note: {}\n", n);
    if (h.usable) {
      out += "      usable\n";
    } else {
      const Outcome o = outcome_of(h);
      out += fmt::format("      NOT USABLE: {} {}\n", o.status, o.text);
    }
  }
  for (const auto& n : p.notes) out += fmt::format("  note: {}\n", n);
  switch (p.status) {
    case dns::PlanStatus::deliver: {
      int usable = 0;
      for (const auto& h : p.hosts) usable += h.usable ? 1 : 0;
      out += fmt::format("  plan: deliver ({} usable host{} of {})\n", usable, usable == 1 ? "" : "s", p.hosts.size());
      break;
    }
    case dns::PlanStatus::failed: {
      const Outcome o = outcome_of(p);
      out += fmt::format("  plan: {} {} {}\n", o.action == Action::bounce ? "BOUNCE" : "DEFER", o.status, o.text);
      break;
    }
  }
  return out;
}

std::string format_trace(const dns::Resolution& res) {
  std::string out;
  for (const auto& q : res.order) {
    auto it = res.answers.find(q);
    if (it == res.answers.end()) continue;
    const auto& a = it->second;
    const std::string owner = (a.canonical_name.empty() ? q.name : a.canonical_name);
    out += fmt::format("  {}. IN {} ; {}{}\n", q.name == "." ? "" : q.name, dns::to_string(q.type), a.describe(),
                       owner != q.name ? " via CNAME " + owner : std::string());
    for (const auto& rd : a.rdata) out += fmt::format("      {}\n", rdata_text(q.type, rd));
  }
  return out;
}

}  // namespace danerelay::relay
