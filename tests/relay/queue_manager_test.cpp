// tests/relay/queue_manager_test.cpp — the scheduler alone: a real spool in a temporary
// directory, a scripted DeliverFunction per destination domain (the end-to-end tests in
// relay_e2e_test.cpp run the real delivery path). The manager runs on virtual time
// (fake_queue_clock.hpp): every attempt happens at its exact due time, so the assertions are
// exact times, never "about" or "at least", and nothing depends on how fast the machine is. Two
// tests run on the production clock, for the Asio timer behind it.
#include "relay/queue/queue_manager.hpp"

#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <sys/resource.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <memory>
#include <optional>
#include <mutex>
#include <condition_variable>
#include <set>
#include <utility>

#include "tests/relay/fake_queue_clock.hpp"
#include "tests/support/temp_dir.hpp"

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"  // false positive on coroutine frames (g++ 12)
#endif

namespace danerelay::relay {

// Failure messages show the id, not its bytes (found by argument-dependent lookup).
inline void PrintTo(const QueueId& id, std::ostream* os) { *os << id.str(); }

namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

struct Call {
  std::string domain;
  std::string sender;
  std::vector<std::string> recipients;
  int attempt = 0;
  std::chrono::milliseconds at{0};                 // virtual time since the start
  std::chrono::steady_clock::time_point real_at;  // for the tests on the production clock
};

class QueueManagerTest : public ::testing::Test {
 protected:
  QueueManagerTest() : dir_("danerelay-qmgr"), clock_(std::make_shared<testsupport::FakeQueueClock>(io_)) {
    cfg_.server.hostname = "relay.danerelay.test";
    cfg_.queue.min_backoff = 100ms;
    cfg_.queue.max_backoff = 400ms;
    cfg_.queue.max_lifetime = 5s;
    cfg_.queue.delay_warning = 0ms;
    SpoolOptions so;
    so.directory = dir_.path() / "spool";
    spool_ = std::make_unique<Spool>(io_.get_executor(), so);
  }

  // Scripted outcome per domain: "sent", "bounced" (550 5.1.1) or "deferred" (4.7.5 DANE).
  QueueManager::DeliverFunction script() {
    return [this](Envelope env, std::string domain, int attempt) -> asio::awaitable<std::vector<RecipientResult>> {
      Call c{domain, env.sender, {}, attempt, clock_->elapsed(), std::chrono::steady_clock::now()};
      for (const auto& r : env.recipients) c.recipients.push_back(r.address);
      calls_.push_back(c);
      const std::string outcome = outcomes_.count(domain) ? outcomes_[domain] : "sent";
      std::vector<RecipientResult> out;
      for (const auto& r : env.recipients) {
        RecipientResult res;
        res.recipient = r;
        if (outcome == "sent") {
          res.status = DeliveryStatus::sent;
          res.dsn = "2.0.0";
          res.reason = "250 2.0.0 Ok";
          res.reply_code = 250;
          res.relay_host = "mx." + domain;
        } else if (outcome == "bounced") {
          res.status = DeliveryStatus::bounced;
          res.dsn = "5.1.1";
          res.reason = "host mx." + domain + "[192.0.2.1] said: 550 5.1.1 No such user (in reply to RCPT TO command)";
          res.reply_code = 550;
          res.relay_host = "mx." + domain;
        } else {
          res.status = DeliveryStatus::deferred;
          res.dsn = "4.7.5";
          res.reason = "Server certificate not verified";
          res.relay_host = "mx." + domain;
        }
        out.push_back(std::move(res));
      }
      co_return out;
    };
  }

  // A manager on the fixture's virtual clock.
  std::unique_ptr<QueueManager> manager() {
    return std::make_unique<QueueManager>(io_.get_executor(), cfg_, *spool_, script(), clock_);
  }

  // A message committed to the spool, arriving now (virtual wall time unless told otherwise).
  QueuedMessage message(const std::string& sender, std::vector<std::string> to, std::uint8_t notify = notify_unset,
                        std::optional<Clock::time_point> arrival = std::nullopt, std::optional<QueueId> id = std::nullopt) {
    Envelope env;
    if (id) env.id = *id;
    env.sender = sender;
    env.arrival = arrival.value_or(clock_->wall());
    for (auto& t : to) env.recipients.push_back(Recipient{t, {}, notify});
    std::string text = "From: <" + sender + ">\r\nSubject: queue test\r\nMessage-ID: <t@org.test>\r\n\r\nbody\r\n";
    SpoolResult r;
    asio::co_spawn(io_, [&]() -> asio::awaitable<void> { r = co_await spool_->commit(std::move(text), env); },
                   asio::detached);
    clock_->settle();
    EXPECT_TRUE(r.ok()) << r.error;
    QueuedMessage m{env, {}};
    m.state.recipients.resize(env.recipients.size());
    return m;
  }

  // Runs on virtual time until `done`, at most `limit` of it; true when done.
  bool run_until(const std::function<bool()>& done, std::chrono::milliseconds limit = std::chrono::hours(1)) {
    return clock_->run_until(done, limit);
  }

  // The same on real time, for the tests on the production clock.
  bool run_until_real(const std::function<bool()>& done, std::chrono::milliseconds limit = 10s) {
    asio::steady_timer check(io_);
    const auto deadline = std::chrono::steady_clock::now() + limit;
    bool ok = false;
    std::function<void()> poll = [&] {
      if (done()) {
        ok = true;
        io_.stop();
        return;
      }
      if (std::chrono::steady_clock::now() > deadline) {
        io_.stop();
        return;
      }
      check.expires_after(5ms);
      check.async_wait([&](boost::system::error_code) { poll(); });
    };
    poll();
    io_.run();
    io_.restart();
    return ok;
  }

  template <class T>
  static asio::awaitable<void> store(std::function<asio::awaitable<T>()> f, std::shared_ptr<std::optional<T>> out) {
    *out = co_await f();
  }

