// tests/tls/handshake_test.cpp — the DANE and PKIX certificate matrix with real certificates
// (testsupport::Pki) and an in-process TLS server (tls_pair.hpp), like Postfix's tls_dane.sh and
// OpenSSL's danetest.in: every policy is made by tls::decide() from TLSA records computed from the
// certificates, loaded by tls::configure_session(), and judged by OpenSSL in a real handshake.
// Checklist ids (../shared/rfc-checklist.md) in test names.
#include "tls/dane_session.hpp"

#include <gtest/gtest.h>

#include <openssl/x509_vfy.h>

#include <regex>

#include "tests/support/pki.hpp"
#include "tests/support/temp_dir.hpp"
#include "tests/tls/rejection.hpp"
#include "tests/tls/tls_pair.hpp"
#include "tls/client_context.hpp"
#include "tls/peer_report.hpp"
#include "tls/policy.hpp"

namespace danerelay::tls {
namespace {

using testsupport::Cert;
using testsupport::Pki;
using testing::expect_handshake_failure;
using testing::expect_rejected;
using testing::Handshake;
using testing::ServerOptions;

constexpr const char* kNamaddr = "mx.example.test[127.0.0.1]:25";

dns::TlsaRecord tlsa(const Cert& cert, int usage, int selector, int mtype) {
  dns::TlsaRecord r;
  r.usage = static_cast<std::uint8_t>(usage);
  r.selector = static_cast<std::uint8_t>(selector);
  r.matching_type = static_cast<std::uint8_t>(mtype);
  r.data = testsupport::tlsa_association(cert.x509.get(), selector, mtype);
  return r;
}

dns::TlsaRecord corrupt(dns::TlsaRecord r) {
  r.data.back() ^= 0x01;
  return r;
}

struct Where {
  std::string domain = "example.test";      // recipient domain (MX owner)
  std::string host = "mx.example.test";     // MX host name
  std::string base = "mx.example.test";     // TLSA base domain
  bool mx_insecure = false;
};

// The plan and host the DNS side would produce for a secure MX with this TLSA RRset.
HostPolicy dane_policy(std::vector<dns::TlsaRecord> records, const Where& where = {},
                       std::vector<std::string> order = {"sha512", "sha256"},
                       config::TlsLevel level = config::TlsLevel::dane) {
  dns::DeliveryPlan plan;
  plan.domain = where.domain;
  plan.next_hop = where.domain;
  plan.kind = dns::DestinationKind::mx;
  plan.mx_security = where.mx_insecure ? dns::Verdict::insecure : dns::Verdict::secure;
  plan.status = dns::PlanStatus::deliver;
  dns::Host host;
  host.name = where.host;
  host.expanded = where.base;
  host.address_security = dns::Verdict::secure;
  host.usable = true;
  host.tlsa.state = dns::TlsaState::found;
  host.tlsa.candidates = {where.base};
  host.tlsa.base_domain = where.base;
  host.tlsa.records = std::move(records);
  return decide(plan, host, level, order);
}

HostPolicy level_policy(config::TlsLevel level, const Where& where = {}, std::vector<std::string> match = {}) {
  dns::DeliveryPlan plan;
  plan.domain = where.domain;
  plan.next_hop = where.domain;
  plan.kind = dns::DestinationKind::mx;
  plan.mx_security = dns::Verdict::secure;
  dns::Host host;
  host.name = where.host;
  host.expanded = where.host;
  host.address_security = dns::Verdict::secure;
  host.tlsa.state = dns::TlsaState::secure_denial;
  const std::vector<std::string> order{"sha512", "sha256"};
  return decide(plan, host, level, order, match);
}

class Handshakes : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new testsupport::TempDir("danerelay-tls");
    pki_ = new Pki(dir_->path());
    ca_ = new Cert(pki_->make_ca("danerelay DANE test root"));
    other_ca_ = new Cert(pki_->make_ca("unknown CA"));
    intermediate_ = new Cert(pki_->make_ca("danerelay private intermediate", ca_));
    leaf_ = new Cert(leaf("mx.example.test", {"mx.example.test"}, ca_));
  }
  static void TearDownTestSuite() {
    delete leaf_;
    delete intermediate_;
    delete other_ca_;
    delete ca_;
    delete pki_;
    delete dir_;
  }

  static Cert leaf(const std::string& cn, std::vector<std::string> names, const Cert* issuer,
                   Pki::LeafOptions::KeyType key = Pki::LeafOptions::KeyType::ec_p256) {
    Pki::LeafOptions o;
    o.common_name = cn;
    o.dns_names = std::move(names);
    o.issuer = issuer;
    o.key_type = key;
    return pki_->make_leaf(o);
  }

  static SslCtxPtr client_ctx(std::vector<std::string> order = {"sha512", "sha256"}, std::filesystem::path ca_file = {}) {
    config::TlsClientSettings s;
    s.digest_order = std::move(order);
    s.ca_file = std::move(ca_file);
    return make_client_context(s);
  }

  static Handshake handshake(const HostPolicy& policy, std::vector<const Cert*> chain, SSL_CTX* client = nullptr,
                             ServerOptions options = {}) {
    options.chain = std::move(chain);
    auto server = testing::make_server_ctx(options);
    SslCtxPtr own;
    if (client == nullptr) {
      own = client_ctx();
      client = own.get();
    }
    return testing::run_handshake(client, server.get(), policy);
  }

