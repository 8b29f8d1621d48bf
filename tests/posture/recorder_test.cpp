// tests/posture/recorder_test.cpp — the recorder's file: saved and loaded across a "restart" (a
// new Recorder on the same file), a clock moved past midnight and across a gap of days while the
// daemon was down, corrupt and truncated files (a warning, an empty history, the bad file kept
// aside, never a throw), a save that cannot be written, and the crash-safe write order leaving
// no temporary file behind.
#include "relay/posture/recorder.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "tests/posture/fixture.hpp"
#include "tests/support/temp_dir.hpp"

namespace {

using namespace danerelay::relay;
using namespace danerelay::relay::posture;
using danerelay::testsupport::kPostureEpoch;
using std::chrono::days;
using std::chrono::hours;
using std::chrono::minutes;

struct VirtualClock {
  WallClock::time_point t = kPostureEpoch;
  Recorder::Now fn() {
    return [this] { return t; };
  }
};

std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(PostureRecorder, RestartKeepsTheHistory) {
  danerelay::testsupport::TempDir dir("posture");
  VirtualClock clock;
  const auto file = dir.path() / "posture-history.json";
  Envelope env;
  {
    Recorder rec(file, clock.fn());
    EXPECT_FALSE(rec.load()) << "a missing file is no warning";
    rec.record(env, danerelay::testsupport::verified("a@secure.test"));
    clock.t += minutes(10);
    rec.record(env, danerelay::testsupport::plaintext("a@insecure.test"));
    EXPECT_FALSE(rec.save());
  }
  EXPECT_FALSE(std::filesystem::exists(file.string() + ".tmp"));
  clock.t += hours(1);
  Recorder again(file, clock.fn());
  EXPECT_FALSE(again.load());
  const auto h = again.history();
  EXPECT_EQ(h.fine.total()[Outcome::verified], 1u);
  EXPECT_EQ(h.fine.total()[Outcome::plaintext], 1u);
  EXPECT_EQ(h.fine.buckets().size(), 2u);
  EXPECT_EQ(h.daily.total().delivered(), 2u);
  EXPECT_EQ(h.domains.size(), 2u);
}

TEST(PostureRecorder, ADowntimeAcrossMidnightAndDaysDropsWhatFellOutOfTheWindows) {
  danerelay::testsupport::TempDir dir("posture");
  VirtualClock clock;
  clock.t = kPostureEpoch + hours(23) + minutes(50);  // 23:50 UTC
  const auto file = dir.path() / "posture-history.json";
  Envelope env;
  {
    Recorder rec(file, clock.fn());
    rec.record(env, danerelay::testsupport::verified("a@secure.test"));
    clock.t += minutes(20);  // 00:10 the next day
    rec.record(env, danerelay::testsupport::verified("a@secure.test"));
    const auto h = rec.history();
    EXPECT_EQ(h.daily.buckets().size(), 2u) << "two UTC days";
    EXPECT_EQ(h.fine.buckets().size(), 2u);
    ASSERT_FALSE(rec.save());
  }
  clock.t += hours(25);  // down for a day: the 5-minute buckets are out of the 24-hour window
  {
    Recorder rec(file, clock.fn());
    ASSERT_FALSE(rec.load());
    const auto h = rec.history();
    EXPECT_TRUE(h.fine.buckets().empty());
    EXPECT_EQ(h.daily.total()[Outcome::verified], 2u);
  }
  clock.t += days(28);  // day 30: the window is days 1 to 30, only the second day's bucket is left
  {
    Recorder rec(file, clock.fn());
    ASSERT_FALSE(rec.load());
    const auto h = rec.history();
    EXPECT_EQ(h.daily.total()[Outcome::verified], 1u);
    clock.t += days(1);
    EXPECT_EQ(rec.history().daily.total()[Outcome::verified], 0u);
  }
}

TEST(PostureRecorder, ACorruptFileGivesAWarningAndAnEmptyHistoryAndIsKeptAside) {
  danerelay::testsupport::TempDir dir("posture");
  VirtualClock clock;
  const auto file = dir.path() / "posture-history.json";
  Envelope env;
  {
    Recorder rec(file, clock.fn());
    rec.record(env, danerelay::testsupport::verified("a@secure.test"));
    ASSERT_FALSE(rec.save());
  }
  const auto good = slurp(file);
  for (const std::string& bad : {good.substr(0, good.size() / 3), std::string("\x00\x01\x02", 3), std::string("{}"),
                                std::string()}) {
    std::ofstream(file, std::ios::binary | std::ios::trunc) << bad;
    Recorder rec(file, clock.fn());
    rec.record(env, danerelay::testsupport::plaintext("a@insecure.test"));  // replaced by the load
    std::optional<std::string> warning;
    EXPECT_NO_THROW(warning = rec.load());
    ASSERT_TRUE(warning);
    EXPECT_NE(warning->find("unusable"), std::string::npos) << *warning;
    EXPECT_NE(warning->find(".corrupt"), std::string::npos) << *warning;
    EXPECT_EQ(rec.history().fine.total().total(), 0u);
    EXPECT_TRUE(rec.history().domains.empty());
    EXPECT_EQ(slurp(file.string() + ".corrupt"), bad);
    // The next save writes a good file again.
    rec.record(env, danerelay::testsupport::verified("a@secure.test"));
    EXPECT_FALSE(rec.save());
    Recorder again(file, clock.fn());
    EXPECT_FALSE(again.load());
    EXPECT_EQ(again.history().fine.total()[Outcome::verified], 1u);
  }
}

TEST(PostureRecorder, ASaveThatCannotBeWrittenSaysWhyAndKeepsTheHistory) {
  danerelay::testsupport::TempDir dir("posture");
  VirtualClock clock;
  Recorder rec(dir.path() / "missing-dir" / "posture-history.json", clock.fn());
  Envelope env;
  rec.record(env, danerelay::testsupport::verified("a@secure.test"));
  const auto error = rec.save();
  ASSERT_TRUE(error);
  EXPECT_NE(error->find("cannot create"), std::string::npos) << *error;
  EXPECT_EQ(rec.history().fine.total()[Outcome::verified], 1u);
}

TEST(PostureRecorder, TheFileIsReplacedWholeNeverAppended) {
  danerelay::testsupport::TempDir dir("posture");
  VirtualClock clock;
  const auto file = dir.path() / "posture-history.json";
  Recorder rec(file, clock.fn());
  Envelope env;
  std::uintmax_t largest = 0;
  for (int i = 0; i < 24 * 40; ++i) {  // 40 days, a result an hour, saved every 6 hours
    rec.record(env, danerelay::testsupport::verified("a@d" + std::to_string(i % 300) + ".test"));
    clock.t += hours(1);
    if (i % 6 != 0) continue;
    ASSERT_FALSE(rec.save());
    largest = std::max(largest, std::filesystem::file_size(file));
  }
  EXPECT_LT(largest, 64u * 1024u);
  auto loaded = read_history_file(file);
  EXPECT_FALSE(loaded.warning);
  EXPECT_LE(loaded.history.fine.buckets().size(), kFineBuckets);
  EXPECT_LE(loaded.history.daily.buckets().size(), kDailyBuckets);
  EXPECT_EQ(loaded.history.domains.size(), kMaxDomains);
}

}  // namespace
