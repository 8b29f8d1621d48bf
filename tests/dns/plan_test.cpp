// tests/dns/plan_test.cpp — the RFC 7672 §2.2 planner driven from tables of answers (no I/O).
// Every scenario here also runs through libunbound against the signed hierarchy in
// destination_integration_test.cpp. Checklist ids (../shared/rfc-checklist.md) in test names.
#include "relay/delivery/outcome.hpp"  // the status a DNS fact gets is the outcome policy's
#include "dns/plan.hpp"

#include <gtest/gtest.h>

#include <functional>
#include <set>

#include "tests/dns/fake_answers.hpp"

namespace danerelay::dns {
namespace {

using testing::FakeAnswers;
using testing::tlsa_rdata;
using testing::was_asked;

constexpr Verdict S = Verdict::secure;
constexpr Verdict I = Verdict::insecure;

PlanRequest request(std::string domain, std::uint16_t port = 25) {
  PlanRequest r;
  r.domain = std::move(domain);
  r.port = port;
  return r;
}

const Host& host(const DeliveryPlan& p, const std::string& name) {
  for (const auto& h : p.hosts) {
    if (h.name == name) return h;
  }
  ADD_FAILURE() << "no host " << name;
  static Host none;
  return none;
}

// --- MX lookup failures defer the whole domain (D-05) -------------------------------------------

struct MxFailure {
  const char* name;
  Verdict verdict;
  Failure failure;
};

class MxLookupFailure : public ::testing::TestWithParam<MxFailure> {};

TEST_P(MxLookupFailure, D05_DefersDomainWithoutFallbackToAddressLookup) {
  FakeAnswers f;
  f.fail("example.test", RRType::MX, GetParam().verdict, GetParam().failure);
  std::vector<Query> asked;
  auto p = f.plan(request("example.test"), &asked);
  EXPECT_EQ(p.status, PlanStatus::failed);
  EXPECT_EQ(relay::outcome_of(p).action, relay::Action::defer);
  EXPECT_EQ(relay::outcome_of(p).status, "4.4.3");
  EXPECT_TRUE(p.hosts.empty());
  EXPECT_EQ(asked.size(), 1u) << "no implicit-MX or A fallback may be tried";
  EXPECT_NE(p.reason.find("type=MX"), std::string::npos) << p.reason;
}

INSTANTIATE_TEST_SUITE_P(Rfc7672, MxLookupFailure,
                         ::testing::Values(MxFailure{"Servfail", Verdict::error, Failure::servfail},
                                           MxFailure{"Timeout", Verdict::error, Failure::timeout},
                                           MxFailure{"Bogus", Verdict::bogus, Failure::none}),
                         [](const auto& p) { return std::string(p.param.name); });

TEST(Planner, D05_MalformedMxRdataDefers) {
  FakeAnswers f;
  f.answer("example.test", RRType::MX, S, {{0x00}});
  auto p = f.plan(request("example.test"));
  EXPECT_EQ(p.status, PlanStatus::failed);
  EXPECT_EQ(relay::outcome_of(p).action, relay::Action::defer);
  EXPECT_EQ(relay::outcome_of(p).status, "4.4.3");
}

TEST(Planner, NxdomainBouncesAsHostNotFound) {
  FakeAnswers f;
  f.nxdomain("nope.test", RRType::MX, S);
  auto p = f.plan(request("nope.test"));
  EXPECT_EQ(p.status, PlanStatus::failed);
  EXPECT_EQ(relay::outcome_of(p).action, relay::Action::bounce);
  EXPECT_EQ(relay::outcome_of(p).status, "5.4.4");
  EXPECT_EQ(p.reason, "Host or domain name not found. Name service error for name=nope.test type=MX: Host not found");
}

TEST(Planner, N01_NullMxBouncesWithoutFurtherLookups) {
  FakeAnswers f;
  f.mx("nullmx.test", S, {{0, "."}});
  std::vector<Query> asked;
  auto p = f.plan(request("nullmx.test"), &asked);
  EXPECT_EQ(p.status, PlanStatus::failed);
  EXPECT_EQ(relay::outcome_of(p).action, relay::Action::bounce);
  EXPECT_EQ(relay::outcome_of(p).status, "5.1.10");
  EXPECT_EQ(asked.size(), 1u);
}

// Issue 10 item 9: an MX RRset whose targets are all invalid host names is a publishing error
// that may be fixed, not a null MX (RFC 7505 needs "MX 0 ." alone): defer 4.4.3, and say so.
TEST(Planner, MxRrsetWithOnlyInvalidHostNamesDefersAndIsNotNullMx) {
  FakeAnswers f;
  f.mx("badmx.test", S, {{10, "-bad-.badmx.test"}, {20, "under_score!.badmx.test"}});
  auto p = f.plan(request("badmx.test"));
  EXPECT_EQ(p.status, PlanStatus::failed);
  EXPECT_EQ(p.problem, Problem::mx_no_valid_names);
  const relay::Outcome o = relay::outcome_of(p);
  EXPECT_EQ(o.action, relay::Action::defer);
  EXPECT_EQ(o.status, "4.4.3");
  EXPECT_EQ(o.text, "MX RRset for badmx.test has no valid host names");
}

TEST(Planner, NullMxNextToOnlyInvalidHostNamesIsNotNullMxEither) {
  FakeAnswers f;
  f.mx("badmx.test", S, {{0, "."}, {10, "-bad-.badmx.test"}});
  auto p = f.plan(request("badmx.test"));
  EXPECT_EQ(p.problem, Problem::mx_no_valid_names);
  EXPECT_EQ(relay::outcome_of(p).status, "4.4.3");
}

TEST(Planner, NullMxNextToRealHostsIsIgnored) {
  FakeAnswers f;
  f.mx("d.test", S, {{0, "."}, {10, "mx.d.test"}}).host("mx.d.test", S, {"192.0.2.1"}).nodata("_25._tcp.mx.d.test", RRType::TLSA, S);
  auto p = f.plan(request("d.test"));
  EXPECT_EQ(p.status, PlanStatus::deliver);
  ASSERT_EQ(p.hosts.size(), 1u);
  EXPECT_EQ(p.hosts[0].name, "mx.d.test");
}

TEST(Planner, D22_NoMxRecordsMeansImplicitMxWithTlsaAtTheDomain) {
  FakeAnswers f;
  f.nodata("implicit.test", RRType::MX, S)
      .host("implicit.test", S, {"192.0.2.7", "2001:db8::7"})
      .tlsa("_25._tcp.implicit.test", S, {tlsa_rdata(3, 1, 1, 32)});
  auto p = f.plan(request("implicit.test"));
  EXPECT_EQ(p.kind, DestinationKind::implicit_mx);
  EXPECT_EQ(p.status, PlanStatus::deliver);
  ASSERT_EQ(p.hosts.size(), 1u);
  EXPECT_EQ(p.hosts[0].name, "implicit.test");
  EXPECT_EQ(p.hosts[0].addresses.size(), 2u);
  EXPECT_EQ(p.hosts[0].tlsa.state, TlsaState::found);
  EXPECT_FALSE(p.mx_insecure());
}

// --- MX ordering (D-16) ---------------------------------------------------------------------------

TEST(Planner, D16_HostsSortedByPreferenceAndTlsaNeverReorders) {
  FakeAnswers f;
  f.mx("d.test", S, {{30, "c.d.test"}, {10, "a.d.test"}, {20, "b.d.test"}})
      .host("a.d.test", S, {"192.0.2.1"})
      .host("b.d.test", S, {"192.0.2.2"})
      .host("c.d.test", S, {"192.0.2.3"})
      .nodata("_25._tcp.a.d.test", RRType::TLSA, S)
      .nodata("_25._tcp.b.d.test", RRType::TLSA, S)
      .tlsa("_25._tcp.c.d.test", S, {tlsa_rdata(3, 1, 1, 32)});
  auto p = f.plan(request("d.test"));
  ASSERT_EQ(p.hosts.size(), 3u);
  EXPECT_EQ(p.hosts[0].name, "a.d.test");
  EXPECT_EQ(p.hosts[1].name, "b.d.test");
  EXPECT_EQ(p.hosts[2].name, "c.d.test");
}

TEST(Planner, D16_EqualPreferenceOrderDependsOnSeedOnly) {
  FakeAnswers f;
  f.mx("d.test", S, {{10, "a.d.test"}, {10, "b.d.test"}, {10, "c.d.test"}, {5, "first.d.test"}});
  for (auto n : {"a", "b", "c", "first"}) {
    const std::string h = std::string(n) + ".d.test";
    f.host(h, S, {"192.0.2.1"}).nodata("_25._tcp." + h, RRType::TLSA, S);
  }
  std::set<std::string> orders;
  for (std::uint64_t seed = 0; seed < 40; ++seed) {
    auto req = request("d.test");
    req.shuffle_seed = seed;
    auto p1 = f.plan(req);
    auto p2 = f.plan(req);
    ASSERT_EQ(p1.hosts.size(), 4u);
    EXPECT_EQ(p1.hosts[0].name, "first.d.test");
    std::string order;
    for (std::size_t i = 0; i < 4; ++i) {
      EXPECT_EQ(p1.hosts[i].name, p2.hosts[i].name) << "same seed, same order";
      order += p1.hosts[i].name + " ";
    }
    orders.insert(order);
  }
  EXPECT_GE(orders.size(), 4u) << "equal-preference hosts should come out in varying order";
}

// --- Per-host TLSA facts (D-04, D-07, D-13, D-24, D-33) -----------------------------------------

TEST(Planner, D04_SecureNodataForTlsaIsNoRecordsNotAnError) {
  FakeAnswers f;
  f.mx("d.test", S, {{10, "mx.d.test"}}).host("mx.d.test", S, {"192.0.2.1"}).nodata("_25._tcp.mx.d.test", RRType::TLSA, S);
  auto p = f.plan(request("d.test"));
  EXPECT_EQ(p.status, PlanStatus::deliver);
  EXPECT_TRUE(p.hosts[0].usable);
  EXPECT_EQ(p.hosts[0].tlsa.state, TlsaState::secure_denial);
}

TEST(Planner, D04_SecureNxdomainForTlsaIsNoRecordsNotAnError) {
  FakeAnswers f;
  f.mx("d.test", S, {{10, "mx.d.test"}}).host("mx.d.test", S, {"192.0.2.1"}).nxdomain("_25._tcp.mx.d.test", RRType::TLSA, S);
  auto p = f.plan(request("d.test"));
  EXPECT_TRUE(p.hosts[0].usable);
  EXPECT_EQ(p.hosts[0].tlsa.state, TlsaState::secure_denial);
}

struct TlsaFailure {
  const char* name;
  Verdict verdict;
  Failure failure;
};

class TlsaLookupFailure : public ::testing::TestWithParam<TlsaFailure> {};

TEST_P(TlsaLookupFailure, D07_D13_MarksOnlyThatHostUnusable) {
  FakeAnswers f;
  f.mx("d.test", S, {{10, "mx1.d.test"}, {20, "mx2.d.test"}})
      .host("mx1.d.test", S, {"192.0.2.1"})
      .host("mx2.d.test", S, {"192.0.2.2"})
      .fail("_25._tcp.mx1.d.test", RRType::TLSA, GetParam().verdict, GetParam().failure)
      .tlsa("_25._tcp.mx2.d.test", S, {tlsa_rdata(3, 1, 1, 32)});
  auto p = f.plan(request("d.test"));
  EXPECT_EQ(p.status, PlanStatus::deliver);
  const Host& h1 = host(p, "mx1.d.test");
  EXPECT_FALSE(h1.usable);
  EXPECT_EQ(h1.tlsa.state, TlsaState::error);
  EXPECT_EQ(relay::outcome_of(h1).status, "4.7.5");
  EXPECT_EQ(h1.reason, "TLSA lookup error for mx1.d.test:25");
  EXPECT_TRUE(h1.tlsa.records.empty());
  EXPECT_TRUE(host(p, "mx2.d.test").usable);
}

TEST_P(TlsaLookupFailure, D07_DefersWhenNoHostIsLeft) {
  FakeAnswers f;
  f.mx("d.test", S, {{10, "mx1.d.test"}})
      .host("mx1.d.test", S, {"192.0.2.1"})
      .fail("_25._tcp.mx1.d.test", RRType::TLSA, GetParam().verdict, GetParam().failure);
  auto p = f.plan(request("d.test"));
  EXPECT_EQ(p.status, PlanStatus::failed);
  EXPECT_EQ(relay::outcome_of(p).action, relay::Action::defer);
  EXPECT_EQ(relay::outcome_of(p).status, "4.7.5");
  EXPECT_EQ(p.reason, "TLSA lookup error for mx1.d.test:25");
}

INSTANTIATE_TEST_SUITE_P(Rfc7672, TlsaLookupFailure,
                         ::testing::Values(TlsaFailure{"Servfail", Verdict::error, Failure::servfail},
                                           TlsaFailure{"Timeout", Verdict::error, Failure::timeout},
                                           TlsaFailure{"Malformed", Verdict::error, Failure::malformed},
                                           TlsaFailure{"Bogus", Verdict::bogus, Failure::none}),
                         [](const auto& p) { return std::string(p.param.name); });

TEST(Planner, D24_InsecureAddressSkipsTlsaEvenWhenItWouldServfail) {
  FakeAnswers f;  // the Outlook case: an unsigned host whose TLSA zone is broken
  f.mx("d.test", S, {{10, "mx.unsigned.test"}})
      .host("mx.unsigned.test", I, {"192.0.2.1"})
      .fail("_25._tcp.mx.unsigned.test", RRType::TLSA);
  std::vector<Query> asked;
  auto p = f.plan(request("d.test"), &asked);
  EXPECT_EQ(p.status, PlanStatus::deliver);
  EXPECT_TRUE(p.hosts[0].usable);
  EXPECT_EQ(p.hosts[0].tlsa.state, TlsaState::insecure_address);
  EXPECT_FALSE(was_asked(asked, "_25._tcp.mx.unsigned.test", RRType::TLSA));
}

TEST(Planner, D33_SecureRrsetOfOnlyUnusableOrMalformedRecordsIsStillFound) {
  FakeAnswers f;
  f.mx("d.test", S, {{10, "mx.d.test"}})
      .host("mx.d.test", S, {"192.0.2.1"})
      .tlsa("_25._tcp.mx.d.test", S, {tlsa_rdata(0, 0, 1, 32), tlsa_rdata(1, 1, 1, 32), {0x03, 0x01}});
  auto p = f.plan(request("d.test"));
  const Host& h = p.hosts[0];
  EXPECT_TRUE(h.usable);
  EXPECT_EQ(h.tlsa.state, TlsaState::found);
  EXPECT_EQ(h.tlsa.records.size(), 2u);
  EXPECT_EQ(h.tlsa.malformed, 1u);
}

TEST(Planner, D34_InsecureTlsaRecordsAreNotUsed) {
  FakeAnswers f;
  f.mx("d.test", S, {{10, "mx.d.test"}})
      .host("mx.d.test", S, {"192.0.2.1"})
      .tlsa("_25._tcp.mx.d.test", I, {tlsa_rdata(3, 1, 1, 32)});
  auto p = f.plan(request("d.test"));
  EXPECT_EQ(p.hosts[0].tlsa.state, TlsaState::insecure);
  EXPECT_TRUE(p.hosts[0].tlsa.records.empty());
  EXPECT_TRUE(p.hosts[0].usable);
}

TEST(Planner, LevelsWithoutDaneAskNoTlsaSoABrokenTlsaZoneCannotHurt) {
  FakeAnswers f;
  f.mx("d.test", S, {{10, "mx.d.test"}}).host("mx.d.test", S, {"192.0.2.1"}).fail("_25._tcp.mx.d.test", RRType::TLSA);
  auto req = request("d.test");
  req.lookup_tlsa = false;
  std::vector<Query> asked;
  auto p = f.plan(req, &asked);
  EXPECT_EQ(p.status, PlanStatus::deliver);
  EXPECT_TRUE(p.hosts[0].usable);
  EXPECT_EQ(p.hosts[0].tlsa.state, TlsaState::not_requested);
  EXPECT_FALSE(was_asked(asked, "_25._tcp.mx.d.test", RRType::TLSA));
}

// --- Addresses (D-06, D-23) ---------------------------------------------------------------------

TEST(Planner, D06_AddressLookupFailureSkipsOnlyThatHost) {
  FakeAnswers f;
  f.mx("d.test", S, {{10, "mx1.d.test"}, {20, "mx2.d.test"}})
      .fail("mx1.d.test", RRType::A)
      .fail("mx1.d.test", RRType::AAAA)
      .host("mx2.d.test", S, {"192.0.2.2"})
      .nodata("_25._tcp.mx2.d.test", RRType::TLSA, S);
  auto p = f.plan(request("d.test"));
  EXPECT_EQ(p.status, PlanStatus::deliver);
  EXPECT_FALSE(host(p, "mx1.d.test").usable);
  EXPECT_EQ(relay::outcome_of(host(p, "mx1.d.test")).status, "4.4.3");
  EXPECT_TRUE(host(p, "mx2.d.test").usable);
}

TEST(Planner, D06_OneFamilyFailingLeavesTheOtherFamilysAddresses) {
  FakeAnswers f;
  f.mx("d.test", S, {{10, "mx.d.test"}})
      .answer("mx.d.test", RRType::A, S, {{192, 0, 2, 1}})
      .fail("mx.d.test", RRType::AAAA, Verdict::bogus)
      .nodata("_25._tcp.mx.d.test", RRType::TLSA, S);
  auto p = f.plan(request("d.test"));
  ASSERT_EQ(p.hosts[0].addresses.size(), 1u);
  EXPECT_EQ(p.hosts[0].address_security, S);
  EXPECT_FALSE(p.hosts[0].notes.empty());
}

TEST(Planner, D23_HostWithoutAddressesIsUnusableAndAllAbsentBounces) {
  FakeAnswers f;
  f.mx("d.test", S, {{10, "gone.d.test"}}).nxdomain("gone.d.test", RRType::A, S).nxdomain("gone.d.test", RRType::AAAA, S);
  auto p = f.plan(request("d.test"));
  EXPECT_EQ(p.status, PlanStatus::failed);
  EXPECT_EQ(relay::outcome_of(p).action, relay::Action::bounce);
  EXPECT_EQ(relay::outcome_of(p).status, "5.4.4");
}

// --- MX insecure (D-18, D-20) -------------------------------------------------------------------

TEST(Planner, D18_InsecureMxStillLooksUpTlsaOfSecureHostsAndSaysMxInsecure) {
  FakeAnswers f;
  f.mx("unsigned.test", I, {{10, "mx.signed.test"}})
      .host("mx.signed.test", S, {"192.0.2.1"})
      .tlsa("_25._tcp.mx.signed.test", S, {tlsa_rdata(3, 1, 1, 32)});
  auto p = f.plan(request("unsigned.test"));
  EXPECT_TRUE(p.mx_insecure());
  EXPECT_EQ(p.hosts[0].tlsa.state, TlsaState::found);
  EXPECT_EQ(p.hosts[0].tlsa.base_domain, "mx.signed.test");
}

// --- CNAMEs and base domains (D-17, D-25, D-26, D-27, D-31, D-32, D-35) ------------------------

TEST(Planner, D17_MxLookupThroughCnameRecordsTheExpandedNextHop) {
  FakeAnswers f;
  f.mx("alias.d.test", S, {{10, "mx.d.test"}}, "d.test").host("mx.d.test", S, {"192.0.2.1"}).nodata("_25._tcp.mx.d.test", RRType::TLSA, S);
  auto p = f.plan(request("alias.d.test"));
  EXPECT_EQ(p.next_hop, "d.test");
  EXPECT_EQ(p.domain, "alias.d.test");
}

TEST(Planner, D25_PlainSecureHostIsItsOwnBaseDomain) {
  FakeAnswers f;
  f.mx("d.test", S, {{10, "mx.d.test"}}).host("mx.d.test", S, {"192.0.2.1"}).tlsa("_25._tcp.mx.d.test", S, {tlsa_rdata(3, 1, 1, 32)});
  auto p = f.plan(request("d.test"));
  EXPECT_EQ(p.hosts[0].tlsa.candidates, std::vector<std::string>{"mx.d.test"});
  EXPECT_EQ(p.hosts[0].tlsa.base_domain, "mx.d.test");
  EXPECT_EQ(p.hosts[0].tlsa.qname, "_25._tcp.mx.d.test");
}

TEST(Planner, D27_SecureCnameChainTriesExpandedNameFirstThenOriginal) {
  FakeAnswers f;
  f.mx("d.test", S, {{10, "mail.d.test"}})
      .host("mail.d.test", S, {"192.0.2.1"}, "mx.provider.test")
      .nodata("_25._tcp.mx.provider.test", RRType::TLSA, S)
      .tlsa("_25._tcp.mail.d.test", S, {tlsa_rdata(3, 1, 1, 32)});
  auto p = f.plan(request("d.test"));
  const Host& h = p.hosts[0];
  EXPECT_EQ(h.expanded, "mx.provider.test");
  EXPECT_EQ(h.tlsa.candidates, (std::vector<std::string>{"mx.provider.test", "mail.d.test"}));
  EXPECT_EQ(h.tlsa.state, TlsaState::found);
  EXPECT_EQ(h.tlsa.base_domain, "mail.d.test");
}

TEST(Planner, D27_SecureCnameChainUsesExpandedNameWhenItHasTlsa) {
  FakeAnswers f;
  f.mx("d.test", S, {{10, "mail.d.test"}})
      .host("mail.d.test", S, {"192.0.2.1"}, "mx.provider.test")
      .tlsa("_25._tcp.mx.provider.test", S, {tlsa_rdata(3, 1, 1, 32)});
  std::vector<Query> asked;
  auto p = f.plan(request("d.test"), &asked);
  EXPECT_EQ(p.hosts[0].tlsa.base_domain, "mx.provider.test");
  EXPECT_FALSE(was_asked(asked, "_25._tcp.mail.d.test", RRType::TLSA));
}

TEST(Planner, D26_InsecureChainWithSecureInitialCnameUsesOriginalNameOnly) {
  FakeAnswers f;
  f.mx("d.test", S, {{10, "mail.d.test"}})
      .host("mail.d.test", I, {"192.0.2.1"}, "mx.unsigned.test")
      .cname("mail.d.test", S, "mx.unsigned.test")
      .tlsa("_25._tcp.mail.d.test", S, {tlsa_rdata(3, 1, 1, 32)});
  std::vector<Query> asked;
  auto p = f.plan(request("d.test"), &asked);
  const Host& h = p.hosts[0];
  EXPECT_TRUE(h.cname_secure);
  EXPECT_EQ(h.tlsa.candidates, std::vector<std::string>{"mail.d.test"});
  EXPECT_EQ(h.tlsa.state, TlsaState::found);
  EXPECT_FALSE(was_asked(asked, "_25._tcp.mx.unsigned.test", RRType::TLSA));
}

TEST(Planner, D26_InsecureInitialCnameMeansNoDane) {
  FakeAnswers f;
  f.mx("d.test", S, {{10, "mail.d.test"}})
      .host("mail.d.test", I, {"192.0.2.1"}, "mx.unsigned.test")
      .cname("mail.d.test", I, "mx.unsigned.test");
  auto p = f.plan(request("d.test"));
  EXPECT_EQ(p.hosts[0].tlsa.state, TlsaState::insecure_address);
  EXPECT_TRUE(p.hosts[0].usable);
}

TEST(Planner, D35_IntermediateCnameNamesAreNeverCandidates) {
  FakeAnswers f;  // mail.d.test → hop.d.test → mx.provider.test: only the ends are candidates
  f.mx("d.test", S, {{10, "mail.d.test"}})
      .host("mail.d.test", S, {"192.0.2.1"}, "mx.provider.test")
      .nodata("_25._tcp.mx.provider.test", RRType::TLSA, S)
      .nodata("_25._tcp.mail.d.test", RRType::TLSA, S);
  std::vector<Query> asked;
  auto p = f.plan(request("d.test"), &asked);
  EXPECT_FALSE(was_asked(asked, "_25._tcp.hop.d.test", RRType::TLSA));
  EXPECT_EQ(p.hosts[0].tlsa.state, TlsaState::secure_denial);
}

TEST(Planner, D31_D32_TlsaThroughCnameKeepsTheBaseDomain) {
  FakeAnswers f;
  f.mx("d.test", S, {{10, "mx.d.test"}})
      .host("mx.d.test", S, {"192.0.2.1"})
      .tlsa("_25._tcp.mx.d.test", S, {tlsa_rdata(3, 1, 1, 32)}, "_25._tcp.shared.d.test");
  auto p = f.plan(request("d.test"));
  EXPECT_EQ(p.hosts[0].tlsa.base_domain, "mx.d.test");
  EXPECT_EQ(p.hosts[0].tlsa.owner, "_25._tcp.shared.d.test");
}

TEST(Planner, D31_InsecureTlsaAtExpandedNameFallsBackToOriginal) {
  FakeAnswers f;
  f.mx("d.test", S, {{10, "mail.d.test"}})
      .host("mail.d.test", S, {"192.0.2.1"}, "mx.provider.test")
      .tlsa("_25._tcp.mx.provider.test", I, {tlsa_rdata(3, 1, 1, 32)})
      .tlsa("_25._tcp.mail.d.test", S, {tlsa_rdata(3, 1, 1, 32)});
  auto p = f.plan(request("d.test"));
  EXPECT_EQ(p.hosts[0].tlsa.state, TlsaState::found);
  EXPECT_EQ(p.hosts[0].tlsa.base_domain, "mail.d.test");
}

TEST(Planner, D08_TlsaErrorAtFirstCandidateIsAnErrorNotAFallback) {
  FakeAnswers f;
  f.mx("d.test", S, {{10, "mail.d.test"}})
      .host("mail.d.test", S, {"192.0.2.1"}, "mx.provider.test")
      .fail("_25._tcp.mx.provider.test", RRType::TLSA)
      .tlsa("_25._tcp.mail.d.test", S, {tlsa_rdata(3, 1, 1, 32)});
  auto p = f.plan(request("d.test"));
  EXPECT_EQ(p.hosts[0].tlsa.state, TlsaState::error);
  EXPECT_FALSE(p.hosts[0].usable);
}

// --- Ports, next hops and literals (D-15, D-22, D-30) -------------------------------------------

TEST(Planner, D30_TlsaQueryNameUsesTheConfiguredPort) {
  FakeAnswers f;
  f.mx("d.test", S, {{10, "mx.d.test"}}).host("mx.d.test", S, {"192.0.2.1"}).tlsa("_2525._tcp.mx.d.test", S, {tlsa_rdata(3, 1, 1, 32)});
  std::vector<Query> asked;
  auto p = f.plan(request("d.test", 2525), &asked);
  EXPECT_EQ(p.hosts[0].tlsa.qname, "_2525._tcp.mx.d.test");
  EXPECT_FALSE(was_asked(asked, "_25._tcp.mx.d.test", RRType::TLSA));
}

TEST(Planner, D22_ConfiguredNextHopIsANonMxDestinationAndDaneStillApplies) {
  FakeAnswers f;
  f.host("mail.partner.test", S, {"192.0.2.9"}).tlsa("_587._tcp.mail.partner.test", S, {tlsa_rdata(3, 1, 1, 32)});
  auto req = request("d.test");
  req.route = Route{"mail.partner.test", 587, false};
  std::vector<Query> asked;
  auto p = f.plan(req, &asked);
  EXPECT_EQ(p.kind, DestinationKind::nexthop);
  EXPECT_EQ(p.port, 587);
  EXPECT_FALSE(was_asked(asked, "d.test", RRType::MX));
  EXPECT_FALSE(p.mx_insecure());
  EXPECT_EQ(p.hosts[0].tlsa.state, TlsaState::found);
}

TEST(Planner, D15_AddressLiteralNextHopBypassesDnsAndDane) {
  FakeAnswers f;
  auto req = request("d.test");
  req.route = Route{"192.0.2.55", 2525, true};
  std::vector<Query> asked;
  auto p = f.plan(req, &asked);
  EXPECT_TRUE(asked.empty());
  EXPECT_EQ(p.kind, DestinationKind::address_literal);
  EXPECT_EQ(p.status, PlanStatus::deliver);
  EXPECT_EQ(p.hosts[0].tlsa.state, TlsaState::not_applicable);
  EXPECT_EQ(p.hosts[0].addresses[0].to_string(), "192.0.2.55");
}

TEST(Planner, D15_AddressLiteralRecipientDomainBypassesDane) {
  FakeAnswers f;
  std::vector<Query> asked;
  auto p = f.plan(request("[IPv6:2001:db8::1]"), &asked);
  EXPECT_TRUE(asked.empty());
  EXPECT_EQ(p.status, PlanStatus::deliver);
  EXPECT_TRUE(p.hosts[0].addresses[0].v6);
}

TEST(Planner, D15_MxTargetThatIsAnAddressGetsNoDane) {
  FakeAnswers f;
  f.mx("d.test", S, {{10, "192.0.2.3"}});
  std::vector<Query> asked;
  auto p = f.plan(request("d.test"), &asked);
  EXPECT_EQ(asked.size(), 1u);
  EXPECT_EQ(p.hosts[0].tlsa.state, TlsaState::not_applicable);
}

TEST(Planner, InvalidDomainBouncesWithoutLookups) {
  FakeAnswers f;
  std::vector<Query> asked;
  auto p = f.plan(request("bad..test"), &asked);
  EXPECT_TRUE(asked.empty());
  EXPECT_EQ(p.status, PlanStatus::failed);
  EXPECT_EQ(relay::outcome_of(p).action, relay::Action::bounce);
}

// Every TLSA-related row again with the MX RRset insecure: the host facts stay the same, only the
// plan's MX verdict changes (mox re-runs its tables with AllAuthentic false and true).
struct HostRow {
  const char* name;
  std::function<void(FakeAnswers&)> host_answers;
  TlsaState want;
  bool usable;
};

class EveryRowUnderBothMxVerdicts : public ::testing::TestWithParam<std::tuple<HostRow, Verdict>> {};

TEST_P(EveryRowUnderBothMxVerdicts, HostFactsDoNotDependOnMxSecurity) {
  const auto& [row, mx_verdict] = GetParam();
  FakeAnswers f;
  f.mx("d.test", mx_verdict, {{10, "mx.d.test"}});
  row.host_answers(f);
  auto p = f.plan(request("d.test"));
  ASSERT_EQ(p.hosts.size(), 1u);
  EXPECT_EQ(p.hosts[0].tlsa.state, row.want);
  EXPECT_EQ(p.hosts[0].usable, row.usable);
  EXPECT_EQ(p.mx_insecure(), mx_verdict != S);
}

INSTANTIATE_TEST_SUITE_P(
    Rfc7672, EveryRowUnderBothMxVerdicts,
    ::testing::Combine(
        ::testing::Values(
            HostRow{"TlsaFound",
                    [](FakeAnswers& f) { f.host("mx.d.test", S, {"192.0.2.1"}).tlsa("_25._tcp.mx.d.test", S, {tlsa_rdata(3, 1, 1, 32)}); },
                    TlsaState::found, true},
            HostRow{"TlsaDenied", [](FakeAnswers& f) { f.host("mx.d.test", S, {"192.0.2.1"}).nodata("_25._tcp.mx.d.test", RRType::TLSA, S); },
                    TlsaState::secure_denial, true},
            HostRow{"TlsaServfail", [](FakeAnswers& f) { f.host("mx.d.test", S, {"192.0.2.1"}).fail("_25._tcp.mx.d.test", RRType::TLSA); },
                    TlsaState::error, false},
            HostRow{"TlsaBogus",
                    [](FakeAnswers& f) { f.host("mx.d.test", S, {"192.0.2.1"}).fail("_25._tcp.mx.d.test", RRType::TLSA, Verdict::bogus); },
                    TlsaState::error, false},
            HostRow{"AddressInsecure", [](FakeAnswers& f) { f.host("mx.d.test", I, {"192.0.2.1"}); }, TlsaState::insecure_address, true},
            HostRow{"TlsaInsecure",
                    [](FakeAnswers& f) { f.host("mx.d.test", S, {"192.0.2.1"}).tlsa("_25._tcp.mx.d.test", I, {tlsa_rdata(3, 1, 1, 32)}); },
                    TlsaState::insecure, true}),
        ::testing::Values(S, I)),
    [](const auto& p) {
      return std::string(std::get<0>(p.param).name) + (std::get<1>(p.param) == S ? "_MxSecure" : "_MxInsecure");
    });

}  // namespace
}  // namespace danerelay::dns
