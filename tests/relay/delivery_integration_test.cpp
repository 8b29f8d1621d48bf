// tests/relay/delivery_integration_test.cpp — delivery end to end: libunbound over the signed test
// world → RFC 7672 plan → TLS policy → the real SMTP client → in-process SMTP sinks listening on
// the world's MX addresses (port 25, like real MX hosts: needs root or CAP_NET_BIND_SERVICE,
// which CI has). The rows of the behaviour table in the DNSSEC testing notes, plus next-MX,
// plaintext-retry, injection and IPv6 cases. Where delivery must not happen, the test asserts
// that no sink received a MAIL command or a message body.
#include "relay/delivery/delivery.hpp"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/context.hpp>

#include <array>
#include <cstdio>
#include <fstream>
#include <regex>
#include <memory>
#include <stdexcept>

#include "dns/destination.hpp"
#include "relay/delivery/smtp_connector.hpp"
#include "tests/support/smtp_sink.hpp"
#include "tests/support/temp_dir.hpp"
#include "tests/support/world.hpp"
#include "tls/client_context.hpp"

namespace danerelay::relay {
namespace {

namespace asio = boost::asio;
using testsupport::SinkOptions;
using testsupport::SmtpSink;

constexpr const char* kBody = "Subject: test\r\n\r\nHello over DANE.\r\n.leading dot line\r\n";

class DeliveryEndToEnd : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new testsupport::TempDir("danerelay-delivery-it");
    world_ = new testsupport::World(testsupport::build_world(dir_->path() / "world"));
    testsupport::Pki pki(dir_->path() / "pki");
    chains_ = new std::map<std::string, std::filesystem::path>;
    for (const auto& [host, cert] : world_->host_certs) (*chains_)[host] = pki.write_chain(host + ".chain.pem", {&cert, &world_->ca});
    body_file_ = dir_->path() / "body.eml";
    std::ofstream(body_file_) << kBody;
  }
  static void TearDownTestSuite() {
    delete chains_;
    delete world_;
    delete dir_;
  }

  // A sink for `host` at `address`:25 presenting `cert_host`'s certificate chain.
  std::unique_ptr<SmtpSink> sink(const std::string& address, const std::string& cert_host, SinkOptions o = {},
                                 std::uint16_t port = 25) {
    o.address = address;
    o.port = port;
    if (o.chain_file.empty() && !cert_host.empty()) {
      o.chain_file = chains_->at(cert_host);
      o.key_file = world_->host_certs.at(cert_host).key_file;
    }
    if (cert_host.empty()) o.starttls = false;
    // Only "not root, cannot bind port 25" may skip (NEED_SINK); any other failure (EADDRINUSE,
    // a broken test PKI) propagates and fails the test with its message.
    try {
      return std::make_unique<SmtpSink>(o);
    } catch (const testsupport::PrivilegedPortDenied& e) {
      cannot_listen_ = e.what();
      return nullptr;
    }
  }

  struct Result {
    std::vector<RecipientResult> results;
    std::vector<std::string> log;
    std::vector<std::string> attempts;   // "host[address]" of every connection attempt, plain retries marked
  };

  Result deliver_to(const std::string& domain, config::TlsLevel level = config::TlsLevel::dane, std::uint16_t port = 25) {
    return deliver_sequence({domain}, level, false, port).at(0);
  }

