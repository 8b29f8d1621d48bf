// tests/posture/history_test.cpp — the posture classes (a table over every TLS summary the
// delivery code writes; D-18: a DANE match under an insecure MX is never DANE-verified), the two
// bounded series (rollover across midnight, gaps of days, the size bound) and the file format
// (round trip, every kind of corruption refused).
#include "relay/posture/history.hpp"

#include <gtest/gtest.h>

#include <ostream>
#include <string>

#include "tests/posture/fixture.hpp"

namespace {

using namespace danerelay::relay;
using namespace danerelay::relay::posture;
using danerelay::testsupport::kPostureEpoch;
using std::chrono::days;
using std::chrono::hours;
using std::chrono::minutes;
using std::chrono::seconds;

struct ClassCase {
  const char* name;
  const char* trust;
  const char* matched;
  Outcome want;
};

const ClassCase kClasses[] = {
    {"VerifiedWithDaneMatchIsDaneVerified", "Verified", "3 1 1 ab", Outcome::verified},
    {"D18_TrustedWithDaneMatchUnderInsecureMxIsNotVerified", "Trusted", "3 1 1 ab", Outcome::trusted},
    {"VerifiedByPkixOnlyIsTrusted", "Verified", "", Outcome::trusted},
    {"TrustedChainWithoutNameCheckIsTrusted", "Trusted", "", Outcome::trusted},
    {"UntrustedIsUnauthenticated", "Untrusted", "", Outcome::unauthenticated},
    {"D34_UntrustedEvenWithARecordIsUnauthenticated", "Untrusted", "3 1 1 ab", Outcome::unauthenticated},
    {"AnonymousIsUnauthenticated", "Anonymous", "", Outcome::unauthenticated},
    {"UnknownTrustWordIsNeverAuthenticated", "Weird", "3 1 1 ab", Outcome::unauthenticated},
    {"NoTrustIsPlaintext", "", "", Outcome::plaintext},
};

void PrintTo(const ClassCase& c, std::ostream* os) { *os << c.name; }

class Classify : public testing::TestWithParam<ClassCase> {};
TEST_P(Classify, MapsTheTlsSummary) {
  TlsSummary tls;
  tls.trust = GetParam().trust;
  tls.matched = GetParam().matched;
  EXPECT_EQ(classify_tls(tls), GetParam().want);
  RecipientResult r;
  r.status = DeliveryStatus::sent;
  r.tls = tls;
  EXPECT_EQ(classify(r), GetParam().want);
}
INSTANTIATE_TEST_SUITE_P(Posture, Classify, testing::ValuesIn(kClasses), [](const auto& i) { return std::string(i.param.name); });

TEST(PostureClassify, DeferredAndBouncedResultsAreNotDeliveriesWhateverTheirTls) {
  auto r = danerelay::testsupport::verified("a@b.test");
  r.status = DeliveryStatus::deferred;
  EXPECT_EQ(classify(r), Outcome::deferred);
  r.status = DeliveryStatus::bounced;
  EXPECT_EQ(classify(r), Outcome::bounced);
}

TEST(PostureSeries, FiveMinuteBucketsStartOnTheFiveMinutes) {
  Series s(kFineWidth, kFineBuckets);
  const auto t = kPostureEpoch + hours(13) + minutes(7) + seconds(42);
  EXPECT_EQ(s.bucket_start(t), 1893456000 + 13 * 3600 + 5 * 60);
}

TEST(PostureSeries, DailyBucketsRollOverAtMidnightUtc) {
  Series s(kDailyWidth, kDailyBuckets);
  const auto before = kPostureEpoch + days(3) - seconds(1);  // 23:59:59
  const auto after = kPostureEpoch + days(3);                 // 00:00:00 next day
  s.add(before, Outcome::verified);
  s.add(after, Outcome::plaintext);
  ASSERT_EQ(s.buckets().size(), 2u);
  EXPECT_EQ(s.buckets().begin()->first, 1893456000 + 2 * 86400);
  EXPECT_EQ(s.buckets().begin()->second[Outcome::verified], 1u);
  EXPECT_EQ(s.buckets().rbegin()->first, 1893456000 + 3 * 86400);
  EXPECT_EQ(s.buckets().rbegin()->second[Outcome::plaintext], 1u);
}

TEST(PostureSeries, AGapOfDaysDropsTheOldBucketsAndDenseFillsZeros) {
  Series daily(kDailyWidth, kDailyBuckets);
  daily.add(kPostureEpoch, Outcome::verified);
  daily.add(kPostureEpoch + days(10), Outcome::verified);
  daily.add(kPostureEpoch + days(40), Outcome::trusted);  // 40 days later: day 0 and day 10 are gone
  ASSERT_EQ(daily.buckets().size(), 1u);
  EXPECT_EQ(daily.total()[Outcome::verified], 0u);
  EXPECT_EQ(daily.total()[Outcome::trusted], 1u);
  auto d = daily.dense(kPostureEpoch + days(40));
  ASSERT_EQ(d.size(), kDailyBuckets);
  EXPECT_EQ(d.back().start, 1893456000 + 40 * 86400);
  EXPECT_EQ(d.front().start, 1893456000 + 11 * 86400);
  EXPECT_EQ(d.back().counts[Outcome::trusted], 1u);
  for (std::size_t i = 0; i + 1 < d.size(); ++i) EXPECT_EQ(d[i].counts.total(), 0u);

  // Day 11 is the oldest kept when the newest is day 40; day 10 is not.
  Series edge(kDailyWidth, kDailyBuckets);
  edge.add(kPostureEpoch + days(10), Outcome::verified);
  edge.add(kPostureEpoch + days(11), Outcome::verified);
  edge.expire(kPostureEpoch + days(40) + hours(23));
  ASSERT_EQ(edge.buckets().size(), 1u);
  EXPECT_EQ(edge.buckets().begin()->first, 1893456000 + 11 * 86400);
}

TEST(PostureSeries, ABusyMonthNeverKeepsMoreThanItsCapacity) {
  Series fine(kFineWidth, kFineBuckets);
  Series daily(kDailyWidth, kDailyBuckets);
  for (int m = 0; m < 60 * 24 * 45; m += 3) {  // 45 days, a result every 3 minutes
    fine.add(kPostureEpoch + minutes(m), Outcome::verified);
    daily.add(kPostureEpoch + minutes(m), Outcome::plaintext);
    ASSERT_LE(fine.buckets().size(), kFineBuckets);
    ASSERT_LE(daily.buckets().size(), kDailyBuckets);
  }
  EXPECT_EQ(fine.buckets().size(), kFineBuckets);
  EXPECT_EQ(daily.buckets().size(), kDailyBuckets);
}

TEST(PostureSeries, AClockSteppedBackKeepsTheNewerBuckets) {
  Series fine(kFineWidth, kFineBuckets);
  fine.add(kPostureEpoch + hours(2), Outcome::verified);
  fine.add(kPostureEpoch + hours(1), Outcome::verified);  // NTP stepped back an hour
  EXPECT_EQ(fine.buckets().size(), 2u);
  EXPECT_EQ(fine.total()[Outcome::verified], 2u);
}

TEST(PostureHistory, RecordCountsBothSeriesAndTheDomain) {
  History h;
  record(h, kPostureEpoch, danerelay::testsupport::verified("a@Secure.TEST"));
  record(h, kPostureEpoch + minutes(1), danerelay::testsupport::deferred("b@secure.test"));
  EXPECT_EQ(h.fine.total()[Outcome::verified], 1u);
  EXPECT_EQ(h.daily.total()[Outcome::deferred], 1u);
  ASSERT_EQ(h.domains.size(), 1u);
  EXPECT_EQ(h.domains[0].domain, "secure.test");
  EXPECT_EQ(h.domains[0].results, 2u);
  EXPECT_EQ(h.domains[0].last_status, "deferred");
  EXPECT_EQ(h.domains[0].last_seen, 1893456000 + 60);
}

TEST(PostureHistory, TheDomainTableIsBoundedAndKeepsTheBusyDomains) {
  History h;
  for (int i = 0; i < 10; ++i) record(h, kPostureEpoch, danerelay::testsupport::verified("x@busy.test"));
  for (int i = 0; i < 500; ++i)
    record(h, kPostureEpoch + seconds(i), danerelay::testsupport::verified("x@d" + std::to_string(i) + ".test"));
  EXPECT_EQ(h.domains.size(), kMaxDomains);
  auto top = top_domains(h, 3);
  ASSERT_EQ(top.size(), 3u);
  EXPECT_EQ(top[0].domain, "busy.test");
  EXPECT_EQ(top[0].results, 10u);
  EXPECT_EQ(top[1].domain, "d499.test");  // equals: the most recent first
}

TEST(PostureHistory, AHugeDomainNameIsCut) {
  History h;
  record(h, kPostureEpoch, danerelay::testsupport::verified("x@" + std::string(5000, 'a')));
  ASSERT_EQ(h.domains.size(), 1u);
  EXPECT_EQ(h.domains[0].domain.size(), kMaxDomainLength);
}

History sample() {
  History h;
  using namespace danerelay::testsupport;
  record(h, kPostureEpoch, verified("a@secure.test"));
  record(h, kPostureEpoch + minutes(7), trusted("a@mxinsecure.test"));
  record(h, kPostureEpoch + hours(5), untrusted("a@unusable.test"));
  record(h, kPostureEpoch + days(2), plaintext("a@insecure.test"));
  record(h, kPostureEpoch + days(2), deferred("a@bogus-ds.test"));
  record(h, kPostureEpoch + days(2) + hours(1), bounced("a@nullmx.test"));
  record(h, kPostureEpoch + days(2) + hours(1), verified("<\"hostile\">&@evil.test"));
  return h;
}

TEST(PostureFormat, RoundTripsExactly) {
  const auto h = sample();
  const auto text = encode(h, kPostureEpoch + days(2) + hours(1));
  std::string error;
  auto back = decode(text, &error);
  ASSERT_TRUE(back) << error;
  EXPECT_EQ(*back, h);
  EXPECT_EQ(encode(*back, kPostureEpoch + days(2) + hours(1)), text);
}

TEST(PostureFormat, TheBusiestHistoryStaysSmall) {
  History h;
  for (int m = 0; m < 60 * 24 * 31; m += 1)
    record(h, kPostureEpoch + minutes(m),
           danerelay::testsupport::verified("x@" + std::string(240, 'a') + std::to_string(m % 1000) + ".test"));
  const auto text = encode(h, kPostureEpoch + days(31));
  EXPECT_LT(text.size(), 128u * 1024u) << "288 + 30 buckets and 100 domains";
}

struct Corruption {
  const char* name;
  std::string text;
  const char* why;  // part of the error
};

TEST(PostureFormat, RefusesEveryCorruption) {
  const auto good = encode(sample(), kPostureEpoch);
  const Corruption cases[] = {
      {"empty", "", "not valid JSON"},
      {"truncated", good.substr(0, good.size() / 2), "not valid JSON"},
      {"truncated by one", good.substr(0, good.size() - 2), "not valid JSON"},
      {"garbage", std::string("\0\xff\x13garbage", 10), "not valid JSON"},
      {"array", "[1,2,3]", "not a JSON object"},
      {"other format", R"({"format":"x","version":1})", "not a danerelay posture history"},
      {"future version", R"({"format":"danerelay-posture-history","version":2})", "version 2 is not supported"},
      {"no series", R"({"format":"danerelay-posture-history","version":1})", "fine"},
      {"wrong width",
       R"({"format":"danerelay-posture-history","version":1,"fine":{"width":60,"buckets":[]},"daily":{"width":86400,"buckets":[]},"domains":[]})",
       "unexpected width"},
      {"misaligned",
       R"({"format":"danerelay-posture-history","version":1,"fine":{"width":300,"buckets":[[301,1,0,0,0,0,0]]},"daily":{"width":86400,"buckets":[]},"domains":[]})",
       "aligned"},
      {"negative count",
       R"({"format":"danerelay-posture-history","version":1,"fine":{"width":300,"buckets":[[300,-1,0,0,0,0,0]]},"daily":{"width":86400,"buckets":[]},"domains":[]})",
       "non-negative"},
      {"short bucket",
       R"({"format":"danerelay-posture-history","version":1,"fine":{"width":300,"buckets":[[300,1]]},"daily":{"width":86400,"buckets":[]},"domains":[]})",
       "6 counts"},
      {"unordered",
       R"({"format":"danerelay-posture-history","version":1,"fine":{"width":300,"buckets":[[600,1,0,0,0,0,0],[300,1,0,0,0,0,0]]},"daily":{"width":86400,"buckets":[]},"domains":[]})",
       "ascending"},
      {"domain of wrong type",
       R"({"format":"danerelay-posture-history","version":1,"fine":{"width":300,"buckets":[]},"daily":{"width":86400,"buckets":[]},"domains":[{"domain":5,"results":1,"counts":[1,0,0,0,0,0]}]})",
       "wrong type"},
  };
  for (const auto& c : cases) {
    std::string error;
    EXPECT_FALSE(decode(c.text, &error)) << c.name;
    EXPECT_NE(error.find(c.why), std::string::npos) << c.name << ": " << error;
  }
}

TEST(PostureFormat, AFileWithTooManyBucketsIsTrimmedToTheWindow) {
  std::string buckets;
  for (int i = 0; i < 400; ++i) buckets += (i ? "," : "") + std::string("[") + std::to_string(300 * i) + ",1,0,0,0,0,0]";
  const std::string text = R"({"format":"danerelay-posture-history","version":1,"fine":{"width":300,"buckets":[)" + buckets +
                           R"(]},"daily":{"width":86400,"buckets":[]},"domains":[]})";
  std::string error;
  auto h = decode(text, &error);
  ASSERT_TRUE(h) << error;
  EXPECT_EQ(h->fine.buckets().size(), kFineBuckets);
  EXPECT_EQ(h->fine.buckets().rbegin()->first, 300 * 399);
}

}  // namespace
