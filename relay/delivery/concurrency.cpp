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
    : executor_(std::move(executor)),
      total_(std::max<std::size_t>(total, 1)),
      per_destination_(std::max<std::size_t>(per_destination, 1)),
      ready_([](const auto& a, const auto& b) { return a.first < b.first; }) {}

ConcurrencyLimiter::~ConcurrencyLimiter() = default;

std::size_t ConcurrencyLimiter::active(const std::string& domain) const {
  auto it = destinations_.find(domain);
  return it == destinations_.end() ? 0 : it->second.active;
}

void ConcurrencyLimiter::mark_ready(Destinations::iterator d) {
  if (!d->second.waiters.empty() && d->second.active < per_destination_) ready_.emplace(d->second.waiters.front().seq, d);
}

void ConcurrencyLimiter::release(const std::string& domain) noexcept {
  --active_;
  if (auto it = destinations_.find(domain); it != destinations_.end()) {
    Destination& d = it->second;
    const bool was_full = d.active == per_destination_;
    --d.active;
    if (d.active == 0 && d.waiters.empty()) {
      destinations_.erase(it);
    } else if (was_full) {
      mark_ready(it);  // its oldest waiter competes again
    }
  }
  wake();
}

void ConcurrencyLimiter::wake() {
  // First come, first served among the waiters whose destination has room: the destination
  // whose oldest waiter came first.
  while (active_ < total_ && !ready_.empty()) {
    const auto it = ready_.begin()->second;
    ready_.erase(ready_.begin());
    Destination& d = it->second;
    auto handler = std::move(d.waiters.front().handler);
    d.waiters.pop_front();
    --waiting_;
    ++active_;
    ++d.active;
    mark_ready(it);
    Permit permit(this, it->first);
    // Never resume the waiter from inside release(): post it.
    asio::post(executor_, [h = std::move(handler), p = std::move(permit)]() mutable { std::move(h)(std::move(p)); });
  }
}

asio::awaitable<Permit> ConcurrencyLimiter::acquire(std::string domain) {
  auto it = destinations_.try_emplace(domain).first;
  // Nobody for this destination is waiting, and wake() leaves no waiter that fits: when both
  // limits have room, this request is the first that fits.
  if (it->second.waiters.empty() && active_ < total_ && it->second.active < per_destination_) {
    ++active_;
    ++it->second.active;
    co_return Permit(this, std::move(domain));
  }
  co_return co_await asio::async_initiate<decltype(asio::use_awaitable), void(Permit)>(
      [this](auto handler, Destinations::iterator dest) {
        const bool first = dest->second.waiters.empty();
        dest->second.waiters.push_back(Waiter{next_seq_++, asio::any_completion_handler<void(Permit)>(std::move(handler))});
        ++waiting_;
        if (first) mark_ready(dest);
        wake();
      },
      asio::use_awaitable, it);
}

}  // namespace danerelay::relay