  static inline testsupport::TempDir* dir_ = nullptr;
  static inline Pki* pki_ = nullptr;
  static inline Cert* ca_ = nullptr;
  static inline Cert* other_ca_ = nullptr;
  static inline Cert* intermediate_ = nullptr;
  static inline Cert* leaf_ = nullptr;
};

void expect_verified(const Handshake& h) {
  EXPECT_TRUE(h.client_done) << h.client_error << " | " << h.report.failure;
  EXPECT_TRUE(h.server_done) << h.server_error;
  EXPECT_TRUE(h.report.established);
  EXPECT_TRUE(h.report.authenticated) << h.report.failure;
  EXPECT_EQ(h.report.trust, Trust::verified);
  EXPECT_TRUE(h.report.failure.empty()) << h.report.failure;
}

// --- Every usage 2/3 × selector 0/1 × matching type 0/1/2 that should match ------------------------

struct MatrixCase {
  int usage;
  int selector;
  int mtype;
};

class DaneMatrix : public Handshakes, public ::testing::WithParamInterface<MatrixCase> {};

TEST_P(DaneMatrix, MatchesAndReportsRecordAndDepth) {
  const auto [usage, selector, mtype] = GetParam();
  const Cert& subject = usage == 3 ? *leaf_ : *ca_;
  const auto record = tlsa(subject, usage, selector, mtype);
  const auto policy = dane_policy({record});
  ASSERT_EQ(policy.requirement, Requirement::dane);
  const auto h = handshake(policy, {leaf_, ca_});
  expect_verified(h);
  EXPECT_EQ(h.setup.tlsa_loaded, 1u);
  ASSERT_TRUE(h.report.matched.has_value());
  EXPECT_EQ(*h.report.matched, record);
  EXPECT_EQ(h.report.match_depth, usage == 3 ? 0 : 1);
  const std::string line = dane_match_line(h.report, kNamaddr);
  EXPECT_EQ(line.rfind(std::string(kNamaddr) + ": Matched DANE " + (usage == 3 ? "EE certificate at depth 0: " : "TA certificate at depth 1: ") +
                           std::to_string(usage) + " " + std::to_string(selector) + " " + std::to_string(mtype) + " ",
                       0),
            0u)
      << line;
}

INSTANTIATE_TEST_SUITE_P(D36_D37_D42, DaneMatrix,
                         ::testing::Values(MatrixCase{3, 0, 0}, MatrixCase{3, 0, 1}, MatrixCase{3, 0, 2}, MatrixCase{3, 1, 0},
                                           MatrixCase{3, 1, 1}, MatrixCase{3, 1, 2}, MatrixCase{2, 0, 0}, MatrixCase{2, 0, 1},
                                           MatrixCase{2, 0, 2}, MatrixCase{2, 1, 0}, MatrixCase{2, 1, 1}, MatrixCase{2, 1, 2}),
                         [](const ::testing::TestParamInfo<MatrixCase>& param) {
                           const auto& c = param.param;
                           return std::string(c.usage == 3 ? "DaneEe_" : "DaneTa_") + std::to_string(c.usage) + "_" +
                                  std::to_string(c.selector) + "_" + std::to_string(c.mtype);
                         });

// --- Wrong data never authenticates (D-39, D-45) -----------------------------------------------------

TEST_F(Handshakes, D45_WrongDigestFailsWithPostfixStyleReason) {
  const auto h = handshake(dane_policy({corrupt(tlsa(*leaf_, 3, 1, 1))}), {leaf_, ca_});
  expect_rejected(h, X509_V_ERR_DANE_NO_MATCH);
  ASSERT_TRUE(h.report.verify_failure.has_value());
  EXPECT_EQ(h.report.verify_failure->error, X509_V_ERR_DANE_NO_MATCH);
  EXPECT_EQ(h.report.failure, "no TLSA record matches the server certificate chain");
  EXPECT_EQ(verify_failure_line(h.report, kNamaddr),
            "server certificate verification failed for mx.example.test[127.0.0.1]:25: num=65:no matching DANE TLSA records");
  EXPECT_TRUE(summary_line(h.report, kNamaddr).empty());
}

TEST_F(Handshakes, D45_WrongTaDigestFails) {
  expect_rejected(handshake(dane_policy({corrupt(tlsa(*ca_, 2, 0, 1))}), {leaf_, ca_}), X509_V_ERR_DANE_NO_MATCH);
  expect_rejected(handshake(dane_policy({corrupt(tlsa(*ca_, 2, 1, 2))}), {leaf_, ca_}), X509_V_ERR_DANE_NO_MATCH);
}

// --- DANE-EE: no name checks, no dates (D-36, R-02) -------------------------------------------------

TEST_F(Handshakes, D36_R02_DaneEeIgnoresExpiry) {
  Pki::LeafOptions o;
  o.common_name = "mx.example.test";
  o.dns_names = {"mx.example.test"};
  o.issuer = ca_;
  o.not_before = -std::chrono::hours(24 * 730);
  o.not_after = -std::chrono::hours(24 * 365);
  const Cert expired = pki_->make_leaf(o);
  for (int selector : {0, 1}) {
    const auto h = handshake(dane_policy({tlsa(expired, 3, selector, 1)}), {&expired, ca_});
    expect_verified(h);
  }
}

