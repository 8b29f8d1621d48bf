// tests/cli/check_test.cpp — `danerelay check` and `danerelay probe` as an operator runs them:
// the real binary over the signed test world (tests/support/world.*), and, with --connect and
// for probe, in-process SMTP sinks on the world's MX addresses (port 25, like real MX hosts)
// presenting the world's real certificates. For every DNS state of issue 11 — DANE-EE and
// DANE-TA matches, a mismatch, unusable-only TLSA, a TLSA SERVFAIL, insecure, bogus, null MX, an
// MX that is down — the JSON document is parsed back (nlohmann) and its facts and the exit
// status asserted, and the lines a person reads are checked too. Where no delivery may happen,
// the sinks must have seen no connection; where one is made, no MAIL command (check and probe
// never send MAIL).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <string>

#include "tests/support/smtp_sink.hpp"
#include "tests/support/temp_dir.hpp"
#include "tests/support/world.hpp"

namespace {

using danerelay::testsupport::SinkOptions;
using danerelay::testsupport::SmtpSink;
using nlohmann::json;

struct CliRun {
  int status = -1;
  std::string out;  // stdout
  std::string err;  // stderr
};

CliRun run(const std::string& args) {
  CliRun r;
  static int n = 0;
  const std::string err_file = "/tmp/danerelay-check-test-" + std::to_string(getpid()) + "-" + std::to_string(++n) + ".err";
  const std::string cmd = std::string(DANERELAY_BINARY) + " " + args + " 2>" + err_file;
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return r;
  std::array<char, 4096> buf{};
  while (std::fgets(buf.data(), buf.size(), p) != nullptr) r.out += buf.data();
  const int st = pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  std::ifstream in(err_file);
  r.err.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  std::remove(err_file.c_str());
  return r;
}

class Check : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new danerelay::testsupport::TempDir("danerelay-check");
    world_ = new danerelay::testsupport::World(danerelay::testsupport::build_world(dir_->path() / "world"));
    danerelay::testsupport::Pki pki(dir_->path() / "pki");
    chains_ = new std::map<std::string, std::filesystem::path>;
    for (const auto& [host, cert] : world_->host_certs) (*chains_)[host] = pki.write_chain(host + ".chain.pem", {&cert, &world_->ca});
  }
  static void TearDownTestSuite() {
    delete chains_;
    delete world_;
    delete dir_;
  }
  static std::string config() { return world_->config_file.string(); }
  static std::string write(const std::string& name, const std::string& text) {
    auto path = dir_->path() / name;
    std::ofstream(path) << text;
    return path.string();
  }
  // The world's configuration with `extra` appended (policy tables).
  static std::string config_with(const std::string& name, const std::string& extra) {
    std::ifstream in(world_->config_file);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    return write(name, text + extra);
  }

  // A sink at address:port presenting cert_host's chain (leaf + the world's CA); "" offers no STARTTLS.
  std::unique_ptr<SmtpSink> sink(const std::string& address, const std::string& cert_host, std::uint16_t port = 25) {
    SinkOptions o;
    o.address = address;
    o.port = port;
    o.hostname = "sink.test";
    if (cert_host.empty()) {
      o.starttls = false;
    } else {
      o.chain_file = chains_->at(cert_host);
      o.key_file = world_->host_certs.at(cert_host).key_file;
    }
    return std::make_unique<SmtpSink>(o);
  }

  static json parse(const CliRun& r) {
    try {
      return json::parse(r.out);
    } catch (const std::exception& e) {
      ADD_FAILURE() << "not JSON (" << e.what() << "): " << r.out << r.err;
      return json::object();
    }
  }
  static const json& host(const json& j, const std::string& name) {
    for (const auto& h : j.at("hosts")) {
      if (h.at("name") == name) return h;
    }
    static const json none = json::object();
    ADD_FAILURE() << "no host " << name << " in " << j.dump(2);
    return none;
  }
  static bool has(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }
  // No MAIL command ever (check and probe stop at QUIT); QUIT after each greeting.
  static void expect_no_mail(const SmtpSink& s) {
    for (const auto& c : s.stats().commands) EXPECT_FALSE(c.starts_with("MAIL")) << c;
  }
  static void expect_quit(const SmtpSink& s) {
    const auto st = s.stats();
    int quits = 0;
    for (const auto& c : st.commands) quits += c == "QUIT" ? 1 : 0;
    EXPECT_GE(quits, 1) << "no QUIT among " << st.commands.size() << " commands";
  }

  static inline danerelay::testsupport::TempDir* dir_ = nullptr;
  static inline danerelay::testsupport::World* world_ = nullptr;
  static inline std::map<std::string, std::filesystem::path>* chains_ = nullptr;
};

