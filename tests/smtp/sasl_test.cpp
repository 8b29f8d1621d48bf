// tests/smtp/sasl_test.cpp — smtp/sasl.hpp: strict base64, AUTH PLAIN (RFC 4616) and LOGIN.
#include "smtp/sasl.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace danerelay::smtp {
namespace {

using Kind = SaslExchange::Step::Kind;

TEST(Base64, StrictDecoding) {
  EXPECT_EQ(base64_decode(""), std::string());
  EXPECT_EQ(base64_decode("Zg=="), std::string("f"));
  EXPECT_EQ(base64_decode("Zm8="), std::string("fo"));
  EXPECT_EQ(base64_decode("Zm9v"), std::string("foo"));
  EXPECT_EQ(base64_decode("AHVzZXIAcGFzcw=="), std::string("\0user\0pass", 10));
  EXPECT_FALSE(base64_decode("Zg"));        // unpadded
  EXPECT_FALSE(base64_decode("Zg=a"));      // data after padding
  EXPECT_FALSE(base64_decode("Z==="));      // too much padding
  EXPECT_FALSE(base64_decode("Zh=="));      // non-zero unused bits
  EXPECT_FALSE(base64_decode("Zm9v Zm9v")); // whitespace
  EXPECT_FALSE(base64_decode("Zg==Zg=="));  // padding in the middle
  EXPECT_FALSE(base64_decode("Zm9*"));
  for (const std::string& s : std::vector<std::string>{"", "a", "ab", "abc", "abcd", std::string("\0\xff\x10", 3)}) {
    EXPECT_EQ(base64_decode(base64_encode(s)), s);
  }
  EXPECT_EQ(base64_encode("Username:"), "VXNlcm5hbWU6");
  EXPECT_EQ(base64_encode("Password:"), "UGFzc3dvcmQ6");
}

TEST(SaslPlain, InitialResponse) {
  SaslExchange s(SaslExchange::Mechanism::plain);
  const auto step = s.start(base64_encode(std::string("\0alice\0secret", 13)));
  ASSERT_EQ(step.kind, Kind::credentials);
  EXPECT_EQ(s.username(), "alice");
  EXPECT_EQ(s.password(), "secret");
  s.forget_password();
  EXPECT_EQ(s.password(), "");
}

TEST(SaslPlain, ChallengeThenResponseAndAuthzid) {
  SaslExchange s(SaslExchange::Mechanism::plain);
  const auto c = s.start(std::nullopt);
  ASSERT_EQ(c.kind, Kind::challenge);
  EXPECT_EQ(c.reply, "334 ");
  const auto step = s.step(base64_encode(std::string("alice\0alice\0pw", 14)));
  EXPECT_EQ(step.kind, Kind::credentials);

  SaslExchange other(SaslExchange::Mechanism::plain);
  const auto proxy = other.start(base64_encode(std::string("bob\0alice\0pw", 12)));
  EXPECT_EQ(proxy.kind, Kind::failed);
  EXPECT_EQ(proxy.reply, "535 5.7.8 Error: authentication failed");
}

TEST(SaslPlain, MalformedAndCancelled) {
  struct Row {
    std::string response;
    std::string want;
  };
  const std::vector<Row> rows{
      {"*", "501 5.7.0 Authentication aborted"},
      {"!!!!", "501 5.5.2 Cannot decode response"},
      {"=", "535 5.7.8 Error: authentication failed"},
      {base64_encode("alice"), "535 5.7.8 Error: authentication failed"},
      {base64_encode(std::string("\0alice", 6)), "535 5.7.8 Error: authentication failed"},
      {base64_encode(std::string("\0alice\0", 7)), "535 5.7.8 Error: authentication failed"},
      {base64_encode(std::string("\0\0pw", 4)), "535 5.7.8 Error: authentication failed"},
      {base64_encode(std::string("\0al\x01ice\0pw", 10)), "535 5.7.8 Error: authentication failed"},
  };
  for (const auto& r : rows) {
    SaslExchange s(SaslExchange::Mechanism::plain);
    ASSERT_EQ(s.start(std::nullopt).kind, Kind::challenge);
    const auto step = s.step(r.response);
    EXPECT_EQ(step.kind, Kind::failed) << r.response;
    EXPECT_EQ(step.reply, r.want) << r.response;
  }
}

TEST(SaslLogin, TwoChallenges) {
  SaslExchange s(SaslExchange::Mechanism::login);
  const auto c1 = s.start(std::nullopt);
  ASSERT_EQ(c1.kind, Kind::challenge);
  EXPECT_EQ(c1.reply, "334 VXNlcm5hbWU6");
  const auto c2 = s.step(base64_encode("alice"));
  ASSERT_EQ(c2.kind, Kind::challenge);
  EXPECT_EQ(c2.reply, "334 UGFzc3dvcmQ6");
  const auto done = s.step(base64_encode("secret"));
  ASSERT_EQ(done.kind, Kind::credentials);
  EXPECT_EQ(s.username(), "alice");
  EXPECT_EQ(s.password(), "secret");
}

TEST(SaslLogin, InitialResponseIsTheUserNameAndStarCancels) {
  SaslExchange s(SaslExchange::Mechanism::login);
  const auto c = s.start(base64_encode("alice"));
  ASSERT_EQ(c.kind, Kind::challenge);
  EXPECT_EQ(c.reply, "334 UGFzc3dvcmQ6");
  const auto x = s.step("*");
  EXPECT_EQ(x.kind, Kind::failed);
  EXPECT_EQ(x.reply, "501 5.7.0 Authentication aborted");
}

TEST(SaslMechanism, Names) {
  EXPECT_EQ(SaslExchange::parse_mechanism("plain"), SaslExchange::Mechanism::plain);
  EXPECT_EQ(SaslExchange::parse_mechanism("LOGIN"), SaslExchange::Mechanism::login);
  EXPECT_FALSE(SaslExchange::parse_mechanism("CRAM-MD5"));
}

}  // namespace
}  // namespace danerelay::smtp
