// dns/destination.cpp — see destination.hpp.
#include "dns/destination.hpp"

namespace danerelay::dns {

namespace {
// The planner needs at most five rounds; more means a planner bug, and looping on it would hide it.
constexpr int kMaxRounds = 12;
}  // namespace

asio::awaitable<Resolution> resolve_destination(Resolver& resolver, PlanRequest request) {
  Resolution r;
  for (;;) {
    PlanStep step = advance_plan(request, r.answers);
    if (step.plan) {
      r.plan = std::move(*step.plan);
      co_return r;
    }
    if (++r.rounds > kMaxRounds || step.queries.empty()) {
      r.plan.domain = request.domain;
      r.plan.status = PlanStatus::failed;
      r.plan.problem = Problem::resolution_incomplete;
      r.plan.reason = "internal error: destination resolution did not converge";
      co_return r;
    }
    r.order.insert(r.order.end(), step.queries.begin(), step.queries.end());
    std::vector<Answer> answers = co_await lookup_all(resolver, step.queries);
    for (std::size_t i = 0; i < answers.size(); ++i) r.answers.insert_or_assign(step.queries[i], std::move(answers[i]));
  }
}

}  // namespace danerelay::dns
