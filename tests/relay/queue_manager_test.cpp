// tests/relay/queue_manager_test.cpp — the scheduler alone: a real spool in a temporary
// directory, a scripted DeliverFunction per destination domain (the end-to-end tests in
// relay_e2e_test.cpp run the real delivery path). Short configured backoffs; assertions are on
// order and lower bounds, never on how fast the machine is.
#include "relay/queue/queue_manager.hpp"

#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <functional>
#include <map>
#include <memory>
#include <optional>

#include "tests/support/temp_dir.hpp"

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"  // false positive on coroutine frames (g++ 12)
#endif

namespace danerelay::relay {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

struct Call {
  std::string domain;
  std::string sender;
  std::vector<std::string> recipients;
  int attempt = 0;
  std::chrono::steady_clock::time_point at;
};

class QueueManagerTest : public ::testing::Test {
 protected:
  QueueManagerTest() : dir_("danerelay-qmgr") {
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
      Call c{domain, env.sender, {}, attempt, std::chrono::steady_clock::now()};
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

  QueuedMessage message(const std::string& sender, std::vector<std::string> to, std::uint8_t notify = notify_unset) {
    Envelope env;
    env.sender = sender;
    for (auto& t : to) env.recipients.push_back(Recipient{t, {}, notify});
    std::string text = "From: <" + sender + ">\r\nSubject: queue test\r\nMessage-ID: <t@org.test>\r\n\r\nbody\r\n";
    SpoolResult r;
    asio::co_spawn(io_, [&]() -> asio::awaitable<void> { r = co_await spool_->commit(std::move(text), env); },
                   asio::detached);
    io_.run();
    io_.restart();
    EXPECT_TRUE(r.ok()) << r.error;
    QueuedMessage m{env, {}};
    m.state.recipients.resize(env.recipients.size());
    return m;
  }

  // Runs the loop until `done` or `limit`; true when done.
  bool run_until(const std::function<bool()>& done, std::chrono::milliseconds limit = 10s) {
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

  // The result of `f`, run on the loop (which keeps running for 200 ms, so that work the
  // operation starts, such as a flush's attempt, happens too). An operation that does not
  // complete within `limit` fails the test: a default value must never pass for a real result.
  template <class T>
  T await(std::function<asio::awaitable<T>()> f, std::chrono::milliseconds limit = 10s) {
    // Shared: an operation that never completes still refers to it after this returns.
    auto out = std::make_shared<std::optional<T>>();
    asio::co_spawn(io_, store<T>(std::move(f), out), asio::detached);
    run_until([&] { return false; }, 200ms);
    if (!out->has_value() && !run_until([&] { return out->has_value(); }, limit)) {
      ADD_FAILURE() << "await: the operation did not complete within " << limit.count() << " ms";
      return T{};
    }
    return **out;
  }

  // Queues a message to defer.test that fails once and then waits (60 s backoff); its id.
  QueueId deferred_once(QueueManager& q) {
    outcomes_["defer.test"] = "deferred";
    cfg_.queue.min_backoff = 60s;
    cfg_.queue.max_backoff = 60s;
    auto m = message("a@org.test", {"b@defer.test"});
    const QueueId id = m.envelope.id;
    q.enqueue(std::move(m));
    EXPECT_TRUE(run_until([&] { return calls_to("defer.test") == 1 && q.active() == 0; }));
    return id;
  }

  int calls_to(const std::string& domain) const {
    int n = 0;
    for (const auto& c : calls_) n += c.domain == domain ? 1 : 0;
    return n;
  }

  testsupport::TempDir dir_;
  asio::io_context io_;
  config::Config cfg_;
  std::unique_ptr<Spool> spool_;
  std::map<std::string, std::string> outcomes_;
  std::vector<Call> calls_;
};

TEST_F(QueueManagerTest, FirstAttemptIsImmediateAndADeliveredMessageIsRemoved) {
  QueueManager q(io_.get_executor(), cfg_, *spool_, script());
  q.enqueue(message("a@org.test", {"b@ok.test"}));
  ASSERT_TRUE(run_until([&] { return q.size() == 0; }));
  EXPECT_EQ(calls_to("ok.test"), 1);
  EXPECT_EQ(q.counters().sent, 1u);
  EXPECT_TRUE(Spool::scan(spool_->directory()).empty());
}

TEST_F(QueueManagerTest, AnIdleQueueLeavesNoWorkOnTheEventLoop) {
  // No busy loop: once the queue is empty, io_context::run() returns by itself.
  QueueManager q(io_.get_executor(), cfg_, *spool_, script());
  q.enqueue(message("a@org.test", {"b@ok.test"}));
  const auto started = std::chrono::steady_clock::now();
  io_.run_for(30s);
  EXPECT_LT(std::chrono::steady_clock::now() - started, 30s) << "the loop kept work pending while idle";
  EXPECT_EQ(q.size(), 0u);
}

TEST_F(QueueManagerTest, RecipientsAreGroupedByDomain) {
  QueueManager q(io_.get_executor(), cfg_, *spool_, script());
  q.enqueue(message("a@org.test", {"x@ok.test", "y@other.test", "z@ok.test"}));
  ASSERT_TRUE(run_until([&] { return q.size() == 0; }));
  ASSERT_EQ(calls_.size(), 2u);
  EXPECT_EQ(calls_[0].domain, "ok.test");
  EXPECT_EQ(calls_[0].recipients, (std::vector<std::string>{"x@ok.test", "z@ok.test"}));
  EXPECT_EQ(calls_[1].recipients, (std::vector<std::string>{"y@other.test"}));
}

TEST_F(QueueManagerTest, HardBounceQueuesAFailureNoticeToTheSenderThroughTheSameQueue) {
  outcomes_["fail.test"] = "bounced";
  QueueManager q(io_.get_executor(), cfg_, *spool_, script());
  q.enqueue(message("a@org.test", {"b@fail.test"}));
  ASSERT_TRUE(run_until([&] { return q.size() == 0 && calls_to("org.test") == 1; }));
  EXPECT_EQ(q.counters().notices, 1u);
  // The notice went out with the null sender to the original sender (RFC 5321 §6.1).
  const auto& notice = calls_.back();
  EXPECT_EQ(notice.sender, "");
  EXPECT_EQ(notice.recipients, std::vector<std::string>{"a@org.test"});
}

TEST_F(QueueManagerTest, NullSenderIsNeverBounced) {
  outcomes_["fail.test"] = "bounced";
  QueueManager q(io_.get_executor(), cfg_, *spool_, script());
  q.enqueue(message("", {"b@fail.test"}));
  ASSERT_TRUE(run_until([&] { return q.size() == 0; }));
  EXPECT_EQ(q.counters().notices, 0u);
  EXPECT_EQ(calls_.size(), 1u);
}

TEST_F(QueueManagerTest, NotifyNeverSuppressesTheBounce) {
  outcomes_["fail.test"] = "bounced";
  QueueManager q(io_.get_executor(), cfg_, *spool_, script());
  q.enqueue(message("a@org.test", {"b@fail.test"}, notify_never));
  ASSERT_TRUE(run_until([&] { return q.size() == 0; }));
  EXPECT_EQ(q.counters().notices, 0u);
}

TEST_F(QueueManagerTest, DeferredMailIsRetriedWithGrowingBackoffAndBouncesAtTheLifetime) {
  outcomes_["defer.test"] = "deferred";
  cfg_.queue.max_lifetime = 1500ms;
  QueueManager q(io_.get_executor(), cfg_, *spool_, script());
  q.enqueue(message("a@org.test", {"b@defer.test"}));
  ASSERT_TRUE(run_until([&] { return q.size() == 0 && calls_to("org.test") == 1; }));
  // Attempts at about 0, 100, 300, 700, 1100 ms and a last one at the lifetime (1500 ms).
  std::vector<Call> tries;
  for (const auto& c : calls_) {
    if (c.domain == "defer.test") tries.push_back(c);
  }
  ASSERT_GE(tries.size(), 4u);
  EXPECT_LE(tries.size(), 7u);
  for (std::size_t i = 1; i < tries.size(); ++i) {
    EXPECT_EQ(tries[i].attempt, static_cast<int>(i) + 1);
    EXPECT_GE(tries[i].at - tries[i - 1].at, 95ms) << "retry " << i << " came before min_backoff";
  }
  EXPECT_GE(tries[2].at - tries[1].at, 195ms) << "backoff doubles";
  EXPECT_EQ(q.counters().bounced, 1u);
  EXPECT_EQ(q.counters().notices, 1u);
  EXPECT_GE(tries.back().at - tries.front().at, 1300ms) << "not bounced before the lifetime";
}

TEST_F(QueueManagerTest, DelayNoticeIsSentOnceAfterDelayWarning) {
  outcomes_["defer.test"] = "deferred";
  cfg_.queue.delay_warning = 250ms;
  cfg_.queue.max_lifetime = 60s;
  QueueManager q(io_.get_executor(), cfg_, *spool_, script());
  q.enqueue(message("a@org.test", {"b@defer.test"}));
  ASSERT_TRUE(run_until([&] { return calls_to("defer.test") >= 5; }));
  EXPECT_EQ(q.counters().notices, 1u) << "one delay notice, not one per attempt";
  EXPECT_EQ(calls_to("org.test"), 1);
  auto listing = q.list();
  ASSERT_EQ(listing.size(), 1u);
  EXPECT_EQ(listing[0].queue_name, "deferred");
  ASSERT_EQ(listing[0].recipients.size(), 1u);
  EXPECT_EQ(listing[0].recipients[0].delay_reason, "Server certificate not verified");
}

TEST_F(QueueManagerTest, AwaitFailsTheTestWhenTheOperationNeverCompletes) {
  // The helper itself: an operation that never completes is a failure, not a default value.
  auto never = [this]() -> asio::awaitable<std::size_t> {
    asio::steady_timer forever(io_, std::chrono::hours(1));
    co_await forever.async_wait(asio::use_awaitable);
    co_return 1;
  };
  EXPECT_NONFATAL_FAILURE(static_cast<void>(await<std::size_t>(never, 100ms)), "did not complete");
}

TEST_F(QueueManagerTest, HoldStopsDeliveryUntilReleaseAndFlushRunsItNow) {
  QueueManager q(io_.get_executor(), cfg_, *spool_, script());
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
}

TEST_F(QueueManagerTest, DeleteRemovesWithoutABounce) {
  QueueManager q(io_.get_executor(), cfg_, *spool_, script());
  const QueueId id = deferred_once(q);
  EXPECT_EQ(await<std::size_t>([&] { return q.remove(id); }), 1u);
  EXPECT_EQ(q.size(), 0u);
  EXPECT_EQ(q.counters().notices, 0u);
  EXPECT_FALSE(Spool::load(spool_->directory(), id));
  EXPECT_EQ(await<std::size_t>([&] { return q.remove(id); }), 0u);
}

TEST_F(QueueManagerTest, ExpireBouncesAtOnce) {
  QueueManager q(io_.get_executor(), cfg_, *spool_, script());
  const QueueId id = deferred_once(q);
  EXPECT_EQ(await<std::size_t>([&] { return q.expire(id); }), 1u);
  ASSERT_TRUE(run_until([&] { return q.size() == 0 && calls_to("org.test") == 1; }));
  EXPECT_EQ(calls_to("defer.test"), 1) << "an expired message is not tried again";
  EXPECT_EQ(q.counters().notices, 1u);
}

TEST_F(QueueManagerTest, RecoveredMessagesKeepTheirScheduleAndState) {
  outcomes_["defer.test"] = "deferred";
  auto m = message("a@org.test", {"b@defer.test", "c@ok.test"});
  m.state.recipients[1].status = RecipientStatus::sent;  // delivered before the "crash"
  m.state.attempts = 3;
  m.state.next_attempt = std::chrono::duration_cast<std::chrono::milliseconds>(
                             (Clock::now() + std::chrono::hours(1)).time_since_epoch())
                             .count();
  QueueManager q(io_.get_executor(), cfg_, *spool_, script());
  std::vector<QueuedMessage> ms{m};
  q.load(std::move(ms));
  run_until([] { return false; }, 200ms);
  EXPECT_TRUE(calls_.empty()) << "not due yet";
  outcomes_["defer.test"] = "sent";
  EXPECT_EQ(await<std::size_t>([&] { return q.flush(std::nullopt); }), 1u);
  ASSERT_TRUE(run_until([&] { return q.size() == 0; }));
  ASSERT_EQ(calls_.size(), 1u);
  EXPECT_EQ(calls_[0].recipients, std::vector<std::string>{"b@defer.test"}) << "the delivered recipient is not sent twice";
  EXPECT_EQ(calls_[0].attempt, 4);
}

}  // namespace
}  // namespace danerelay::relay