  // The result of `f`, run on the loop until it completes and everything it started without
  // waiting (a flush's attempt) is done. An operation that has not completed after `limit` of
  // virtual time fails the test: a default value must never pass for a real result.
  template <class T>
  T await(std::function<asio::awaitable<T>()> f, std::chrono::milliseconds limit = 1s) {
    // Shared: an operation that never completes still refers to it after this returns.
    auto out = std::make_shared<std::optional<T>>();
    asio::co_spawn(io_, store<T>(std::move(f), out), asio::detached);
    if (!clock_->run_until([&] { return out->has_value(); }, limit)) {
      ADD_FAILURE() << "await: the operation did not complete within " << limit.count() << " ms";
      return T{};
    }
    return **out;
  }

  // Completes after `d` of virtual time (holds no work on the loop, like every fake alarm).
  asio::awaitable<void> virtual_sleep(std::chrono::milliseconds d) {
    auto initiation = [this, d](auto handler) {
      auto h = std::make_shared<decltype(handler)>(std::move(handler));
      sleeper_ = clock_->make_alarm();
      sleeper_->set(clock_->monotonic() + d, [h] { std::move (*h)(); });
    };
    co_await asio::async_initiate<decltype(asio::use_awaitable), void()>(initiation, asio::use_awaitable);
  }

  // Virtual times of the calls to `domain`.
  std::vector<std::chrono::milliseconds> times_of(const std::string& domain) const {
    std::vector<std::chrono::milliseconds> out;
    for (const auto& c : calls_) {
      if (c.domain == domain) out.push_back(c.at);
    }
    return out;
  }

  // Queues a message to defer.test that fails once and then waits (60 s backoff, 1 h lifetime); its id.
  QueueId deferred_once(QueueManager& q) {
    outcomes_["defer.test"] = "deferred";
    cfg_.queue.min_backoff = 60s;
    cfg_.queue.max_backoff = 60s;
    cfg_.queue.max_lifetime = 1h;
    auto m = message("a@org.test", {"b@defer.test"});
    const QueueId id = m.envelope.id;
    q.enqueue(std::move(m));
    EXPECT_TRUE(run_until([&] { return calls_to("defer.test") == 1 && q.active() == 0; }));
    return id;
  }

  // The scripted delivery, held at a gate for the domains in `held` until release_all(): attempts
  // in flight can then be counted. starts_ records the order in which deliveries began.
  QueueManager::DeliverFunction gated(std::set<std::string> held) {
    return [this, held, inner = script()](Envelope env, std::string domain,
                                          int attempt) -> asio::awaitable<std::vector<RecipientResult>> {
      starts_.push_back(domain);
      if (held.count(domain) != 0) {
        ++in_flight_[domain];
        co_await gate();
        --in_flight_[domain];
      }
      co_return co_await inner(std::move(env), std::move(domain), attempt);
    };
  }

  asio::awaitable<void> gate() {
    auto initiation = [this](auto handler) {
      auto h = std::make_shared<decltype(handler)>(std::move(handler));
      gates_.push_back([h] { std::move (*h)(); });
    };
    co_await asio::async_initiate<decltype(asio::use_awaitable), void()>(initiation, asio::use_awaitable);
  }

  // Opens every gate (the deliveries go on when the loop runs next).
  void release_all() {
    for (auto& g : std::exchange(gates_, {})) asio::post(io_, std::move(g));
  }

  std::size_t in_flight() const {
    std::size_t n = 0;
    for (const auto& [domain, k] : in_flight_) n += k;
    return n;
  }

  int calls_to(const std::string& domain) const {
    int n = 0;
    for (const auto& c : calls_) n += c.domain == domain ? 1 : 0;
    return n;
  }

