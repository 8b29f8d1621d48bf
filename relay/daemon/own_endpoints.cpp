// relay/daemon/own_endpoints.cpp — see own_endpoints.hpp.
#include "relay/daemon/own_endpoints.hpp"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>

#include "dns/types.hpp"

namespace danerelay::relay {

namespace {

unsigned prefix_of(const std::uint8_t* mask, std::size_t length) {
  unsigned n = 0;
  for (std::size_t i = 0; i < length; ++i) n += static_cast<unsigned>(std::popcount(mask[i]));
  return n;
}

}  // namespace

std::vector<InterfaceAddress> interface_addresses(std::string* error) {
  std::vector<InterfaceAddress> out;
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) {
    if (error != nullptr) *error = std::string("getifaddrs: ") + std::strerror(errno);
    return out;
  }
  for (const ifaddrs* i = list; i != nullptr; i = i->ifa_next) {
    if (i->ifa_addr == nullptr) continue;
    const int family = i->ifa_addr->sa_family;
    if (family != AF_INET && family != AF_INET6) continue;
    char text[INET6_ADDRSTRLEN] = {};
    InterfaceAddress a;
    a.loopback = (i->ifa_flags & IFF_LOOPBACK) != 0;
    if (family == AF_INET) {
      const auto* sin = reinterpret_cast<const sockaddr_in*>(i->ifa_addr);
      if (inet_ntop(AF_INET, &sin->sin_addr, text, sizeof text) == nullptr) continue;
      a.prefix = 32;
      if (i->ifa_netmask != nullptr) {
        const auto* m = reinterpret_cast<const sockaddr_in*>(i->ifa_netmask);
        a.prefix = prefix_of(reinterpret_cast<const std::uint8_t*>(&m->sin_addr), 4);
      }
    } else {
      const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(i->ifa_addr);
      if (inet_ntop(AF_INET6, &sin6->sin6_addr, text, sizeof text) == nullptr) continue;
      a.prefix = 128;
      if (i->ifa_netmask != nullptr) {
        const auto* m = reinterpret_cast<const sockaddr_in6*>(i->ifa_netmask);
        a.prefix = prefix_of(reinterpret_cast<const std::uint8_t*>(&m->sin6_addr), 16);
      }
    }
    a.address = text;
    out.push_back(std::move(a));
  }
  freeifaddrs(list);
  return out;
}

OwnEndpoints own_endpoints(const std::vector<config::Listener>& listeners, const std::vector<InterfaceAddress>& interfaces) {
  OwnEndpoints out;
  auto add = [&out](const std::string& address, unsigned prefix, std::uint16_t port) {
    auto network = config::Cidr::parse(address + "/" + std::to_string(prefix));
    if (!network) return;
    OwnEndpoint e{*network, port};
    e.network.text.clear();  // compare by network, not by how it was written
    if (std::find(out.begin(), out.end(), e) == out.end()) out.push_back(std::move(e));
  };
  for (const config::Listener& l : listeners) {
    const std::uint16_t port = l.address.port;
    const auto ip = dns::IpAddress::parse(l.address.host);
    if (!ip || port == 0) continue;
    const bool wildcard = std::all_of(ip->bytes.begin(), ip->bytes.begin() + (ip->v6 ? 16 : 4), [](std::uint8_t b) { return b == 0; });
    if (!wildcard) {
      add(l.address.host, ip->v6 ? 128 : 32, port);
      continue;
    }
    for (const InterfaceAddress& i : interfaces) {
      const auto a = dns::IpAddress::parse(i.address);
      if (!a || (a->v6 && !ip->v6)) continue;  // "0.0.0.0" takes IPv4 only
      const unsigned full = a->v6 ? 128 : 32;
      add(i.address, i.loopback && !a->v6 && i.prefix >= 8 && i.prefix <= full ? i.prefix : full, port);
    }
    add("127.0.0.0", 8, port);
    if (ip->v6) add("::1", 128, port);
  }
  return out;
}

}  // namespace danerelay::relay
