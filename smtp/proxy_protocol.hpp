// smtp/proxy_protocol.hpp — the PROXY protocol header a TCP load balancer (haproxy, an AWS NLB)
// writes before the client's first byte, so that the relay behind it learns the real client.
//
// What this is: a pure, incremental parser for versions 1 and 2 of haproxy's
// doc/proxy-protocol.txt. Bytes in (everything received so far), a value out: need more bytes,
// the parsed header, or an error with a reason for the log line. No I/O, no Asio: the listener
// (smtp/server.cpp) peeks at the socket, feeds what it saw and reads exactly the header's bytes,
// so that the client's own bytes (an implicit-TLS ClientHello, a pipelined EHLO) stay unread.
//
// What this is not: the trust decision. Whether a header may be believed at all (the connection
// comes from a configured balancer, listener.proxy_from) is decided before any byte is parsed.
//
// The formats (proxy-protocol.txt §2.1, §2.2):
//   v1: "PROXY TCP4|TCP6 SRC DST SPORT DPORT\r\n" or "PROXY UNKNOWN[ anything]\r\n", at most 107
//       bytes with the CRLF; single spaces; addresses in the family's usual text form; ports
//       0..65535 in decimal without leading zeros.
//   v2: the 12-byte signature \r\n\r\n\0\r\nQUIT\n, ver/cmd (0x20 LOCAL, 0x21 PROXY), fam/proto
//       (0x11 TCP over IPv4, 0x21 TCP over IPv6, 0x31 stream over UNIX, 0x00 UNSPEC), a 16-bit
//       big-endian length of what follows, the addresses (12, 36 or 216 bytes), then TLVs, which
//       are checked for shape and skipped.
//
// Decisions, each argued in place in the .cpp:
//   - LOCAL (v2), UNKNOWN (v1), UNSPEC and UNIX (v2): the header is valid but names no TCP client;
//     §2.1/§2.2 say to use the real connection endpoints. `source` stays empty; the caller then
//     treats the balancer itself as the client (a health check, or a client we cannot name).
//   - Datagram transports (UDP over v2) make no sense on a TCP listener: an error.
//   - v2 headers longer than kMaxV2Header bytes are refused before they are read (bounded memory;
//     haproxy's own TLVs — SSL, unique id, ALPN, authority — fit many times over).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace danerelay::smtp::proxy {

inline constexpr std::size_t kMaxV1Header = 107;   // proxy-protocol.txt §2.1, CRLF included
inline constexpr std::size_t kMaxV2Header = 2048;  // ours: 16 fixed bytes + addresses + TLVs
// The longest header parse() may need to see (the listener peeks at most this much).
inline constexpr std::size_t kMaxHeader = kMaxV2Header;

struct Endpoint {
  std::string address;  // "192.0.2.1", "2001:db8::1" (inet_ntop text)
  std::uint16_t port = 0;
  friend bool operator==(const Endpoint&, const Endpoint&) = default;
};

struct Header {
  int version = 0;    // 1 or 2
  bool local = false;  // v2 LOCAL: the balancer's own connection (health check), not a client's
  // The client and the address it connected to; empty for LOCAL, UNKNOWN, UNSPEC and UNIX:
  // use the real connection endpoints.
  std::optional<Endpoint> source;
  std::optional<Endpoint> destination;
  std::size_t length = 0;  // bytes of the header; the client's own bytes follow
  friend bool operator==(const Header&, const Header&) = default;
};

enum class Status {
  need_more,  // every byte seen is part of a header that has not ended yet
  done,       // `header` is set; bytes after header.length are not looked at
  error,      // `error` says why; the connection is to be closed
};

struct Result {
  Status status = Status::need_more;
  Header header;
  std::string error;  // "v1 header without CRLF within 107 bytes", … (safe to log: no client bytes)
};

// Parses the start of a connection. `bytes` is everything received so far (call again with more
// when need_more; the answer for a prefix never contradicts the answer for the whole).
[[nodiscard]] Result parse(std::string_view bytes);

}  // namespace danerelay::smtp::proxy