TEST_F(Handshakes, D36_R02_DaneEeAcceptsSelfSignedLeaf) {
  const Cert self = leaf("mx.example.test", {"mx.example.test"}, nullptr);
  expect_verified(handshake(dane_policy({tlsa(self, 3, 0, 1)}), {&self}));
  expect_verified(handshake(dane_policy({tlsa(self, 3, 1, 2)}), {&self}));
}

TEST_F(Handshakes, D36_R02_DaneEeIgnoresNameMismatch) {
  const Cert stranger = leaf("other.example.net", {"other.example.net"}, other_ca_);
  const auto h = handshake(dane_policy({tlsa(stranger, 3, 1, 1)}), {&stranger});
  expect_verified(h);
  EXPECT_TRUE(h.report.peer_name.empty()) << "DANE-EE matched without any name check";
}

// --- DANE-TA: the CA in the chain, name checks (D-37, D-40, R-04, R-05, R-08) -----------------------

TEST_F(Handshakes, D40_R08_DaneTaRightNamePasses) {
  for (int selector : {0, 1}) {
    const auto h = handshake(dane_policy({tlsa(*ca_, 2, selector, 1)}), {leaf_, ca_});
    expect_verified(h);
    EXPECT_EQ(h.report.peer_name, "mx.example.test");
  }
}

TEST_F(Handshakes, D40_DaneTaWrongNameFails) {
  const Cert wrong = leaf("other.example.test", {"other.example.test"}, ca_);
  for (int selector : {0, 1}) {
    const auto h = handshake(dane_policy({tlsa(*ca_, 2, selector, 1)}), {&wrong, ca_});
    expect_rejected(h, X509_V_ERR_HOSTNAME_MISMATCH, 0);
    ASSERT_TRUE(h.report.verify_failure.has_value());
    EXPECT_EQ(h.report.verify_failure->error, X509_V_ERR_HOSTNAME_MISMATCH);
    EXPECT_NE(h.report.failure.find("name mismatch"), std::string::npos) << h.report.failure;
    EXPECT_NE(h.report.failure.find("mx.example.test"), std::string::npos) << h.report.failure;
  }
}

TEST_F(Handshakes, D40_DaneTaAcceptsNextHopDomainOnlyWhenMxSecure) {
  const Cert domain_cert = leaf("example.test", {"example.test"}, ca_);
  expect_verified(handshake(dane_policy({tlsa(*ca_, 2, 0, 1)}), {&domain_cert, ca_}));
  Where insecure;
  insecure.mx_insecure = true;
  const auto h = handshake(dane_policy({tlsa(*ca_, 2, 0, 1)}, insecure), {&domain_cert, ca_});
  expect_rejected(h, X509_V_ERR_HOSTNAME_MISMATCH, 0);
  EXPECT_EQ(h.report.failure, "server certificate name mismatch: none of mx.example.test matches")
      << "the next-hop domain is no reference identifier when the MX RRset is insecure";
}

TEST_F(Handshakes, D40_DaneTaAcceptsMxHostNameWhenBaseDomainIsItsExpansion) {
  // Insecure MX: the MX host name is a reference id besides the base domain (D-40).
  Where w;
  w.host = "mail.example.test";
  w.base = "mx.example.test";
  w.mx_insecure = true;
  const Cert mail = leaf("mail.example.test", {"mail.example.test"}, ca_);
  const auto h = handshake(dane_policy({tlsa(*ca_, 2, 1, 1)}, w), {&mail, ca_});
  EXPECT_TRUE(h.report.authenticated) << h.report.failure;
  EXPECT_EQ(h.report.trust, Trust::trusted) << "D-18";
}

TEST_F(Handshakes, R04_D37_DaneTaFailsWhenServerOmitsTheCa) {
  for (int selector : {0, 1}) {
    const auto h = handshake(dane_policy({tlsa(*ca_, 2, selector, 1)}), {leaf_});
    expect_rejected(h, X509_V_ERR_DANE_NO_MATCH);
    ASSERT_TRUE(h.report.verify_failure.has_value());
    EXPECT_EQ(h.report.verify_failure->error, X509_V_ERR_DANE_NO_MATCH);
    EXPECT_EQ(h.report.peer_chain_length, 1);
    EXPECT_NE(h.report.failure.find("chain incomplete"), std::string::npos) << h.report.failure;
  }
}

TEST_F(Handshakes, R04_DaneTaBareKeyVerifiesChainWithoutTheCa) {
  // RFC 7671 §5.2.3 [O]: a "2 1 0" record carries the whole key, so the CA need not be sent.
  const auto h = handshake(dane_policy({tlsa(*ca_, 2, 1, 0)}), {leaf_});
  expect_verified(h);
  EXPECT_TRUE(h.report.matched_public_key);
  EXPECT_NE(dane_match_line(h.report, kNamaddr).find("Matched DANE TA public key verified certificate at depth"), std::string::npos)
      << dane_match_line(h.report, kNamaddr);
}

