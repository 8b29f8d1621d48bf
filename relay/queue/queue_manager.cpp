// relay/queue/queue_manager.cpp — see queue_manager.hpp for the contract.
#include "relay/queue/queue_manager.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <random>
#include <utility>

#include "dns/destination.hpp"
#include "relay/core/backoff.hpp"
#include "relay/delivery/delivery_log.hpp"
#include "relay/queue/dsn.hpp"
#include "relay/core/logging.hpp"
#include "relay/delivery/outcome.hpp"
#include "relay/delivery/routing.hpp"
#include "relay/queue/spool_format.hpp"

// g++ 12 reports a false -Wmismatched-new-delete on coroutine frames (see smtp/client_session.cpp).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

namespace danerelay::relay {

namespace asio = boost::asio;

namespace {

std::int64_t to_ms(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

// The domain part of an address ("" when there is none, e.g. "postmaster").
std::string domain_of(const std::string& address) {
  const auto at = address.rfind('@');
  if (at == std::string::npos) return {};
  std::string d = lower(address.substr(at + 1));
  if (!d.empty() && d.back() == '.') d.pop_back();
  return d;
}

// Only the original's header section; a notice never needs more than this for delay and
// success reports, nor for large messages (Postfix bounce_size_limit plays the same part).
constexpr std::uint64_t kReturnFullLimit = 100 * 1024;

std::string read_message(const Envelope& envelope, std::uint64_t limit) {
  std::ifstream in(envelope.body, std::ios::binary);
  if (!in) return {};
  in.seekg(static_cast<std::streamoff>(envelope.body_offset));
  std::string text(static_cast<std::size_t>(std::min(envelope.size, limit)), '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<std::size_t>(in.gcount()));
  return text;
}

// How often a notice takes a fresh queue id after a collision before it gives up (until the next
// attempt): a clock step makes one collision unlikely and a run of them next to impossible.
constexpr int kCollisionRetries = 16;

// The notices a recipient's final status owes (delay notices are owed while it is pending).
constexpr DsnKind kOwedKinds[] = {DsnKind::failure, DsnKind::success};

class SystemQueueClock final : public QueueClock {
 public:
  explicit SystemQueueClock(asio::any_io_executor executor) : executor_(std::move(executor)) {}
  [[nodiscard]] Monotonic::time_point monotonic() const override { return Monotonic::now(); }
  [[nodiscard]] Wall::time_point wall() const override { return Wall::now(); }
  [[nodiscard]] std::unique_ptr<Alarm> make_alarm() override { return std::make_unique<TimerAlarm>(executor_); }

 private:
  class TimerAlarm final : public Alarm {
   public:
    explicit TimerAlarm(asio::any_io_executor executor) : timer_(std::move(executor)) {}
    ~TimerAlarm() override { ++*generation_; }  // ~steady_timer cancels the wait
    TimerAlarm(const TimerAlarm&) = delete;
    TimerAlarm& operator=(const TimerAlarm&) = delete;
    void set(Monotonic::time_point at, std::function<void()> fire) override {
      const std::uint64_t mine = ++*generation_;
      timer_.expires_at(at);  // cancels the pending wait
      // The handler holds only the shared generation: it may run after this alarm is gone, or
      // after a later set() (a completion already queued is not cancelled), and then does nothing.
      timer_.async_wait([generation = generation_, mine, fire = std::move(fire)](boost::system::error_code ec) {
        if (ec || *generation != mine) return;
        fire();
      });
    }
    void cancel() override {
      ++*generation_;
      timer_.cancel();
    }

   private:
    asio::steady_timer timer_;
    std::shared_ptr<std::uint64_t> generation_ = std::make_shared<std::uint64_t>(0);
  };

  asio::any_io_executor executor_;
};

}  // namespace

std::shared_ptr<QueueClock> system_queue_clock(asio::any_io_executor executor) {
  return std::make_shared<SystemQueueClock>(std::move(executor));
}

std::string header_section(const Envelope& envelope, std::size_t limit) {
  std::string text = read_message(envelope, limit);
  if (text.rfind("\r\n", 0) == 0) return {};
  if (const auto end = text.find("\r\n\r\n"); end != std::string::npos) text.resize(end + 2);
  return text;
}

QueueManager::QueueManager(asio::any_io_executor executor, const config::Config& config, Spool& spool, DeliverFunction deliver,
                           std::shared_ptr<QueueClock> clock)
    : QueueManager(std::move(executor), LiveConfig::borrowed(config), spool, std::move(deliver), std::move(clock)) {}

QueueManager::QueueManager(asio::any_io_executor executor, std::shared_ptr<const LiveConfig> config, Spool& spool,
                           DeliverFunction deliver, std::shared_ptr<QueueClock> clock)
    : executor_(std::move(executor)),
      config_(std::move(config)),
      spool_(spool),
      deliver_(std::move(deliver)),
      log_(logger("qmgr")),
      bounce_log_(logger("bounce")),
      clock_(clock ? std::move(clock) : system_queue_clock(executor_)),
      alarm_(clock_->make_alarm()) {
  refresh_caps();
}

QueueManager::~QueueManager() = default;

void QueueManager::load(std::vector<QueuedMessage> messages) {
  for (auto& m : messages) {
    const QueueId id = m.envelope.id;
    // New ids stay above the queued ones, also when the clock stepped back while the daemon was
    // down (ids are arrival microseconds).
    QueueId::not_below(id, clock_->wall());
    // The saved next attempt is wall time (the monotonic clock means nothing across a restart):
    // due after what is left of it now, or at once.
    const std::int64_t due = mono_ms() + std::max<std::int64_t>(0, m.state.next_attempt - wall_ms());
    const bool held = m.state.hold;
    Entry entry{std::move(m)};
    entry.due = due;
    unschedule(id);  // a lane must not keep pointing at the entry replaced below
    messages_.insert_or_assign(id, std::move(entry));
    if (!held) schedule(id, due);
  }
  arm_timer();
}

void QueueManager::enqueue(QueuedMessage message) {
  const QueueId id = message.envelope.id;
  if (message.state.recipients.size() != message.envelope.recipients.size()) message.state = spool_format::initial_state(message.envelope);
  Entry entry{std::move(message)};
  entry.due = mono_ms();
  unschedule(id);  // a lane must not keep pointing at the entry replaced below
  messages_.insert_or_assign(id, std::move(entry));
  schedule(id, mono_ms());
  arm_timer();
}

namespace {

// A message's lane: the domain of its first pending recipient (of its first recipient when none
// is pending: a message that only owes a notice). Mail for several domains takes one lane's slot
// for the whole attempt; the concurrency limiter still counts each domain's sessions.
std::string lane_key(const QueuedMessage& m) {
  for (std::size_t i = 0; i < m.envelope.recipients.size() && i < m.state.recipients.size(); ++i) {
    if (m.state.recipients[i].status == RecipientStatus::pending) return domain_of(m.envelope.recipients[i].address);
  }
  return m.envelope.recipients.empty() ? std::string() : domain_of(m.envelope.recipients.front().address);
}

}  // namespace

void QueueManager::refresh_caps() {
  const auto cfg = config_->get();
  lane_cap_ = std::max<std::size_t>(1, 2 * static_cast<std::size_t>(cfg->delivery.max_concurrency_per_destination));
  total_cap_ = std::max<std::size_t>(1, 2 * static_cast<std::size_t>(cfg->delivery.max_concurrency));
}

void QueueManager::schedule(const QueueId& id, std::int64_t due_ms) {
  auto it = messages_.find(id);
  if (it == messages_.end()) return;
  Entry& e = it->second;
  if (e.active) return;  // it is scheduled again when the attempt ends
  unschedule(e);
  std::string key = lane_key(e.message);
  auto [lane_it, inserted] = lanes_.try_emplace(key);
  Lane& lane = lane_it->second;
  if (inserted) lane.key = std::move(key);
  e.lane = &lane;
  e.slot = lane.due.emplace(due_ms, &e);
  place(lane, mono_ms());
}

void QueueManager::unschedule(const QueueId& id) {
  if (auto it = messages_.find(id); it != messages_.end()) unschedule(it->second);
}

void QueueManager::unschedule(Entry& e) {
  if (e.active || e.lane == nullptr) return;  // an active message's lane is the attempt's slot
  Lane& lane = *e.lane;
  lane.due.erase(e.slot);
  e.lane = nullptr;
  place(lane, mono_ms());
}

void QueueManager::place(Lane& lane, std::int64_t now_ms) {
  using Where = Lane::Where;
  Where want = Where::none;
  if (!lane.due.empty() && lane.active < lane_cap_) want = lane.due.begin()->first <= now_ms ? Where::ready : Where::pending;
  if (lane.where == Where::pending && (want != Where::pending || lane.pending_at != lane.due.begin()->first)) {
    pending_.erase({lane.pending_at, &lane});
    lane.where = Where::none;
  }
  if (lane.where == Where::ready && want != Where::ready) {
    ready_.erase(lane.ready_at);
    lane.where = Where::none;
  }
  if (want == Where::ready && lane.where != Where::ready) {
    lane.ready_at = ready_.insert(ready_.end(), &lane);  // its turn comes after the others'
    lane.where = Where::ready;
  } else if (want == Where::pending && lane.where != Where::pending) {
    lane.pending_at = lane.due.begin()->first;
    pending_.emplace(lane.pending_at, &lane);
    lane.where = Where::pending;
  } else if (want == Where::none && lane.due.empty() && lane.active == 0) {
    const std::string key = lane.key;  // erase() destroys lane.key
    lanes_.erase(key);
  }
}

void QueueManager::begin_active(Entry& e) {
  Lane& lane = *e.lane;  // scheduled: run_due took it from the head of this lane
  lane.due.erase(e.slot);
  e.active = true;
  ++active_;
  ++lane.active;
  place(lane, mono_ms());
}

void QueueManager::end_active(Entry& e) {
  if (!e.active) return;
  e.active = false;
  --active_;
  Lane* lane = std::exchange(e.lane, nullptr);
  if (lane != nullptr) {
    --lane->active;
    place(*lane, mono_ms());
  }
  arm_timer();  // the freed slot starts the next due attempt without waiting for this one's state save
}

void QueueManager::arm_timer() {
  if (stopping_) return;
  std::int64_t first = INT64_MAX;
  if (active_ < total_cap_) {
    if (!ready_.empty()) {
      first = mono_ms();
    } else if (!pending_.empty()) {
      first = pending_.begin()->first;
    }
  }
  if (first == INT64_MAX) {
    if (timer_due_ != INT64_MAX) alarm_->cancel();
    timer_due_ = INT64_MAX;
    return;
  }
  if (first == timer_due_) return;
  timer_due_ = first;
  alarm_->set(QueueClock::Monotonic::time_point(std::chrono::milliseconds(first)), [this, first] {  // replaces the previous wait
    if (timer_due_ != first) return;
    timer_due_ = INT64_MAX;
    run_due();
  });
}

void QueueManager::run_due() {
  refresh_caps();  // a reload applies from here on
  const std::int64_t now = mono_ms();
  while (!pending_.empty() && pending_.begin()->first <= now) {
    Lane& lane = *pending_.begin()->second;
    pending_.erase(pending_.begin());
    lane.where = Lane::Where::none;
    place(lane, now);  // ready now: after the lanes already waiting for their turn
  }
  // Each turn starts one attempt or takes a lane out of ready_, so the loop ends.
  while (!stopping_ && active_ < total_cap_ && !ready_.empty()) {
    Lane& lane = *ready_.front();
    ready_.pop_front();
    lane.where = Lane::Where::none;
    if (lane.active >= lane_cap_ || lane.due.empty() || lane.due.begin()->first > now) {
      place(lane, now);  // not ready (a lowered cap): pending or none
      continue;
    }
    Entry& e = *lane.due.begin()->second;
    const QueueId id = e.message.envelope.id;
    if (e.message.state.hold || e.removed) {
      unschedule(e);
      continue;
    }
    begin_active(e);
    asio::co_spawn(executor_, attempt(id), [this, id](std::exception_ptr ex) {
      if (!ex) return;
      try {
        std::rethrow_exception(ex);
      } catch (const std::exception& what) {
        log_->error("{}: internal error during delivery: {}", id.str(), what.what());
      }
      // The message stays queued; try again after the minimum backoff.
      if (auto it2 = messages_.find(id); it2 != messages_.end()) {
        end_active(it2->second);
        it2->second.due = mono_ms() + config_->get()->queue.min_backoff.count();
        schedule(id, it2->second.due);
        arm_timer();
      }
    });
  }
  arm_timer();
}

void QueueManager::add_result_observer(ResultObserver observer) {
  if (observer) observers_.push_back(std::move(observer));
}

void QueueManager::notify(const Envelope& envelope, const RecipientResult& result) const {
  for (const auto& o : observers_) o(envelope, result);
}

QueueSnapshot QueueManager::snapshot() const {
  QueueSnapshot s;
  for (const auto& [id, e] : messages_) {
    if (e.active) ++s.active;
    else if (e.message.state.hold) ++s.hold;
    else ++s.deferred;
    if (!s.oldest_arrival || e.message.envelope.arrival < *s.oldest_arrival) s.oldest_arrival = e.message.envelope.arrival;
  }
  return s;
}

std::int64_t QueueManager::wall_ms() const { return to_ms(clock_->wall()); }

std::int64_t QueueManager::mono_ms() const {
  return std::chrono::duration_cast<std::chrono::milliseconds>(clock_->monotonic().time_since_epoch()).count();
}

std::chrono::milliseconds QueueManager::retry_wait(const Entry& entry, std::int64_t wall_now_ms) const {
  const auto cfg = config_->get();
  const auto& q = cfg->queue;
  const std::int64_t lifetime_left = to_ms(entry.message.envelope.arrival) + q.max_lifetime.count() - wall_now_ms;
  return retry_delay(entry.message.state.attempts, q.min_backoff, q.max_backoff, std::chrono::milliseconds(lifetime_left));
}

asio::awaitable<void> QueueManager::attempt(QueueId id) {
  auto it = messages_.find(id);
  if (it == messages_.end()) co_return;
  Entry& entry = it->second;  // std::map: stable while this attempt runs (erased only below)
  QueuedMessage& m = entry.message;
  ++counters_.attempts;
  const int attempt_no = static_cast<int>(m.state.attempts) + 1;
  log_->info("{}: from=<{}>, size={}, nrcpt={} (queue active)", id.str(), m.envelope.sender, m.envelope.size,
             m.envelope.recipients.size());

  // Pending recipients by destination domain, in first-appearance order.
  std::vector<std::pair<std::string, std::vector<std::size_t>>> groups;
  std::vector<std::optional<RecipientResult>> results(m.envelope.recipients.size());
  for (std::size_t i = 0; i < m.envelope.recipients.size(); ++i) {
    if (m.state.recipients[i].status != RecipientStatus::pending) continue;
    if (m.state.forced_expire) continue;
    const std::string domain = domain_of(m.envelope.recipients[i].address);
    if (domain.empty()) {
      RecipientResult r;
      r.recipient = m.envelope.recipients[i];
      const Outcome o = outcome_of(Failure::no_domain_part);
      r.status = DeliveryStatus::bounced;
      r.dsn = o.status;
      r.failure = o.failure;
      r.reason = o.text;
      results[i] = std::move(r);
      continue;
    }
    auto g = std::find_if(groups.begin(), groups.end(), [&](const auto& p) { return p.first == domain; });
    if (g == groups.end()) {
      groups.emplace_back(domain, std::vector<std::size_t>{});
      g = std::prev(groups.end());
    }
    g->second.push_back(i);
  }

  for (auto& [domain, indices] : groups) {
    if (entry.removed) break;
    Envelope sub = m.envelope;
    sub.recipients.clear();
    for (std::size_t i : indices) sub.recipients.push_back(m.envelope.recipients[i]);
    std::string d = domain;
    std::vector<RecipientResult> got;
    try {
      got = co_await deliver_(std::move(sub), std::move(d), attempt_no);
    } catch (const std::exception& e) {
      log_->error("{}: delivery to {} failed: {}", id.str(), domain, e.what());
    }
    for (std::size_t k = 0; k < indices.size(); ++k) {
      if (k < got.size()) {
        results[indices[k]] = std::move(got[k]);
      } else {
        RecipientResult r;
        r.recipient = m.envelope.recipients[indices[k]];
        const Outcome o = outcome_of(Failure::internal_error, "no result from the delivery to " + domain);
        r.status = DeliveryStatus::deferred;
        r.dsn = o.status;
        r.failure = o.failure;
        r.reason = o.text;
        results[indices[k]] = std::move(r);
      }
    }
  }

  const std::int64_t now = wall_ms();
  const std::int64_t now_s = now / 1000;
  m.state.attempts += 1;
  std::vector<std::size_t> bounced, sent, pending;
  for (std::size_t i = 0; i < results.size(); ++i) {
    if (!results[i]) continue;
    const RecipientResult& r = *results[i];
    notify(m.envelope, r);
    RecipientState& s = m.state.recipients[i];
    s.dsn = r.dsn;
    s.reason = r.reason;
    s.remote_mta = r.relay_host;
    s.diagnostic = r.reply_code != 0 ? "smtp; " + r.reason : std::string();
    s.last_attempt = now_s;
    switch (r.status) {
      case DeliveryStatus::sent:
        s.status = RecipientStatus::sent;
        sent.push_back(i);
        ++counters_.sent;
        break;
      case DeliveryStatus::bounced:
        s.status = RecipientStatus::bounced;
        bounced.push_back(i);
        ++counters_.bounced;
        break;
      case DeliveryStatus::deferred:
        ++counters_.deferred;
        break;
    }
  }
  for (std::size_t i = 0; i < m.state.recipients.size(); ++i) {
    if (m.state.recipients[i].status == RecipientStatus::pending) pending.push_back(i);
  }

  // The queue lifetime (or `queue expire`): whatever is still pending bounces now.
  const bool expired = now >= to_ms(m.envelope.arrival) + config_->get()->queue.max_lifetime.count() || m.state.forced_expire;
  if (expired && !pending.empty() && !entry.removed) {
    log_->info("{}: from=<{}>, status=expired, returned to sender", id.str(), m.envelope.sender);
    for (std::size_t i : pending) {
      RecipientState& s = m.state.recipients[i];
      s.status = RecipientStatus::bounced;
      // Postfix: an expired recipient keeps the status and reason of its last attempt.
      const Outcome o = outcome_of(m.state.forced_expire ? Failure::expired_by_admin : Failure::expired);
      if (s.dsn.empty()) s.dsn = o.status;
      if (s.reason.empty()) s.reason = o.text;
      bounced.push_back(i);
      ++counters_.bounced;
      if (!observers_.empty()) {
        RecipientResult r;
        r.recipient = m.envelope.recipients[i];
        r.status = DeliveryStatus::bounced;
        r.dsn = s.dsn;
        r.failure = o.failure;
        r.reason = s.reason;
        r.attempt = static_cast<int>(m.state.attempts);
        notify(m.envelope, r);
      }
    }
    pending.clear();
  }

  if (!entry.removed) {
    // Notices first, then the state that records them (a crash in between duplicates a notice
    // at worst; the reverse order could lose one). A failure or success notice is owed from the
    // attempt that decides it until it is committed: one that cannot be queued now stays owed
    // (saved with the state) and is queued at the next attempt, the original kept until then.
    for (std::size_t i : dsn_recipients(DsnKind::failure, m.envelope, m.state, bounced)) m.state.recipients[i].notice_owed = true;
    for (std::size_t i : dsn_recipients(DsnKind::success, m.envelope, m.state, sent)) m.state.recipients[i].notice_owed = true;
    for (const DsnKind kind : kOwedKinds) {
      const RecipientStatus final_status = kind == DsnKind::failure ? RecipientStatus::bounced : RecipientStatus::sent;
      std::vector<std::size_t> owed;
      for (std::size_t i = 0; i < m.state.recipients.size(); ++i) {
        if (m.state.recipients[i].notice_owed && m.state.recipients[i].status == final_status) owed.push_back(i);
      }
      if (owed.empty()) continue;
      if (co_await queue_notice(id, kind, owed)) {
        for (std::size_t i : owed) m.state.recipients[i].notice_owed = false;
      }
    }
    const auto warn_after = config_->get()->queue.delay_warning.count();
    if (warn_after > 0 && !pending.empty() && now >= to_ms(m.envelope.arrival) + warn_after) {
      // One that cannot be queued is tried again at the next attempt (delay_notified unset).
      if (auto who = dsn_recipients(DsnKind::delay, m.envelope, m.state, pending); !who.empty()) {
        if (co_await queue_notice(id, DsnKind::delay, who)) {
          for (std::size_t i : who) m.state.recipients[i].delay_notified = true;
        }
      }
    }
  }

  const bool owes_notice = std::any_of(m.state.recipients.begin(), m.state.recipients.end(),
                                       [](const RecipientState& s) { return s.notice_owed; });
  // The attempt keeps its slot until its state is durable: the slots
  // then bound the state saves waiting for the disk too. Given back at once, a burst of 100,000
  // deferring first attempts queued 100,000 saves, and their buffers left the heap fragmented
  // at 5.5 KiB of RSS per queued message (queue_scale_bench --live). While active, the entry
  // stays in messages_ (remove() only marks it) and `entry` stays valid across the waits.
  bool finished = entry.removed || (pending.empty() && !owes_notice);
  if (!finished) {
    // Waits are monotonic (a wall-clock step neither delays nor hurries them); the saved time,
    // for a restart and `queue list`, is wall time.
    const std::chrono::milliseconds wait = entry.flush_requested ? std::chrono::milliseconds(0) : retry_wait(entry, now);
    entry.due = mono_ms() + wait.count();
    m.state.next_attempt = now + wait.count();
    entry.flush_requested = false;
    MessageState state = m.state;
    // The attempt is over, so nothing reads the message: the spool may move it out of the
    // segment log into its own file (it may wait for days), and says where it went.
    const SpoolResult r = co_await spool_.save(id, std::move(state), true);
    if (!r.ok()) log_->error("{}: cannot save queue state: {}", id.str(), r.error);
    if (!r.body.empty()) {
      m.envelope.body = r.body;
      m.envelope.body_offset = r.body_offset;
    }
    finished = entry.removed;  // an operator deleted it meanwhile
  }
  if (finished) {
    // The slot goes back before the removal (small, and a drain is as fast as its removals);
    // marked removed, the entry is left alone meanwhile (flush, hold, run_due skip it).
    entry.removed = true;
    end_active(entry);
    const SpoolResult r = co_await spool_.remove(id);
    if (!r.ok()) log_->error("{}: cannot remove queue file: {}", id.str(), r.error);
    log_->info("{}: removed", id.str());
    ++counters_.removed;
    unschedule(id);
    messages_.erase(id);
    arm_timer();
    co_return;
  }
  // A flush while the state was being saved runs it again now; a hold keeps it unscheduled.
  if (entry.flush_requested) {
    entry.flush_requested = false;
    entry.due = mono_ms();
  }
  end_active(entry);
  if (!m.state.hold) schedule(id, entry.due);
  arm_timer();
}

asio::awaitable<bool> QueueManager::queue_notice(QueueId id, DsnKind kind, std::vector<std::size_t> recipients) {
  auto found = messages_.find(id);
  if (found == messages_.end()) co_return false;
  // Copies: the entry may change while the notice is committed (operator hold or delete).
  const Envelope envelope = found->second.message.envelope;
  const MessageState state = found->second.message.state;
  Envelope original = envelope;
  std::string text;
  if (kind == DsnKind::failure && original.ret != Ret::headers && original.size <= kReturnFullLimit) {
    text = read_message(original, kReturnFullLimit);
  } else {
    text = header_section(original);
    if (kind == DsnKind::failure) original.ret = Ret::headers;
  }
  DsnInput input;
  input.kind = kind;
  input.envelope = &original;
  input.state = &state;
  input.recipients = recipients;
  input.original = std::move(text);
  const auto cfg = config_->get();
  input.reporting_mta = cfg->server.hostname.empty() ? std::string("localhost") : cfg->server.hostname;
  input.max_lifetime = std::chrono::duration_cast<std::chrono::seconds>(cfg->queue.max_lifetime);
  input.now = clock_->wall();
  std::string notice = make_dsn(input);

  Envelope env;
  env.sender = "";
  env.recipients.push_back(Recipient{envelope.sender, {}, notify_never});
  env.arrival = clock_->wall();
  // The notice carries what the original needed: 8-bit text (BODY=8BITMIME), UTF-8 addresses.
  env.eightbit = std::any_of(notice.begin(), notice.end(), [](char c) { return static_cast<unsigned char>(c) >= 0x80; });
  env.smtputf8 = envelope.smtputf8;
  env.id = QueueId::next(clock_->wall());
  SpoolResult r = co_await spool_.commit(notice, env);
  // The spool never replaces a message file: a failed commit whose name is taken was a queue-id
  // collision (a clock that stepped back, ids of files this process did not load). That id is
  // somebody else's; a fresh one, above it, is ours.
  for (int retry = 0; !r.ok() && r.id_taken && retry < kCollisionRetries; ++retry) {
    bounce_log_->warn("{}: queue id {} is taken in the spool; the notice gets a fresh one", id.str(), env.id.str());
    QueueId::not_below(env.id, clock_->wall());
    env.id = QueueId::next(clock_->wall());
    r = co_await spool_.commit(notice, env);
  }
  const char* what = kind == DsnKind::failure ? "non-delivery notification"
                     : kind == DsnKind::delay ? "delay notification"
                                              : "delivery status notification";
  if (!r.ok()) {
    bounce_log_->error("{}: cannot queue sender {}: {}; trying again at the next attempt", id.str(), what, r.error);
    co_return false;
  }
  ++counters_.notices;
  bounce_log_->info("{}: sender {}: {}", id.str(), what, env.id.str());
  QueuedMessage notice_message{env, spool_format::initial_state(env)};
  enqueue(std::move(notice_message));
  co_return true;
}

asio::awaitable<void> QueueManager::shutdown(std::chrono::milliseconds grace) {
  stopping_ = true;
  alarm_->cancel();
  asio::steady_timer wait(executor_);
  const auto deadline = std::chrono::steady_clock::now() + grace;
  // Bounded wait for attempts in flight (only at shutdown; the queue never polls otherwise).
  while (active_ > 0 && std::chrono::steady_clock::now() < deadline) {
    wait.expires_after(std::chrono::milliseconds(50));
    co_await wait.async_wait(asio::use_awaitable);
  }
}

// ── QueueControl ───────────────────────────────────────────────────────────────────────────

std::vector<QueueEntry> QueueManager::list() {
  std::vector<const Entry*> order;
  for (const auto& [id, e] : messages_) {
    if (!e.removed) order.push_back(&e);
  }
  std::sort(order.begin(), order.end(),
            [](const Entry* a, const Entry* b) { return a->message.envelope.arrival < b->message.envelope.arrival; });
  std::vector<QueueEntry> out;
  out.reserve(order.size());
  for (const Entry* e : order) out.push_back(queue_entry(e->message, e->active));
  return out;
}

std::optional<std::string> QueueManager::show(const QueueId& id) {
  auto it = messages_.find(id);
  if (it == messages_.end() || it->second.removed) return std::nullopt;
  // The same text as `queue show` reading the spool directly (LF line ends).
  return format_show(it->second.message, read_headers(it->second.message).value_or(std::string()));
}

asio::awaitable<std::size_t> QueueManager::flush(std::optional<QueueId> id) {
  std::size_t count = 0;
  const std::int64_t now = mono_ms();
  for (auto& [key, e] : messages_) {
    if (id && key != *id) continue;
    if (e.removed || e.message.state.hold) continue;
    if (e.active) {
      e.flush_requested = true;
    } else {
      e.due = now;
      schedule(key, now);
    }
    ++count;
  }
  if (count > 0) log_->info("flush: {} message{} scheduled for immediate delivery", count, count == 1 ? "" : "s");
  run_due();
  co_return count;
}

asio::awaitable<std::size_t> QueueManager::hold(QueueId id) {
  auto it = messages_.find(id);
  if (it == messages_.end() || it->second.removed) co_return 0;
  if (it->second.message.state.hold) co_return 1;
  it->second.message.state.hold = true;
  unschedule(id);
  arm_timer();
  MessageState state = it->second.message.state;
  const SpoolResult r = co_await spool_.save(id, std::move(state));
  if (!r.ok()) log_->error("{}: cannot save queue state: {}", id.str(), r.error);
  log_->info("{}: placed on hold", id.str());
  co_return 1;
}

asio::awaitable<std::size_t> QueueManager::release(QueueId id) {
  auto it = messages_.find(id);
  if (it == messages_.end() || it->second.removed) co_return 0;
  if (!it->second.message.state.hold) co_return 1;
  it->second.message.state.hold = false;
  MessageState state = it->second.message.state;
  const SpoolResult r = co_await spool_.save(id, std::move(state));
  if (!r.ok()) log_->error("{}: cannot save queue state: {}", id.str(), r.error);
  log_->info("{}: released from hold", id.str());
  if (auto again = messages_.find(id); again != messages_.end() && !again->second.active && !again->second.message.state.hold) {
    schedule(id, again->second.due);
    arm_timer();
  }
  co_return 1;
}

asio::awaitable<std::size_t> QueueManager::remove(QueueId id) {
  auto it = messages_.find(id);
  if (it == messages_.end() || it->second.removed) co_return 0;
  if (it->second.active) {
    it->second.removed = true;  // the attempt removes it when it ends
    co_return 1;
  }
  it->second.removed = true;
  unschedule(id);
  arm_timer();
  const SpoolResult r = co_await spool_.remove(id);
  if (!r.ok()) log_->error("{}: cannot remove queue file: {}", id.str(), r.error);
  log_->info("{}: removed", id.str());
  ++counters_.removed;
  messages_.erase(id);
  co_return 1;
}

asio::awaitable<std::size_t> QueueManager::expire(QueueId id) {
  auto it = messages_.find(id);
  if (it == messages_.end() || it->second.removed) co_return 0;
  it->second.message.state.forced_expire = true;
  MessageState state = it->second.message.state;
  const SpoolResult r = co_await spool_.save(id, std::move(state));
  if (!r.ok()) log_->error("{}: cannot save queue state: {}", id.str(), r.error);
  log_->info("{}: forced to expire", id.str());
  if (auto again = messages_.find(id); again != messages_.end()) {
    if (again->second.active) {
      again->second.flush_requested = true;
    } else if (!again->second.message.state.hold) {
      again->second.due = mono_ms();
      schedule(id, again->second.due);
      run_due();
    }
  }
  co_return 1;
}

// ── Production delivery ────────────────────────────────────────────────────────────────────

QueueManager::DeliverFunction make_delivery_function(asio::any_io_executor executor, const config::Config& config,
                                                     dns::Resolver& resolver, ConcurrencyLimiter& limiter, Connector connector,
                                                     LogSink smtp_log) {
  return make_delivery_function(std::move(executor), LiveConfig::borrowed(config), resolver, limiter,
                                std::move(connector), std::move(smtp_log));
}

QueueManager::DeliverFunction make_delivery_function(asio::any_io_executor executor, std::shared_ptr<const LiveConfig> live,
                                                     dns::Resolver& resolver, ConcurrencyLimiter& limiter, Connector connector,
                                                     LogSink smtp_log) {
  (void)executor;
  auto seeds = std::make_shared<std::mt19937_64>(std::random_device{}());
  return [live = std::move(live), &resolver, &limiter, connector = std::move(connector), smtp_log = std::move(smtp_log), seeds](
             Envelope envelope, std::string domain, int attempt) -> asio::awaitable<std::vector<RecipientResult>> {
    // The snapshot in force now, kept to the end of this attempt (routing.policy points into it).
    const std::shared_ptr<const config::Config> snapshot = live->get();
    const config::Config& config = *snapshot;
    // Postfix's delay stages (log_adhoc.c): a = arrival → this attempt (time spent deferred
    // included), b = in the queue manager (here: waiting for a concurrency slot), c = DNS and
    // connection set-up, d = transmission.
    const auto attempt_started = Clock::now();
    const auto waited_from = std::chrono::steady_clock::now();
    // SMTPUTF8 mail may name a UTF-8 domain: DNS and the policy tables know its A-label.
    const std::optional<std::string> ascii_domain = dns_domain(domain);
    if (!ascii_domain) {
      std::vector<RecipientResult> bad;
      for (const auto& r : envelope.recipients) {
        RecipientResult res;
        res.recipient = r;
        const Outcome o = outcome_of(Failure::bad_idn_domain, {}, domain);
        res.status = DeliveryStatus::bounced;
        res.dsn = o.status;
        res.failure = o.failure;
        res.reason = o.text;
        smtp_log(delivery_line(envelope, res, false));
        bad.push_back(std::move(res));
      }
      co_return bad;
    }
    const Routing routing = route_for(config, *ascii_domain, (*seeds)());
    std::string permit_domain = domain;
    Permit permit = co_await limiter.acquire(std::move(permit_domain));
    const auto started = std::chrono::steady_clock::now();
    dns::PlanRequest request = routing.request;
    dns::Resolution resolution = co_await dns::resolve_destination(resolver, std::move(request));
    DeliverySettings ds;
    ds.level = routing.level;
    ds.digest_order = config.tls.client.digest_order;
    if (routing.policy != nullptr) ds.match_names = routing.policy->match;
    ds.tls_feature_status = config.log.tls_feature_status;
    ds.json_log = config.log.format == config::LogSettings::Format::json;
    ds.attempt = attempt;
    ds.dns_lookup = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - started);
    ds.before_queue = std::chrono::duration_cast<std::chrono::microseconds>(attempt_started - envelope.arrival);
    if (ds.before_queue.count() < 0) ds.before_queue = std::chrono::microseconds(0);
    ds.in_queue = std::chrono::duration_cast<std::chrono::microseconds>(started - waited_from);
    dns::DeliveryPlan plan = std::move(resolution.plan);
    Connector c = connector;
    LogSink l = smtp_log;
    co_return co_await deliver(std::move(envelope), std::move(plan), std::move(ds), std::move(c), std::move(l));
  };
}

}  // namespace danerelay::relay
