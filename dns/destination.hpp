// dns/destination.hpp — the I/O driver around the pure planner (dns/plan.hpp):
//   while the planner needs queries, ask them all at once, add the answers, ask the planner again.
// Nothing RFC-specific happens here; every decision is in plan.cpp.
#pragma once

#include <boost/asio/awaitable.hpp>

#include "dns/plan.hpp"
#include "dns/resolver.hpp"

namespace danerelay::dns {

struct Resolution {
  DeliveryPlan plan;
  AnswerMap answers;          // every answer the plan was built from (for `resolve` and logs)
  std::vector<Query> order;   // the queries in the order they were asked
  int rounds = 0;
};

[[nodiscard]] asio::awaitable<Resolution> resolve_destination(Resolver& resolver, PlanRequest request);

}  // namespace danerelay::dns
