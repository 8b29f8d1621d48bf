// tls/dane_session.cpp — see dane_session.hpp. The only file that calls SSL_dane_* per connection.
// Spec: RFC 7672 §3 (DANE authentication), §8.1 (SNI); RFC 7671 §5 (usages), §9 (agility).
#include "tls/dane_session.hpp"

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include <array>
#include <memory>
#include <stdexcept>

namespace danerelay::tls {

namespace {

std::string name_line(const X509_NAME* name) {
  if (name == nullptr) return {};
  std::array<char, 256> buf{};
  X509_NAME_oneline(name, buf.data(), static_cast<int>(buf.size()));
  return buf.data();
}

void free_failure(void* /*parent*/, void* ptr, CRYPTO_EX_DATA* /*ad*/, int /*idx*/, long /*argl*/, void* /*argp*/) {
  delete static_cast<VerifyFailure*>(ptr);
}

// The SSL ex_data slot holding the first VerifyFailure; the slot owns it (freed with the SSL).
int failure_index() {
  static const int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, &free_failure);
  return index;
}

// Verify callback: records the first failure, changes no outcome (the verify mode decides).
int record_failure(int ok, X509_STORE_CTX* store) {
  if (ok) return ok;
  auto* ssl = static_cast<SSL*>(X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx()));
  if (ssl == nullptr || SSL_get_ex_data(ssl, failure_index()) != nullptr) return ok;
  auto failure = std::make_unique<VerifyFailure>();
  failure->error = X509_STORE_CTX_get_error(store);
  failure->depth = X509_STORE_CTX_get_error_depth(store);
  if (X509* cert = X509_STORE_CTX_get_current_cert(store)) {
    failure->subject = name_line(X509_get_subject_name(cert));
    failure->issuer = name_line(X509_get_issuer_name(cert));
  }
  if (SSL_set_ex_data(ssl, failure_index(), failure.get()) == 1) (void)failure.release();
  return ok;
}

void set_names(SSL* ssl, const HostPolicy& policy, bool first_is_set) {
  // D-41 (RFC 7672 §3.2.3, RFC 6125): a wildcard only as the whole left-most label.
  SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
  bool first = !first_is_set;
  for (const std::string& id : policy.reference_ids) {
    if (!first_is_set || id != policy.base_domain) {
      const int rc = first ? SSL_set1_host(ssl, id.c_str()) : SSL_add1_host(ssl, id.c_str());
      if (rc != 1) throw_tls_error("cannot add reference identifier " + id);
      first = false;
    }
  }
}

}  // namespace

void load_tlsa_records(SSL* ssl, std::span<const dns::TlsaRecord> records, SessionSetup& setup) {
  for (const dns::TlsaRecord& r : records) {
    // D-38: never hand PKIX usages to OpenSSL, whatever the policy list says.
    if (r.usage != 2 && r.usage != 3) {
      ++setup.tlsa_rejected;
      setup.notes.push_back(r.to_string() + ": PKIX usage not loaded (D-38)");
      continue;
    }
    ERR_clear_error();
    const int rc = SSL_dane_tlsa_add(ssl, r.usage, r.selector, r.matching_type, r.data.data(), r.data.size());
    if (rc > 0) {
      ++setup.tlsa_loaded;
    } else if (rc == 0) {
      // 0: this record is unusable (disabled digest, wrong length, unparsable Full(0) data).
      ++setup.tlsa_rejected;
      const std::string why = drain_openssl_errors();
      setup.notes.push_back(r.to_string() + ": refused by OpenSSL" + (why.empty() ? "" : " (" + why + ")"));
    } else {
      // < 0: OpenSSL itself failed (DANE not enabled, out of memory). Counting that as an
      // unusable record could turn an authenticated session into unauthenticated TLS when it
      // happens to every record: fail the host instead, as Postfix does (tls_dane.c).
      throw_tls_error("SSL_dane_tlsa_add failed for " + r.to_string());
    }
  }
  ERR_clear_error();
}

SessionSetup configure_session(SSL* ssl, const HostPolicy& policy) {
  if (policy.requirement == Requirement::none || policy.requirement == Requirement::defer) {
    throw std::invalid_argument("no TLS session for requirement " + std::string(to_string(policy.requirement)));
  }
  SessionSetup setup;
  setup.requirement = policy.requirement;
  (void)failure_index();  // allocate the slot before the handshake can need it

  if (!policy.sni.empty() && SSL_set_tlsext_host_name(ssl, policy.sni.c_str()) != 1) {
    throw_tls_error("cannot set SNI " + policy.sni);
  }

  switch (policy.requirement) {
    case Requirement::dane: {
      // RFC 7672 §3.2.2: the base domain is the primary reference identifier (SSL_dane_enable
      // sets it), the others are added; DANE-EE matches skip name checks (RFC 7672 §3.1.1).
      if (SSL_dane_enable(ssl, policy.base_domain.c_str()) <= 0) throw_tls_error("SSL_dane_enable failed");
      SSL_dane_set_flags(ssl, DANE_FLAG_NO_DANE_EE_NAMECHECKS);
      set_names(ssl, policy, true);
      load_tlsa_records(ssl, policy.usable, setup);
      ERR_clear_error();
      if (setup.tlsa_loaded == 0) {
        // D-33: the secure RRset still commits us to TLS, but nothing can authenticate.
        setup.requirement = Requirement::encrypt;
        SSL_set_verify(ssl, SSL_VERIFY_NONE, &record_failure);
      } else {
        SSL_set_verify(ssl, SSL_VERIFY_PEER, &record_failure);  // D-39, D-45: no match, no session
      }
      break;
    }
    case Requirement::pkix:
      // P-02: a PKIX session without a name to check would accept any CA-signed certificate.
      if (policy.reference_ids.empty()) throw std::invalid_argument("PKIX verification without reference identifiers");
      set_names(ssl, policy, false);
      SSL_set_verify(ssl, SSL_VERIFY_PEER, &record_failure);
      break;
    case Requirement::encrypt:
    case Requirement::opportunistic:
      SSL_set_verify(ssl, SSL_VERIFY_NONE, &record_failure);
      break;
    case Requirement::none:
    case Requirement::defer: break;  // rejected above
  }
  return setup;
}

std::optional<VerifyFailure> verify_failure(const SSL* ssl) {
  const auto* failure = static_cast<const VerifyFailure*>(SSL_get_ex_data(ssl, failure_index()));
  if (failure == nullptr) return std::nullopt;
  return *failure;
}

}  // namespace danerelay::tls
