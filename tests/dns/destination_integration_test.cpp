// tests/dns/destination_integration_test.cpp — every RFC 7672 destination scenario end to end:
// UnboundResolver (libunbound in async mode on the Asio loop) against the real DNSSEC-signed
// test world (tests/support/world.hpp). Nothing stands in for the validator here.
#include "relay/delivery/outcome.hpp"  // the status a DNS fact gets is the outcome policy's
#include "dns/destination.hpp"

#include <gtest/gtest.h>

#include <thread>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <iterator>
#include <memory>
#include <fstream>
#include <optional>
#include <set>

#include "tests/support/temp_dir.hpp"
#include "tests/support/world.hpp"

namespace danerelay::dns {
namespace {

namespace asio = boost::asio;
using testsupport::World;

class Destination : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new testsupport::TempDir("danerelay-dns-it");
    world_ = new World(testsupport::build_world(dir_->path()));
  }
  static void TearDownTestSuite() {
    delete world_;
    delete dir_;
  }

  static config::DnsSettings settings() { return testsupport::dns_settings(*world_); }

  // Runs `body` with a fresh resolver on a fresh io_context until it finishes.
  template <typename T>
  static T run(const config::DnsSettings& s, std::function<asio::awaitable<T>(Resolver&)> body) {
    asio::io_context io;
    auto anchor = prepare_trust_anchor(s, world_->state_dir);
    UnboundResolver resolver(io.get_executor(), s, anchor);
    std::optional<T> out;
    asio::co_spawn(io, [&]() -> asio::awaitable<void> { out = co_await body(resolver); },
                   [](std::exception_ptr e) {
                     if (e) std::rethrow_exception(e);
                   });
    io.run();
    return std::move(*out);
  }

  static Resolution resolve(std::string domain, std::uint16_t port = 25, std::optional<Route> route = {},
                            std::uint64_t seed = 0, std::optional<config::DnsSettings> s = {}) {
    PlanRequest req;
    req.domain = std::move(domain);
    req.port = port;
    req.route = std::move(route);
    req.shuffle_seed = seed;
    return run<Resolution>(s ? *s : settings(), [req](Resolver& r) { return resolve_destination(r, req); });
  }

  static const Host& host(const DeliveryPlan& p, const std::string& name) {
    for (const auto& h : p.hosts) {
      if (h.name == name) return h;
    }
    ADD_FAILURE() << "no host " << name;
    static Host none;
    return none;
  }

  static bool asked(const Resolution& r, const std::string& name, RRType type) { return r.answers.contains(Query{name, type}); }

  static std::string tlsa_of(const std::string& host, int usage, int selector, int mtype) {
    const auto& cert = host == "CA" ? world_->ca : world_->host_certs.at(host);
    TlsaRecord r;
    r.usage = static_cast<std::uint8_t>(usage);
    r.selector = static_cast<std::uint8_t>(selector);
    r.matching_type = static_cast<std::uint8_t>(mtype);
    r.data = testsupport::tlsa_association(cert.x509.get(), selector, mtype);
    return r.to_string();
  }

  static inline testsupport::TempDir* dir_ = nullptr;
  static inline World* world_ = nullptr;
};

// --- The DNSSEC self-test (D-01) --------------------------------------------------------------

TEST_F(Destination, D01_SelfTestPassesAgainstTheSignedHierarchy) {
  auto t = run<SelfTest>(settings(), [](Resolver& r) { return self_test(r, "."); });
  EXPECT_TRUE(t.ok) << t.summary();
  EXPECT_NE(t.summary().find("validation works"), std::string::npos);
}

TEST_F(Destination, D01_SelfTestFailsLoudlyWithAWrongTrustAnchor) {
  auto s = settings();
  s.trust_anchor = dir_->path() / "wrong.ta";
  std::ofstream(s.trust_anchor) << ". IN DS 12345 13 2 " << std::string(64, 'a') << "\n";
  auto t = run<SelfTest>(s, [](Resolver& r) { return self_test(r, "."); });
  EXPECT_FALSE(t.ok);
  EXPECT_EQ(t.answer.verdict, Verdict::bogus);
  EXPECT_NE(t.summary().find("FAILED"), std::string::npos) << t.summary();
}

