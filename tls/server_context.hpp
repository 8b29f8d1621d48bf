// tls/server_context.hpp — the OpenSSL SSL_CTX for inbound STARTTLS (our SMTP server side), made
// from a PEM certificate chain and private key, and reloadable while connections use the old one.
//
// What this is: TLS ≥ 1.2, no anonymous or null ciphers, the chain (leaf first) and key checked
// against each other at load. reload() builds a complete new context first and only then swaps
// it in (atomically, shared_ptr): sessions that hold the old context keep it until they end; a
// reload that fails changes nothing. What it is not: client authentication or SNI-based
// certificate selection (later issues).
//
// Errors: TlsError naming the file and the OpenSSL reason ("cannot load certificate chain from
// /etc/danerelay/cert.pem: … no start line"), from the constructor and from reload().
#pragma once

#include <openssl/ssl.h>

#include <atomic>
#include <memory>

#include "config/config.hpp"
#include "tls/openssl_ptr.hpp"

namespace danerelay::tls {

// Builds one server context from the settings (both files required). Throws TlsError.
[[nodiscard]] std::shared_ptr<SSL_CTX> make_server_context(const config::TlsServerSettings& settings);

class ServerContext {
 public:
  // Loads the files now. Throws TlsError.
  explicit ServerContext(config::TlsServerSettings settings);

  // The current context; callers keep the shared_ptr for the lifetime of their SSL objects.
  [[nodiscard]] std::shared_ptr<SSL_CTX> get() const noexcept { return current_.load(); }

  // Re-reads the same files (e.g. after certificate renewal, on SIGHUP). On failure throws
  // TlsError and keeps serving with the previous context.
  void reload();
  // Switches to other files; the same all-or-nothing rule.
  void reload(const config::TlsServerSettings& settings);

  [[nodiscard]] const config::TlsServerSettings& settings() const noexcept { return settings_; }

 private:
  config::TlsServerSettings settings_;
  std::atomic<std::shared_ptr<SSL_CTX>> current_;
};

}  // namespace danerelay::tls
