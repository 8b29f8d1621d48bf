// relay/delivery/concurrency.hpp — how many deliveries run at once, in total and per destination domain
// (delivery.max_concurrency, delivery.max_concurrency_per_destination; Postfix's
// default_process_limit and default_destination_concurrency_limit play the same part).
//
// acquire() completes when both limits allow one more delivery and yields a Permit; dropping
// the Permit frees the slot. Waiters are served first come, first served among those that fit,
// and never by polling: an idle limiter holds no work on the event loop. The limiter must outlive
// every Permit (create it before, destroy it after, the io_context that runs its waiters).
#pragma once

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <cstddef>
#include <list>
#include <map>
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
  [[nodiscard]] std::size_t waiting() const noexcept { return waiters_.size(); }

 private:
  friend class Permit;
  struct Waiter {
    std::string domain;
    boost::asio::any_completion_handler<void(Permit)> handler;
  };
  [[nodiscard]] bool fits(const std::string& domain) const;
  void take(const std::string& domain);
  void release(const std::string& domain) noexcept;
  void wake();

  boost::asio::any_io_executor executor_;
  std::size_t total_;
  std::size_t per_destination_;
  std::size_t active_ = 0;
  std::map<std::string, std::size_t> per_domain_;
  std::list<Waiter> waiters_;  // a list: erasing never move-assigns handlers (Boost 1.81 bug)
};

}  // namespace danerelay::relay
