// relay/core/queue_id.hpp — queue ids: 12 upper-case hex digits, as operators' tools expect (mailq
// parsers such as postfix_exporter match ^[0-9A-F]+).
//
// An id is the arrival time in microseconds (48 bits, wrapping every ~8.9 years), made strictly
// increasing within the process, so ids sort by arrival and never repeat within a run. The spool
// (which creates its files with O_EXCL) is what guarantees uniqueness across restarts.
#pragma once

#include <compare>
#include <optional>
#include <string>
#include <string_view>

namespace danerelay::relay {

class QueueId {
 public:
  [[nodiscard]] static QueueId next();                                   // thread-safe
  [[nodiscard]] static std::optional<QueueId> parse(std::string_view text);  // 12 hex, either case
  [[nodiscard]] const std::string& str() const noexcept { return text_; }
  auto operator<=>(const QueueId&) const = default;

 private:
  explicit QueueId(std::string text) : text_(std::move(text)) {}
  std::string text_;
};

}  // namespace danerelay::relay
