// tests/relay/concurrency_test.cpp — global and per-destination delivery limits.
#include "relay/delivery/concurrency.hpp"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <map>
#include <memory>
#include <vector>

namespace danerelay::relay {
namespace {

namespace asio = boost::asio;

struct Observed {
  std::size_t max_total = 0;
  std::map<std::string, std::size_t> max_per_domain;
  std::vector<std::string> order;  // domains in the order they got a permit
};

// `jobs` deliveries (domain per job), each holding its permit for `hold`; records the peaks.
Observed run(std::size_t total, std::size_t per_destination, const std::vector<std::string>& jobs, std::chrono::milliseconds hold) {
  Observed seen;
  asio::io_context io;
  auto limiter = std::make_unique<ConcurrencyLimiter>(io.get_executor(), total, per_destination);
  for (const auto& d : jobs) {
    asio::co_spawn(
        io,
        [&, d]() -> asio::awaitable<void> {
          Permit p = co_await limiter->acquire(d);
          seen.order.push_back(d);
          seen.max_total = std::max(seen.max_total, limiter->active());
          seen.max_per_domain[d] = std::max(seen.max_per_domain[d], limiter->active(d));
          asio::steady_timer t(io, hold);
          co_await t.async_wait(asio::use_awaitable);
        },
        asio::detached);
  }
  io.run();  // returns: no polling, nothing left waiting
  EXPECT_EQ(limiter->active(), 0u);
  EXPECT_EQ(limiter->waiting(), 0u);
  return seen;
}

TEST(Concurrency, PerDestinationLimitHolds) {
  auto seen = run(10, 2, std::vector<std::string>(6, "a.test"), std::chrono::milliseconds(5));
  EXPECT_EQ(seen.max_per_domain["a.test"], 2u);
  EXPECT_EQ(seen.order.size(), 6u);
}

TEST(Concurrency, GlobalLimitHoldsAcrossDestinations) {
  auto seen = run(3, 2, {"a.test", "b.test", "c.test", "d.test", "a.test", "b.test"}, std::chrono::milliseconds(5));
  EXPECT_EQ(seen.max_total, 3u);
  EXPECT_EQ(seen.order.size(), 6u);
}

TEST(Concurrency, ABusyDestinationDoesNotBlockOthers) {
  // a.test saturates its own limit; b.test still gets the free global slots at once.
  auto seen = run(4, 1, {"a.test", "a.test", "a.test", "b.test"}, std::chrono::milliseconds(20));
  ASSERT_EQ(seen.order.size(), 4u);
  EXPECT_EQ(seen.order[1], "b.test");
  EXPECT_EQ(seen.max_per_domain["a.test"], 1u);
}

TEST(Concurrency, TheOldestWaiterWhoseDestinationHasRoomGoesFirst) {
  // Two a.test deliveries take both slots; b.test, a.test and c.test wait in that order. Each
  // freed slot goes to the oldest waiter that fits: b, then a, then c.
  auto seen = run(2, 2, {"a.test", "a.test", "b.test", "a.test", "c.test"}, std::chrono::milliseconds(5));
  EXPECT_EQ(seen.order, (std::vector<std::string>{"a.test", "a.test", "b.test", "a.test", "c.test"}));
}

TEST(Concurrency, ManyWaitersForOneFullDestinationDoNotHoldBackAnother) {
  // 2,000 waiters queue for a.test (limit 1 of 4 slots); c.test, which came last, gets a free
  // slot at once, and every a.test delivery still runs one at a time.
  std::vector<std::string> jobs(2000, "a.test");
  jobs.push_back("c.test");
  auto seen = run(4, 1, jobs, std::chrono::milliseconds(0));
  ASSERT_EQ(seen.order.size(), 2001u);
  EXPECT_EQ(seen.order[1], "c.test");
  EXPECT_EQ(seen.max_per_domain["a.test"], 1u);
}

TEST(Concurrency, ReleasingAPermitEarlyFreesTheSlot) {
  asio::io_context io;
  ConcurrencyLimiter limiter(io.get_executor(), 1, 1);
  int got = 0;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        Permit first = co_await limiter.acquire("x.test");
        ++got;
        first.release();
        EXPECT_EQ(limiter.active(), 0u);
        Permit second = co_await limiter.acquire("x.test");
        ++got;
      },
      asio::detached);
  io.run();
  EXPECT_EQ(got, 2);
  EXPECT_EQ(limiter.active(), 0u);
}

}  // namespace
}  // namespace danerelay::relay
