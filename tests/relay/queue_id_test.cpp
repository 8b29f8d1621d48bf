// tests/relay/queue_id_test.cpp — queue ids across wall-clock steps (relay/core/queue_id.hpp), on a
// generator of the test's own, at times the test chooses.
#include "relay/core/queue_id.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <ostream>
#include <string>

namespace danerelay::relay {
namespace {

using namespace std::chrono_literals;
using std::chrono::microseconds;
using Wall = std::chrono::system_clock;

constexpr std::uint64_t kWrap = std::uint64_t{1} << 48;
const Wall::time_point kT0 = Wall::time_point(std::chrono::seconds(1893456000));  // 2030-01-01T00:00:00Z

std::uint64_t value(const QueueId& id) { return std::stoull(id.str(), nullptr, 16); }
std::uint64_t id_value_at(Wall::time_point t) {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<microseconds>(t.time_since_epoch()).count()) % kWrap;
}
QueueId id_at(Wall::time_point t) {
  static constexpr char digits[] = "0123456789ABCDEF";
  std::string s(12, '0');
  std::uint64_t v = id_value_at(t);
  for (int i = 11; i >= 0; --i, v >>= 4) s[static_cast<std::size_t>(i)] = digits[v & 0xf];
  return *QueueId::parse(s);
}

struct StepRow {
  const char* name;
  microseconds step;  // the wall clock moves by this between two ids
};
void PrintTo(const StepRow& row, std::ostream* os) { *os << row.name; }

class QueueIdStepTest : public ::testing::TestWithParam<StepRow> {};

TEST_P(QueueIdStepTest, NeverBelowTheLastIdIssued) {
  const StepRow& row = GetParam();
  QueueIdGenerator g;
  const QueueId a = g.next(kT0);
  EXPECT_EQ(a, id_at(kT0));
  const Wall::time_point stepped = kT0 + row.step;
  const QueueId b = g.next(stepped);
  if (row.step > 0us) {
    EXPECT_EQ(b, id_at(stepped)) << "forward: ids follow the clock";
  } else {
    EXPECT_EQ(value(b), value(a) + 1) << "standing still or back: the last id + 1 µs";
  }
  // More ids at the stepped clock: increasing, never a repeat.
  QueueId previous = b;
  for (int i = 0; i < 1000; ++i) {
    const QueueId c = g.next(stepped);
    ASSERT_GT(c, previous) << "id " << i << " after the step";
    previous = c;
  }
  // Once the clock is past the last id again, ids follow it.
  const Wall::time_point later = std::max(kT0, stepped) + 1s;
  EXPECT_EQ(g.next(later), id_at(later));
}

INSTANTIATE_TEST_SUITE_P(Table, QueueIdStepTest,
                         ::testing::Values(StepRow{"SameInstant", 0us}, StepRow{"Back1us", -1us}, StepRow{"Back1s", -1s},
                                           StepRow{"Back1h", -1h}, StepRow{"Back1Day", -24h},
                                           StepRow{"Back4Years", -std::chrono::hours(24 * 365 * 4)},
                                           StepRow{"Back5Years", -std::chrono::hours(24 * 365 * 5)},
                                           StepRow{"Back10Years", -std::chrono::hours(24 * 365 * 10)},
                                           StepRow{"BackToTheEpoch", -std::chrono::duration_cast<microseconds>(kT0.time_since_epoch())},
                                           StepRow{"Forward1s", 1s}, StepRow{"Forward1h", 1h}),
                         [](const ::testing::TestParamInfo<StepRow>& p) { return std::string(p.param.name); });

TEST(QueueIdTest, IdsWrapAfter48BitsAndStayDistinct) {
  QueueIdGenerator g;
  const Wall::time_point wrap = Wall::time_point(microseconds(static_cast<std::int64_t>(kWrap) * 6));
  EXPECT_EQ(g.next(wrap - 1us).str(), "FFFFFFFFFFFF");
  EXPECT_EQ(g.next(wrap + 1us).str(), "000000000001");
  EXPECT_EQ(g.next(wrap + 1us).str(), "000000000002");
}

TEST(QueueIdTest, AFloorAheadOfTheClockRaisesTheNextIds) {
  // The spool holds an id from before a restart, when the clock was an hour ahead.
  QueueIdGenerator g;
  const QueueId queued = id_at(kT0 + 1h);
  g.not_below(queued, kT0);
  const QueueId next = g.next(kT0);
  EXPECT_EQ(value(next), value(queued) + 1);
}

TEST(QueueIdTest, AFloorBehindTheClockChangesNothing) {
  QueueIdGenerator g;
  g.not_below(id_at(kT0 - 1h), kT0);
  EXPECT_EQ(g.next(kT0), id_at(kT0));
}

TEST(QueueIdTest, AFloorJustPastTheWrapCountsAsAhead) {
  QueueIdGenerator g;
  const Wall::time_point wrap = Wall::time_point(microseconds(static_cast<std::int64_t>(kWrap) * 6));
  g.not_below(*QueueId::parse("000000000005"), wrap - 10us);
  EXPECT_EQ(g.next(wrap - 10us).str(), "000000000006");
}

}  // namespace
}  // namespace danerelay::relay
