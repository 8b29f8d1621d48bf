// relay/core/backoff.hpp — the retry schedule as pure functions (no clock, no state): how long the
// queue manager waits before the next attempt of a deferred message.
//
// The backoff after attempt n (n ≥ 1; 0 counts as 1) is min_backoff · 2^(n−1), at most
// max_backoff. With Postfix's defaults (minimal_backoff_time 300 s, maximal_backoff_time 4000 s):
// 300, 600, 1200, 2400, 4000, 4000, … s. That is the rule qmgr(8) documents for its deferred queue
// ("exponential backoff by doubling the time between delivery attempts", bounded by
// minimal_backoff_time and maximal_backoff_time), and what config/REFERENCE.md promises for
// queue.min_backoff/max_backoff.
//
// Postfix's code (qmgr_active.c, qmgr_active_done_3_generic) gets its doubling another way: the
// next delay is the message's age, now − arrival, clamped to [minimal_backoff_time,
// maximal_backoff_time]; attempts that run on time double the age, hence the delay (its first
// two retries both wait the minimum). The attempt count is used here instead of the age because
// the age is wall time: a clock step would shorten or stretch the delay, and so would slow
// attempts.
//
// retry_delay adds the queue lifetime: while lifetime is left, the wait is cut to what is left,
// so the last attempt (and the bounce) come at arrival + max_lifetime rather than up to one
// backoff later. When none is left (a message kept only because a notice is still owed) the
// plain backoff applies: a notice that cannot be queued is tried again at the backoff's pace,
// never in a loop.
#pragma once

#include <chrono>
#include <cstdint>

namespace danerelay::relay {

[[nodiscard]] constexpr std::chrono::milliseconds backoff_delay(std::uint32_t attempts, std::chrono::milliseconds min_backoff,
                                                                std::chrono::milliseconds max_backoff) noexcept {
  if (min_backoff.count() <= 0) return std::chrono::milliseconds(0);
  if (max_backoff < min_backoff) return max_backoff.count() < 0 ? std::chrono::milliseconds(0) : max_backoff;
  std::chrono::milliseconds delay = min_backoff;
  for (std::uint32_t i = 1; i < attempts && delay < max_backoff; ++i) {
    delay = delay > max_backoff / 2 ? max_backoff : delay * 2;  // no overflow near the top
  }
  return delay < max_backoff ? delay : max_backoff;
}

// `lifetime_left`: arrival + max_lifetime − now (wall time); ≤ 0 when the lifetime is over.
[[nodiscard]] constexpr std::chrono::milliseconds retry_delay(std::uint32_t attempts, std::chrono::milliseconds min_backoff,
                                                              std::chrono::milliseconds max_backoff,
                                                              std::chrono::milliseconds lifetime_left) noexcept {
  const std::chrono::milliseconds delay = backoff_delay(attempts, min_backoff, max_backoff);
  if (lifetime_left.count() <= 0) return delay;
  return lifetime_left < delay ? lifetime_left : delay;
}

}  // namespace danerelay::relay
