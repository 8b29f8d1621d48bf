// smtp/ehlo.hpp — the server's EHLO keywords (RFC 5321 §4.1.1.1, §2.2.2) as a value.
// Recognises what the client uses: STARTTLS (RFC 3207), SIZE (RFC 1870), PIPELINING (RFC 2920),
// 8BITMIME (RFC 6152), SMTPUTF8 (RFC 6531), DSN (RFC 3461), ENHANCEDSTATUSCODES (RFC 2034),
// CHUNKING (RFC 3030), REQUIRETLS (RFC 8689), AUTH (RFC 4954). Unknown keywords are ignored.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "smtp/reply.hpp"

namespace danerelay::smtp {

struct Capabilities {
  bool starttls = false;
  bool pipelining = false;
  bool eightbitmime = false;
  bool smtputf8 = false;
  bool dsn = false;
  bool enhanced_status_codes = false;
  bool chunking = false;
  bool requiretls = false;
  std::optional<std::uint64_t> size;   // SIZE n; 0 means "no fixed limit"
  std::vector<std::string> auth;       // mechanisms, upper case

  // From a 250 EHLO reply: line 0 is the greeting, the others are keywords.
  [[nodiscard]] static Capabilities parse(const Reply& ehlo);
};

}  // namespace danerelay::smtp
