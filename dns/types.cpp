// dns/types.cpp — names, verdict strings and bounds-checked RDATA decoders (RFC 1035 §3.3,
// RFC 3596, RFC 6698 §2.1). Pure: no I/O.
#include "dns/types.hpp"

#include <arpa/inet.h>

#include <cctype>

namespace danerelay::dns {

std::string_view to_string(RRType type) noexcept {
  switch (type) {
    case RRType::A: return "A";
    case RRType::NS: return "NS";
    case RRType::CNAME: return "CNAME";
    case RRType::SOA: return "SOA";
    case RRType::PTR: return "PTR";
    case RRType::MX: return "MX";
    case RRType::TXT: return "TXT";
    case RRType::AAAA: return "AAAA";
    case RRType::DS: return "DS";
    case RRType::DNSKEY: return "DNSKEY";
    case RRType::TLSA: return "TLSA";
  }
  return "TYPE?";
}

std::string_view to_string(Verdict verdict) noexcept {
  switch (verdict) {
    case Verdict::secure: return "secure";
    case Verdict::insecure: return "insecure";
    case Verdict::bogus: return "bogus";
    case Verdict::error: return "error";
  }
  return "error";
}

std::string_view to_string(Failure failure) noexcept {
  switch (failure) {
    case Failure::none: return "none";
    case Failure::servfail: return "servfail";
    case Failure::timeout: return "timeout";
    case Failure::malformed: return "malformed";
    case Failure::refused: return "refused";
    case Failure::other: return "error";
  }
  return "error";
}

std::string Answer::describe() const {
  std::string out;
  switch (verdict) {
    case Verdict::secure:
    case Verdict::insecure:
      out = std::string(to_string(verdict));
      if (nxdomain) {
        out += " NXDOMAIN";
      } else if (rdata.empty()) {
        out += " NODATA";
      }
      break;
    case Verdict::bogus:
      out = "bogus";
      break;
    case Verdict::error:
      out = std::string(to_string(failure));
      break;
  }
  if (!ok() && !why.empty()) out += " (" + why + ")";
  return out;
}

std::string TlsaRecord::to_string() const {
  return std::to_string(usage) + ' ' + std::to_string(selector) + ' ' + std::to_string(matching_type) + ' ' +
         to_hex(data);
}

std::string IpAddress::to_string() const {
  char buf[INET6_ADDRSTRLEN] = {};
  if (inet_ntop(v6 ? AF_INET6 : AF_INET, bytes.data(), buf, sizeof buf) == nullptr) return "?";
  return buf;
}

std::optional<IpAddress> IpAddress::parse(std::string_view text) {
  std::string s(text);
  IpAddress out;
  if (inet_pton(AF_INET, s.c_str(), out.bytes.data()) == 1) return out;
  out.v6 = true;
  if (inet_pton(AF_INET6, s.c_str(), out.bytes.data()) == 1) return out;
  return std::nullopt;
}

std::string normalize_name(std::string_view name) {
  std::string out(name);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (out.size() > 1 && out.back() == '.') out.pop_back();
  return out;
}

std::optional<std::string> decode_wire_name(std::span<const std::uint8_t> wire, std::size_t& offset) {
  // libunbound hands out RDATA with names uncompressed; compression pointers are malformed here.
  std::string out;
  std::size_t total = 0;
  while (true) {
    if (offset >= wire.size()) return std::nullopt;
    const std::uint8_t len = wire[offset++];
    if (len == 0) break;
    if (len > 63 || offset + len > wire.size()) return std::nullopt;
    total += len + 1u;
    if (total > 254) return std::nullopt;
    if (!out.empty()) out += '.';
    for (std::size_t i = 0; i < len; ++i) {
      const auto c = static_cast<unsigned char>(wire[offset + i]);
      // A dot or an unprintable byte inside a label cannot be a host name: refuse it rather
      // than produce a presentation form that would parse back differently.
      if (c == '.' || c <= 0x20 || c >= 0x7f) return std::nullopt;
      out += static_cast<char>(std::tolower(c));
    }
    offset += len;
  }
  return out.empty() ? std::string(".") : out;
}

std::optional<MxRecord> decode_mx(std::span<const std::uint8_t> rdata) {
  if (rdata.size() < 3) return std::nullopt;
  MxRecord mx;
  mx.preference = static_cast<std::uint16_t>((rdata[0] << 8) | rdata[1]);
  std::size_t offset = 2;
  auto name = decode_wire_name(rdata, offset);
  if (!name || offset != rdata.size()) return std::nullopt;
  mx.exchange = std::move(*name);
  return mx;
}

std::optional<TlsaRecord> decode_tlsa(std::span<const std::uint8_t> rdata) {
  if (rdata.size() < 3) return std::nullopt;
  TlsaRecord r;
  r.usage = rdata[0];
  r.selector = rdata[1];
  r.matching_type = rdata[2];
  r.data.assign(rdata.begin() + 3, rdata.end());
  return r;
}

std::optional<IpAddress> decode_address(RRType type, std::span<const std::uint8_t> rdata) {
  IpAddress ip;
  if (type == RRType::A && rdata.size() == 4) {
    std::copy(rdata.begin(), rdata.end(), ip.bytes.begin());
    return ip;
  }
  if (type == RRType::AAAA && rdata.size() == 16) {
    ip.v6 = true;
    std::copy(rdata.begin(), rdata.end(), ip.bytes.begin());
    return ip;
  }
  return std::nullopt;
}

std::optional<std::string> decode_cname(std::span<const std::uint8_t> rdata) {
  std::size_t offset = 0;
  auto name = decode_wire_name(rdata, offset);
  if (!name || offset != rdata.size()) return std::nullopt;
  return name;
}

std::optional<std::string> decode_ptr(std::span<const std::uint8_t> rdata) { return decode_cname(rdata); }

std::string to_hex(std::span<const std::uint8_t> bytes) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (std::uint8_t b : bytes) {
    out += digits[b >> 4];
    out += digits[b & 0xf];
  }
  return out;
}

}  // namespace danerelay::dns
