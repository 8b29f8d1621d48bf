// smtp/ehlo.cpp — see ehlo.hpp. Keywords are case-insensitive (RFC 5321 §2.4).
#include "smtp/ehlo.hpp"

#include <cctype>
#include <charconv>
#include <sstream>

namespace danerelay::smtp {

namespace {
std::string upper(std::string s) {
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}
}  // namespace

Capabilities Capabilities::parse(const Reply& ehlo) {
  Capabilities caps;
  for (std::size_t i = 1; i < ehlo.lines.size(); ++i) {
    std::istringstream words(ehlo.lines[i]);
    std::string keyword;
    words >> keyword;
    keyword = upper(keyword);
    if (keyword == "STARTTLS") {
      caps.starttls = true;
    } else if (keyword == "PIPELINING") {
      caps.pipelining = true;
    } else if (keyword == "8BITMIME") {
      caps.eightbitmime = true;
    } else if (keyword == "SMTPUTF8") {
      caps.smtputf8 = true;
    } else if (keyword == "DSN") {
      caps.dsn = true;
    } else if (keyword == "ENHANCEDSTATUSCODES") {
      caps.enhanced_status_codes = true;
    } else if (keyword == "CHUNKING") {
      caps.chunking = true;
    } else if (keyword == "REQUIRETLS") {
      caps.requiretls = true;
    } else if (keyword == "SIZE") {
      std::string value;
      std::uint64_t n = 0;
      if (!(words >> value)) {
        caps.size = 0;
      } else if (auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
                 ec == std::errc{} && p == value.data() + value.size()) {
        caps.size = n;
      }
    } else if (keyword == "AUTH") {
      for (std::string m; words >> m;) caps.auth.push_back(upper(m));
    }
  }
  return caps;
}

}  // namespace danerelay::smtp
