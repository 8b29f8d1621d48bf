// smtp/client_limits.hpp — how the inbound server recognises "the same client" for its limits,
// and the per-client limit on failed AUTH attempts (finding 4, "trust at the edges").
//
// Client key: an IPv4 client is counted per address; an IPv6 client per network of
// limits.client_ipv6_prefix bits (default /64: one host usually owns a whole /64 and could use a
// fresh address for every connection; Postfix 3.8 smtpd_client_ipv6_prefix_length, default 84
// there); an IPv4-mapped IPv6 address (::ffff:a.b.c.d, what a dual-stack "[::]" listener sees) is
// the IPv4 client it carries. The connection limits (smtp/server.hpp ConnectionTracker) and the
// AUTH failure limit use the same key.
//
// AuthFailureLimiter: at most `max_failures` failed AUTH attempts (535) per client key in any
// window of five minutes. The failure that reaches the limit is answered
// "421 4.7.0 HOST Error: too many AUTH failures" and the connection closed; any AUTH from that
// client is refused the same way until its oldest counted failure is five minutes old. One
// limiter serves every listener of the process (ServerSettings::auth_failures): it is
// mutex-protected, because listeners' sessions run on several threads. The clock is injectable
// for tests. Memory is bounded by max_failures timestamps per client that failed within the
// window; expired clients are swept as new failures arrive.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <string_view>

namespace danerelay::smtp {

// "192.0.2.1" → "192.0.2.1"; "::ffff:192.0.2.1" → "192.0.2.1"; "2001:db8:1:2::5" with prefix 64
// → "2001:db8:1:2::/64"; a prefix of 128 (or more) keeps the address; text that is no IP address
// ("unknown") is returned unchanged. `ipv6_prefix` 0 counts as 1.
[[nodiscard]] std::string client_key(std::string_view address, std::uint32_t ipv6_prefix);

class AuthFailureLimiter {
 public:
  using Clock = std::chrono::steady_clock;
  using Now = std::function<Clock::time_point()>;
  static constexpr std::chrono::minutes kWindow{5};

  // `max_failures` 0 counts as 1. `now` null → steady_clock::now.
  AuthFailureLimiter(std::uint32_t max_failures, std::uint32_t ipv6_prefix, Now now = {});
  AuthFailureLimiter(const AuthFailureLimiter&) = delete;
  AuthFailureLimiter& operator=(const AuthFailureLimiter&) = delete;

  // True while the client of `address` has max_failures failures within the window.
  [[nodiscard]] bool blocked(const std::string& address);
  // Counts one failed attempt; returns blocked(address) afterwards.
  bool record_failure(const std::string& address);
  // A reload: the new limit counts the failures already recorded.
  void set_max_failures(std::uint32_t max_failures);
  // Failures of the client of `address` within the window (for log lines).
  [[nodiscard]] std::size_t failures(const std::string& address);

 private:
  void expire(std::deque<Clock::time_point>& times, Clock::time_point now) const;
  void sweep(Clock::time_point now);

  std::uint32_t max_failures_;
  std::uint32_t ipv6_prefix_;
  Now now_;
  std::mutex mutex_;
  std::map<std::string, std::deque<Clock::time_point>> failures_;  // oldest first, at most max_failures_
  std::size_t records_since_sweep_ = 0;
};

}  // namespace danerelay::smtp
