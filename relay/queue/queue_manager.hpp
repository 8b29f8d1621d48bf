// relay/queue/queue_manager.hpp — the scheduler between the spool and delivery (Postfix's qmgr): it
// keeps every queued message in memory, starts the first attempt at once, retries deferred
// recipients with exponential backoff, bounces at the end of the queue lifetime, sends delay
// notices, and carries out queue operations for the control socket.
//
// One attempt of one message:
//   1. the message becomes active ("QID: from=<…>, size=N, nrcpt=M (queue active)");
//   2. its pending recipients are grouped by domain; per domain, in turn: a concurrency permit
//      (delivery.max_concurrency[_per_destination]), the validating DNS lookups, then
//      relay::deliver() through the SMTP connector (with the connection cache);
//   3. permanent failures, and everything still pending once the lifetime is over, become
//      bounced; a failure notice goes to the sender where NOTIFY asks for one (never to the null
//      sender); delay notices after queue.delay_warning; success notices for NOTIFY=SUCCESS;
//   4. notices are committed to the spool BEFORE the state that records them, so a crash in
//      between can only duplicate a notice, never lose one; then the new state is saved (write-new
//      + rename) or, when nothing is pending and no notice is owed, the message is removed
//      ("QID: removed"). A failure or success notice that cannot be committed (disk full, …) stays
//      owed (RecipientState::notice_owed, saved with the state): the message is kept and the
//      notice queued at the next attempt, after a restart too; its recipients are not tried again.
//
// Lanes: the due messages are kept per destination (the domain of the message's first pending
// recipient), in one lane each, ordered by due time. Attempts in flight are capped at
// 2 × delivery.max_concurrency_per_destination per lane and 2 × delivery.max_concurrency in all:
// a destination that comes back after an outage with 100,000 messages due starts a lane's worth
// of attempts, not 100,000 coroutines queued on the concurrency limiter (a stampede; issue 12),
// and the lanes that have a due message take turns round robin, so a backlog does not hold back
// the mail for another destination that arrived after it. Twice the limiter's limits, so that an
// attempt waits for a permit while another one is still in DNS, notices or its state save; the
// limiter (relay/delivery/concurrency.hpp) still bounds the sessions themselves.
//
// Timing: one alarm (QueueClock, relay/core/queue_clock.hpp; in production a steady timer) for
// the earliest due head of a lane with room; none while every slot is taken (the end of an
// attempt starts the next one). An idle queue has no work pending on the event loop at all (no
// polling). The wait after attempt n is retry_delay() (relay/core/backoff.hpp):
// min(max_backoff, min_backoff · 2^(n−1)), cut to what is left of the lifetime, so the bounce
// comes at the configured lifetime rather than one backoff later. Waits run on the monotonic
// clock, so a wall-clock step neither delays nor hurries a retry; the lifetime and
// delay_warning are measured on the wall clock from the arrival (as Postfix does), and the
// next-attempt time saved for a restart is wall time.
//
// Threads: everything runs on the executor given to the constructor (one io_context thread).
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ssl/context.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "config/config.hpp"
#include "dns/resolver.hpp"
#include "relay/delivery/concurrency.hpp"
#include "relay/delivery/connection_cache.hpp"
#include "relay/delivery/delivery.hpp"
#include "relay/queue/dsn.hpp"
#include "relay/control/queue_control.hpp"
#include "relay/core/live_config.hpp"
#include "relay/core/observer.hpp"
#include "relay/core/queue_clock.hpp"
#include "relay/queue/spool.hpp"

namespace spdlog {
class logger;
}

namespace danerelay::relay {

// The queue at one moment, for gauges (relay/metrics): messages by state, and the oldest arrival.
struct QueueSnapshot {
  std::size_t active = 0;    // an attempt is running
  std::size_t deferred = 0;  // waiting for their next attempt
  std::size_t hold = 0;      // held by an operator (`queue hold`)
  std::optional<Clock::time_point> oldest_arrival;  // none: the queue is empty
};

struct QueueCounters {
  std::uint64_t attempts = 0;        // message delivery attempts started
  std::uint64_t sent = 0;            // recipients delivered
  std::uint64_t deferred = 0;        // recipient deferrals
  std::uint64_t bounced = 0;         // recipients bounced (permanent failure or expiry)
  std::uint64_t notices = 0;         // DSNs queued (failure, delay and success notices)
  std::uint64_t removed = 0;         // messages finished and removed
};

class QueueManager final : public QueueControl {
 public:
  // How one destination domain is delivered: DNS + relay::deliver. Replaceable for tests of the
  // scheduler alone; the default (make_delivery_function) is the real thing.
  using DeliverFunction = std::function<boost::asio::awaitable<std::vector<RecipientResult>>(Envelope, std::string domain,
                                                                                             int attempt)>;

