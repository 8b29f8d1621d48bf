// tests/relay/fake_queue_clock.hpp — virtual time for the queue manager (relay/core/queue_clock.hpp).
//
// Time stands still until the test moves it. run_for()/run_until() step from alarm to alarm:
// at each one the clock jumps to the alarm's time exactly, its callback is posted to the io_context,
// and the io_context runs until it has no work left (spool completions included: the spool keeps
// work counted while its disk thread holds a request). A pending fake alarm is not work, so an
// io_context whose only future is a timer returns from run() at once: nothing waits on real time
// (the one exception: see settle()).
//
// The wall clock follows the monotonic one plus an offset that step_wall() changes, as an NTP
// step or an operator's `date -s` would.
#pragma once

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <set>
#include <utility>

#include "relay/core/queue_clock.hpp"

namespace danerelay::testsupport {

class FakeQueueClock final : public relay::QueueClock {
 public:
  // Starts at a fixed instant (2030-01-01T00:00:00Z) so that expected times can be written down.
  explicit FakeQueueClock(boost::asio::io_context& io,
                          Wall::time_point wall_start = Wall::time_point(std::chrono::seconds(1893456000)))
      : io_(io), wall_base_(wall_start) {}
  ~FakeQueueClock() override {
    for (FakeAlarm* a : alarms_) a->clock_ = nullptr;
  }
  FakeQueueClock(const FakeQueueClock&) = delete;
  FakeQueueClock& operator=(const FakeQueueClock&) = delete;

  [[nodiscard]] Monotonic::time_point monotonic() const override { return mono_; }
  [[nodiscard]] Wall::time_point wall() const override {
    return wall_base_ + std::chrono::duration_cast<Wall::duration>(mono_ - Monotonic::time_point() + wall_offset_);
  }
  [[nodiscard]] std::unique_ptr<Alarm> make_alarm() override { return std::make_unique<FakeAlarm>(this); }

  // Virtual time since the start.
  [[nodiscard]] std::chrono::milliseconds elapsed() const {
    return std::chrono::duration_cast<std::chrono::milliseconds>(mono_ - Monotonic::time_point());
  }

  // Steps the wall clock only (the monotonic clock does not notice).
  void step_wall(std::chrono::milliseconds by) { wall_offset_ += by; }

  // Runs what is ready now, without moving time: until the io_context has no work left. Work
  // that never ends (a coroutine waiting on a fake alarm keeps co_spawn's work counted) is cut
  // off after `settle_limit` of real time, which fails the test unless tolerated.
  void settle() {
    io_.restart();
    io_.run_for(settle_limit_);
    if (!io_.stopped() && !tolerate_unsettled_) {
      ADD_FAILURE() << "the event loop still had work after " << settle_limit_.count() << " ms of real time";
    }
    io_.restart();
  }

  // For a test of a wait that never ends.
  void tolerate_unsettled(std::chrono::milliseconds settle_limit) {
    tolerate_unsettled_ = true;
    settle_limit_ = settle_limit;
  }

  // The earliest pending alarm, if any.
  [[nodiscard]] std::optional<Monotonic::time_point> next_alarm() const {
    std::optional<Monotonic::time_point> best;
    for (const FakeAlarm* a : alarms_) {
      if (a->at_ && (!best || *a->at_ < *best)) best = a->at_;
    }
    return best;
  }

  // Moves virtual time forward by `d`, firing every alarm on the way at its exact time; `stop`
  // (checked after each step) ends it early. Alarms due exactly at the end fire too, unless
  // `fire_at_end` is false (then the test can act at that instant before they do). Returns true
  // when `stop` ended it.
  bool run_for(std::chrono::milliseconds d, const std::function<bool()>& stop = {}, bool fire_at_end = true) {
    settle();
    if (stop && stop()) return true;
    const Monotonic::time_point end = mono_ + d;
    while (true) {
      const auto next = next_alarm();
      if (!next || *next > end || (!fire_at_end && *next == end)) break;
      mono_ = std::max(mono_, *next);
      fire_due();
      settle();
      if (stop && stop()) return true;
    }
    mono_ = end;
    settle();
    return stop && stop();
  }

  // Runs until `done`, at most `limit` of virtual time; true when done.
  bool run_until(const std::function<bool()>& done, std::chrono::milliseconds limit = std::chrono::hours(24 * 365)) {
    return run_for(limit, done) || done();
  }

 private:
  class FakeAlarm final : public relay::QueueClock::Alarm {
   public:
    explicit FakeAlarm(FakeQueueClock* clock) : clock_(clock), serial_(++clock->serials_) { clock_->alarms_.insert(this); }
    ~FakeAlarm() override {
      if (clock_ != nullptr) clock_->alarms_.erase(this);
    }
    FakeAlarm(const FakeAlarm&) = delete;
    FakeAlarm& operator=(const FakeAlarm&) = delete;
    void set(Monotonic::time_point at, std::function<void()> fire) override {
      ++generation_;
      at_ = at;
      fire_ = std::move(fire);
    }
    void cancel() override {
      ++generation_;
      at_.reset();
      fire_ = nullptr;
    }

   private:
    friend class FakeQueueClock;
    FakeQueueClock* clock_;
    std::uint64_t serial_;
    std::uint64_t generation_ = 0;
    std::optional<Monotonic::time_point> at_;
    std::function<void()> fire_;
  };

  void fire_due() {
    for (FakeAlarm* a : alarms_) {
      if (!a->at_ || *a->at_ > mono_) continue;
      a->at_.reset();
      // Posted, as a timer's completion is. An alarm replaced, cancelled or destroyed before the
      // callback runs does not run it (the production alarm behaves the same).
      boost::asio::post(io_, [this, serial = a->serial_, generation = a->generation_, fire = std::exchange(a->fire_, nullptr)]() {
        for (const FakeAlarm* live : alarms_) {
          if (live->serial_ == serial && live->generation_ == generation && fire) {
            fire();
            return;
          }
        }
      });
    }
  }

  boost::asio::io_context& io_;
  std::chrono::milliseconds settle_limit_ = std::chrono::seconds(120);
  bool tolerate_unsettled_ = false;
  Wall::time_point wall_base_;
  std::chrono::milliseconds wall_offset_{0};
  Monotonic::time_point mono_{};
  std::set<FakeAlarm*> alarms_;
  std::uint64_t serials_ = 0;
};

}  // namespace danerelay::testsupport
