// tls/openssl_ptr.cpp — see openssl_ptr.hpp: the OpenSSL error queue as text.
#include "tls/openssl_ptr.hpp"

#include <openssl/err.h>

namespace danerelay::tls {

std::string drain_openssl_errors() {
  std::string out;
  while (const unsigned long code = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(code, buf, sizeof buf);
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out;
}

void throw_tls_error(const std::string& what) {
  const std::string queue = drain_openssl_errors();
  throw TlsError(queue.empty() ? what : what + ": " + queue);
}

}  // namespace danerelay::tls