  // `spool` and what `deliver` refers to must outlive the manager. The queue settings are read
  // from `config` at each use, so a reload (LiveConfig::set) applies to the next decision.
  // `clock`: null → system_queue_clock(executor); tests pass virtual time
  // (tests/relay/fake_queue_clock.hpp).
  QueueManager(boost::asio::any_io_executor executor, std::shared_ptr<const LiveConfig> config, Spool& spool,
               DeliverFunction deliver, std::shared_ptr<QueueClock> clock = nullptr);
  // A configuration the caller keeps alive (read at each use, as above).
  QueueManager(boost::asio::any_io_executor executor, const config::Config& config, Spool& spool, DeliverFunction deliver,
               std::shared_ptr<QueueClock> clock = nullptr);
  ~QueueManager() override;
  QueueManager(const QueueManager&) = delete;
  QueueManager& operator=(const QueueManager&) = delete;

  // Messages recovered from the spool at start; scheduled by their saved next-attempt time. New
  // queue ids (inbound mail, notices) stay above theirs (QueueId::not_below).
  void load(std::vector<QueuedMessage> messages);
  // A message the SMTP server has just committed: its first attempt starts at once.
  void enqueue(QueuedMessage message);

  // Stops starting attempts; completes when the active ones have ended or `grace` passed (real
  // time, not the injected clock: it bounds how long the process takes to stop).
  [[nodiscard]] boost::asio::awaitable<void> shutdown(std::chrono::milliseconds grace);

  [[nodiscard]] std::size_t size() const noexcept { return messages_.size(); }
  [[nodiscard]] std::size_t active() const noexcept { return active_; }
  [[nodiscard]] const QueueCounters& counters() const noexcept { return counters_; }
  [[nodiscard]] QueueSnapshot snapshot() const;

  // Called with every recipient result (relay/core/observer.hpp), in the order added. Add before
  // the first attempt.
  void add_result_observer(ResultObserver observer);

  // QueueControl
  [[nodiscard]] std::vector<QueueEntry> list() override;
  [[nodiscard]] std::optional<std::string> show(const QueueId& id) override;
  [[nodiscard]] boost::asio::awaitable<std::size_t> flush(std::optional<QueueId> id) override;
  [[nodiscard]] boost::asio::awaitable<std::size_t> hold(QueueId id) override;
  [[nodiscard]] boost::asio::awaitable<std::size_t> release(QueueId id) override;
  [[nodiscard]] boost::asio::awaitable<std::size_t> remove(QueueId id) override;
  [[nodiscard]] boost::asio::awaitable<std::size_t> expire(QueueId id) override;

 private:
  struct Lane;
  struct Entry;
  // Next attempt (monotonic ms) → message. The entry, not its id: a map node stays put, and a
  // queue id is 32 bytes more per queued message.
  using DueList = std::multimap<std::int64_t, Entry*>;

  struct Entry {
    QueuedMessage message;
    bool active = false;
    bool removed = false;        // deleted by an operator while active: drop when the attempt ends
    bool flush_requested = false;  // flushed while active: run again right after
    std::int64_t due = 0;          // next attempt, monotonic ms (kept while held, for release)
    // The lane it is scheduled in (then `slot` is its place in lane->due) or, while active, the
    // lane whose slot the attempt takes; null otherwise. Never both: an active message is not
    // scheduled.
    Lane* lane = nullptr;
    DueList::iterator slot{};
  };

  // One destination's due messages and attempts in flight. `where` says which of the two
  // collections below holds it: ready_ (its head is due and it has room; served round robin),
  // pending_ (its head is due later and it has room; the alarm waits for the earliest), or
  // neither (nothing scheduled, or every slot taken).
  struct Lane {
    std::string key;
    DueList due;
    std::size_t active = 0;
    enum class Where { none, ready, pending } where = Where::none;
    std::list<Lane*>::iterator ready_at;
    std::int64_t pending_at = 0;  // its key in pending_
  };

