// tests/posture/report_test.cpp — `danerelay report`'s series: which series and how many rows a
// --since window gives, the CSV columns and the JSON shape (parsed back).
#include "relay/posture/report.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "tests/posture/fixture.hpp"

namespace {

using namespace danerelay::relay::posture;
using danerelay::testsupport::kPostureEpoch;
using std::chrono::days;
using std::chrono::hours;
using std::chrono::minutes;

History sample(WallClock::time_point now) {
  History h;
  record(h, now - minutes(2), danerelay::testsupport::verified("a@secure.test"));
  record(h, now - hours(2), danerelay::testsupport::plaintext("a@insecure.test"));
  record(h, now - days(3), danerelay::testsupport::deferred("a@bogus-ds.test"));
  return h;
}

TEST(PostureReport, WindowsUpTo24HoursUseFiveMinuteBucketsLongerOnesDays) {
  const auto now = kPostureEpoch + days(40) + hours(13) + minutes(2);
  const auto h = sample(now);
  const std::pair<Seconds, std::pair<Seconds, std::size_t>> table[] = {
      {Seconds(3600), {Seconds(300), 12}},      {Seconds(86400), {Seconds(300), 288}}, {Seconds(86401), {Seconds(86400), 2}},
      {Seconds(7 * 86400), {Seconds(86400), 7}}, {Seconds(30 * 86400), {Seconds(86400), 30}}, {Seconds(1), {Seconds(300), 1}},
  };
  for (const auto& [since, want] : table) {
    auto s = report_series(h, now, since);
    ASSERT_TRUE(s) << since.count();
    EXPECT_EQ(s->width, want.first) << since.count();
    EXPECT_EQ(s->buckets.size(), want.second) << since.count();
    EXPECT_EQ(s->buckets.back().start, (now.time_since_epoch() / want.first) * want.first.count()) << since.count();
  }
  EXPECT_FALSE(report_series(h, now, Seconds(0)));
  EXPECT_FALSE(report_series(h, now, Seconds(30 * 86400 + 1)));
}

TEST(PostureReport, CsvHasTheDocumentedColumns) {
  const auto now = kPostureEpoch + hours(1);  // 01:00
  History h;
  record(h, now - minutes(1), danerelay::testsupport::verified("a@secure.test"));  // 00:55 bucket
  const auto csv = format_report_csv(*report_series(h, now, Seconds(600)));
  EXPECT_EQ(csv,
            "start,width,verified,trusted,unauthenticated,plaintext,deferred,bounced\n"
            "2030-01-01T00:55:00Z,300,1,0,0,0,0,0\n"
            "2030-01-01T01:00:00Z,300,0,0,0,0,0,0\n");
}

TEST(PostureReport, JsonParsesBackWithTotals) {
  const auto now = kPostureEpoch + days(40);
  const auto h = sample(now);
  const auto j = nlohmann::json::parse(format_report_json(*report_series(h, now, Seconds(30 * 86400)), now, Seconds(30 * 86400)));
  EXPECT_EQ(j["width"], 86400);
  EXPECT_EQ(j["since_seconds"], 30 * 86400);
  EXPECT_EQ(j["generated"], "2030-02-10T00:00:00Z");
  ASSERT_EQ(j["buckets"].size(), 30u);
  EXPECT_EQ(j["buckets"][29]["start"], "2030-02-10T00:00:00Z");
  EXPECT_EQ(j["buckets"][28]["plaintext"], 1);
  EXPECT_EQ(j["buckets"][28]["verified"], 1);
  EXPECT_EQ(j["buckets"][26]["deferred"], 1);
  EXPECT_EQ(j["totals"]["verified"], 1);
  EXPECT_EQ(j["totals"]["plaintext"], 1);
  EXPECT_EQ(j["totals"]["deferred"], 1);
  EXPECT_EQ(j["totals"]["bounced"], 0);
}

}  // namespace