TEST_F(Handshakes, D37_TaRecordThatHashesTheLeafFails) {
  expect_rejected(handshake(dane_policy({tlsa(*leaf_, 2, 0, 1)}), {leaf_, ca_}), X509_V_ERR_DANE_NO_MATCH);
  expect_rejected(handshake(dane_policy({tlsa(*leaf_, 2, 1, 1)}), {leaf_, ca_}), X509_V_ERR_DANE_NO_MATCH);
}

TEST_F(Handshakes, R05_DaneTaAnchorsAtPrivateIntermediate) {
  const Cert inner = leaf("mx.example.test", {"mx.example.test"}, intermediate_);
  const auto h = handshake(dane_policy({tlsa(*intermediate_, 2, 0, 1)}), {&inner, intermediate_});
  expect_verified(h);
  EXPECT_EQ(h.report.match_depth, 1);
}

TEST_F(Handshakes, D37_DaneTaAtRootWithIntermediateInChain) {
  const Cert inner = leaf("mx.example.test", {"mx.example.test"}, intermediate_);
  const auto h = handshake(dane_policy({tlsa(*ca_, 2, 1, 1)}), {&inner, intermediate_, ca_});
  expect_verified(h);
  EXPECT_EQ(h.report.match_depth, 2);
}

TEST_F(Handshakes, D37_DaneTaCertificateConstraintsApply) {
  // RFC 7672 §3.1.2 [S]: with selector Cert(0) the TA certificate's constraints apply. A root with
  // pathLenConstraint 0 may not have an intermediate below it (Stalwart dane_ta_rejects_path_len_violation).
  const Cert root = pki_->make_ca("pathlen 0 root", nullptr, 0);
  const Cert inter = pki_->make_ca("intermediate below pathlen 0", &root);
  const Cert inner = leaf("mx.example.test", {"mx.example.test"}, &inter);
  const auto h = handshake(dane_policy({tlsa(root, 2, 0, 1)}), {&inner, &inter, &root});
  expect_rejected(h, X509_V_ERR_PATH_LENGTH_EXCEEDED);
  ASSERT_TRUE(h.report.verify_failure.has_value());
  EXPECT_EQ(h.report.verify_failure->error, X509_V_ERR_PATH_LENGTH_EXCEEDED);
}

// --- Digest agility (R-07, D-42) --------------------------------------------------------------------

TEST_F(Handshakes, R07_GoodSha256BadSha512FailsWhenSha512Preferred) {
  const auto records = std::vector{tlsa(*leaf_, 3, 1, 1), corrupt(tlsa(*leaf_, 3, 1, 2))};
  const auto h = handshake(dane_policy(records), {leaf_, ca_});
  expect_rejected(h, X509_V_ERR_DANE_NO_MATCH);
  EXPECT_EQ(h.setup.tlsa_loaded, 1u) << "only the preferred (sha512) record is loaded";
}

TEST_F(Handshakes, R07_GoodSha256BadSha512PassesWithOnlySha256Configured) {
  const auto records = std::vector{tlsa(*leaf_, 3, 1, 1), corrupt(tlsa(*leaf_, 3, 1, 2))};
  auto client = client_ctx({"sha256"});
  const auto h = handshake(dane_policy(records, {}, {"sha256"}), {leaf_, ca_}, client.get());
  expect_verified(h);
  EXPECT_EQ(h.report.matched->matching_type, 1);
}

TEST_F(Handshakes, R07_OpenSslAgilityAgreesWithThePolicy) {
  // Bypass the policy's agility: load both records; the context's digest order must make OpenSSL
  // itself ignore the weaker sha256 record (SSL_CTX_dane_mtype_set ordinals).
  auto policy = dane_policy({tlsa(*leaf_, 3, 1, 1)});
  policy.usable = {tlsa(*leaf_, 3, 1, 1), corrupt(tlsa(*leaf_, 3, 1, 2))};
  const auto h = handshake(policy, {leaf_, ca_});
  EXPECT_EQ(h.setup.tlsa_loaded, 2u);
  expect_rejected(h, X509_V_ERR_DANE_NO_MATCH);
  // With sha512 disabled in the context, OpenSSL refuses the 3 1 2 record (counted, no crash).
  auto sha256_only = client_ctx({"sha256"});
  const auto h2 = handshake(policy, {leaf_, ca_}, sha256_only.get());
  EXPECT_EQ(h2.setup.tlsa_loaded, 1u);
  EXPECT_EQ(h2.setup.tlsa_rejected, 1u);
  expect_verified(h2);
}

// --- Unusable and mixed RRsets (D-11, D-33, D-38) ---------------------------------------------------

TEST_F(Handshakes, D33_D38_AllUnusableRrsetIsEncryptedButUntrusted) {
  const auto policy = dane_policy({tlsa(*ca_, 0, 0, 1), tlsa(*leaf_, 1, 1, 1)});
  ASSERT_EQ(policy.requirement, Requirement::encrypt);
  const auto h = handshake(policy, {leaf_, ca_});
  EXPECT_TRUE(h.report.established) << h.client_error;
  EXPECT_FALSE(h.report.authenticated);
  EXPECT_EQ(h.report.trust, Trust::untrusted) << "the test CA is not in the system store";
  EXPECT_EQ(summary_line(h.report, kNamaddr).rfind("Untrusted TLS connection established to mx.example.test[127.0.0.1]:25: ", 0), 0u);
}

