// tests/support/world.cpp — see world.hpp. The scenario list is the RFC 7672 checklist in zone form;
// the comment at each zone names the lines it exercises.
#include "tests/support/world.hpp"

#include <chrono>
#include <fstream>
#include <stdexcept>

namespace danerelay::testsupport {

namespace {

std::string hex(const std::vector<std::uint8_t>& bytes) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  for (auto b : bytes) {
    out += digits[b >> 4];
    out += digits[b & 0xf];
  }
  return out;
}

std::string tlsa_text(const Cert& cert, int usage, int selector, int mtype) {
  return std::to_string(usage) + " " + std::to_string(selector) + " " + std::to_string(mtype) + " " +
         hex(tlsa_association(cert.x509.get(), selector, mtype));
}

std::string toml_string(const std::filesystem::path& p) {
  std::string out = "\"";
  for (char c : p.string()) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

// Reverse zones for the names of inbound clients (forward-confirmed reverse DNS, issue 11 item 6):
// the inbound tests connect from these 127.0.0.x source addresses. See world.hpp kClient*.
//   127.0.0.160  no PTR (secure NXDOMAIN)                          → unknown
//   127.0.0.161  PTR exchange.clients.test, whose A is .161         → exchange.clients.test
//   127.0.0.162  PTR forged.clients.test, whose A is 127.0.0.99     → unknown (not forward-confirmed)
//   127.0.0.163  PTR bogus.clients.test in a bogus-DS zone          → unknown (D-03: bogus is never used)
//   127.0.0.164  PTR under_score.clients.test (A .164)              → unknown (not an LDH host name)
//   127.0.0.165  PTR zone delegated to the dead server               → unknown (SERVFAIL)
//   127.0.0.166  PTR host.expired-clients.test, A in an expired zone → unknown (forward answer bogus)
//   127.0.0.167  PTR insecure.clients.test in an unsigned zone      → insecure.clients.test
//   127.0.0.168  PTR a.clients.test (A .99) and b.clients.test (.168) → b.clients.test
//   127.0.0.169  PTR mx.dead.test (its A lookup SERVFAILs)          → unknown
//   ::1          PTR exchange.clients.test, whose AAAA is ::1       → exchange.clients.test
// Every name that must come out unknown does have an address record for its client (except
// forged and a), so a relay that skipped a check would be caught naming the client.
void add_client_names(Hierarchy& h) {
  h.zone("127.in-addr.arpa.")
      .record("161.0.0 IN PTR exchange.clients.test.")
      .record("162.0.0 IN PTR forged.clients.test.")
      .record("164.0.0 IN PTR under_score.clients.test.")
      .delegate_dead("165.0.0", true)
      .record("166.0.0 IN PTR host.expired-clients.test.")
      .record("168.0.0 IN PTR a.clients.test.")
      .record("168.0.0 IN PTR b.clients.test.")
      .record("169.0.0 IN PTR mx.dead.test.");
  h.zone("163.0.0.127.in-addr.arpa.", ZoneKind::bogus_ds).record("@ IN PTR bogus.clients.test.");
  h.zone("167.0.0.127.in-addr.arpa.", ZoneKind::insecure).record("@ IN PTR insecure.clients.test.");
  // ip6.arpa. is a zone of its own, delegated with a DS: left an empty non-terminal of the root,
  // its DS denial would have to come from the NSEC of the glue name before it (ns1.127.in-addr.arpa.),
  // which has none, and libunbound's auth-zone answers without a proof (bogus).
  h.zone("ip6.arpa.");
  h.zone("1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa.")
      .record("@ IN PTR exchange.clients.test.");
  h.zone("clients.test.")
      .a("exchange", "127.0.0.161")
      .aaaa("exchange", "::1")
      .a("forged", "127.0.0.99")
      .a("bogus", "127.0.0.163")
      .a("under_score", "127.0.0.164")
      .a("insecure", "127.0.0.167")
      .a("a", "127.0.0.99")
      .a("b", "127.0.0.168");
  h.zone("expired-clients.test.", ZoneKind::expired).a("host", "127.0.0.166");
}

}  // namespace

World build_world(const std::filesystem::path& dir, const WorldOptions& options) {
  namespace fs = std::filesystem;
  fs::create_directories(dir);
  World w;
  Pki pki(dir / "pki");
  w.ca = pki.make_ca("danerelay test CA");
  auto leaf = [&](const std::string& host) -> const Cert& {
    Pki::LeafOptions o;
    o.common_name = host;
    o.dns_names = {host};
    o.issuer = &w.ca;
    return w.host_certs[host] = pki.make_leaf(o);
  };

  Hierarchy h(dir / "dns", options.dead_server_address);

  // secure.test — the reference destination: secure MX, secure A/AAAA, DANE-EE TLSA on port 25 and
  // 2525 (D-21, D-25, D-30); also the secure NXDOMAIN below it (D-04).
  const Cert& mx_secure = leaf("mx.secure.test");
  h.zone("secure.test.")
      .mx("@", 10, "mx")
      .a("mx", "127.0.0.11")
      .aaaa("mx", "::1")
      .tlsa("_25._tcp.mx", tlsa_text(mx_secure, 3, 1, 1))
      .tlsa("_2525._tcp.mx", tlsa_text(mx_secure, 3, 1, 1))
      .record("short 2 IN A 127.0.0.99");  // a 2-second TTL: the resolver's answer memo expires
  w.domains.push_back({"secure.test", "secure MX, secure A/AAAA, secure 3 1 1 TLSA: authenticated TLS required"});
  w.domains.push_back({"nonexistent.secure.test", "secure NXDOMAIN: bounce 5.4.4"});

  // multi.test — several MX hosts (D-06, D-07, D-16): three at preference 10 in random order, one
  // of them with a TLSA lookup that SERVFAILs (a DS'd delegation to a dead server), one at 20 with
  // a DANE-TA record of the CA.
  const Cert& mx1 = leaf("mx1.multi.test");
  leaf("mx4.multi.test");
  h.zone("multi.test.")
      .mx("@", 10, "mx1")
      .mx("@", 10, "mx2")
      .mx("@", 10, "mx3")
      .mx("@", 20, "mx4")
      .a("mx1", "127.0.0.21")
      .a("mx2", "127.0.0.22")
      .a("mx3", "127.0.0.23")
      .a("mx4", "127.0.0.24")
      .tlsa("_25._tcp.mx1", tlsa_text(mx1, 3, 1, 1))
      .delegate_dead("_25._tcp.mx3", true)
      .tlsa("_25._tcp.mx4", tlsa_text(w.ca, 2, 0, 1));
  w.domains.push_back({"multi.test", "4 MX hosts: TLSA found / none / SERVFAIL (host unusable) / DANE-TA"});

  // insecure.test — unsigned: TLSA present but ignored (D-12, D-24, D-34); and a host whose TLSA
  // zone is dead, which must not matter because its addresses are insecure (the Outlook case).
  leaf("mx.insecure.test");
  h.zone("insecure.test.", ZoneKind::insecure)
      .mx("@", 10, "mx")
      .a("mx", "127.0.0.31")
      .tlsa("_25._tcp.mx", tlsa_text(w.host_certs.at("mx.insecure.test"), 3, 1, 1))
      .a("broken", "127.0.0.32")
      .delegate_dead("_25._tcp.broken", false);
  w.domains.push_back({"insecure.test", "unsigned zone: TLSA ignored, opportunistic TLS"});

  // o365.test — a signed domain whose MX is an unsigned host with a broken TLSA zone (D-24): the
  // TLSA lookup is skipped, so no deferral.
  h.zone("o365.test.").mx("@", 10, "broken.insecure.test.");
  w.domains.push_back({"o365.test", "secure MX → unsigned host with SERVFAILing TLSA zone: TLSA skipped (D-24)"});

  // Bogus and failing destinations (D-03, D-05): the whole domain is deferred, no A fallback.
  h.zone("bogus-ds.test.", ZoneKind::bogus_ds).mx("@", 10, "mx").a("mx", "127.0.0.41");
  w.domains.push_back({"bogus-ds.test", "DS in parent from another key: bogus, defer 4.4.3"});
  h.zone("expired.test.", ZoneKind::expired).mx("@", 10, "mx").a("mx", "127.0.0.51").tlsa("_25._tcp.mx", tlsa_text(w.ca, 2, 0, 1));
  w.domains.push_back({"expired.test", "expired RRSIGs: bogus, defer 4.4.3"});
  h.zone("dead.test.", ZoneKind::dead);
  w.domains.push_back({"dead.test", "delegation to a dead name server: SERVFAIL, defer 4.4.3"});

  // nullmx.test — RFC 7505 (N-01).
  h.zone("nullmx.test.").mx("@", 0, ".");
  w.domains.push_back({"nullmx.test", "null MX: bounce 5.1.10"});

  // badmx.test — a secure MX RRset whose every target is an invalid host name (a label with a
  // leading and trailing '-', one with '!', one with '_': smtp/syntax.hpp is_host_name is strict
  // LDH). A publishing error that may be fixed: defer 4.4.3, never the null-MX bounce 5.1.10. The
  // invalid names do have secure addresses (127.0.0.151–153), so a relay that used them anyway
  // would be caught connecting there.
  h.zone("badmx.test.")
      .mx("@", 10, "-bad-")
      .mx("@", 20, "under_score")
      .mx("@", 30, "bang!")
      .a("-bad-", "127.0.0.151")
      .a("under_score", "127.0.0.152")
      .a("bang!", "127.0.0.153");
  w.domains.push_back({"badmx.test", "MX RRset with only invalid host names: defer 4.4.3, not null MX"});

  // implicit.test — no MX: the domain is its own host (RFC 5321 §5.1, D-22).
  const Cert& implicit = leaf("implicit.test");
  h.zone("implicit.test.").a("@", "127.0.0.81").tlsa("_25._tcp", tlsa_text(implicit, 3, 1, 1));
  w.domains.push_back({"implicit.test", "no MX: implicit MX with TLSA at _25._tcp.implicit.test"});

  // cname.test — CNAME'd MX hosts (D-26, D-27, D-35) and a CNAME'd recipient domain (D-17):
  //   mail  → mx.secure.test      secure chain: candidates mx.secure.test, then mail.cname.test
  //   mail2 → mx.insecure.test    insecure chain, secure initial CNAME: candidate mail2.cname.test
  //   alias → secure.test         the MX lookup follows the CNAME
  const Cert& mail2 = leaf("mail2.cname.test");
  h.zone("cname.test.")
      .mx("@", 10, "mail")
      .mx("@", 20, "mail2")
      .cname("mail", "mx.secure.test.")
      .cname("mail2", "mx.insecure.test.")
      .tlsa("_25._tcp.mail2", tlsa_text(mail2, 3, 1, 1))
      .cname("alias", "secure.test.");
  w.domains.push_back({"cname.test", "MX hosts behind CNAMEs: secure chain and insecure chain"});
  w.domains.push_back({"alias.cname.test", "recipient domain is a CNAME to secure.test"});

  // icname.test — an MX host whose initial CNAME is itself insecure (D-26): no DANE.
  h.zone("icname.test.").mx("@", 10, "mail.unsigned-alias.test.");
  h.zone("unsigned-alias.test.", ZoneKind::insecure).cname("mail", "mx.insecure.test.");
  w.domains.push_back({"icname.test", "MX host is an insecure CNAME: DANE does not apply"});

  // mxinsecure.test — unsigned domain whose MX is a signed host with TLSA (D-18, D-20).
  h.zone("mxinsecure.test.", ZoneKind::insecure).mx("@", 10, "mx.secure.test.");
  w.domains.push_back({"mxinsecure.test", "MX RRset insecure, host secure with TLSA: \"Trusted\" at best"});

  // tlsacname.test — the TLSA RRset is reached through a CNAME (D-31); the base domain stays (D-32).
  h.zone("tlsacname.test.").mx("@", 10, "mx").a("mx", "127.0.0.101").cname("_25._tcp.mx", "_25._tcp.mx.secure.test.");
  w.domains.push_back({"tlsacname.test", "TLSA via CNAME: base domain unchanged"});

  // unusable.test — only PKIX usages (D-11, D-33, D-38): TLS required, no authentication.
  leaf("mx.unusable.test");
  h.zone("unusable.test.")
      .mx("@", 10, "mx")
      .a("mx", "127.0.0.111")
      .tlsa("_25._tcp.mx", tlsa_text(w.host_certs.at("mx.unusable.test"), 1, 1, 1))
      .tlsa("_25._tcp.mx", tlsa_text(w.ca, 0, 0, 1));
  w.domains.push_back({"unusable.test", "only 0 x x / 1 x x TLSA records: secure but unusable"});

  // badtlsa.test — the TLSA RRset is bogus (CNAME into the expired zone): host unusable (D-07).
  h.zone("badtlsa.test.").mx("@", 10, "mx").a("mx", "127.0.0.121").cname("_25._tcp.mx", "_25._tcp.mx.expired.test.");
  w.domains.push_back({"badtlsa.test", "TLSA answer bogus: host unusable, defer 4.7.5"});

  // deadhost.test — the best MX host's address lookup fails (D-06); the next MX is used.
  h.zone("deadhost.test.").mx("@", 10, "mx.dead.test.").mx("@", 20, "mx.secure.test.");
  w.domains.push_back({"deadhost.test", "first MX host unresolvable: skipped, second used"});

  // twomx.test — two DANE MX hosts (D-10, D-39): when the first fails authentication the second is
  // used; when both fail, the mail is deferred and neither receives it.
  const Cert& twomx1 = leaf("mx1.twomx.test");
  const Cert& twomx2 = leaf("mx2.twomx.test");
  h.zone("twomx.test.")
      .mx("@", 10, "mx1")
      .mx("@", 20, "mx2")
      .a("mx1", "127.0.0.131")
      .a("mx2", "127.0.0.132")
      .tlsa("_25._tcp.mx1", tlsa_text(twomx1, 3, 1, 1))
      .tlsa("_25._tcp.mx2", tlsa_text(twomx2, 3, 1, 1));
  w.domains.push_back({"twomx.test", "two DANE MX hosts (for first-fails/second-delivers delivery tests)"});

  // Certificate edge cases for delivery tests (D-36, D-37, D-40, R-02): a DANE-TA "2 0 1" host whose
  // leaf the CA issued, a DANE-EE host with an expired leaf and one with a self-signed leaf.
  leaf("mx.danetta.test");
  h.zone("danetta.test.").mx("@", 10, "mx").a("mx", "127.0.0.141").tlsa("_25._tcp.mx", tlsa_text(w.ca, 2, 0, 1));
  w.domains.push_back({"danetta.test", "DANE-TA 2 0 1: CA in the chain, name checked"});
  {
    Pki::LeafOptions o;
    o.common_name = "mx.expiredleaf.test";
    o.dns_names = {o.common_name};
    o.issuer = &w.ca;
    o.not_before = -std::chrono::hours(24 * 400);
    o.not_after = -std::chrono::hours(24 * 30);
    w.host_certs[o.common_name] = pki.make_leaf(o);
    h.zone("expiredleaf.test.").mx("@", 10, "mx").a("mx", "127.0.0.142").tlsa("_25._tcp.mx", tlsa_text(w.host_certs.at(o.common_name), 3, 1, 1));
    w.domains.push_back({"expiredleaf.test", "DANE-EE 3 1 1 of an expired leaf (expiry ignored)"});
  }
  {
    Pki::LeafOptions o;
    o.common_name = "mx.selfsigned.test";
    o.dns_names = {o.common_name};
    w.host_certs[o.common_name] = pki.make_leaf(o);  // issuer nullptr: self-signed
    h.zone("selfsigned.test.").mx("@", 10, "mx").a("mx", "127.0.0.143").tlsa("_25._tcp.mx", tlsa_text(w.host_certs.at(o.common_name), 3, 1, 1));
    w.domains.push_back({"selfsigned.test", "DANE-EE 3 1 1 of a self-signed leaf"});
  }

  // Configured next hops (D-15, D-22): routed.test goes to mx.secure.test:2525 without an MX
  // lookup, DANE applying to that name; literal.test to an address literal, where DANE cannot.
  w.domains.push_back({"routed.test", "configured next hop [mx.secure.test]:2525 (non-MX destination)"});
  w.domains.push_back({"literal.test", "configured next hop [127.0.0.1]:2525 (address literal, no DANE)"});

  add_client_names(h);

  w.dns = h.build();

  w.state_dir = dir / "state";
  fs::create_directories(w.state_dir);
  w.config_file = dir / "danerelay.toml";
  std::ofstream cfg(w.config_file);
  cfg << "# danerelay configuration for the generated test world in " << dir.string() << "\n"
      << "# (signed zones served by libunbound itself; nothing leaves this machine)\n\n"
      << "[server]\nhostname = \"relay.danerelay.test\"\nstate_dir = " << toml_string(w.state_dir) << "\n\n"
      << "[dns]\ntrust_anchor = " << toml_string(w.dns.trust_anchor) << "\ntrust_anchor_auto_update = false\n"
      << "unbound_config = " << toml_string(w.dns.unbound_conf) << "\nquery_timeout = \"" << options.query_timeout << "\"\n";
  if (!w.dns.unbound_options.empty()) {
    cfg << "\n[dns.unbound_options]\n";
    for (const auto& [k, v] : w.dns.unbound_options) cfg << '"' << k << "\" = \"" << v << "\"\n";
  }
  cfg << "\n[policy]\ndefault = \"dane\"\n\n"
      << "[policy.destination.\"routed.test\"]\nnexthop = \"[mx.secure.test]:2525\"\n\n"
      << "[policy.destination.\"literal.test\"]\nnexthop = \"[127.0.0.1]:2525\"\n";
  if (!cfg.flush()) throw std::runtime_error("cannot write " + w.config_file.string());
  return w;
}

config::DnsSettings dns_settings(const World& world, std::chrono::milliseconds timeout) {
  config::DnsSettings s;
  s.trust_anchor = world.dns.trust_anchor;
  s.trust_anchor_auto_update = false;
  s.unbound_config = world.dns.unbound_conf;
  s.unbound_options = world.dns.unbound_options;
  s.query_timeout = timeout;
  return s;
}

}  // namespace danerelay::testsupport
