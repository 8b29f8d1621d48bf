// tests/config/values_test.cpp — the value syntaxes of danerelay.toml (config/values.hpp):
// durations, sizes, ports, host names (RFC 1123 §2.1) and destination patterns.
#include "config/values.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <string>

namespace danerelay::config {
namespace {

using namespace std::chrono_literals;

struct DurationCase {
  const char* text;
  std::optional<Duration> want;
};
class DurationParse : public testing::TestWithParam<DurationCase> {};
TEST_P(DurationParse, GivesMillisecondsOrNothing) {
  EXPECT_EQ(parse_duration(GetParam().text), GetParam().want) << GetParam().text;
}
INSTANTIATE_TEST_SUITE_P(
    Table, DurationParse,
    testing::Values(DurationCase{"5m", Duration{5min}}, DurationCase{"4000s", Duration{4000s}},
                    DurationCase{"300ms", Duration{300ms}}, DurationCase{"5d", Duration{120h}},
                    DurationCase{"1h30m", Duration{90min}}, DurationCase{"2w", Duration{336h}},
                    DurationCase{"1d12h", Duration{36h}}, DurationCase{"1m500ms", Duration{60500ms}},
                    DurationCase{"300", Duration{300s}}, DurationCase{"0", Duration{0}},
                    DurationCase{"0s", Duration{0}},
                    DurationCase{"", std::nullopt}, DurationCase{"5", Duration{5s}},
                    DurationCase{"5x", std::nullopt}, DurationCase{"5M", std::nullopt},
                    DurationCase{"1h30", std::nullopt}, DurationCase{"30m1h", std::nullopt},
                    DurationCase{"1h1h", std::nullopt}, DurationCase{"1.5h", std::nullopt},
                    DurationCase{"-5s", std::nullopt}, DurationCase{"5 m", std::nullopt},
                    DurationCase{" 5m", std::nullopt}, DurationCase{"m", std::nullopt},
                    DurationCase{"99999999999999999999s", std::nullopt},
                    DurationCase{"9223372036854775807s", std::nullopt},
                    DurationCase{"9223372036854775807", std::nullopt}));

TEST(DurationFormat, RendersLargestExactUnitsThatParseBack) {
  EXPECT_EQ(format_duration(Duration{90min}), "1h30m");
  EXPECT_EQ(format_duration(Duration{300ms}), "300ms");
  EXPECT_EQ(format_duration(Duration{0}), "0s");
  EXPECT_EQ(format_duration(Duration{120h}), "5d");
  EXPECT_EQ(format_duration(Duration{4000s}), "1h6m40s");
  for (const Duration d : {Duration{1}, Duration{61001}, Duration{8 * 24h + 1ms}}) {
    EXPECT_EQ(parse_duration(format_duration(d)), d) << format_duration(d);
  }
}

struct SizeCase {
  const char* text;
  std::optional<std::uint64_t> want;
};
class SizeParse : public testing::TestWithParam<SizeCase> {};
TEST_P(SizeParse, GivesBytesOrNothing) { EXPECT_EQ(parse_size(GetParam().text), GetParam().want) << GetParam().text; }
INSTANTIATE_TEST_SUITE_P(
    Table, SizeParse,
    testing::Values(SizeCase{"50MB", 50'000'000}, SizeCase{"50M", 50'000'000}, SizeCase{"50mb", 50'000'000},
                    SizeCase{"10MiB", 10 * 1024 * 1024}, SizeCase{"512k", 512'000}, SizeCase{"512KiB", 524'288},
                    SizeCase{"512kB", 512'000}, SizeCase{"1G", 1'000'000'000}, SizeCase{"2GiB", 2ull << 30},
                    SizeCase{"1TiB", 1ull << 40}, SizeCase{"1234", 1234}, SizeCase{"1234B", 1234},
                    SizeCase{"0", 0}, SizeCase{"", std::nullopt}, SizeCase{"MB", std::nullopt},
                    SizeCase{"50 MB", std::nullopt}, SizeCase{"1.5MB", std::nullopt}, SizeCase{"-1", std::nullopt},
                    SizeCase{"50XB", std::nullopt}, SizeCase{"50MBB", std::nullopt},
                    SizeCase{"20000000TiB", std::nullopt}));

TEST(PortParse, AcceptsOneTo65535DigitsOnly) {
  EXPECT_EQ(parse_port("25"), 25);
  EXPECT_EQ(parse_port("1"), 1);
  EXPECT_EQ(parse_port("65535"), 65535);
  EXPECT_EQ(parse_port("0"), std::nullopt);
  EXPECT_EQ(parse_port("65536"), std::nullopt);
  EXPECT_EQ(parse_port("+25"), std::nullopt);
  EXPECT_EQ(parse_port("025000"), std::nullopt);
  EXPECT_EQ(parse_port(""), std::nullopt);
  EXPECT_EQ(parse_port("2 5"), std::nullopt);
}

TEST(HostName, NormalizedFormIsLowerCaseWithoutTrailingDot) {
  EXPECT_EQ(normalize_host_name("MX.Example.ORG."), "mx.example.org");
  EXPECT_EQ(normalize_host_name("bad..name"), std::nullopt);
}

TEST(DestinationPattern, KeepsTheLeadingDotAndNormalizesTheRest) {
  EXPECT_EQ(normalize_destination_pattern("Bank.Example."), "bank.example");
  EXPECT_EQ(normalize_destination_pattern(".Partner.Example"), ".partner.example");
  EXPECT_EQ(normalize_destination_pattern("."), std::nullopt);
  EXPECT_EQ(normalize_destination_pattern(".."), std::nullopt);
  EXPECT_EQ(normalize_destination_pattern("..example"), std::nullopt);
  EXPECT_EQ(normalize_destination_pattern("*.example"), std::nullopt);
  EXPECT_EQ(normalize_destination_pattern("[192.0.2.1]"), std::nullopt);
}

}  // namespace
}  // namespace danerelay::config
