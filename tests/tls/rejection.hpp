// tests/tls/rejection.hpp — assertions for handshakes that must fail, and fail for a stated
// reason: a test that expects a rejection must not pass when the handshake fails for another one
// (an expired certificate where a name mismatch was meant, a protocol error where a TLSA mismatch
// was meant). Used by handshake_test.cpp and end_to_end_test.cpp.
#pragma once

#include <string>
#include <string_view>

#include "tests/tls/tls_pair.hpp"

namespace danerelay::tls::testing {

inline constexpr int kAnyDepth = -2;

// The caller's file and line for the failure messages, as default arguments: __builtin_FILE and
// __builtin_LINE, because std::source_location is not usable with clang 14 on libstdc++ 12.

// "62 (hostname mismatch)".
[[nodiscard]] std::string verify_error_name(long error);

// The client aborted the handshake (D-39, D-45) because certificate verification failed with
// `error` (X509_V_ERR_*), as both the verify callback (PeerReport::verify_failure) and
// SSL_get_verify_result say, at chain depth `depth` unless kAnyDepth; OpenSSL names no DANE
// authority (SSL_get0_dane_authority < 0: no matched record). Another verify error, another
// depth or a failure outside certificate verification fails the test.
void expect_rejected(const Handshake& h, long error, int depth = kAnyDepth, const char* file = __builtin_FILE(),
                     int line = __builtin_LINE());

// The handshake failed before any certificate was judged (protocol version, cipher suites): no
// verification failure, and the OpenSSL error text on each side contains the given reason.
void expect_handshake_failure(const Handshake& h, std::string_view client_reason, std::string_view server_reason,
                              const char* file = __builtin_FILE(), int line = __builtin_LINE());

}  // namespace danerelay::tls::testing
