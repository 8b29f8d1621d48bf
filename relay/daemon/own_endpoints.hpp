// relay/daemon/own_endpoints.hpp — L-01: the (address, port) pairs this relay's listeners accept
// connections on, for the delivery path to refuse (relay/delivery/loop_detection.hpp).
//
// A listener on a specific address is that address and port. A wildcard listener is every
// address of the machine on its port: "0.0.0.0" every IPv4 interface address, "::" every IPv4
// and IPv6 one (smtp/server.cpp opens it dual-stack). Loopback is always included for a
// wildcard, and an IPv4 address on a loopback interface counts with its whole network, because
// Linux delivers that network locally (127.0.0.1/8 on lo: 127.0.0.11 reaches a 0.0.0.0 listener).
// Other interface addresses count alone (192.0.2.5/24 is 192.0.2.5, not its neighbours).
//
// The interfaces are read once, at start-up (Postfix's inet_addr_local does the same per
// process): an address added later is not known until the next start.
#pragma once

#include <string>
#include <vector>

#include "config/config.hpp"
#include "relay/delivery/loop_detection.hpp"

namespace danerelay::relay {

struct InterfaceAddress {
  std::string address;    // "192.0.2.5", "2001:db8::5", "fe80::1" (no scope)
  unsigned prefix = 0;    // from the netmask
  bool loopback = false;  // IFF_LOOPBACK
};

// The machine's interface addresses (getifaddrs(3), IPv4 and IPv6, interfaces up or down);
// empty when getifaddrs fails (`error` then says why).
[[nodiscard]] std::vector<InterfaceAddress> interface_addresses(std::string* error = nullptr);

// Pure: the own endpoints of `listeners` on a machine with `interfaces`, without duplicates, in
// listener order. Listeners with port 0 are skipped (their port is not known before binding).
[[nodiscard]] OwnEndpoints own_endpoints(const std::vector<config::Listener>& listeners,
                                         const std::vector<InterfaceAddress>& interfaces);

}  // namespace danerelay::relay
