// dns/observed_resolver.hpp — a Resolver that passes every lookup to another and tells an
// observer each answer (for metrics: queries by type and verdict), without the resolver knowing
// who listens. The answer is unchanged; the observer runs just before the caller's handler, on
// the thread the inner resolver completes on (UnboundResolver: its executor). Must not block.
#pragma once

#include <functional>
#include <utility>

#include "dns/resolver.hpp"

namespace danerelay::dns {

class ObservedResolver final : public Resolver {
 public:
  using Observer = std::function<void(const Answer&)>;
  // `inner` must outlive this; an empty observer makes this a plain pass-through.
  ObservedResolver(Resolver& inner, Observer observer) : inner_(inner), observer_(std::move(observer)) {}

  void async_lookup(Query query, Handler handler) override {
    inner_.async_lookup(std::move(query), Handler([observer = observer_, h = std::move(handler)](Answer a) mutable {
                          if (observer) observer(a);
                          std::move(h)(std::move(a));
                        }));
  }

 private:
  Resolver& inner_;
  Observer observer_;
};

}  // namespace danerelay::dns
