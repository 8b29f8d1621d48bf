// relay/delivery/routing.cpp — see routing.hpp.
#include "relay/delivery/routing.hpp"

#include <idn2.h>

#include <algorithm>
#include <cstdlib>

namespace danerelay::relay {

std::optional<std::string> dns_domain(std::string_view domain) {
  const bool ascii = std::all_of(domain.begin(), domain.end(), [](char c) { return static_cast<unsigned char>(c) < 0x80; });
  if (ascii) return std::string(domain);
  const std::string input(domain);
  char* out = nullptr;
  const int rc = idn2_to_ascii_8z(input.c_str(), &out, IDN2_NFC_INPUT | IDN2_NONTRANSITIONAL);
  if (rc != IDN2_OK || out == nullptr) {
    idn2_free(out);
    return std::nullopt;
  }
  std::string result(out);
  idn2_free(out);
  return result;
}

Routing route_for(const config::Config& config, std::string_view domain, std::uint64_t shuffle_seed) {
  Routing r;
  r.request.domain = dns::normalize_name(domain);
  r.request.port = config.delivery.port;
  r.request.shuffle_seed = shuffle_seed;
  r.level = config.policy.default_level;
  r.policy = config.policy.find(r.request.domain);
  if (r.policy != nullptr) {
    if (r.policy->level) r.level = *r.policy->level;
    if (r.policy->nexthop) {
      const auto& hop = *r.policy->nexthop;
      r.request.route = dns::Route{hop.host, hop.port, hop.address_literal};
    }
  }
  r.request.lookup_tlsa = r.level == config::TlsLevel::dane || r.level == config::TlsLevel::dane_only;
  return r;
}

}  // namespace danerelay::relay
