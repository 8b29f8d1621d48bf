// relay/core/queue_id.cpp — see queue_id.hpp.
#include "relay/core/queue_id.hpp"

namespace danerelay::relay {

namespace {
constexpr std::uint64_t kWrap = std::uint64_t{1} << 48;
constexpr std::uint64_t kMask = kWrap - 1;

std::string hex12(std::uint64_t v) {
  static constexpr char digits[] = "0123456789ABCDEF";
  std::string s(12, '0');
  for (int i = 11; i >= 0; --i, v >>= 4) s[static_cast<std::size_t>(i)] = digits[v & 0xf];
  return s;
}

std::uint64_t micros(std::chrono::system_clock::time_point t) {
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count();
  return us < 0 ? 0 : static_cast<std::uint64_t>(us);
}

std::uint64_t value_of(const QueueId& id) {
  std::uint64_t v = 0;
  for (char c : id.str()) v = (v << 4) | static_cast<std::uint64_t>(c <= '9' ? c - '0' : c - 'A' + 10);
  return v;
}

QueueIdGenerator& process_generator() {
  static QueueIdGenerator generator;
  return generator;
}
}  // namespace

QueueId QueueIdGenerator::next(std::chrono::system_clock::time_point now) {
  // Full microseconds, not the 48-bit id: "below the last one" is then plain integer order,
  // whatever the clock did (the old masked comparison took a step back of more than half the
  // wrap for a wrap, and went back). The id is the low 48 bits.
  const std::uint64_t t = micros(now);
  std::uint64_t prev = last_.load(std::memory_order_relaxed);
  std::uint64_t id = 0;
  do {
    id = t > prev ? t : prev + 1;
  } while (!last_.compare_exchange_weak(prev, id, std::memory_order_relaxed));
  return QueueId(hex12(id & kMask));
}

void QueueIdGenerator::not_below(const QueueId& id, std::chrono::system_clock::time_point now) {
  // The full value with these low 48 bits nearest `now`.
  const std::uint64_t t = micros(now);
  const std::uint64_t low = value_of(id);
  std::uint64_t full = (t & ~kMask) | low;
  if (full > t && full - t > kWrap / 2 && full >= kWrap) full -= kWrap;
  else if (full < t && t - full > kWrap / 2) full += kWrap;
  std::uint64_t prev = last_.load(std::memory_order_relaxed);
  while (prev < full && !last_.compare_exchange_weak(prev, full, std::memory_order_relaxed)) {
  }
}

QueueId QueueId::next() { return process_generator().next(std::chrono::system_clock::now()); }
QueueId QueueId::next(std::chrono::system_clock::time_point now) { return process_generator().next(now); }
void QueueId::not_below(const QueueId& id, std::chrono::system_clock::time_point now) { process_generator().not_below(id, now); }

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
