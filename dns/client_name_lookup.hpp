// dns/client_name_lookup.hpp — the forward-confirmed reverse lookup of one inbound client, started
// when the connection is accepted and awaited, bounded, by the session (issue 11 item 6).
//
// What this is: the I/O around dns/client_name.hpp. The PTR query, then the A/AAAA queries of its
// names in parallel, through the relay's own validating Resolver (the same libunbound context as
// delivery), then decide_client_name(). What it is not: the decision (client_name.hpp) or the
// logging (smtp/server_session.cpp).
//
// Bounded: result() returns at the latest `limit` after construction (server.reverse_lookup_timeout,
// 5 s by default) with "unknown" (status timeout); an answer that arrives later is dropped and asks
// no further query. Nothing blocks: the lookup is a coroutine on the session's executor, the wait a
// timer, so other sessions and the event loop run on meanwhile.
//
// Threading: the resolver is used from one thread (the daemon's single event-loop thread); construct
// and await on an executor of that loop. Lifetime: `resolver` must outlive the io_context's run (the
// daemon destroys it after io.run() returns); destroying the ClientNameLookup abandons the lookup.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <memory>

#include "dns/client_name.hpp"
#include "dns/resolver.hpp"

namespace danerelay::dns {

// The whole lookup, unbounded (each query is bounded by dns.query_timeout).
[[nodiscard]] asio::awaitable<ClientName> lookup_client_name(Resolver& resolver, IpAddress address);

class ClientNameLookup {
 public:
  // Starts the lookup now. `resolver` null → no query, the result is "unknown" (status disabled).
  ClientNameLookup(asio::any_io_executor executor, Resolver* resolver, IpAddress address, std::chrono::milliseconds limit);
  ~ClientNameLookup();
  ClientNameLookup(const ClientNameLookup&) = delete;
  ClientNameLookup& operator=(const ClientNameLookup&) = delete;

  // The name, once known or once `limit` has passed since construction (then status timeout).
  // May be awaited again: the same result.
  [[nodiscard]] asio::awaitable<ClientName> result();

  // Ends a wait in result() now (status cancelled unless the result is already known).
  void cancel();

  struct State;

 private:
  std::shared_ptr<State> state_;
};

}  // namespace danerelay::dns