  // Delivers one message to each domain in turn on one event loop, optionally sharing a
  // connection cache between them.
  std::vector<Result> deliver_sequence(const std::vector<std::string>& domains, config::TlsLevel level, bool use_cache,
                                       std::uint16_t port = 25) {
    asio::io_context io;
    const config::DnsSettings dns_settings = testsupport::dns_settings(*world_);
    auto anchor = dns::prepare_trust_anchor(dns_settings, world_->state_dir);
    dns::UnboundResolver resolver(io.get_executor(), dns_settings, anchor);
    asio::ssl::context tls_context(tls::make_client_context(config::TlsClientSettings{}).release());
    ConnectionCache cache(io.get_executor(), std::chrono::seconds(5), 100);

    std::vector<Result> out(domains.size());
    Result* current = &out[0];
    ConnectorSettings cs;
    cs.helo_name = "relay.danerelay.test";
    cs.timeouts.greeting = cs.timeouts.ehlo = cs.timeouts.starttls = std::chrono::seconds(5);
    auto log = [&current](const std::string& line) { current->log.push_back(line); };
    Connector real = smtp_connector(io.get_executor(), tls_context, cs, log, use_cache ? &cache : nullptr);
    Connector spy = [&current, real](HostAttempt a) -> asio::awaitable<SessionResult> {
      current->attempts.push_back(a.host->name + "[" + a.address.to_string() + "]" + (a.plaintext_retry ? " plain" : ""));
      co_return co_await real(std::move(a));
    };
    DeliverySettings ds;
    ds.level = level;
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
          for (std::size_t i = 0; i < domains.size(); ++i) {
            current = &out[i];
            Envelope env;
            env.sender = "sender@org.test";
            env.recipients.push_back(Recipient{"user@" + domains[i], {}, notify_unset});
            env.size = std::string(kBody).size();
            env.body = body_file_;
            dns::PlanRequest req;
            req.domain = domains[i];
            req.port = port;
            req.lookup_tlsa = level == config::TlsLevel::dane || level == config::TlsLevel::dane_only;
            const auto started = std::chrono::steady_clock::now();
            auto resolution = co_await dns::resolve_destination(resolver, req);
            ds.dns_lookup = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - started);
            current->results = co_await deliver(env, std::move(resolution.plan), ds, spy, log);
          }
          cache.clear();
        },
        [](std::exception_ptr e) {
          if (e) std::rethrow_exception(e);
        });
    io.run();
    return out;
  }

  static bool logged(const Result& r, const std::string& text) {
    for (const auto& l : r.log) {
      if (l.find(text) != std::string::npos) return true;
    }
    return false;
  }
  static std::string all(const Result& r) {
    std::string s;
    for (const auto& l : r.log) s += l + "\n";
    return s;
  }

  std::string cannot_listen_;
  static inline testsupport::TempDir* dir_ = nullptr;
  static inline testsupport::World* world_ = nullptr;
  static inline std::map<std::string, std::filesystem::path>* chains_ = nullptr;
  static inline std::filesystem::path body_file_;
};

#define NEED_SINK(s)                                                                                          \
  if (!(s)) GTEST_SKIP() << "cannot listen on port 25 (" << cannot_listen_ << "): run as root, as CI does"

TEST_F(DeliveryEndToEnd, SecureMxMatchingTlsaIsDeliveredVerified) {
  auto s = sink("127.0.0.11", "mx.secure.test");
  NEED_SINK(s);
  auto r = deliver_to("secure.test");
  ASSERT_EQ(r.results.size(), 1u);
  EXPECT_EQ(r.results[0].status, DeliveryStatus::sent) << all(r);
  EXPECT_EQ(r.results[0].tls.trust, "Verified");
  EXPECT_TRUE(logged(r, "mx.secure.test[127.0.0.11]:25: Matched DANE EE certificate at depth 0: 3 1 1 ")) << all(r);
  EXPECT_TRUE(logged(r, "Verified TLS connection established to mx.secure.test[127.0.0.11]:25: TLSv1.3 with cipher")) << all(r);
  EXPECT_TRUE(logged(r, "relay=mx.secure.test[127.0.0.11]:25,")) << all(r);
  const auto st = s->stats();
  ASSERT_EQ(st.bodies(), 1);
  EXPECT_EQ(*st.transactions.at(0).body, kBody);
  EXPECT_EQ(st.sni.at(0), "mx.secure.test");
}

TEST_F(DeliveryEndToEnd, SecureMxMismatchingTlsaIsDeferredNeverSent) {
  auto s4 = sink("127.0.0.11", "mx1.multi.test");
  auto s6 = sink("::1", "mx1.multi.test");
  NEED_SINK(s4 && s6);
  auto r = deliver_to("secure.test");
  EXPECT_EQ(r.results[0].status, DeliveryStatus::deferred) << all(r);
  EXPECT_EQ(r.results[0].dsn, "4.7.5");
  EXPECT_TRUE(logged(r, "num=65:no matching DANE TLSA records")) << all(r);
  EXPECT_TRUE(s4->stats().transactions.empty());
  EXPECT_TRUE(s6->stats().transactions.empty());
}

