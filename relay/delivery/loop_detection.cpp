// relay/delivery/loop_detection.cpp — see loop_detection.hpp.
#include "relay/delivery/loop_detection.hpp"

#include <algorithm>

namespace danerelay::relay {

namespace asio = boost::asio;

std::string to_string(const OwnEndpoint& e) {
  dns::IpAddress a;
  a.v6 = e.network.v6;
  a.bytes = e.network.bytes;
  std::string text = a.to_string();
  if (e.network.prefix != (e.network.v6 ? 128 : 32)) text += "/" + std::to_string(e.network.prefix);
  if (e.network.v6) text = "[" + text + "]";
  return text + ":" + std::to_string(e.port);
}

std::string to_string(const OwnEndpoints& endpoints) {
  std::string out;
  for (const OwnEndpoint& e : endpoints) out += (out.empty() ? "" : ", ") + to_string(e);
  return out;
}

bool is_own_endpoint(const OwnEndpoints& own, const dns::IpAddress& address, std::uint16_t port) noexcept {
  return std::any_of(own.begin(), own.end(), [&](const OwnEndpoint& e) {
    return e.port == port && e.network.contains(address.bytes.data(), address.v6 ? 16 : 4);
  });
}

bool configured_route(const dns::DeliveryPlan& plan) noexcept {
  if (plan.kind == dns::DestinationKind::nexthop) return true;
  // An address literal is either the recipient's domain ("user@[192.0.2.1]") or a configured
  // next hop ("[192.0.2.1]:25"); only the first is written in the domain itself.
  return plan.kind == dns::DestinationKind::address_literal && !plan.domain.starts_with('[');
}

std::optional<LoopBack> find_loop(const dns::DeliveryPlan& plan, const dns::Host& host, std::uint16_t port,
                                  const OwnEndpoints& own) {
  if (own.empty() || plan.hosts.empty()) return std::nullopt;
  const dns::Host* self = nullptr;
  const dns::IpAddress* self_address = nullptr;
  std::uint16_t best = plan.hosts.front().preference;
  for (const dns::Host& h : plan.hosts) {
    best = std::min(best, h.preference);
    if (self != nullptr && h.preference >= self->preference) continue;
    for (const dns::IpAddress& a : h.addresses) {
      if (is_own_endpoint(own, a, port)) {
        self = &h;
        self_address = &a;
        break;
      }
    }
  }
  // smtp_truncate_self: only hosts preferred to ourselves remain.
  if (self == nullptr || host.preference < self->preference) return std::nullopt;
  return LoopBack{self->name, self_address->to_string(), port, self->preference, self->preference <= best};
}

Connector refuse_own_endpoints(Connector inner, std::shared_ptr<const OwnEndpoints> own) {
  if (!own || own->empty()) return inner;
  return [inner = std::move(inner), own = std::move(own)](HostAttempt a) -> asio::awaitable<SessionResult> {
    if (std::optional<LoopBack> loop = find_loop(*a.plan, *a.host, a.port, *own)) {
      SessionResult refused;
      refused.loop = std::move(loop);
      co_return refused;
    }
    co_return co_await inner(a);  // a named variable, as delivery.hpp asks (g++ 12)
  };
}

}  // namespace danerelay::relay
