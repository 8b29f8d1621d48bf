// relay/delivery/connection_cache.hpp — idle SMTP sessions kept for the next message to the same place.
//
// The key is what the session was authenticated for: recipient domain, MX host, address, port,
// TLSA base domain, the usable TLSA records it was authenticated with, the enforced requirement
// and level (with its reference identifiers) and whether the MX RRset was insecure. A session
// authenticated under earlier records, or logged "Verified" before the MX lookup turned
// insecure, is therefore never reused. A connection verified
// for one domain's reference identifiers is never handed to another domain's recipients, even
// when both domains share the MX host and address (Exim's rule; RFC 7672 §3.2.2 names are per
// destination). Entries live for a bounded idle time and number of uses, then get a QUIT.
#pragma once

#include <boost/asio/any_io_executor.hpp>

#include <chrono>
#include <compare>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "smtp/client_session.hpp"

namespace danerelay::relay {

struct CacheKey {
  std::string domain;                      // recipient domain (next hop)
  std::string host;                        // MX host name
  std::string address;
  std::uint16_t port = 0;
  std::string tlsa_base;                   // TLSA base domain, "" without DANE
  std::string requirement;                 // tls::Requirement + level, e.g. "dane/dane"
  std::vector<std::string> reference_ids;  // names the peer was checked against
  std::vector<std::string> usable_tlsa;    // "usage selector mtype hex" of every record loaded
  std::string sni;                         // server name sent
  bool mx_insecure = false;                // D-18: Trusted, never Verified
  auto operator<=>(const CacheKey&) const = default;
};

class ConnectionCache {
 public:
  ConnectionCache(boost::asio::any_io_executor executor, std::chrono::milliseconds idle_time, int max_uses);
  ~ConnectionCache();
  ConnectionCache(const ConnectionCache&) = delete;
  ConnectionCache& operator=(const ConnectionCache&) = delete;

  // A cached session for exactly this key whose connection is still intact
  // (ClientSession::idle_intact), or nullptr. Stale sessions met on the way are closed.
  [[nodiscard]] std::unique_ptr<smtp::ClientSession> take(const CacheKey& key);
  // Keeps a session that is still reusable and below the use limit; otherwise ends it.
  void put(CacheKey key, std::unique_ptr<smtp::ClientSession> session);
  [[nodiscard]] std::size_t size() const noexcept;
  // Sessions take() found closed or spoken to by the peer while idle, and discarded.
  [[nodiscard]] std::uint64_t stale() const noexcept;
  // Ends every cached session (QUIT).
  void clear();

 private:
  struct Entry;
  void expire(std::uint64_t id);
  void retire(std::unique_ptr<smtp::ClientSession> session);

  boost::asio::any_io_executor executor_;
  std::chrono::milliseconds idle_time_;
  int max_uses_;
  std::uint64_t next_id_ = 1;
  std::uint64_t stale_ = 0;
  std::multimap<CacheKey, std::shared_ptr<Entry>> entries_;
};

}  // namespace danerelay::relay