TEST_F(DeliveryEndToEnd, SecureMxWithoutStarttlsIsDeferredNeverPlaintext) {
  auto s4 = sink("127.0.0.11", "");
  auto s6 = sink("::1", "");
  NEED_SINK(s4 && s6);
  auto r = deliver_to("secure.test");
  EXPECT_EQ(r.results[0].status, DeliveryStatus::deferred);
  EXPECT_EQ(r.results[0].dsn, "4.7.4");
  EXPECT_NE(r.results[0].reason.find("TLS is required, but was not offered by host mx.secure.test"), std::string::npos)
      << r.results[0].reason;
  EXPECT_TRUE(s4->stats().transactions.empty());
  EXPECT_TRUE(s6->stats().transactions.empty());
}

TEST_F(DeliveryEndToEnd, DataInjectedAfterStarttlsReplyIsNeverDelivered) {
  SinkOptions o;
  o.inject_after_starttls = "250 2.0.0 injected\r\n";
  auto s4 = sink("127.0.0.11", "mx.secure.test", o);
  auto s6 = sink("::1", "mx.secure.test", o);
  NEED_SINK(s4 && s6);
  auto r = deliver_to("secure.test");
  EXPECT_EQ(r.results[0].status, DeliveryStatus::deferred) << all(r);
  EXPECT_EQ(s4->stats().bodies() + s6->stats().bodies(), 0);
  EXPECT_TRUE(s4->stats().transactions.empty());
}

TEST_F(DeliveryEndToEnd, RequiredTlsHandshakeFailureIsDeferredNeverPlaintext) {
  SinkOptions o;
  o.fail_handshake = true;
  auto s4 = sink("127.0.0.11", "mx.secure.test", o);
  auto s6 = sink("::1", "mx.secure.test", o);
  NEED_SINK(s4 && s6);
  auto r = deliver_to("secure.test");
  ASSERT_EQ(r.results.size(), 1u);
  EXPECT_EQ(r.results[0].status, DeliveryStatus::deferred) << all(r);
  EXPECT_EQ(r.results[0].dsn, "4.7.5");
  // The reason is the handshake itself, not a certificate the verifier refused.
  EXPECT_EQ(r.results[0].reason, "Cannot start TLS: handshake failure") << all(r);
  EXPECT_EQ(r.results[0].failure, Failure::tls_handshake) << all(r);
  EXPECT_TRUE(logged(r, "relay=mx.secure.test[::1]:25, ")) << all(r);
  EXPECT_TRUE(logged(r, "dsn=4.7.5, status=deferred (Cannot start TLS: handshake failure)")) << all(r);
  EXPECT_FALSE(logged(r, "certificate verification failed")) << all(r);
  EXPECT_FALSE(logged(r, "trying again without TLS")) << all(r);
  // Both addresses were tried with TLS, each once, and neither without it.
  EXPECT_EQ(r.attempts, (std::vector<std::string>{"mx.secure.test[127.0.0.11]", "mx.secure.test[::1]"}));
  for (const auto& a : r.attempts) EXPECT_EQ(a.find(" plain"), std::string::npos) << a;
  for (auto* s : {s4.get(), s6.get()}) {
    const auto st = s->stats();
    EXPECT_EQ(st.connections, 1);
    EXPECT_EQ(st.tls_failures, 1);
    EXPECT_EQ(st.tls_handshakes, 0);
    EXPECT_TRUE(st.transactions.empty());
  }
}

TEST_F(DeliveryEndToEnd, D10_FirstMxFailingDaneIsSkippedAndTheSecondDelivers) {
  auto s1 = sink("127.0.0.131", "mx2.twomx.test");  // wrong certificate for mx1's TLSA record
  auto s2 = sink("127.0.0.132", "mx2.twomx.test");
  NEED_SINK(s1 && s2);
  auto r = deliver_to("twomx.test");
  EXPECT_EQ(r.results[0].status, DeliveryStatus::sent) << all(r);
  EXPECT_EQ(r.results[0].relay_host, "mx2.twomx.test");
  EXPECT_TRUE(logged(r, "server certificate verification failed for mx1.twomx.test[127.0.0.131]:25")) << all(r);
  EXPECT_TRUE(s1->stats().transactions.empty()) << "the failing MX must not receive MAIL";
  EXPECT_EQ(s2->stats().bodies(), 1);
}

