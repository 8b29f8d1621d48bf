// tests/smtp/proxy_protocol_test.cpp — the PROXY protocol parser against the vectors of haproxy's
// doc/proxy-protocol.txt (§2.1 v1 lines, §2.2 v2 blocks) and against hostile input: truncated,
// oversize, bad signatures, bad addresses and ports, v1 without CRLF, garbage. Every complete
// header is also fed byte by byte: each proper prefix must be need_more (the listener relies on
// that to read no byte past the header).
#include "smtp/proxy_protocol.hpp"

#include <gtest/gtest.h>

#include <string>

namespace danerelay::smtp::proxy {
namespace {

using namespace std::string_literals;

const std::string kSig = "\r\n\r\n\0\r\nQUIT\n"s;

std::string be16(unsigned v) { return std::string{static_cast<char>(v >> 8), static_cast<char>(v & 0xFF)}; }

// A v2 header: ver/cmd, fam/proto, then `rest` with its length filled in.
std::string v2(unsigned char ver_cmd, unsigned char fam, const std::string& rest) {
  return kSig + static_cast<char>(ver_cmd) + static_cast<char>(fam) + be16(static_cast<unsigned>(rest.size())) + rest;
}
const std::string kV4Addrs = "\xC0\x00\x02\x01"s + "\xC6\x33\x64\x07"s + be16(56324) + be16(25);  // 192.0.2.1 → 198.51.100.7
const std::string kV6Addrs = "\x20\x01\x0d\xb8"s + std::string(11, '\0') + "\x01"s + "\x20\x01\x0d\xb8"s +
                             std::string(11, '\0') + "\x02"s + be16(4242) + be16(587);  // 2001:db8::1 → 2001:db8::2

struct Good {
  const char* name;
  std::string bytes;
  Header want;
};

Header tcp(int version, std::string src, std::uint16_t sport, std::string dst, std::uint16_t dport, std::size_t length) {
  Header h;
  h.version = version;
  h.source = Endpoint{std::move(src), sport};
  h.destination = Endpoint{std::move(dst), dport};
  h.length = length;
  return h;
}
Header real_endpoints(int version, std::size_t length, bool local = false) {
  Header h;
  h.version = version;
  h.length = length;
  h.local = local;
  return h;
}

// §2.1's worst case for TCP6 (104 bytes), and a plain TCP4 line.
const std::string kV1Longest =
    "PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n";
const std::string kV1Tcp4 = "PROXY TCP4 192.0.2.1 198.51.100.7 1 25\r\n";

const Good kGood[] = {
    {"V1Tcp4", "PROXY TCP4 192.0.2.1 198.51.100.7 56324 25\r\n", tcp(1, "192.0.2.1", 56324, "198.51.100.7", 25, 0)},
    {"V1Tcp6", "PROXY TCP6 2001:db8::1 2001:db8::2 4242 587\r\n", tcp(1, "2001:db8::1", 4242, "2001:db8::2", 587, 0)},
    {"V1Tcp6IsWrittenInOneSpelling", "PROXY TCP6 2001:DB8:0:0::1 ::2 1 2\r\n", tcp(1, "2001:db8::1", 1, "::2", 2, 0)},
    {"V1PortZeroAndMax", "PROXY TCP4 10.0.0.1 10.0.0.2 0 65535\r\n", tcp(1, "10.0.0.1", 0, "10.0.0.2", 65535, 0)},
    {"V1UnknownUsesTheRealEndpoints", "PROXY UNKNOWN\r\n", real_endpoints(1, 0)},
    // §2.1: "the receiver must ignore anything presented before the CRLF is found" after UNKNOWN.
    {"V1UnknownIgnoresTheRest", "PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n", real_endpoints(1, 0)},
    {"V1LongestTcp6", kV1Longest, tcp(1, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 65535, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 65535, 0)},
    {"V1ClientBytesAfterTheHeaderAreNotLookedAt", kV1Tcp4 + "EHLO x\r\n\x16\x03\x01",
     tcp(1, "192.0.2.1", 1, "198.51.100.7", 25, kV1Tcp4.size())},
    {"V2ProxyTcp4", v2(0x21, 0x11, kV4Addrs), tcp(2, "192.0.2.1", 56324, "198.51.100.7", 25, 28)},
    {"V2ProxyTcp6", v2(0x21, 0x21, kV6Addrs), tcp(2, "2001:db8::1", 4242, "2001:db8::2", 587, 52)},
    // §2.2.1 ff: TLVs (here PP2_TYPE_ALPN "smtp" and a PP2_TYPE_NOOP pad) are skipped.
    {"V2TlvsAreSkipped", v2(0x21, 0x11, kV4Addrs + "\x01"s + be16(4) + "smtp" + "\x04"s + be16(0)),
     tcp(2, "192.0.2.1", 56324, "198.51.100.7", 25, 28 + 7 + 3)},
    // §2.2: LOCAL is the balancer's own connection (health check); addresses, if any, ignored.
    {"V2LocalWithoutAddresses", v2(0x20, 0x00, ""), real_endpoints(2, 16, true)},
    {"V2LocalIgnoresItsBlock", v2(0x20, 0x11, kV4Addrs), real_endpoints(2, 28, true)},
    {"V2UnspecUsesTheRealEndpoints", v2(0x21, 0x00, ""), real_endpoints(2, 16)},
    {"V2UnixUsesTheRealEndpoints", v2(0x21, 0x31, std::string(216, '\0')), real_endpoints(2, 232)},
    {"V2AtTheCap", v2(0x21, 0x11, kV4Addrs + "\x04"s + be16(static_cast<unsigned>(kMaxV2Header - 16 - 12 - 3)) + std::string(kMaxV2Header - 31, 'x')),
     tcp(2, "192.0.2.1", 56324, "198.51.100.7", 25, kMaxV2Header)},
    {"V2ClientBytesAfterTheHeaderAreNotLookedAt", v2(0x21, 0x11, kV4Addrs) + "\x16\x03\x01\x02\x00garbage"s,
     tcp(2, "192.0.2.1", 56324, "198.51.100.7", 25, 28)},
};

class ProxyGood : public testing::TestWithParam<Good> {};

// want.length 0 in the table: the header is the whole input.
Header wanted(const Good& g) {
  Header h = g.want;
  if (h.length == 0) h.length = g.bytes.size();
  return h;
}

TEST_P(ProxyGood, ParsesWhole) {
  const auto r = parse(GetParam().bytes);
  ASSERT_EQ(r.status, Status::done) << r.error;
  EXPECT_EQ(r.header, wanted(GetParam()));
}

TEST_P(ProxyGood, EveryProperPrefixNeedsMore) {
  const std::string& b = GetParam().bytes;
  for (std::size_t n = 0; n < wanted(GetParam()).length; ++n) {
    const auto r = parse(std::string_view(b).substr(0, n));
    ASSERT_EQ(r.status, Status::need_more) << "prefix of " << n << " bytes: " << r.error;
  }
}

INSTANTIATE_TEST_SUITE_P(Spec, ProxyGood, testing::ValuesIn(kGood), [](const auto& i) { return std::string(i.param.name); });

struct Bad {
  const char* name;
  std::string bytes;
  std::string error;  // a part of the reason
};

const Bad kBad[] = {
    {"Garbage", "EHLO client.example\r\n", "no PROXY protocol header"},
    {"GarbageIsRefusedAtTheFirstByte", "E", "no PROXY protocol header"},
    {"LowerCaseProxy", "proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n", "no PROXY protocol header"},
    {"TlsClientHello", "\x16\x03\x01\x02\x00\x01"s, "no PROXY protocol header"},
    {"BadV2Signature", "\r\n\r\n\0\r\nQUIT\r"s, "no PROXY protocol header"},
    {"V1WithoutCrlfWithin107Bytes", "PROXY TCP4 " + std::string(96, '1'), "without CRLF within 107"},
    {"V1LongerThan107", "PROXY UNKNOWN " + std::string(92, 'x') + "\r\n", "longer than 107"},
    {"V1BareLf", "PROXY TCP4 192.0.2.1 198.51.100.7 1 25\n", "bare LF"},
    {"V1BareCr", "PROXY TCP4 192.0.2.1 198.51.100.7 1 25\rEHLO", "CR not followed by LF"},
    {"V1UnknownProtocol", "PROXY UDP4 192.0.2.1 198.51.100.7 1 25\r\n", "unknown protocol"},
    {"V1TooFewFields", "PROXY TCP4 192.0.2.1 198.51.100.7 1\r\n", "4 fields"},
    {"V1TooManyFields", "PROXY TCP4 192.0.2.1 198.51.100.7 1 25 26\r\n", "too many fields"},
    {"V1DoubleSpace", "PROXY TCP4 192.0.2.1  198.51.100.7 1 25\r\n", "empty field"},
    {"V1TrailingSpace", "PROXY TCP4 192.0.2.1 198.51.100.7 1 25 \r\n", "empty field"},
    {"V1Ipv6InTcp4", "PROXY TCP4 2001:db8::1 198.51.100.7 1 25\r\n", "invalid IPv4 address"},
    {"V1Ipv4InTcp6", "PROXY TCP6 192.0.2.1 2001:db8::2 1 25\r\n", "invalid IPv6 address"},
    {"V1OctetTooLarge", "PROXY TCP4 192.0.2.256 198.51.100.7 1 25\r\n", "invalid IPv4 address"},
    {"V1LeadingZeroOctet", "PROXY TCP4 192.0.2.01 198.51.100.7 1 25\r\n", "invalid IPv4 address"},
    {"V1HostName", "PROXY TCP4 client.example 198.51.100.7 1 25\r\n", "invalid IPv4 address"},
    {"V1ZoneId", "PROXY TCP6 fe80::1%eth0 2001:db8::2 1 25\r\n", "invalid IPv6 address"},
    {"V1PortTooLarge", "PROXY TCP4 192.0.2.1 198.51.100.7 65536 25\r\n", "invalid port"},
    {"V1PortLeadingZero", "PROXY TCP4 192.0.2.1 198.51.100.7 025 25\r\n", "invalid port"},
    {"V1PortNegative", "PROXY TCP4 192.0.2.1 198.51.100.7 -1 25\r\n", "invalid port"},
    {"V1PortNotDecimal", "PROXY TCP4 192.0.2.1 198.51.100.7 0x19 25\r\n", "invalid port"},
    {"V1NulInLine", "PROXY TCP4 192.0.2.1\0 198.51.100.7 1 25\r\n"s, "invalid IPv4 address"},
    {"V2Version1", kSig + "\x11\x11"s, "version 1"},
    {"V2Version3", kSig + "\x31\x11"s, "version 3"},
    {"V2UnknownCommand", kSig + "\x22\x11"s, "unknown command 2"},
    {"V2UnknownFamily", kSig + "\x21\x41"s, "unknown address family 4"},
    {"V2UnknownTransport", kSig + "\x21\x13"s, "unknown transport 3"},
    // Refused at the 16th byte: nothing of a 64 KiB block is waited for.
    {"V2Oversize", kSig + "\x21\x11"s + be16(65535), "at most 2048"},
    {"V2JustOverTheCap", kSig + "\x21\x11"s + be16(static_cast<unsigned>(kMaxV2Header - 15)), "at most 2048"},
    {"V2Tcp4TooShort", v2(0x21, 0x11, kV4Addrs.substr(0, 11)), "too short for its addresses (12 bytes)"},
    {"V2Tcp6TooShort", v2(0x21, 0x21, kV4Addrs), "too short for its addresses (36 bytes)"},
    {"V2UnixTooShort", v2(0x21, 0x31, kV6Addrs), "too short for its addresses (216 bytes)"},
    {"V2Udp4", v2(0x21, 0x12, kV4Addrs), "datagram"},
    {"V2Tcp4UnspecTransport", v2(0x21, 0x10, kV4Addrs), "without the stream transport"},
    {"V2TruncatedTlv", v2(0x21, 0x11, kV4Addrs + "\x01\x00"s), "truncated TLV"},
    {"V2TlvOverrunsTheHeader", v2(0x21, 0x11, kV4Addrs + "\x01"s + be16(5) + "smtp"), "TLV longer than the header"},
};

class ProxyBad : public testing::TestWithParam<Bad> {};

TEST_P(ProxyBad, IsRefusedWithAReason) {
  const auto r = parse(GetParam().bytes);
  ASSERT_EQ(r.status, Status::error);
  EXPECT_NE(r.error.find(GetParam().error), std::string::npos) << r.error;
}

INSTANTIATE_TEST_SUITE_P(Hostile, ProxyBad, testing::ValuesIn(kBad), [](const auto& i) { return std::string(i.param.name); });

TEST(ProxyProtocol, NothingYetNeedsMore) { EXPECT_EQ(parse("").status, Status::need_more); }

TEST(ProxyProtocol, TruncatedHeadersNeedMoreUntilTheyEnd) {
  EXPECT_EQ(parse("PROXY TCP4 192.0.2.1 198.51.100.7 1 25\r").status, Status::need_more);
  EXPECT_EQ(parse("PRO").status, Status::need_more);
  EXPECT_EQ(parse(kSig.substr(0, 5)).status, Status::need_more);
  EXPECT_EQ(parse(v2(0x21, 0x11, kV4Addrs).substr(0, 27)).status, Status::need_more);
}

TEST(ProxyProtocol, A107ByteLineIsStillAHeader) {
  // §2.1: TCP6's worst case is 104 bytes; UNKNOWN may carry anything up to the 107-byte limit.
  EXPECT_EQ(kV1Longest.size(), 104u);
  const std::string longest_unknown = "PROXY UNKNOWN " + std::string(91, 'x') + "\r\n";
  ASSERT_EQ(longest_unknown.size(), 107u);
  EXPECT_EQ(parse(longest_unknown).status, Status::done);
}

}  // namespace
}  // namespace danerelay::smtp::proxy
