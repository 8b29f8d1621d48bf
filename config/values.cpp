// config/values.cpp — durations, sizes, ports, host names and address literals (see values.hpp).
// Host names follow RFC 1123 §2.1 (LDH labels, a top-level label is never all-numeric, so a
// dotted quad is never mistaken for a name); address literals are whatever inet_pton(3) accepts.
#include "config/values.hpp"
#include "smtp/syntax.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <limits>

namespace danerelay::config {

namespace {

bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }
bool is_alpha(char c) noexcept { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
char to_lower(char c) noexcept { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool iequals(std::string_view a, std::string_view b) noexcept {
  return a.size() == b.size() &&
         std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) { return to_lower(x) == to_lower(y); });
}

// Reads a run of decimal digits at `pos` into `value`; false on no digits or overflow.
bool read_number(std::string_view text, std::size_t& pos, std::uint64_t& value) noexcept {
  const std::size_t start = pos;
  value = 0;
  while (pos < text.size() && is_digit(text[pos])) {
    if (__builtin_mul_overflow(value, 10u, &value) ||
        __builtin_add_overflow(value, static_cast<unsigned>(text[pos] - '0'), &value)) {
      return false;
    }
    ++pos;
  }
  return pos > start;
}

struct DurationUnit {
  std::string_view name;
  std::int64_t milliseconds;
};
// Largest first: a sum such as "1h30m" must list its units in this order, each at most once.
constexpr std::array<DurationUnit, 6> kDurationUnits{{
    {"w", 7LL * 24 * 3600 * 1000},
    {"d", 24LL * 3600 * 1000},
    {"h", 3600LL * 1000},
    {"m", 60LL * 1000},
    {"s", 1000},
    {"ms", 1},
}};

struct SizeUnit {
  std::string_view name;
  std::uint64_t bytes;
};
constexpr std::uint64_t kKilo = 1000, kKibi = 1024;
constexpr std::array<SizeUnit, 18> kSizeUnits{{
    {"", 1},
    {"b", 1},
    {"k", kKilo},
    {"kb", kKilo},
    {"ki", kKibi},
    {"kib", kKibi},
    {"m", kKilo * kKilo},
    {"mb", kKilo * kKilo},
    {"mi", kKibi * kKibi},
    {"mib", kKibi * kKibi},
    {"g", kKilo * kKilo * kKilo},
    {"gb", kKilo * kKilo * kKilo},
    {"gi", kKibi * kKibi * kKibi},
    {"gib", kKibi * kKibi * kKibi},
    {"t", kKilo * kKilo * kKilo * kKilo},
    {"tb", kKilo * kKilo * kKilo * kKilo},
    {"ti", kKibi * kKibi * kKibi * kKibi},
    {"tib", kKibi * kKibi * kKibi * kKibi},
}};

}  // namespace

std::optional<Duration> parse_duration(std::string_view text) noexcept {
  if (text.empty()) return std::nullopt;
  std::size_t pos = 0;
  std::uint64_t number = 0;
  constexpr auto kMax = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());

  // A bare number is seconds (Postfix time parameters default to seconds).
  if (std::all_of(text.begin(), text.end(), is_digit)) {
    if (!read_number(text, pos, number) || number > kMax / 1000) return std::nullopt;
    return Duration{static_cast<std::int64_t>(number) * 1000};
  }

  std::uint64_t total = 0;
  std::size_t next_unit = 0;  // index into kDurationUnits of the smallest unit not yet passed
  while (pos < text.size()) {
    if (!read_number(text, pos, number)) return std::nullopt;
    const std::size_t unit_start = pos;
    while (pos < text.size() && is_alpha(text[pos])) ++pos;
    const std::string_view unit = text.substr(unit_start, pos - unit_start);
    const auto found = std::find_if(kDurationUnits.begin() + static_cast<std::ptrdiff_t>(next_unit),
                                     kDurationUnits.end(), [unit](const DurationUnit& u) { return u.name == unit; });
    if (found == kDurationUnits.end()) return std::nullopt;  // unknown, repeated or out of order
    next_unit = static_cast<std::size_t>(found - kDurationUnits.begin()) + 1;
    std::uint64_t part = 0;
    if (__builtin_mul_overflow(number, static_cast<std::uint64_t>(found->milliseconds), &part) ||
        __builtin_add_overflow(total, part, &total) || total > kMax) {
      return std::nullopt;
    }
  }
  return Duration{static_cast<std::int64_t>(total)};
}

std::string format_duration(Duration duration) {
  std::int64_t rest = duration.count();
  if (rest == 0) return "0s";
  std::string out;
  if (rest < 0) {
    out.push_back('-');  // not out = "-": g++ 12 -Wrestrict false positive under ASan
    rest = -rest;
  }
  for (const auto& unit : kDurationUnits) {
    if (rest >= unit.milliseconds) {
      out += std::to_string(rest / unit.milliseconds);
      out += unit.name;
      rest %= unit.milliseconds;
    }
  }
  return out;
}

std::optional<std::uint64_t> parse_size(std::string_view text) noexcept {
  std::size_t pos = 0;
  std::uint64_t number = 0;
  if (!read_number(text, pos, number)) return std::nullopt;
  const std::string_view unit = text.substr(pos);
  const auto found = std::find_if(kSizeUnits.begin(), kSizeUnits.end(),
                                   [unit](const SizeUnit& u) { return iequals(u.name, unit); });
  if (found == kSizeUnits.end()) return std::nullopt;
  std::uint64_t bytes = 0;
  if (__builtin_mul_overflow(number, found->bytes, &bytes)) return std::nullopt;
  return bytes;
}

std::optional<std::uint16_t> parse_port(std::string_view text) noexcept {
  if (text.empty() || text.size() > 5) return std::nullopt;
  std::size_t pos = 0;
  std::uint64_t number = 0;
  if (!read_number(text, pos, number) || pos != text.size()) return std::nullopt;
  if (number < 1 || number > 65535) return std::nullopt;
  return static_cast<std::uint16_t>(number);
}

std::optional<std::string> normalize_host_name(std::string_view name) {
  if (!syntax::is_host_name(name)) return std::nullopt;
  if (name.ends_with('.')) name.remove_suffix(1);
  std::string out(name);
  std::transform(out.begin(), out.end(), out.begin(), to_lower);
  return out;
}

std::optional<std::string> normalize_destination_pattern(std::string_view pattern) {
  const bool subdomains = pattern.starts_with('.');
  if (subdomains) pattern.remove_prefix(1);
  auto host = normalize_host_name(pattern);
  if (!host) return std::nullopt;
  return subdomains ? "." + *host : *host;
}

}  // namespace danerelay::config