TEST_F(Handshakes, D38_MatchingPkixEeRecordDoesNotAuthenticate) {
  // A correct "1 1 1" next to a wrong "3 1 1": only the DANE-EE record counts, and it fails.
  const auto policy = dane_policy({tlsa(*leaf_, 1, 1, 1), corrupt(tlsa(*leaf_, 3, 1, 1))});
  ASSERT_EQ(policy.requirement, Requirement::dane);
  const auto h = handshake(policy, {leaf_, ca_});
  expect_rejected(h, X509_V_ERR_DANE_NO_MATCH);
  EXPECT_EQ(h.setup.tlsa_loaded, 1u) << "the 1 1 1 record is not loaded (D-38)";
}

TEST_F(Handshakes, D38_PkixUsagesNeverReachOpenSsl) {
  // Even a policy that wrongly lists a usage-1 record does not get it loaded: encrypt, not DANE.
  auto policy = dane_policy({tlsa(*leaf_, 3, 1, 1)});
  policy.usable = {tlsa(*leaf_, 1, 1, 1)};
  const auto h = handshake(policy, {leaf_, ca_});
  EXPECT_EQ(h.setup.tlsa_loaded, 0u);
  EXPECT_EQ(h.setup.requirement, Requirement::encrypt);
  EXPECT_FALSE(h.report.authenticated);
}

TEST_F(Handshakes, D10_MixedUsableAndUnusableAuthenticates) {
  const auto policy = dane_policy({tlsa(*ca_, 0, 0, 1), tlsa(*leaf_, 3, 1, 1), tlsa(*leaf_, 1, 1, 1)});
  ASSERT_EQ(policy.requirement, Requirement::dane);
  EXPECT_EQ(policy.unusable, 2u);
  const auto h = handshake(policy, {leaf_, ca_});
  expect_verified(h);
  EXPECT_EQ(h.report.matched->usage, 3);
}

TEST_F(Handshakes, D33_MalformedRecordsNeverCrashAndCountAsUnusable) {
  // Records the policy cannot see through: Full(0) data with a valid outer SEQUENCE but garbage
  // inside (only OpenSSL's parser can tell).
  dns::TlsaRecord junk_cert{3, 0, 0, {0x30, 0x03, 0x02, 0x01, 0x00}};
  dns::TlsaRecord junk_key{2, 1, 0, {0x30, 0x03, 0x01, 0x01, 0xff}};
  const auto policy = dane_policy({junk_cert, junk_key});
  ASSERT_EQ(policy.requirement, Requirement::dane) << "structurally plausible, so the policy keeps them";
  const auto h = handshake(policy, {leaf_, ca_});
  EXPECT_EQ(h.setup.tlsa_loaded, 0u);
  EXPECT_EQ(h.setup.tlsa_rejected, 2u);
  EXPECT_EQ(h.setup.requirement, Requirement::encrypt) << "D-33: TLS required, nothing to authenticate with";
  EXPECT_TRUE(h.report.established);
  EXPECT_EQ(h.report.trust, Trust::untrusted);

  // Straight into OpenSSL, bypassing the policy: wrong lengths, unknown fields, empty data.
  HostPolicy raw = policy;
  raw.usable = {dns::TlsaRecord{3, 1, 1, std::vector<std::uint8_t>(31, 1)}, dns::TlsaRecord{3, 1, 2, std::vector<std::uint8_t>(32, 1)},
                dns::TlsaRecord{3, 1, 1, {}}, dns::TlsaRecord{3, 2, 1, std::vector<std::uint8_t>(32, 1)},
                dns::TlsaRecord{3, 1, 7, std::vector<std::uint8_t>(32, 1)}, dns::TlsaRecord{9, 1, 1, std::vector<std::uint8_t>(32, 1)},
                dns::TlsaRecord{3, 0, 0, {}}, dns::TlsaRecord{2, 0, 0, std::vector<std::uint8_t>(4000, 0x30)}};
  const auto h2 = handshake(raw, {leaf_, ca_});
  EXPECT_EQ(h2.setup.tlsa_loaded, 0u);
  EXPECT_EQ(h2.setup.tlsa_rejected, raw.usable.size());
  EXPECT_EQ(h2.setup.notes.size(), raw.usable.size());
  EXPECT_TRUE(h2.report.established);
  EXPECT_FALSE(h2.report.authenticated);
}

// --- Names: wildcards and SNI (D-41, D-43) ----------------------------------------------------------

TEST_F(Handshakes, D41_WildcardMatchesExactlyOneLabel) {
  const Cert wildcard = leaf("*.example.test", {"*.example.test"}, ca_);
  const auto ta = tlsa(*ca_, 2, 0, 1);
  expect_verified(handshake(dane_policy({ta}), {&wildcard, ca_}));
  Where deeper;
  deeper.host = deeper.base = "a.mx.example.test";
  deeper.domain = "recipient.test";  // so the next-hop reference id does not match instead
  expect_rejected(handshake(dane_policy({ta}, deeper), {&wildcard, ca_}), X509_V_ERR_HOSTNAME_MISMATCH, 0);
  Where apex;
  apex.host = apex.base = "example.test";
  apex.domain = "recipient.test";
  expect_rejected(handshake(dane_policy({ta}, apex), {&wildcard, ca_}), X509_V_ERR_HOSTNAME_MISMATCH, 0);
}

