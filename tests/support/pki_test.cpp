// tests/support/pki_test.cpp — proves the test PKI makes certificates that OpenSSL's verifier treats as
// intended (chains, expiry, self-signed, path length, names) and TLSA association data per RFC 6698 §2.1.
#include "tests/support/pki.hpp"

#include <gtest/gtest.h>

#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "tests/support/temp_dir.hpp"

namespace danerelay::testsupport {
namespace {

using StorePtr = std::unique_ptr<X509_STORE, decltype(&X509_STORE_free)>;
using StoreCtxPtr = std::unique_ptr<X509_STORE_CTX, decltype(&X509_STORE_CTX_free)>;
using StackPtr = std::unique_ptr<STACK_OF(X509), decltype([](STACK_OF(X509)* s) { sk_X509_free(s); })>;

// X509_V_OK or the verifier's error for leaf, trusting only the anchors, with untrusted intermediates.
int verify(const Cert& leaf, const std::vector<const Cert*>& anchors, const std::vector<const Cert*>& intermediates = {},
           unsigned long flags = 0) {
  StorePtr store(X509_STORE_new(), X509_STORE_free);
  X509_STORE_set_flags(store.get(), flags);
  for (const Cert* anchor : anchors) X509_STORE_add_cert(store.get(), anchor->x509.get());
  StackPtr untrusted(sk_X509_new_null());
  for (const Cert* cert : intermediates) sk_X509_push(untrusted.get(), cert->x509.get());
  StoreCtxPtr ctx(X509_STORE_CTX_new(), X509_STORE_CTX_free);
  X509_STORE_CTX_init(ctx.get(), store.get(), leaf.x509.get(), untrusted.get());
  X509_STORE_CTX_set_purpose(ctx.get(), X509_PURPOSE_SSL_SERVER);
  if (X509_verify_cert(ctx.get()) == 1) return X509_V_OK;
  return X509_STORE_CTX_get_error(ctx.get());
}

std::string read_text(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

std::vector<std::uint8_t> spki_der(X509* cert) {
  const int length = i2d_PUBKEY(X509_get0_pubkey(cert), nullptr);
  std::vector<std::uint8_t> der(static_cast<std::size_t>(length));
  unsigned char* out = der.data();
  i2d_PUBKEY(X509_get0_pubkey(cert), &out);
  return der;
}

class TestPki : public testing::Test {
 protected:
  TempDir dir_{"danerelay-pki"};
  Pki pki_{dir_.path()};
};

TEST_F(TestPki, LeafFromRootVerifies) {
  const Cert root = pki_.make_ca("Test Root");
  const Cert leaf = pki_.make_leaf({.common_name = "mx1.example.test", .dns_names = {"mx1.example.test"}, .issuer = &root});
  EXPECT_EQ(verify(leaf, {&root}), X509_V_OK);
  EXPECT_EQ(X509_check_host(leaf.x509.get(), "mx1.example.test", 0, 0, nullptr), 1);
  EXPECT_EQ(X509_check_host(leaf.x509.get(), "mx2.example.test", 0, 0, nullptr), 0);
  EXPECT_EQ(X509_check_ca(root.x509.get()), 1);
  EXPECT_EQ(X509_check_ca(leaf.x509.get()), 0);
  EXPECT_NE(X509_get_extended_key_usage(leaf.x509.get()) & XKU_SSL_SERVER, 0U);
}

TEST_F(TestPki, LeafFromIntermediateNeedsTheIntermediate) {
  const Cert root = pki_.make_ca("Test Root");
  const Cert intermediate = pki_.make_ca("Test Intermediate", &root, 0);
  const Cert leaf = pki_.make_leaf({.common_name = "mx", .dns_names = {"*.example.test"}, .issuer = &intermediate});
  EXPECT_EQ(verify(leaf, {&root}, {&intermediate}), X509_V_OK);
  EXPECT_EQ(verify(leaf, {&root}), X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY);
  // A trusted intermediate is an anchor by itself only with X509_V_FLAG_PARTIAL_CHAIN (as DANE-TA uses it).
  EXPECT_EQ(verify(leaf, {&intermediate}), X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT);
  EXPECT_EQ(verify(leaf, {&intermediate}, {}, X509_V_FLAG_PARTIAL_CHAIN), X509_V_OK);
  EXPECT_EQ(X509_check_host(leaf.x509.get(), "mx7.example.test", 0, 0, nullptr), 1);  // wildcard SAN
}

TEST_F(TestPki, PathLengthConstraintIsEnforced) {
  const Cert root = pki_.make_ca("Test Root");
  const Cert first = pki_.make_ca("Intermediate pathlen 0", &root, 0);
  const Cert second = pki_.make_ca("Intermediate below it", &first);
  const Cert leaf = pki_.make_leaf({.common_name = "mx", .dns_names = {"mx.example.test"}, .issuer = &second});
  EXPECT_EQ(verify(leaf, {&root}, {&first, &second}), X509_V_ERR_PATH_LENGTH_EXCEEDED);
}

TEST_F(TestPki, ExpiredLeafFailsVerification) {
  const Cert root = pki_.make_ca("Test Root");
  const Cert leaf = pki_.make_leaf({.common_name = "old",
                                    .dns_names = {"old.example.test"},
                                    .issuer = &root,
                                    .not_before = -std::chrono::hours(24 * 60),
                                    .not_after = -std::chrono::hours(24 * 30)});
  EXPECT_EQ(verify(leaf, {&root}), X509_V_ERR_CERT_HAS_EXPIRED);
}

TEST_F(TestPki, SelfSignedLeafIsNotTrusted) {
  const Cert leaf = pki_.make_leaf({.common_name = "self", .dns_names = {"self.example.test"}});
  EXPECT_EQ(verify(leaf, {}), X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT);
  EXPECT_EQ(X509_self_signed(leaf.x509.get(), 1), 1);
  EXPECT_EQ(X509_check_ca(leaf.x509.get()), 0);
}

TEST_F(TestPki, RsaLeafHasAnRsaKey) {
  const Cert root = pki_.make_ca("Test Root");
  Pki::LeafOptions options{.common_name = "rsa", .dns_names = {"rsa.example.test"}, .issuer = &root};
  options.key_type = Pki::LeafOptions::KeyType::rsa2048;
  const Cert leaf = pki_.make_leaf(options);
  EXPECT_EQ(EVP_PKEY_get_base_id(leaf.key.get()), EVP_PKEY_RSA);
  EXPECT_EQ(EVP_PKEY_get_bits(leaf.key.get()), 2048);
  EXPECT_EQ(verify(leaf, {&root}), X509_V_OK);
}

TEST_F(TestPki, SerialNumbersDiffer) {
  const Cert a = pki_.make_leaf({.common_name = "same"});
  const Cert b = pki_.make_leaf({.common_name = "same"});
  EXPECT_NE(ASN1_INTEGER_cmp(X509_get0_serialNumber(a.x509.get()), X509_get0_serialNumber(b.x509.get())), 0);
  EXPECT_NE(a.cert_file, b.cert_file);
}

TEST_F(TestPki, FilesRoundTrip) {
  const Cert root = pki_.make_ca("Test Root");
  const Cert leaf = pki_.make_leaf({.common_name = "mx", .dns_names = {"mx.example.test"}, .issuer = &root});
  EXPECT_EQ(read_text(leaf.cert_file), leaf.pem());

  std::unique_ptr<FILE, decltype(&std::fclose)> key_file(std::fopen(leaf.key_file.c_str(), "r"), std::fclose);
  ASSERT_TRUE(key_file);
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(PEM_read_PrivateKey(key_file.get(), nullptr, nullptr, nullptr),
                                                          EVP_PKEY_free);
  ASSERT_TRUE(key);
  EXPECT_EQ(EVP_PKEY_eq(key.get(), leaf.key.get()), 1);
  EXPECT_EQ(X509_check_private_key(leaf.x509.get(), key.get()), 1);

  const std::filesystem::path chain = pki_.write_chain("chain.pem", {&leaf, &root});
  EXPECT_EQ(read_text(chain), leaf.pem() + root.pem());
}

TEST_F(TestPki, TlsaAssociationLengths) {
  const Cert leaf = pki_.make_leaf({.common_name = "mx", .dns_names = {"mx.example.test"}});
  X509* cert = leaf.x509.get();
  EXPECT_EQ(tlsa_association(cert, 0, 1).size(), 32U);
  EXPECT_EQ(tlsa_association(cert, 1, 1).size(), 32U);
  EXPECT_EQ(tlsa_association(cert, 0, 2).size(), 64U);
  EXPECT_EQ(tlsa_association(cert, 1, 2).size(), 64U);
  EXPECT_EQ(tlsa_association(cert, 0, 0).size(), static_cast<std::size_t>(i2d_X509(cert, nullptr)));
  EXPECT_EQ(tlsa_association(cert, 1, 0), spki_der(cert));
  EXPECT_THROW(tlsa_association(cert, 2, 1), std::invalid_argument);
  EXPECT_THROW(tlsa_association(cert, 1, 3), std::invalid_argument);
}

TEST_F(TestPki, DaneEeRdataIsSha256OfTheSpki) {
  const Cert leaf = pki_.make_leaf({.common_name = "mx", .dns_names = {"mx.example.test"}});
  const std::vector<std::uint8_t> der = spki_der(leaf.x509.get());
  unsigned char digest[32];
  ASSERT_EQ(EVP_Digest(der.data(), der.size(), digest, nullptr, EVP_sha256(), nullptr), 1);
  EXPECT_EQ(tlsa_rdata(leaf.x509.get(), 3, 1, 1), "3 1 1 " + to_hex(digest));
}

TEST(ToHex, IsLowerCaseWithoutSeparators) {
  const std::uint8_t bytes[] = {0x00, 0x0f, 0xab, 0xff};
  EXPECT_EQ(to_hex(bytes), "000fabff");
  EXPECT_EQ(to_hex({}), "");
}

}  // namespace
}  // namespace danerelay::testsupport