TEST_F(Destination, D01_WrongTrustAnchorDefersSecureDestinationsNeverDowngrades) {
  auto s = settings();
  s.trust_anchor = dir_->path() / "wrong2.ta";
  std::ofstream(s.trust_anchor) << ". IN DS 12345 13 2 " << std::string(64, 'b') << "\n";
  auto r = resolve("secure.test", 25, {}, 0, s);
  EXPECT_EQ(r.plan.status, PlanStatus::failed);
  EXPECT_EQ(relay::outcome_of(r.plan).action, relay::Action::defer);
  EXPECT_EQ(relay::outcome_of(r.plan).status, "4.4.3");
  EXPECT_EQ(r.answers.at(Query{"secure.test", RRType::MX}).verdict, Verdict::bogus);
}

TEST_F(Destination, RefusesToStartWithoutATrustAnchor) {
  auto s = settings();
  s.trust_anchor = dir_->path() / "missing.ta";
  EXPECT_THROW((void)prepare_trust_anchor(s, world_->state_dir), SetupError);
}

TEST_F(Destination, D01_UnboundOptionsThatWeakenValidationAreRefused) {
  for (const char* option : {"val-permissive-mode", "domain-insecure", "module-config"}) {
    auto s = settings();
    s.unbound_options.emplace_back(option, "yes");
    asio::io_context io;
    auto anchor = prepare_trust_anchor(s, world_->state_dir);
    EXPECT_THROW(UnboundResolver(io.get_executor(), s, anchor), SetupError) << option;
  }
}

TEST_F(Destination, D01_UnboundOptionsThatChangeWhatIsTrustedAreRefused) {
  // The relay's only trust anchor is dns.trust_anchor: options that add another one, or decide
  // that something validates which did not, never reach libunbound.
  const std::vector<std::pair<std::string, std::string>> refused{
      {"trust-anchor", "secure.test. IN DS 12345 13 2 " + std::string(64, 'a')},
      {"trust-anchor-file", (dir_->path() / "other.ta").string()},
      {"auto-trust-anchor-file", (dir_->path() / "auto.ta").string()},
      {"trusted-keys-file", (dir_->path() / "keys.conf").string()},
      {"domain-insecure", "secure.test"},
      {"insecure-lan-zones", "yes"},
      {"val-sig-skew-max", "315360000"},
      {"fake-dsa", "yes"},
      {"permit-small-holddown", "yes"}};
  for (const auto& [option, value] : refused) {
    auto s = settings();
    s.unbound_options.emplace_back(option, value);
    asio::io_context io;
    auto anchor = prepare_trust_anchor(s, world_->state_dir);
    try {
      UnboundResolver resolver(io.get_executor(), s, anchor);
      ADD_FAILURE() << option << " was accepted";
    } catch (const SetupError& e) {
      const std::string what = e.what();
      EXPECT_EQ(what.rfind("dns.unbound_options: unbound option \"" + option + "\" ", 0), 0u) << what;
      EXPECT_NE(what.find("; danerelay refuses it"), std::string::npos) << what;
    }
  }
}

