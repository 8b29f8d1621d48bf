// tests/smtp/client_limits_test.cpp — smtp/client_limits.hpp: the per-client key (IPv6 per
// prefix, IPv4-mapped as IPv4) and the AUTH failure limit over a five-minute window, with a
// fake clock.
#include "smtp/client_limits.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace danerelay::smtp {
namespace {

using namespace std::chrono_literals;

TEST(ClientKey, Table) {
  struct Row {
    std::string address;
    std::uint32_t prefix;
    std::string want;
  };
  const std::vector<Row> rows{
      {"192.0.2.1", 64, "192.0.2.1"},
      {"::ffff:192.0.2.1", 64, "192.0.2.1"},
      {"::ffff:192.0.2.1", 128, "192.0.2.1"},
      {"2001:db8:1:2:3:4:5:6", 64, "2001:db8:1:2::/64"},
      {"2001:db8:1:2:ffff:ffff:ffff:ffff", 64, "2001:db8:1:2::/64"},
      {"2001:DB8:1:2::1", 64, "2001:db8:1:2::/64"},
      {"2001:db8:1:2:3:4:5:6", 48, "2001:db8:1::/48"},
      {"2001:db8:1:2:3:4:5:6", 60, "2001:db8:1::/60"},
      {"2001:db8:1:1f:3:4:5:6", 60, "2001:db8:1:10::/60"},
      {"2001:db8:1:2:3:4567:5:6", 84, "2001:db8:1:2:3:4000::/84"},
      {"2001:db8:1:2:3:4:5:6", 128, "2001:db8:1:2:3:4:5:6"},
      {"2001:db8:1:2:3:4:5:6", 200, "2001:db8:1:2:3:4:5:6"},
      {"ffff::1", 1, "8000::/1"},
      {"ffff::1", 0, "8000::/1"},
      {"::1", 64, "::/64"},
      {"unknown", 64, "unknown"},
  };
  for (const auto& r : rows) EXPECT_EQ(client_key(r.address, r.prefix), r.want) << r.address << "/" << r.prefix;
}

struct FakeClock {
  std::shared_ptr<std::atomic<std::int64_t>> ms = std::make_shared<std::atomic<std::int64_t>>(1'000'000);
  AuthFailureLimiter::Now now() const {
    return [ms = ms] { return AuthFailureLimiter::Clock::time_point(std::chrono::milliseconds(ms->load())); };
  }
  void advance(std::chrono::milliseconds d) const { *ms += d.count(); }
};

TEST(AuthFailureLimiter, BlocksAtTheLimitWithinFiveMinutes) {
  FakeClock clock;
  AuthFailureLimiter l(3, 64, clock.now());
  EXPECT_FALSE(l.blocked("192.0.2.1"));
  EXPECT_FALSE(l.record_failure("192.0.2.1"));
  clock.advance(1min);
  EXPECT_FALSE(l.record_failure("192.0.2.1"));
  EXPECT_FALSE(l.blocked("192.0.2.1"));
  clock.advance(1min);
  EXPECT_TRUE(l.record_failure("192.0.2.1"));  // the third within five minutes
  EXPECT_TRUE(l.blocked("192.0.2.1"));
  EXPECT_TRUE(l.blocked("::ffff:192.0.2.1"));
  EXPECT_FALSE(l.blocked("192.0.2.2"));
  EXPECT_EQ(l.failures("192.0.2.1"), 3u);
  // The oldest failure leaves the window five minutes after it happened.
  clock.advance(3min - 1ms);
  EXPECT_TRUE(l.blocked("192.0.2.1"));
  clock.advance(1ms);
  EXPECT_FALSE(l.blocked("192.0.2.1"));
  EXPECT_EQ(l.failures("192.0.2.1"), 2u);
  EXPECT_TRUE(l.record_failure("192.0.2.1"));  // three again
  clock.advance(5min);
  EXPECT_FALSE(l.blocked("192.0.2.1"));
  EXPECT_EQ(l.failures("192.0.2.1"), 0u);
}

TEST(AuthFailureLimiter, SpreadOutFailuresNeverBlock) {
  FakeClock clock;
  AuthFailureLimiter l(3, 64, clock.now());
  for (int i = 0; i < 50; ++i) {
    EXPECT_FALSE(l.record_failure("192.0.2.1")) << i;
    clock.advance(150s);  // two per five minutes at most
  }
}

TEST(AuthFailureLimiter, CountsIpv6ClientsPerPrefix) {
  FakeClock clock;
  AuthFailureLimiter l(2, 64, clock.now());
  EXPECT_FALSE(l.record_failure("2001:db8:1:2::1"));
  EXPECT_TRUE(l.record_failure("2001:db8:1:2::99"));  // same /64, another address
  EXPECT_TRUE(l.blocked("2001:db8:1:2:aaaa::1"));
  EXPECT_FALSE(l.blocked("2001:db8:1:3::1"));
}

TEST(AuthFailureLimiter, ManyThreadsShareOneLimiter) {
  AuthFailureLimiter l(1000, 64);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&l, t] {
      for (int i = 0; i < 300; ++i) {
        (void)l.record_failure("192.0.2.1");
        (void)l.record_failure("198.51.100." + std::to_string(t * 50 + i % 50));
        (void)l.blocked("192.0.2.1");
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(l.failures("192.0.2.1"), 1000u);  // 1200 recorded, only the newest 1000 are kept
  EXPECT_TRUE(l.blocked("192.0.2.1"));
  EXPECT_EQ(l.failures("198.51.100.7"), 6u);
}

}  // namespace
}  // namespace danerelay::smtp
