// tests/tls/policy_test.cpp — the per-host TLS policy (tls/policy.hpp) from tables: every level ×
// every DNS state, each row once with a secure and once with an insecure MX RRset (as mox re-runs
// its tables with AllAuthentic false and true), then the usability filter, RFC 7671 §9 agility and
// the reference identifiers. No I/O. Certificate behaviour is tested with real certificates in
// handshake_test.cpp, not here. Checklist ids (../shared/rfc-checklist.md) in test names.
#include "tls/policy.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <tuple>
#include <vector>

namespace danerelay::tls {
namespace {

using config::TlsLevel;
using dns::TlsaRecord;
using dns::TlsaState;

const std::vector<std::string> kDefaultOrder{"sha512", "sha256"};

TlsaRecord record(int usage, int selector, int mtype, std::size_t length, std::uint8_t fill = 0xab) {
  TlsaRecord r;
  r.usage = static_cast<std::uint8_t>(usage);
  r.selector = static_cast<std::uint8_t>(selector);
  r.matching_type = static_cast<std::uint8_t>(mtype);
  r.data.assign(length, fill);
  return r;
}

// A structurally valid DER SEQUENCE of `body` octets (what a Full(0) record carries).
TlsaRecord full_record(int usage, int selector, std::size_t body = 70) {
  TlsaRecord r = record(usage, selector, 0, 0);
  r.data = {0x30, 0x81, static_cast<std::uint8_t>(body)};
  r.data.resize(3 + body, 0x02);
  return r;
}

// The DNS situations a host can be in when the policy is decided.
enum class Dns { usable, unusable_only, secure_denial, insecure, insecure_address, not_applicable, error };

std::string_view name_of(Dns d) {
  switch (d) {
    case Dns::usable: return "FoundUsable";
    case Dns::unusable_only: return "FoundUnusableOnly";
    case Dns::secure_denial: return "SecureDenial";
    case Dns::insecure: return "InsecureTlsa";
    case Dns::insecure_address: return "InsecureAddress";
    case Dns::not_applicable: return "NotApplicable";
    case Dns::error: return "TlsaError";
  }
  return "?";
}

dns::DeliveryPlan mx_plan(bool mx_insecure, std::string domain = "example.test") {
  dns::DeliveryPlan p;
  p.domain = domain;
  p.next_hop = domain;
  p.kind = dns::DestinationKind::mx;
  p.port = 25;
  p.mx_security = mx_insecure ? dns::Verdict::insecure : dns::Verdict::secure;
  p.status = dns::PlanStatus::deliver;
  return p;
}

dns::Host host_in(Dns state, std::string name = "mx.example.test") {
  dns::Host h;
  h.name = std::move(name);
  h.expanded = h.name;
  h.address_security = dns::Verdict::secure;
  h.usable = true;
  h.tlsa.candidates = {h.name};
  h.tlsa.base_domain = h.name;
  h.tlsa.qname = dns::tlsa_qname(25, h.name);
  h.tlsa.owner = h.tlsa.qname;
  switch (state) {
    case Dns::usable:
      h.tlsa.state = TlsaState::found;
      h.tlsa.records = {record(3, 1, 1, 32)};
      break;
    case Dns::unusable_only:
      h.tlsa.state = TlsaState::found;
      h.tlsa.records = {record(0, 0, 1, 32), record(1, 1, 1, 32)};
      break;
    case Dns::secure_denial: h.tlsa.state = TlsaState::secure_denial; break;
    case Dns::insecure: h.tlsa.state = TlsaState::insecure; break;
    case Dns::insecure_address:
      h.address_security = dns::Verdict::insecure;
      h.tlsa.state = TlsaState::insecure_address;
      h.tlsa.candidates.clear();
      h.tlsa.base_domain.clear();
      h.tlsa.qname.clear();
      break;
    case Dns::not_applicable:
      // D-15: an MX RRset naming an address literal; DANE does not apply.
      h.name = h.expanded = "[192.0.2.1]";
      h.tlsa = {};
      h.tlsa.state = TlsaState::not_applicable;
      break;
    case Dns::error:
      h.tlsa.state = TlsaState::error;
      h.usable = false;
      break;
  }
  return h;
}

// --- Every level × every DNS state × MX secure/insecure -----------------------------------------

struct Expect {
  Requirement requirement;
  std::string_view feature;
};

struct Row {
  std::string_view id;  // checklist id the row exercises
  TlsLevel level;
  Dns dns;
  Expect secure_mx;
  Expect insecure_mx;
};

constexpr Requirement kNone = Requirement::none;
constexpr Requirement kOpp = Requirement::opportunistic;
constexpr Requirement kEnc = Requirement::encrypt;
constexpr Requirement kDane = Requirement::dane;
constexpr Requirement kPkix = Requirement::pkix;
constexpr Requirement kDefer = Requirement::defer;

const Row kRows[] = {
    // none: plaintext, whatever DNS says.
    {"Level", TlsLevel::none, Dns::usable, {kNone, "none"}, {kNone, "none"}},
    {"Level", TlsLevel::none, Dns::unusable_only, {kNone, "none"}, {kNone, "none"}},
    {"Level", TlsLevel::none, Dns::secure_denial, {kNone, "none"}, {kNone, "none"}},
    {"Level", TlsLevel::none, Dns::insecure, {kNone, "none"}, {kNone, "none"}},
    {"Level", TlsLevel::none, Dns::insecure_address, {kNone, "none"}, {kNone, "none"}},
    {"Level", TlsLevel::none, Dns::not_applicable, {kNone, "none"}, {kNone, "none"}},
    {"Level", TlsLevel::none, Dns::error, {kNone, "none"}, {kNone, "none"}},
    // may: opportunistic TLS; TLSA is not consulted.
    {"Level", TlsLevel::may, Dns::usable, {kOpp, "may"}, {kOpp, "may"}},
    {"Level", TlsLevel::may, Dns::unusable_only, {kOpp, "may"}, {kOpp, "may"}},
    {"Level", TlsLevel::may, Dns::secure_denial, {kOpp, "may"}, {kOpp, "may"}},
    {"Level", TlsLevel::may, Dns::insecure, {kOpp, "may"}, {kOpp, "may"}},
    {"Level", TlsLevel::may, Dns::insecure_address, {kOpp, "may"}, {kOpp, "may"}},
    {"Level", TlsLevel::may, Dns::not_applicable, {kOpp, "may"}, {kOpp, "may"}},
    {"Level", TlsLevel::may, Dns::error, {kOpp, "may"}, {kOpp, "may"}},
    // encrypt: TLS required, no authentication.
    {"Level", TlsLevel::encrypt, Dns::usable, {kEnc, "encrypt"}, {kEnc, "encrypt"}},
    {"Level", TlsLevel::encrypt, Dns::unusable_only, {kEnc, "encrypt"}, {kEnc, "encrypt"}},
    {"Level", TlsLevel::encrypt, Dns::secure_denial, {kEnc, "encrypt"}, {kEnc, "encrypt"}},
    {"Level", TlsLevel::encrypt, Dns::insecure, {kEnc, "encrypt"}, {kEnc, "encrypt"}},
    {"Level", TlsLevel::encrypt, Dns::insecure_address, {kEnc, "encrypt"}, {kEnc, "encrypt"}},
    {"Level", TlsLevel::encrypt, Dns::not_applicable, {kEnc, "encrypt"}, {kEnc, "encrypt"}},
    {"Level", TlsLevel::encrypt, Dns::error, {kEnc, "encrypt"}, {kEnc, "encrypt"}},
    // dane (opportunistic DANE, RFC 7672 §2.2).
    {"D10_D18", TlsLevel::dane, Dns::usable, {kDane, "dane"}, {kDane, "dane:halfdane"}},
    {"D11_D33_D38", TlsLevel::dane, Dns::unusable_only, {kEnc, "dane:encrypt"}, {kEnc, "dane:encrypt"}},
    {"D12", TlsLevel::dane, Dns::secure_denial, {kOpp, "dane:may"}, {kOpp, "dane:may"}},
    {"D12", TlsLevel::dane, Dns::insecure, {kOpp, "dane:may"}, {kOpp, "dane:may"}},
    {"D12_D24", TlsLevel::dane, Dns::insecure_address, {kOpp, "dane:may"}, {kOpp, "dane:may"}},
    {"D12_D15", TlsLevel::dane, Dns::not_applicable, {kOpp, "dane:may"}, {kOpp, "dane:may"}},
    {"D13", TlsLevel::dane, Dns::error, {kDefer, "dane"}, {kDefer, "dane"}},
    // dane-only (mandatory DANE): anything but usable secure TLSA behind a secure MX defers.
    {"D14_D20", TlsLevel::dane_only, Dns::usable, {kDane, "dane-only"}, {kDefer, "dane-only"}},
    {"D14", TlsLevel::dane_only, Dns::unusable_only, {kDefer, "dane-only"}, {kDefer, "dane-only"}},
    {"D14", TlsLevel::dane_only, Dns::secure_denial, {kDefer, "dane-only"}, {kDefer, "dane-only"}},
    {"D14", TlsLevel::dane_only, Dns::insecure, {kDefer, "dane-only"}, {kDefer, "dane-only"}},
    {"D14", TlsLevel::dane_only, Dns::insecure_address, {kDefer, "dane-only"}, {kDefer, "dane-only"}},
    {"D14", TlsLevel::dane_only, Dns::not_applicable, {kDefer, "dane-only"}, {kDefer, "dane-only"}},
    {"D13_D14", TlsLevel::dane_only, Dns::error, {kDefer, "dane-only"}, {kDefer, "dane-only"}},
    // verify / secure: PKIX, TLSA not consulted.
    {"Level", TlsLevel::verify, Dns::usable, {kPkix, "verify"}, {kPkix, "verify"}},
    {"Level", TlsLevel::verify, Dns::unusable_only, {kPkix, "verify"}, {kPkix, "verify"}},
    {"Level", TlsLevel::verify, Dns::secure_denial, {kPkix, "verify"}, {kPkix, "verify"}},
    {"Level", TlsLevel::verify, Dns::insecure, {kPkix, "verify"}, {kPkix, "verify"}},
    {"Level", TlsLevel::verify, Dns::insecure_address, {kPkix, "verify"}, {kPkix, "verify"}},
    // P-02: an MX naming an address literal leaves verify (hostname) no name to check: defer.
    {"P02", TlsLevel::verify, Dns::not_applicable, {kDefer, "verify"}, {kDefer, "verify"}},
    {"Level", TlsLevel::verify, Dns::error, {kPkix, "verify"}, {kPkix, "verify"}},
    {"Level", TlsLevel::secure, Dns::usable, {kPkix, "secure"}, {kPkix, "secure"}},
    {"Level", TlsLevel::secure, Dns::unusable_only, {kPkix, "secure"}, {kPkix, "secure"}},
    {"Level", TlsLevel::secure, Dns::secure_denial, {kPkix, "secure"}, {kPkix, "secure"}},
    {"Level", TlsLevel::secure, Dns::insecure, {kPkix, "secure"}, {kPkix, "secure"}},
    {"Level", TlsLevel::secure, Dns::insecure_address, {kPkix, "secure"}, {kPkix, "secure"}},
    {"Level", TlsLevel::secure, Dns::not_applicable, {kPkix, "secure"}, {kPkix, "secure"}},
    {"Level", TlsLevel::secure, Dns::error, {kPkix, "secure"}, {kPkix, "secure"}},
};

std::string level_name(TlsLevel level) {
  switch (level) {
    case TlsLevel::none: return "None";
    case TlsLevel::may: return "May";
    case TlsLevel::encrypt: return "Encrypt";
    case TlsLevel::dane: return "Dane";
    case TlsLevel::dane_only: return "DaneOnly";
    case TlsLevel::verify: return "Verify";
    case TlsLevel::secure: return "Secure";
  }
  return "?";
}

class LevelByDnsState : public ::testing::TestWithParam<std::tuple<Row, bool>> {};

TEST_P(LevelByDnsState, Decides) {
  const auto& [row, mx_insecure] = GetParam();
  const Expect& want = mx_insecure ? row.insecure_mx : row.secure_mx;
  const auto plan = mx_plan(mx_insecure);
  const auto host = host_in(row.dns);
  const HostPolicy p = decide(plan, host, row.level, kDefaultOrder);

  EXPECT_EQ(p.level, row.level);
  EXPECT_EQ(p.requirement, want.requirement) << to_string(p.requirement) << " " << p.reason;
  EXPECT_EQ(p.tls_feature, want.feature);
  EXPECT_EQ(p.mx_insecure, mx_insecure) << "D-18: the report must know the MX was insecure";

  // Invariants every row must hold.
  EXPECT_EQ(p.plaintext_fallback, p.requirement == kNone || p.requirement == kOpp) << "D-10/D-11: no plaintext when TLS is required";
  EXPECT_EQ(p.requirement == kDane, !p.usable.empty()) << "records are loaded exactly when authenticating";
  // The status a deferral gets (4.7.5) is the outcome policy's (tests/relay/outcome_test.cpp).
  EXPECT_EQ(p.requirement == kDefer, !p.reason.empty()) << "a deferral, and only one, says why";
  if (p.requirement == kDane) {
    EXPECT_EQ(p.sni, host.tlsa.base_domain) << "D-43";
    ASSERT_FALSE(p.reference_ids.empty());
    EXPECT_EQ(p.reference_ids.front(), host.tlsa.base_domain) << "D-40: base domain first";
  }
  if (row.dns == Dns::not_applicable) {
    EXPECT_TRUE(p.sni.empty()) << "no SNI for an address literal";
  }
  if (row.dns == Dns::unusable_only && row.level == TlsLevel::dane) {
    EXPECT_EQ(p.unusable, 2u);
  }
}

std::string row_name(const ::testing::TestParamInfo<std::tuple<Row, bool>>& param) {
  const auto& [row, mx_insecure] = param.param;
  return std::string(row.id) + "_" + level_name(row.level) + "_" + std::string(name_of(row.dns)) +
         (mx_insecure ? "_MxInsecure" : "_MxSecure");
}

INSTANTIATE_TEST_SUITE_P(Rfc7672, LevelByDnsState, ::testing::Combine(::testing::ValuesIn(kRows), ::testing::Bool()),
                         row_name);

// --- Reasons for deferral (D-13, D-14, D-20, D-46: clear deferral reasons) ------------------------

TEST(Policy, D13_TlsaLookupErrorDefersWithPostfixWording) {
  auto plan = mx_plan(false);
  plan.port = 2525;
  const auto p = decide(plan, host_in(Dns::error), TlsLevel::dane, kDefaultOrder);
  EXPECT_EQ(p.requirement, kDefer);
  EXPECT_EQ(p.reason, "TLSA lookup error for mx.example.test:2525");
}

TEST(Policy, DaneLevelsNeverDowngradeOnAPlanMadeWithoutTlsaLookups) {
  for (auto level : {TlsLevel::dane, TlsLevel::dane_only}) {
    auto h = host_in(Dns::secure_denial);
    h.tlsa.state = danerelay::dns::TlsaState::not_requested;
    const auto p = decide(mx_plan(false), h, level, kDefaultOrder);
    EXPECT_EQ(p.requirement, kDefer);
    EXPECT_FALSE(p.plaintext_fallback);
  }
}

TEST(Policy, D20_DaneOnlyWithInsecureMxDefersAsNonDnssecDestination) {
  const auto p = decide(mx_plan(true), host_in(Dns::usable), TlsLevel::dane_only, kDefaultOrder);
  EXPECT_EQ(p.requirement, kDefer);
  EXPECT_NE(p.reason.find("non DNSSEC destination"), std::string::npos) << p.reason;
  EXPECT_NE(p.reason.find("example.test"), std::string::npos) << p.reason;
}

TEST(Policy, D14_DaneOnlyReasonsNameTheMissingPiece) {
  EXPECT_NE(decide(mx_plan(false), host_in(Dns::secure_denial), TlsLevel::dane_only, kDefaultOrder).reason.find("no TLSA records found for mx.example.test:25"),
            std::string::npos);
  EXPECT_NE(decide(mx_plan(false), host_in(Dns::unusable_only), TlsLevel::dane_only, kDefaultOrder).reason.find("TLSA records unusable for mx.example.test:25"),
            std::string::npos);
  EXPECT_NE(decide(mx_plan(false), host_in(Dns::insecure), TlsLevel::dane_only, kDefaultOrder).reason.find("non DNSSEC destination"),
            std::string::npos);
  EXPECT_NE(decide(mx_plan(false), host_in(Dns::insecure_address), TlsLevel::dane_only, kDefaultOrder).reason.find("non DNSSEC destination"),
            std::string::npos);
  EXPECT_NE(decide(mx_plan(false), host_in(Dns::not_applicable), TlsLevel::dane_only, kDefaultOrder).reason.find("address literal"),
            std::string::npos);
}

TEST(Policy, D18_InsecureMxStillAuthenticatesButIsMarked) {
  const auto p = decide(mx_plan(true), host_in(Dns::usable), TlsLevel::dane, kDefaultOrder);
  EXPECT_EQ(p.requirement, kDane);
  EXPECT_TRUE(p.mx_insecure);
  EXPECT_EQ(p.tls_feature, "dane:halfdane");
}

// --- Usability (RFC 7672 §3.1.3, RFC 7671 §9 step 1) ---------------------------------------------

HostPolicy decide_records(std::vector<TlsaRecord> records, const std::vector<std::string>& order = kDefaultOrder,
                          std::size_t malformed = 0) {
  auto h = host_in(Dns::usable);
  h.tlsa.records = std::move(records);
  h.tlsa.malformed = malformed;
  return decide(mx_plan(false), h, TlsLevel::dane, order);
}

bool has(const std::vector<TlsaRecord>& records, const TlsaRecord& r) {
  return std::find(records.begin(), records.end(), r) != records.end();
}

bool mentions(const std::vector<std::string>& lines, std::string_view text) {
  return std::any_of(lines.begin(), lines.end(), [&](const std::string& l) { return l.find(text) != std::string::npos; });
}

TEST(Policy, D38_PkixUsagesOnlyMeansEncryptWithoutAuthentication) {
  // KumoMTA dane_unusable_requires_unauthenticated_tls: a "1 0 1"-only RRset.
  const auto p = decide_records({record(1, 0, 1, 32)});
  EXPECT_EQ(p.requirement, kEnc);
  EXPECT_EQ(p.unusable, 1u);
  EXPECT_FALSE(p.plaintext_fallback) << "D-33: a secure RRset commits the host to TLS";
  EXPECT_TRUE(mentions(p.discarded, "D-38")) << ::testing::PrintToString(p.discarded);
}

TEST(Policy, D33_D38_AllUnusableRrsetZeroZeroOneAndOneOneOneIsEncrypt) {
  const auto p = decide_records({record(0, 0, 1, 32), record(1, 1, 1, 32)});
  EXPECT_EQ(p.requirement, kEnc);
  EXPECT_EQ(p.tls_feature, "dane:encrypt");
  EXPECT_EQ(p.unusable, 2u);
  EXPECT_TRUE(p.usable.empty());
}

TEST(Policy, D10_MixedUsableAndUnusableIsDane) {
  const auto good = record(3, 1, 1, 32);
  const auto p = decide_records({record(1, 1, 1, 32), good, record(0, 0, 1, 32)});
  EXPECT_EQ(p.requirement, kDane);
  EXPECT_EQ(p.usable, std::vector<TlsaRecord>{good});
  EXPECT_EQ(p.unusable, 2u);
}

TEST(Policy, R07_MalformedAndUnknownRecordsAreUnusable) {
  const auto p = decide_records({
      record(4, 1, 1, 32),  // unknown usage
      record(3, 2, 1, 32),  // unknown selector
      record(3, 1, 3, 32),  // unknown matching type
      record(3, 1, 1, 31),  // sha256 of the wrong length
      record(3, 1, 2, 32),  // sha512 of the wrong length
      record(3, 1, 1, 0),   // empty digest
      record(3, 0, 0, 12),  // Full(0) that is not DER
      record(2, 1, 0, 0),   // empty Full(0)
  });
  EXPECT_EQ(p.requirement, kEnc);
  EXPECT_EQ(p.unusable, 8u);
  EXPECT_EQ(p.discarded.size(), 8u);
  EXPECT_TRUE(mentions(p.discarded, "unknown certificate usage 4"));
  EXPECT_TRUE(mentions(p.discarded, "unknown selector 2"));
  EXPECT_TRUE(mentions(p.discarded, "unknown matching type 3"));
  EXPECT_TRUE(mentions(p.discarded, "sha256 digest of 31 octets, want 32"));
  EXPECT_TRUE(mentions(p.discarded, "not a DER certificate"));
}

TEST(Policy, D33_MalformedRdataCountsAsUnusableButCommitsToTls) {
  const auto p = decide_records({}, kDefaultOrder, 2);
  EXPECT_EQ(p.requirement, kEnc);
  EXPECT_EQ(p.unusable, 2u);
  EXPECT_TRUE(mentions(p.discarded, "malformed TLSA RDATA"));
}

TEST(Policy, R07_DigestNotInConfiguredOrderIsUnusable) {
  const auto p = decide_records({record(3, 1, 2, 64)}, {"sha256"});
  EXPECT_EQ(p.requirement, kEnc);
  EXPECT_TRUE(mentions(p.discarded, "sha512 is not in the configured digest order"));
}

TEST(Policy, R07_StrongestConfiguredDigestWinsPerUsageAndSelector) {
  const auto good256 = record(3, 1, 1, 32, 0x11);
  const auto bad512 = record(3, 1, 2, 64, 0x22);
  // sha512 preferred: only the sha512 record is kept, so a bad one makes authentication fail.
  auto p = decide_records({good256, bad512});
  EXPECT_EQ(p.usable, std::vector<TlsaRecord>{bad512});
  EXPECT_TRUE(mentions(p.discarded, "superseded"));
  // Only sha256 configured: the sha512 record is unusable and the sha256 one is used.
  p = decide_records({good256, bad512}, {"sha256"});
  EXPECT_EQ(p.usable, std::vector<TlsaRecord>{good256});
  // sha256 preferred over sha512: the order is configurable (R-07 step 4).
  p = decide_records({good256, bad512}, {"sha256", "sha512"});
  EXPECT_EQ(p.usable, std::vector<TlsaRecord>{good256});
}

TEST(Policy, R07_FullRecordsNeitherOverrideNorAreOverridden) {
  const auto full = full_record(3, 1);
  const auto d256 = record(3, 1, 1, 32);
  const auto d512 = record(3, 1, 2, 64);
  const auto p = decide_records({full, d256, d512});
  EXPECT_TRUE(has(p.usable, full));
  EXPECT_TRUE(has(p.usable, d512));
  EXPECT_FALSE(has(p.usable, d256));
}

TEST(Policy, R07_AgilityIsPerUsageSelectorPair) {
  const auto ta256 = record(2, 0, 1, 32);
  const auto ee512 = record(3, 1, 2, 64);
  const auto ee_cert256 = record(3, 0, 1, 32);
  const auto p = decide_records({ta256, ee512, ee_cert256});
  EXPECT_EQ(p.usable.size(), 3u) << "different (usage, selector) pairs do not compete";
}

TEST(Policy, UsableRecordsKeepsOriginalOrder) {
  const auto a = record(3, 1, 1, 32, 1);
  const auto b = record(2, 0, 1, 32, 2);
  const auto c = record(3, 1, 1, 32, 3);
  EXPECT_EQ(usable_records(std::vector<TlsaRecord>{a, b, c}, kDefaultOrder), (std::vector<TlsaRecord>{a, b, c}));
}

TEST(Policy, KnownDigests) {
  EXPECT_TRUE(known_digest("sha256"));
  EXPECT_TRUE(known_digest("sha512"));
  EXPECT_FALSE(known_digest("sha384"));
  EXPECT_FALSE(known_digest("SHA256"));
}

// --- Reference identifiers and SNI (D-40, D-43, R-06, R-08) ---------------------------------------

TEST(Policy, D40_SecureMxAddsOriginalAndExpandedNextHop) {
  auto plan = mx_plan(false, "alias.example.test");
  plan.next_hop = "example.test";  // the MX lookup followed a CNAME (D-17)
  const auto p = decide(plan, host_in(Dns::usable), TlsLevel::dane, kDefaultOrder);
  EXPECT_EQ(p.reference_ids, (std::vector<std::string>{"mx.example.test", "alias.example.test", "example.test"}));
}

TEST(Policy, D40_InsecureMxUsesOnlyTheMxHostName) {
  auto plan = mx_plan(true, "alias.example.test");
  plan.next_hop = "example.test";
  auto h = host_in(Dns::usable, "mail.example.test");
  h.expanded = "mx.other.test";
  h.tlsa.base_domain = "mx.other.test";  // secure CNAME chain: expanded name is the base (D-27)
  const auto p = decide(plan, h, TlsLevel::dane, kDefaultOrder);
  EXPECT_EQ(p.reference_ids, (std::vector<std::string>{"mx.other.test", "mail.example.test"}));
  EXPECT_EQ(p.sni, "mx.other.test");
}

TEST(Policy, D43_SniIsTheTlsaBaseDomainNotTheMxName) {
  auto h = host_in(Dns::usable, "mail.cname.test");
  h.expanded = "mx.secure.test";
  h.tlsa.candidates = {"mx.secure.test", "mail.cname.test"};
  h.tlsa.base_domain = "mx.secure.test";
  const auto p = decide(mx_plan(false, "cname.test"), h, TlsLevel::dane, kDefaultOrder);
  EXPECT_EQ(p.sni, "mx.secure.test");
  EXPECT_EQ(p.base_domain, "mx.secure.test");
  EXPECT_EQ(p.reference_ids, (std::vector<std::string>{"mx.secure.test", "cname.test"}));
}

TEST(Policy, D40_NonMxDestinationAddsTheNextHop) {
  dns::DeliveryPlan plan;
  plan.domain = "routed.test";
  plan.next_hop = "relay.partner.test";
  plan.kind = dns::DestinationKind::nexthop;
  plan.mx_security = dns::Verdict::secure;
  auto h = host_in(Dns::usable, "relay.partner.test");
  h.expanded = "mx.partner-hosting.test";
  h.tlsa.base_domain = "mx.partner-hosting.test";
  const auto p = decide(plan, h, TlsLevel::dane, kDefaultOrder);
  EXPECT_FALSE(p.mx_insecure) << "no MX lookup: D-18 does not apply";
  EXPECT_EQ(p.reference_ids, (std::vector<std::string>{"mx.partner-hosting.test", "relay.partner.test"}));
}

TEST(Policy, D40_ImplicitMxWithSecureDenialOfMx) {
  dns::DeliveryPlan plan = mx_plan(false, "implicit.test");
  plan.kind = dns::DestinationKind::implicit_mx;
  const auto p = decide(plan, host_in(Dns::usable, "implicit.test"), TlsLevel::dane, kDefaultOrder);
  EXPECT_EQ(p.reference_ids, std::vector<std::string>{"implicit.test"});
}

TEST(Policy, P01_VerifyDefaultsToTheMxHostName) {
  const auto p = decide(mx_plan(false), host_in(Dns::secure_denial), TlsLevel::verify, kDefaultOrder);
  EXPECT_EQ(p.requirement, kPkix);
  EXPECT_EQ(p.reference_ids, std::vector<std::string>{"mx.example.test"});
  EXPECT_EQ(p.sni, "mx.example.test");
  EXPECT_TRUE(p.notes.empty()) << "secure MX: nothing to warn about";
}

TEST(Policy, P01_SecureDefaultsToTheNextHopAndItsSubdomains) {
  const auto p = decide(mx_plan(true), host_in(Dns::insecure), TlsLevel::secure, kDefaultOrder);
  EXPECT_EQ(p.requirement, kPkix);
  EXPECT_EQ(p.reference_ids, (std::vector<std::string>{"example.test", ".example.test"}));
}

TEST(Policy, P01_MatchReplacesTheVerifyDefault) {
  // Postfix: match=backup.example.test is the whole list; the MX host name is not added.
  const std::vector<std::string> match{"Backup.Example.Test."};
  const auto p = decide(mx_plan(true), host_in(Dns::secure_denial), TlsLevel::verify, kDefaultOrder, match);
  EXPECT_EQ(p.requirement, kPkix);
  EXPECT_EQ(p.reference_ids, std::vector<std::string>{"backup.example.test"});
  EXPECT_EQ(p.sni, "mx.example.test") << "SNI is still the host we connect to";
}

TEST(Policy, P01_MatchReplacesTheSecureDefault) {
  const std::vector<std::string> match{"mail.partner.test"};
  const auto p = decide(mx_plan(false), host_in(Dns::insecure), TlsLevel::secure, kDefaultOrder, match);
  EXPECT_EQ(p.reference_ids, std::vector<std::string>{"mail.partner.test"});
}

TEST(Policy, P01_KeywordsAreExpandedPerDelivery) {
  // The finding of issue 10: level=verify, match=["nexthop","dot-nexthop"] must check
  // partner.example and its subdomains, never the words "nexthop" or the MX host's own name.
  const std::vector<std::string> match{"nexthop", "dot-nexthop"};
  auto plan = mx_plan(true, "Partner.Example.");
  const auto p = decide(plan, host_in(Dns::insecure, "mx.attacker.test"), TlsLevel::verify, kDefaultOrder, match);
  EXPECT_EQ(p.requirement, kPkix);
  EXPECT_EQ(p.reference_ids, (std::vector<std::string>{"partner.example", ".partner.example"}));

  const std::vector<std::string> hostname{"hostname", ".Sub.Example.Test", "literal.test"};
  const auto q = decide(mx_plan(false), host_in(Dns::insecure, "MX1.example.test"), TlsLevel::secure, kDefaultOrder, hostname);
  EXPECT_EQ(q.reference_ids, (std::vector<std::string>{"mx1.example.test", ".sub.example.test", "literal.test"}));
}

TEST(Policy, P01_NextHopOfAConfiguredRouteIsTheRouteHost) {
  dns::DeliveryPlan plan;
  plan.domain = "routed.test";
  plan.next_hop = "relay.partner.test";
  plan.kind = dns::DestinationKind::nexthop;
  plan.mx_security = dns::Verdict::secure;
  const std::vector<std::string> match{"hostname", "nexthop", "dot-nexthop"};
  const auto p = decide(plan, host_in(Dns::insecure, "relay.partner.test"), TlsLevel::secure, kDefaultOrder, match);
  EXPECT_EQ(p.reference_ids, (std::vector<std::string>{"relay.partner.test", ".relay.partner.test"}));
  EXPECT_TRUE(p.notes.empty()) << "a configured next hop is not learned from DNS";
}

TEST(Policy, P03_SecureNeverTrustsTheHostNameOfAnInsecureMx) {
  const std::vector<std::string> match{"hostname"};
  const auto p = decide(mx_plan(true), host_in(Dns::insecure), TlsLevel::secure, kDefaultOrder, match);
  EXPECT_EQ(p.requirement, kDefer) << "P-02: the only name was dropped";
  ASSERT_EQ(p.notes.size(), 1u);
  EXPECT_NE(p.notes[0].find("not DNSSEC-validated (P-03)"), std::string::npos) << p.notes[0];

  const std::vector<std::string> both{"hostname", "nexthop"};
  const auto q = decide(mx_plan(true), host_in(Dns::insecure), TlsLevel::secure, kDefaultOrder, both);
  EXPECT_EQ(q.reference_ids, std::vector<std::string>{"example.test"});

  // With a secure MX RRset the host name is DNSSEC-protected, and secure may use it.
  const auto r = decide(mx_plan(false), host_in(Dns::insecure), TlsLevel::secure, kDefaultOrder, match);
  EXPECT_EQ(r.reference_ids, std::vector<std::string>{"mx.example.test"});
  EXPECT_TRUE(r.notes.empty());
}

TEST(Policy, P03_VerifyTrustsTheHostNameOfAnInsecureMxAndSaysSo) {
  const auto p = decide(mx_plan(true), host_in(Dns::insecure), TlsLevel::verify, kDefaultOrder);
  EXPECT_EQ(p.requirement, kPkix);
  EXPECT_EQ(p.reference_ids, std::vector<std::string>{"mx.example.test"});
  ASSERT_EQ(p.notes.size(), 1u);
  EXPECT_NE(p.notes[0].find("insecure MX lookup for example.test"), std::string::npos) << p.notes[0];
}

TEST(Policy, P02_AddressLiteralNextHopHasNoNamesAndDefers) {
  dns::DeliveryPlan plan;
  plan.domain = "[192.0.2.7]";
  plan.next_hop = "[192.0.2.7]";
  plan.kind = dns::DestinationKind::address_literal;
  plan.mx_security = dns::Verdict::secure;
  dns::Host h;
  h.name = "[192.0.2.7]";
  h.usable = true;
  h.tlsa.state = TlsaState::not_applicable;
  for (auto level : {TlsLevel::verify, TlsLevel::secure}) {
    const auto p = decide(plan, h, level, kDefaultOrder);
    EXPECT_EQ(p.requirement, kDefer) << "never \"any trusted certificate\"";
      EXPECT_NE(p.reason.find("no certificate names to match for [192.0.2.7]:25"), std::string::npos) << p.reason;
    EXPECT_TRUE(p.reference_ids.empty());
    // hostname/nexthop of an address literal are no names either; a literal name is.
    const std::vector<std::string> keywords{"hostname", "nexthop", "dot-nexthop"};
    EXPECT_EQ(decide(plan, h, level, kDefaultOrder, keywords).requirement, kDefer);
    const std::vector<std::string> named{"smtp.partner.test"};
    const auto q = decide(plan, h, level, kDefaultOrder, named);
    EXPECT_EQ(q.requirement, kPkix);
    EXPECT_EQ(q.reference_ids, std::vector<std::string>{"smtp.partner.test"});
    EXPECT_TRUE(q.sni.empty()) << "RFC 6066 §3: no IP address in SNI";
  }
}

TEST(Policy, D12_DaneWithoutTlsaAllowsPlaintextButNotWithUnusableRecords) {
  EXPECT_TRUE(decide(mx_plan(false), host_in(Dns::secure_denial), TlsLevel::dane, kDefaultOrder).plaintext_fallback);
  EXPECT_FALSE(decide(mx_plan(false), host_in(Dns::unusable_only), TlsLevel::dane, kDefaultOrder).plaintext_fallback);
  EXPECT_FALSE(decide(mx_plan(false), host_in(Dns::usable), TlsLevel::dane, kDefaultOrder).plaintext_fallback);
}

}  // namespace
}  // namespace danerelay::tls
