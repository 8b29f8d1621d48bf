// tests/smtp/syntax_test.cpp — the one copy of the mail syntax (smtp/syntax.hpp): host names,
// address literals, xtext, the RFC 5322 date. These rows were the tests of the copies that lived
// in config/values.cpp, dns/types.cpp, smtp/command.cpp and smtp/client_session.cpp; where those
// copies disagreed the row says which rule won and why.
#include "smtp/syntax.hpp"

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

namespace danerelay::syntax {
namespace {

TEST(HostName, AcceptsLdhLabelsAndOneTrailingDot) {
  EXPECT_TRUE(is_host_name("mx.example.org"));
  EXPECT_TRUE(is_host_name("mx.example.org."));
  EXPECT_TRUE(is_host_name("mx1.example.org"));
  EXPECT_TRUE(is_host_name("localhost"));
  EXPECT_TRUE(is_host_name("xn--bnk-sna.example"));
  EXPECT_TRUE(is_host_name("3com.example"));
  EXPECT_TRUE(is_host_name("a-b.example"));
}

// The config loader's copy refused '_', the DNS planner's accepted it (so an MX target
// "mx_1.example" was used while the same name as a route was a config error). One rule now,
// RFC 5321 §2.3.5's LDH: an SMTP domain, an MX target and a configured name alike.
TEST(HostName, RefusesTheUnderscoreEverywhere) {
  EXPECT_FALSE(is_host_name("under_score.example"));
  EXPECT_FALSE(is_host_name("_25._tcp.mx.example.org"));
  EXPECT_FALSE(is_host_name("mx_1.example", true));
}

TEST(HostName, RejectsBadLabelsLengthsAndAddresses) {
  EXPECT_FALSE(is_host_name(""));
  EXPECT_FALSE(is_host_name("."));
  EXPECT_FALSE(is_host_name("mx..example"));
  EXPECT_FALSE(is_host_name("a..b"));
  EXPECT_FALSE(is_host_name(".example"));
  EXPECT_FALSE(is_host_name("mx.example.."));
  EXPECT_FALSE(is_host_name("-mx.example"));
  EXPECT_FALSE(is_host_name("mx-.example"));
  EXPECT_FALSE(is_host_name("-a.b"));
  EXPECT_FALSE(is_host_name("a-.b"));
  EXPECT_FALSE(is_host_name("sp ace.org"));
  EXPECT_FALSE(is_host_name("b\xc3\xa4nk.example"));
  EXPECT_FALSE(is_host_name("192.0.2.1"));  // RFC 1123 §2.1: the top-level label is not numeric
  EXPECT_FALSE(is_host_name("mx.example.123"));
  EXPECT_FALSE(is_host_name(std::string(64, 'a') + ".example"));
  EXPECT_FALSE(is_host_name(std::string(64, 'a') + ".org"));
  std::string long_name;
  while (long_name.size() < 254) long_name += "a.";
  long_name += "example";
  EXPECT_FALSE(is_host_name(long_name));
}

TEST(HostName, Utf8LabelsOnlyUnderSmtpUtf8) {
  EXPECT_FALSE(is_host_name("b\xc3\xa4nk.example"));
  EXPECT_TRUE(is_host_name("b\xc3\xa4nk.example", true));
  EXPECT_FALSE(is_host_name("b\xc3\xa4nk..example", true));
  EXPECT_FALSE(is_host_name("-b\xc3\xa4nk.example", true));
}

TEST(HostName, LengthLimitIs253WithoutTheTrailingDot) {
  std::string name;
  while (name.size() + 4 <= 249) name += "abc.";
  name += "com";  // 4 × 62 + 3 = 251
  while (name.size() < 253) name.insert(0, "a");
  ASSERT_EQ(name.size(), 253u);
  EXPECT_TRUE(is_host_name(name));
  EXPECT_TRUE(is_host_name(name + "."));
  EXPECT_FALSE(is_host_name("a" + name));
}

TEST(AddressLiteral, FollowsInetPton) {
  EXPECT_TRUE(is_ipv4_address("192.0.2.1"));
  EXPECT_FALSE(is_ipv4_address("192.0.2"));
  EXPECT_FALSE(is_ipv4_address("192.000.2.1"));
  EXPECT_FALSE(is_ipv4_address(std::string_view("192.0.2.1\0x", 11)));
  EXPECT_TRUE(is_ipv6_address("2001:db8::1"));
  EXPECT_TRUE(is_ipv6_address("::ffff:192.0.2.1"));
  EXPECT_FALSE(is_ipv6_address("[2001:db8::1]"));
  EXPECT_FALSE(is_ipv6_address("192.0.2.1"));
}

TEST(AddressLiteral, Rfc5321FormsAndPostfixsUntaggedIpv6) {
  struct Row {
    std::string text;
    bool untagged_v6;
    std::optional<std::string> address;
    bool v6;
  };
  const std::vector<Row> rows{
      {"[192.0.2.1]", false, "192.0.2.1", false},
      {"[IPv6:2001:db8::1]", false, "2001:db8::1", true},
      {"[ipv6:2001:db8::1]", false, "2001:db8::1", true},      // the tag is case-insensitive
      {"[2001:db8::1]", false, std::nullopt, false},           // SMTP: IPv6 needs its tag
      {"[2001:db8::1]", true, "2001:db8::1", true},            // next hops and mynetworks: Postfix's form
      {"[IPv6:192.0.2.1]", true, std::nullopt, false},
      {"[192.0.2]", true, std::nullopt, false},
      {"192.0.2.1", true, std::nullopt, false},                // no brackets: not a literal
      {"[]", true, std::nullopt, false},
      {"[tag:content]", true, std::nullopt, false},            // general literals: nothing registers one
      {"[mx.example.org]", true, std::nullopt, false},
  };
  for (const auto& r : rows) {
    const auto got = parse_address_literal(r.text, r.untagged_v6);
    ASSERT_EQ(got.has_value(), r.address.has_value()) << r.text;
    if (got) {
      EXPECT_EQ(got->address, *r.address) << r.text;
      EXPECT_EQ(got->v6, r.v6) << r.text;
    }
  }
}

TEST(AddressLiteral, LogLinesNameALiteralByItsAddress) {
  EXPECT_EQ(literal_address_or_name("[127.0.0.11]"), "127.0.0.11");
  EXPECT_EQ(literal_address_or_name("[IPv6:::1]"), "::1");
  EXPECT_EQ(literal_address_or_name("mx.example.org"), "mx.example.org");
}

TEST(Xtext, DecodesStrictly) {
  struct Row {
    std::string in;
    std::optional<std::string> out;
  };
  const std::vector<Row> rows{
      {"", std::string()},
      {"abc", std::string("abc")},
      {"a+2Bb", std::string("a+b")},
      {"+3D", std::string("=")},
      {"a+2b", std::nullopt},   // lower-case hex
      {"a+2", std::nullopt},    // truncated
      {"a+", std::nullopt},
      {"a=b", std::nullopt},    // '=' must be encoded
      {"a b", std::nullopt},    // space is not an xchar
      {"a\x7f", std::nullopt},
  };
  for (const auto& r : rows) EXPECT_EQ(xtext_decode(r.in), r.out) << r.in;
}

TEST(Xtext, EncodesPlusEqualsAndNonPrintables) {
  EXPECT_EQ(xtext_encode("a+b=c d\x01"), "a+2Bb+3Dc+20d+01");
  EXPECT_EQ(xtext_encode("plain@example.org"), "plain@example.org");
  EXPECT_EQ(xtext_encode("\xc3\xa4"), "+C3+A4");
}

TEST(Xtext, DecodeInvertsEncode) {
  const std::string all = [] {
    std::string s;
    for (int c = 1; c < 256; ++c) s.push_back(static_cast<char>(c));
    return s;
  }();
  EXPECT_EQ(xtext_decode(xtext_encode(all)), all);
}

TEST(Rfc5322Date, UtcNumericZone) {
  // 2026-12-03 10:45:55 UTC is a Thursday; 1970-01-01 a Thursday too, single-digit day padded.
  EXPECT_EQ(rfc5322_date(std::chrono::system_clock::from_time_t(1796294755)), "Thu, 03 Dec 2026 10:45:55 +0000");
  EXPECT_EQ(rfc5322_date(std::chrono::system_clock::from_time_t(0)), "Thu, 01 Jan 1970 00:00:00 +0000");
}

}  // namespace
}  // namespace danerelay::syntax
