// relay/delivery/connection_cache.cpp — see connection_cache.hpp.
#include "relay/delivery/connection_cache.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>

namespace danerelay::relay {

namespace asio = boost::asio;

struct ConnectionCache::Entry {
  std::uint64_t id = 0;
  std::unique_ptr<smtp::ClientSession> session;
  asio::steady_timer timer;
  explicit Entry(asio::any_io_executor ex) : timer(std::move(ex)) {}
};

ConnectionCache::ConnectionCache(asio::any_io_executor executor, std::chrono::milliseconds idle_time, int max_uses)
    : executor_(std::move(executor)), idle_time_(idle_time), max_uses_(max_uses) {}

ConnectionCache::~ConnectionCache() {
  for (auto& [key, entry] : entries_) {
    entry->timer.cancel();
    if (entry->session) entry->session->close();
  }
}

std::unique_ptr<smtp::ClientSession> ConnectionCache::take(const CacheKey& key) {
  // Newest first is not needed: every entry under one key is equivalent. Stale ones (the peer
  // closed them or spoke while idle) are closed and skipped, never handed out.
  for (auto it = entries_.find(key); it != entries_.end() && it->first == key; it = entries_.find(key)) {
    std::shared_ptr<Entry> entry = it->second;
    entries_.erase(it);
    entry->timer.cancel();
    if (entry->session && entry->session->idle_intact()) return std::move(entry->session);
    ++stale_;
    if (entry->session) entry->session->close();
  }
  return nullptr;
}

void ConnectionCache::put(CacheKey key, std::unique_ptr<smtp::ClientSession> session) {
  if (!session) return;
  if (!session->reusable() || session->transactions() >= max_uses_ || idle_time_.count() <= 0) {
    retire(std::move(session));
    return;
  }
  auto entry = std::make_shared<Entry>(executor_);
  entry->id = next_id_++;
  entry->session = std::move(session);
  entry->timer.expires_after(idle_time_);
  entry->timer.async_wait([this, id = entry->id, weak = std::weak_ptr<Entry>(entry)](boost::system::error_code ec) {
    if (ec || weak.expired()) return;
    expire(id);
  });
  entries_.emplace(std::move(key), std::move(entry));
}

std::size_t ConnectionCache::size() const noexcept { return entries_.size(); }

std::uint64_t ConnectionCache::stale() const noexcept { return stale_; }

void ConnectionCache::clear() {
  auto entries = std::move(entries_);
  entries_.clear();
  for (auto& [key, entry] : entries) {
    entry->timer.cancel();
    retire(std::move(entry->session));
  }
}

void ConnectionCache::expire(std::uint64_t id) {
  for (auto it = entries_.begin(); it != entries_.end(); ++it) {
    if (it->second->id == id) {
      auto session = std::move(it->second->session);
      entries_.erase(it);
      retire(std::move(session));
      return;
    }
  }
}

void ConnectionCache::retire(std::unique_ptr<smtp::ClientSession> session) {
  if (!session) return;
  if (!session->reusable()) {
    session->close();
    return;
  }
  // A polite QUIT, owned by its own coroutine.
  asio::co_spawn(
      executor_,
      [s = std::move(session)]() mutable -> asio::awaitable<void> { co_await s->quit(); },
      asio::detached);
}

}  // namespace danerelay::relay
