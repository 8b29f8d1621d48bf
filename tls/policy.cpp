// tls/policy.cpp — see policy.hpp. The RFC 7672 §2.2 decision for one host, the RFC 7672 §3.1.3
// usability filter and RFC 7671 §9 digest agility. Pure: no OpenSSL, no I/O.
#include "tls/policy.hpp"

#include <algorithm>
#include <cstdint>
#include <optional>

namespace danerelay::tls {

namespace {

using config::TlsLevel;
using dns::TlsaRecord;
using dns::TlsaState;

constexpr std::uint8_t kUsageDaneTa = 2;
constexpr std::uint8_t kUsageDaneEe = 3;
constexpr std::uint8_t kMatchFull = 0;

// RFC 6698 §7.4 matching types this build implements, with their digest sizes.
struct Digest {
  std::string_view name;
  std::uint8_t mtype;
  std::size_t size;
};
constexpr Digest kDigests[] = {{"sha256", 1, 32}, {"sha512", 2, 64}};

const Digest* digest_by_mtype(std::uint8_t mtype) {
  for (const auto& d : kDigests) {
    if (d.mtype == mtype) return &d;
  }
  return nullptr;
}

// Rank of a matching type in the configured order: 0 is strongest; nullopt when not configured.
std::optional<std::size_t> digest_rank(std::uint8_t mtype, std::span<const std::string> order) {
  const Digest* d = digest_by_mtype(mtype);
  if (d == nullptr) return std::nullopt;
  for (std::size_t i = 0; i < order.size(); ++i) {
    if (order[i] == d->name) return i;
  }
  return std::nullopt;
}

// "3 1 1 a9cd0123…" — enough of the record to recognise it in a log line.
std::string brief(const TlsaRecord& r) {
  std::string text = std::to_string(r.usage) + " " + std::to_string(r.selector) + " " + std::to_string(r.matching_type);
  const std::string hex = dns::to_hex(r.data);
  if (!hex.empty()) text += " " + (hex.size() > 16 ? hex.substr(0, 16) + "…" : hex);
  return text;
}

// A structural DER check for Full(0) data: one ASN.1 SEQUENCE whose length covers the data
// exactly (a certificate and a SubjectPublicKeyInfo are both SEQUENCEs, RFC 5280 §4.1). OpenSSL
// parses the contents when the record is loaded and rejects what does not parse (dane_session).
bool plausible_der_sequence(std::span<const std::uint8_t> der) {
  if (der.size() < 2 || der[0] != 0x30) return false;
  std::size_t length = der[1];
  std::size_t header = 2;
  if (length & 0x80) {
    const std::size_t octets = length & 0x7f;
    if (octets == 0 || octets > 4 || der.size() < 2 + octets) return false;
    length = 0;
    for (std::size_t i = 0; i < octets; ++i) length = (length << 8) | der[2 + i];
    header += octets;
  }
  return header + length == der.size();
}

// Why a record cannot be used by an SMTP DANE client, or nullopt when it can (RFC 7672 §3.1.3,
// RFC 7671 §9 step 1, R-07).
std::optional<std::string> unusable_because(const TlsaRecord& r, std::span<const std::string> order) {
  switch (r.usage) {
    case 0: return "PKIX-TA(0) usage unusable for SMTP (RFC 7672 §3.1.3, D-38)";
    case 1: return "PKIX-EE(1) usage unusable for SMTP (RFC 7672 §3.1.3, D-38)";
    case kUsageDaneTa:
    case kUsageDaneEe: break;
    default: return "unknown certificate usage " + std::to_string(r.usage);
  }
  if (r.selector > 1) return "unknown selector " + std::to_string(r.selector);
  if (r.matching_type == kMatchFull) {
    if (!plausible_der_sequence(r.data)) {
      return r.selector == 0 ? "Full(0) data is not a DER certificate" : "Full(0) data is not a DER public key";
    }
    return std::nullopt;
  }
  const Digest* d = digest_by_mtype(r.matching_type);
  if (d == nullptr) return "unknown matching type " + std::to_string(r.matching_type);
  if (!digest_rank(r.matching_type, order)) return std::string(d->name) + " is not in the configured digest order";
  if (r.data.size() != d->size) {
    return std::string(d->name) + " digest of " + std::to_string(r.data.size()) + " octets, want " + std::to_string(d->size);
  }
  return std::nullopt;
}

void add_unique(std::vector<std::string>& names, std::string name) {
  if (name.empty()) return;
  if (std::find(names.begin(), names.end(), name) == names.end()) names.push_back(std::move(name));
}

bool is_address_literal(const dns::DeliveryPlan& plan, const dns::Host& host) {
  return plan.kind == dns::DestinationKind::address_literal || (!host.name.empty() && host.name.front() == '[');
}

std::string host_port(const dns::DeliveryPlan& plan, const dns::Host& host) {
  return host.name + ":" + std::to_string(plan.port);
}

// RFC 7672 §3.2.2 / D-40: the names a DANE-TA chain's leaf must carry.
std::vector<std::string> dane_reference_ids(const dns::DeliveryPlan& plan, const dns::Host& host) {
  std::vector<std::string> ids;
  add_unique(ids, host.tlsa.base_domain);  // always the TLSA base domain (also SNI, D-43)
  switch (plan.kind) {
    case dns::DestinationKind::mx:
    case dns::DestinationKind::implicit_mx:
      if (!plan.mx_insecure()) {
        // Secure MX: the original next-hop domain and its CNAME expansion are also acceptable.
        add_unique(ids, dns::normalize_name(plan.domain));
        add_unique(ids, plan.next_hop);
      } else {
        // Insecure MX: nothing learned from the MX lookup is trusted; only the MX host name.
        add_unique(ids, host.name);
      }
      break;
    case dns::DestinationKind::nexthop:
      // A non-MX destination: the configured next hop itself (base domain may be its expansion).
      add_unique(ids, plan.next_hop);
      add_unique(ids, host.name);
      break;
    case dns::DestinationKind::address_literal: break;
  }
  return ids;
}

// P-01, P-03 (Postfix smtp_tls_policy.c / tls_verify.c): the names a PKIX-verified certificate
// must carry. `match` *replaces* the level's default (verify: hostname; secure: nexthop +
// dot-nexthop). The keywords are expanded for this delivery:
//   hostname     the MX host name (implicit MX: the domain; configured next hop: that host);
//   nexthop      the next-hop domain (the recipient domain, or the configured next hop);
//   dot-nexthop  any subdomain of the next-hop domain;
// any other value is a literal name, ".name" its subdomains. Address literals are never names.
// `secure` never trusts a host name learned from an MX RRset that was not DNSSEC-validated;
// `verify` does (as Postfix's does), and says so in `notes`.
std::vector<std::string> pkix_reference_ids(const dns::DeliveryPlan& plan, const dns::Host& host, TlsLevel level,
                                            std::span<const std::string> match_names, std::vector<std::string>& notes) {
  static const std::vector<std::string> kVerifyDefault{"hostname"};
  static const std::vector<std::string> kSecureDefault{"nexthop", "dot-nexthop"};
  const std::span<const std::string> patterns =
      !match_names.empty() ? match_names
                           : std::span<const std::string>(level == TlsLevel::verify ? kVerifyDefault : kSecureDefault);
  const bool literal_host = is_address_literal(plan, host);
  const bool host_from_insecure_mx = plan.kind == dns::DestinationKind::mx && plan.mx_insecure();
  std::string nexthop;
  if (plan.kind != dns::DestinationKind::address_literal) {
    nexthop = plan.kind == dns::DestinationKind::nexthop ? plan.next_hop : dns::normalize_name(plan.domain);
    if (!nexthop.empty() && nexthop.front() == '[') nexthop.clear();
  }
  std::vector<std::string> ids;
  for (const std::string& pattern : patterns) {
    if (pattern == "hostname") {
      if (literal_host) continue;
      if (host_from_insecure_mx) {
        if (level == TlsLevel::secure) {
          notes.push_back("secure: MX host name " + host.name + " not matched: the MX lookup for " + plan.domain +
                          " was not DNSSEC-validated (P-03)");
          continue;
        }
        notes.push_back("verify: matching MX host name " + host.name + " learned from an insecure MX lookup for " +
                        plan.domain + " (subject to DNS forgery, P-03)");
      }
      add_unique(ids, dns::normalize_name(host.name));
    } else if (pattern == "nexthop") {
      add_unique(ids, nexthop);
    } else if (pattern == "dot-nexthop") {
      if (!nexthop.empty()) add_unique(ids, "." + nexthop);
    } else {
      const bool dot = !pattern.empty() && pattern.front() == '.';
      const std::string name = dns::normalize_name(dot ? std::string_view(pattern).substr(1) : std::string_view(pattern));
      if (!name.empty()) add_unique(ids, dot ? "." + name : name);
    }
  }
  return ids;
}

void defer(HostPolicy& p, std::string reason) {
  p.requirement = Requirement::defer;
  p.reason = std::move(reason);
  p.sni.clear();
  p.reference_ids.clear();
  p.usable.clear();
  p.plaintext_fallback = false;
}

// Fills the DANE fields (records, unusable count, discarded reasons) from a found RRset.
void load_tlsa(HostPolicy& p, const dns::Host& host, std::span<const std::string> digest_order) {
  p.usable = usable_records(host.tlsa.records, digest_order, &p.discarded);
  for (std::size_t i = 0; i < host.tlsa.malformed; ++i) {
    p.discarded.push_back("malformed TLSA RDATA (shorter than 3 octets): unusable (D-33)");
  }
  p.unusable = host.tlsa.records.size() + host.tlsa.malformed - p.usable.size();
}

// The dane and dane-only levels.
void decide_dane(HostPolicy& p, const dns::DeliveryPlan& plan, const dns::Host& host, bool mandatory,
                 std::span<const std::string> digest_order) {
  const std::string where = host_port(plan, host);
  if (host.tlsa.state == TlsaState::error) {
    // D-07 / D-13: the planner marks such a host unusable; should it reach us anyway, never
    // downgrade (RFC 7672 §2.2): defer, with Postfix's wording (smtp_tls_policy.c).
    defer(p, "TLSA lookup error for " + where);
    return;
  }
  if (host.tlsa.state == TlsaState::not_requested) {
    // The plan was made for a level without DANE; deciding DANE from it would guess. Never
    // downgrade on an inconsistent input: defer (relay::route_for keeps the two in step).
    defer(p, "TLSA records were not looked up for " + where);
    return;
  }
  if (mandatory && p.mx_insecure) {
    // D-20 (RFC 7672 §2.2.1): mandatory DANE with an MX RRset that is not secure → delay.
    defer(p, "non DNSSEC destination: insecure MX lookup for " + plan.domain + " (dane-only)");
    return;
  }
  if (host.tlsa.state == TlsaState::found) {
    load_tlsa(p, host, digest_order);
    if (!p.usable.empty()) {
      // D-10 / D-39: usable secure TLSA → STARTTLS required and the server authenticated.
      p.requirement = Requirement::dane;
      p.sni = host.tlsa.base_domain;  // D-43, R-08: SNI = TLSA base domain
      p.reference_ids = dane_reference_ids(plan, host);
      p.tls_feature = mandatory ? "dane-only" : (p.mx_insecure ? "dane:halfdane" : "dane");
      return;
    }
    if (mandatory) {
      // D-14: mandatory DANE and no usable record.
      defer(p, "TLSA records unusable for " + where + " (dane-only)");
      return;
    }
    // D-11, D-33, D-38: secure but all-unusable RRset → TLS required, no authentication.
    p.requirement = Requirement::encrypt;
    p.sni = host.tlsa.base_domain;
    p.tls_feature = "dane:encrypt";
    return;
  }
  if (mandatory) {
    switch (host.tlsa.state) {
      case TlsaState::secure_denial: defer(p, "no TLSA records found for " + where + " (dane-only)"); return;
      case TlsaState::insecure: defer(p, "non DNSSEC destination: insecure TLSA lookup for " + where + " (dane-only)"); return;
      case TlsaState::insecure_address:
        defer(p, "non DNSSEC destination: insecure address records for " + host.name + " (dane-only)");
        return;
      case TlsaState::not_applicable: defer(p, "DANE does not apply to address literal " + host.name + " (dane-only)"); return;
      case TlsaState::found:
      case TlsaState::not_requested:
      case TlsaState::error: break;  // handled above
    }
    return;
  }
  // D-12: no secure TLSA (secure denial, insecure, insecure address, not applicable) →
  // pre-DANE opportunistic TLS; plaintext is allowed when STARTTLS is not offered.
  p.requirement = Requirement::opportunistic;
  p.plaintext_fallback = true;
  p.tls_feature = "dane:may";
}

}  // namespace

std::string_view to_string(Requirement requirement) noexcept {
  switch (requirement) {
    case Requirement::none: return "none";
    case Requirement::opportunistic: return "opportunistic";
    case Requirement::encrypt: return "encrypt";
    case Requirement::dane: return "dane";
    case Requirement::pkix: return "pkix";
    case Requirement::defer: return "defer";
  }
  return "unknown";
}

bool known_digest(std::string_view name) noexcept {
  return std::any_of(std::begin(kDigests), std::end(kDigests), [&](const Digest& d) { return d.name == name; });
}

std::vector<TlsaRecord> usable_records(std::span<const TlsaRecord> records, std::span<const std::string> digest_order,
                                       std::vector<std::string>* discarded) {
  // R-07 step 1: discard unusable and malformed records.
  std::vector<const TlsaRecord*> candidates;
  for (const TlsaRecord& r : records) {
    if (auto why = unusable_because(r, digest_order)) {
      if (discarded != nullptr) discarded->push_back(brief(r) + ": " + *why);
    } else {
      candidates.push_back(&r);
    }
  }
  // R-07 step 2/3 (RFC 7671 §9): per (usage, selector), keep the Full(0) records and those of the
  // strongest configured digest present; Full(0) neither overrides nor is overridden.
  std::vector<TlsaRecord> out;
  for (const TlsaRecord* r : candidates) {
    if (r->matching_type != kMatchFull) {
      const std::size_t rank = *digest_rank(r->matching_type, digest_order);
      const bool weaker = std::any_of(candidates.begin(), candidates.end(), [&](const TlsaRecord* o) {
        return o->usage == r->usage && o->selector == r->selector && o->matching_type != kMatchFull &&
               *digest_rank(o->matching_type, digest_order) < rank;
      });
      if (weaker) {
        if (discarded != nullptr) {
          discarded->push_back(brief(*r) + ": superseded by a stronger digest for usage " + std::to_string(r->usage) +
                               " selector " + std::to_string(r->selector) + " (RFC 7671 §9, R-07)");
        }
        continue;
      }
    }
    out.push_back(*r);
  }
  return out;
}

HostPolicy decide(const dns::DeliveryPlan& plan, const dns::Host& host, TlsLevel level,
                  std::span<const std::string> digest_order, std::span<const std::string> match_names) {
  HostPolicy p;
  p.level = level;
  p.mx_insecure = plan.mx_insecure();  // D-18
  p.base_domain = host.tlsa.base_domain;
  p.tls_feature = std::string(config::to_string(level));
  const bool literal = is_address_literal(plan, host);
  // Outside DANE the server is asked for the name we connect to (none for an address literal:
  // RFC 6066 §3 forbids IP addresses in SNI).
  const std::string connect_name = literal ? std::string() : host.name;

  switch (level) {
    case TlsLevel::none:
      p.requirement = Requirement::none;
      p.plaintext_fallback = true;
      return p;
    case TlsLevel::may:
      p.requirement = Requirement::opportunistic;
      p.plaintext_fallback = true;
      p.sni = connect_name;
      return p;
    case TlsLevel::encrypt:
      p.requirement = Requirement::encrypt;
      p.sni = connect_name;
      return p;
    case TlsLevel::dane:
    case TlsLevel::dane_only:
      decide_dane(p, plan, host, level == TlsLevel::dane_only, digest_order);
      if (p.requirement == Requirement::opportunistic) p.sni = connect_name;
      return p;
    case TlsLevel::verify:
    case TlsLevel::secure:
      p.requirement = Requirement::pkix;
      p.sni = connect_name;
      p.reference_ids = pkix_reference_ids(plan, host, level, match_names, p.notes);
      if (p.reference_ids.empty()) {
        // P-02: no names means no connection; never "any certificate a CA signed".
        defer(p, "no certificate names to match for " + host_port(plan, host) + " (" + std::string(config::to_string(level)) +
                     (literal ? ": an address literal is never matched against certificate names" : "") +
                     "; configure match names)");
      }
      return p;
  }
  defer(p, "unknown TLS security level");
  return p;
}

}  // namespace danerelay::tls