// ---- without --connect: the DNS facts, the policy and the verdict ----------------------------------

TEST_F(Check, D10_DaneEeDomainIsDeliverableWithItsUsableRecordNamed) {
  auto r = run("check --json -c " + config() + " secure.test");
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  const json j = parse(r);
  EXPECT_EQ(j["exit"], 0);
  EXPECT_TRUE(j["self_test"]["ok"].get<bool>());
  EXPECT_EQ(j["mx"]["verdict"], "secure");
  EXPECT_EQ(j["mx"]["records"], json::array({"10 mx.secure.test."}));
  EXPECT_EQ(j["policy"]["level"], "dane");
  // [policy] default = "dane" in the world config: no table matched, the default is named with its line.
  EXPECT_TRUE(j["policy"]["rule"].get<std::string>().starts_with("default: [policy] default at " + config() + ":")) << j["policy"];
  EXPECT_EQ(j["policy"]["file"], config());
  const json& h = host(j, "mx.secure.test");
  EXPECT_EQ(h["addresses"], json::array({"127.0.0.11", "::1"}));
  ASSERT_EQ(h["address_lookups"].size(), 2u) << h.dump(2);
  EXPECT_EQ(h["address_lookups"][0]["type"], "A");
  EXPECT_EQ(h["address_lookups"][0]["verdict"], "secure");
  EXPECT_EQ(h["address_lookups"][1]["type"], "AAAA");
  EXPECT_EQ(h["tlsa"]["state"], "found");
  EXPECT_EQ(h["tlsa"]["lookup"]["name"], "_25._tcp.mx.secure.test");
  EXPECT_EQ(h["tlsa"]["lookup"]["verdict"], "secure");
  ASSERT_EQ(h["tlsa"]["records"].size(), 1u);
  EXPECT_TRUE(h["tlsa"]["records"][0]["usable"].get<bool>());
  EXPECT_TRUE(h["tlsa"]["records"][0]["record"].get<std::string>().starts_with("3 1 1 "));
  EXPECT_EQ(h["tlsa"]["records"][0]["why"], "DANE-EE(3) SPKI(1) SHA2-256(1)");
  EXPECT_EQ(h["requirement"], "dane");
  EXPECT_EQ(h["sni"], "mx.secure.test");
  EXPECT_TRUE(h["ok"].get<bool>());
  EXPECT_FALSE(j["connected"].get<bool>());
  EXPECT_TRUE(j["deliverable"].get<bool>());
  EXPECT_EQ(j["warnings"], json::array());
  EXPECT_EQ(j["summary"]["dane_existence"]["result"], "yes");
  EXPECT_EQ(j["summary"]["dane_validity"]["result"], "untested");
  EXPECT_EQ(j["summary"]["dane_rollover_scheme"]["result"], "none");

  // The same facts for a person.
  r = run("check -c " + config() + " secure.test");
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_TRUE(has(r.out, "DNSSEC self-test (. DNSKEY): validation works")) << r.out;
  EXPECT_TRUE(has(r.out, "secure.test: port 25\n  policy: dane (default: [policy] default at " + config() + ":"))
      << r.out;
  EXPECT_TRUE(has(r.out, "\n  secure.test. IN MX ; secure\n      10 mx.secure.test.\n  [1] mx.secure.test")) << r.out;
  EXPECT_TRUE(has(r.out, "  [1] mx.secure.test (preference 10)\n      mx.secure.test. IN A ; secure\n          127.0.0.11\n"))
      << r.out;
  EXPECT_TRUE(has(r.out, "      _25._tcp.mx.secure.test. IN TLSA ; secure\n          3 1 1 ")) << r.out;
  EXPECT_TRUE(has(r.out, " ; usable: DANE-EE(3) SPKI(1) SHA2-256(1)\n")) << r.out;
  EXPECT_TRUE(has(r.out, "      TLS: dane, SNI mx.secure.test\n")) << r.out;
  EXPECT_TRUE(has(r.out, "  DANE existence: yes: ")) << r.out;
  EXPECT_TRUE(has(r.out, "  DANE validity: untested: ")) << r.out;
  EXPECT_TRUE(has(r.out, "  DANE rollover scheme: none: mx.secure.test: a single usable record")) << r.out;
  EXPECT_TRUE(has(r.out, "  verdict: deliverable under dane (1 of 1 host usable)\n")) << r.out;
}

