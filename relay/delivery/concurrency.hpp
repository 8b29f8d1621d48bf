// relay/delivery/concurrency.hpp — how many deliveries run at once, in total and per destination domain
// (delivery.max_concurrency, delivery.max_concurrency_per_destination; Postfix's
// default_process_limit and default_destination_concurrency_limit play the same part).
//
// acquire() completes when both limits allow one more delivery and yields a Permit; dropping
// the Permit frees the slot. Waiters are served first come, first served among those that fit,
// and never by polling: an idle limiter holds no work on the event loop. The limiter must outlive
// every Permit (create it before, destroy it after, the io_context that runs its waiters).
//
// Cost: waiters queue per destination, and the destinations that have room are ordered by the
// arrival of their oldest waiter, so a release costs O(log destinations) whatever the number of
// waiters (a flat list scanned at every release made a drain of 100,000 messages for one
// destination quadratic: bench/queue_scale_bench).
#pragma once

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <cstddef>
#include <cstdint>
#include <list>
#include <map>
#include <set>
#include <string>

namespace danerelay::relay {

class ConcurrencyLimiter;

class Permit {
 public:
  Permit() = default;
  Permit(ConcurrencyLimiter* limiter, std::string domain) : limiter_(limiter), domain_(std::move(domain)) {}
  Permit(Permit&& other) noexcept : limiter_(std::exchange(other.limiter_, nullptr)), domain_(std::move(other.domain_)) {}
  Permit& operator=(Permit&& other) noexcept;
  Permit(const Permit&) = delete;
  Permit& operator=(const Permit&) = delete;
  ~Permit() { release(); }
  void release() noexcept;
  [[nodiscard]] explicit operator bool() const noexcept { return limiter_ != nullptr; }

 private:
  ConcurrencyLimiter* limiter_ = nullptr;
  std::string domain_;
};

class ConcurrencyLimiter {
 public:
  ConcurrencyLimiter(boost::asio::any_io_executor executor, std::size_t total, std::size_t per_destination);
  ~ConcurrencyLimiter();
  ConcurrencyLimiter(const ConcurrencyLimiter&) = delete;
  ConcurrencyLimiter& operator=(const ConcurrencyLimiter&) = delete;

  [[nodiscard]] boost::asio::awaitable<Permit> acquire(std::string domain);

  [[nodiscard]] std::size_t active() const noexcept { return active_; }
  [[nodiscard]] std::size_t active(const std::string& domain) const;
  [[nodiscard]] std::size_t waiting() const noexcept { return waiting_; }

 private:
  friend class Permit;
  struct Waiter {
    std::uint64_t seq;  // arrival order
    boost::asio::any_completion_handler<void(Permit)> handler;
  };
  // One destination with deliveries running or waiting.
  struct Destination {
    std::size_t active = 0;
    std::list<Waiter> waiters;  // a list: erasing never move-assigns handlers (Boost 1.81 bug)
  };
  using Destinations = std::map<std::string, Destination, std::less<>>;
  // (seq of the oldest waiter, destination) for every destination with waiters and room.
  using Ready = std::set<std::pair<std::uint64_t, Destinations::iterator>,
                         bool (*)(const std::pair<std::uint64_t, Destinations::iterator>&,
                                  const std::pair<std::uint64_t, Destinations::iterator>&)>;

  void release(const std::string& domain) noexcept;
  void mark_ready(Destinations::iterator d);  // into ready_ when it has waiters and room
  void wake();

  boost::asio::any_io_executor executor_;
  std::size_t total_;
  std::size_t per_destination_;
  std::size_t active_ = 0;
  std::size_t waiting_ = 0;
  std::uint64_t next_seq_ = 0;
  Destinations destinations_;
  Ready ready_;
};

}  // namespace danerelay::relay
