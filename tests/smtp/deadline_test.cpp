// tests/smtp/deadline_test.cpp — smtp/deadline.hpp: the DATA deadline is the earlier of the
// per-line limit and data_timeout + bytes / min_data_rate (finding 4, slow clients).
#include "smtp/deadline.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <limits>
#include <vector>

namespace danerelay::smtp {
namespace {

using namespace std::chrono_literals;
using config::Duration;

TEST(DataLineDeadline, Table) {
  struct Row {
    Duration timeout;
    Duration line_start;
    std::uint64_t bytes;
    std::uint32_t rate;
    Duration want;
    const char* why;
  };
  const std::vector<Row> rows{
      {600s, 0s, 0, 500, 600s, "first line, nothing received: data_timeout"},
      {600s, 0s, 1000, 500, 600s, "per-line limit caps the rate credit"},
      {600s, 540s, 6, 500, 600s + 12ms, "a short line every nine minutes: the second must end by 10 min"},
      {600s, 1080s, 12, 500, 600s + 24ms, "the third line is already too late (deadline < line start)"},
      {600s, 900s, 1'000'000, 500, 1500s, "fast sender: per-line limit from the last line end"},
      {600s, 900s, 100'000, 500, 800s, "slow sender: the rate bound is the earlier one"},
      {1s, 0s, 2000, 500, 1s, "test scale: per-line second"},
      {1s, 1800ms, 2050, 500, 2800ms, "test scale: credit 4.1 s, per-line wins"},
      {1s, 1800ms, 200, 500, 1400ms, "test scale: credit 0.4 s, rate wins"},
      {600s, 10s, 499, 500, 600s + 998ms, "sub-second credit rounds down to whole ms"},
      {600s, 10s, 1, 3, 600s + 333ms, "bytes % rate part"},
      {600s, 100s, 50'000, 0, 700s, "rate 0: per-line limit only"},
      {600s, -5s, 0, 500, 600s, "negative line start counts as 0"},
  };
  for (const auto& r : rows) {
    EXPECT_EQ(data_line_deadline(r.timeout, r.line_start, r.bytes, r.rate), r.want) << r.why;
  }
}

TEST(DataLineDeadline, SaturatesInsteadOfOverflowing) {
  constexpr auto kMax = Duration::max();
  const auto huge = std::numeric_limits<std::uint64_t>::max();
  EXPECT_EQ(data_line_deadline(kMax, kMax, huge, 1), kMax);
  EXPECT_EQ(data_line_deadline(600s, kMax, huge, 1), kMax);
  EXPECT_EQ(data_line_deadline(600s, 10s, huge, 1), 610s);  // the per-line term still bounds it
  EXPECT_EQ(data_line_deadline(kMax - Duration{1}, 0s, 5000, 500), kMax - Duration{1});
}

}  // namespace
}  // namespace danerelay::smtp