TEST_F(DeliveryEndToEnd, D45_BothMxFailingDaneIsDeferredAndNeitherReceivesTheMessage) {
  auto s1 = sink("127.0.0.131", "mx1.multi.test");
  auto s2 = sink("127.0.0.132", "mx1.multi.test");
  NEED_SINK(s1 && s2);
  auto r = deliver_to("twomx.test");
  ASSERT_EQ(r.results.size(), 1u);
  EXPECT_EQ(r.results[0].status, DeliveryStatus::deferred) << all(r);
  EXPECT_EQ(r.results[0].dsn, "4.7.5");
  EXPECT_EQ(r.results[0].reason, "Server certificate not verified") << all(r);
  EXPECT_EQ(r.results[0].failure, Failure::tls_authentication) << all(r);
  // Each host failed because no TLSA record matched its certificate (X509_V_ERR_DANE_NO_MATCH).
  EXPECT_TRUE(logged(r, "server certificate verification failed for mx1.twomx.test[127.0.0.131]:25: "
                        "num=65:no matching DANE TLSA records")) << all(r);
  EXPECT_TRUE(logged(r, "server certificate verification failed for mx2.twomx.test[127.0.0.132]:25: "
                        "num=65:no matching DANE TLSA records")) << all(r);
  EXPECT_TRUE(logged(r, "relay=mx2.twomx.test[127.0.0.132]:25, ")) << all(r);
  EXPECT_TRUE(logged(r, "dsn=4.7.5, status=deferred (Server certificate not verified)")) << all(r);
  EXPECT_EQ(r.attempts, (std::vector<std::string>{"mx1.twomx.test[127.0.0.131]", "mx2.twomx.test[127.0.0.132]"}));
  EXPECT_TRUE(s1->stats().transactions.empty());
  EXPECT_TRUE(s2->stats().transactions.empty());
  EXPECT_EQ(s1->stats().bodies() + s2->stats().bodies(), 0);
}

TEST_F(DeliveryEndToEnd, D37_D40_DaneTaWithCaInChainAndMatchingNameIsVerified) {
  auto s = sink("127.0.0.141", "mx.danetta.test");
  NEED_SINK(s);
  auto r = deliver_to("danetta.test");
  EXPECT_EQ(r.results[0].status, DeliveryStatus::sent) << all(r);
  EXPECT_EQ(r.results[0].tls.trust, "Verified");
  EXPECT_TRUE(logged(r, "Matched DANE TA certificate at depth 1: 2 0 1 ")) << all(r);
}

TEST_F(DeliveryEndToEnd, D40_DaneTaWithALeafForAnotherNameIsDeferred) {
  auto s = sink("127.0.0.141", "mx.secure.test");  // issued by the same CA, but for another name
  NEED_SINK(s);
  auto r = deliver_to("danetta.test");
  ASSERT_EQ(r.results.size(), 1u);
  EXPECT_EQ(r.results[0].status, DeliveryStatus::deferred) << all(r);
  EXPECT_EQ(r.results[0].dsn, "4.7.5");
  EXPECT_EQ(r.results[0].reason, "Server certificate not verified") << all(r);
  EXPECT_EQ(r.results[0].failure, Failure::tls_authentication) << all(r);
  // The 2 0 1 record does match the CA in the chain: the failure is the name (X509_V_ERR_HOSTNAME_MISMATCH).
  EXPECT_TRUE(logged(r, "server certificate verification failed for mx.danetta.test[127.0.0.141]:25: num=62:hostname mismatch"))
      << all(r);
  EXPECT_FALSE(logged(r, "no matching DANE TLSA records")) << all(r);
  EXPECT_TRUE(logged(r, "relay=mx.danetta.test[127.0.0.141]:25, ")) << all(r);
  EXPECT_TRUE(logged(r, "dsn=4.7.5, status=deferred (Server certificate not verified)")) << all(r);
  EXPECT_EQ(r.attempts, std::vector<std::string>{"mx.danetta.test[127.0.0.141]"});
  EXPECT_TRUE(s->stats().transactions.empty());
}

