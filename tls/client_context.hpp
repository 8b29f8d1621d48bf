// tls/client_context.hpp — the OpenSSL SSL_CTX for outbound SMTP (STARTTLS as a client).
//
// What this is: one factory, called once at start-up (and on reload); every delivery connection
// makes its SSL from the result and loads its per-host policy with tls/dane_session.hpp. What it
// configures: the protocol floor (TLS 1.2 unless configured higher, R-01), no anonymous cipher
// suites (D-44), DANE enabled with the configured digest order for RFC 7671 §9 agility (R-07,
// D-42), and the PKIX trust store used by the verify/secure levels (ca_file/ca_path, or the
// system store). What it does not: choose anything per host.
//
// Errors: throws TlsError (tls/openssl_ptr.hpp) naming the setting OpenSSL refused.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "tls/openssl_ptr.hpp"

namespace danerelay::tls {

// OpenSSL's matching-type ordinals derived from a digest order (strongest first): for each known
// digest, its matching type (1 sha256, 2 sha512) and ordinal (higher is preferred, 0 disabled).
struct DigestOrdinal {
  std::uint8_t mtype;
  std::uint8_t ordinal;
};
[[nodiscard]] std::vector<DigestOrdinal> digest_ordinals(const std::vector<std::string>& digest_order);

// Builds the client context. Throws TlsError on an unknown min_protocol or digest name, an
// unreadable ca_file/ca_path, or an OpenSSL failure.
[[nodiscard]] SslCtxPtr make_client_context(const config::TlsClientSettings& settings);

}  // namespace danerelay::tls
