// tls/openssl_ptr.hpp — std::unique_ptr aliases that own OpenSSL objects, and the one error type
// of tls/ with the OpenSSL error queue in its message.
//
// What this is: ownership vocabulary (the PowerDNS/Postfix habit of one deleter per C type),
// so no tls/ function ever calls *_free by hand. Not a wrapper around OpenSSL's API.
#pragma once

#include <openssl/bio.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <memory>
#include <stdexcept>
#include <string>

namespace danerelay::tls {

namespace detail {
template <auto Free>
struct Deleter {
  template <typename T>
  void operator()(T* p) const noexcept {
    Free(p);
  }
};
}  // namespace detail

using SslCtxPtr = std::unique_ptr<SSL_CTX, detail::Deleter<&SSL_CTX_free>>;
using SslPtr = std::unique_ptr<SSL, detail::Deleter<&SSL_free>>;
using X509Ptr = std::unique_ptr<X509, detail::Deleter<&X509_free>>;
using EvpPkeyPtr = std::unique_ptr<EVP_PKEY, detail::Deleter<&EVP_PKEY_free>>;
using BioPtr = std::unique_ptr<BIO, detail::Deleter<&BIO_free_all>>;

// A TLS setup failure (bad certificate file, OpenSSL refusing a setting, ...). The message names
// the operation and ends with the drained OpenSSL error queue, e.g.
// "cannot load certificate chain from /etc/x.pem: error:80000002:system library::No such file or directory".
class TlsError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Drains this thread's OpenSSL error queue into one line ("a; b"); empty when the queue was empty.
[[nodiscard]] std::string drain_openssl_errors();

// Throws TlsError("<what>: <drained queue>") (or just <what> when the queue is empty).
[[noreturn]] void throw_tls_error(const std::string& what);

}  // namespace danerelay::tls
