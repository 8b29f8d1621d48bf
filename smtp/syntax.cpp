// smtp/syntax.cpp — see syntax.hpp.
#include "smtp/syntax.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <ctime>

namespace danerelay::syntax {

namespace {

bool is_digit(unsigned char c) { return c >= '0' && c <= '9'; }
bool is_alnum(unsigned char c) { return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return (x >= 'A' && x <= 'Z' ? x + 32 : x) == (y >= 'A' && y <= 'Z' ? y + 32 : y);
         });
}

template <std::size_t N>
bool pton(int family, std::string_view text, std::size_t max_len) {
  if (text.empty() || text.size() > max_len || text.find('\0') != std::string_view::npos) return false;
  std::array<char, 64> buffer{};
  std::copy(text.begin(), text.end(), buffer.begin());
  std::array<unsigned char, N> out{};
  return ::inet_pton(family, buffer.data(), out.data()) == 1;
}

}  // namespace

bool is_host_name(std::string_view name, bool utf8) noexcept {
  if (name.ends_with('.')) name.remove_suffix(1);
  if (name.empty() || name.size() > 253) return false;
  std::string_view last;
  while (true) {
    const auto dot = name.find('.');
    const std::string_view label = name.substr(0, dot);
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') return false;
    for (const char ch : label) {
      const auto c = static_cast<unsigned char>(ch);
      if (!(is_alnum(c) || c == '-' || (utf8 && c >= 0x80))) return false;
    }
    last = label;
    if (dot == std::string_view::npos) break;
    name.remove_prefix(dot + 1);
  }
  return !std::all_of(last.begin(), last.end(), [](char c) { return is_digit(static_cast<unsigned char>(c)); });
}

bool is_ipv4_address(std::string_view text) noexcept { return pton<4>(AF_INET, text, 15); }
bool is_ipv6_address(std::string_view text) noexcept { return pton<16>(AF_INET6, text, 45); }  // INET6_ADDRSTRLEN - 1

std::optional<AddressLiteral> parse_address_literal(std::string_view text, bool untagged_v6) {
  if (text.size() < 3 || text.front() != '[' || text.back() != ']') return std::nullopt;
  std::string_view inner = text.substr(1, text.size() - 2);
  if (inner.size() > 5 && iequals(inner.substr(0, 5), "IPv6:")) {
    inner.remove_prefix(5);
    if (!is_ipv6_address(inner)) return std::nullopt;
    return AddressLiteral{true, std::string(inner)};
  }
  if (is_ipv4_address(inner)) return AddressLiteral{false, std::string(inner)};
  if (untagged_v6 && is_ipv6_address(inner)) return AddressLiteral{true, std::string(inner)};
  return std::nullopt;
}

std::string_view literal_address_or_name(std::string_view host) noexcept {
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
    if (host.size() > 5 && iequals(host.substr(0, 5), "IPv6:")) host.remove_prefix(5);
  }
  return host;
}

std::string xtext_encode(std::string_view text) {
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size());
  for (const char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    if (c >= '!' && c <= '~' && c != '+' && c != '=') {
      out += ch;
    } else {
      out += '+';
      out += hex[c >> 4];
      out += hex[c & 0x0f];
    }
  }
  return out;
}

std::optional<std::string> xtext_decode(std::string_view text) {
  const auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;  // RFC 3461 §4: upper case only
  };
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c == '+') {
      if (i + 2 >= text.size()) return std::nullopt;
      const int hi = hex(text[i + 1]);
      const int lo = hex(text[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else if (c >= '!' && c <= '~' && c != '=') {
      out.push_back(static_cast<char>(c));
    } else {
      return std::nullopt;
    }
  }
  return out;
}

std::string rfc5322_date(std::chrono::system_clock::time_point when) {
  static constexpr std::array<const char*, 7> days{"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static constexpr std::array<const char*, 12> months{"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  const std::time_t t = std::chrono::system_clock::to_time_t(when);
  std::tm tm{};
  gmtime_r(&t, &tm);
  std::array<char, 64> buffer{};
  const int n = std::snprintf(buffer.data(), buffer.size(), "%s, %02d %s %04d %02d:%02d:%02d +0000",
                              days[static_cast<std::size_t>(tm.tm_wday) % 7], tm.tm_mday,
                              months[static_cast<std::size_t>(tm.tm_mon) % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
                              tm.tm_sec);
  return std::string(buffer.data(), n > 0 ? static_cast<std::size_t>(n) : 0);
}

}  // namespace danerelay::syntax
