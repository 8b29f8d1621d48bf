// tests/relay/backoff_test.cpp — the retry schedule as a table (relay/core/backoff.hpp): pure
// functions, no clock.
#include "relay/core/backoff.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>

namespace danerelay::relay {
namespace {

using namespace std::chrono_literals;
using std::chrono::milliseconds;

struct BackoffRow {
  const char* name;
  std::uint32_t attempts;  // attempts made so far, the one that just failed included
  milliseconds min_backoff;
  milliseconds max_backoff;
  milliseconds expected;
};

class BackoffTest : public ::testing::TestWithParam<BackoffRow> {};

TEST_P(BackoffTest, DoublesFromMinToMax) {
  const BackoffRow& row = GetParam();
  EXPECT_EQ(backoff_delay(row.attempts, row.min_backoff, row.max_backoff), row.expected);
}

constexpr milliseconds kMaxDuration = milliseconds::max();

INSTANTIATE_TEST_SUITE_P(
    Table, BackoffTest,
    ::testing::Values(
        // Postfix's defaults: minimal_backoff_time 300 s, maximal_backoff_time 4000 s.
        BackoffRow{"PostfixDefaultsAfterAttempt1", 1, 300s, 4000s, 300s},
        BackoffRow{"PostfixDefaultsAfterAttempt2", 2, 300s, 4000s, 600s},
        BackoffRow{"PostfixDefaultsAfterAttempt3", 3, 300s, 4000s, 1200s},
        BackoffRow{"PostfixDefaultsAfterAttempt4", 4, 300s, 4000s, 2400s},
        BackoffRow{"PostfixDefaultsAfterAttempt5", 5, 300s, 4000s, 4000s},
        BackoffRow{"PostfixDefaultsAfterAttempt6", 6, 300s, 4000s, 4000s},
        BackoffRow{"NoAttemptYetCountsAsOne", 0, 300s, 4000s, 300s},
        BackoffRow{"ManyAttemptsStayAtTheMaximum", std::numeric_limits<std::uint32_t>::max(), 300s, 4000s, 4000s},
        BackoffRow{"MinEqualToMax", 7, 60s, 60s, 60s},
        BackoffRow{"ExactlyReachingTheMaximum", 3, 100ms, 400ms, 400ms},
        BackoffRow{"MaximumNotAPowerOfTwoTimesTheMinimum", 3, 100ms, 300ms, 300ms},
        BackoffRow{"MaximumBelowTheMinimumWins", 1, 60s, 30s, 30s},
        BackoffRow{"NoOverflowNearTheLargestDuration", 100, 1ms, kMaxDuration, kMaxDuration},
        BackoffRow{"ZeroMinimumIsNoWait", 5, 0ms, 4000s, 0ms}),
    [](const ::testing::TestParamInfo<BackoffRow>& p) { return std::string(p.param.name); });

struct RetryRow {
  const char* name;
  std::uint32_t attempts;
  milliseconds lifetime_left;
  milliseconds expected;
};

class RetryDelayTest : public ::testing::TestWithParam<RetryRow> {};

TEST_P(RetryDelayTest, TheBackoffIsCutToTheLifetimeLeft) {
  const RetryRow& row = GetParam();
  EXPECT_EQ(retry_delay(row.attempts, 100ms, 400ms, row.lifetime_left), row.expected);
}

INSTANTIATE_TEST_SUITE_P(
    Table, RetryDelayTest,
    ::testing::Values(RetryRow{"PlentyLeft", 3, 10s, 400ms},
                      RetryRow{"LessLeftThanTheBackoff", 3, 150ms, 150ms},
                      RetryRow{"ExactlyTheBackoffLeft", 2, 200ms, 200ms},
                      RetryRow{"OneMillisecondLeft", 1, 1ms, 1ms},
                      // Over (a message kept for a notice it still owes): the plain backoff,
                      // never zero, so nothing is retried in a loop.
                      RetryRow{"NoneLeft", 3, 0ms, 400ms},
                      RetryRow{"LongOver", 1, -3600s, 100ms}),
    [](const ::testing::TestParamInfo<RetryRow>& p) { return std::string(p.param.name); });

// constexpr: usable where a compile-time constant is (and checked at compile time).
static_assert(backoff_delay(4, 300s, 4000s) == 2400s);
static_assert(retry_delay(4, 300s, 4000s, 60s) == 60s);

}  // namespace
}  // namespace danerelay::relay
