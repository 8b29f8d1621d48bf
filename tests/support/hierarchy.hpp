// tests/support/hierarchy.hpp — builds a real DNSSEC-signed DNS hierarchy (a fake signed root ".", "test."
// and any zones below) as zone files that libunbound serves itself as auth-zones, validated against the
// fake root's trust anchor. No DNS daemon, no network: every answer comes from local files, and the only
// address ever queried is a loopback "dead server" where nothing listens.
//
// Not a DNS server and not a zone-file parser: records are zone-file text handed to ldns-signzone
// (ldnsutils), which does the signing (RFC 4033–4035, NSEC). Keys come from ldns-keygen, one
// ECDSAP256SHA256 (RFC 6605) key per zone acting as KSK and ZSK.
//
// Usage:
//   TempDir tmp;
//   Hierarchy h(tmp.path());
//   h.zone("example.test.").a("mx1", "192.0.2.1").mx("@", 10, "mx1").tlsa("_25._tcp.mx1", "3 1 1 ab…");
//   h.zone("insecure.test.", ZoneKind::insecure).a("mx", "192.0.2.2");
//   auto built = h.build();                 // keys, signatures, DS records, unbound.conf, root.ta
//   auto ctx = make_unbound_context(built); // or ub_ctx_config(built.unbound_conf) + ub_ctx_add_ta_file(built.trust_anchor)
//
// The tree: a zone's parent is the closest enclosing declared zone, whatever the declaration order
// ("example.org." without an "org." zone is delegated straight from the root). Every zone gets an SOA,
// "NS ns1.<zone>" and a glue A for ns1.<zone> at the dead server address; the parent gets NS + glue and,
// unless the child is insecure, the child's DS (digest SHA-256).
//
// Errors: build() throws std::runtime_error with the tool's stderr when ldns-keygen / ldns-signzone /
// ldns-read-zone fail (e.g. a malformed record() line); misuse (bad names, conflicting kinds, records in a
// dead zone) throws std::invalid_argument / std::logic_error at the call.
#pragma once

#include <unbound.h>

#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace danerelay::testsupport {

enum class ZoneKind {
  secure,    // signed, DS in the parent: answers validate secure=1
  insecure,  // unsigned, no DS in the (signed) parent: secure=0 bogus=0
  bogus_ds,  // signed, but the parent's DS comes from another key: bogus=1 ("no keys have a DS")
  expired,   // signed with RRSIGs valid 2020-01-01 … 2020-02-01 only: bogus=1 ("signature expired")
  dead,      // delegated (NS + glue + DS) to the dead server address; not served: SERVFAIL
};

class Zone {
 public:
  // Each adder returns *this for chaining. Owner names and targets follow zone-file rules: absolute when
  // they end in ".", otherwise relative to the zone ("mx1", "@"). Records in a declared child zone's
  // namespace belong in that child; in the parent they are occluded by the delegation.
  Zone& a(std::string_view owner, std::string_view ipv4);
  Zone& aaaa(std::string_view owner, std::string_view ipv6);
  Zone& mx(std::string_view owner, int preference, std::string_view target);  // target "." → null MX (RFC 7505)
  Zone& cname(std::string_view owner, std::string_view target);
  Zone& tlsa(std::string_view owner, std::string_view rdata);  // "3 1 1 ab12…" (RFC 6698 §2.2 presentation)
  Zone& txt(std::string_view owner, std::string_view text);    // quoted and split into 255-octet strings here
  Zone& record(std::string_view line);                         // a raw zone-file line, e.g. "x 300 IN SRV …"
  // A delegation of child_name (relative or absolute, strictly below this zone, e.g. "_25._tcp.mx3") to the
  // dead server: NS + glue, plus a DS of a fresh key when with_ds. Either way lookups at or below it end
  // in SERVFAIL; with_ds the child is provably meant to be signed (the realistic "TLSA lookup fails" case),
  // without it the delegation is provably insecure.
  Zone& delegate_dead(std::string_view child_name, bool with_ds = true);

  [[nodiscard]] const std::string& name() const { return name_; }  // absolute, lower case, "." for the root
  [[nodiscard]] ZoneKind kind() const { return kind_; }

 private:
  friend class Hierarchy;
  struct DeadChild {
    std::string name;  // absolute
    bool with_ds;
  };
  Zone(std::string name, ZoneKind kind) : name_(std::move(name)), kind_(kind) {}
  Zone& add(std::string_view owner, std::string_view type, std::string_view rdata);

  std::string name_;
  ZoneKind kind_;
  std::vector<std::string> lines_;  // zone-file lines, relative to $ORIGIN name_
  std::vector<DeadChild> dead_children_;
};

class Hierarchy {
 public:
  // Files go under dir (made absolute; created if missing; build() replaces its keys/, zones/, log/).
  // dead_server_address must be an IPv4 loopback address where nothing listens on port 53; it is the
  // address of every zone's ns1 glue and of every dead delegation. Not 127.0.0.53 (systemd-resolved).
  explicit Hierarchy(std::filesystem::path dir, std::string dead_server_address = "127.0.0.254");

  // The zone called name: the one already declared, whatever its kind, or a new secure one.
  // "." and "test." exist from the start, secure. Throws std::invalid_argument for a malformed name.
  Zone& zone(std::string_view name);
  // Declares name with this kind, or returns it if already declared with this kind. The implicit "." and
  // "test." may be re-declared once with another kind (e.g. "." as bogus_ds: a wrong trust anchor).
  // Throws std::invalid_argument for a malformed name, the root as insecure or dead, or a kind conflict.
  Zone& zone(std::string_view name, ZoneKind kind);

  struct Built {
    std::filesystem::path dir;
    std::filesystem::path trust_anchor;  // "." DS (SHA-256) of the fake root: ub_ctx_add_ta_file / _autr
    std::filesystem::path unbound_conf;  // server: options + one auth-zone: per served zone (no trust anchor)
    // Options a caller must also pass to ub_ctx_set_option; empty: everything fits in unbound_conf.
    std::vector<std::pair<std::string, std::string>> unbound_options;
    std::string dead_server_address;
    std::map<std::string, std::filesystem::path> zone_files;  // served zone → the file unbound loads
  };
  // Generates keys, writes and signs every zone (validity now-1d … now+30d, except expired zones), puts
  // DS records into parents, writes the trust anchor and unbound.conf. May be called again after adding
  // records; every call makes new keys (so a new trust anchor): use a fresh ub_ctx afterwards.
  Built build();

 private:
  std::filesystem::path dir_;
  std::string dead_server_address_;
  std::map<std::string, std::unique_ptr<Zone>> zones_;  // by absolute lower-case name
  std::set<std::string> implicit_;                      // "." and "test." until declared explicitly
};

using UnboundContextPtr = std::unique_ptr<ub_ctx, decltype(&ub_ctx_delete)>;

// A fresh synchronous libunbound context for built: ub_ctx_config(unbound_conf), ub_ctx_add_ta_file
// (trust_anchor), then the unbound_options. Call ub_ctx_async(ctx, 1) before the first query to use
// threads for ub_resolve_async. Throws std::runtime_error with ub_strerror on failure.
UnboundContextPtr make_unbound_context(const Hierarchy::Built& built);

}  // namespace danerelay::testsupport
