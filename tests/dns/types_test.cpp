// tests/dns/types_test.cpp — names and bounds-checked RDATA decoders.
#include "dns/types.hpp"

#include <gtest/gtest.h>

#include "tests/dns/fake_answers.hpp"

namespace danerelay::dns {
namespace {

TEST(Names, NormalizeLowercasesAndStripsOneTrailingDot) {
  EXPECT_EQ(normalize_name("MX.Example.ORG."), "mx.example.org");
  EXPECT_EQ(normalize_name("."), ".");
}

TEST(Rdata, DecodesMxAndNullMx) {
  auto n = testing::wire_name("mx.example.org");
  std::vector<std::uint8_t> rd{0, 10};
  rd.insert(rd.end(), n.begin(), n.end());
  auto mx = decode_mx(rd);
  ASSERT_TRUE(mx);
  EXPECT_EQ(mx->preference, 10);
  EXPECT_EQ(mx->exchange, "mx.example.org");
  std::vector<std::uint8_t> null_mx{0, 0, 0};
  EXPECT_EQ(decode_mx(null_mx)->exchange, ".");
}

TEST(Rdata, RejectsTruncatedOversizedAndCompressedNames) {
  EXPECT_FALSE(decode_mx(std::vector<std::uint8_t>{0, 10}));
  EXPECT_FALSE(decode_mx(std::vector<std::uint8_t>{0, 10, 5, 'a', 'b'}));          // label runs past the end
  EXPECT_FALSE(decode_mx(std::vector<std::uint8_t>{0, 10, 0xc0, 0x0c}));           // compression pointer
  EXPECT_FALSE(decode_mx(std::vector<std::uint8_t>{0, 10, 1, 'a', 0, 7}));         // trailing garbage
  EXPECT_FALSE(decode_mx(std::vector<std::uint8_t>{0, 10, 3, 'a', '.', 'b', 0}));  // dot inside a label
}

TEST(Rdata, DecodesTlsaAndRejectsShortRdata) {
  auto r = decode_tlsa(std::vector<std::uint8_t>{3, 1, 1, 0xab, 0xcd});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->to_string(), "3 1 1 abcd");
  EXPECT_FALSE(decode_tlsa(std::vector<std::uint8_t>{3, 1}));
}

TEST(Rdata, DecodesAddressesByType) {
  EXPECT_EQ(decode_address(RRType::A, std::vector<std::uint8_t>{127, 0, 0, 1})->to_string(), "127.0.0.1");
  std::vector<std::uint8_t> v6(16, 0);
  v6[15] = 1;
  EXPECT_EQ(decode_address(RRType::AAAA, v6)->to_string(), "::1");
  EXPECT_FALSE(decode_address(RRType::A, v6));
  EXPECT_FALSE(decode_address(RRType::AAAA, std::vector<std::uint8_t>{1, 2, 3, 4}));
}

TEST(Answers, DescribeKeepsErrorsApartFromNoData) {
  Answer a;
  a.verdict = Verdict::secure;
  EXPECT_EQ(a.describe(), "secure NODATA");
  a.nxdomain = true;
  EXPECT_EQ(a.describe(), "secure NXDOMAIN");
  a.verdict = Verdict::error;
  a.failure = Failure::servfail;
  a.why = "rcode 2";
  EXPECT_EQ(a.describe(), "servfail (rcode 2)");
  EXPECT_FALSE(a.ok());
  EXPECT_FALSE(a.no_data());
}

}  // namespace
}  // namespace danerelay::dns
