// tests/tls/end_to_end_test.cpp — DNS to handshake in one go: resolve a test-world destination
// through UnboundResolver (libunbound validating the real signed hierarchy, tests/support/world.hpp),
// decide the policy for its host with tls::decide(), then handshake with an in-process server that
// presents the host's certificate from the same world. Nothing stands in for the validator or OpenSSL.
#include "tls/policy.hpp"

#include <gtest/gtest.h>

#include <openssl/x509_vfy.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <chrono>
#include <functional>
#include <optional>

#include "dns/destination.hpp"
#include "tests/support/temp_dir.hpp"
#include "tests/support/world.hpp"
#include "tests/tls/rejection.hpp"
#include "tests/tls/tls_pair.hpp"
#include "tls/client_context.hpp"
#include "tls/peer_report.hpp"

namespace danerelay::tls {
namespace {

namespace asio = boost::asio;
using testing::expect_rejected;
using testsupport::Cert;

class EndToEnd : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new testsupport::TempDir("danerelay-tls-e2e");
    world_ = new testsupport::World(testsupport::build_world(dir_->path()));
  }
  static void TearDownTestSuite() {
    delete world_;
    delete dir_;
  }

  static dns::DeliveryPlan resolve(const std::string& domain) {
    const config::DnsSettings s = testsupport::dns_settings(*world_);
    asio::io_context io;
    const auto anchor = dns::prepare_trust_anchor(s, world_->state_dir);
    dns::UnboundResolver resolver(io.get_executor(), s, anchor);
    dns::PlanRequest req;
    req.domain = domain;
    std::optional<dns::Resolution> out;
    asio::co_spawn(
        io, [&]() -> asio::awaitable<void> { out = co_await dns::resolve_destination(resolver, std::move(req)); },
        [](std::exception_ptr e) {
          if (e) std::rethrow_exception(e);
        });
    io.run();
    return std::move(out->plan);
  }

  static const dns::Host& host(const dns::DeliveryPlan& plan, const std::string& name) {
    for (const auto& h : plan.hosts) {
      if (h.name == name) return h;
    }
    throw std::runtime_error("no host " + name + " in plan for " + plan.domain);
  }

  static HostPolicy policy_for(const std::string& domain, const std::string& mx,
                               config::TlsLevel level = config::TlsLevel::dane) {
    const auto plan = resolve(domain);
    const std::vector<std::string> order{"sha512", "sha256"};
    return decide(plan, host(plan, mx), level, order);
  }

  // Handshake against a server presenting `cert` + the world CA.
  static testing::Handshake connect(const HostPolicy& policy, const Cert& cert) {
    auto client = make_client_context({});
    testing::ServerOptions options;
    options.chain = {&cert, &world_->ca};
    auto server = testing::make_server_ctx(options);
    return testing::run_handshake(client.get(), server.get(), policy);
  }

  static inline testsupport::TempDir* dir_ = nullptr;
  static inline testsupport::World* world_ = nullptr;
};

TEST_F(EndToEnd, D10_SecureTestIsVerifiedByItsTlsaRecord) {
  const auto policy = policy_for("secure.test", "mx.secure.test");
  ASSERT_EQ(policy.requirement, Requirement::dane) << policy.reason;
  EXPECT_EQ(policy.tls_feature, "dane");
  const auto h = connect(policy, world_->host_certs.at("mx.secure.test"));
  EXPECT_TRUE(h.report.authenticated) << h.report.failure;
  EXPECT_EQ(h.report.trust, Trust::verified);
  EXPECT_EQ(h.sni_seen, "mx.secure.test") << "D-43";
  const std::string namaddr = format_namaddr("mx.secure.test", "127.0.0.11", 25);
  EXPECT_EQ(dane_match_line(h.report, namaddr).rfind("mx.secure.test[127.0.0.11]:25: Matched DANE EE certificate at depth 0: 3 1 1 ", 0), 0u);
  EXPECT_EQ(summary_line(h.report, namaddr).rfind("Verified TLS connection established to mx.secure.test[127.0.0.11]:25: TLSv1.3", 0), 0u);
}

TEST_F(EndToEnd, D39_SecureTestWithAnotherHostsCertificateFails) {
  const auto policy = policy_for("secure.test", "mx.secure.test");
  ASSERT_EQ(policy.requirement, Requirement::dane) << policy.reason;
  const auto h = connect(policy, world_->host_certs.at("mx.unusable.test"));
  expect_rejected(h, X509_V_ERR_DANE_NO_MATCH);
  EXPECT_EQ(h.setup.tlsa_loaded, policy.usable.size());
  EXPECT_EQ(h.report.failure, "no TLSA record matches the server certificate chain");
}

