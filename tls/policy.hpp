// tls/policy.hpp — the per-host TLS policy: which TLS a connection to one host must (or may) use,
// decided from the delivery plan's DNS facts and the configured security level.
//
// What this is: a pure function. DNS facts in (dns::DeliveryPlan, dns::Host: MX security, the
// TLSA state and RRset), a HostPolicy out: the requirement (none, opportunistic, encrypt, dane,
// pkix, defer), the TLSA records that are usable for SMTP, the SNI name and the reference
// identifiers for name checks. No OpenSSL, no Asio, no DNS I/O: tls/dane_session.cpp loads a
// HostPolicy into an SSL object; the delivery code decides what to do with `defer`.
//
// What this is not: the judge of the certificate. Whether a record *matches* is OpenSSL's work
// (dane_session.cpp); OpenSSL may still reject a record this function kept (then the session
// falls back from dane to encrypt, exactly as if the record were unusable here, D-33).
//
// Levels (config::TlsLevel, Postfix smtp_tls_security_level names):
//   none       no TLS.
//   may        opportunistic TLS; plaintext when STARTTLS is absent or fails.
//   encrypt    TLS required, peer not authenticated.
//   dane       (default) RFC 7672 §2.2: usable secure TLSA → authenticated TLS required (D-10);
//              secure TLSA, none usable → TLS required, unauthenticated (D-11, D-33, D-38);
//              no TLSA / insecure TLSA / DANE not applicable → like `may` (D-12);
//              TLSA lookup error → defer 4.7.5 (D-13).
//   dane-only  like dane with usable records; everything else defers 4.7.5 (D-14), and so does
//              an insecure MX RRset (D-20).
//   verify     PKIX (CA store); names: the MX host name, or the destination's `match` list instead.
//   secure     PKIX; names: the next-hop domain and its subdomains, or the `match` list instead.
//              `match` replaces the default (Postfix, P-01); its keywords hostname, nexthop and
//              dot-nexthop are expanded per delivery; no names at all → defer 4.7.5 (P-02);
//              secure never trusts the MX host name from an insecure MX lookup (P-03).
// The non-DANE levels do not consult TLSA at all (as in Postfix, where only the dane levels look
// TLSA up): a TLSA lookup error there is not a reason to defer. (The planner has already marked
// such a host unusable, D-07, so delivery never gets here with it.)
//
// Spec: RFC 7672 §2.2 (discovery outcomes), §2.2.1 (insecure MX), §3.1.3 (PKIX usages unusable),
// §3.2.2 (reference identifiers), §8.1 (SNI); RFC 7671 §9 (digest agility); checklist D-10…D-14,
// D-18, D-20, D-33, D-38, D-40, D-43, R-07.
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"
#include "dns/plan.hpp"
#include "dns/types.hpp"

namespace danerelay::tls {

// What the connection to this host must do.
enum class Requirement {
  none,           // plaintext only (level none)
  opportunistic,  // TLS if offered; plaintext allowed (may; dane without secure TLSA, D-12)
  encrypt,        // TLS required, no authentication (encrypt; dane with unusable TLSA, D-11)
  dane,           // TLS required, authenticated by the usable TLSA records (D-10, D-39)
  pkix,           // TLS required, authenticated by the CA store and name checks (verify, secure)
  defer,          // do not connect: `reason` says why (D-13, D-14, D-20)
};

[[nodiscard]] std::string_view to_string(Requirement requirement) noexcept;

struct HostPolicy {
  config::TlsLevel level = config::TlsLevel::dane;
  Requirement requirement = Requirement::opportunistic;
  // Requirement::dane: the records to load, after the usability filter and RFC 7671 §9 agility.
  std::vector<dns::TlsaRecord> usable;
  // Secure records (and malformed RDATA) dropped as unusable or by agility, with why, for the log.
  std::size_t unusable = 0;
  std::vector<std::string> discarded;  // "1 1 1 ab…: PKIX-EE usage unusable for SMTP (D-38)"
  std::string base_domain;             // TLSA base domain when TLSA was found (D-32)
  std::string sni;                     // server name to send; empty: none (address literal)
  // Names the certificate must match (dane: DANE-TA only, DANE-EE skips names; pkix: always).
  // A leading "." matches any subdomain (Postfix "dot-nexthop", OpenSSL SSL_add1_host).
  std::vector<std::string> reference_ids;
  // The MX RRset (or the CNAME to it) was insecure: a DANE-authenticated connection is reported
  // "Trusted", never "Verified" (D-18, RFC 7672 §2.2.1).
  bool mx_insecure = false;
  // STARTTLS absent or failing → plaintext is acceptable (may, and dane without TLSA: D-12).
  bool plaintext_fallback = false;
  std::string reason;                  // Requirement::defer: Postfix-style text for the DSN/log
  // Postfix 3.11 `tls=` feature value for the delivery line: none, may, encrypt, dane,
  // dane:encrypt (all TLSA unusable), dane:halfdane (MX insecure), dane:may (no secure TLSA),
  // dane-only, verify, secure.
  std::string tls_feature;
  // Decisions worth an info line in the delivery log (P-03: an MX host name matched, or not,
  // although the MX lookup was insecure).
  std::vector<std::string> notes;

  [[nodiscard]] bool tls_required() const noexcept {
    return requirement == Requirement::encrypt || requirement == Requirement::dane || requirement == Requirement::pkix;
  }
};

// The digests this build knows, by RFC 6698 matching type: 1 "sha256" (32 octets), 2 "sha512"
// (64 octets). Other names are not known (config validation rejects them).
[[nodiscard]] bool known_digest(std::string_view name) noexcept;

// Decides the policy for one host of a plan. `digest_order` is the configured RFC 7671 §9
// order, strongest first (config::TlsClientSettings::digest_order); `match_names` are the
// destination's `match` list for verify/secure (config::DestinationPolicy::match): empty means
// the level's default; otherwise it replaces it (P-01).
[[nodiscard]] HostPolicy decide(const dns::DeliveryPlan& plan, const dns::Host& host, config::TlsLevel level,
                                std::span<const std::string> digest_order,
                                std::span<const std::string> match_names = {});

// The usability filter and digest agility alone (RFC 7672 §3.1.3, RFC 7671 §9, R-07): the
// records of `records` that a DANE client may use, in their original order. Each dropped record
// is described in *discarded when given.
[[nodiscard]] std::vector<dns::TlsaRecord> usable_records(std::span<const dns::TlsaRecord> records,
                                                          std::span<const std::string> digest_order,
                                                          std::vector<std::string>* discarded = nullptr);

}  // namespace danerelay::tls