TEST_F(Check, D40_DaneTaRecordIsUsable) {
  auto r = run("check --json --no-self-test -c " + config() + " danetta.test");
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  const json j = parse(r);
  const json& h = host(j, "mx.danetta.test");
  ASSERT_EQ(h["tlsa"]["records"].size(), 1u);
  EXPECT_TRUE(h["tlsa"]["records"][0]["record"].get<std::string>().starts_with("2 0 1 "));
  EXPECT_EQ(h["tlsa"]["records"][0]["why"], "DANE-TA(2) Cert(0) SHA2-256(1)");
  EXPECT_EQ(h["requirement"], "dane");
  EXPECT_TRUE(j["self_test"]["summary"].get<std::string>().empty());  // --no-self-test
}

TEST_F(Check, D38_OnlyPkixUsagesAreUnusableButStillRequireTls) {
  auto r = run("check --json -c " + config() + " unusable.test");
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  const json j = parse(r);
  const json& h = host(j, "mx.unusable.test");
  ASSERT_EQ(h["tlsa"]["records"].size(), 2u) << h.dump(2);
  for (const auto& rec : h["tlsa"]["records"]) {
    EXPECT_FALSE(rec["usable"].get<bool>()) << rec.dump();
    const std::string why = rec["why"];
    const std::string text = rec["record"];
    EXPECT_TRUE(has(why, text.starts_with("1 ") ? "PKIX-EE" : "PKIX-TA")) << rec.dump();
  }
  EXPECT_EQ(h["requirement"], "encrypt");   // D-11, D-33: TLS, unauthenticated
  EXPECT_EQ(h["tls_feature"], "dane:encrypt");
  EXPECT_EQ(j["summary"]["dane_existence"]["result"], "yes");
  EXPECT_EQ(j["summary"]["dane_validity"]["result"], "invalid");
  EXPECT_TRUE(has(j["summary"]["dane_validity"]["text"], "mx.unusable.test: no usable record"));

  r = run("check --no-self-test -c " + config() + " unusable.test");
  EXPECT_TRUE(has(r.out, " ; UNUSABLE: ")) << r.out;
  EXPECT_TRUE(has(r.out, "      TLS: encrypt, SNI mx.unusable.test\n")) << r.out;
}

TEST_F(Check, D38_DaneOnlyWithOnlyUnusableRecordsWouldDeferAndNamesTheRuleLine) {
  const auto cfg = config_with("daneonly.toml", "\n[policy.destination.\"unusable.test\"]\nlevel = \"dane-only\"\n");
  auto r = run("check --json --no-self-test -c " + cfg + " unusable.test");
  EXPECT_EQ(r.status, 1) << r.out << r.err;
  const json j = parse(r);
  EXPECT_EQ(j["policy"]["level"], "dane-only");
  EXPECT_EQ(j["policy"]["file"], cfg);
  // The table header is the last line but one of the file.
  std::ifstream in(cfg);
  int lines = 0;
  for (std::string l; std::getline(in, l);) ++lines;
  EXPECT_EQ(j["policy"]["line"], lines - 1);
  EXPECT_EQ(j["policy"]["rule"], "[policy.destination.\"unusable.test\"] at " + cfg + ":" + std::to_string(lines - 1));
  const json& h = host(j, "mx.unusable.test");
  EXPECT_EQ(h["problem"], "4.7.5 TLSA records unusable for mx.unusable.test:25 (dane-only)") << h.dump(2);
  EXPECT_FALSE(j["deliverable"].get<bool>());
  r = run("check --no-self-test -c " + cfg + " unusable.test");
  EXPECT_EQ(r.status, 1);
  EXPECT_TRUE(has(r.out, "  policy: dane-only ([policy.destination.\"unusable.test\"] at " + cfg + ":")) << r.out;
  EXPECT_TRUE(has(r.out, "      NOT USED: 4.7.5 TLSA records unusable for mx.unusable.test:25 (dane-only)\n")) << r.out;
  EXPECT_TRUE(has(r.out, "  verdict: DEFER: no host can be used under the effective policy\n")) << r.out;
}