TEST_F(EndToEnd, D18_MxInsecureTestIsTrustedNotVerified) {
  const auto policy = policy_for("mxinsecure.test", "mx.secure.test");
  ASSERT_EQ(policy.requirement, Requirement::dane);
  EXPECT_TRUE(policy.mx_insecure);
  EXPECT_EQ(policy.tls_feature, "dane:halfdane");
  const auto h = connect(policy, world_->host_certs.at("mx.secure.test"));
  EXPECT_TRUE(h.report.authenticated) << h.report.failure;
  EXPECT_EQ(h.report.trust, Trust::trusted);
}

TEST_F(EndToEnd, D20_MxInsecureTestDefersUnderDaneOnly) {
  const auto policy = policy_for("mxinsecure.test", "mx.secure.test", config::TlsLevel::dane_only);
  EXPECT_EQ(policy.requirement, Requirement::defer);
}

TEST_F(EndToEnd, D11_D38_UnusableTestIsEncryptedUntrusted) {
  const auto policy = policy_for("unusable.test", "mx.unusable.test");
  ASSERT_EQ(policy.requirement, Requirement::encrypt);
  EXPECT_EQ(policy.unusable, 2u);
  const auto h = connect(policy, world_->host_certs.at("mx.unusable.test"));
  EXPECT_TRUE(h.report.established) << h.client_error;
  EXPECT_FALSE(h.report.authenticated);
  EXPECT_EQ(h.report.trust, Trust::untrusted);
}

TEST_F(EndToEnd, D43_CnameMxHostSendsBaseDomainAsSni) {
  const auto policy = policy_for("cname.test", "mail.cname.test");
  ASSERT_EQ(policy.requirement, Requirement::dane);
  EXPECT_EQ(policy.sni, "mx.secure.test");
  const auto h = connect(policy, world_->host_certs.at("mx.secure.test"));
  EXPECT_TRUE(h.report.authenticated) << h.report.failure;
  EXPECT_EQ(h.sni_seen, "mx.secure.test");
}

TEST_F(EndToEnd, D37_D40_MultiTestDaneTaHostVerifiesAtDepthOne) {
  const auto policy = policy_for("multi.test", "mx4.multi.test");
  ASSERT_EQ(policy.requirement, Requirement::dane);
  const auto h = connect(policy, world_->host_certs.at("mx4.multi.test"));
  EXPECT_TRUE(h.report.authenticated) << h.report.failure;
  EXPECT_EQ(h.report.match_depth, 1);
  EXPECT_EQ(h.report.peer_name, "mx4.multi.test");
  // The same DANE-TA record with another host's (CA-issued) certificate: name check fails.
  const auto wrong = connect(policy, world_->host_certs.at("mx1.multi.test"));
  expect_rejected(wrong, X509_V_ERR_HOSTNAME_MISMATCH, 0);
  EXPECT_NE(wrong.report.failure.find("none of mx4.multi.test"), std::string::npos) << wrong.report.failure;
}

TEST_F(EndToEnd, D12_InsecureTestIsOpportunistic) {
  const auto policy = policy_for("insecure.test", "mx.insecure.test");
  EXPECT_EQ(policy.requirement, Requirement::opportunistic);
  EXPECT_TRUE(policy.plaintext_fallback);
  const auto h = connect(policy, world_->host_certs.at("mx.insecure.test"));
  EXPECT_TRUE(h.report.established);
  EXPECT_EQ(h.report.trust, Trust::untrusted);
}

TEST_F(EndToEnd, D31_D32_TlsaCnameKeepsBaseDomainForSni) {
  const auto policy = policy_for("tlsacname.test", "mx.tlsacname.test");
  ASSERT_EQ(policy.requirement, Requirement::dane);
  EXPECT_EQ(policy.sni, "mx.tlsacname.test");
  const auto h = connect(policy, world_->host_certs.at("mx.secure.test"));  // the record is mx.secure.test's 3 1 1
  EXPECT_TRUE(h.report.authenticated) << h.report.failure;
  EXPECT_EQ(h.sni_seen, "mx.tlsacname.test");
}

}  // namespace
}  // namespace danerelay::tls