  testsupport::TempDir dir_;
  asio::io_context io_;
  std::shared_ptr<testsupport::FakeQueueClock> clock_;
  config::Config cfg_;
  std::unique_ptr<Spool> spool_;
  std::map<std::string, std::string> outcomes_;
  std::vector<Call> calls_;
  std::unique_ptr<QueueClock::Alarm> sleeper_;  // virtual_sleep's
  std::vector<std::string> starts_;             // gated(): deliveries in the order they began
  std::map<std::string, std::size_t> in_flight_;  // gated(): held at the gate, per domain
  std::vector<std::function<void()>> gates_;
};

TEST_F(QueueManagerTest, FirstAttemptIsImmediateAndADeliveredMessageIsRemoved) {
  auto q = manager();
  q->enqueue(message("a@org.test", {"b@ok.test"}));
  ASSERT_TRUE(run_until([&] { return q->size() == 0; }));
  EXPECT_EQ(times_of("ok.test"), std::vector<std::chrono::milliseconds>{0ms}) << "one attempt, at once";
  EXPECT_EQ(q->counters().sent, 1u);
  EXPECT_TRUE(Spool::scan(spool_->directory()).empty());
}

TEST_F(QueueManagerTest, AnIdleQueueLeavesNoWorkOnTheEventLoop) {
  // No busy loop: once the queue is empty, io_context::run() returns by itself. The production
  // clock, whose alarm is an Asio timer.
  QueueManager q(io_.get_executor(), cfg_, *spool_, script());
  q.enqueue(message("a@org.test", {"b@ok.test"}, notify_unset, Clock::now()));
  const auto started = std::chrono::steady_clock::now();
  io_.run_for(30s);
  EXPECT_LT(std::chrono::steady_clock::now() - started, 30s) << "the loop kept work pending while idle";
  EXPECT_EQ(q.size(), 0u);
}

TEST_F(QueueManagerTest, RetriesWaitForTheBackoffOnTheProductionClock) {
  // The one real-time test of the retry timer: a lower bound only (a slow machine can only be
  // later), the exact schedule is tested on virtual time below.
  outcomes_["defer.test"] = "deferred";
  QueueManager q(io_.get_executor(), cfg_, *spool_, script());
  q.enqueue(message("a@org.test", {"b@defer.test"}, notify_unset, Clock::now()));
  ASSERT_TRUE(run_until_real([&] { return calls_to("defer.test") == 1 && q.active() == 0; }));
  outcomes_["defer.test"] = "sent";
  ASSERT_TRUE(run_until_real([&] { return q.size() == 0; }));
  ASSERT_EQ(calls_.size(), 2u);
  EXPECT_EQ(calls_[1].attempt, 2);
  EXPECT_GE(calls_[1].real_at - calls_[0].real_at, 95ms) << "retried before min_backoff (times are whole milliseconds)";
}

TEST_F(QueueManagerTest, ADueBacklogStartsNoMoreAttemptsThanItsLaneAllows) {
  // A destination back after an outage: its whole backlog is due at once. The manager starts
  // 2 × max_concurrency_per_destination attempts for it, not one coroutine per message waiting
  // on the concurrency limiter (a stampede: 100,000 of them in queue_scale_bench), and starts
  // the next one as each ends.
  cfg_.delivery.max_concurrency = 10;
  cfg_.delivery.max_concurrency_per_destination = 2;  // lanes of 4, 20 attempts in all
  std::vector<QueuedMessage> backlog;
  for (int i = 0; i < 24; ++i) backlog.push_back(message("a@org.test", {"b@slow.test"}));
  clock_->tolerate_unsettled(100ms);  // held deliveries keep co_spawn's work counted
  auto q = std::make_unique<QueueManager>(io_.get_executor(), cfg_, *spool_, gated({"slow.test"}), clock_);
  for (auto& m : backlog) q->enqueue(std::move(m));
  std::size_t most = 0;
  for (int round = 0; round < 20 && q->size() > 0; ++round) {
    clock_->run_for(0ms);
    most = std::max(most, in_flight());
    EXPECT_LE(q->active(), 4u) << "round " << round;
    release_all();
  }
  EXPECT_EQ(q->size(), 0u) << "the backlog did not drain in 20 rounds";
  EXPECT_EQ(most, 4u);
  EXPECT_EQ(calls_to("slow.test"), 24);
}

TEST_F(QueueManagerTest, MailForAnotherDestinationIsNotHeldBehindABacklog) {
  // Three destinations with a backlog fill every slot; a message for a fourth arrives a second
  // later. Lanes with a due message take turns, so it starts with the next slots that free up,
  // not after the older backlog (which is due earlier) has drained.
  cfg_.delivery.max_concurrency = 3;
  cfg_.delivery.max_concurrency_per_destination = 2;  // lanes of 4, 6 attempts in all
  std::vector<QueuedMessage> backlog;
  for (const char* to : {"x@a.test", "x@b.test", "x@c.test"}) {
    for (int i = 0; i < 8; ++i) backlog.push_back(message("a@org.test", {to}));
  }
  clock_->tolerate_unsettled(100ms);
  auto q = std::make_unique<QueueManager>(io_.get_executor(), cfg_, *spool_, gated({"a.test", "b.test", "c.test"}), clock_);
  for (auto& m : backlog) q->enqueue(std::move(m));
  clock_->run_for(1s);  // every slot taken, the deliveries held
  EXPECT_EQ(in_flight(), 6u);
  EXPECT_LE(in_flight_["a.test"], 4u);
  q->enqueue(message("a@org.test", {"x@fast.test"}));
  int rounds = 0;
  while (calls_to("fast.test") == 0 && rounds < 20) {
    release_all();
    clock_->run_for(0ms);
    ++rounds;
    EXPECT_LE(q->active(), 6u);
  }
  EXPECT_EQ(rounds, 1) << "fast.test waited for " << rounds << " rounds of the backlog";
  for (int round = 0; round < 20 && q->size() > 0; ++round) {
    release_all();
    clock_->run_for(0ms);
  }
  EXPECT_EQ(q->size(), 0u);
}

TEST_F(QueueManagerTest, AnAttemptKeepsItsSlotUntilItsStateIsSaved) {
  // The slots also bound the state saves waiting for the disk: with the slot given back before
  // the save, a burst of first attempts that defer queued one save per message (100,000 in
  // queue_scale_bench --live, 5.5 KiB of RSS per message once they were done).
  std::mutex mu;
  std::condition_variable cv;
  bool blocked = true;
  SpoolOptions so;
  so.directory = dir_.path() / "spool-held";
  so.on_disk_op = [&](std::string_view op, const std::filesystem::path& path) {
    if (op != "rename" || path.parent_path().filename() != "state") return;
    std::unique_lock lock(mu);
    cv.wait_for(lock, 20s, [&] { return !blocked; });  // the disk thread waits while the test looks
  };
  spool_ = std::make_unique<Spool>(io_.get_executor(), so);
  outcomes_["defer.test"] = "deferred";
  cfg_.queue.min_backoff = 60s;
  cfg_.queue.max_backoff = 60s;
  cfg_.queue.max_lifetime = 1h;
  cfg_.delivery.max_concurrency = 1;
  cfg_.delivery.max_concurrency_per_destination = 1;  // lanes of 2, 2 attempts in all
  std::vector<QueuedMessage> burst;
  for (int i = 0; i < 10; ++i) burst.push_back(message("a@org.test", {"b@defer.test"}));
  clock_->tolerate_unsettled(200ms);  // the held disk thread keeps the spool's work counted
  auto q = manager();
  for (auto& m : burst) q->enqueue(std::move(m));
  clock_->run_for(0ms);
  EXPECT_EQ(calls_to("defer.test"), 2) << "attempts started while the first two states were not saved";
  EXPECT_EQ(q->active(), 2u);
  {
    std::lock_guard lock(mu);
    blocked = false;
  }
  cv.notify_all();
  EXPECT_TRUE(run_until([&] { return calls_to("defer.test") == 10 && q->active() == 0; }, 1s));
}

TEST_F(QueueManagerTest, RecipientsAreGroupedByDomain) {
  auto q = manager();
  q->enqueue(message("a@org.test", {"x@ok.test", "y@other.test", "z@ok.test"}));
  ASSERT_TRUE(run_until([&] { return q->size() == 0; }));
  ASSERT_EQ(calls_.size(), 2u);
  EXPECT_EQ(calls_[0].domain, "ok.test");
  EXPECT_EQ(calls_[0].recipients, (std::vector<std::string>{"x@ok.test", "z@ok.test"}));
  EXPECT_EQ(calls_[1].recipients, (std::vector<std::string>{"y@other.test"}));
}

TEST_F(QueueManagerTest, HardBounceQueuesAFailureNoticeToTheSenderThroughTheSameQueue) {
  outcomes_["fail.test"] = "bounced";
  auto q = manager();
  q->enqueue(message("a@org.test", {"b@fail.test"}));
  ASSERT_TRUE(run_until([&] { return q->size() == 0 && calls_to("org.test") == 1; }));
  EXPECT_EQ(q->counters().notices, 1u);
  // The notice went out with the null sender to the original sender (RFC 5321 §6.1), at once.
  const auto& notice = calls_.back();
  EXPECT_EQ(notice.sender, "");
  EXPECT_EQ(notice.recipients, std::vector<std::string>{"a@org.test"});
  EXPECT_EQ(notice.at, 0ms);
}

TEST_F(QueueManagerTest, NullSenderIsNeverBounced) {
  outcomes_["fail.test"] = "bounced";
  auto q = manager();
  q->enqueue(message("", {"b@fail.test"}));
  ASSERT_TRUE(run_until([&] { return q->size() == 0; }));
  EXPECT_EQ(q->counters().notices, 0u);
  EXPECT_EQ(calls_.size(), 1u);
}

TEST_F(QueueManagerTest, NotifyNeverSuppressesTheBounce) {
  outcomes_["fail.test"] = "bounced";
  auto q = manager();
  q->enqueue(message("a@org.test", {"b@fail.test"}, notify_never));
  ASSERT_TRUE(run_until([&] { return q->size() == 0; }));
  EXPECT_EQ(q->counters().notices, 0u);
}

TEST_F(QueueManagerTest, DeferredMailIsRetriedWithGrowingBackoffAndBouncesAtTheLifetime) {
  outcomes_["defer.test"] = "deferred";
  cfg_.queue.max_lifetime = 1500ms;
  auto q = manager();
  q->enqueue(message("a@org.test", {"b@defer.test"}));
  ASSERT_TRUE(run_until([&] { return q->size() == 0 && calls_to("org.test") == 1; }));
  // Backoff 100, 200, 400 (max), 400 ms, then cut to the lifetime: the last attempt is at 1500 ms.
  EXPECT_EQ(times_of("defer.test"), (std::vector<std::chrono::milliseconds>{0ms, 100ms, 300ms, 700ms, 1100ms, 1500ms}));
  for (std::size_t i = 0; i < calls_.size() && calls_[i].domain == "defer.test"; ++i) {
    EXPECT_EQ(calls_[i].attempt, static_cast<int>(i) + 1);
  }
  EXPECT_EQ(times_of("org.test"), std::vector<std::chrono::milliseconds>{1500ms}) << "bounced at the lifetime, not before";
  EXPECT_EQ(q->counters().bounced, 1u);
  EXPECT_EQ(q->counters().notices, 1u);
}

TEST_F(QueueManagerTest, DelayNoticeIsSentOnceAfterDelayWarning) {
  outcomes_["defer.test"] = "deferred";
  cfg_.queue.delay_warning = 250ms;
  cfg_.queue.max_lifetime = 60s;
  auto q = manager();
  q->enqueue(message("a@org.test", {"b@defer.test"}));
  ASSERT_TRUE(run_until([&] { return calls_to("defer.test") >= 5; }));
  EXPECT_EQ(q->counters().notices, 1u) << "one delay notice, not one per attempt";
  // Attempts at 0, 100, 300, 700, 1100 ms: the first one at or after 250 ms sends it.
  EXPECT_EQ(times_of("org.test"), std::vector<std::chrono::milliseconds>{300ms});
  auto listing = q->list();
  ASSERT_EQ(listing.size(), 1u);
  EXPECT_EQ(listing[0].queue_name, "deferred");
  ASSERT_EQ(listing[0].recipients.size(), 1u);
  EXPECT_EQ(listing[0].recipients[0].delay_reason, "Server certificate not verified");
}

TEST_F(QueueManagerTest, AwaitFailsTheTestWhenTheOperationNeverCompletes) {
  // The helper itself: an operation that never completes is a failure, not a default value.
  clock_->tolerate_unsettled(200ms);  // co_spawn keeps the waiting coroutine counted as work
  auto never = [this]() -> asio::awaitable<std::size_t> {
    co_await virtual_sleep(std::chrono::hours(1));
    co_return 1;
  };
  EXPECT_NONFATAL_FAILURE(static_cast<void>(await<std::size_t>(never, 100ms)), "did not complete");
  // And one that completes in time is not.
  auto soon = [this]() -> asio::awaitable<std::size_t> {
    co_await virtual_sleep(50ms);
    co_return 7;
  };
  EXPECT_EQ(await<std::size_t>(soon, 100ms), 7u);
}

TEST_F(QueueManagerTest, HoldStopsDeliveryUntilReleaseAndFlushRunsItNow) {
  auto qp = manager();
  QueueManager& q = *qp;
  const QueueId id = deferred_once(q);
  EXPECT_EQ(await<std::size_t>([&] { return q.hold(id); }), 1u);
  EXPECT_EQ(await<std::size_t>([&] { return q.flush(std::nullopt); }), 0u) << "a held message is not flushed";
  EXPECT_EQ(calls_to("defer.test"), 1);
  EXPECT_EQ(q.list().at(0).queue_name, "hold");
  auto on_disk = Spool::load(spool_->directory(), id);
  ASSERT_TRUE(on_disk);
  EXPECT_TRUE(on_disk->state.hold) << "hold survives a restart";
  EXPECT_EQ(await<std::size_t>([&] { return q.release(id); }), 1u);
  EXPECT_EQ(calls_to("defer.test"), 1) << "released into the deferred queue, next attempt as scheduled";
  outcomes_["defer.test"] = "sent";
  EXPECT_EQ(await<std::size_t>([&] { return q.flush(id); }), 1u);
  ASSERT_TRUE(run_until([&] { return q.size() == 0; }));
  EXPECT_EQ(calls_to("defer.test"), 2);
  EXPECT_EQ(times_of("defer.test"), (std::vector<std::chrono::milliseconds>{0ms, 0ms})) << "the flush ran it at once";
}

TEST_F(QueueManagerTest, AHeldMessageIsNotTriedAtItsNextAttemptButAtOnceWhenReleasedAfterIt) {
  auto qp = manager();
  QueueManager& q = *qp;
  const QueueId id = deferred_once(q);  // next attempt at 60 s
  EXPECT_EQ(await<std::size_t>([&] { return q.hold(id); }), 1u);
  clock_->run_for(2min);
  EXPECT_EQ(calls_to("defer.test"), 1) << "held past its next attempt";
  outcomes_["defer.test"] = "sent";
  EXPECT_EQ(await<std::size_t>([&] { return q.release(id); }), 1u);
  ASSERT_TRUE(run_until([&] { return q.size() == 0; }));
  EXPECT_EQ(times_of("defer.test"), (std::vector<std::chrono::milliseconds>{0ms, 120s})) << "due while held: tried on release";
}

TEST_F(QueueManagerTest, ReleaseKeepsTheScheduledNextAttempt) {
  auto qp = manager();
  QueueManager& q = *qp;
  const QueueId id = deferred_once(q);  // next attempt at 60 s
  EXPECT_EQ(await<std::size_t>([&] { return q.hold(id); }), 1u);
  clock_->run_for(10s);
  EXPECT_EQ(await<std::size_t>([&] { return q.release(id); }), 1u);
  EXPECT_EQ(calls_to("defer.test"), 1) << "released into the deferred queue, next attempt as scheduled";
  outcomes_["defer.test"] = "sent";
  ASSERT_TRUE(run_until([&] { return q.size() == 0; }));
  EXPECT_EQ(times_of("defer.test"), (std::vector<std::chrono::milliseconds>{0ms, 60s}));
}

TEST_F(QueueManagerTest, DeleteRemovesWithoutABounce) {
  auto qp = manager();
  QueueManager& q = *qp;
  const QueueId id = deferred_once(q);
  EXPECT_EQ(await<std::size_t>([&] { return q.remove(id); }), 1u);
  EXPECT_EQ(q.size(), 0u);
  EXPECT_EQ(q.counters().notices, 0u);
  EXPECT_FALSE(Spool::load(spool_->directory(), id));
  EXPECT_EQ(await<std::size_t>([&] { return q.remove(id); }), 0u);
}

TEST_F(QueueManagerTest, ExpireBouncesAtOnce) {
  auto qp = manager();
  QueueManager& q = *qp;
  const QueueId id = deferred_once(q);
  clock_->run_for(5s);
  EXPECT_EQ(await<std::size_t>([&] { return q.expire(id); }), 1u);
  ASSERT_TRUE(run_until([&] { return q.size() == 0 && calls_to("org.test") == 1; }));
  EXPECT_EQ(calls_to("defer.test"), 1) << "an expired message is not tried again";
  EXPECT_EQ(times_of("org.test"), std::vector<std::chrono::milliseconds>{5s}) << "at once";
  EXPECT_EQ(q.counters().notices, 1u);
}

TEST_F(QueueManagerTest, RecoveredMessagesKeepTheirScheduleAndState) {
  outcomes_["defer.test"] = "deferred";
  auto m = message("a@org.test", {"b@defer.test", "c@ok.test"});
  m.state.recipients[1].status = RecipientStatus::sent;  // delivered before the "crash"
  m.state.attempts = 3;
  m.state.next_attempt = std::chrono::duration_cast<std::chrono::milliseconds>(
                             (clock_->wall() + std::chrono::hours(1)).time_since_epoch())
                             .count();
  auto qp = manager();
  QueueManager& q = *qp;
  std::vector<QueuedMessage> ms{m};
  q.load(std::move(ms));
  clock_->run_for(59min);
  EXPECT_TRUE(calls_.empty()) << "not due yet";
  outcomes_["defer.test"] = "sent";
  EXPECT_EQ(await<std::size_t>([&] { return q.flush(std::nullopt); }), 1u);
  ASSERT_TRUE(run_until([&] { return q.size() == 0; }));
  ASSERT_EQ(calls_.size(), 1u);
  EXPECT_EQ(calls_[0].recipients, std::vector<std::string>{"b@defer.test"}) << "the delivered recipient is not sent twice";
  EXPECT_EQ(calls_[0].attempt, 4);
}

TEST_F(QueueManagerTest, RecoveredMessagesAreTriedAtTheirSavedTime) {
  outcomes_["defer.test"] = "sent";
  auto m = message("a@org.test", {"b@defer.test"});
  m.state.attempts = 1;
  m.state.next_attempt = std::chrono::duration_cast<std::chrono::milliseconds>((clock_->wall() + 90s).time_since_epoch()).count();
  auto q = manager();
  std::vector<QueuedMessage> ms{m};
  q->load(std::move(ms));
  ASSERT_TRUE(run_until([&] { return q->size() == 0; }));
  EXPECT_EQ(times_of("defer.test"), std::vector<std::chrono::milliseconds>{90s});
}

// ── Tables on virtual time: lifetime, delay warnings, wall-clock steps ─────────────────────
// min_backoff 100 ms, max_backoff 400 ms (the fixture's): a message deferred at every attempt
// is tried at 0, 100, 300, 700, 1100, 1500, 1900, … ms unless its lifetime cuts a wait short.

using Times = std::vector<std::chrono::milliseconds>;

struct LifetimeRow {
  const char* name;
  std::chrono::milliseconds max_lifetime;
  Times attempts;                   // when defer.test is tried
  std::chrono::milliseconds bounce; // when the failure notice goes to the sender
};
void PrintTo(const LifetimeRow& row, std::ostream* os) { *os << row.name; }

class QueueLifetimeTest : public QueueManagerTest, public ::testing::WithParamInterface<LifetimeRow> {};

TEST_P(QueueLifetimeTest, BouncesExactlyAtTheLifetime) {
  const LifetimeRow& row = GetParam();
  outcomes_["defer.test"] = "deferred";
  cfg_.queue.max_lifetime = row.max_lifetime;
  auto q = manager();
  q->enqueue(message("a@org.test", {"b@defer.test"}));
  ASSERT_TRUE(run_until([&] { return q->size() == 0; }));
  EXPECT_EQ(times_of("defer.test"), row.attempts);
  EXPECT_EQ(times_of("org.test"), Times{row.bounce});
  EXPECT_EQ(q->counters().bounced, 1u);
  EXPECT_EQ(q->counters().notices, 1u);
  EXPECT_EQ(q->counters().removed, 2u) << "the original and the delivered notice";
}

INSTANTIATE_TEST_SUITE_P(
    Table, QueueLifetimeTest,
    ::testing::Values(LifetimeRow{"Lifetime1500ms", 1500ms, {0ms, 100ms, 300ms, 700ms, 1100ms, 1500ms}, 1500ms},
                      LifetimeRow{"Lifetime1000msCutsTheFifthWait", 1000ms, {0ms, 100ms, 300ms, 700ms, 1000ms}, 1000ms},
                      LifetimeRow{"Lifetime2000ms", 2000ms, {0ms, 100ms, 300ms, 700ms, 1100ms, 1500ms, 1900ms, 2000ms}, 2000ms},
                      LifetimeRow{"LifetimeEqualToMinBackoff", 100ms, {0ms, 100ms}, 100ms},
                      LifetimeRow{"LifetimeShorterThanMinBackoff", 50ms, {0ms, 50ms}, 50ms}),
    [](const ::testing::TestParamInfo<LifetimeRow>& p) { return std::string(p.param.name); });

struct DelayWarningRow {
  const char* name;
  std::chrono::milliseconds delay_warning;  // 0: none
  std::optional<std::chrono::milliseconds> notice;  // when the one delay notice goes out
};
void PrintTo(const DelayWarningRow& row, std::ostream* os) { *os << row.name; }

class QueueDelayWarningTest : public QueueManagerTest, public ::testing::WithParamInterface<DelayWarningRow> {};

TEST_P(QueueDelayWarningTest, OneDelayNoticeAtTheFirstAttemptAfterDelayWarning) {
  const DelayWarningRow& row = GetParam();
  outcomes_["defer.test"] = "deferred";
  cfg_.queue.delay_warning = row.delay_warning;
  cfg_.queue.max_lifetime = 60s;
  auto q = manager();
  q->enqueue(message("a@org.test", {"b@defer.test"}));
  clock_->run_for(3000ms);
  EXPECT_EQ(times_of("defer.test"), (Times{0ms, 100ms, 300ms, 700ms, 1100ms, 1500ms, 1900ms, 2300ms, 2700ms}));
  EXPECT_EQ(times_of("org.test"), row.notice ? Times{*row.notice} : Times{});
  EXPECT_EQ(q->counters().notices, row.notice ? 1u : 0u);
  EXPECT_EQ(q->size(), 1u) << "still queued";
}

INSTANTIATE_TEST_SUITE_P(
    Table, QueueDelayWarningTest,
    ::testing::Values(DelayWarningRow{"Off", 0ms, std::nullopt},
                      DelayWarningRow{"OneMillisecond", 1ms, 100ms},
                      DelayWarningRow{"ExactlyAtTheSecondAttempt", 100ms, 100ms},
                      DelayWarningRow{"BetweenAttempts", 250ms, 300ms},
                      DelayWarningRow{"ExactlyAtTheThirdAttempt", 300ms, 300ms},
                      DelayWarningRow{"JustAfterTheThirdAttempt", 301ms, 700ms},
                      DelayWarningRow{"ExactlyAtTheLastAttemptRun", 2700ms, 2700ms},
                      DelayWarningRow{"LaterThanTheRun", 2701ms, std::nullopt}),
    [](const ::testing::TestParamInfo<DelayWarningRow>& p) { return std::string(p.param.name); });

// The wall clock steps (NTP, `date -s`) at `step_at` of virtual time, by `step_by`; the
// monotonic clock does not. Retry waits are monotonic: a step neither delays nor hurries them.
// The lifetime and delay_warning are measured on the wall clock from the arrival (as Postfix
// does): a step moves the bounce and the delay notice by the step.
struct WallStepRow {
  const char* name;
  std::chrono::milliseconds step_at;
  bool before_attempt;              // a step exactly at an attempt's time comes before it
  std::chrono::milliseconds step_by;
  std::chrono::milliseconds run;    // how long to run
  Times attempts;                   // defer.test
  Times notices;                    // org.test: the delay notice (delay_warning 250 ms), then the bounce
};
void PrintTo(const WallStepRow& row, std::ostream* os) { *os << row.name; }

class QueueWallStepTest : public QueueManagerTest, public ::testing::WithParamInterface<WallStepRow> {};

TEST_P(QueueWallStepTest, RetriesKeepTheirPaceAndTheLifetimeFollowsTheWallClock) {
  const WallStepRow& row = GetParam();
  outcomes_["defer.test"] = "deferred";
  cfg_.queue.max_lifetime = 1500ms;
  cfg_.queue.delay_warning = 250ms;
  auto q = manager();
  q->enqueue(message("a@org.test", {"b@defer.test"}));
  clock_->run_for(row.step_at, {}, !row.before_attempt);
  ASSERT_EQ(clock_->elapsed(), row.step_at);
  clock_->step_wall(row.step_by);
  clock_->run_for(row.run - row.step_at);
  EXPECT_EQ(times_of("defer.test"), row.attempts);
  EXPECT_EQ(times_of("org.test"), row.notices);
}

INSTANTIATE_TEST_SUITE_P(
    Table, QueueWallStepTest,
    ::testing::Values(
        WallStepRow{"NoStep", 50ms, false, 0ms, 3000ms, {0ms, 100ms, 300ms, 700ms, 1100ms, 1500ms}, {300ms, 1500ms}},
        // Back 1 s: the retries come at the same times, the lifetime (wall) ends 1 s later.
        WallStepRow{"Back1sBetweenAttempts", 50ms, false, -1000ms, 3000ms,
                    {0ms, 100ms, 300ms, 700ms, 1100ms, 1500ms, 1900ms, 2300ms, 2500ms}, {1500ms, 2500ms}},
        WallStepRow{"Back1sExactlyAtAnAttemptBeforeIt", 100ms, true, -1000ms, 3000ms,
                    {0ms, 100ms, 300ms, 700ms, 1100ms, 1500ms, 1900ms, 2300ms, 2500ms}, {1500ms, 2500ms}},
        WallStepRow{"Back1sExactlyAtAnAttemptAfterIt", 100ms, false, -1000ms, 3000ms,
                    {0ms, 100ms, 300ms, 700ms, 1100ms, 1500ms, 1900ms, 2300ms, 2500ms}, {1500ms, 2500ms}},
        // Back 1 h: nothing waits an hour; the retries go on at their pace.
        WallStepRow{"Back1h", 50ms, false, -3600000ms, 2000ms, {0ms, 100ms, 300ms, 700ms, 1100ms, 1500ms, 1900ms}, {}},
        // Forward 1 s: older by 1 s at once: the delay notice at the next attempt, the bounce
        // when the wall clock says 1500 ms.
        WallStepRow{"Forward1s", 50ms, false, 1000ms, 3000ms, {0ms, 100ms, 300ms, 500ms}, {100ms, 500ms}},
        WallStepRow{"Forward1sExactlyAtAnAttemptBeforeIt", 100ms, true, 1000ms, 3000ms, {0ms, 100ms, 300ms, 500ms},
                    {100ms, 500ms}},
        // Forward 1 h: past the lifetime; the next attempt (on time) bounces.
        WallStepRow{"Forward1h", 50ms, false, 3600000ms, 3000ms, {0ms, 100ms}, {100ms}}),
    [](const ::testing::TestParamInfo<WallStepRow>& p) { return std::string(p.param.name); });

// ── A notice that cannot be queued ─────────────────────────────────────────────────────────
// "Disk full" without a small file system: RLIMIT_FSIZE stops every file this process writes at
// `bytes` (a write past it fails with EFBIG; SIGXFSZ is ignored meanwhile). A notice (> 2 KB)
// cannot be committed; a state file (< 1 KB) still can.
class FileSizeLimit {
 public:
  explicit FileSizeLimit(rlim_t bytes) {
    EXPECT_EQ(::getrlimit(RLIMIT_FSIZE, &saved_), 0);
    old_handler_ = std::signal(SIGXFSZ, SIG_IGN);
    rlimit limit = saved_;
    limit.rlim_cur = bytes;
    EXPECT_EQ(::setrlimit(RLIMIT_FSIZE, &limit), 0);
  }
  ~FileSizeLimit() {
    lift();
    std::signal(SIGXFSZ, old_handler_);
  }
  FileSizeLimit(const FileSizeLimit&) = delete;
  FileSizeLimit& operator=(const FileSizeLimit&) = delete;
  void lift() { EXPECT_EQ(::setrlimit(RLIMIT_FSIZE, &saved_), 0); }

