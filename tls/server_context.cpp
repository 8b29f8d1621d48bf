// tls/server_context.cpp — see server_context.hpp.
// Spec: RFC 3207 (STARTTLS), RFC 8996 / R-01 (no TLS < 1.2), RFC 7672 §8.2 spirit (no aNULL).
#include "tls/server_context.hpp"

#include <openssl/err.h>

#include <filesystem>
#include <system_error>

namespace danerelay::tls {

namespace {

void require_readable(const std::filesystem::path& file, const char* what) {
  if (file.empty()) throw TlsError(std::string("no TLS ") + what + " file configured");
  std::error_code ec;
  if (!std::filesystem::is_regular_file(file, ec)) {
    throw TlsError(std::string("TLS ") + what + " file " + file.string() + ": " +
                   (ec ? ec.message() : std::string("does not exist or is not a regular file")));
  }
}

}  // namespace

std::shared_ptr<SSL_CTX> make_server_context(const config::TlsServerSettings& settings) {
  require_readable(settings.cert_file, "certificate");
  require_readable(settings.key_file, "key");
  ERR_clear_error();
  SslCtxPtr ctx(SSL_CTX_new(TLS_server_method()));
  if (!ctx) throw_tls_error("SSL_CTX_new failed");
  if (SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION) != 1) throw_tls_error("cannot set minimum protocol TLSv1.2");
  if (SSL_CTX_set_cipher_list(ctx.get(), "DEFAULT:!aNULL:!eNULL") != 1) throw_tls_error("cannot set cipher list");
  SSL_CTX_set_options(ctx.get(), SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);

  const std::string cert = settings.cert_file.string();
  const std::string key = settings.key_file.string();
  if (SSL_CTX_use_certificate_chain_file(ctx.get(), cert.c_str()) != 1) {
    throw_tls_error("cannot load certificate chain from " + cert);
  }
  if (SSL_CTX_use_PrivateKey_file(ctx.get(), key.c_str(), SSL_FILETYPE_PEM) != 1) {
    throw_tls_error("cannot load private key from " + key);
  }
  if (SSL_CTX_check_private_key(ctx.get()) != 1) {
    throw_tls_error("private key " + key + " does not match the certificate in " + cert);
  }
  return std::shared_ptr<SSL_CTX>(ctx.release(), &SSL_CTX_free);
}

ServerContext::ServerContext(config::TlsServerSettings settings)
    : settings_(std::move(settings)), current_(make_server_context(settings_)) {}

void ServerContext::reload() {
  current_.store(make_server_context(settings_));  // built completely before it replaces the old
}

void ServerContext::reload(const config::TlsServerSettings& settings) {
  auto next = make_server_context(settings);
  settings_ = settings;
  current_.store(std::move(next));
}

}  // namespace danerelay::tls