TEST_F(Destination, D01_UnboundConfigFileThatChangesWhatIsTrustedIsRefused) {
  // The world's own unbound.conf (auth-zones, no anchor) with one more server option.
  std::ifstream in(world_->dns.unbound_conf);
  std::string base((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_FALSE(base.empty());
  const int line = static_cast<int>(std::count(base.begin(), base.end(), '\n')) + 2;
  const std::vector<std::pair<std::string, std::string>> refused{
      {"domain-insecure", "\"secure.test\""},
      {"trust-anchor", "\"secure.test. IN DS 12345 13 2 " + std::string(64, 'a') + "\""},
      {"trust-anchor-file", "\"" + world_->dns.trust_anchor.string() + "\""},
      {"val-permissive-mode", "yes"},
      {"module-config", "\"iterator\""},
      {"include", "\"" + world_->dns.unbound_conf.string() + "\""}};
  int n = 0;
  for (const auto& [option, value] : refused) {
    const auto conf = dir_->path() / ("refused-" + std::to_string(++n) + ".conf");
    std::ofstream(conf) << base << "server:\n    " << option << ": " << value << "\n";
    auto s = settings();
    s.unbound_config = conf;
    asio::io_context io;
    auto anchor = prepare_trust_anchor(s, world_->state_dir);
    try {
      UnboundResolver resolver(io.get_executor(), s, anchor);
      ADD_FAILURE() << option << " in " << conf << " was accepted";
    } catch (const SetupError& e) {
      const std::string what = e.what();
      EXPECT_EQ(what.rfind("dns.unbound_config: " + conf.string() + ":" + std::to_string(line) + ":5: unbound option \"" + option + "\" ", 0), 0u)
          << what;
      EXPECT_NE(what.find("; danerelay refuses it"), std::string::npos) << what;
    }
  }
}

// --- Trust anchor preparation (ecosystem §9.7) ---------------------------------------------------

class TrustAnchorSetup : public Destination {
 protected:
  void SetUp() override {
    tmp_ = std::make_unique<testsupport::TempDir>("danerelay-ta");
    s_.trust_anchor_seed = tmp_->path() / "seed.key";
    state_ = tmp_->path() / "state";
  }
  std::unique_ptr<testsupport::TempDir> tmp_;
  config::DnsSettings s_;
  std::filesystem::path state_;
};

TEST_F(TrustAnchorSetup, SeedsStateDirectoryFromSeedWhenMissing) {
  std::ofstream(s_.trust_anchor_seed) << ". IN DS 1 8 2 AA\n";
  auto ta = prepare_trust_anchor(s_, state_);
  EXPECT_EQ(ta.file, state_ / "root.key");
  EXPECT_TRUE(ta.managed);
  std::ifstream in(ta.file);
  std::string line;
  std::getline(in, line);
  EXPECT_EQ(line, ". IN DS 1 8 2 AA");
  ASSERT_EQ(ta.notes.size(), 1u);
}

TEST_F(TrustAnchorSetup, KeepsAManagedAnchorNewerThanTheSeed) {
  std::ofstream(s_.trust_anchor_seed) << "seed\n";
  std::filesystem::create_directories(state_);
  std::ofstream(state_ / "root.key") << "updated by RFC 5011\n";
  std::filesystem::last_write_time(s_.trust_anchor_seed, std::filesystem::last_write_time(state_ / "root.key") - std::chrono::hours(1));
  auto ta = prepare_trust_anchor(s_, state_);
  std::ifstream in(ta.file);
  std::string line;
  std::getline(in, line);
  EXPECT_EQ(line, "updated by RFC 5011");
  EXPECT_TRUE(ta.notes.empty());
}

TEST_F(TrustAnchorSetup, ReseedsWhenTheSeedIsNewer) {
  std::filesystem::create_directories(state_);
  std::ofstream(state_ / "root.key") << "old\n";
  std::ofstream(s_.trust_anchor_seed) << "new\n";
  std::filesystem::last_write_time(state_ / "root.key", std::filesystem::last_write_time(s_.trust_anchor_seed) - std::chrono::hours(1));
  auto ta = prepare_trust_anchor(s_, state_);
  std::ifstream in(ta.file);
  std::string line;
  std::getline(in, line);
  EXPECT_EQ(line, "new");
}

TEST_F(TrustAnchorSetup, FallsBackToBuiltInRootDsWithoutDnsRootData) {
  auto ta = prepare_trust_anchor(s_, state_);  // the seed file does not exist
  std::ifstream in(ta.file);
  std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_NE(content.find(". IN DS 20326 8 2 E06D44B80B8F1D39A95C0B0D7C65D08458E880409BBC683457104237C7F8EC8D"), std::string::npos);
  EXPECT_NE(content.find(". IN DS 38696 8 2"), std::string::npos);
  ASSERT_EQ(ta.notes.size(), 1u);
  EXPECT_NE(ta.notes[0].find("warning"), std::string::npos);
}

TEST_F(TrustAnchorSetup, UnwritableStateDirectoryUsesTheSeedReadOnly) {
  std::ofstream(s_.trust_anchor_seed) << ". IN DS 1 8 2 AA\n";
  std::ofstream(tmp_->path() / "file") << "x";
  auto ta = prepare_trust_anchor(s_, tmp_->path() / "file" / "state");  // a path under a regular file
  EXPECT_EQ(ta.file, s_.trust_anchor_seed);
  EXPECT_FALSE(ta.managed);
}

TEST_F(TrustAnchorSetup, NoSeedAndNoWritableStateDirectoryRefusesToStart) {
  std::ofstream(tmp_->path() / "file") << "x";
  EXPECT_THROW((void)prepare_trust_anchor(s_, tmp_->path() / "file" / "state"), SetupError);
}

TEST_F(TrustAnchorSetup, Rfc5011ManagedAnchorValidates) {
  auto s = settings();
  s.trust_anchor = tmp_->path() / "managed.key";
  std::filesystem::copy_file(world_->dns.trust_anchor, s.trust_anchor);
  s.trust_anchor_auto_update = true;  // ub_ctx_add_ta_autr: libunbound keeps the file current
  auto t = run<SelfTest>(s, [](Resolver& r) { return self_test(r, "."); });
  EXPECT_TRUE(t.ok) << t.summary();
}

// --- Secure destinations ----------------------------------------------------------------------

TEST_F(Destination, D21_D25_SecureMxAndHostWithTlsa) {
  auto r = resolve("secure.test");
  const auto& p = r.plan;
  EXPECT_EQ(p.status, PlanStatus::deliver);
  EXPECT_EQ(p.kind, DestinationKind::mx);
  EXPECT_EQ(p.mx_security, Verdict::secure);
  EXPECT_FALSE(p.mx_insecure());
  ASSERT_EQ(p.hosts.size(), 1u);
  const Host& h = p.hosts[0];
  EXPECT_EQ(h.name, "mx.secure.test");
  EXPECT_EQ(h.address_security, Verdict::secure);
  std::set<std::string> addrs;
  for (const auto& a : h.addresses) addrs.insert(a.to_string());
  EXPECT_EQ(addrs, (std::set<std::string>{"127.0.0.11", "::1"}));
  EXPECT_EQ(h.tlsa.state, TlsaState::found);
  EXPECT_EQ(h.tlsa.base_domain, "mx.secure.test");
  ASSERT_EQ(h.tlsa.records.size(), 1u);
  EXPECT_EQ(h.tlsa.records[0].to_string(), tlsa_of("mx.secure.test", 3, 1, 1));
}

TEST_F(Destination, D04_SecureNxdomainBouncesAsHostNotFound) {
  auto r = resolve("nonexistent.secure.test");
  EXPECT_EQ(r.plan.status, PlanStatus::failed);
  EXPECT_EQ(relay::outcome_of(r.plan).action, relay::Action::bounce);
  EXPECT_EQ(relay::outcome_of(r.plan).status, "5.4.4");
  const Answer& mx = r.answers.at(Query{"nonexistent.secure.test", RRType::MX});
  EXPECT_TRUE(mx.nxdomain);
  EXPECT_EQ(mx.verdict, Verdict::secure);
}

TEST_F(Destination, D07_D16_TlsaServfailMarksOnlyThatHostAndPreferenceOrders) {
  auto r = resolve("multi.test");
  const auto& p = r.plan;
  EXPECT_EQ(p.status, PlanStatus::deliver);
  ASSERT_EQ(p.hosts.size(), 4u);
  EXPECT_EQ(p.hosts[3].name, "mx4.multi.test");
  EXPECT_EQ(host(p, "mx1.multi.test").tlsa.state, TlsaState::found);
  EXPECT_EQ(host(p, "mx2.multi.test").tlsa.state, TlsaState::secure_denial);  // D-04: secure NODATA
  const Host& mx3 = host(p, "mx3.multi.test");
  EXPECT_EQ(mx3.tlsa.state, TlsaState::error);
  EXPECT_FALSE(mx3.usable);
  EXPECT_EQ(relay::outcome_of(mx3).status, "4.7.5");
  EXPECT_EQ(mx3.reason, "TLSA lookup error for mx3.multi.test:25");
  EXPECT_EQ(r.answers.at(Query{"_25._tcp.mx3.multi.test", RRType::TLSA}).verdict, Verdict::error);
  const Host& mx4 = host(p, "mx4.multi.test");
  ASSERT_EQ(mx4.tlsa.records.size(), 1u);
  EXPECT_EQ(mx4.tlsa.records[0].to_string(), tlsa_of("CA", 2, 0, 1));
}

TEST_F(Destination, D16_EqualPreferenceHostsComeOutInVaryingOrder) {
  // One resolver for all runs: the order must vary from run to run, not from cache state.
  auto orders = run<std::set<std::string>>(settings(), [](Resolver& r) -> asio::awaitable<std::set<std::string>> {
    std::set<std::string> seen;
    for (std::uint64_t seed = 1; seed <= 12; ++seed) {
      PlanRequest req;
      req.domain = "multi.test";
      req.shuffle_seed = seed * 7919;
      auto res = co_await resolve_destination(r, req);
      EXPECT_EQ(res.plan.hosts.size(), 4u);
      if (res.plan.hosts.size() != 4) co_return seen;
      EXPECT_EQ(res.plan.hosts[3].name, "mx4.multi.test");
      seen.insert(res.plan.hosts[0].name + "," + res.plan.hosts[1].name + "," + res.plan.hosts[2].name);
    }
    co_return seen;
  });
  EXPECT_GE(orders.size(), 3u);
}

TEST_F(Destination, D22_ImplicitMxUsesTheDomainAndItsTlsa) {
  auto r = resolve("implicit.test");
  EXPECT_EQ(r.plan.kind, DestinationKind::implicit_mx);
  EXPECT_EQ(r.plan.mx_security, Verdict::secure);
  ASSERT_EQ(r.plan.hosts.size(), 1u);
  EXPECT_EQ(r.plan.hosts[0].tlsa.state, TlsaState::found);
  EXPECT_EQ(r.plan.hosts[0].tlsa.qname, "_25._tcp.implicit.test");
}

TEST_F(Destination, N01_NullMxBounces) {
  auto r = resolve("nullmx.test");
  EXPECT_EQ(r.plan.status, PlanStatus::failed);
  EXPECT_EQ(relay::outcome_of(r.plan).action, relay::Action::bounce);
  EXPECT_EQ(relay::outcome_of(r.plan).status, "5.1.10");
  EXPECT_EQ(r.answers.size(), 1u);
}

TEST_F(Destination, MxRrsetWithOnlyInvalidHostNamesDefersAndIsNotNullMx) {
  // badmx.test publishes a secure MX RRset of "-bad-", "under_score" and "bang!" (all with secure
  // A records): none is an LDH host name, so none may be used, and it is not RFC 7505 null MX.
  auto r = resolve("badmx.test");
  EXPECT_EQ(r.plan.status, PlanStatus::failed);
  EXPECT_EQ(r.plan.problem, Problem::mx_no_valid_names) << to_string(r.plan.problem);
  EXPECT_EQ(r.plan.reason, "MX RRset for badmx.test has no valid host names");
  EXPECT_EQ(r.plan.mx_security, Verdict::secure);
  EXPECT_TRUE(r.plan.hosts.empty());
  EXPECT_EQ(r.answers.size(), 1u) << "no address lookup for an invalid name";
  const Answer& mx = r.answers.at(Query{"badmx.test", RRType::MX});
  EXPECT_EQ(mx.verdict, Verdict::secure);
  for (const std::string name : {"-bad-.badmx.test", "under_score.badmx.test", "bang!.badmx.test"}) {
    const std::string note = "MX target \"" + name + "\" is not a valid host name; ignored";
    EXPECT_NE(std::find(r.plan.notes.begin(), r.plan.notes.end(), note), r.plan.notes.end()) << note;
  }
  const relay::Outcome o = relay::outcome_of(r.plan);
  EXPECT_EQ(o.action, relay::Action::defer);
  EXPECT_EQ(o.status, "4.4.3");
  EXPECT_EQ(o.text, "MX RRset for badmx.test has no valid host names");
}

// --- Insecure, bogus and failing DNS (D-02, D-03, D-05, D-12, D-24) ----------------------------

TEST_F(Destination, D12_InsecureZoneIgnoresItsTlsa) {
  auto r = resolve("insecure.test");
  EXPECT_EQ(r.plan.status, PlanStatus::deliver);
  EXPECT_EQ(r.plan.mx_security, Verdict::insecure);
  EXPECT_EQ(r.plan.hosts[0].address_security, Verdict::insecure);
  EXPECT_EQ(r.plan.hosts[0].tlsa.state, TlsaState::insecure_address);
  EXPECT_FALSE(asked(r, "_25._tcp.mx.insecure.test", RRType::TLSA));
}

TEST_F(Destination, D24_UnsignedHostWithServfailingTlsaZoneIsNotDeferred) {
  auto r = resolve("o365.test");
  EXPECT_EQ(r.plan.status, PlanStatus::deliver);
  EXPECT_EQ(r.plan.mx_security, Verdict::secure);
  const Host& h = r.plan.hosts[0];
  EXPECT_EQ(h.name, "broken.insecure.test");
  EXPECT_TRUE(h.usable);
  EXPECT_EQ(h.tlsa.state, TlsaState::insecure_address);
  EXPECT_FALSE(asked(r, "_25._tcp.broken.insecure.test", RRType::TLSA));
}

struct BrokenDomain {
  const char* domain;
  Verdict mx_verdict;
};

class BrokenDestination : public Destination, public ::testing::WithParamInterface<BrokenDomain> {};

TEST_P(BrokenDestination, D03_D05_DefersWholeDomainWithoutAddressFallback) {
  auto r = resolve(GetParam().domain);
  EXPECT_EQ(r.plan.status, PlanStatus::failed);
  EXPECT_EQ(relay::outcome_of(r.plan).action, relay::Action::defer);
  EXPECT_EQ(relay::outcome_of(r.plan).status, "4.4.3");
  EXPECT_TRUE(r.plan.hosts.empty());
  EXPECT_EQ(r.answers.size(), 1u) << "only the MX query may be asked";
  EXPECT_EQ(r.answers.at(Query{GetParam().domain, RRType::MX}).verdict, GetParam().mx_verdict);
}

INSTANTIATE_TEST_SUITE_P(Rfc7672, BrokenDestination,
                         ::testing::Values(BrokenDomain{"bogus-ds.test", Verdict::bogus},
                                           BrokenDomain{"expired.test", Verdict::bogus},
                                           BrokenDomain{"dead.test", Verdict::error}),
                         [](const auto& p) {
                           std::string n = p.param.domain;
                           for (char& c : n) c = std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
                           return n;
                         });

TEST_F(Destination, D05_TimeoutIsAnErrorVerdictAndDefers) {
  auto s = settings();
  s.query_timeout = std::chrono::milliseconds(1);
  auto r = resolve("dead.test", 25, {}, 0, s);
  EXPECT_EQ(r.plan.status, PlanStatus::failed);
  EXPECT_EQ(relay::outcome_of(r.plan).action, relay::Action::defer);
  const Answer& mx = r.answers.at(Query{"dead.test", RRType::MX});
  EXPECT_EQ(mx.verdict, Verdict::error);
  EXPECT_EQ(mx.failure, Failure::timeout);
}

TEST_F(Destination, D07_BogusTlsaMakesTheHostUnusableAndDefers) {
  auto r = resolve("badtlsa.test");
  EXPECT_EQ(r.plan.status, PlanStatus::failed);
  EXPECT_EQ(relay::outcome_of(r.plan).action, relay::Action::defer);
  EXPECT_EQ(relay::outcome_of(r.plan).status, "4.7.5");
  EXPECT_EQ(r.plan.reason, "TLSA lookup error for mx.badtlsa.test:25");
  EXPECT_EQ(r.answers.at(Query{"_25._tcp.mx.badtlsa.test", RRType::TLSA}).verdict, Verdict::bogus);
}

TEST_F(Destination, D06_UnresolvableBestMxIsSkippedForTheNext) {
  auto r = resolve("deadhost.test");
  EXPECT_EQ(r.plan.status, PlanStatus::deliver);
  const Host& dead = host(r.plan, "mx.dead.test");
  EXPECT_FALSE(dead.usable);
  EXPECT_EQ(relay::outcome_of(dead).status, "4.4.3");
  EXPECT_TRUE(host(r.plan, "mx.secure.test").usable);
}

// --- CNAMEs (D-17, D-26, D-27, D-31, D-32) -----------------------------------------------------

TEST_F(Destination, D27_SecureCnameChainPrefersExpandedName) {
  auto r = resolve("cname.test");
  const Host& h = host(r.plan, "mail.cname.test");
  EXPECT_EQ(h.expanded, "mx.secure.test");
  EXPECT_EQ(h.address_security, Verdict::secure);
  EXPECT_EQ(h.tlsa.candidates, (std::vector<std::string>{"mx.secure.test", "mail.cname.test"}));
  EXPECT_EQ(h.tlsa.state, TlsaState::found);
  EXPECT_EQ(h.tlsa.base_domain, "mx.secure.test");
}

TEST_F(Destination, D26_InsecureChainWithSecureInitialCnameUsesOriginalName) {
  auto r = resolve("cname.test");
  const Host& h = host(r.plan, "mail2.cname.test");
  EXPECT_EQ(h.expanded, "mx.insecure.test");
  EXPECT_EQ(h.address_security, Verdict::insecure);
  EXPECT_TRUE(h.cname_secure);
  EXPECT_EQ(h.tlsa.candidates, std::vector<std::string>{"mail2.cname.test"});
  EXPECT_EQ(h.tlsa.state, TlsaState::found);
  ASSERT_EQ(h.tlsa.records.size(), 1u);
  EXPECT_EQ(h.tlsa.records[0].to_string(), tlsa_of("mail2.cname.test", 3, 1, 1));
}

TEST_F(Destination, D26_InsecureInitialCnameMeansNoDane) {
  auto r = resolve("icname.test");
  const Host& h = r.plan.hosts.at(0);
  EXPECT_EQ(h.name, "mail.unsigned-alias.test");
  EXPECT_FALSE(h.cname_secure);
  EXPECT_EQ(h.tlsa.state, TlsaState::insecure_address);
  EXPECT_TRUE(h.usable);
}

TEST_F(Destination, D17_RecipientDomainCnameIsFollowedForMx) {
  auto r = resolve("alias.cname.test");
  EXPECT_EQ(r.plan.next_hop, "secure.test");
  EXPECT_EQ(r.plan.mx_security, Verdict::secure);
  ASSERT_EQ(r.plan.hosts.size(), 1u);
  EXPECT_EQ(r.plan.hosts[0].name, "mx.secure.test");
}

TEST_F(Destination, D31_D32_TlsaThroughCnameKeepsBaseDomain) {
  auto r = resolve("tlsacname.test");
  const Host& h = r.plan.hosts.at(0);
  EXPECT_EQ(h.tlsa.state, TlsaState::found);
  EXPECT_EQ(h.tlsa.base_domain, "mx.tlsacname.test");
  EXPECT_EQ(h.tlsa.owner, "_25._tcp.mx.secure.test");
  ASSERT_EQ(h.tlsa.records.size(), 1u);
  EXPECT_EQ(h.tlsa.records[0].to_string(), tlsa_of("mx.secure.test", 3, 1, 1));
}

// --- MX insecure, unusable records, ports and routes (D-15, D-18, D-22, D-30, D-33) -------------

TEST_F(Destination, D18_InsecureMxWithSecureHostIsMarkedMxInsecure) {
  auto r = resolve("mxinsecure.test");
  EXPECT_TRUE(r.plan.mx_insecure());
  EXPECT_EQ(r.plan.mx_security, Verdict::insecure);
  const Host& h = r.plan.hosts.at(0);
  EXPECT_EQ(h.address_security, Verdict::secure);
  EXPECT_EQ(h.tlsa.state, TlsaState::found);
}

TEST_F(Destination, D33_D38_SecureRrsetOfUnusableRecordsIsReported) {
  auto r = resolve("unusable.test");
  const Host& h = r.plan.hosts.at(0);
  EXPECT_EQ(h.tlsa.state, TlsaState::found);
  std::set<int> usages;
  for (const auto& rec : h.tlsa.records) usages.insert(rec.usage);
  EXPECT_EQ(usages, (std::set<int>{0, 1}));
}

TEST_F(Destination, D30_CustomPortNamesTheTlsaQuery) {
  auto r = resolve("secure.test", 2525);
  const Host& h = r.plan.hosts.at(0);
  EXPECT_EQ(h.tlsa.qname, "_2525._tcp.mx.secure.test");
  EXPECT_EQ(h.tlsa.state, TlsaState::found);
  EXPECT_FALSE(asked(r, "_25._tcp.mx.secure.test", RRType::TLSA));
}

TEST_F(Destination, D22_ConfiguredNextHopIsResolvedAsNonMxDestination) {
  auto r = resolve("routed.test", 25, Route{"mx.secure.test", 2525, false});
  EXPECT_EQ(r.plan.kind, DestinationKind::nexthop);
  EXPECT_EQ(r.plan.port, 2525);
  EXPECT_FALSE(asked(r, "routed.test", RRType::MX));
  EXPECT_EQ(r.plan.hosts.at(0).tlsa.state, TlsaState::found);
  EXPECT_EQ(r.plan.hosts.at(0).tlsa.qname, "_2525._tcp.mx.secure.test");
}

TEST_F(Destination, D15_AddressLiteralNextHopAsksNothing) {
  auto r = resolve("literal.test", 25, Route{"127.0.0.1", 2525, true});
  EXPECT_TRUE(r.answers.empty());
  EXPECT_EQ(r.plan.kind, DestinationKind::address_literal);
  EXPECT_EQ(r.plan.hosts.at(0).tlsa.state, TlsaState::not_applicable);
}

// --- The resolver itself ----------------------------------------------------------------------

TEST_F(Destination, ResolverAnswersManyConcurrentQueriesOutOfOrder) {
  auto answers = run<std::vector<Answer>>(settings(), [](Resolver& r) {
    std::vector<Query> qs;
    for (int i = 0; i < 100; ++i) {
      qs.push_back({i % 3 == 0 ? "mx.secure.test" : i % 3 == 1 ? "mx1.multi.test" : "nope" + std::to_string(i) + ".secure.test",
                    RRType::A});
    }
    return lookup_all(r, qs);
  });
  ASSERT_EQ(answers.size(), 100u);
  for (std::size_t i = 0; i < answers.size(); ++i) {
    EXPECT_EQ(answers[i].verdict, Verdict::secure) << i;
    EXPECT_EQ(answers[i].nxdomain, i % 3 == 2) << i;
  }
}

// The answer memo (resolver.hpp): a definitive answer is served again without libunbound until
// its TTL runs out; the TTL counts down; then libunbound is asked again. `pending()` tells which:
// a query handed to libunbound is pending until its answer, a kept one never is.
TEST_F(Destination, ADefinitiveAnswerIsKeptForItsTtlThenAskedAgain) {
  asio::io_context io;
  auto s = settings();
  auto anchor = prepare_trust_anchor(s, world_->state_dir);
  UnboundResolver resolver(io.get_executor(), s, anchor);
  auto ask = [&](const Query& q, std::size_t* pending_after_call) {
    std::optional<Answer> got;
    resolver.async_lookup(q, [&](Answer a) { got = std::move(a); });
    *pending_after_call = resolver.pending();
    io.restart();
    io.run();
    EXPECT_TRUE(got);
    return got.value_or(Answer{});
  };
  const Query q{"short.secure.test", RRType::A};
  std::size_t pending = 0;
  const Answer first = ask(q, &pending);
  EXPECT_EQ(pending, 1u) << "the first query goes to libunbound";
  ASSERT_EQ(first.verdict, Verdict::secure) << first.describe();
  ASSERT_EQ(first.rdata.size(), 1u);
  ASSERT_GE(first.ttl, 1u);
  ASSERT_LE(first.ttl, 2u);

  const Answer again = ask(q, &pending);
  EXPECT_EQ(pending, 0u) << "a kept answer does not go to libunbound";
  EXPECT_EQ(again.verdict, Verdict::secure);
  EXPECT_EQ(again.rdata, first.rdata);
  EXPECT_LE(again.ttl, first.ttl);

  std::this_thread::sleep_for(std::chrono::milliseconds(2100));  // past the 2-second TTL
  const Answer later = ask(q, &pending);
  EXPECT_EQ(pending, 1u) << "an expired answer is asked again";
  EXPECT_EQ(later.verdict, Verdict::secure);
  EXPECT_EQ(later.rdata, first.rdata);
}

// D-03: a bogus answer is never kept; each bogus query
// reaches the validator again. A secure NXDOMAIN (definitive, D-04) is kept.
TEST_F(Destination, D03_BogusAnswersAreAskedAgainEveryTime) {
  asio::io_context io;
  auto s = settings();
  auto anchor = prepare_trust_anchor(s, world_->state_dir);
  UnboundResolver resolver(io.get_executor(), s, anchor);
  auto pending_on_ask = [&](const Query& q, Verdict* verdict) {
    std::optional<Answer> got;
    resolver.async_lookup(q, [&](Answer a) { got = std::move(a); });
    const std::size_t pending = resolver.pending();
    io.restart();
    io.run();
    *verdict = got ? got->verdict : Verdict::error;
    return pending;
  };
  Verdict v{};
  const Query bogus{"bogus-ds.test", RRType::MX};
  EXPECT_EQ(pending_on_ask(bogus, &v), 1u);
  ASSERT_EQ(v, Verdict::bogus);
  EXPECT_EQ(pending_on_ask(bogus, &v), 1u) << "a bogus answer was served from the memo";
  EXPECT_EQ(v, Verdict::bogus);

  const Query missing{"nonexistent.secure.test", RRType::MX};
  EXPECT_EQ(pending_on_ask(missing, &v), 1u);
  EXPECT_EQ(v, Verdict::secure);
  EXPECT_EQ(pending_on_ask(missing, &v), 0u);
  EXPECT_EQ(v, Verdict::secure);
}

TEST_F(Destination, DestroyingTheResolverCompletesPendingQueriesWithAnError) {
  asio::io_context io;
  auto s = settings();
  auto anchor = prepare_trust_anchor(s, world_->state_dir);
  auto resolver = std::make_unique<UnboundResolver>(io.get_executor(), s, anchor);
  std::optional<Answer> got;
  resolver->async_lookup(Query{"dead.test", RRType::MX}, [&](Answer a) { got = std::move(a); });
  EXPECT_EQ(resolver->pending(), 1u);
  resolver.reset();
  io.run();
  ASSERT_TRUE(got);
  EXPECT_EQ(got->verdict, Verdict::error);
  EXPECT_EQ(got->why, "resolver shut down");
}

}  // namespace
}  // namespace danerelay::dns
