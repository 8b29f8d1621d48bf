// smtp/deadline.cpp — see deadline.hpp.
#include "smtp/deadline.hpp"

#include <algorithm>
#include <limits>

namespace danerelay::smtp {

namespace {

using Rep = config::Duration::rep;
constexpr Rep kMax = std::numeric_limits<Rep>::max();

Rep saturating_add(Rep a, Rep b) noexcept { return a > kMax - b ? kMax : a + b; }

// bytes / rate seconds, in milliseconds, rounded down, saturating.
Rep rate_credit_ms(std::uint64_t bytes, std::uint32_t rate) noexcept {
  const std::uint64_t whole_seconds = bytes / rate;
  const std::uint64_t rest_ms = (bytes % rate) * 1000 / rate;  // (bytes % rate) < 2^32: no overflow
  constexpr auto kMaxU = static_cast<std::uint64_t>(kMax);
  if (whole_seconds > (kMaxU - rest_ms) / 1000) return kMax;
  return static_cast<Rep>(whole_seconds * 1000 + rest_ms);
}

}  // namespace

config::Duration data_line_deadline(config::Duration data_timeout, config::Duration line_start, std::uint64_t bytes,
                                    std::uint32_t min_data_rate) noexcept {
  const Rep timeout = std::max<Rep>(data_timeout.count(), 0);
  const Rep start = std::max<Rep>(line_start.count(), 0);
  const Rep per_line = saturating_add(start, timeout);
  if (min_data_rate == 0) return config::Duration{per_line};
  const Rep overall = saturating_add(timeout, rate_credit_ms(bytes, min_data_rate));
  return config::Duration{std::min(per_line, overall)};
}

}  // namespace danerelay::smtp
