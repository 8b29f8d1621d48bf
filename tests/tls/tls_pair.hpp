// tests/tls/tls_pair.hpp — an in-process TLS server for the handshake tests: a client SSL configured
// by tls/dane_session.hpp and a server SSL presenting test certificates, joined by an OpenSSL memory
// BIO pair and driven step by step in one thread. No sockets, no external process.
//
// For tests only. The server context is built here (not by tls/server_context.hpp) so a test can
// present any chain shape: leaf only, leaf + CA, leaf + intermediate, no certificate (aNULL).
#pragma once

#include <string>
#include <vector>

#include "tests/support/pki.hpp"
#include "tls/dane_session.hpp"
#include "tls/openssl_ptr.hpp"
#include "tls/peer_report.hpp"
#include "tls/policy.hpp"

namespace danerelay::tls::testing {

struct ServerOptions {
  std::vector<const testsupport::Cert*> chain;  // leaf first; the leaf's key is the server key; empty: no certificate
  std::string cipher_list;                      // TLS ≤ 1.2 cipher list; empty: OpenSSL default
  int max_version = 0;                          // e.g. TLS1_2_VERSION; 0: no cap
  int security_level = -1;                      // SSL_CTX_set_security_level; -1: default
};

// Throws TlsError when OpenSSL refuses the setup.
[[nodiscard]] SslCtxPtr make_server_ctx(const ServerOptions& options);

struct Handshake {
  bool client_done = false;
  bool server_done = false;
  std::string client_error;  // OpenSSL error queue where the client failed
  std::string server_error;
  std::string sni_seen;      // SNI the server received (empty: none)
  SessionSetup setup;
  PeerReport report;         // inspect_peer() on the client side
};

// Configures a client SSL from client_ctx for `policy`, handshakes with a server SSL from
// server_ctx, and reports.
[[nodiscard]] Handshake run_handshake(SSL_CTX* client_ctx, SSL_CTX* server_ctx, const HostPolicy& policy);

}  // namespace danerelay::tls::testing