TEST_F(DeliveryEndToEnd, D36_R02_DaneEeWithAnExpiredLeafIsDelivered) {
  auto s = sink("127.0.0.142", "mx.expiredleaf.test");
  NEED_SINK(s);
  auto r = deliver_to("expiredleaf.test");
  EXPECT_EQ(r.results[0].status, DeliveryStatus::sent) << all(r);
  EXPECT_EQ(r.results[0].tls.trust, "Verified");
}

TEST_F(DeliveryEndToEnd, D36_DaneEeWithASelfSignedLeafIsDelivered) {
  SinkOptions o;
  o.chain_file = world_->host_certs.at("mx.selfsigned.test").cert_file;
  o.key_file = world_->host_certs.at("mx.selfsigned.test").key_file;
  auto s = sink("127.0.0.143", "mx.selfsigned.test", o);
  NEED_SINK(s);
  auto r = deliver_to("selfsigned.test");
  EXPECT_EQ(r.results[0].status, DeliveryStatus::sent) << all(r);
  EXPECT_EQ(r.results[0].tls.trust, "Verified");
}

TEST_F(DeliveryEndToEnd, D30_CustomPortUsesItsOwnTlsaRecords) {
  // secure.test publishes _2525._tcp.mx.secure.test; a sink on 2525 needs no privileges.
  auto s4 = sink("127.0.0.11", "mx.secure.test", {}, 2525);
  NEED_SINK(s4);
  auto r = deliver_to("secure.test", config::TlsLevel::dane, 2525);
  EXPECT_EQ(r.results[0].status, DeliveryStatus::sent) << all(r);
  EXPECT_TRUE(logged(r, "relay=mx.secure.test[127.0.0.11]:2525,")) << all(r);
  EXPECT_EQ(r.results[0].tls.trust, "Verified");
}

TEST_F(DeliveryEndToEnd, D07_OnlyHostWithTlsaServfailIsDeferredWithoutConnecting) {
  auto s = sink("127.0.0.121", "mx.secure.test");
  NEED_SINK(s);
  auto r = deliver_to("badtlsa.test");
  EXPECT_EQ(r.results[0].status, DeliveryStatus::deferred);
  EXPECT_EQ(r.results[0].dsn, "4.7.5");
  EXPECT_EQ(r.results[0].reason, "TLSA lookup error for mx.badtlsa.test:25");
  EXPECT_EQ(s->stats().connections, 0);
}

TEST_F(DeliveryEndToEnd, Ipv6MxOnLoopbackIsUsedWhenIpv4Refuses) {
  auto s6 = sink("::1", "mx.secure.test");
  NEED_SINK(s6);
  auto r = deliver_to("secure.test");
  EXPECT_EQ(r.results[0].status, DeliveryStatus::sent) << all(r);
  EXPECT_EQ(r.results[0].relay_address, "::1");
  EXPECT_TRUE(logged(r, "relay=mx.secure.test[::1]:25,")) << all(r);
}

TEST_F(DeliveryEndToEnd, OnlyUnusableTlsaIsDeliveredOverUnauthenticatedTls) {
  auto s = sink("127.0.0.111", "mx.unusable.test");
  NEED_SINK(s);
  auto r = deliver_to("unusable.test");
  EXPECT_EQ(r.results[0].status, DeliveryStatus::sent) << all(r);
  EXPECT_EQ(r.results[0].tls.trust, "Untrusted");
  EXPECT_EQ(s->stats().tls_handshakes, 1);
}

TEST_F(DeliveryEndToEnd, OnlyUnusableTlsaWithoutStarttlsIsDeferred) {
  auto s = sink("127.0.0.111", "");
  NEED_SINK(s);
  auto r = deliver_to("unusable.test");
  EXPECT_EQ(r.results[0].status, DeliveryStatus::deferred);
  EXPECT_EQ(r.results[0].dsn, "4.7.4");
  EXPECT_TRUE(s->stats().transactions.empty());
}

