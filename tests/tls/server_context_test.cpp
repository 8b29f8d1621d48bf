// tests/tls/server_context_test.cpp — the inbound STARTTLS context (tls/server_context.hpp): loads a
// PEM chain and key, refuses bad files with clear messages, and reloads all-or-nothing.
#include "tls/server_context.hpp"

#include <gtest/gtest.h>

#include <openssl/x509_vfy.h>

#include <fstream>

#include "tests/support/pki.hpp"
#include "tests/support/temp_dir.hpp"
#include "tests/tls/rejection.hpp"
#include "tests/tls/tls_pair.hpp"
#include "tls/client_context.hpp"

namespace danerelay::tls {
namespace {

using testsupport::Cert;
using testsupport::Pki;

class ServerContextTest : public ::testing::Test {
 protected:
  ServerContextTest() : pki_(dir_.path()), ca_(pki_.make_ca("server test CA")) {}

  Cert leaf(const std::string& name) {
    Pki::LeafOptions o;
    o.common_name = name;
    o.dns_names = {name};
    o.issuer = &ca_;
    return pki_.make_leaf(o);
  }

  config::TlsServerSettings settings_for(const Cert& cert) {
    config::TlsServerSettings s;
    s.cert_file = pki_.write_chain("chain-" + std::to_string(++files_) + ".pem", {&cert, &ca_});
    s.key_file = cert.key_file;
    return s;
  }

  // The leaf a client sees when it handshakes with `server` (DANE-EE of `expect`, so the check is exact).
  testing::Handshake handshake_expecting(SSL_CTX* server, const Cert& expect) {
    dns::DeliveryPlan plan;
    plan.domain = plan.next_hop = "example.test";
    plan.mx_security = dns::Verdict::secure;
    dns::Host host;
    host.name = host.expanded = "mx.example.test";
    host.tlsa.state = dns::TlsaState::found;
    host.tlsa.base_domain = "mx.example.test";
    dns::TlsaRecord r;
    r.usage = 3;
    r.selector = 1;
    r.matching_type = 1;
    r.data = testsupport::tlsa_association(expect.x509.get(), 1, 1);
    host.tlsa.records = {r};
    const std::vector<std::string> order{"sha256"};
    const auto policy = decide(plan, host, config::TlsLevel::dane, order);
    config::TlsClientSettings cs;
    cs.digest_order = order;
    auto client = make_client_context(cs);
    return testing::run_handshake(client.get(), server, policy);
  }

  bool serves(SSL_CTX* server, const Cert& expect) { return handshake_expecting(server, expect).report.authenticated; }

  testsupport::TempDir dir_{"danerelay-tls-server"};
  Pki pki_;
  Cert ca_;
  int files_ = 0;
};

TEST_F(ServerContextTest, ServesTheConfiguredChain) {
  const Cert mx = leaf("mx.example.test");
  ServerContext ctx(settings_for(mx));
  EXPECT_TRUE(serves(ctx.get().get(), mx));
}

TEST_F(ServerContextTest, ReloadSwapsInTheNewCertificateAndOldHoldersKeepTheirs) {
  const Cert first = leaf("mx.example.test");
  const Cert second = leaf("mx.example.test");
  auto s = settings_for(first);
  ServerContext ctx(s);
  const auto held = ctx.get();  // a session in progress keeps this one
  // Certificate renewal: same paths, new contents.
  const auto renewed = settings_for(second);
  std::filesystem::copy_file(renewed.cert_file, s.cert_file, std::filesystem::copy_options::overwrite_existing);
  std::filesystem::copy_file(renewed.key_file, s.key_file, std::filesystem::copy_options::overwrite_existing);
  ctx.reload();
  EXPECT_TRUE(serves(ctx.get().get(), second));
  // The old certificate is gone: its DANE-EE record no longer matches (and for no other reason).
  testing::expect_rejected(handshake_expecting(ctx.get().get(), first), X509_V_ERR_DANE_NO_MATCH, 0);
  EXPECT_TRUE(serves(held.get(), first));
}

TEST_F(ServerContextTest, FailedReloadKeepsTheOldContext) {
  const Cert mx = leaf("mx.example.test");
  ServerContext ctx(settings_for(mx));
  const auto before = ctx.get();
  config::TlsServerSettings broken = ctx.settings();
  broken.cert_file = dir_.path() / "missing.pem";
  EXPECT_THROW(ctx.reload(broken), TlsError);
  EXPECT_EQ(ctx.get(), before);
  EXPECT_TRUE(serves(ctx.get().get(), mx));
}

TEST_F(ServerContextTest, MissingFileIsNamed) {
  config::TlsServerSettings s;
  s.cert_file = dir_.path() / "nope.pem";
  s.key_file = dir_.path() / "nope.key";
  try {
    ServerContext ctx(s);
    FAIL() << "no exception";
  } catch (const TlsError& e) {
    EXPECT_NE(std::string(e.what()).find("nope.pem"), std::string::npos) << e.what();
  }
}

TEST_F(ServerContextTest, GarbageCertificateFileIsReportedWithOpenSslReason) {
  const Cert mx = leaf("mx.example.test");
  auto s = settings_for(mx);
  std::ofstream(s.cert_file) << "not a certificate\n";
  try {
    ServerContext ctx(s);
    FAIL() << "no exception";
  } catch (const TlsError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("cannot load certificate chain from " + s.cert_file.string()), std::string::npos) << what;
    EXPECT_NE(what.find("error:"), std::string::npos) << "the OpenSSL reason follows: " << what;
  }
}

TEST_F(ServerContextTest, KeyThatDoesNotMatchIsRefused) {
  const Cert mx = leaf("mx.example.test");
  const Cert other = leaf("other.example.test");
  auto s = settings_for(mx);
  s.key_file = other.key_file;
  EXPECT_THROW(ServerContext ctx(s), TlsError);
}

TEST_F(ServerContextTest, EmptySettingsAreRefused) {
  EXPECT_THROW(ServerContext ctx(config::TlsServerSettings{}), TlsError);
}

TEST_F(ServerContextTest, R01_RefusesTls11Clients) {
  const Cert mx = leaf("mx.example.test");
  ServerContext ctx(settings_for(mx));
  SslCtxPtr old_client(SSL_CTX_new(TLS_client_method()));
  SSL_CTX_set_max_proto_version(old_client.get(), TLS1_1_VERSION);
  SSL_CTX_set_security_level(old_client.get(), 0);
  SSL_CTX_set_cipher_list(old_client.get(), "DEFAULT:@SECLEVEL=0");
  HostPolicy may;
  may.requirement = Requirement::opportunistic;
  const auto h = testing::run_handshake(old_client.get(), ctx.get().get(), may);
  testing::expect_handshake_failure(h, "alert protocol version", "unsupported protocol");
}

}  // namespace
}  // namespace danerelay::tls
