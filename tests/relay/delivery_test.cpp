// tests/relay/delivery_test.cpp — the per-MX delivery loop with a scripted connector: which hosts
// get a connection, when plaintext is (never) tried, and how replies become sent / deferred /
// bounced with Postfix's reasons. Plans come from the planner fed with DNS tables; the same loop
// runs against real sinks and libunbound in the delivery integration tests.
#include "relay/delivery/delivery.hpp"
#include "relay/delivery/outcome.hpp"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include <map>
#include <regex>

#include "config/load.hpp"
#include "relay/delivery/smtp_connector.hpp"
#include "tests/dns/fake_answers.hpp"

namespace danerelay::relay {
namespace {

namespace asio = boost::asio;
using dns::RRType;
using dns::testing::FakeAnswers;
using dns::testing::tlsa_rdata;
constexpr auto S = dns::Verdict::secure;
constexpr auto I = dns::Verdict::insecure;

smtp::Reply reply(int code, std::string text) {
  smtp::Reply r;
  r.code = code;
  smtp::ReplyParser p;
  (void)p.feed(std::to_string(code) + " " + text);
  return p.take();
}

smtp::RecipientOutcome outcome(smtp::Disposition d, int code, std::string text, std::string command) {
  smtp::RecipientOutcome o;
  o.disposition = d;
  o.reply = reply(code, text);
  o.command = std::move(command);
  o.text = d == smtp::Disposition::sent ? o.reply->one_line()
                                        : "host mx1.d.test[192.0.2.1] said: " + o.reply->one_line() + " (in reply to " + o.command + " command)";
  return o;
}

SessionResult delivered(std::size_t recipients, std::string trust = "Verified") {
  SessionResult r;
  r.transaction = true;
  r.recipients.assign(recipients, outcome(smtp::Disposition::sent, 250, "2.0.0 Ok: queued as ABC", "end of DATA"));
  r.tls.trust = std::move(trust);
  return r;
}

using Kind = smtp::HostFailure::Kind;

SessionResult host_failure(std::string why, Kind kind, std::optional<smtp::Reply> server = {}) {
  SessionResult r;
  smtp::HostFailure f;
  f.kind = kind;
  f.text = std::move(why);
  f.reply = std::move(server);
  r.failure = std::move(f);
  return r;
}

// Scripted connector: results by "host" or "host/plain" (the plaintext retry); records attempts.
struct Script {
  std::map<std::string, SessionResult> by_host;
  std::vector<HostAttempt> attempts;     // pointers inside are valid only during the delivery
  std::vector<std::string> host_names;   // recorded at attempt time

  Connector connector() {
    return [this](HostAttempt a) -> asio::awaitable<SessionResult> {
      attempts.push_back(a);
      host_names.push_back(a.host->name);
      const std::string key = a.host->name + (a.plaintext_retry ? "/plain" : "");
      auto it = by_host.find(key);
      if (it == by_host.end()) {
        SessionResult refused;
        smtp::HostFailure f;
        f.kind = smtp::HostFailure::Kind::connect;
        f.text = "connect to " + a.host->name + ": Connection refused";
        refused.failure = std::move(f);
        co_return refused;
      }
      co_return it->second;
    };
  }
};

Envelope envelope(std::vector<std::string> rcpts) {
  Envelope e;
  e.id = *QueueId::parse("0123456789AB");
  e.sender = "s@org.test";
  for (auto& r : rcpts) e.recipients.push_back(Recipient{std::move(r), {}, notify_unset});
  return e;
}

struct Outcome {
  std::vector<RecipientResult> results;
  std::vector<std::string> log;
};

Outcome run(const Envelope& env, const dns::DeliveryPlan& plan, Script& script, config::TlsLevel level = config::TlsLevel::dane) {
  asio::io_context io;
  Outcome out;
  DeliverySettings settings;
  settings.level = level;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        Envelope e = env;
        dns::DeliveryPlan p = plan;
        out.results = co_await deliver(std::move(e), std::move(p), settings, script.connector(),
                                       [&](const std::string& line) { out.log.push_back(line); });
      },
      [](std::exception_ptr e) {
        if (e) std::rethrow_exception(e);
      });
  io.run();
  return out;
}

dns::DeliveryPlan plan_of(const FakeAnswers& f, const std::string& domain) {
  dns::PlanRequest req;
  req.domain = domain;
  return f.plan(req);
}

