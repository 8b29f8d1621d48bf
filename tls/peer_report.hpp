// tls/peer_report.hpp — what a TLS handshake achieved, in the words operators and log parsers
// expect (Postfix tls_misc.c tls_log_summary, tls_dane.c tls_dane_log, tls_verify.c).
//
// What this is: inspection after the handshake (successful or not) plus the exact log lines.
//   Verified   the certificate matched a usable TLSA record (DANE) or the CA store and a
//              reference identifier (verify/secure).
//   Trusted    authenticated by DANE while the MX RRset was insecure (RFC 7672 §2.2.1, D-18: never
//              reported as secure delivery), or a CA-valid chain whose name was not checked.
//   Untrusted  encrypted; the chain could not be verified (encrypt, may, dane with unusable TLSA).
//   Anonymous  no server certificate at all.
// (Postfix README_FILES/FORWARD_SECRECY_README, "What do Anonymous, Untrusted, etc. mean".)
// On failure, the report says why in plain words (no matching TLSA record, name mismatch, chain
// incomplete, ...) and as Postfix's "server certificate verification failed for …" line.
//
// What this is not: the decision to deliver. `authenticated` says whether the requirement's
// authentication succeeded; the delivery code turns a failure into 4.7.5 (one error policy).
#pragma once

#include <openssl/ssl.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "dns/types.hpp"
#include "tls/dane_session.hpp"
#include "tls/policy.hpp"

namespace danerelay::tls {

enum class Trust { anonymous, untrusted, trusted, verified };

[[nodiscard]] std::string_view to_string(Trust trust) noexcept;  // "Anonymous", "Untrusted", "Trusted", "Verified"

struct PeerReport {
  bool established = false;       // the handshake completed
  bool authenticated = false;     // dane/pkix: the peer was authenticated as required
  Trust trust = Trust::untrusted; // meaningful when established
  Requirement requirement = Requirement::encrypt;  // effective (SessionSetup::requirement)

  long verify_result = 0;         // SSL_get_verify_result (X509_V_OK = 0)
  std::optional<VerifyFailure> verify_failure;
  std::string failure;            // why it failed, for the deferral reason; empty on success

  // DANE: the record that matched and where (SSL_get0_dane_tlsa / SSL_get0_dane_authority).
  std::optional<dns::TlsaRecord> matched;
  int match_depth = -1;
  bool matched_public_key = false; // a DANE-TA(2) SPKI matched a bare key, not a certificate
  std::string peer_name;           // the reference identifier that matched (SSL_get0_peername)
  int peer_chain_length = 0;       // certificates the server sent (leaf included)

  // Connection parameters (Postfix's summary line).
  std::string protocol;            // "TLSv1.3"
  std::string cipher;              // "TLS_AES_256_GCM_SHA384"
  int cipher_bits = 0;             // used bits
  int cipher_alg_bits = 0;         // algorithm bits
  std::string kex_name;            // "X25519", "ECDHE", "DHE"
  std::string kex_curve;           // "P-256" for ECDHE
  int kex_bits = 0;                // DHE group size
  std::string sig_name;            // "ECDSA", "RSA", "RSA-PSS", "ED25519"
  std::string sig_curve;           // "P-256" for ECDSA
  int sig_bits = 0;                // RSA modulus size
  std::string sig_digest;          // "SHA256"
};

// Inspects `ssl` after SSL_do_handshake/SSL_connect finished or failed. `policy` and `setup`
// are what was loaded into it; `handshake_error` is the OpenSSL error text of a failed handshake
// (drain_openssl_errors() where it failed), used when no certificate failure explains it.
[[nodiscard]] PeerReport inspect_peer(SSL* ssl, const HostPolicy& policy, const SessionSetup& setup,
                                      std::string_view handshake_error = {});

// "mx.example.org[192.0.2.1]:25" (Postfix namaddr + port).
[[nodiscard]] std::string format_namaddr(std::string_view host, std::string_view address, std::uint16_t port);

// "Verified TLS connection established to mx.example.org[192.0.2.1]:25: TLSv1.3 with cipher
//  TLS_AES_256_GCM_SHA384 (256/256 bits) key-exchange X25519 server-signature ECDSA (P-256)
//  server-digest SHA256". Empty when the handshake did not complete.
[[nodiscard]] std::string summary_line(const PeerReport& report, std::string_view namaddr, bool reused = false);

// "mx.example.org[192.0.2.1]:25: Matched DANE EE certificate at depth 0: 3 1 1 A9CD…" (also
// "TA certificate", "TA public key verified certificate"); hex as Postfix prints it (upper
// case, data longer than 64 octets as first 32 … last 32). Empty without a DANE match.
[[nodiscard]] std::string dane_match_line(const PeerReport& report, std::string_view namaddr);

// "server certificate verification failed for mx.example.org[192.0.2.1]:25: num=65:no matching
//  DANE TLSA records" and Postfix's special cases (untrusted issuer, expired, self-signed, ...).
// Empty when no certificate verification failed.
[[nodiscard]] std::string verify_failure_line(const PeerReport& report, std::string_view namaddr);

}  // namespace danerelay::tls