TEST_F(Handshakes, D41_PartialLabelWildcardIsRejected) {
  const Cert partial = leaf("mx*.example.test", {"mx*.example.test"}, ca_);
  Where w;
  w.host = w.base = "mx1.example.test";
  w.domain = "recipient.test";
  expect_rejected(handshake(dane_policy({tlsa(*ca_, 2, 0, 1)}, w), {&partial, ca_}), X509_V_ERR_HOSTNAME_MISMATCH, 0);
}

TEST_F(Handshakes, D41_SanDnsNamesOverrideTheCommonName) {
  const Cert cn_only_match = leaf("mx.example.test", {"other.example.test"}, ca_);
  expect_rejected(handshake(dane_policy({tlsa(*ca_, 2, 0, 1)}), {&cn_only_match, ca_}), X509_V_ERR_HOSTNAME_MISMATCH, 0);
}

TEST_F(Handshakes, D41_CommonNameIsUsedWhenThereAreNoDnsIds) {
  const Cert cn_only = leaf("mx.example.test", {}, ca_);
  expect_verified(handshake(dane_policy({tlsa(*ca_, 2, 0, 1)}), {&cn_only, ca_}));
  const Cert cn_wrong = leaf("other.example.test", {}, ca_);
  expect_rejected(handshake(dane_policy({tlsa(*ca_, 2, 0, 1)}), {&cn_wrong, ca_}), X509_V_ERR_HOSTNAME_MISMATCH, 0);
}

TEST_F(Handshakes, D43_SniSentIsTheTlsaBaseDomain) {
  Where w;
  w.host = "mail.example.test";
  w.base = "mx.example.test";
  const auto h = handshake(dane_policy({tlsa(*leaf_, 3, 1, 1)}, w), {leaf_, ca_});
  expect_verified(h);
  EXPECT_EQ(h.sni_seen, "mx.example.test");
}

// --- Cipher suites and protocol (D-44, R-01) --------------------------------------------------------

TEST_F(Handshakes, D44_AnonymousOnlyServerFails) {
  ServerOptions anon;
  anon.cipher_list = "aNULL";
  anon.max_version = TLS1_2_VERSION;
  anon.security_level = 0;
  const auto h = handshake(level_policy(config::TlsLevel::encrypt), {}, nullptr, anon);
  expect_handshake_failure(h, "alert handshake failure", "no shared cipher");
  EXPECT_FALSE(h.server_error.empty());
  EXPECT_NE(h.report.failure.find("TLS handshake failed"), std::string::npos) << h.report.failure;
}

TEST_F(Handshakes, R01_ServerLimitedToTls11IsRefused) {
  ServerOptions old;
  old.max_version = TLS1_1_VERSION;
  old.security_level = 0;
  old.cipher_list = "DEFAULT:@SECLEVEL=0";
  const auto h = handshake(level_policy(config::TlsLevel::encrypt), {leaf_, ca_}, nullptr, old);
  expect_handshake_failure(h, "alert protocol version", "unsupported protocol");
}

TEST_F(Handshakes, R01_MinProtocolTls13IsEnforced) {
  config::TlsClientSettings s;
  s.min_protocol = "TLSv1.3";
  auto client = make_client_context(s);
  ServerOptions tls12;
  tls12.max_version = TLS1_2_VERSION;
  expect_handshake_failure(handshake(level_policy(config::TlsLevel::encrypt), {leaf_, ca_}, client.get(), tls12),
                           "alert protocol version", "unsupported protocol");
  EXPECT_TRUE(handshake(level_policy(config::TlsLevel::encrypt), {leaf_, ca_}, client.get()).report.established);
}

// --- PKIX levels (verify, secure) ---------------------------------------------------------------------

TEST_F(Handshakes, VerifyWithFixtureCaAsTrustStorePasses) {
  auto client = client_ctx({"sha512", "sha256"}, ca_->cert_file);
  const auto h = handshake(level_policy(config::TlsLevel::verify), {leaf_, ca_}, client.get());
  expect_verified(h);
  EXPECT_EQ(h.report.peer_name, "mx.example.test");
  EXPECT_FALSE(h.report.matched.has_value());
}

TEST_F(Handshakes, VerifyWithUnknownCaFails) {
  const Cert foreign = leaf("mx.example.test", {"mx.example.test"}, other_ca_);
  auto client = client_ctx({"sha512", "sha256"}, ca_->cert_file);
  const auto h = handshake(level_policy(config::TlsLevel::verify), {&foreign, other_ca_}, client.get());
  expect_rejected(h, X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN, 1);
  EXPECT_EQ(h.report.verify_failure->subject, "/CN=unknown CA");
  const std::string line = verify_failure_line(h.report, kNamaddr);
  EXPECT_NE(line.find("certificate verification failed for mx.example.test[127.0.0.1]:25"), std::string::npos) << line;
}

TEST_F(Handshakes, VerifyWithSystemStoreRejectsThePrivateCa) {
  const auto h = handshake(level_policy(config::TlsLevel::verify), {leaf_, ca_});
  expect_rejected(h, X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN, 1);
  EXPECT_EQ(h.report.verify_failure->subject, "/CN=danerelay DANE test root");
}

