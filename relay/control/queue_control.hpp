// relay/control/queue_control.hpp — queue operations (`danerelay queue …`): the listing in Postfix's
// shapes (mailq / postqueue -p text, postqueue -j JSON Lines), and the operations a running
// daemon performs on request over its control socket.
//
// The listing is built from QueuedMessage values, so `queue list` and `queue show` also work on
// the spool directly when no daemon runs (Spool::scan / Spool::load).
#pragma once

#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "relay/core/queue_state.hpp"

namespace danerelay::relay {

// One message as postqueue -j describes it.
struct QueueEntry {
  std::string queue_name;   // "active" (being delivered), "deferred", "hold", "incoming" (not tried yet)
  std::string queue_id;     // 12 upper-case hex
  std::int64_t arrival_time = 0;  // unix seconds
  std::uint64_t message_size = 0;
  bool forced_expire = false;
  std::string sender;
  struct Recipient {
    std::string address;
    std::string orig_address;     // ORCPT address part, when it differs
    std::string delay_reason;     // last deferral reason, empty when not deferred
  };
  std::vector<Recipient> recipients;   // pending recipients only (as Postfix lists them)
};

// From a spool record; `active` marks a message currently being delivered.
[[nodiscard]] QueueEntry queue_entry(const QueuedMessage& message, bool active);

// `mailq` / `postqueue -p` text, byte for byte in Postfix's showq_compat.c shape: the header
// line, per message "QID[*!#] size date sender", "(reason)" lines, recipients, blank line, and
// the "-- N Kbytes in M Requests." footer or "Mail queue is empty".
[[nodiscard]] std::string format_mailq(const std::vector<QueueEntry>& entries);
// `postqueue -j`: one JSON object per line.
[[nodiscard]] std::string format_json(const std::vector<QueueEntry>& entries);

// What the daemon does for its control socket. Implemented by the queue manager.
class QueueControl {
 public:
  virtual ~QueueControl() = default;
  [[nodiscard]] virtual std::vector<QueueEntry> list() = 0;
  // Envelope, per-recipient state and the message headers; nullopt: no such message.
  [[nodiscard]] virtual std::optional<std::string> show(const QueueId& id) = 0;
  // Schedule now (all messages when id is empty); returns how many messages were affected.
  [[nodiscard]] virtual boost::asio::awaitable<std::size_t> flush(std::optional<QueueId> id) = 0;
  [[nodiscard]] virtual boost::asio::awaitable<std::size_t> hold(QueueId id) = 0;
  [[nodiscard]] virtual boost::asio::awaitable<std::size_t> release(QueueId id) = 0;
  // Deletes without a bounce (postsuper -d).
  [[nodiscard]] virtual boost::asio::awaitable<std::size_t> remove(QueueId id) = 0;
  // Bounces at the next attempt (postsuper -e), then flushes it.
  [[nodiscard]] virtual boost::asio::awaitable<std::size_t> expire(QueueId id) = 0;
};

// `show` text from a spool record, shared by the daemon and the spool-direct path: envelope and
// DSN parameters, each recipient's state, then the message headers.
[[nodiscard]] std::string format_show(const QueuedMessage& message, const std::string& headers);

// The message's header section (up to the empty line that ends it) read from envelope.body at
// body_offset, with CRLF turned into LF; at most `limit` bytes. nullopt when the file cannot be
// read (errno text in *error when given). For format_show, on both the daemon and spool paths.
[[nodiscard]] std::optional<std::string> read_headers(const QueuedMessage& message, std::string* error = nullptr,
                                                      std::size_t limit = 256 * 1024);

}  // namespace danerelay::relay
