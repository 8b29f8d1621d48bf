// tests/smtp/ehlo_test.cpp — EHLO keywords to capabilities.
#include "smtp/ehlo.hpp"

#include <gtest/gtest.h>

namespace danerelay::smtp {
namespace {

Reply ehlo(std::vector<std::string> lines) {
  Reply r;
  r.code = 250;
  r.lines = std::move(lines);
  return r;
}

TEST(Capabilities, ParsesTheKeywordsTheClientUses) {
  auto c = Capabilities::parse(ehlo({"mx.example Hello", "PIPELINING", "SIZE 10240000", "starttls", "8BITMIME", "DSN",
                                     "ENHANCEDSTATUSCODES", "SMTPUTF8", "AUTH PLAIN login", "CHUNKING", "X-UNKNOWN 1"}));
  EXPECT_TRUE(c.pipelining);
  EXPECT_TRUE(c.starttls);
  EXPECT_TRUE(c.eightbitmime);
  EXPECT_TRUE(c.dsn);
  EXPECT_TRUE(c.enhanced_status_codes);
  EXPECT_TRUE(c.smtputf8);
  EXPECT_TRUE(c.chunking);
  EXPECT_FALSE(c.requiretls);
  ASSERT_TRUE(c.size);
  EXPECT_EQ(*c.size, 10240000u);
  EXPECT_EQ(c.auth, (std::vector<std::string>{"PLAIN", "LOGIN"}));
}

TEST(Capabilities, GreetingLineIsNotAKeyword) {
  auto c = Capabilities::parse(ehlo({"STARTTLS"}));
  EXPECT_FALSE(c.starttls);
}

TEST(Capabilities, SizeWithoutValueMeansNoFixedLimitAndGarbageIsIgnored) {
  EXPECT_EQ(*Capabilities::parse(ehlo({"x", "SIZE"})).size, 0u);
  EXPECT_FALSE(Capabilities::parse(ehlo({"x", "SIZE 12ab"})).size);
}

}  // namespace
}  // namespace danerelay::smtp