TEST_F(Check, D13_TlsaServfailMakesOneHostUnusableAWarningAndStrictFails) {
  auto r = run("check --json --no-self-test -c " + config() + " multi.test");
  EXPECT_EQ(r.status, 0) << "another MX works: " << r.out << r.err;
  json j = parse(r);
  const json& mx3 = host(j, "mx3.multi.test");
  EXPECT_EQ(mx3["tlsa"]["state"], "error");
  EXPECT_EQ(mx3["problem"], "4.7.5 TLSA lookup error for mx3.multi.test:25");
  EXPECT_FALSE(mx3["ok"].get<bool>());
  EXPECT_EQ(host(j, "mx2.multi.test")["tlsa"]["state"], "secure-denial");
  EXPECT_EQ(host(j, "mx2.multi.test")["requirement"], "opportunistic");
  ASSERT_EQ(j["warnings"].size(), 1u) << j["warnings"].dump();
  EXPECT_EQ(j["warnings"][0], "mx3.multi.test: not used: 4.7.5 TLSA lookup error for mx3.multi.test:25");
  EXPECT_EQ(j["summary"]["dane_existence"]["result"], "partly");
  r = run("check --strict --json --no-self-test -c " + config() + " multi.test");
  EXPECT_EQ(r.status, 1) << r.out;
  EXPECT_EQ(parse(r)["exit"], 1);
  r = run("check --no-self-test -c " + config() + " multi.test");
  EXPECT_TRUE(has(r.out, "  warning: mx3.multi.test: not used: 4.7.5 TLSA lookup error for mx3.multi.test:25\n")) << r.out;
  EXPECT_TRUE(has(r.out, "_25._tcp.mx3.multi.test. IN TLSA ; servfail")) << r.out;
}

TEST_F(Check, D12_InsecureDomainIsOpportunisticWithoutDane) {
  auto r = run("check --json --no-self-test -c " + config() + " insecure.test");
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  const json j = parse(r);
  EXPECT_EQ(j["mx"]["verdict"], "insecure");
  const json& h = host(j, "mx.insecure.test");
  EXPECT_EQ(h["address_security"], "insecure");
  EXPECT_EQ(h["tlsa"]["state"], "insecure-address");
  EXPECT_EQ(h["requirement"], "opportunistic");
  EXPECT_EQ(j["summary"]["dane_existence"]["result"], "no");
  EXPECT_EQ(j["summary"]["dane_validity"]["result"], "n/a");
}

TEST_F(Check, D05_BogusDomainWouldDeferAndExitsOne) {
  auto r = run("check --json --no-self-test -c " + config() + " bogus-ds.test");
  EXPECT_EQ(r.status, 1) << r.out << r.err;
  const json j = parse(r);
  EXPECT_TRUE(j["mx"]["verdict"].get<std::string>().starts_with("bogus")) << j["mx"].dump();
  EXPECT_EQ(j["plan"]["status"], "failed");
  EXPECT_EQ(j["plan"]["action"], "defer");
  EXPECT_EQ(j["plan"]["dsn"], "4.4.3");
  EXPECT_EQ(j["hosts"], json::array());
  EXPECT_FALSE(j["deliverable"].get<bool>());
  r = run("check --no-self-test -c " + config() + " expired.test");
  EXPECT_EQ(r.status, 1) << r.out;
  EXPECT_TRUE(has(r.out, "  expired.test. IN MX ; bogus")) << r.out;
  EXPECT_TRUE(has(r.out, "  verdict: DEFER 4.4.3 Host or domain name not found. Name service error for name=expired.test type=MX"))
      << r.out;
}

TEST_F(Check, N01_NullMxWouldBounce) {
  auto r = run("check --json --no-self-test -c " + config() + " nullmx.test");
  EXPECT_EQ(r.status, 1) << r.out << r.err;
  const json j = parse(r);
  EXPECT_EQ(j["mx"]["records"], json::array({"0 ."}));
  EXPECT_EQ(j["plan"]["action"], "bounce");
  EXPECT_EQ(j["plan"]["dsn"], "5.1.10");
  r = run("check --no-self-test -c " + config() + " nullmx.test");
  EXPECT_TRUE(has(r.out, "  verdict: BOUNCE 5.1.10 Domain nullmx.test does not accept mail (nullMX)\n")) << r.out;
}

TEST_F(Check, D06_UnresolvableBestMxIsAWarningWhileTheNextWorks) {
  auto r = run("check --json --no-self-test -c " + config() + " deadhost.test");
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  const json j = parse(r);
  const json& dead = host(j, "mx.dead.test");
  EXPECT_FALSE(dead["planned_usable"].get<bool>());
  EXPECT_TRUE(dead["problem"].get<std::string>().starts_with("4.4.3 ")) << dead.dump(2);
  EXPECT_TRUE(host(j, "mx.secure.test")["ok"].get<bool>());
  EXPECT_EQ(j["warnings"].size(), 1u);
  EXPECT_EQ(run("check --strict --no-self-test -c " + config() + " deadhost.test").status, 1);
}

TEST_F(Check, D22_ConfiguredNextHopNamesItsRuleAndPort) {
  auto r = run("check --json --no-self-test -c " + config() + " routed.test");
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  const json j = parse(r);
  EXPECT_EQ(j["destination"]["kind"], "nexthop");
  EXPECT_EQ(j["port"], 2525);
  EXPECT_TRUE(j["policy"]["rule"].get<std::string>().starts_with("[policy.destination.\"routed.test\"] at " + config() + ":"));
  EXPECT_EQ(host(j, "mx.secure.test")["tlsa"]["lookup"]["name"], "_2525._tcp.mx.secure.test");
}

