// tls/client_context.cpp — see client_context.hpp. The only place the outbound SSL_CTX is made.
// Spec: RFC 7672 §8.1 (no SSLv2 hello: TLS_client_method never sends one), §8.2 (D-44),
// RFC 7671 §9 (digest agility via SSL_CTX_dane_mtype_set), RFC 7525 / R-01 (TLS ≥ 1.2).
#include "tls/client_context.hpp"

#include <openssl/err.h>
#include <openssl/evp.h>

#include <filesystem>

namespace danerelay::tls {

namespace {

const EVP_MD* digest_for_mtype(std::uint8_t mtype) {
  switch (mtype) {
    case 1: return EVP_sha256();
    case 2: return EVP_sha512();
    default: return nullptr;
  }
}

int protocol_version(const std::string& name) {
  if (name == "TLSv1.2") return TLS1_2_VERSION;
  if (name == "TLSv1.3") return TLS1_3_VERSION;
  throw TlsError("unsupported tls.client.min_protocol \"" + name + "\" (want TLSv1.2 or TLSv1.3)");
}

}  // namespace

std::vector<DigestOrdinal> digest_ordinals(const std::vector<std::string>& digest_order) {
  // Every known matching type appears once: configured ones get descending ordinals in the
  // configured order (OpenSSL prefers higher), the others 0, which disables them so that their
  // records are refused by SSL_dane_tlsa_add (counted unusable, R-07 step 1).
  std::vector<DigestOrdinal> out{{1, 0}, {2, 0}};
  std::uint8_t next = static_cast<std::uint8_t>(digest_order.size());
  for (const std::string& name : digest_order) {
    std::uint8_t mtype = 0;
    if (name == "sha256") {
      mtype = 1;
    } else if (name == "sha512") {
      mtype = 2;
    } else {
      throw TlsError("unsupported DANE digest \"" + name + "\" in tls.client.digest_order (want sha512, sha256)");
    }
    for (auto& d : out) {
      if (d.mtype == mtype && d.ordinal == 0) d.ordinal = next;
    }
    --next;
  }
  return out;
}

SslCtxPtr make_client_context(const config::TlsClientSettings& settings) {
  SslCtxPtr ctx(SSL_CTX_new(TLS_client_method()));
  if (!ctx) throw_tls_error("SSL_CTX_new failed");

  // TLS 1.2 or later (configurable to 1.3 only); never SSLv2/3, TLS 1.0/1.1.
  if (SSL_CTX_set_min_proto_version(ctx.get(), protocol_version(settings.min_protocol)) != 1) {
    throw_tls_error("cannot set minimum protocol " + settings.min_protocol);
  }
  // D-44 (RFC 7672 §8.2): offer no anonymous (aNULL) or null-encryption suites. TLS 1.3 suites
  // are all authenticated.
  if (SSL_CTX_set_cipher_list(ctx.get(), "DEFAULT:!aNULL:!eNULL") != 1) throw_tls_error("cannot set cipher list");
  SSL_CTX_set_options(ctx.get(), SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);

  // PKIX trust store for the verify/secure levels (and for reporting "Trusted" chains at the
  // encrypt/may levels, as Postfix does). DANE-TA/-EE never consult it.
  if (!settings.ca_file.empty() || !settings.ca_path.empty()) {
    for (const auto* p : {&settings.ca_file, &settings.ca_path}) {
      std::error_code ec;
      if (!p->empty() && !std::filesystem::exists(*p, ec)) throw TlsError("PKIX trust store " + p->string() + " does not exist");
    }
    const std::string file = settings.ca_file.string();
    const std::string path = settings.ca_path.string();
    if (SSL_CTX_load_verify_locations(ctx.get(), file.empty() ? nullptr : file.c_str(), path.empty() ? nullptr : path.c_str()) != 1) {
      throw_tls_error("cannot load PKIX trust store " + (file.empty() ? path : file));
    }
  } else if (SSL_CTX_set_default_verify_paths(ctx.get()) != 1) {
    throw_tls_error("cannot load the system PKIX trust store");
  }

  // DANE (RFC 7672 §3): enable, then digest agility per the configured order (R-07, D-42).
  if (SSL_CTX_dane_enable(ctx.get()) <= 0) throw_tls_error("SSL_CTX_dane_enable failed");
  for (const DigestOrdinal& d : digest_ordinals(settings.digest_order)) {
    const EVP_MD* md = d.ordinal == 0 ? nullptr : digest_for_mtype(d.mtype);
    if (SSL_CTX_dane_mtype_set(ctx.get(), md, d.mtype, d.ordinal) <= 0) {
      throw_tls_error("SSL_CTX_dane_mtype_set failed for matching type " + std::to_string(d.mtype));
    }
  }
  ERR_clear_error();
  return ctx;
}

}  // namespace danerelay::tls