// d.test: two secure MX hosts with usable DANE-EE records.
FakeAnswers two_dane_hosts() {
  FakeAnswers f;
  f.mx("d.test", S, {{10, "mx1.d.test"}, {20, "mx2.d.test"}})
      .host("mx1.d.test", S, {"192.0.2.1"})
      .host("mx2.d.test", S, {"192.0.2.2"})
      .tlsa("_25._tcp.mx1.d.test", S, {tlsa_rdata(3, 1, 1, 32)})
      .tlsa("_25._tcp.mx2.d.test", S, {tlsa_rdata(3, 1, 1, 32)});
  return f;
}

TEST(Delivery, FirstGoodHostDeliversWithPostfixLine) {
  Script s;
  s.by_host["mx1.d.test"] = delivered(1);
  auto o = run(envelope({"a@d.test"}), plan_of(two_dane_hosts(), "d.test"), s);
  ASSERT_EQ(s.attempts.size(), 1u);
  EXPECT_EQ(s.attempts[0].policy.requirement, tls::Requirement::dane);
  EXPECT_EQ(o.results[0].status, DeliveryStatus::sent);
  EXPECT_EQ(o.results[0].reason, "250 2.0.0 Ok: queued as ABC");
  ASSERT_EQ(o.log.size(), 1u);
  EXPECT_TRUE(std::regex_match(o.log[0], std::regex(R"(0123456789AB: to=<a@d\.test>, relay=mx1\.d\.test\[192\.0\.2\.1\]:25, delay=[0-9.]+, )"
                                                    R"(delays=[0-9.]+/[0-9.]+/[0-9.]+/[0-9.]+, dsn=2\.0\.0, status=sent \(250 2\.0\.0 Ok: queued as ABC\))")))
      << o.log[0];
}

TEST(Delivery, D10_D39_AuthenticationFailureSkipsToTheNextMxNeverPlaintext) {
  Script s;
  s.by_host["mx1.d.test"] = host_failure("Server certificate not verified", Kind::tls_authentication);
  s.by_host["mx2.d.test"] = delivered(1);
  auto o = run(envelope({"a@d.test"}), plan_of(two_dane_hosts(), "d.test"), s);
  ASSERT_EQ(s.attempts.size(), 2u);
  for (const auto& a : s.attempts) EXPECT_FALSE(a.plaintext_retry);
  EXPECT_EQ(o.results[0].status, DeliveryStatus::sent);
  EXPECT_EQ(o.results[0].relay_host, "mx2.d.test");
}

TEST(Delivery, D45_BothHostsFailingAuthenticationDefersWithTheReason) {
  Script s;
  s.by_host["mx1.d.test"] = host_failure("Server certificate not verified", Kind::tls_authentication);
  s.by_host["mx2.d.test"] = host_failure("Server certificate not verified", Kind::tls_authentication);
  auto o = run(envelope({"a@d.test", "b@d.test"}), plan_of(two_dane_hosts(), "d.test"), s);
  EXPECT_EQ(s.attempts.size(), 2u);
  for (const auto& r : o.results) {
    EXPECT_EQ(r.status, DeliveryStatus::deferred);
    EXPECT_EQ(r.dsn, "4.7.5");
    EXPECT_EQ(r.reason, "Server certificate not verified");
    EXPECT_EQ(r.relay_host, "mx2.d.test");
  }
  EXPECT_NE(o.log[0].find("status=deferred (Server certificate not verified)"), std::string::npos) << o.log[0];
}

TEST(Delivery, D10_RequiredTlsHandshakeFailureIsNeverRetriedInPlaintext) {
  Script s;
  s.by_host["mx1.d.test"] = host_failure("TLS handshake failed", Kind::tls_handshake);
  s.by_host["mx2.d.test"] = host_failure("TLS handshake failed", Kind::tls_handshake);
  s.by_host["mx1.d.test/plain"] = delivered(1, "");
  auto o = run(envelope({"a@d.test"}), plan_of(two_dane_hosts(), "d.test"), s);
  for (const auto& a : s.attempts) EXPECT_FALSE(a.plaintext_retry);
  EXPECT_EQ(o.results[0].status, DeliveryStatus::deferred);
}

TEST(Delivery, D12_OpportunisticHandshakeFailureRetriesInPlaintextAndSaysSo) {
  FakeAnswers f;
  f.mx("i.test", I, {{10, "mx.i.test"}}).host("mx.i.test", I, {"192.0.2.9"});
  Script s;
  s.by_host["mx.i.test"] = host_failure("TLS handshake failed", Kind::tls_handshake);
  s.by_host["mx.i.test/plain"] = delivered(1, "");
  auto o = run(envelope({"a@i.test"}), plan_of(f, "i.test"), s);
  ASSERT_EQ(s.attempts.size(), 2u);
  EXPECT_TRUE(s.attempts[1].plaintext_retry);
  EXPECT_EQ(s.attempts[1].policy.requirement, tls::Requirement::none);
  EXPECT_EQ(o.results[0].status, DeliveryStatus::sent);
  EXPECT_EQ(o.results[0].tls.feature, "dane:may:none");
  ASSERT_EQ(o.log.size(), 2u);
  EXPECT_NE(o.log[0].find("trying again without TLS"), std::string::npos) << o.log[0];
}