TEST_F(Check, PortOptionLooksUpTlsaForThatPort) {
  auto r = run("check --json --no-self-test -p 2525 -c " + config() + " secure.test");
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_EQ(host(parse(r), "mx.secure.test")["tlsa"]["lookup"]["name"], "_2525._tcp.mx.secure.test");
}

TEST_F(Check, FailedSelfTestExitsThree) {
  const auto ta = write("wrong.ta", ". IN DS 12345 13 2 " + std::string(64, 'c') + "\n");
  const auto cfg = write("wrong.toml", "[dns]\ntrust_anchor = \"" + ta + "\"\ntrust_anchor_auto_update = false\nunbound_config = \"" +
                                           world_->dns.unbound_conf.string() + "\"\n");
  auto r = run("check -c " + cfg + " secure.test");
  EXPECT_EQ(r.status, 3) << r.out << r.err;
  EXPECT_TRUE(has(r.out, "DNSSEC self-test (. DNSKEY) FAILED: bogus")) << r.out;
  r = run("check --json -c " + cfg + " secure.test");
  EXPECT_EQ(r.status, 3);
  EXPECT_FALSE(parse(r)["self_test"]["ok"].get<bool>());
}

TEST_F(Check, UsageAndConfigErrors) {
  EXPECT_EQ(run("check -c " + config()).status, 64);                              // no domain
  EXPECT_EQ(run("check --frob -c " + config() + " secure.test").status, 64);
  EXPECT_EQ(run("check -p 0 -c " + config() + " secure.test").status, 64);
  EXPECT_EQ(run("check -c " + config() + " \xcc\x81" "bc.example").status, 64);  // a leading combining mark: no IDN (RFC 5891 §4.2.3.2)
  const auto bad = write("bad.toml", "[delivery]\nport = 70000\n");
  EXPECT_EQ(run("check -c " + bad + " secure.test").status, 2);
  EXPECT_EQ(run("probe -c " + bad + " mx.secure.test").status, 2);
  EXPECT_EQ(run("probe -c " + config() + " mx.secure.test:99999").status, 64);
  EXPECT_EQ(run("probe -c " + config()).status, 64);
}

// ---- --connect: the delivery's client up to the handshake and QUIT ------------------------------

TEST_F(Check, D10_ConnectDaneEeMatchOnEveryAddress) {
  auto v4 = sink("127.0.0.11", "mx.secure.test");
  auto v6 = sink("::1", "mx.secure.test");
  auto r = run("check --connect --json --no-self-test -c " + config() + " secure.test");
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  const json j = parse(r);
  const json& h = host(j, "mx.secure.test");
  ASSERT_EQ(h["connect"].size(), 2u) << h.dump(2);
  for (const auto& a : h["connect"]) {
    EXPECT_TRUE(a["pass"].get<bool>()) << a.dump(2);
    EXPECT_EQ(a["trust"], "Verified");
    EXPECT_TRUE(a["matched"].get<std::string>().starts_with("3 1 1 ")) << a.dump(2);
    EXPECT_EQ(a["depth"], 0);
    EXPECT_EQ(a["failure"], "");
    ASSERT_FALSE(a["log"].empty());
    EXPECT_TRUE(has(a["log"][0], "Matched DANE EE certificate at depth 0: 3 1 1 ")) << a.dump(2);
  }
  EXPECT_EQ(j["summary"]["dane_validity"]["result"], "valid");
  EXPECT_TRUE(j["connected"].get<bool>());
  for (const SmtpSink* s : {v4.get(), v6.get()}) {
    EXPECT_EQ(s->stats().tls_handshakes, 1);
    EXPECT_EQ(s->stats().sni, std::vector<std::string>{"mx.secure.test"});  // D-43
    expect_no_mail(*s);
    expect_quit(*s);
  }

  r = run("check --connect --no-self-test -c " + config() + " secure.test");
  EXPECT_EQ(r.status, 0) << r.out;
  EXPECT_TRUE(has(r.out, "      pass: 127.0.0.11: TLSA match: depth = 0, name = mx.secure.test: 3 1 1 ")) << r.out;
  EXPECT_TRUE(has(r.out, " (Verified TLSv1.")) << r.out;
  EXPECT_TRUE(has(r.out, "      pass: ::1: TLSA match: depth = 0")) << r.out;
  EXPECT_TRUE(has(r.out, "  DANE validity: valid: ")) << r.out;
  EXPECT_TRUE(has(r.out, "(1 of 1 host usable, connected)")) << r.out;
}

