// tests/relay/delivery_log_test.cpp — Postfix-exact delivery lines and delay formatting.
#include "relay/delivery/delivery_log.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <regex>

namespace danerelay::relay {
namespace {

using std::chrono::microseconds;

struct DelayCase {
  long long us;
  const char* want;
};

class FormatDelay : public ::testing::TestWithParam<DelayCase> {};

TEST_P(FormatDelay, LikePostfixFormatTv) { EXPECT_EQ(format_delay(microseconds(GetParam().us)), GetParam().want); }

INSTANTIATE_TEST_SUITE_P(Postfix, FormatDelay,
                         ::testing::Values(DelayCase{0, "0"}, DelayCase{4'000, "0"}, DelayCase{5'000, "0.01"},
                                           DelayCase{420'000, "0.42"}, DelayCase{99'000, "0.1"}, DelayCase{996'000, "1"},
                                           DelayCase{1'230'000, "1.2"}, DelayCase{9'960'000, "10"},
                                           DelayCase{12'500'000, "13"}, DelayCase{3'600'000'000, "3600"},
                                           DelayCase{-5, "0"}));

Envelope envelope() {
  Envelope e;
  e.id = *QueueId::parse("3F2A9C01B7E4");
  e.sender = "a@org.example";
  e.arrival = Clock::time_point(std::chrono::seconds(1'700'000'000));
  return e;
}

RecipientResult sent(const Envelope& e) {
  RecipientResult r;
  r.recipient.address = "b@dest.example";
  r.status = DeliveryStatus::sent;
  r.dsn = "2.0.0";
  r.reason = "250 2.0.0 Ok: queued as XYZ";
  r.relay_host = "mx.dest.example";
  r.relay_address = "198.51.100.7";
  r.relay_port = 25;
  r.delays = {microseconds(10'000), microseconds(0), microseconds(300'000), microseconds(110'000)};
  r.done = e.arrival + microseconds(420'000);
  r.tls.feature = "dane";
  return r;
}

TEST(DeliveryLine, SentLineMatchesPostfixFieldForField) {
  auto e = envelope();
  EXPECT_EQ(delivery_line(e, sent(e), false),
            "3F2A9C01B7E4: to=<b@dest.example>, relay=mx.dest.example[198.51.100.7]:25, delay=0.42, "
            "delays=0.01/0/0.3/0.11, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as XYZ)");
}

TEST(DeliveryLine, TlsFeatureFieldIsOptInAndSitsBetweenDelaysAndDsn) {
  auto e = envelope();
  const auto line = delivery_line(e, sent(e), true);
  EXPECT_NE(line.find("delays=0.01/0/0.3/0.11, tls=dane, dsn=2.0.0"), std::string::npos) << line;
}

TEST(DeliveryLine, NoConnectionIsRelayNoneAndOrigToAndConnUseAppearWhenRelevant) {
  auto e = envelope();
  auto r = sent(e);
  r.status = DeliveryStatus::deferred;
  r.dsn = "4.7.5";
  r.reason = "TLSA lookup error for mx.dest.example:25";
  r.relay_host.clear();
  r.recipient.orcpt = "rfc822;Original@dest.example";
  EXPECT_EQ(delivery_line(e, r, false),
            "3F2A9C01B7E4: to=<b@dest.example>, orig_to=<Original@dest.example>, relay=none, delay=0.42, "
            "delays=0.01/0/0.3/0.11, dsn=4.7.5, status=deferred (TLSA lookup error for mx.dest.example:25)");
  r.recipient.orcpt = "rfc822;B@dest.example";  // same address, other case: no orig_to
  r.relay_host = "mx.dest.example";
  r.connection_use = 3;
  const auto line = delivery_line(e, r, false);
  EXPECT_EQ(line.find("orig_to"), std::string::npos);
  EXPECT_NE(line.find("relay=mx.dest.example[198.51.100.7]:25, conn_use=3, delay="), std::string::npos) << line;
}

TEST(DeliveryLine, AnAddressLiteralRelayIsNamedByItsAddressAsPostfixDoes) {
  // Issue 10 item 10: relay=127.0.0.11[127.0.0.11]:25, not relay=[127.0.0.11][127.0.0.11]:25.
  Envelope e;
  e.id = *QueueId::parse("3F2A9C01B7E4");
  RecipientResult r;
  r.recipient.address = "b@[127.0.0.11]";
  r.relay_host = "[127.0.0.11]";
  r.relay_address = "127.0.0.11";
  r.relay_port = 25;
  const auto line = delivery_line(e, r, false);
  EXPECT_NE(line.find(", relay=127.0.0.11[127.0.0.11]:25, "), std::string::npos) << line;
}

TEST(DeliveryLine, PflogsummDeliveryRegexMatches) {
  // pflogsumm 1.1.5's delivery regex (ecosystem §2.2), without the tls= field it cannot parse.
  const std::regex pflogsumm(
      R"(to=<[^>]*>, (orig_to=<[^>]*>, )?relay=[^,]+, (conn_use=[^,]+, )?delay=[^,]+, (delays=[^,]+, )?(dsn=[^,]+, )?status=(\S+)(.*))");
  auto e = envelope();
  std::smatch m;
  const auto line = delivery_line(e, sent(e), false);
  ASSERT_TRUE(std::regex_search(line, m, pflogsumm)) << line;
  EXPECT_EQ(m[5].str(), "sent");
}

TEST(DeliveryJson, ParsesBackWithEveryFactTheLineHasPlusDane) {
  auto e = envelope();
  e.size = 1234;
  auto r = sent(e);
  r.reply_code = 250;
  r.command = ".";
  r.dnssec_mx = "secure";
  r.dnssec_host = "secure";
  r.tls = {"dane", "dane", "Verified", "TLSv1.3", "TLS_AES_256_GCM_SHA384", "3 1 1 abcd", 0};
  const auto j = nlohmann::json::parse(delivery_json(e, r));
  EXPECT_EQ(j["type"], "Delivery");
  EXPECT_EQ(j["id"], "3F2A9C01B7E4");
  EXPECT_EQ(j["recipient"], "b@dest.example");
  EXPECT_EQ(j["site"], "dest.example");
  EXPECT_EQ(j["size"], 1234);
  EXPECT_EQ(j["response"]["code"], 250);
  EXPECT_EQ(j["response"]["enhanced_code"]["class"], 2);
  EXPECT_EQ(j["response"]["content"], "250 2.0.0 Ok: queued as XYZ");
  EXPECT_EQ(j["peer_address"]["addr"], "198.51.100.7");
  EXPECT_EQ(j["tls_trust"], "Verified");
  EXPECT_EQ(j["dane"]["matched"], "3 1 1 abcd");
  EXPECT_EQ(j["dane"]["depth"], 0);
  EXPECT_EQ(j["dnssec"]["mx"], "secure");
  EXPECT_EQ(j["event_time"], "2023-11-14T22:13:20Z");
}

TEST(DeliveryJson, DeferralWithoutConnectionHasNullPeerAndTransientType) {
  auto e = envelope();
  auto r = sent(e);
  r.status = DeliveryStatus::deferred;
  r.dsn = "4.7.5";
  r.relay_host.clear();
  const auto j = nlohmann::json::parse(delivery_json(e, r));
  EXPECT_EQ(j["type"], "TransientFailure");
  EXPECT_TRUE(j["peer_address"].is_null());
  EXPECT_TRUE(j["dane"].is_null());
  EXPECT_EQ(j["response"]["enhanced_code"]["subject"], 7);
}

TEST(QueueIdTest, TwelveUpperHexStrictlyIncreasing) {
  auto a = QueueId::next();
  auto b = QueueId::next();
  EXPECT_TRUE(std::regex_match(a.str(), std::regex("[0-9A-F]{12}"))) << a.str();
  EXPECT_LT(a, b);
  for (int i = 0; i < 10000; ++i) {
    auto c = QueueId::next();
    ASSERT_LT(b, c);
    b = c;
  }
}

TEST(QueueIdTest, ParseAcceptsEitherCaseAndRejectsOthers) {
  EXPECT_EQ(QueueId::parse("3f2a9c01b7e4")->str(), "3F2A9C01B7E4");
  EXPECT_FALSE(QueueId::parse("3F2A9C01B7E"));
  EXPECT_FALSE(QueueId::parse("3F2A9C01B7EG"));
}

}  // namespace
}  // namespace danerelay::relay
