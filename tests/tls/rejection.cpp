// tests/tls/rejection.cpp — see rejection.hpp.
#include "tests/tls/rejection.hpp"

#include <gtest/gtest.h>

#include <openssl/x509_vfy.h>

namespace danerelay::tls::testing {

std::string verify_error_name(long error) {
  return std::to_string(error) + " (" + X509_verify_cert_error_string(error) + ")";
}

void expect_rejected(const Handshake& h, long error, int depth, const char* file, int line) {
  const ::testing::ScopedTrace trace(file, line,
                                     "expected rejection for " + verify_error_name(error));
  EXPECT_FALSE(h.client_done) << "the client must abort the handshake (D-39, D-45)";
  EXPECT_FALSE(h.report.established);
  EXPECT_FALSE(h.report.authenticated);
  EXPECT_FALSE(h.report.failure.empty());
  EXPECT_NE(h.client_error.find("certificate verify failed"), std::string::npos)
      << "the handshake must fail in certificate verification, not elsewhere: " << h.client_error;
  ASSERT_TRUE(h.report.verify_failure.has_value()) << "no certificate verification failure recorded; failure: " << h.report.failure;
  EXPECT_EQ(h.report.verify_failure->error, error)
      << "rejected for " << verify_error_name(h.report.verify_failure->error) << " instead: " << h.report.failure;
  EXPECT_EQ(h.report.verify_result, error) << "SSL_get_verify_result says " << verify_error_name(h.report.verify_result);
  if (depth != kAnyDepth) {
    EXPECT_EQ(h.report.verify_failure->depth, depth);
  }
  EXPECT_FALSE(h.report.matched.has_value()) << "no DANE authority after a rejection";
  EXPECT_EQ(h.report.match_depth, -1);
}

void expect_handshake_failure(const Handshake& h, std::string_view client_reason, std::string_view server_reason,
                              const char* file, int line) {
  const ::testing::ScopedTrace trace(file, line, "expected handshake failure");
  EXPECT_FALSE(h.client_done);
  EXPECT_FALSE(h.server_done);
  EXPECT_FALSE(h.report.established);
  EXPECT_FALSE(h.report.authenticated);
  EXPECT_FALSE(h.report.verify_failure.has_value()) << verify_error_name(h.report.verify_failure->error);
  EXPECT_EQ(h.report.verify_result, X509_V_OK);
  EXPECT_NE(h.client_error.find(client_reason), std::string::npos) << h.client_error;
  EXPECT_NE(h.server_error.find(server_reason), std::string::npos) << h.server_error;
  EXPECT_NE(h.report.failure.find("TLS handshake failed: "), std::string::npos) << h.report.failure;
}

}  // namespace danerelay::tls::testing