TEST_F(Check, D40_ConnectDaneTaMatchAtDepthOneWithThePeerName) {
  auto s = sink("127.0.0.141", "mx.danetta.test");
  auto r = run("check --connect --json --no-self-test -c " + config() + " danetta.test");
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  const json j = parse(r);
  const json& a = host(j, "mx.danetta.test")["connect"].at(0);
  EXPECT_TRUE(a["pass"].get<bool>()) << a.dump(2);
  EXPECT_TRUE(a["matched"].get<std::string>().starts_with("2 0 1 ")) << a.dump(2);
  EXPECT_EQ(a["depth"], 1);
  EXPECT_EQ(a["peer_name"], "mx.danetta.test");
  EXPECT_EQ(a["trust"], "Verified");
  expect_no_mail(*s);
  r = run("check --connect --no-self-test -c " + config() + " danetta.test");
  EXPECT_TRUE(has(r.out, "      pass: 127.0.0.141: TLSA match: depth = 1, name = mx.danetta.test: 2 0 1 ")) << r.out;
}

TEST_F(Check, D39_ConnectMismatchOnTheOnlyMxFailsWithTheVerifyReason) {
  // mx.secure.test presents another host's certificate (issued by the same CA): 3 1 1 cannot match.
  auto v4 = sink("127.0.0.11", "mx.unusable.test");
  auto v6 = sink("::1", "mx.unusable.test");
  auto r = run("check --connect --json --no-self-test -c " + config() + " secure.test");
  EXPECT_EQ(r.status, 1) << r.out << r.err;
  const json j = parse(r);
  for (const auto& a : host(j, "mx.secure.test")["connect"]) {
    EXPECT_FALSE(a["pass"].get<bool>());
    EXPECT_TRUE(a["matched"].is_null());
    EXPECT_TRUE(has(a["failure"], "Server certificate not verified")) << a.dump(2);
    bool line = false;
    for (const auto& l : a["log"]) line = line || has(l, "num=65:no matching DANE TLSA records");
    EXPECT_TRUE(line) << a.dump(2);
  }
  EXPECT_FALSE(j["deliverable"].get<bool>());
  EXPECT_EQ(j["summary"]["dane_validity"]["result"], "invalid");
  expect_no_mail(*v4);
  r = run("check --connect --no-self-test -c " + config() + " secure.test");
  EXPECT_EQ(r.status, 1);
  EXPECT_TRUE(has(r.out, "      fail: 127.0.0.11: Server certificate not verified")) << r.out;
}

TEST_F(Check, D45_ConnectOneMismatchedMxWithAWorkingOneWarnsAndStrictFails) {
  auto mx1 = sink("127.0.0.131", "mx2.twomx.test");  // wrong certificate
  auto mx2 = sink("127.0.0.132", "mx2.twomx.test");
  auto r = run("check --connect --json --no-self-test -c " + config() + " twomx.test");
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  json j = parse(r);
  EXPECT_FALSE(host(j, "mx1.twomx.test")["ok"].get<bool>());
  EXPECT_TRUE(host(j, "mx2.twomx.test")["ok"].get<bool>());
  ASSERT_EQ(j["warnings"].size(), 1u) << j.dump(2);
  EXPECT_TRUE(has(j["warnings"][0], "mx1.twomx.test[127.0.0.131]:25: Server certificate not verified")) << j["warnings"];
  r = run("check --connect --strict --no-self-test -c " + config() + " twomx.test");
  EXPECT_EQ(r.status, 1) << r.out;
  EXPECT_TRUE(has(r.out, "  warning: mx1.twomx.test[127.0.0.131]:25: Server certificate not verified")) << r.out;
  expect_no_mail(*mx1);
  expect_no_mail(*mx2);
}

TEST_F(Check, D11_ConnectUnusableOnlyIsUnauthenticatedTls) {
  auto s = sink("127.0.0.111", "mx.unusable.test");
  auto r = run("check --connect --json --no-self-test -c " + config() + " unusable.test");
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  const json ja = parse(r);
  const json& a = host(ja, "mx.unusable.test")["connect"].at(0);
  EXPECT_TRUE(a["pass"].get<bool>()) << a.dump(2);
  EXPECT_EQ(a["trust"], "Untrusted");
  EXPECT_TRUE(a["matched"].is_null());
  EXPECT_EQ(s->stats().tls_handshakes, 1);
  // Without STARTTLS the required TLS is missing: no plaintext (D-11).
  s.reset();
  s = sink("127.0.0.111", "");
  r = run("check --connect --json --no-self-test -c " + config() + " unusable.test");
  EXPECT_EQ(r.status, 1) << r.out;
  const json jb = parse(r);
  const json& b = host(jb, "mx.unusable.test")["connect"].at(0);
  EXPECT_FALSE(b["starttls_offered"].get<bool>());
  EXPECT_TRUE(has(b["failure"], "TLS is required, but was not offered by host mx.unusable.test[127.0.0.111]")) << b.dump(2);
  expect_no_mail(*s);
}

