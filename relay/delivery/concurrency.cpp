// relay/delivery/concurrency.cpp — see concurrency.hpp.
#include "relay/delivery/concurrency.hpp"

#include <boost/asio/async_result.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace danerelay::relay {

namespace asio = boost::asio;

Permit& Permit::operator=(Permit&& other) noexcept {
  if (this != &other) {
    release();
    limiter_ = std::exchange(other.limiter_, nullptr);
    domain_ = std::move(other.domain_);
  }
  return *this;
}

void Permit::release() noexcept {
  if (limiter_ != nullptr) std::exchange(limiter_, nullptr)->release(domain_);
}

ConcurrencyLimiter::ConcurrencyLimiter(asio::any_io_executor executor, std::size_t total, std::size_t per_destination)
    : executor_(std::move(executor)), total_(std::max<std::size_t>(total, 1)), per_destination_(std::max<std::size_t>(per_destination, 1)) {}

ConcurrencyLimiter::~ConcurrencyLimiter() = default;

std::size_t ConcurrencyLimiter::active(const std::string& domain) const {
  auto it = per_domain_.find(domain);
  return it == per_domain_.end() ? 0 : it->second;
}

bool ConcurrencyLimiter::fits(const std::string& domain) const { return active_ < total_ && active(domain) < per_destination_; }

void ConcurrencyLimiter::take(const std::string& domain) {
  ++active_;
  ++per_domain_[domain];
}

void ConcurrencyLimiter::release(const std::string& domain) noexcept {
  --active_;
  if (auto it = per_domain_.find(domain); it != per_domain_.end() && --it->second == 0) per_domain_.erase(it);
  wake();
}

void ConcurrencyLimiter::wake() {
  // First come, first served among the waiters whose destination has room.
  for (auto it = waiters_.begin(); it != waiters_.end() && active_ < total_;) {
    if (!fits(it->domain)) {
      ++it;
      continue;
    }
    take(it->domain);
    auto handler = std::move(it->handler);
    Permit permit(this, it->domain);
    it = waiters_.erase(it);
    // Never resume the waiter from inside release(): post it.
    asio::post(executor_, [h = std::move(handler), p = std::move(permit)]() mutable { std::move(h)(std::move(p)); });
  }
}

asio::awaitable<Permit> ConcurrencyLimiter::acquire(std::string domain) {
  if (waiters_.empty() && fits(domain)) {
    take(domain);
    co_return Permit(this, std::move(domain));
  }
  co_return co_await asio::async_initiate<decltype(asio::use_awaitable), void(Permit)>(
      [this](auto handler, std::string d) {
        waiters_.push_back(Waiter{std::move(d), asio::any_completion_handler<void(Permit)>(std::move(handler))});
        wake();
      },
      asio::use_awaitable, std::move(domain));
}

}  // namespace danerelay::relay
