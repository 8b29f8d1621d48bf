// smtp/server.hpp — one inbound SMTP listener: binds its address, accepts connections, applies
// the connection limits and runs one smtp::ServerSession per connection.
//
// What this is: the acceptor (IPv6 "::" is dual-stack: IPv4 clients arrive as ::ffff:a.b.c.d and
// are logged and matched as IPv4), the accept loop as a coroutine, the admission check against a
// ConnectionTracker shared by all listeners, and stop(). What it is not: the protocol
// (smtp/server_session.hpp) or the queue (smtp/inbound.hpp).
//
// Admission (Postfix anvil wording): over limits.max_connections in total →
// "421 4.7.0 HOST Error: too many connections"; over limits.max_connections_per_client from one
// client → "421 4.7.0 HOST Error: too many connections from ADDR"; then close. One client is one
// IPv4 address or one IPv6 network of limits.client_ipv6_prefix bits (smtp/client_limits.hpp).
//
// PROXY protocol (listener.proxy_protocol, smtp/proxy_protocol.hpp; the README's "Scale-out behind
// a load balancer"): a connection whose real peer is not in listener.proxy_from is closed at once,
// without a greeting and without reading a byte ("listener NAME: connection from ADDR refused: not
// in proxy_from"). From a balancer, the header is peeked at, parsed and then read exactly, so the
// client's own bytes (a pipelined EHLO, an implicit-TLS ClientHello) stay for the session; it must
// be complete within min(limits.command_timeout, 10 s), else the connection closes with the
// parser's reason (or "timeout") in the log. The header's source address is the client from then
// on: admission per client, allow_networks, the AUTH failure limit, the client name, Received:,
// every log line. A header without a source (v2 LOCAL, v1 UNKNOWN: the balancer's health check)
// leaves the balancer's own address as the client.
// The total (limits.max_connections) counts a proxied connection from its accept, while its
// header is awaited: a peer at a balancer address cannot hold more than that many header-less
// connections open. The per-client limit can only be checked once the header named the client.
//
// Errors: start() throws std::system_error naming the address ("cannot listen on [::]:25:
// Address already in use"). Accept errors are logged and retried (bounded back-off on EMFILE).
//
// Lifetime: the executor's io_context must run for the server to work; after stop() the
// sessions close their sockets and finish on that io_context. `store` must outlive the server
// and its sessions.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "smtp/inbound.hpp"
#include "smtp/server_session.hpp"

namespace danerelay::smtp {

// Counts open connections, in total and per client (client_key(): an IPv4 address, IPv4-mapped
// IPv6 as IPv4, an IPv6 network of `ipv6_prefix` bits); thread-safe. Shared by listeners.
class ConnectionTracker : public std::enable_shared_from_this<ConnectionTracker> {
 public:
  ConnectionTracker(std::uint32_t max_connections, std::uint32_t max_per_client, std::uint32_t ipv6_prefix = 64)
      : max_total_(max_connections), max_per_client_(max_per_client), ipv6_prefix_(ipv6_prefix) {}

  enum class Admission { admitted, too_many, too_many_from_client };

  // Releases its connection when destroyed. Move-only.
  class Slot {
   public:
    Slot() = default;
    Slot(Slot&& other) noexcept
        : tracker_(std::move(other.tracker_)), key_(std::move(other.key_)), named_(other.named_) {}
    Slot& operator=(Slot&& other) noexcept;
    Slot(const Slot&) = delete;
    Slot& operator=(const Slot&) = delete;
    ~Slot() { release(); }
    [[nodiscard]] explicit operator bool() const noexcept { return tracker_ != nullptr; }

   private:
    friend class ConnectionTracker;
    void release() noexcept;
    std::shared_ptr<ConnectionTracker> tracker_;
    std::string key_;     // client_key(); empty while unnamed
    bool named_ = false;  // false: counted in the total only (admit_unnamed)
  };

  // Must be owned by a shared_ptr. `slot` first gives up what it held; on `admitted` it holds
  // the new connection. `client_address` is the address as text ("2001:db8::1").
  [[nodiscard]] Admission admit(const std::string& client_address, Slot& slot);
  // A connection whose client is not known yet (a PROXY listener awaiting the header): counted in
  // the total only, so `admitted` or `too_many`. `slot` first gives up what it held.
  [[nodiscard]] Admission admit_unnamed(Slot& slot);
  // The client of `slot`'s unnamed connection (from admit_unnamed) is now known: its per-client
  // limit is checked and, on `admitted`, taken. The total was counted by admit_unnamed and is not
  // checked again. On `too_many_from_client` the slot keeps the unnamed connection until dropped.
  // A slot that is empty or already named gets `too_many` (a caller's mistake, refused safely).
  [[nodiscard]] Admission name(const std::string& client_address, Slot& slot);

  // A reload: new limits for connections admitted from now on (open ones are not closed).
  void set_limits(std::uint32_t max_connections, std::uint32_t max_per_client);

  [[nodiscard]] std::size_t total() const;
  // Open connections of the client `client_address` belongs to (its whole IPv6 network).
  [[nodiscard]] std::size_t from(const std::string& client_address) const;

 private:
  void release(const std::string& key, bool named) noexcept;

  std::uint32_t max_total_;
  std::uint32_t max_per_client_;
  std::uint32_t ipv6_prefix_;
  mutable std::mutex mutex_;
  std::size_t total_ = 0;
  std::map<std::string, std::uint32_t> per_client_;  // by client_key()
};

class Server {
 public:
  Server(boost::asio::any_io_executor executor, ServerSettings settings, MessageStore& store);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds and listens (SO_REUSEADDR; "::" with IPV6_V6ONLY off), then starts accepting.
  // Throws std::system_error naming the address.
  void start();
  // Closes the acceptor and every session of this server. Idempotent; thread-safe.
  void stop();

  [[nodiscard]] boost::asio::ip::tcp::endpoint local_endpoint() const;
  [[nodiscard]] std::string local_endpoint_text() const;  // "[::]:25", "127.0.0.1:2525"
  // The settings new sessions get (sessions keep the ones they started with).
  [[nodiscard]] std::shared_ptr<const ServerSettings> settings() const;
  // A reload: sessions accepted from now on get `next`; open sessions keep theirs. The bound
  // address and the TLS mode stay (only a restart changes them); a null log, tracker, AUTH
  // pool, failure limiter, observer or resolver keeps the current one.
  void update(ServerSettings next);

  struct State;  // implementation detail (opaque; shared with the accept loop and sessions)

 private:
  std::shared_ptr<State> state_;
};

}  // namespace danerelay::smtp
