// relay/routing.cpp — see routing.hpp.
#include "relay/routing.hpp"

namespace danerelay::relay {

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
