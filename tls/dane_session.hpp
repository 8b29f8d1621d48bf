// tls/dane_session.hpp — load one host's TLS policy (tls/policy.hpp) into one OpenSSL SSL object,
// before the handshake.
//
// What this is: the only code that calls OpenSSL's DANE API per connection (SSL_dane_enable,
// SSL_dane_set_flags, SSL_dane_tlsa_add) and sets SNI, reference identifiers and the verify mode.
// It chooses nothing: the records and names come from decide(); the handshake runs elsewhere
// (the SMTP client; in tests, a memory BIO pair). After the handshake, tls/peer_report.hpp says
// what was achieved.
//
// What it does, by requirement:
//   dane     SNI = TLSA base domain (D-43); SSL_dane_enable(base domain); DANE-EE without name
//            checks (DANE_FLAG_NO_DANE_EE_NAMECHECKS, D-36, R-02; OpenSSL also skips expiry for a
//            DANE-EE match); every reference id via SSL_add1_host for DANE-TA (D-40, R-08) with
//            X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS (D-41); each usable record via
//            SSL_dane_tlsa_add. Records OpenSSL refuses (return 0: disabled digest, bad length,
//            Full(0) data that does not parse) count as unusable; an OpenSSL failure (return < 0)
//            throws TlsError, so the host fails and the mail is deferred; usages 0/1
//            are never loaded (OpenSSL 3.0 would accept them; RFC 7672 §3.1.3, D-38). If none is
//            accepted the connection is TLS without authentication (encrypt, D-33). Otherwise
//            SSL_VERIFY_PEER: a chain that matches no record aborts the handshake (D-39, D-45).
//   pkix     at least one reference id (else std::invalid_argument, P-02); SNI, reference ids with the same name-check flags, SSL_VERIFY_PEER against the
//            context's PKIX store (verify, secure levels).
//   encrypt, opportunistic
//            SNI when known; SSL_VERIFY_NONE (the chain is still checked, for reporting only).
// Every requirement records the first certificate verification failure (error, depth, names)
// for the log: see verify_failure().
//
// Errors: std::invalid_argument for a policy that has no TLS (none, defer); TlsError when
// OpenSSL fails for reasons other than an unusable record (out of memory, DANE not enabled on
// the SSL_CTX).
#pragma once

#include <openssl/ssl.h>

#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "tls/openssl_ptr.hpp"
#include "tls/policy.hpp"

namespace danerelay::tls {

struct SessionSetup {
  Requirement requirement = Requirement::encrypt;  // effective: dane becomes encrypt when 0 loaded
  std::size_t tlsa_loaded = 0;                     // records OpenSSL accepted
  std::size_t tlsa_rejected = 0;                   // usable by policy, refused by OpenSSL
  std::vector<std::string> notes;                  // one line per refused record
};

// Configures `ssl` (fresh, from a context made by make_client_context) for `policy`.
[[nodiscard]] SessionSetup configure_session(SSL* ssl, const HostPolicy& policy);

// The record loop of the dane requirement, on an SSL object that SSL_dane_enable() has
// prepared: counts loaded and refused records into `setup`; throws TlsError when OpenSSL fails
// (SSL_dane_tlsa_add < 0). configure_session() calls it; tests call it directly.
void load_tlsa_records(SSL* ssl, std::span<const dns::TlsaRecord> records, SessionSetup& setup);

// The first certificate verification failure OpenSSL reported during the handshake.
struct VerifyFailure {
  int error = 0;        // X509_V_ERR_*
  int depth = -1;       // chain depth of the certificate it concerns (0 = leaf)
  std::string subject;  // that certificate's subject, X509_NAME_oneline form ("/CN=…")
  std::string issuer;   // its issuer
};
[[nodiscard]] std::optional<VerifyFailure> verify_failure(const SSL* ssl);

}  // namespace danerelay::tls