TEST_F(Handshakes, VerifyWithWrongNameFails) {
  const Cert other = leaf("other.example.test", {"other.example.test"}, ca_);
  auto client = client_ctx({"sha512", "sha256"}, ca_->cert_file);
  const auto h = handshake(level_policy(config::TlsLevel::verify), {&other, ca_}, client.get());
  expect_rejected(h, X509_V_ERR_HOSTNAME_MISMATCH, 0);
  EXPECT_EQ(h.report.verify_failure->error, X509_V_ERR_HOSTNAME_MISMATCH);
}

TEST_F(Handshakes, VerifyAcceptsConfiguredMatchName) {
  const Cert other = leaf("other.example.test", {"other.example.test"}, ca_);
  auto client = client_ctx({"sha512", "sha256"}, ca_->cert_file);
  expect_verified(handshake(level_policy(config::TlsLevel::verify, {}, {"other.example.test"}), {&other, ca_}, client.get()));
}

TEST_F(Handshakes, SecureMatchesNextHopSubdomainsWithFixtureCa) {
  auto client = client_ctx({"sha512", "sha256"}, ca_->cert_file);
  const auto h = handshake(level_policy(config::TlsLevel::secure), {leaf_, ca_}, client.get());
  expect_verified(h);
  const Cert elsewhere = leaf("mx.example.net", {"mx.example.net"}, ca_);
  expect_rejected(handshake(level_policy(config::TlsLevel::secure), {&elsewhere, ca_}, client.get()), X509_V_ERR_HOSTNAME_MISMATCH, 0);
}

TEST_F(Handshakes, SecureWithUnknownCaFails) {
  auto client = client_ctx({"sha512", "sha256"}, other_ca_->cert_file);
  const auto h = handshake(level_policy(config::TlsLevel::secure), {leaf_, ca_}, client.get());
  expect_rejected(h, X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN, 1);
  EXPECT_EQ(h.report.verify_failure->subject, "/CN=danerelay DANE test root");
}

TEST_F(Handshakes, EncryptWithTrustedChainReportsTrusted) {
  // Postfix semantics: a CA-valid chain whose name was not checked is "Trusted".
  auto client = client_ctx({"sha512", "sha256"}, ca_->cert_file);
  const auto h = handshake(level_policy(config::TlsLevel::encrypt), {leaf_, ca_}, client.get());
  EXPECT_TRUE(h.report.established);
  EXPECT_EQ(h.report.trust, Trust::trusted);
  EXPECT_FALSE(h.report.authenticated);
}

// --- The peer report (D-18 and Postfix's log lines) --------------------------------------------------

TEST_F(Handshakes, D18_DaneWithInsecureMxIsTrustedNotVerified) {
  Where w;
  w.mx_insecure = true;
  const auto h = handshake(dane_policy({tlsa(*leaf_, 3, 1, 1)}, w), {leaf_, ca_});
  EXPECT_TRUE(h.report.authenticated) << h.report.failure;
  EXPECT_EQ(h.report.trust, Trust::trusted);
  EXPECT_EQ(summary_line(h.report, kNamaddr).rfind("Trusted TLS connection established to ", 0), 0u);
}

TEST_F(Handshakes, SummaryLineHasPostfixFormat) {
  const auto record = tlsa(*leaf_, 3, 1, 1);
  const auto h = handshake(dane_policy({record}), {leaf_, ca_});
  expect_verified(h);
  EXPECT_EQ(summary_line(h.report, kNamaddr),
            "Verified TLS connection established to mx.example.test[127.0.0.1]:25: TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 "
            "(256/256 bits) key-exchange X25519 server-signature ECDSA (P-256) server-digest SHA256");
  std::string hex;
  for (auto b : record.data) {
    static constexpr char digits[] = "0123456789ABCDEF";
    hex += digits[b >> 4];
    hex += digits[b & 0xf];
  }
  EXPECT_EQ(dane_match_line(h.report, kNamaddr), "mx.example.test[127.0.0.1]:25: Matched DANE EE certificate at depth 0: 3 1 1 " + hex);
  EXPECT_EQ(summary_line(h.report, kNamaddr, true).rfind("Verified TLS connection reused to ", 0), 0u);
}

TEST_F(Handshakes, SummaryLineForTls12AndRsa) {
  const Cert rsa = leaf("mx.example.test", {"mx.example.test"}, ca_, Pki::LeafOptions::KeyType::rsa2048);
  ServerOptions tls12;
  tls12.max_version = TLS1_2_VERSION;
  const auto h = handshake(dane_policy({tlsa(rsa, 3, 1, 1)}), {&rsa, ca_}, nullptr, tls12);
  expect_verified(h);
  const std::string line = summary_line(h.report, kNamaddr);
  EXPECT_TRUE(std::regex_match(line, std::regex(R"(Verified TLS connection established to mx\.example\.test\[127\.0\.0\.1\]:25: )"
                                                R"(TLSv1\.2 with cipher ECDHE-RSA-[A-Z0-9-]+ \(\d+/\d+ bits\) key-exchange X25519 )"
                                                R"(server-signature RSA(-PSS)? \(2048 bits\) server-digest SHA256)")))
      << line;
}