TEST_F(DeliveryEndToEnd, TlsaServfailHostGetsNoConnectionAndAnotherMxDelivers) {
  auto s1 = sink("127.0.0.21", "mx1.multi.test");
  auto s2 = sink("127.0.0.22", "mx1.multi.test");  // no TLSA there: opportunistic TLS accepts any certificate
  auto s3 = sink("127.0.0.23", "mx1.multi.test");
  NEED_SINK(s1 && s2 && s3);
  auto r = deliver_to("multi.test");
  EXPECT_EQ(r.results[0].status, DeliveryStatus::sent) << all(r);
  EXPECT_EQ(s3->stats().connections, 0) << "mx3's TLSA lookup failed: it must never be contacted";
  for (const auto& a : r.attempts) EXPECT_EQ(a.find("mx3.multi.test"), std::string::npos) << a;
}

TEST_F(DeliveryEndToEnd, InsecureDestinationWithoutStarttlsIsDeliveredInPlaintext) {
  auto s = sink("127.0.0.31", "");
  NEED_SINK(s);
  auto r = deliver_to("insecure.test");
  EXPECT_EQ(r.results[0].status, DeliveryStatus::sent) << all(r);
  EXPECT_EQ(s->stats().tls_handshakes, 0);
  EXPECT_EQ(s->stats().bodies(), 1);
}

TEST_F(DeliveryEndToEnd, InsecureDestinationHandshakeFailureIsRetriedInPlaintextAndLogged) {
  SinkOptions o;
  o.fail_handshake = true;
  auto s = sink("127.0.0.31", "mx.insecure.test", o);
  NEED_SINK(s);
  auto r = deliver_to("insecure.test");
  EXPECT_EQ(r.results[0].status, DeliveryStatus::sent) << all(r);
  EXPECT_TRUE(logged(r, "trying again without TLS")) << all(r);
  ASSERT_EQ(r.attempts.size(), 2u);
  EXPECT_NE(r.attempts[1].find(" plain"), std::string::npos);
}

TEST_F(DeliveryEndToEnd, InsecureMxWithSecureHostIsTrustedNotVerified) {
  auto s = sink("127.0.0.11", "mx.secure.test");
  NEED_SINK(s);
  auto r = deliver_to("mxinsecure.test");
  EXPECT_EQ(r.results[0].status, DeliveryStatus::sent) << all(r);
  EXPECT_EQ(r.results[0].tls.trust, "Trusted");
  EXPECT_TRUE(logged(r, "Trusted TLS connection established to mx.secure.test[127.0.0.11]:25")) << all(r);
}

TEST_F(DeliveryEndToEnd, BogusDestinationIsDeferredWithoutAnyConnection) {
  auto s = sink("127.0.0.41", "");
  NEED_SINK(s);
  auto r = deliver_to("bogus-ds.test");
  EXPECT_EQ(r.results[0].status, DeliveryStatus::deferred);
  EXPECT_EQ(r.results[0].dsn, "4.4.3");
  EXPECT_TRUE(r.attempts.empty());
  EXPECT_EQ(s->stats().connections, 0);
  EXPECT_TRUE(logged(r, "relay=none")) << all(r);
}

TEST_F(DeliveryEndToEnd, DaneOnlyWithInsecureMxConnectsNowhere) {
  auto s = sink("127.0.0.11", "mx.secure.test");
  NEED_SINK(s);
  auto r = deliver_to("mxinsecure.test", config::TlsLevel::dane_only);
  EXPECT_EQ(r.results[0].status, DeliveryStatus::deferred);
  EXPECT_EQ(s->stats().connections, 0);
}

TEST_F(DeliveryEndToEnd, CachedConnectionIsReusedForTheSameDestination) {
  auto s = sink("127.0.0.11", "mx.secure.test");
  NEED_SINK(s);
  auto r = deliver_sequence({"secure.test", "secure.test", "secure.test"}, config::TlsLevel::dane, true);
  for (const auto& one : r) EXPECT_EQ(one.results.at(0).status, DeliveryStatus::sent) << all(one);
  ASSERT_TRUE(s->wait_sessions_ended(1, std::chrono::seconds(5)));
  const auto st = s->stats();
  EXPECT_EQ(st.connections, 1);
  EXPECT_EQ(st.tls_handshakes, 1);
  EXPECT_EQ(st.bodies(), 3);
  EXPECT_EQ(r[2].results[0].connection_use, 3);
  EXPECT_TRUE(logged(r[1], "Verified TLS connection reused to mx.secure.test[127.0.0.11]:25")) << all(r[1]);
  EXPECT_TRUE(logged(r[2], "relay=mx.secure.test[127.0.0.11]:25, conn_use=3, delay=")) << all(r[2]);
}

