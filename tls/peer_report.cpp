// tls/peer_report.cpp — see peer_report.hpp. Wording follows Postfix exactly (tls_misc.c
// tls_log_summary and tls_get_signature_params, tls_dane.c tls_dane_log, tls_verify.c
// tls_log_verify_error): log parsers match these lines (ecosystem §2, §9.2).
#include "tls/peer_report.hpp"


#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509_vfy.h>

#include <algorithm>
#include <array>

#include "smtp/syntax.hpp"

namespace danerelay::tls {

namespace {

// Postfix hex_encode: upper case; data over 64 octets as first 32 "..." last 32 (tls_dane.c).
constexpr std::size_t kMaxHead = 32;
constexpr std::size_t kMaxTail = 32;

std::string upper_hex(const std::uint8_t* data, std::size_t len) {
  static constexpr char digits[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(2 * len);
  for (std::size_t i = 0; i < len; ++i) {
    out += digits[data[i] >> 4];
    out += digits[data[i] & 0xf];
  }
  return out;
}

std::string dump(const std::vector<std::uint8_t>& data) {
  if (data.empty()) return "...";
  if (data.size() > kMaxHead + kMaxTail) {
    return upper_hex(data.data(), kMaxHead) + "..." + upper_hex(data.data() + data.size() - kMaxTail, kMaxTail);
  }
  return upper_hex(data.data(), data.size());
}

// "P-256" for prime256v1 (EC_curve_nid2nist), else the group's short name.
std::string curve_name(const EVP_PKEY* pkey) {
  std::array<char, 80> group{};
  std::size_t len = 0;
  if (EVP_PKEY_get_group_name(pkey, group.data(), group.size(), &len) != 1) return {};
  const int nid = OBJ_txt2nid(group.data());
  if (const char* nist = nid == NID_undef ? nullptr : EC_curve_nid2nist(nid)) return nist;
  return group.data();
}

// Key exchange, as Postfix tls_get_signature_params: DHE (bits), ECDHE (curve), else the
// algorithm's short name ("X25519", "X448").
void read_key_exchange(SSL* ssl, PeerReport& r) {
  EVP_PKEY* tmp = nullptr;
  if (SSL_get_peer_tmp_key(ssl, &tmp) != 1 || tmp == nullptr) return;
  const EvpPkeyPtr key(tmp);
  if (EVP_PKEY_is_a(key.get(), "DH")) {
    r.kex_name = "DHE";
    r.kex_bits = EVP_PKEY_get_bits(key.get());
  } else if (EVP_PKEY_is_a(key.get(), "EC")) {
    r.kex_name = "ECDHE";
    r.kex_curve = curve_name(key.get());
  } else if (const char* name = EVP_PKEY_get0_type_name(key.get())) {
    r.kex_name = name;
  }
}

void read_signature(SSL* ssl, PeerReport& r) {
  X509* peer = SSL_get0_peer_certificate(ssl);
  if (peer == nullptr) return;
  EVP_PKEY* pkey = X509_get0_pubkey(peer);
  if (pkey == nullptr) return;
  int nid = NID_undef;
  if (SSL_get_peer_signature_type_nid(ssl, &nid) != 1 || nid == NID_undef) nid = EVP_PKEY_get_base_id(pkey);
  switch (nid) {
    case EVP_PKEY_RSA:
      r.sig_name = "RSA";
      r.sig_bits = EVP_PKEY_get_bits(pkey);
      break;
    case EVP_PKEY_RSA_PSS:
      r.sig_name = "RSA-PSS";
      r.sig_bits = EVP_PKEY_get_bits(pkey);
      break;
    case EVP_PKEY_EC:
      r.sig_name = "ECDSA";
      r.sig_curve = curve_name(pkey);
      break;
    default:
      if (const char* sn = OBJ_nid2sn(nid)) r.sig_name = sn;
      break;
  }
  int digest = NID_undef;
  if (SSL_get_peer_signature_nid(ssl, &digest) == 1 && digest != NID_undef) {
    if (const char* sn = OBJ_nid2sn(digest)) r.sig_digest = sn;
  }
}

std::string join(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

// The failure in plain words, for the deferral reason ("Server certificate not verified: …").
std::string explain(long error, int depth, const HostPolicy& policy, const PeerReport& r) {
  const std::optional<VerifyFailure>& f = r.verify_failure;
  const std::string at = depth >= 0 ? " (depth " + std::to_string(depth) + ")" : "";
  switch (error) {
    case X509_V_ERR_DANE_NO_MATCH: {
      // R-04 / D-37: DANE-TA needs the TA certificate in the server's chain (RFC 7671 §5.2.2).
      const bool ta_only = !policy.usable.empty() && std::all_of(policy.usable.begin(), policy.usable.end(),
                                                                 [](const dns::TlsaRecord& t) { return t.usage == 2; });
      if (ta_only && r.peer_chain_length == 1) {
        return "no TLSA record matches the server certificate chain: chain incomplete, the server sent no CA "
               "certificate for the DANE-TA record(s) to match";
      }
      return "no TLSA record matches the server certificate chain";
    }
    case X509_V_ERR_HOSTNAME_MISMATCH:
      return "server certificate name mismatch: none of " + join(policy.reference_ids) + " matches";
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
      return "certificate chain incomplete or untrusted: issuer " + (f ? f->issuer : std::string("<unknown>")) +
             " not found" + at;
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN: return "self-signed certificate not trusted" + at;
    case X509_V_ERR_CERT_HAS_EXPIRED: return "certificate has expired" + at;
    case X509_V_ERR_CERT_NOT_YET_VALID: return "certificate not yet valid" + at;
    default: return X509_verify_cert_error_string(error) + at;
  }
}

}  // namespace

std::string_view to_string(Trust trust) noexcept {
  switch (trust) {
    case Trust::anonymous: return "Anonymous";
    case Trust::untrusted: return "Untrusted";
    case Trust::trusted: return "Trusted";
    case Trust::verified: return "Verified";
  }
  return "Untrusted";
}

PeerReport inspect_peer(SSL* ssl, const HostPolicy& policy, const SessionSetup& setup, std::string_view handshake_error) {
  PeerReport r;
  r.requirement = setup.requirement;
  r.established = SSL_is_init_finished(ssl) == 1;
  r.verify_result = SSL_get_verify_result(ssl);
  r.verify_failure = verify_failure(ssl);
  if (const char* name = SSL_get0_peername(ssl)) r.peer_name = name;
  if (STACK_OF(X509)* chain = SSL_get_peer_cert_chain(ssl)) r.peer_chain_length = sk_X509_num(chain);

  // DANE authority: depth of the matching certificate, and the record (RFC 7671 §5).
  EVP_PKEY* mspki = nullptr;
  if (SSL_get0_dane_authority(ssl, nullptr, &mspki) >= 0) {
    std::uint8_t u = 0, s = 0, m = 0;
    const unsigned char* data = nullptr;
    std::size_t len = 0;
    r.match_depth = SSL_get0_dane_tlsa(ssl, &u, &s, &m, &data, &len);
    if (r.match_depth >= 0) {
      dns::TlsaRecord rec;
      rec.usage = u;
      rec.selector = s;
      rec.matching_type = m;
      rec.data.assign(data, data + len);
      r.matched = std::move(rec);
      r.matched_public_key = mspki != nullptr;
    }
  }

  const bool chain_ok = r.verify_result == X509_V_OK;
  switch (r.requirement) {
    case Requirement::dane: r.authenticated = r.established && chain_ok && r.matched.has_value(); break;
    case Requirement::pkix: r.authenticated = r.established && chain_ok; break;
    default: r.authenticated = false; break;
  }

  if (r.established) {
    if (const char* v = SSL_get_version(ssl)) r.protocol = v;
    if (const SSL_CIPHER* c = SSL_get_current_cipher(ssl)) {
      r.cipher = SSL_CIPHER_get_name(c);
      r.cipher_bits = SSL_CIPHER_get_bits(c, &r.cipher_alg_bits);
    }
    read_key_exchange(ssl, r);
    read_signature(ssl, r);
    if (SSL_get0_peer_certificate(ssl) == nullptr) {
      r.trust = Trust::anonymous;
    } else if (r.authenticated) {
      // D-18 (RFC 7672 §2.2.1): DANE with an insecure MX RRset is never "Verified".
      r.trust = (r.requirement == Requirement::dane && policy.mx_insecure) ? Trust::trusted : Trust::verified;
    } else {
      r.trust = chain_ok ? Trust::trusted : Trust::untrusted;
    }
  }

  const bool must_authenticate = r.requirement == Requirement::dane || r.requirement == Requirement::pkix;
  if (must_authenticate && !r.authenticated) {
    const long error = r.verify_failure ? r.verify_failure->error : r.verify_result;
    const int depth = r.verify_failure ? r.verify_failure->depth : -1;
    if (error != X509_V_OK) {
      r.failure = explain(error, depth, policy, r);
    } else if (!handshake_error.empty()) {
      r.failure = "TLS handshake failed: " + std::string(handshake_error);
    } else {
      r.failure = "server certificate not verified";
    }
  } else if (!r.established) {
    r.failure = handshake_error.empty() ? "TLS handshake failed" : "TLS handshake failed: " + std::string(handshake_error);
  }
  return r;
}

std::string format_namaddr(std::string_view host, std::string_view address, std::uint16_t port) {
  // An address-literal host ("[127.0.0.11]", "[IPv6:::1]") is named by its address, as Postfix
  // logs it: relay=127.0.0.11[127.0.0.11]:25, never [127.0.0.11][127.0.0.11]:25.
  return std::string(syntax::literal_address_or_name(host)) + "[" + std::string(address) + "]:" + std::to_string(port);
}

std::string summary_line(const PeerReport& r, std::string_view namaddr, bool reused) {
  if (!r.established) return {};
  std::string line = std::string(to_string(r.trust)) + " TLS connection " + (reused ? "reused" : "established") + " to " +
                     std::string(namaddr) + ": " + r.protocol + " with cipher " + r.cipher + " (" +
                     std::to_string(r.cipher_bits) + "/" + std::to_string(r.cipher_alg_bits) + " bits)";
  if (!r.kex_name.empty()) {
    line += " key-exchange " + r.kex_name;
    if (!r.kex_curve.empty()) {
      line += " (" + r.kex_curve + ")";
    } else if (r.kex_bits > 0) {
      line += " (" + std::to_string(r.kex_bits) + " bits)";
    }
  }
  if (!r.sig_name.empty()) {
    line += " server-signature " + r.sig_name;
    if (!r.sig_curve.empty()) {
      line += " (" + r.sig_curve + ")";
    } else if (r.sig_bits > 0) {
      line += " (" + std::to_string(r.sig_bits) + " bits)";
    }
    if (!r.sig_digest.empty()) line += " server-digest " + r.sig_digest;
  }
  return line;
}

std::string dane_match_line(const PeerReport& r, std::string_view namaddr) {
  if (!r.matched) return {};
  const char* what = r.matched_public_key ? "TA public key verified certificate"
                     : r.match_depth > 0  ? "TA certificate"
                                          : "EE certificate";
  return std::string(namaddr) + ": Matched DANE " + what + " at depth " + std::to_string(r.match_depth) + ": " +
         std::to_string(r.matched->usage) + " " + std::to_string(r.matched->selector) + " " +
         std::to_string(r.matched->matching_type) + " " + dump(r.matched->data);
}

std::string verify_failure_line(const PeerReport& r, std::string_view namaddr) {
  if (!r.verify_failure || r.verify_failure->error == X509_V_OK) return {};
  const VerifyFailure& f = *r.verify_failure;
  const std::string purpose = f.depth > 0 ? "CA" : "server";
  const std::string where(namaddr);
  switch (f.error) {
    case X509_V_ERR_CERT_UNTRUSTED:
      return "certificate verification failed for " + where + ": not trusted by local or TLSA policy";
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
      return "certificate verification failed for " + where + ": self-signed certificate";
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
      return "certificate verification failed for " + where + ": untrusted issuer " +
             (f.issuer.empty() ? std::string("<unknown>") : f.issuer);
    case X509_V_ERR_CERT_NOT_YET_VALID:
    case X509_V_ERR_ERROR_IN_CERT_NOT_BEFORE_FIELD:
      return purpose + " certificate verification failed for " + where + ": certificate not yet valid";
    case X509_V_ERR_CERT_HAS_EXPIRED:
    case X509_V_ERR_ERROR_IN_CERT_NOT_AFTER_FIELD:
      return purpose + " certificate verification failed for " + where + ": certificate has expired";
    case X509_V_ERR_INVALID_PURPOSE:
      return "certificate verification failed for " + where + ": not designated for use as a " + purpose + " certificate";
    default:
      return purpose + " certificate verification failed for " + where + ": num=" + std::to_string(f.error) + ":" +
             X509_verify_cert_error_string(f.error);
  }
}

}  // namespace danerelay::tls
