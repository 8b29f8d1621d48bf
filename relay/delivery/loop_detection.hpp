// relay/delivery/loop_detection.hpp — checklist L-01 part 2, "loops back to myself": the relay never
// connects to one of its own listeners. Without this, a route or an MX that points back at the
// relay delivers every message to itself, accepts it again, delivers it again, without end.
//
// What counts as ourselves: an (address, port) pair a listener of this relay accepts on, the
// wildcard listeners ("0.0.0.0", "::") expanded to the machine's interface addresses and to
// loopback (relay/daemon/own_endpoints.hpp computes the set). The port matters: the same address
// on another port is another server (a content filter, a test sink), not a loop.
//
// Rules (Postfix smtp_addr.c smtp_find_self / smtp_truncate_self, smtp_connect.c):
// - When a host of the plan is ourselves, every host of that preference or a worse one is dropped:
//   only MX hosts preferred to us may be tried (a backup MX passes mail towards the primary only).
// - When nothing preferred to us is left, the mail "loops back to myself": for an MX destination
//   (or the recipient's own address literal) that bounces, 5.4.6; for a configured next hop it
//   is the operator's configuration problem, deferred with 4.3.5 (Postfix's relayhost rule) so
//   nothing is returned while the route is being fixed.
// - When better hosts were tried and failed, the recipients wait with those hosts' reason.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "dns/plan.hpp"
#include "relay/delivery/delivery.hpp"

namespace danerelay::relay {

// One (network, port) the relay accepts connections on. A single address is a /32 or /128; a
// wider network only for loopback (every 127.0.0.0/8 address reaches a wildcard listener).
struct OwnEndpoint {
  config::Cidr network;
  std::uint16_t port = 0;
  friend bool operator==(const OwnEndpoint&, const OwnEndpoint&) = default;
};
using OwnEndpoints = std::vector<OwnEndpoint>;

// "127.0.0.1:2525", "[::1]:25", "127.0.0.0/8:25".
[[nodiscard]] std::string to_string(const OwnEndpoint& endpoint);
[[nodiscard]] std::string to_string(const OwnEndpoints& endpoints);  // comma-separated

// True when `address`:`port` is one of `own` (an IPv4-mapped IPv6 address counts as its IPv4 address).
[[nodiscard]] bool is_own_endpoint(const OwnEndpoints& own, const dns::IpAddress& address, std::uint16_t port) noexcept;

// The destination is a configured next hop (policy.destination.*.nexthop), not DNS's MX hosts
// nor the recipient's own address literal.
[[nodiscard]] bool configured_route(const dns::DeliveryPlan& plan) noexcept;

// Whether `host` of `plan` may be tried on `port`: nullopt when no host of the plan with a
// preference at least as good as `host`'s is ourselves; otherwise the host that is (the most
// preferred one) and whether it is the best of the plan. Every host's addresses count, usable or
// not (Postfix looks for itself before any TLSA or connection).
[[nodiscard]] std::optional<LoopBack> find_loop(const dns::DeliveryPlan& plan, const dns::Host& host, std::uint16_t port,
                                                const OwnEndpoints& own);

// A Connector that refuses every attempt find_loop() refuses (SessionResult::loop, no
// connection) and hands the others to `inner`. Null or empty `own`: `inner` unchanged.
[[nodiscard]] Connector refuse_own_endpoints(Connector inner, std::shared_ptr<const OwnEndpoints> own);

}  // namespace danerelay::relay
