// config/config.cpp — the few functions config.hpp declares: TLS level names, CIDR networks,
// endpoints, next-hop routes and the per-destination policy lookup.
// Conventions: Postfix level names and leading-dot rule (smtp_tls_policy_maps), Postfix
// mynetworks CIDR handling (host bits are masked), RFC 5321 §4.1.3 address literals.
#include "config/config.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>

#include "config/values.hpp"
#include "smtp/syntax.hpp"

namespace danerelay::config {

namespace {

struct LevelName {
  TlsLevel level;
  std::string_view name;
};
constexpr std::array<LevelName, 7> kLevelNames{{
    {TlsLevel::none, "none"},
    {TlsLevel::may, "may"},
    {TlsLevel::encrypt, "encrypt"},
    {TlsLevel::dane, "dane"},
    {TlsLevel::dane_only, "dane-only"},
    {TlsLevel::verify, "verify"},
    {TlsLevel::secure, "secure"},
}};

char to_lower(char c) noexcept { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool iequals(std::string_view a, std::string_view b) noexcept {
  return a.size() == b.size() &&
         std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) { return to_lower(x) == to_lower(y); });
}

// The address bytes of an IPv4-mapped IPv6 address (::ffff:a.b.c.d), or nullptr.
const std::uint8_t* mapped_ipv4(const std::uint8_t* address) noexcept {
  static constexpr std::uint8_t kPrefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  return std::memcmp(address, kPrefix, sizeof kPrefix) == 0 ? address + 12 : nullptr;
}

bool prefix_matches(const std::uint8_t* network, const std::uint8_t* address, unsigned prefix) noexcept {
  const unsigned whole = prefix / 8;
  if (std::memcmp(network, address, whole) != 0) return false;
  const unsigned bits = prefix % 8;
  if (bits == 0) return true;
  const auto mask = static_cast<std::uint8_t>(0xff << (8 - bits));
  return (network[whole] & mask) == (address[whole] & mask);
}

// Splits "host:port" / "[host]:port" / "host" into the host text (brackets removed), whether
// it was bracketed, and the port text (empty when absent). nullopt on a malformed shape.
struct HostPort {
  std::string_view host;
  bool bracketed = false;
  std::optional<std::string_view> port;
};
std::optional<HostPort> split_host_port(std::string_view text) noexcept {
  HostPort out;
  std::string_view rest;
  if (text.starts_with('[')) {
    const auto close = text.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    out.host = text.substr(1, close - 1);
    out.bracketed = true;
    rest = text.substr(close + 1);
    if (!rest.empty() && !rest.starts_with(':')) return std::nullopt;
  } else {
    const auto colon = text.find(':');
    if (colon != std::string_view::npos && text.find(':', colon + 1) != std::string_view::npos) {
      return std::nullopt;  // an unbracketed IPv6 address: "2001:db8::1:25" is ambiguous
    }
    out.host = text.substr(0, colon);
    rest = colon == std::string_view::npos ? std::string_view{} : text.substr(colon);
  }
  if (!rest.empty()) out.port = rest.substr(1);
  if (out.host.empty()) return std::nullopt;
  return out;
}

}  // namespace

std::string_view to_string(TlsLevel level) noexcept {
  for (const auto& entry : kLevelNames) {
    if (entry.level == level) return entry.name;
  }
  return "unknown";
}

std::optional<TlsLevel> parse_tls_level(std::string_view text) noexcept {
  // Only Postfix's spellings: "dane-only", never "dane_only" (one name per level in logs and docs).
  for (const auto& entry : kLevelNames) {
    if (entry.name == text) return entry.level;
  }
  return std::nullopt;
}

std::optional<Cidr> Cidr::parse(std::string_view text) {
  Cidr out;
  out.text = std::string(text);
  std::string_view address = text;
  std::optional<std::string_view> length;
  if (const auto slash = text.find('/'); slash != std::string_view::npos) {
    address = text.substr(0, slash);
    length = text.substr(slash + 1);
  }
  bool bracketed = false;
  if (address.starts_with('[') && address.ends_with(']') && address.size() >= 2) {  // Postfix "[::1]/128"
    address = address.substr(1, address.size() - 2);
    bracketed = true;
  }
  if (syntax::is_ipv4_address(address) && !bracketed) {
    out.v6 = false;
  } else if (syntax::is_ipv6_address(address)) {
    out.v6 = true;
  } else {
    return std::nullopt;
  }
  const std::string buffer(address);
  if (::inet_pton(out.v6 ? AF_INET6 : AF_INET, buffer.c_str(), out.bytes.data()) != 1) return std::nullopt;

  const unsigned max_prefix = out.v6 ? 128 : 32;
  unsigned prefix = max_prefix;
  if (length) {
    if (length->empty() || length->size() > 3) return std::nullopt;
    prefix = 0;
    for (char c : *length) {
      if (c < '0' || c > '9') return std::nullopt;
      prefix = prefix * 10 + static_cast<unsigned>(c - '0');
    }
    if (prefix > max_prefix) return std::nullopt;
  }
  out.prefix = static_cast<std::uint8_t>(prefix);

  // Clear host bits beyond the prefix ("10.1.2.3/8" is 10.0.0.0/8, as in Postfix mynetworks).
  for (unsigned bit = prefix; bit < max_prefix; ++bit) {
    out.bytes[bit / 8] = static_cast<std::uint8_t>(out.bytes[bit / 8] & ~(0x80u >> (bit % 8)));
  }
  return out;
}

