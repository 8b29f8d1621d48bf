// relay/core/queue_clock.hpp — time as the queue manager sees it, injectable so that tests run the
// scheduler on virtual time (tests/relay/fake_queue_clock.hpp) instead of sleeping.
//
// Two clocks, for two jobs:
//   monotonic()  intervals and waits: when the next attempt is due, the timer. It never steps, so
//                a wall-clock step neither delays nor hurries a retry.
//   wall()       what is stored or compared with what is stored: arrival, the queue lifetime and
//                delay_warning (measured from the arrival, like Postfix), the saved next-attempt
//                time, last-attempt and notice dates, queue ids. It may step.
//
// Alarm: one pending wake-up at a monotonic time; set() replaces the pending one, cancel() drops
// it. `fire` runs on the manager's executor, never inside set(). An alarm that is destroyed or
// replaced never fires its old callback.
//
// The production clock (relay/queue/queue_manager.hpp, system_queue_clock) is steady_clock,
// system_clock and an Asio steady_timer.
#pragma once

#include <chrono>
#include <functional>
#include <memory>

namespace danerelay::relay {

class QueueClock {
 public:
  using Monotonic = std::chrono::steady_clock;
  using Wall = std::chrono::system_clock;

  class Alarm {
   public:
    virtual ~Alarm() = default;
    virtual void set(Monotonic::time_point at, std::function<void()> fire) = 0;
    virtual void cancel() = 0;
  };

  virtual ~QueueClock() = default;
  [[nodiscard]] virtual Monotonic::time_point monotonic() const = 0;
  [[nodiscard]] virtual Wall::time_point wall() const = 0;
  [[nodiscard]] virtual std::unique_ptr<Alarm> make_alarm() = 0;
};

}  // namespace danerelay::relay