TEST_F(Handshakes, LongFullRecordIsAbbreviatedInTheMatchLine) {
  const auto record = tlsa(*leaf_, 3, 0, 0);  // the whole certificate
  ASSERT_GT(record.data.size(), 64u);
  const auto h = handshake(dane_policy({record}), {leaf_, ca_});
  expect_verified(h);
  const std::string line = dane_match_line(h.report, kNamaddr);
  EXPECT_TRUE(std::regex_match(line, std::regex(R"(.*: 3 0 0 [0-9A-F]{64}\.\.\.[0-9A-F]{64})"))) << line;
}

TEST(PeerReportFormat, NamaddrIsPostfixStyle) {
  EXPECT_EQ(format_namaddr("mx.example.org", "192.0.2.1", 25), "mx.example.org[192.0.2.1]:25");
  EXPECT_EQ(format_namaddr("mx.example.org", "2001:db8::1", 2525), "mx.example.org[2001:db8::1]:2525");
  // Issue 10: an address-literal host is named by its address, as Postfix logs it.
  EXPECT_EQ(format_namaddr("[127.0.0.11]", "127.0.0.11", 25), "127.0.0.11[127.0.0.11]:25");
  EXPECT_EQ(format_namaddr("[IPv6:2001:db8::1]", "2001:db8::1", 25), "2001:db8::1[2001:db8::1]:25");
}

TEST(PeerReportFormat, TrustWords) {
  EXPECT_EQ(to_string(Trust::anonymous), "Anonymous");
  EXPECT_EQ(to_string(Trust::untrusted), "Untrusted");
  EXPECT_EQ(to_string(Trust::trusted), "Trusted");
  EXPECT_EQ(to_string(Trust::verified), "Verified");
}

// --- Client context and session setup errors ----------------------------------------------------------

TEST(ClientContext, RejectsUnknownSettings) {
  config::TlsClientSettings s;
  s.min_protocol = "TLSv1.1";
  EXPECT_THROW((void)make_client_context(s), TlsError);
  s = {};
  s.digest_order = {"sha384"};
  EXPECT_THROW((void)make_client_context(s), TlsError);
  s = {};
  s.ca_file = "/nonexistent/ca.pem";
  EXPECT_THROW((void)make_client_context(s), TlsError);
}

TEST(ClientContext, DigestOrdinalsFollowTheConfiguredOrder) {
  auto o = digest_ordinals({"sha512", "sha256"});
  ASSERT_EQ(o.size(), 2u);
  EXPECT_EQ(o[0].mtype, 1);
  EXPECT_EQ(o[0].ordinal, 1);
  EXPECT_EQ(o[1].mtype, 2);
  EXPECT_EQ(o[1].ordinal, 2);
  o = digest_ordinals({"sha256"});
  EXPECT_EQ(o[0].ordinal, 1);
  EXPECT_EQ(o[1].ordinal, 0) << "sha512 disabled";
}

TEST(DaneSession, RefusesPoliciesWithoutTls) {
  auto ctx = make_client_context({});
  SslPtr ssl(SSL_new(ctx.get()));
  HostPolicy p;
  p.requirement = Requirement::defer;
  EXPECT_THROW((void)configure_session(ssl.get(), p), std::invalid_argument);
  p.requirement = Requirement::none;
  EXPECT_THROW((void)configure_session(ssl.get(), p), std::invalid_argument);
}

TEST(DaneSession, P02_RefusesPkixWithoutReferenceIdentifiers) {
  auto ctx = make_client_context({});
  SslPtr ssl(SSL_new(ctx.get()));
  HostPolicy p;
  p.requirement = Requirement::pkix;
  EXPECT_THROW((void)configure_session(ssl.get(), p), std::invalid_argument)
      << "no names would accept any CA-signed certificate";
}

TEST(DaneSession, AnOpenSslFailureWhileLoadingTlsaFailsTheHost) {
  // Issue 10 item 6: SSL_dane_tlsa_add() < 0 is OpenSSL failing, not an unusable record. Here
  // DANE was never enabled on the SSL object, so OpenSSL returns -1 for every record; counting
  // that as "unusable" would turn the session into unauthenticated TLS (D-33) silently.
  auto ctx = make_client_context({});
  SslPtr ssl(SSL_new(ctx.get()));
  dns::TlsaRecord r;
  r.usage = 3;
  r.selector = 1;
  r.matching_type = 1;
  r.data.assign(32, 0xab);
  const std::vector<dns::TlsaRecord> records{r};
  SessionSetup setup;
  EXPECT_THROW(load_tlsa_records(ssl.get(), records, setup), TlsError);
  EXPECT_EQ(setup.tlsa_loaded, 0u);

  // The same record on a DANE-enabled SSL loads; a wrong-length digest is merely unusable (0).
  SslPtr enabled(SSL_new(ctx.get()));
  ASSERT_GT(SSL_dane_enable(enabled.get(), "mx.example.test"), 0);
  dns::TlsaRecord short_digest = r;
  short_digest.data.resize(20);
  const std::vector<dns::TlsaRecord> mixed{r, short_digest};
  SessionSetup ok;
  load_tlsa_records(enabled.get(), mixed, ok);
  EXPECT_EQ(ok.tlsa_loaded, 1u);
  EXPECT_EQ(ok.tlsa_rejected, 1u);
}

}  // namespace
}  // namespace danerelay::tls