TEST_F(Check, D13_ConnectNeverTouchesTheHostWhoseTlsaLookupFailed) {
  auto mx1 = sink("127.0.0.21", "mx1.multi.test");
  auto mx2 = sink("127.0.0.22", "mx1.multi.test");  // secure denial: opportunistic, any certificate
  auto mx3 = sink("127.0.0.23", "mx1.multi.test");
  auto mx4 = sink("127.0.0.24", "mx4.multi.test");
  auto r = run("check --connect --json --no-self-test -c " + config() + " multi.test");
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  const json j = parse(r);
  EXPECT_EQ(mx3->stats().connections, 0);
  EXPECT_FALSE(host(j, "mx3.multi.test").contains("connect"));
  EXPECT_EQ(host(j, "mx1.multi.test")["connect"][0]["trust"], "Verified");
  EXPECT_EQ(host(j, "mx2.multi.test")["connect"][0]["trust"], "Untrusted");
  EXPECT_TRUE(host(j, "mx4.multi.test")["connect"][0]["matched"].get<std::string>().starts_with("2 0 1 "));
  EXPECT_EQ(j["warnings"].size(), 1u) << j["warnings"];
  for (const SmtpSink* s : {mx1.get(), mx2.get(), mx4.get()}) expect_no_mail(*s);
}

TEST_F(Check, D12_ConnectInsecureDomainWithoutStarttlsIsPlaintext) {
  auto s = sink("127.0.0.31", "");
  auto r = run("check --connect --json --no-self-test -c " + config() + " insecure.test");
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  const json ja = parse(r);
  const json& a = host(ja, "mx.insecure.test")["connect"].at(0);
  EXPECT_TRUE(a["pass"].get<bool>()) << a.dump(2);
  EXPECT_EQ(a["trust"], "");
  EXPECT_TRUE(has(a["note"], "STARTTLS not offered")) << a.dump(2);
  expect_no_mail(*s);
  expect_quit(*s);
}

TEST_F(Check, D05_ConnectMakesNoConnectionForBogusOrNullMx) {
  auto s = sink("127.0.0.41", "mx.secure.test");
  EXPECT_EQ(run("check --connect --no-self-test -c " + config() + " bogus-ds.test").status, 1);
  EXPECT_EQ(run("check --connect --no-self-test -c " + config() + " nullmx.test").status, 1);
  EXPECT_EQ(s->stats().connections, 0);
}

TEST_F(Check, D45_ConnectMxThatIsDown) {
  // No sink on mx1.twomx.test: connection refused; mx2 works → a warning, exit 0.
  auto mx2 = sink("127.0.0.132", "mx2.twomx.test");
  auto r = run("check --connect --json --no-self-test -c " + config() + " twomx.test");
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  json j = parse(r);
  const json& a = host(j, "mx1.twomx.test")["connect"].at(0);
  EXPECT_FALSE(a["pass"].get<bool>());
  EXPECT_TRUE(has(a["failure"], "connect to mx1.twomx.test[127.0.0.131]:25")) << a.dump(2);
  EXPECT_EQ(j["warnings"].size(), 1u);
  // A refused connection says nothing about the records: only mx2's certificate is judged.
  EXPECT_EQ(j["summary"]["dane_validity"]["result"], "valid") << j["summary"];
  EXPECT_TRUE(has(j["summary"]["dane_validity"]["text"], "no TLS handshake with mx1.twomx.test[127.0.0.131]")) << j["summary"];
  EXPECT_FALSE(a["handshake"].get<bool>());
  // Every MX down: would defer.
  mx2.reset();
  r = run("check --connect --no-self-test -c " + config() + " twomx.test");
  EXPECT_EQ(r.status, 1) << r.out;
  EXPECT_TRUE(has(r.out, "      fail: 127.0.0.131: connect to mx1.twomx.test[127.0.0.131]:25")) << r.out;
  EXPECT_TRUE(has(r.out, "  verdict: DEFER: no host can be used under the effective policy\n")) << r.out;
}

// ---- probe ----------------------------------------------------------------------------------------

