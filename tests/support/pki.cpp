// tests/support/pki.cpp — the test PKI of pki.hpp, on the OpenSSL 3 C API.
// Builds X.509 v3 certificates in memory and writes them (and their keys) as PEM files.
// Not a general certificate library: only the shapes DANE tests need (RFC 6698, RFC 7671 §5, RFC 5280).
#include "tests/support/pki.hpp"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <cctype>
#include <fstream>
#include <stdexcept>
#include <utility>

namespace danerelay::testsupport {
namespace {

using BioPtr = std::unique_ptr<BIO, decltype(&BIO_free_all)>;
using BignumPtr = std::unique_ptr<BIGNUM, decltype(&BN_free)>;
using ExtensionPtr = std::unique_ptr<X509_EXTENSION, decltype(&X509_EXTENSION_free)>;

// Drains the OpenSSL error queue into the message, so a failure says which call failed and why.
[[noreturn]] void throw_openssl(const std::string& what) {
  std::string message = what;
  while (const unsigned long code = ERR_get_error()) {
    char buffer[256];
    ERR_error_string_n(code, buffer, sizeof buffer);
    message += ": ";
    message += buffer;
  }
  throw std::runtime_error(message);
}

std::string bio_contents(BIO* bio) {
  char* data = nullptr;
  const long length = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<std::size_t>(length));
}

void write_file(const std::filesystem::path& path, const std::string& contents) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << contents;
  out.close();
  if (!out) throw std::runtime_error("cannot write " + path.string());
}

std::shared_ptr<EVP_PKEY> generate_key(Pki::LeafOptions::KeyType type) {
  EVP_PKEY* key = type == Pki::LeafOptions::KeyType::rsa2048 ? EVP_RSA_gen(2048)
                                                                   // EVP_EC_gen() casts const away (-Wcast-qual)
                                                                   : EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
  if (key == nullptr) throw_openssl("key generation failed");
  return {key, EVP_PKEY_free};
}

// RFC 5280 §4.1.2.2: positive, at most 20 octets; 159 random bits satisfy both.
void set_random_serial(X509* cert) {
  BignumPtr serial(BN_new(), BN_free);
  if (!serial || BN_rand(serial.get(), 159, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) != 1 ||
      BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(cert)) == nullptr) {
    throw_openssl("cannot set a serial number");
  }
}

void set_common_name(X509* cert, const std::string& common_name) {
  X509_NAME* name = X509_get_subject_name(cert);
  if (X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                 reinterpret_cast<const unsigned char*>(common_name.c_str()), -1, -1, 0) != 1) {
    throw_openssl("cannot set the common name '" + common_name + "'");
  }
}

void add_extension(X509* cert, X509V3_CTX* context, int nid, const std::string& value) {
  ExtensionPtr extension(X509V3_EXT_conf_nid(nullptr, context, nid, value.c_str()), X509_EXTENSION_free);
  if (!extension || X509_add_ext(cert, extension.get(), -1) != 1) {
    throw_openssl(std::string("cannot add extension ") + OBJ_nid2sn(nid) + "=" + value);
  }
}

// Everything common to CAs and leaves: version, serial, names, validity, key. The caller adds extensions
// and then calls sign_certificate.
std::shared_ptr<X509> new_certificate(const std::string& common_name, EVP_PKEY* key, const Cert* issuer,
                                      std::chrono::seconds not_before, std::chrono::seconds not_after) {
  std::shared_ptr<X509> cert(X509_new(), X509_free);
  if (!cert || X509_set_version(cert.get(), X509_VERSION_3) != 1) throw_openssl("X509_new failed");
  set_random_serial(cert.get());
  set_common_name(cert.get(), common_name);
  X509_NAME* issuer_name = issuer != nullptr ? X509_get_subject_name(issuer->x509.get())
                                             : X509_get_subject_name(cert.get());
  if (X509_set_issuer_name(cert.get(), issuer_name) != 1 ||
      X509_gmtime_adj(X509_getm_notBefore(cert.get()), static_cast<long>(not_before.count())) == nullptr ||
      X509_gmtime_adj(X509_getm_notAfter(cert.get()), static_cast<long>(not_after.count())) == nullptr ||
      X509_set_pubkey(cert.get(), key) != 1) {
    throw_openssl("cannot fill in certificate '" + common_name + "'");
  }
  return cert;
}

void sign_certificate(X509* cert, EVP_PKEY* signing_key) {
  if (X509_sign(cert, signing_key, EVP_sha256()) == 0) throw_openssl("X509_sign failed");
}

std::string sanitise(const std::string& common_name) {
  std::string out;
  for (const char c : common_name) {
    const auto u = static_cast<unsigned char>(c);
    out += (std::isalnum(u) != 0 || c == '.' || c == '-') ? c : '_';
  }
  return out.empty() ? std::string("cert") : out;
}

}  // namespace

std::string Cert::pem() const {
  BioPtr bio(BIO_new(BIO_s_mem()), BIO_free_all);
  if (!bio || PEM_write_bio_X509(bio.get(), x509.get()) != 1) throw_openssl("PEM_write_bio_X509 failed");
  return bio_contents(bio.get());
}

Pki::Pki(std::filesystem::path dir) : dir_(std::filesystem::absolute(dir)) { std::filesystem::create_directories(dir_); }

std::filesystem::path Pki::next_base_name(const std::string& common_name) {
  return dir_ / (std::to_string(++counter_) + "-" + sanitise(common_name));
}