TEST(Delivery, D07_D13_HostWithTlsaLookupErrorGetsNoConnection) {
  FakeAnswers f = two_dane_hosts();
  f.fail("_25._tcp.mx1.d.test", RRType::TLSA);
  Script s;
  s.by_host["mx2.d.test"] = delivered(1);
  auto o = run(envelope({"a@d.test"}), plan_of(f, "d.test"), s);
  ASSERT_EQ(s.attempts.size(), 1u);
  EXPECT_EQ(s.host_names[0], "mx2.d.test");
  EXPECT_EQ(o.results[0].status, DeliveryStatus::sent);
}

TEST(Delivery, D07_OnlyHostWithTlsaLookupErrorDefersWithoutConnecting) {
  FakeAnswers f;
  f.mx("d.test", S, {{10, "mx1.d.test"}}).host("mx1.d.test", S, {"192.0.2.1"}).fail("_25._tcp.mx1.d.test", RRType::TLSA);
  Script s;
  auto o = run(envelope({"a@d.test"}), plan_of(f, "d.test"), s);
  EXPECT_TRUE(s.attempts.empty());
  EXPECT_EQ(o.results[0].status, DeliveryStatus::deferred);
  EXPECT_EQ(o.results[0].dsn, "4.7.5");
  EXPECT_EQ(o.results[0].reason, "TLSA lookup error for mx1.d.test:25");
}

TEST(Delivery, D20_DaneOnlyWithInsecureMxConnectsNowhere) {
  FakeAnswers f;
  f.mx("u.test", I, {{10, "mx.s.test"}}).host("mx.s.test", S, {"192.0.2.1"}).tlsa("_25._tcp.mx.s.test", S, {tlsa_rdata(3, 1, 1, 32)});
  Script s;
  auto o = run(envelope({"a@u.test"}), plan_of(f, "u.test"), s, config::TlsLevel::dane_only);
  EXPECT_TRUE(s.attempts.empty());
  EXPECT_EQ(o.results[0].status, DeliveryStatus::deferred);
  EXPECT_EQ(o.results[0].dsn, "4.7.5");
}

TEST(Delivery, BogusMxDefersEverythingWithoutConnecting) {
  FakeAnswers f;
  f.fail("b.test", RRType::MX, dns::Verdict::bogus);
  Script s;
  auto o = run(envelope({"a@b.test"}), plan_of(f, "b.test"), s);
  EXPECT_TRUE(s.attempts.empty());
  EXPECT_EQ(o.results[0].dsn, "4.4.3");
  EXPECT_EQ(o.results[0].status, DeliveryStatus::deferred);
  EXPECT_NE(o.log[0].find("relay=none"), std::string::npos) << o.log[0];
}

TEST(Delivery, NullMxBouncesWithoutConnecting) {
  FakeAnswers f;
  f.mx("n.test", S, {{0, "."}});
  Script s;
  auto o = run(envelope({"a@n.test"}), plan_of(f, "n.test"), s);
  EXPECT_TRUE(s.attempts.empty());
  EXPECT_EQ(o.results[0].status, DeliveryStatus::bounced);
  EXPECT_EQ(o.results[0].dsn, "5.1.10");
}

TEST(Delivery, PerRecipientOutcomesDecideEachRecipientAtThatRelay) {
  Script s;
  SessionResult r = delivered(3);
  r.recipients[1] = outcome(smtp::Disposition::deferred, 450, "4.2.1 Mailbox busy", "RCPT TO");
  r.recipients[2] = outcome(smtp::Disposition::bounced, 550, "5.1.1 <c@d.test>: User unknown", "RCPT TO");
  s.by_host["mx1.d.test"] = r;
  auto o = run(envelope({"a@d.test", "b@d.test", "c@d.test"}), plan_of(two_dane_hosts(), "d.test"), s);
  EXPECT_EQ(o.results[0].status, DeliveryStatus::sent);
  EXPECT_EQ(o.results[1].status, DeliveryStatus::deferred);
  EXPECT_EQ(o.results[1].dsn, "4.2.1");
  EXPECT_EQ(o.results[1].reply_code, 450);
  EXPECT_EQ(o.results[1].command, "RCPT TO");
  EXPECT_EQ(o.results[1].reason, "host mx1.d.test[192.0.2.1] said: 450 4.2.1 Mailbox busy (in reply to RCPT TO command)");
  EXPECT_EQ(o.results[2].status, DeliveryStatus::bounced);
  EXPECT_EQ(o.results[2].dsn, "5.1.1");
  for (const auto& res : o.results) EXPECT_EQ(res.relay_host, "mx1.d.test");
  EXPECT_EQ(s.attempts.size(), 1u) << "a 4xx RCPT is deferred, not retried at another MX";
  EXPECT_EQ(o.log.size(), 3u);
}