  void schedule(const QueueId& id, std::int64_t due_ms);
  void unschedule(const QueueId& id);
  void unschedule(Entry& entry);
  // Moves `lane` to where its head and slots say, keeping its round-robin place while it stays
  // ready; drops it when it is empty and idle.
  void place(Lane& lane, std::int64_t now_ms);
  void begin_active(Entry& entry);  // the attempt takes a slot of the lane it was scheduled in
  void end_active(Entry& entry);    // and gives it back
  void refresh_caps();
  void arm_timer();
  void run_due();
  [[nodiscard]] boost::asio::awaitable<void> attempt(QueueId id);
  // Commits a notice of `kind` about `recipients` of message `id`; false when it could not be.
  [[nodiscard]] boost::asio::awaitable<bool> queue_notice(QueueId id, DsnKind kind, std::vector<std::size_t> recipients);
  // The wait after the attempt that just ended (retry_delay: backoff, cut to the lifetime left).
  [[nodiscard]] std::chrono::milliseconds retry_wait(const Entry& entry, std::int64_t wall_now_ms) const;
  [[nodiscard]] std::int64_t wall_ms() const;  // clock_->wall(), unix milliseconds
  [[nodiscard]] std::int64_t mono_ms() const;  // clock_->monotonic(), milliseconds of its epoch

  boost::asio::any_io_executor executor_;
  std::shared_ptr<const LiveConfig> config_;
  Spool& spool_;
  DeliverFunction deliver_;
  std::shared_ptr<spdlog::logger> log_;   // "qmgr"
  std::shared_ptr<spdlog::logger> bounce_log_;  // "bounce"
  std::map<QueueId, Entry> messages_;
  std::unordered_map<std::string, Lane> lanes_;  // by destination; node-based: Lane* stay valid
  std::list<Lane*> ready_;                       // round robin: the front goes next
  std::set<std::pair<std::int64_t, Lane*>> pending_;
  std::size_t lane_cap_ = 0;    // attempts in flight per lane (refresh_caps)
  std::size_t total_cap_ = 0;   // and in all
  std::shared_ptr<QueueClock> clock_;
  std::unique_ptr<QueueClock::Alarm> alarm_;   // the earliest due message
  std::int64_t timer_due_ = INT64_MAX;
  std::size_t active_ = 0;
  bool stopping_ = false;
  QueueCounters counters_;
  std::vector<ResultObserver> observers_;
  void notify(const Envelope& envelope, const RecipientResult& result) const;
};

// The production clock: steady_clock, system_clock, and an Asio steady_timer on `executor` for
// the alarm (an alarm that is not set keeps no work on the event loop).
[[nodiscard]] std::shared_ptr<QueueClock> system_queue_clock(boost::asio::any_io_executor executor);

// The production DeliverFunction: route_for (policy, next hop), resolve_destination through the
// validating resolver, a concurrency permit per domain, relay::deliver with the SMTP connector.
// Each attempt takes the configuration snapshot in force when it starts and keeps it to its end.
// Every reference must outlive the function. `smtp_log` receives the delivery and TLS lines.
[[nodiscard]] QueueManager::DeliverFunction make_delivery_function(boost::asio::any_io_executor executor,
                                                                   std::shared_ptr<const LiveConfig> config,
                                                                   dns::Resolver& resolver, ConcurrencyLimiter& limiter,
                                                                   Connector connector, LogSink smtp_log);
// A configuration the caller keeps alive (read at each use, as above).
[[nodiscard]] QueueManager::DeliverFunction make_delivery_function(boost::asio::any_io_executor executor,
                                                                   const config::Config& config, dns::Resolver& resolver,
                                                                   ConcurrencyLimiter& limiter, Connector connector,
                                                                   LogSink smtp_log);

// The message's header section as stored (CRLF, up to and without the empty line), read from its
// spool file, at most `limit` bytes: what notices return for RET=HDRS. (`queue show` uses
// queue_control.hpp's read_headers, which gives LF line ends for a terminal.)
[[nodiscard]] std::string header_section(const Envelope& envelope, std::size_t limit = 256 * 1024);

}  // namespace danerelay::relay
