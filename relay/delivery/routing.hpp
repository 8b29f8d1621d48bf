// relay/delivery/routing.hpp — from a recipient domain and the configuration to the planner's request:
// which port, which configured next hop (policy.destination.*.nexthop), which TLS level applies.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "config/config.hpp"
#include "dns/plan.hpp"

namespace danerelay::relay {

struct Routing {
  dns::PlanRequest request;
  config::TlsLevel level = config::TlsLevel::dane;
  const config::DestinationPolicy* policy = nullptr;  // the table that matched, if any
};

// The domain as DNS knows it: ASCII names unchanged (lower-cased by the planner); a UTF-8 domain
// (SMTPUTF8 mail, RFC 6531) converted to its A-label form with IDNA2008 + UTS #46 (libidn2), e.g.
// "bücher.example" → "xn--bcher-kva.example". nullopt when the name is not a valid IDN; the
// recipient then bounces (5.1.2). The address in RCPT TO keeps its UTF-8 form.
[[nodiscard]] std::optional<std::string> dns_domain(std::string_view domain);

[[nodiscard]] Routing route_for(const config::Config& config, std::string_view domain, std::uint64_t shuffle_seed);

}  // namespace danerelay::relay
