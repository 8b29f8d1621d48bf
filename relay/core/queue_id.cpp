// relay/core/queue_id.cpp — see queue_id.hpp.
#include "relay/core/queue_id.hpp"

#include <atomic>
#include <chrono>
#include <cstdint>

namespace danerelay::relay {

namespace {
constexpr std::uint64_t kMask = (std::uint64_t{1} << 48) - 1;
std::atomic<std::uint64_t> last_id{0};

std::string hex12(std::uint64_t v) {
  static constexpr char digits[] = "0123456789ABCDEF";
  std::string s(12, '0');
  for (int i = 11; i >= 0; --i, v >>= 4) s[static_cast<std::size_t>(i)] = digits[v & 0xf];
  return s;
}
}  // namespace

QueueId QueueId::next() {
  const auto now = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch());
  const std::uint64_t t = static_cast<std::uint64_t>(now.count()) & kMask;
  std::uint64_t prev = last_id.load(std::memory_order_relaxed);
  std::uint64_t id = 0;
  do {
    // Strictly increasing (modulo the 48-bit wrap), even when the clock stands still or steps back.
    id = ((t > prev || prev - t > kMask / 2) ? t : prev + 1) & kMask;
  } while (!last_id.compare_exchange_weak(prev, id, std::memory_order_relaxed));
  return QueueId(hex12(id));
}

std::optional<QueueId> QueueId::parse(std::string_view text) {
  if (text.size() != 12) return std::nullopt;
  std::string out(text);
  for (char& c : out) {
    if (c >= 'a' && c <= 'f') c = static_cast<char>(c - 'a' + 'A');
    if (!((c >= '0' && c <= '9') || (c >= 'A' && c <= 'F'))) return std::nullopt;
  }
  return QueueId(std::move(out));
}

}  // namespace danerelay::relay