 private:
  rlimit saved_{};
  void (*old_handler_)(int) = SIG_DFL;
};

struct OwedNoticeRow {
  const char* name;
  std::string outcome;               // for b@final.test
  std::uint8_t notify;
  std::chrono::milliseconds max_lifetime;
  std::chrono::milliseconds decided;  // the attempt that makes the recipient final
  RecipientStatus status;             // … as what
  int deliveries;                     // attempts to final.test in all
};
void PrintTo(const OwedNoticeRow& row, std::ostream* os) { *os << row.name; }

class QueueOwedNoticeTest : public QueueManagerTest, public ::testing::WithParamInterface<OwedNoticeRow> {};

TEST_P(QueueOwedNoticeTest, TheOriginalStaysUntilTheNoticeIsQueued) {
  const OwedNoticeRow& row = GetParam();
  outcomes_["final.test"] = row.outcome;
  cfg_.queue.max_lifetime = row.max_lifetime;
  auto q = manager();
  auto m = message("a@org.test", {"b@final.test"}, row.notify);
  const QueueId id = m.envelope.id;
  FileSizeLimit disk_full(1024);
  q->enqueue(std::move(m));
  clock_->run_for(row.decided);
  EXPECT_EQ(q->counters().notices, 0u) << "the notice cannot have been queued";
  EXPECT_EQ(q->size(), 1u) << "the original is kept";
  auto on_disk = Spool::load(spool_->directory(), id);
  ASSERT_TRUE(on_disk) << "the original is kept on disk";
  EXPECT_EQ(on_disk->state.recipients.at(0).status, row.status) << "final, not pending again";
  EXPECT_TRUE(on_disk->state.recipients.at(0).notice_owed) << "the owed notice is saved";
  // Still no space: tried again at the backoff's pace (0, 100, 300, 700 ms), never in a loop,
  // the recipient never again.
  clock_->run_for(1000ms - row.decided);
  EXPECT_EQ(q->counters().attempts, 4u);
  EXPECT_EQ(q->counters().notices, 0u);
  EXPECT_EQ(calls_to("final.test"), row.deliveries);
  disk_full.lift();
  ASSERT_TRUE(run_until([&] { return q->size() == 0; }));
  EXPECT_EQ(times_of("org.test"), Times{1100ms}) << "queued at the next attempt once there is space";
  EXPECT_EQ(q->counters().notices, 1u);
  EXPECT_EQ(calls_to("final.test"), row.deliveries);
  EXPECT_TRUE(Spool::scan(spool_->directory()).empty()) << "the original is removed once the notice is queued";
}

INSTANTIATE_TEST_SUITE_P(
    Table, QueueOwedNoticeTest,
    ::testing::Values(OwedNoticeRow{"FailureNoticeAfterAHardBounce", "bounced", notify_unset, 5s, 0ms, RecipientStatus::bounced, 1},
                      OwedNoticeRow{"FailureNoticeAtTheLifetime", "deferred", notify_unset, 100ms, 100ms, RecipientStatus::bounced, 2},
                      OwedNoticeRow{"SuccessNotice", "sent", notify_success, 5s, 0ms, RecipientStatus::sent, 1}),
    [](const ::testing::TestParamInfo<OwedNoticeRow>& p) { return std::string(p.param.name); });

TEST_F(QueueManagerTest, AnOwedNoticeIsQueuedAfterARestart) {
  outcomes_["fail.test"] = "bounced";
  auto m = message("a@org.test", {"b@fail.test"});
  const QueueId id = m.envelope.id;
  {
    auto q = manager();
    FileSizeLimit disk_full(1024);
    q->enqueue(std::move(m));
    clock_->run_for(0ms);
    EXPECT_EQ(q->counters().notices, 0u);
    EXPECT_EQ(q->size(), 1u);
  }  // the daemon stops; space returns
  std::vector<std::string> warnings;
  auto recovered = spool_->recover(&warnings);
  EXPECT_TRUE(warnings.empty()) << warnings.front();
  ASSERT_EQ(recovered.size(), 1u);
  EXPECT_EQ(recovered[0].envelope.id, id);
  EXPECT_TRUE(recovered[0].state.recipients.at(0).notice_owed);
  auto q = manager();
  q->load(std::move(recovered));
  ASSERT_TRUE(run_until([&] { return q->size() == 0; }));
  EXPECT_EQ(times_of("org.test"), Times{100ms}) << "at the saved next attempt";
  EXPECT_EQ(calls_to("fail.test"), 1) << "the bounced recipient is not tried again";
  EXPECT_EQ(q->counters().notices, 1u);
  EXPECT_TRUE(Spool::scan(spool_->directory()).empty());
}

TEST_F(QueueManagerTest, StateFilesWithoutTheOwedNoticeFieldStillLoad) {
  // State files written before notice_owed existed: read as "nothing owed".
  auto m = message("a@org.test", {"b@ok.test"});
  const auto path = spool_->directory() / "state" / m.envelope.id.str();
  {
    std::ofstream out(path, std::ios::binary);
    out << R"({"version":1,"recipients":[{"status":"pending","dsn":"4.7.5","reason":"r","remote_mta":"",)"
        << R"("diagnostic":"","last_attempt":5,"delay_notified":true}],"attempts":2,"next_attempt":0,"hold":false,"forced_expire":false})";
  }
  std::vector<std::string> warnings;
  auto loaded = Spool::load(spool_->directory(), m.envelope.id);
  ASSERT_TRUE(loaded);
  EXPECT_EQ(loaded->state.attempts, 2u) << "the file was read, not replaced by the initial state";
  EXPECT_TRUE(loaded->state.recipients.at(0).delay_notified);
  EXPECT_FALSE(loaded->state.recipients.at(0).notice_owed);
}

// ── Queue ids after a wall-clock step ─────────────────────────────────────────────────────

// `id` + `n` µs, as an id.
QueueId id_plus(const QueueId& id, std::uint64_t n) {
  std::uint64_t v = (std::stoull(id.str(), nullptr, 16) + n) & ((std::uint64_t{1} << 48) - 1);
  static constexpr char digits[] = "0123456789ABCDEF";
  std::string text(12, '0');
  for (int i = 11; i >= 0; --i, v >>= 4) text[static_cast<std::size_t>(i)] = digits[v & 0xf];
  return *QueueId::parse(text);
}

TEST_F(QueueManagerTest, ANoticeWhoseQueueIdIsTakenGetsAFreshOne) {
  outcomes_["fail.test"] = "bounced";
  auto q = manager();
  auto m = message("a@org.test", {"b@fail.test"});
  clock_->step_wall(-1h);
  // Files under the next ids this process issues, which it did not load (a run whose clock
  // was ahead): the notice's commit meets them (the spool refuses to replace a file: EEXIST).
  const QueueId probe = QueueId::next(clock_->wall());
  std::vector<std::filesystem::path> squatters;
  for (std::uint64_t k = 1; k <= 4; ++k) {
    squatters.push_back(spool_->directory() / "msg" / id_plus(probe, k).str());
    std::ofstream(squatters.back(), std::ios::binary) << "somebody else's message";
  }
  q->enqueue(std::move(m));
  ASSERT_TRUE(run_until([&] { return q->size() == 0 && calls_to("org.test") == 1; }));
  EXPECT_EQ(times_of("org.test"), Times{0ms}) << "queued under a fresh id in the same attempt, not one attempt later";
  EXPECT_EQ(q->counters().notices, 1u);
  for (const auto& path : squatters) {
    std::ifstream in(path, std::ios::binary);
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    EXPECT_EQ(text, "somebody else's message") << path << " was replaced";
  }
}

TEST_F(QueueManagerTest, LoadedQueueIdsAreNotIssuedAgainAfterAClockStepBack) {
  // Before the restart the clock was an hour ahead: the queued message's id is an hour "later"
  // than the ids of now.
  const QueueId probe = QueueId::next(clock_->wall());
  const QueueId queued = id_plus(probe, std::uint64_t{3600} * 1000 * 1000);
  auto m = message("a@org.test", {"b@ok.test"}, notify_unset, std::nullopt, queued);
  ASSERT_EQ(m.envelope.id, queued);
  auto q = manager();
  std::vector<QueuedMessage> ms{m};
  q->load(std::move(ms));
  EXPECT_GT(QueueId::next(clock_->wall()), queued) << "a notice's id";
  EXPECT_GT(spool_->begin()->id(), queued) << "an inbound message's id";
}

}  // namespace
}  // namespace danerelay::relay
