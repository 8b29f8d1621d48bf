// tests/tls/tls_pair.cpp — see tls_pair.hpp.
#include "tests/tls/tls_pair.hpp"

#include <openssl/err.h>

namespace danerelay::tls::testing {

namespace {

// One handshake step on one side: true when finished, sets `failed` and drains the error queue
// on a fatal error (WANT_READ/WANT_WRITE just mean "the other side's turn").
bool step(SSL* ssl, bool& failed, std::string& error) {
  ERR_clear_error();
  const int rc = SSL_do_handshake(ssl);
  if (rc == 1) return true;
  const int e = SSL_get_error(ssl, rc);
  if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
    failed = true;
    error = drain_openssl_errors();
    if (error.empty()) error = "SSL_get_error " + std::to_string(e);
  }
  return false;
}

}  // namespace

SslCtxPtr make_server_ctx(const ServerOptions& options) {
  SslCtxPtr ctx(SSL_CTX_new(TLS_server_method()));
  if (!ctx) throw_tls_error("SSL_CTX_new");
  if (options.security_level >= 0) SSL_CTX_set_security_level(ctx.get(), options.security_level);
  if (options.max_version != 0 && SSL_CTX_set_max_proto_version(ctx.get(), options.max_version) != 1) {
    throw_tls_error("max version");
  }
  if (!options.cipher_list.empty() && SSL_CTX_set_cipher_list(ctx.get(), options.cipher_list.c_str()) != 1) {
    throw_tls_error("cipher list " + options.cipher_list);
  }
  if (!options.chain.empty()) {
    const testsupport::Cert& leaf = *options.chain.front();
    if (SSL_CTX_use_certificate(ctx.get(), leaf.x509.get()) != 1) throw_tls_error("use_certificate");
    for (std::size_t i = 1; i < options.chain.size(); ++i) {
      if (SSL_CTX_add1_chain_cert(ctx.get(), options.chain[i]->x509.get()) != 1) throw_tls_error("add1_chain_cert");
    }
    if (SSL_CTX_use_PrivateKey(ctx.get(), leaf.key.get()) != 1) throw_tls_error("use_PrivateKey");
  }
  return ctx;
}

Handshake run_handshake(SSL_CTX* client_ctx, SSL_CTX* server_ctx, const HostPolicy& policy) {
  Handshake h;
  SslPtr client(SSL_new(client_ctx));
  SslPtr server(SSL_new(server_ctx));
  if (!client || !server) throw_tls_error("SSL_new");
  h.setup = configure_session(client.get(), policy);

  BIO* client_bio = nullptr;
  BIO* server_bio = nullptr;
  if (BIO_new_bio_pair(&client_bio, 0, &server_bio, 0) != 1) throw_tls_error("BIO_new_bio_pair");
  SSL_set_bio(client.get(), client_bio, client_bio);  // each SSL now owns its end
  SSL_set_bio(server.get(), server_bio, server_bio);
  SSL_set_connect_state(client.get());
  SSL_set_accept_state(server.get());

  bool client_failed = false;
  bool server_failed = false;
  for (int round = 0; round < 64; ++round) {
    if (!h.client_done && !client_failed) h.client_done = step(client.get(), client_failed, h.client_error);
    if (!h.server_done && !server_failed) h.server_done = step(server.get(), server_failed, h.server_error);
    if ((h.client_done || client_failed) && (h.server_done || server_failed)) break;
  }
  if (const char* sni = SSL_get_servername(server.get(), TLSEXT_NAMETYPE_host_name)) h.sni_seen = sni;
  h.report = inspect_peer(client.get(), policy, h.setup, h.client_error);
  ERR_clear_error();
  return h;
}

}  // namespace danerelay::tls::testing