TEST_F(DeliveryEndToEnd, ConnectionAuthenticatedForOneDomainIsNeverUsedForAnother) {
  // secure.test and mxinsecure.test share mx.secure.test[127.0.0.11]; the second must open its own
  // connection (its reference identifiers and trust differ: Verified vs Trusted).
  auto s = sink("127.0.0.11", "mx.secure.test");
  NEED_SINK(s);
  auto r = deliver_sequence({"secure.test", "mxinsecure.test", "secure.test"}, config::TlsLevel::dane, true);
  for (const auto& one : r) EXPECT_EQ(one.results.at(0).status, DeliveryStatus::sent) << all(one);
  EXPECT_EQ(r[0].results[0].tls.trust, "Verified");
  EXPECT_EQ(r[1].results[0].tls.trust, "Trusted");
  EXPECT_EQ(r[1].results[0].connection_use, 1);
  EXPECT_EQ(r[2].results[0].connection_use, 2) << "the first connection is still good for secure.test";
  ASSERT_TRUE(s->wait_sessions_ended(2, std::chrono::seconds(5)));
  EXPECT_EQ(s->stats().connections, 2);
  EXPECT_EQ(s->stats().tls_handshakes, 2);
}

TEST_F(DeliveryEndToEnd, CachedConnectionTheServerClosedWhileIdleIsNotUsed) {
  // Issue 10 item 8: the server's idle timeout (a 421, then close) ends the cached connection;
  // the next message must not find that out after MAIL and defer: it gets a fresh connection.
  for (const std::string reply : {"421 4.4.2 mx.secure.test Error: timeout exceeded", ""}) {
    SinkOptions o;
    o.close_after_bodies = 1;
    o.idle_close_reply = reply;
    auto s = sink("127.0.0.11", "mx.secure.test", o);
    NEED_SINK(s);
    auto r = deliver_sequence({"secure.test", "secure.test", "secure.test"}, config::TlsLevel::dane, true);
    for (const auto& one : r) {
      EXPECT_EQ(one.results.at(0).status, DeliveryStatus::sent) << "reply \"" << reply << "\"\n" << all(one);
      EXPECT_EQ(one.results.at(0).connection_use, 1);
    }
    ASSERT_TRUE(s->wait_sessions_ended(3, std::chrono::seconds(5)));
    EXPECT_EQ(s->stats().connections, 3);
    EXPECT_EQ(s->stats().bodies(), 3);
  }
}

TEST_F(DeliveryEndToEnd, CachedConnectionLostAtMailIsRetriedOnceOnAFreshConnection) {
  // The close races the reuse: the cached connection looks intact, then MAIL meets EOF. Nothing
  // was sent on it, so one retry on a new connection delivers (and is logged).
  SinkOptions o;
  o.close_after_bodies = 1;
  o.close_at_next_command = true;
  auto s = sink("127.0.0.11", "mx.secure.test", o);
  NEED_SINK(s);
  auto r = deliver_sequence({"secure.test", "secure.test"}, config::TlsLevel::dane, true);
  for (const auto& one : r) EXPECT_EQ(one.results.at(0).status, DeliveryStatus::sent) << all(one);
  EXPECT_TRUE(logged(r[1], "cached connection to mx.secure.test[127.0.0.11]:25 failed before the message was sent"))
      << all(r[1]);
  EXPECT_EQ(r[1].attempts.size(), 1u) << "one attempt: the retry is inside it, not a second host";
  ASSERT_TRUE(s->wait_sessions_ended(2, std::chrono::seconds(5)));
  EXPECT_EQ(s->stats().connections, 2) << "the first (dropped at MAIL when reused) and the fresh one";
  EXPECT_EQ(s->stats().bodies(), 2);
}

// pflogsumm over the delivery lines is tested on what the daemon itself emits, through journald
// and syslog(3) sockets of the test's own (journal_e2e_test.cpp): no test wraps our lines in a
// syslog prefix of its own (issue 11).

}  // namespace
}  // namespace danerelay::relay
