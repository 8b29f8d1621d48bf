// relay/core/queue_id.hpp — queue ids: 12 upper-case hex digits, as operators' tools expect (mailq
// parsers such as postfix_exporter match ^[0-9A-F]+).
//
// An id is the arrival time in microseconds (48 bits, wrapping every ~8.9 years), made strictly
// increasing within the process, so ids sort by arrival and never repeat within a run.
//
// Wall-clock steps: an id is never below the last one issued, whatever the clock does (a step
// back, however large, gives last + 1 µs until the clock has caught up). Across restarts the
// queue manager raises the floor to the ids already in the spool (not_below, at load), so a
// clock that stepped back while the daemon was down does not hand out their ids again. The
// spool (which creates its files with O_EXCL and renames without replacing) refuses a
// collision all the same; the queue manager then takes a fresh id.
#pragma once

#include <atomic>
#include <chrono>
#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace danerelay::relay {

class QueueId {
 public:
  [[nodiscard]] static QueueId next();                                   // thread-safe; system_clock
  [[nodiscard]] static QueueId next(std::chrono::system_clock::time_point now);  // the same at a given time
  // Ids issued from now on are above `id` (read as the 48-bit value nearest `now`; an id more
  // than half the wrap, ~4.5 years, ahead counts as behind).
  static void not_below(const QueueId& id, std::chrono::system_clock::time_point now = std::chrono::system_clock::now());
  [[nodiscard]] static std::optional<QueueId> parse(std::string_view text);  // 12 hex, either case
  [[nodiscard]] const std::string& str() const noexcept { return text_; }
  auto operator<=>(const QueueId&) const = default;

 private:
  friend class QueueIdGenerator;
  explicit QueueId(std::string text) : text_(std::move(text)) {}
  std::string text_;
};

// The generator behind QueueId::next (one per process); a separate one for tests.
class QueueIdGenerator {
 public:
  [[nodiscard]] QueueId next(std::chrono::system_clock::time_point now);  // thread-safe
  void not_below(const QueueId& id, std::chrono::system_clock::time_point now);

 private:
  std::atomic<std::uint64_t> last_{0};  // the last id issued, in microseconds since the epoch (not wrapped)
};

}  // namespace danerelay::relay
