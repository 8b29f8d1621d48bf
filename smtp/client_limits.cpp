// smtp/client_limits.cpp — see client_limits.hpp.
#include "smtp/client_limits.hpp"

#include <boost/asio/ip/address.hpp>

#include <algorithm>

namespace danerelay::smtp {

namespace asio = boost::asio;

std::string client_key(std::string_view address, std::uint32_t ipv6_prefix) {
  boost::system::error_code ec;
  const auto a = asio::ip::make_address(std::string(address), ec);
  if (ec) return std::string(address);
  if (a.is_v4()) return a.to_v4().to_string();
  const auto v6 = a.to_v6();
  if (v6.is_v4_mapped()) return asio::ip::make_address_v4(asio::ip::v4_mapped, v6).to_string();
  const std::uint32_t prefix = std::clamp<std::uint32_t>(ipv6_prefix, 1, 128);
  if (prefix == 128) return asio::ip::address_v6(v6.to_bytes()).to_string();  // without a scope id
  auto bytes = v6.to_bytes();
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    const std::uint32_t first_bit = static_cast<std::uint32_t>(i) * 8;
    if (first_bit >= prefix) {
      bytes[i] = 0;
    } else if (prefix - first_bit < 8) {
      bytes[i] = static_cast<unsigned char>(bytes[i] & (0xff << (8 - (prefix - first_bit))));
    }
  }
  return asio::ip::address_v6(bytes).to_string() + "/" + std::to_string(prefix);
}

AuthFailureLimiter::AuthFailureLimiter(std::uint32_t max_failures, std::uint32_t ipv6_prefix, Now now)
    : max_failures_(std::max<std::uint32_t>(max_failures, 1)), ipv6_prefix_(ipv6_prefix),
      now_(now ? std::move(now) : Now([] { return Clock::now(); })) {}

void AuthFailureLimiter::expire(std::deque<Clock::time_point>& times, Clock::time_point now) const {
  while (!times.empty() && now - times.front() >= kWindow) times.pop_front();
}

void AuthFailureLimiter::sweep(Clock::time_point now) {
  for (auto it = failures_.begin(); it != failures_.end();) {
    expire(it->second, now);
    it = it->second.empty() ? failures_.erase(it) : std::next(it);
  }
}

bool AuthFailureLimiter::blocked(const std::string& address) {
  const std::string key = client_key(address, ipv6_prefix_);
  std::lock_guard lock(mutex_);
  const auto it = failures_.find(key);
  if (it == failures_.end()) return false;
  expire(it->second, now_());
  if (it->second.empty()) {
    failures_.erase(it);
    return false;
  }
  return it->second.size() >= max_failures_;
}

bool AuthFailureLimiter::record_failure(const std::string& address) {
  const std::string key = client_key(address, ipv6_prefix_);
  std::lock_guard lock(mutex_);
  const auto now = now_();
  // Amortised clean-up: whole clients whose failures all expired go away.
  if (++records_since_sweep_ >= 1024) {
    records_since_sweep_ = 0;
    sweep(now);
  }
  auto& times = failures_[key];
  expire(times, now);
  times.push_back(now);
  while (times.size() > max_failures_) times.pop_front();  // only the newest max_failures_ matter
  return times.size() >= max_failures_;
}

void AuthFailureLimiter::set_max_failures(std::uint32_t max_failures) {
  std::lock_guard lock(mutex_);
  max_failures_ = std::max<std::uint32_t>(max_failures, 1);
}

std::size_t AuthFailureLimiter::failures(const std::string& address) {
  const std::string key = client_key(address, ipv6_prefix_);
  std::lock_guard lock(mutex_);
  const auto it = failures_.find(key);
  if (it == failures_.end()) return 0;
  expire(it->second, now_());
  return it->second.size();
}

}  // namespace danerelay::smtp
