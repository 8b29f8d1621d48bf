// relay/routing.hpp — from a recipient domain and the configuration to the planner's request:
// which port, which configured next hop (policy.destination.*.nexthop), which TLS level applies.
#pragma once

#include <cstdint>
#include <string>

#include "config/config.hpp"
#include "dns/plan.hpp"

namespace danerelay::relay {

struct Routing {
  dns::PlanRequest request;
  config::TlsLevel level = config::TlsLevel::dane;
  const config::DestinationPolicy* policy = nullptr;  // the table that matched, if any
};

[[nodiscard]] Routing route_for(const config::Config& config, std::string_view domain, std::uint64_t shuffle_seed);

}  // namespace danerelay::relay
