// relay/core/observer.hpp — the hook through which whoever watches deliveries (the metrics, the
// posture page) learns each recipient's result, without the queue knowing who watches.
//
// Called on the event loop exactly once per RecipientResult of a delivery attempt, where its
// delivery line is logged (relay/queue/queue_manager.cpp, QueueManager::add_result_observer),
// plus once per recipient the queue lifetime (or `queue expire`) bounces: that result has status
// bounced and failure Failure::expired / Failure::expired_by_admin, no relay and no TLS level.
// An observer must not block; it may be called with several observers registered, in order.
#pragma once

#include <functional>

#include "relay/core/envelope.hpp"

namespace danerelay::relay {

using ResultObserver = std::function<void(const Envelope&, const RecipientResult&)>;

}  // namespace danerelay::relay
