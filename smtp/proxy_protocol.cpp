// smtp/proxy_protocol.cpp — see proxy_protocol.hpp. Spec: haproxy doc/proxy-protocol.txt
// (section numbers below are that file's).
#include "smtp/proxy_protocol.hpp"

#include <arpa/inet.h>

#include <array>
#include <cstring>

namespace danerelay::smtp::proxy {

namespace {

constexpr std::string_view v1_prefix = "PROXY ";
constexpr std::string_view v2_signature{"\r\n\r\n\0\r\nQUIT\n", 12};
constexpr std::size_t v2_fixed = 16;  // signature, ver/cmd, fam/proto, length

Result need_more() { return Result{}; }

Result fail(std::string reason) {
  Result r;
  r.status = Status::error;
  r.error = std::move(reason);
  return r;
}

Result done(Header h) {
  Result r;
  r.status = Status::done;
  r.header = std::move(h);
  return r;
}

// Does `bytes` start `whole` (or `whole` start `bytes`)?
bool prefix_of(std::string_view bytes, std::string_view whole) {
  const std::size_t n = std::min(bytes.size(), whole.size());
  return bytes.substr(0, n) == whole.substr(0, n);
}

// §2.1: "a decimal number between 0 and 65535 inclusive"; we refuse leading zeros (haproxy never
// writes them) so that one port has one spelling.
std::optional<std::uint16_t> port_of(std::string_view s) {
  if (s.empty() || s.size() > 5 || (s.size() > 1 && s[0] == '0')) return std::nullopt;
  std::uint32_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<std::uint32_t>(c - '0');
  }
  if (v > 65535) return std::nullopt;
  return static_cast<std::uint16_t>(v);
}

// §2.1: TCP4 addresses in dotted-quad form, TCP6 in the RFC 4291 text form; inet_pton takes
// exactly those (no leading zeros in IPv4, no zone ids), inet_ntop gives our one spelling.
std::optional<std::string> address_of(std::string_view s, int family) {
  // A NUL would end the C string early ("192.0.2.1\0junk" must not pass as 192.0.2.1).
  if (s.empty() || s.size() > 45 || s.find('\0') != std::string_view::npos) return std::nullopt;
  const std::string text(s);
  std::array<unsigned char, 16> bin{};
  if (::inet_pton(family, text.c_str(), bin.data()) != 1) return std::nullopt;
  std::array<char, INET6_ADDRSTRLEN> out{};
  if (::inet_ntop(family, bin.data(), out.data(), out.size()) == nullptr) return std::nullopt;
  return std::string(out.data());
}

std::string bytes_address(const unsigned char* p, int family) {
  std::array<char, INET6_ADDRSTRLEN> out{};
  if (::inet_ntop(family, p, out.data(), out.size()) == nullptr) return {};
  return std::string(out.data());
}

std::uint16_t be16(const unsigned char* p) { return static_cast<std::uint16_t>((p[0] << 8) | p[1]); }

// ---- v1, §2.1 ---------------------------------------------------------------------------------

Result parse_v1(std::string_view bytes) {
  // The line ends at the first LF, which must follow a CR; a CR anywhere else is an error.
  const std::size_t lf = bytes.find('\n');
  const std::size_t cr = bytes.find('\r');
  if (cr != std::string_view::npos && cr + 1 < bytes.size() && bytes[cr + 1] != '\n') {
    return fail("v1 header with a CR not followed by LF");
  }
  if (lf == std::string_view::npos) {
    // §2.1: "the receiver ... must not try to parse a header longer than 107 bytes".
    if (bytes.size() >= kMaxV1Header) return fail("v1 header without CRLF within 107 bytes");
    return need_more();
  }
  if (lf == 0 || bytes[lf - 1] != '\r') return fail("v1 header ends in a bare LF");
  if (lf + 1 > kMaxV1Header) return fail("v1 header longer than 107 bytes");
  const std::string_view line = bytes.substr(v1_prefix.size(), lf - 1 - v1_prefix.size());

  // Fields separated by single spaces.
  std::array<std::string_view, 5> f{};
  std::size_t count = 0;
  std::size_t start = 0;
  for (;;) {
    const std::size_t sp = line.find(' ', start);
    const std::string_view field = line.substr(start, sp == std::string_view::npos ? std::string_view::npos : sp - start);
    if (count == 0 && field == "UNKNOWN") {
      // §2.1: with UNKNOWN "the rest of the line ... must be ignored"; use the real endpoints.
      Header h;
      h.version = 1;
      h.length = lf + 1;
      return done(std::move(h));
    }
    if (field.empty()) return fail("v1 header with an empty field (two spaces, or a space at the end)");
    if (count == f.size()) return fail("v1 header with too many fields");
    f[count++] = field;
    if (sp == std::string_view::npos) break;
    start = sp + 1;
  }
  int family = 0;
  if (f[0] == "TCP4") {
    family = AF_INET;
  } else if (f[0] == "TCP6") {
    family = AF_INET6;
  } else {
    return fail("v1 header with an unknown protocol (expected TCP4, TCP6 or UNKNOWN)");
  }
  if (count != 5) return fail("v1 header with " + std::to_string(count) + " fields (expected 5)");
  const auto src = address_of(f[1], family);
  const auto dst = address_of(f[2], family);
  if (!src || !dst) return fail(std::string("v1 header with an invalid ") + (family == AF_INET ? "IPv4" : "IPv6") + " address");
  const auto sport = port_of(f[3]);
  const auto dport = port_of(f[4]);
  if (!sport || !dport) return fail("v1 header with an invalid port");
  Header h;
  h.version = 1;
  h.source = Endpoint{*src, *sport};
  h.destination = Endpoint{*dst, *dport};
  h.length = lf + 1;
  return done(std::move(h));
}

// ---- v2, §2.2 ---------------------------------------------------------------------------------

Result parse_v2(std::string_view bytes) {
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  // Byte 13: the version (high nibble) must be 2; the command 0 LOCAL or 1 PROXY; §2.2: "other
  // values are unassigned and must not be emitted ... receivers must drop connections".
  if (bytes.size() > 12) {
    if ((p[12] & 0xF0) != 0x20) return fail("v2 header with version " + std::to_string(p[12] >> 4) + " (expected 2)");
    if ((p[12] & 0x0F) > 1) return fail("v2 header with an unknown command " + std::to_string(p[12] & 0x0F));
  }
  if (bytes.size() > 13) {
    if ((p[13] >> 4) > 3) return fail("v2 header with an unknown address family " + std::to_string(p[13] >> 4));
    if ((p[13] & 0x0F) > 2) return fail("v2 header with an unknown transport " + std::to_string(p[13] & 0x0F));
  }
  if (bytes.size() < v2_fixed) return need_more();
  const std::size_t length = be16(p + 14);
  const std::size_t total = v2_fixed + length;
  // Bounded before reading: a 64 KiB "header" from a confused peer is refused, not buffered.
  if (total > kMaxV2Header) {
    return fail("v2 header of " + std::to_string(total) + " bytes (at most " + std::to_string(kMaxV2Header) + ")");
  }
  const bool local = (p[12] & 0x0F) == 0;
  const unsigned family = p[13] >> 4;
  const unsigned transport = p[13] & 0x0F;
  // The address block's size per family (§2.2: IPv4 12, IPv6 36, UNIX 216, UNSPEC 0).
  std::size_t addresses = 0;
  switch (family) {
    case 1: addresses = 12; break;
    case 2: addresses = 36; break;
    case 3: addresses = 216; break;
    default: addresses = 0; break;
  }
  // LOCAL: "the receiver must accept this connection as valid and must use the real connection
  // endpoints and discard the protocol block including the family" — so its length is all that
  // matters. For PROXY, the block must hold the family's addresses.
  if (!local && length < addresses) {
    return fail("v2 header of length " + std::to_string(length) + " too short for its addresses (" +
                std::to_string(addresses) + " bytes)");
  }
  if (bytes.size() < total) return need_more();

  Header h;
  h.version = 2;
  h.length = total;
  h.local = local;
  if (local) return done(std::move(h));
  if (transport == 2) return fail("v2 header for a datagram transport on a TCP listener");
  if ((family == 1 || family == 2) && transport != 1) return fail("v2 header for an IP family without the stream transport");

  // TLVs (§2.2.1 ff): type, 16-bit length, value; they must fill the rest exactly. None of them
  // changes what we do, so after the shape check they are skipped.
  for (std::size_t at = v2_fixed + addresses; at < total;) {
    if (total - at < 3) return fail("v2 header with a truncated TLV");
    const std::size_t n = be16(p + at + 1);
    if (total - at - 3 < n) return fail("v2 header with a TLV longer than the header");
    at += 3 + n;
  }

  // UNSPEC (§2.2: "the receiver should ignore address information") and UNIX sockets (we have no
  // use for a path; "use the real connection endpoints" is one of the two choices §2.2 allows).
  if (family == 0 || family == 3) return done(std::move(h));
  const int af = family == 1 ? AF_INET : AF_INET6;
  const std::size_t alen = family == 1 ? 4 : 16;
  const unsigned char* a = p + v2_fixed;
  h.source = Endpoint{bytes_address(a, af), be16(a + 2 * alen)};
  h.destination = Endpoint{bytes_address(a + alen, af), be16(a + 2 * alen + 2)};
  return done(std::move(h));
}

}  // namespace

Result parse(std::string_view bytes) {
  if (bytes.empty()) return need_more();
  // The two signatures differ in their first byte ('P' against CR), so one byte decides.
  if (prefix_of(bytes, v2_signature)) {
    if (bytes.size() < v2_signature.size()) return need_more();
    return parse_v2(bytes);
  }
  if (prefix_of(bytes, v1_prefix)) {
    if (bytes.size() < v1_prefix.size()) return need_more();
    return parse_v1(bytes);
  }
  return fail("no PROXY protocol header (neither the v1 \"PROXY \" nor the v2 signature)");
}

}  // namespace danerelay::smtp::proxy