TEST(Delivery, DnsLookupTimeCountsAsConnectionSetup) {
  Script s;
  SessionResult r = delivered(1);
  r.connection_setup = std::chrono::microseconds(200'000);
  r.transmission = std::chrono::microseconds(30'000);
  s.by_host["mx1.d.test"] = r;
  asio::io_context io;
  std::vector<RecipientResult> results;
  DeliverySettings settings;
  settings.dns_lookup = std::chrono::microseconds(100'000);
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        Envelope e = envelope({"a@d.test"});
        dns::DeliveryPlan p = plan_of(two_dane_hosts(), "d.test");
        results = co_await deliver(std::move(e), std::move(p), settings, s.connector(), [](const std::string&) {});
      },
      [](std::exception_ptr e) {
        if (e) std::rethrow_exception(e);
      });
  io.run();
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].delays.connection_setup, std::chrono::microseconds(300'000));
  EXPECT_EQ(results[0].delays.transmission, std::chrono::microseconds(30'000));
}

TEST(Delivery, GreetingFailureTriesTheNextHost) {
  Script s;
  s.by_host["mx1.d.test"] = host_failure("host mx1.d.test[192.0.2.1] refused to talk to me: 421 4.3.2 busy", Kind::greeting_rejected, reply(421, "4.3.2 busy"));
  s.by_host["mx2.d.test"] = delivered(1);
  auto o = run(envelope({"a@d.test"}), plan_of(two_dane_hosts(), "d.test"), s);
  EXPECT_EQ(s.attempts.size(), 2u);
  EXPECT_EQ(o.results[0].status, DeliveryStatus::sent);
}

// Issue 10 item 9: a 5xx to the greeting, EHLO or STARTTLS makes that host unusable exactly as a
// 4xx does: the next MX is tried, and when none delivers the recipients are deferred with a
// 4.x.x status (the server's detail, class 4). A refusal before MAIL never bounces anybody.
TEST(Delivery, FiveHundredBeforeMailMakesTheHostUnusableAndDefersWithAFourStatus) {
  struct Row {
    Kind kind;
    int code;
    const char* text;
    const char* want;
  };
  for (const Row& row : {Row{Kind::greeting_rejected, 554, "5.7.1 no mail from you", "4.7.1"},
                         Row{Kind::helo_rejected, 550, "5.7.1 go away", "4.7.1"},
                         Row{Kind::helo_rejected, 500, "syntax error", "4.0.0"},
                         Row{Kind::starttls_rejected, 554, "5.7.3 TLS not available", "4.7.3"}}) {
    SCOPED_TRACE(std::string(smtp::to_string(row.kind)) + " " + row.text);
    Script s;
    const std::string why = "host mx1.d.test[192.0.2.1] refused to talk to me: " + std::to_string(row.code) + " " + row.text;
    s.by_host["mx1.d.test"] = host_failure(why, row.kind, reply(row.code, row.text));
    s.by_host["mx2.d.test"] = host_failure(why, row.kind, reply(row.code, row.text));
    auto o = run(envelope({"a@d.test", "b@d.test"}), plan_of(two_dane_hosts(), "d.test"), s);
    EXPECT_EQ(s.attempts.size(), 2u) << "the next MX is tried";
    for (const auto& r : o.results) {
      EXPECT_EQ(r.status, DeliveryStatus::deferred);
      EXPECT_EQ(r.dsn, row.want);
      ASSERT_TRUE(r.failure);
      EXPECT_EQ(*r.failure, failure_of(row.kind));
    }
  }
}

TEST(Delivery, UnusableOnlyTlsaRequiresTlsWithoutAuthentication) {
  FakeAnswers f;
  f.mx("u.test", S, {{10, "mx.u.test"}}).host("mx.u.test", S, {"192.0.2.1"}).tlsa("_25._tcp.mx.u.test", S, {tlsa_rdata(1, 1, 1, 32)});
  Script s;
  s.by_host["mx.u.test"] = host_failure("TLS is required, but was not offered by host mx.u.test[192.0.2.1]", Kind::tls_not_offered);
  auto o = run(envelope({"a@u.test"}), plan_of(f, "u.test"), s);
  ASSERT_EQ(s.attempts.size(), 1u);
  EXPECT_EQ(s.attempts[0].policy.requirement, tls::Requirement::encrypt);
  EXPECT_FALSE(s.attempts[0].policy.plaintext_fallback);
  EXPECT_EQ(o.results[0].status, DeliveryStatus::deferred);
  EXPECT_EQ(o.results[0].dsn, "4.7.4");
}

TEST(Delivery, AddressLimitBoundsTheAttempts) {
  FakeAnswers f;
  f.mx("m.test", S, {{10, "a.m.test"}, {20, "b.m.test"}})
      .host("a.m.test", S, {"192.0.2.1", "192.0.2.2", "192.0.2.3"})
      .host("b.m.test", S, {"192.0.2.4", "192.0.2.5", "192.0.2.6"})
      .nodata("_25._tcp.a.m.test", RRType::TLSA, S)
      .nodata("_25._tcp.b.m.test", RRType::TLSA, S);
  Script s;
  auto o = run(envelope({"a@m.test"}), plan_of(f, "m.test"), s);
  EXPECT_EQ(s.attempts.size(), 5u);
  EXPECT_EQ(o.results[0].status, DeliveryStatus::deferred);
}

TEST(ConnectorSettingsTest, ComeFromTheDeliverySection) {
  auto loaded = config::load_string(
      "[server]\nhostname = \"relay.example.net\"\n[delivery]\ngreeting_timeout = \"45s\"\ndata_done_timeout = \"20m\"\n"
      "source_address_v4 = \"192.0.2.10\"\nconnection_cache_time = \"0s\"\n",
      "t.toml");
  ASSERT_TRUE(loaded.ok()) << (loaded.errors.empty() ? "" : loaded.errors[0].str());
  const auto s = connector_settings(*loaded.config);
  EXPECT_EQ(s.helo_name, "relay.example.net");
  EXPECT_EQ(s.timeouts.greeting, std::chrono::seconds(45));
  EXPECT_EQ(s.timeouts.data_done, std::chrono::minutes(20));
  EXPECT_EQ(s.timeouts.rcpt, std::chrono::minutes(5));
  ASSERT_TRUE(s.source_v4);
  EXPECT_EQ(s.source_v4->to_string(), "192.0.2.10");
  EXPECT_FALSE(s.source_v6);
  EXPECT_EQ(loaded.config->delivery.connection_cache_time, std::chrono::seconds(0));
}

}  // namespace
// Issue 10 item 7: the cache key holds everything the session's authentication depended on.
TEST(CacheKeyTest, HoldsTheUsableTlsaSetTheRequirementAndMxSecurity) {
  dns::DeliveryPlan plan;
  plan.domain = "secure.test";
  dns::Host host;
  host.name = "mx.secure.test";
  Envelope env;
  auto attempt = [&](std::vector<dns::TlsaRecord> usable, tls::Requirement requirement, bool mx_insecure) {
    HostAttempt a;
    a.envelope = &env;
    a.plan = &plan;
    a.host = &host;
    a.address = dns::IpAddress::parse("127.0.0.11").value();
    a.policy.requirement = requirement;
    a.policy.base_domain = "mx.secure.test";
    a.policy.reference_ids = {"mx.secure.test", "secure.test"};
    a.policy.usable = std::move(usable);
    a.policy.mx_insecure = mx_insecure;
    return cache_key(a);
  };
  dns::TlsaRecord ee;
  ee.usage = 3;
  ee.selector = 1;
  ee.matching_type = 1;
  ee.data.assign(32, 0x11);
  dns::TlsaRecord rolled = ee;
  rolled.data.assign(32, 0x22);
  dns::TlsaRecord ta = ee;
  ta.usage = 2;

  const CacheKey base = attempt({ee, ta}, tls::Requirement::dane, false);
  EXPECT_EQ(base, attempt({ta, ee}, tls::Requirement::dane, false)) << "an RRset is a set: order does not matter";
  EXPECT_NE(base, attempt({rolled, ta}, tls::Requirement::dane, false)) << "authenticated under earlier records";
  EXPECT_NE(base, attempt({ee}, tls::Requirement::dane, false));
  EXPECT_NE(base, attempt({ee, ta}, tls::Requirement::dane, true)) << "D-18: Verified before the MX turned insecure";
  EXPECT_NE(attempt({}, tls::Requirement::encrypt, false), attempt({}, tls::Requirement::opportunistic, false));
}

}  // namespace danerelay::relay
