// tests/support/pki.hpp — an in-process test PKI: root and intermediate CAs, server leaves, chain files,
// and the RFC 6698 certificate association data a TLSA record carries for them.
//
// For tests and the demo only: keys are unencrypted PEM files in a temporary directory, nothing is
// committed, nothing here is meant for production certificates. Uses the OpenSSL 3 C API directly
// (no openssl CLI), so a whole matrix of certificates costs milliseconds (RSA leaves: ~0.1 s each).
//
// What the certificates look like (what DANE-TA / DANE-EE tests need, RFC 7671 §5):
//   CA:   basicConstraints critical CA:TRUE[,pathlen:N]; keyUsage critical keyCertSign,cRLSign;
//         subject/authority key identifiers; EC P-256; valid now-1d … now+10y.
//   leaf: basicConstraints critical CA:FALSE; keyUsage digitalSignature(+keyEncipherment for RSA);
//         subjectAltName dNSName…; extendedKeyUsage serverAuth; validity from LeafOptions.
//   All:  random 159-bit serial, signed with SHA-256, X.509 v3.
//
// Errors (OpenSSL failures, unwritable files) throw std::runtime_error carrying the OpenSSL error queue;
// invalid arguments (selector/matching type out of range) throw std::invalid_argument.
#pragma once

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace danerelay::testsupport {

// A certificate and its private key. Copies share the OpenSSL objects (cheap, like the pointers they are).
struct Cert {
  std::shared_ptr<X509> x509;
  std::shared_ptr<EVP_PKEY> key;
  std::filesystem::path cert_file;  // PEM certificate written by Pki
  std::filesystem::path key_file;   // PEM (PKCS#8, unencrypted) private key written by Pki

  // The certificate in PEM form.
  [[nodiscard]] std::string pem() const;
};

class Pki {
 public:
  // Certificates and keys are written under dir (created if missing; made absolute, so are the paths in
  // Cert). The caller owns and removes dir.
  explicit Pki(std::filesystem::path dir);

  // A CA certificate with an EC P-256 key: a self-signed root when issuer is nullptr, else an intermediate
  // signed by *issuer. path_len >= 0 adds a pathLenConstraint.
  Cert make_ca(const std::string& common_name, const Cert* issuer = nullptr, int path_len = -1);

  struct LeafOptions {
    std::string common_name{};
    std::vector<std::string> dns_names{};  // subjectAltName dNSNames; may include wildcards ("*.example.test")
    const Cert* issuer = nullptr;        // nullptr → self-signed leaf (still CA:FALSE)
    std::chrono::seconds not_before = -std::chrono::hours(24);      // relative to now
    std::chrono::seconds not_after = std::chrono::hours(24 * 365);  // both negative → an expired certificate
    enum class KeyType { ec_p256, rsa2048 } key_type = KeyType::ec_p256;
  };
  Cert make_leaf(const LeafOptions& options);

  // Writes the PEM certificates of chain, in the order given (leaf first), to dir/file_name; returns the path.
  std::filesystem::path write_chain(const std::string& file_name, const std::vector<const Cert*>& chain);

  [[nodiscard]] const std::filesystem::path& dir() const { return dir_; }

 private:
  // dir_/<n>-<sanitised common name>; n keeps repeated names apart.
  std::filesystem::path next_base_name(const std::string& common_name);
  void write_files(Cert& cert, const std::string& common_name);

  std::filesystem::path dir_;
  unsigned counter_ = 0;
};

// RFC 6698 §2.1.2/§2.1.3: the certificate association data for selector 0 (full certificate DER) or
// 1 (SubjectPublicKeyInfo DER) and matching type 0 (exact: the DER itself), 1 (SHA-256) or 2 (SHA-512).
std::vector<std::uint8_t> tlsa_association(X509* cert, int selector, int matching_type);

// Lower-case hexadecimal, no separators.
std::string to_hex(std::span<const std::uint8_t> bytes);

// The presentation form of a TLSA RDATA, e.g. "3 1 1 <hex>", ready for a zone file (RFC 6698 §2.2).
std::string tlsa_rdata(X509* cert, int usage, int selector, int matching_type);

}  // namespace danerelay::testsupport
