// tests/config/config_test.cpp — the functions config.hpp declares: TLS level names, Cidr,
// Endpoint, NextHop (RFC 5321 §4.1.3 literals) and PolicySettings::find (Postfix
// smtp_tls_policy_maps lookup order: exact name, then ".parent" from the closest parent up).
#include "config/config.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <string>

namespace danerelay::config {
namespace {

// ── TLS levels ───────────────────────────────────────────────────────────────────────────────

TEST(TlsLevelNames, EveryLevelRoundTripsThroughItsPostfixName) {
  for (auto level : {TlsLevel::none, TlsLevel::may, TlsLevel::encrypt, TlsLevel::dane, TlsLevel::dane_only,
                     TlsLevel::verify, TlsLevel::secure}) {
    EXPECT_EQ(parse_tls_level(to_string(level)), level) << to_string(level);
  }
  EXPECT_EQ(to_string(TlsLevel::dane_only), "dane-only");
}

TEST(TlsLevelNames, OnlyPostfixSpellingsAreAccepted) {
  EXPECT_EQ(parse_tls_level("dane_only"), std::nullopt);
  EXPECT_EQ(parse_tls_level("DANE"), std::nullopt);
  EXPECT_EQ(parse_tls_level("fingerprint"), std::nullopt);
  EXPECT_EQ(parse_tls_level(""), std::nullopt);
}

// ── Cidr ─────────────────────────────────────────────────────────────────────────────────────

std::array<std::uint8_t, 4> v4(const char* text) {
  std::array<std::uint8_t, 4> out{};
  EXPECT_EQ(::inet_pton(AF_INET, text, out.data()), 1) << text;
  return out;
}
std::array<std::uint8_t, 16> v6(const char* text) {
  std::array<std::uint8_t, 16> out{};
  EXPECT_EQ(::inet_pton(AF_INET6, text, out.data()), 1) << text;
  return out;
}

struct CidrCase {
  const char* text;
  bool valid;
  bool v6 = false;
  int prefix = 0;
};
class CidrParse : public testing::TestWithParam<CidrCase> {};
TEST_P(CidrParse, AcceptsOrRejects) {
  const auto& c = GetParam();
  const auto cidr = Cidr::parse(c.text);
  ASSERT_EQ(cidr.has_value(), c.valid) << c.text;
  if (!cidr) return;
  EXPECT_EQ(cidr->v6, c.v6);
  EXPECT_EQ(cidr->prefix, c.prefix);
  EXPECT_EQ(cidr->text, c.text);
}
INSTANTIATE_TEST_SUITE_P(Table, CidrParse,
                         testing::Values(CidrCase{"10.0.0.0/8", true, false, 8},
                                         CidrCase{"192.0.2.7", true, false, 32},
                                         CidrCase{"0.0.0.0/0", true, false, 0},
                                         CidrCase{"2001:db8::/32", true, true, 32},
                                         CidrCase{"::1", true, true, 128},
                                         CidrCase{"[::1]/128", true, true, 128},
                                         CidrCase{"::/0", true, true, 0},
                                         CidrCase{"10.0.0.0/33", false},
                                         CidrCase{"2001:db8::/129", false},
                                         CidrCase{"10.0.0.0/", false},
                                         CidrCase{"10.0.0.0/+8", false},
                                         CidrCase{"10.0.0.0/8/8", false},
                                         CidrCase{"10.0.0/8", false},
                                         CidrCase{"010.0.0.0/8", false},
                                         CidrCase{"[10.0.0.0]/8", false},
                                         CidrCase{"example.org/24", false},
                                         CidrCase{" 10.0.0.0/8", false},
                                         CidrCase{"", false}));

TEST(Cidr, HostBitsBeyondThePrefixAreMasked) {
  const auto cidr = Cidr::parse("10.1.2.3/8");
  ASSERT_TRUE(cidr);
  EXPECT_EQ(cidr->bytes[0], 10);
  EXPECT_EQ(cidr->bytes[1], 0);
  EXPECT_EQ(cidr->bytes[3], 0);
  const auto a = v4("10.200.0.1");
  EXPECT_TRUE(cidr->contains(a.data(), a.size()));
}

TEST(Cidr, ContainsChecksOnlyThePrefixBits) {
  const auto net = Cidr::parse("192.0.2.0/25");
  ASSERT_TRUE(net);
  const auto in = v4("192.0.2.127"), out = v4("192.0.2.128");
  EXPECT_TRUE(net->contains(in.data(), in.size()));
  EXPECT_FALSE(net->contains(out.data(), out.size()));

  const auto net6 = Cidr::parse("2001:db8::/32");
  ASSERT_TRUE(net6);
  const auto in6 = v6("2001:db8:ffff::1"), out6 = v6("2001:db9::1");
  EXPECT_TRUE(net6->contains(in6.data(), in6.size()));
  EXPECT_FALSE(net6->contains(out6.data(), out6.size()));
}

TEST(Cidr, Ipv4NetworkMatchesIpv4MappedClientOfDualStackListener) {
  const auto net = Cidr::parse("10.0.0.0/8");
  ASSERT_TRUE(net);
  const auto mapped = v6("::ffff:10.1.2.3"), other = v6("::ffff:11.1.2.3"), plain6 = v6("2001:db8::1");
  EXPECT_TRUE(net->contains(mapped.data(), mapped.size()));
  EXPECT_FALSE(net->contains(other.data(), other.size()));
  EXPECT_FALSE(net->contains(plain6.data(), plain6.size()));
}

TEST(Cidr, Ipv6NetworkDoesNotMatchIpv4ClientUnlessItCoversTheMappedRange) {
  const auto doc = Cidr::parse("2001:db8::/32"), mapped = Cidr::parse("::ffff:0.0.0.0/96");
  ASSERT_TRUE(doc && mapped);
  const auto a = v4("192.0.2.1");
  EXPECT_FALSE(doc->contains(a.data(), a.size()));
  EXPECT_TRUE(mapped->contains(a.data(), a.size()));
}

TEST(Cidr, ZeroPrefixContainsEverythingOfItsFamily) {
  const auto all4 = Cidr::parse("0.0.0.0/0");
  ASSERT_TRUE(all4);
  const auto a = v4("203.0.113.9");
  EXPECT_TRUE(all4->contains(a.data(), a.size()));
  EXPECT_FALSE(all4->contains(nullptr, 4));
  EXPECT_FALSE(all4->contains(a.data(), 3));
}

// ── Endpoint ─────────────────────────────────────────────────────────────────────────────────

struct EndpointCase {
  const char* text;
  std::uint16_t default_port;
  bool valid;
  const char* host = "";
  std::uint16_t port = 0;
};
class EndpointParse : public testing::TestWithParam<EndpointCase> {};
TEST_P(EndpointParse, AcceptsOrRejects) {
  const auto& c = GetParam();
  const auto e = Endpoint::parse(c.text, c.default_port);
  ASSERT_EQ(e.has_value(), c.valid) << c.text;
  if (!e) return;
  EXPECT_EQ(e->host, c.host);
  EXPECT_EQ(e->port, c.port);
}
INSTANTIATE_TEST_SUITE_P(Table, EndpointParse,
                         testing::Values(EndpointCase{"[::]:25", 0, true, "::", 25},
                                         EndpointCase{"0.0.0.0:25", 0, true, "0.0.0.0", 25},
                                         EndpointCase{"127.0.0.1:2525", 0, true, "127.0.0.1", 2525},
                                         EndpointCase{"[2001:db8::1]:587", 0, true, "2001:db8::1", 587},
                                         EndpointCase{"Relay.Example.:587", 0, true, "relay.example", 587},
                                         EndpointCase{"relay.example", 25, true, "relay.example", 25},
                                         EndpointCase{"[::1]", 9425, true, "::1", 9425},
                                         EndpointCase{"relay.example", 0, false},
                                         EndpointCase{"::1", 25, false},
                                         EndpointCase{"2001:db8::1:25", 25, false},
                                         EndpointCase{"[192.0.2.1]:25", 0, false},
                                         EndpointCase{"[::1]25", 0, false},
                                         EndpointCase{"[::1", 0, false},
                                         EndpointCase{"127.0.0.1:0", 0, false},
                                         EndpointCase{"127.0.0.1:65536", 0, false},
                                         EndpointCase{"127.0.0.1:", 0, false},
                                         EndpointCase{"127.0.0.1:2x", 0, false},
                                         EndpointCase{":25", 0, false},
                                         EndpointCase{"bad_host:25", 0, false},
                                         EndpointCase{"", 25, false}));

// ── NextHop ──────────────────────────────────────────────────────────────────────────────────

struct NextHopCase {
  const char* text;
  bool valid;
  const char* host = "";
  std::uint16_t port = 0;
  bool literal = false;
};
class NextHopParse : public testing::TestWithParam<NextHopCase> {};
TEST_P(NextHopParse, AcceptsOrRejects) {
  const auto& c = GetParam();
  const auto hop = NextHop::parse(c.text);
  ASSERT_EQ(hop.has_value(), c.valid) << c.text;
  if (!hop) return;
  EXPECT_EQ(hop->host, c.host);
  EXPECT_EQ(hop->port, c.port);
  EXPECT_EQ(hop->address_literal, c.literal);
}
INSTANTIATE_TEST_SUITE_P(
    Table, NextHopParse,
    testing::Values(NextHopCase{"mail.partner.example", true, "mail.partner.example", 0, false},
                    NextHopCase{"mail.partner.example:587", true, "mail.partner.example", 587, false},
                    NextHopCase{"[mail.partner.example]:587", true, "mail.partner.example", 587, false},
                    NextHopCase{"[Mail.Partner.Example.]", true, "mail.partner.example", 0, false},
                    NextHopCase{"[192.0.2.1]:25", true, "192.0.2.1", 25, true},
                    NextHopCase{"192.0.2.1:25", true, "192.0.2.1", 25, true},
                    NextHopCase{"[IPv6:2001:db8::1]:25", true, "2001:db8::1", 25, true},
                    NextHopCase{"[ipv6:2001:db8::1]", true, "2001:db8::1", 0, true},
                    NextHopCase{"[2001:db8::1]:25", true, "2001:db8::1", 25, true},
                    NextHopCase{"2001:db8::1", false},
                    NextHopCase{"[IPv6:192.0.2.1]:25", false},
                    NextHopCase{"[IPv6:]:25", false},
                    NextHopCase{"[]:25", false},
                    NextHopCase{"mail.partner.example:0", false},
                    NextHopCase{"mail.partner.example:70000", false},
                    NextHopCase{"-mail.partner.example", false},
                    NextHopCase{"mail..partner.example", false},
                    NextHopCase{"mail_1.partner.example", false},
                    NextHopCase{"1.2.3", false},
                    NextHopCase{"", false}));

TEST(NextHop, HostNameLongerThan253OctetsIsRejected) {
  std::string name;
  while (name.size() < 250) name += "abcdefghi.";
  name += "example";  // 257 octets
  EXPECT_FALSE(NextHop::parse(name));
  EXPECT_FALSE(NextHop::parse(std::string(64, 'a') + ".example"));  // a 64-octet label
  EXPECT_TRUE(NextHop::parse(std::string(63, 'a') + ".example"));
}

// ── PolicySettings::find ─────────────────────────────────────────────────────────────────────

PolicySettings policy_with(std::initializer_list<const char*> patterns) {
  PolicySettings p;
  for (const char* pattern : patterns) {
    DestinationPolicy d;
    d.pattern = pattern;
    p.destinations.push_back(d);
  }
  return p;
}
const char* found(const PolicySettings& p, std::string_view domain) {
  const auto* d = p.find(domain);
  return d == nullptr ? "(none)" : d->pattern.c_str();
}

TEST(PolicyFind, ExactNameMatchesOnlyThatDomain) {
  const auto p = policy_with({"example.org"});
  EXPECT_STREQ(found(p, "example.org"), "example.org");
  EXPECT_STREQ(found(p, "mx.example.org"), "(none)");
  EXPECT_STREQ(found(p, "notexample.org"), "(none)");
}

TEST(PolicyFind, LeadingDotMatchesSubdomainsButNotTheDomainItself) {
  const auto p = policy_with({".example.org"});
  EXPECT_STREQ(found(p, "mx.example.org"), ".example.org");
  EXPECT_STREQ(found(p, "a.b.example.org"), ".example.org");
  EXPECT_STREQ(found(p, "example.org"), "(none)");
  EXPECT_STREQ(found(p, "badexample.org"), "(none)");
}

TEST(PolicyFind, NoTableMatchesGivesNull) {
  const auto p = policy_with({"example.org", ".example.net"});
  EXPECT_EQ(p.find("example.com"), nullptr);
  EXPECT_EQ(p.find(""), nullptr);
  EXPECT_EQ(PolicySettings{}.find("example.org"), nullptr);
}

TEST(PolicyFind, ExactMatchWinsOverParentPattern) {
  const auto p = policy_with({".example.org", "mx.example.org"});
  EXPECT_STREQ(found(p, "mx.example.org"), "mx.example.org");
  EXPECT_STREQ(found(p, "other.example.org"), ".example.org");
}

TEST(PolicyFind, ClosestParentPatternWins) {
  const auto p = policy_with({".org", ".example.org", ".b.example.org"});
  EXPECT_STREQ(found(p, "a.b.example.org"), ".b.example.org");
  EXPECT_STREQ(found(p, "b.example.org"), ".example.org");
  EXPECT_STREQ(found(p, "c.example.org"), ".example.org");
  EXPECT_STREQ(found(p, "example.org"), ".org");
}

TEST(PolicyFind, IgnoresCaseAndOneTrailingDot) {
  const auto p = policy_with({"bank.example", ".partner.example"});
  EXPECT_STREQ(found(p, "Bank.Example."), "bank.example");
  EXPECT_STREQ(found(p, "MX.partner.EXAMPLE"), ".partner.example");
}

}  // namespace
}  // namespace danerelay::config