TEST_F(Check, ProbeDaneEeSuccess) {
  auto v4 = sink("127.0.0.11", "mx.secure.test");
  auto v6 = sink("::1", "mx.secure.test");
  auto r = run("probe -c " + config() + " mx.secure.test");
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_TRUE(has(r.out, "mx.secure.test[127.0.0.11]:25: Matched DANE EE certificate at depth 0: 3 1 1 ")) << r.out;
  EXPECT_TRUE(has(r.out, "Verified TLS connection established to mx.secure.test[127.0.0.11]:25: TLSv1.")) << r.out;
  EXPECT_TRUE(has(r.out, "Verified TLS connection established to mx.secure.test[::1]:25: ")) << r.out;
  EXPECT_TRUE(has(r.out, "mx.secure.test: one server (probe), port 25\n  policy: dane (probe: always dane")) << r.out;
  EXPECT_TRUE(has(r.out, "  probe: ok\n")) << r.out;
  expect_no_mail(*v4);
  expect_quit(*v4);
}

TEST_F(Check, ProbeOnAnotherPortUsesThatPortsTlsa) {
  auto v4 = sink("127.0.0.11", "mx.secure.test", 2525);
  auto v6 = sink("::1", "mx.secure.test", 2525);
  auto r = run("probe --json -c " + config() + " mx.secure.test:2525");
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  const json j = parse(r);
  EXPECT_EQ(j["exit"], 0);
  EXPECT_EQ(j["port"], 2525);
  EXPECT_EQ(host(j, "mx.secure.test")["tlsa"]["lookup"]["name"], "_2525._tcp.mx.secure.test");
  EXPECT_EQ(host(j, "mx.secure.test")["connect"].size(), 2u);
}

TEST_F(Check, ProbeMismatchFails) {
  auto v4 = sink("127.0.0.11", "mx.unusable.test");
  auto v6 = sink("::1", "mx.unusable.test");
  auto r = run("probe -c " + config() + " mx.secure.test");
  EXPECT_EQ(r.status, 1) << r.out << r.err;
  EXPECT_TRUE(has(r.out, "server certificate verification failed for mx.secure.test[127.0.0.11]:25: num=65:no matching DANE TLSA records"))
      << r.out;
  EXPECT_TRUE(has(r.out, "  probe: FAILED\n")) << r.out;
  expect_no_mail(*v4);
}

TEST_F(Check, ProbeWithoutStarttlsFails) {
  // DANE host: TLS required (D-10); and an address without TLSA, where TLS is only opportunistic:
  // probe still fails, no handshake happened.
  auto v4 = sink("127.0.0.11", "");
  auto v6 = sink("::1", "");
  auto r = run("probe -c " + config() + " mx.secure.test");
  EXPECT_EQ(r.status, 1) << r.out << r.err;
  EXPECT_TRUE(has(r.out, "TLS is required, but was not offered by host mx.secure.test[127.0.0.11]")) << r.out;
  r = run("probe --json -c " + config() + " 127.0.0.11");
  EXPECT_EQ(r.status, 1) << r.out << r.err;
  const json j = parse(r);
  EXPECT_EQ(j["exit"], 1);
  EXPECT_FALSE(j["hosts"][0]["connect"][0]["starttls_offered"].get<bool>());
  expect_no_mail(*v4);
}

TEST_F(Check, ProbeAnAddressWithTheTlsaOfAnotherName) {
  auto v4 = sink("127.0.0.11", "mx.secure.test");
  // An address has no TLSA: TLS up, unauthenticated → exit 0 (no usable TLSA to require).
  auto r = run("probe --json -c " + config() + " 127.0.0.11");
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  json j = parse(r);
  EXPECT_EQ(j["hosts"][0]["tlsa"]["state"], "not-applicable");
  EXPECT_EQ(j["hosts"][0]["connect"][0]["trust"], "Untrusted");
  // --tlsa-from: the TLSA RRset of mx.secure.test, which the certificate matches; SNI is that name.
  r = run("probe --json -c " + config() + " 127.0.0.11 --tlsa-from mx.secure.test");
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  j = parse(r);
  EXPECT_EQ(j["hosts"][0]["tlsa"]["lookup"]["name"], "_25._tcp.mx.secure.test");
  EXPECT_EQ(j["hosts"][0]["sni"], "mx.secure.test");
  EXPECT_EQ(j["hosts"][0]["connect"][0]["trust"], "Verified");
  EXPECT_TRUE(j["hosts"][0]["connect"][0]["matched"].get<std::string>().starts_with("3 1 1 "));
  // And the TLSA of a name whose records this certificate does not match.
  r = run("probe -c " + config() + " 127.0.0.11 --tlsa-from mx1.twomx.test");
  EXPECT_EQ(r.status, 1) << r.out << r.err;
  EXPECT_TRUE(has(r.out, "num=65:no matching DANE TLSA records")) << r.out;
}

}  // namespace