void Pki::write_files(Cert& cert, const std::string& common_name) {
  const std::filesystem::path base = next_base_name(common_name);
  cert.cert_file = base.string() + ".crt";
  cert.key_file = base.string() + ".key";
  write_file(cert.cert_file, cert.pem());

  BioPtr bio(BIO_new(BIO_s_mem()), BIO_free_all);
  if (!bio || PEM_write_bio_PrivateKey(bio.get(), cert.key.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    throw_openssl("PEM_write_bio_PrivateKey failed");
  }
  write_file(cert.key_file, bio_contents(bio.get()));
  std::filesystem::permissions(cert.key_file, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
}

Cert Pki::make_ca(const std::string& common_name, const Cert* issuer, int path_len) {
  Cert ca;
  ca.key = generate_key(LeafOptions::KeyType::ec_p256);
  ca.x509 = new_certificate(common_name, ca.key.get(), issuer, -std::chrono::hours(24),
                            std::chrono::hours(24 * 3650));

  X509V3_CTX context;
  X509V3_set_ctx(&context, issuer != nullptr ? issuer->x509.get() : ca.x509.get(), ca.x509.get(), nullptr,
                 nullptr, 0);
  std::string basic = "critical,CA:TRUE";
  if (path_len >= 0) basic += ",pathlen:" + std::to_string(path_len);
  add_extension(ca.x509.get(), &context, NID_basic_constraints, basic);
  add_extension(ca.x509.get(), &context, NID_key_usage, "critical,keyCertSign,cRLSign");
  add_extension(ca.x509.get(), &context, NID_subject_key_identifier, "hash");
  // RFC 5280 §4.2.1.1: a self-signed root may omit the authority key identifier.
  if (issuer != nullptr) add_extension(ca.x509.get(), &context, NID_authority_key_identifier, "keyid:always");

  sign_certificate(ca.x509.get(), issuer != nullptr ? issuer->key.get() : ca.key.get());
  write_files(ca, common_name);
  return ca;
}

Cert Pki::make_leaf(const LeafOptions& options) {
  Cert leaf;
  leaf.key = generate_key(options.key_type);
  leaf.x509 = new_certificate(options.common_name, leaf.key.get(), options.issuer, options.not_before,
                              options.not_after);

  X509V3_CTX context;
  X509V3_set_ctx(&context, options.issuer != nullptr ? options.issuer->x509.get() : leaf.x509.get(),
                 leaf.x509.get(), nullptr, nullptr, 0);
  add_extension(leaf.x509.get(), &context, NID_basic_constraints, "critical,CA:FALSE");
  add_extension(leaf.x509.get(), &context, NID_key_usage,
                options.key_type == LeafOptions::KeyType::rsa2048 ? "critical,digitalSignature,keyEncipherment"
                                                                  : "critical,digitalSignature");
  add_extension(leaf.x509.get(), &context, NID_ext_key_usage, "serverAuth");
  add_extension(leaf.x509.get(), &context, NID_subject_key_identifier, "hash");
  if (options.issuer != nullptr) {
    add_extension(leaf.x509.get(), &context, NID_authority_key_identifier, "keyid:always");
  }
  if (!options.dns_names.empty()) {
    std::string san;
    for (const std::string& name : options.dns_names) san += (san.empty() ? "DNS:" : ",DNS:") + name;
    add_extension(leaf.x509.get(), &context, NID_subject_alt_name, san);
  }

  sign_certificate(leaf.x509.get(), options.issuer != nullptr ? options.issuer->key.get() : leaf.key.get());
  write_files(leaf, options.common_name);
  return leaf;
}

std::filesystem::path Pki::write_chain(const std::string& file_name, const std::vector<const Cert*>& chain) {
  std::string contents;
  for (const Cert* cert : chain) contents += cert->pem();
  const std::filesystem::path path = dir_ / file_name;
  write_file(path, contents);
  return path;
}

std::vector<std::uint8_t> tlsa_association(X509* cert, int selector, int matching_type) {
  if (selector != 0 && selector != 1) throw std::invalid_argument("TLSA selector must be 0 or 1");
  if (matching_type < 0 || matching_type > 2) throw std::invalid_argument("TLSA matching type must be 0, 1 or 2");

  // RFC 6698 §2.1.2: selector 0 is the whole Certificate, 1 the SubjectPublicKeyInfo, both DER.
  const int length = selector == 0 ? i2d_X509(cert, nullptr) : i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert), nullptr);
  if (length <= 0) throw_openssl("cannot DER-encode the certificate");
  std::vector<std::uint8_t> der(static_cast<std::size_t>(length));
  unsigned char* out = der.data();
  if (selector == 0) {
    i2d_X509(cert, &out);
  } else {
    i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert), &out);
  }
  if (matching_type == 0) return der;

  // RFC 6698 §2.1.3: 1 = SHA-256, 2 = SHA-512 of the selected content.
  std::vector<std::uint8_t> digest(EVP_MAX_MD_SIZE);
  unsigned int digest_length = 0;
  if (EVP_Digest(der.data(), der.size(), digest.data(), &digest_length,
                 matching_type == 1 ? EVP_sha256() : EVP_sha512(), nullptr) != 1) {
    throw_openssl("EVP_Digest failed");
  }
  digest.resize(digest_length);
  return digest;
}

std::string to_hex(std::span<const std::uint8_t> bytes) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (const std::uint8_t b : bytes) {
    out += digits[b >> 4];
    out += digits[b & 0x0f];
  }
  return out;
}

std::string tlsa_rdata(X509* cert, int usage, int selector, int matching_type) {
  if (usage < 0 || usage > 255) throw std::invalid_argument("TLSA usage must be 0..255");
  return std::to_string(usage) + " " + std::to_string(selector) + " " + std::to_string(matching_type) + " " +
         to_hex(tlsa_association(cert, selector, matching_type));
}

}  // namespace danerelay::testsupport