bool Cidr::contains(const std::uint8_t* address, std::size_t length) const noexcept {
  if (address == nullptr) return false;
  if (!v6) {
    if (length == 4) return prefix_matches(bytes.data(), address, prefix);
    if (length == 16) {
      const std::uint8_t* v4 = mapped_ipv4(address);
      return v4 != nullptr && prefix_matches(bytes.data(), v4, prefix);
    }
    return false;
  }
  if (length == 16) return prefix_matches(bytes.data(), address, prefix);
  if (length == 4) {  // an IPv4 client against an IPv6 network: compare as ::ffff:a.b.c.d
    std::array<std::uint8_t, 16> mapped{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    std::memcpy(mapped.data() + 12, address, 4);
    return prefix_matches(bytes.data(), mapped.data(), prefix);
  }
  return false;
}

std::optional<Endpoint> Endpoint::parse(std::string_view text, std::uint16_t default_port) {
  const auto parts = split_host_port(text);
  if (!parts) return std::nullopt;
  Endpoint out;
  if (parts->bracketed) {
    if (!syntax::is_ipv6_address(parts->host)) return std::nullopt;
    out.host = std::string(parts->host);
  } else if (syntax::is_ipv4_address(parts->host)) {
    out.host = std::string(parts->host);
  } else if (auto name = normalize_host_name(parts->host)) {
    out.host = std::move(*name);
  } else {
    return std::nullopt;
  }
  if (parts->port) {
    const auto port = parse_port(*parts->port);
    if (!port) return std::nullopt;
    out.port = *port;
  } else {
    if (default_port == 0) return std::nullopt;
    out.port = default_port;
  }
  return out;
}

std::optional<NextHop> NextHop::parse(std::string_view text) {
  const auto parts = split_host_port(text);
  if (!parts) return std::nullopt;
  NextHop out;
  std::string_view host = parts->host;
  // DANE does not apply to address literals (RFC 7672 §2.2, D-15).
  if (parts->bracketed && !syntax::is_host_name(host)) {
    // "[192.0.2.1]", "[IPv6:2001:db8::1]" or Postfix's "[2001:db8::1]" (smtp/syntax.hpp).
    auto literal = syntax::parse_address_literal("[" + std::string(host) + "]", true);
    if (!literal) return std::nullopt;
    out.host = std::move(literal->address);
    out.address_literal = true;
  } else if (syntax::is_ipv4_address(host)) {
    out.host = std::string(host);
    out.address_literal = true;
  } else if (auto name = normalize_host_name(host)) {
    out.host = std::move(*name);
  } else {
    return std::nullopt;
  }
  if (parts->port) {
    const auto port = parse_port(*parts->port);
    if (!port) return std::nullopt;
    out.port = *port;
  }
  return out;
}

const DestinationPolicy* PolicySettings::find(std::string_view domain) const noexcept {
  if (domain.ends_with('.')) domain.remove_suffix(1);
  if (domain.empty()) return nullptr;
  const auto lookup = [this](std::string_view pattern) -> const DestinationPolicy* {
    const auto it = std::find_if(destinations.begin(), destinations.end(),
                                 [pattern](const DestinationPolicy& p) { return iequals(p.pattern, pattern); });
    return it == destinations.end() ? nullptr : &*it;
  };
  // 1. The domain itself ("example.org" only; ".example.org" never matches example.org).
  if (const auto* exact = lookup(domain)) return exact;
  // 2. ".parent" tables, closest parent first: for a.b.example.org try ".b.example.org",
  //    ".example.org", ".org" (Postfix smtp_tls_policy_maps with parent_domain_matches_subdomains).
  for (auto dot = domain.find('.'); dot != std::string_view::npos; dot = domain.find('.', dot + 1)) {
    if (const auto* parent = lookup(domain.substr(dot))) return parent;
  }
  return nullptr;
}

}  // namespace danerelay::config
