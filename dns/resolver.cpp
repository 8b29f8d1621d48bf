// dns/resolver.cpp — libunbound driven by Asio (see resolver.hpp), the trust-anchor set-up and
// the DNSSEC self-test.
//
// Lifetimes: the Impl is shared with the pending fd wait, so a wait that completes after the
// resolver was destroyed finds a closed Impl and does nothing. The fd belongs to libunbound:
// the stream_descriptor is release()d, never closed, before ub_ctx_delete (testing notes §8).
#include "dns/resolver.hpp"

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <unbound.h>

#include "config/unbound.hpp"

#include <algorithm>
#include <array>
#include <chrono>
#include <fstream>
#include <iterator>
#include <map>
#include <optional>
#include <system_error>
#include <unordered_map>

namespace danerelay::dns {

namespace {

using Clock = std::chrono::steady_clock;

// The IANA root KSKs (KSK-2017, KSK-2024) as DS records: used only when Debian's dns-root-data
// is absent, as a seed that RFC 5011 then keeps current.
constexpr std::string_view kBuiltinRootDs =
    ". IN DS 20326 8 2 E06D44B80B8F1D39A95C0B0D7C65D08458E880409BBC683457104237C7F8EC8D\n"
    ". IN DS 38696 8 2 683D2D0ACB8C9B712A1948B27F741219298D0A450D612C483AF444A4C0FB2B16\n";

std::string ub_error(int err) { return ub_strerror(err); }

Answer to_answer(const Query& query, int err, ub_result* result) {
  Answer a;
  a.query = query;
  a.canonical_name = query.name;
  if (err != 0 || result == nullptr) {
    a.verdict = Verdict::error;
    a.failure = Failure::other;
    a.why = ub_error(err);
    return a;
  }
  a.rcode = result->rcode;
  a.ttl = result->ttl > 0 ? static_cast<std::uint32_t>(result->ttl) : 0;
  if (result->canonname != nullptr) a.canonical_name = normalize_name(result->canonname);
  // Decide on secure/bogus, never on rcode or havedata alone: libunbound hands out bogus data
  // with NOERROR and havedata=1 (testing notes, pitfall 2).
  if (result->bogus != 0) {
    a.verdict = Verdict::bogus;
    a.failure = Failure::none;
    a.why = result->why_bogus != nullptr ? result->why_bogus : "validation failure";
    return a;
  }
  if (result->rcode != 0 && result->rcode != 3) {
    a.verdict = Verdict::error;
    a.failure = result->rcode == 2 ? Failure::servfail : result->rcode == 5 ? Failure::refused : Failure::other;
    a.why = "rcode " + std::to_string(result->rcode);
    return a;
  }
  a.verdict = result->secure != 0 ? Verdict::secure : Verdict::insecure;
  a.failure = Failure::none;
  a.nxdomain = result->nxdomain != 0;
  if (result->havedata != 0) {
    for (int i = 0; result->data[i] != nullptr; ++i) {
      const auto* p = reinterpret_cast<const std::uint8_t*>(result->data[i]);
      a.rdata.emplace_back(p, p + result->len[i]);
    }
  }
  return a;
}

// dns.unbound_config, read here as libunbound will read it, refused when it holds an option that
// config/unbound.hpp refuses (another trust anchor, insecure names, a weakened validator, an
// include): the loader reports the same at check-config; this covers settings made elsewhere.
void check_unbound_config(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw SetupError("dns.unbound_config: cannot read " + file.string());
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto refused = config::scan_unbound_conf(text);
  if (refused.empty()) return;
  const auto& r = refused.front();
  throw SetupError("dns.unbound_config: " + file.string() + ":" + std::to_string(r.line) + ":" + std::to_string(r.column) +
                   ": " + config::unbound_refusal(r.name, r.why));
}

Answer error_answer(const Query& query, Failure failure, std::string why) {
  Answer a;
  a.query = query;
  a.canonical_name = query.name;
  a.verdict = Verdict::error;
  a.failure = failure;
  a.why = std::move(why);
  return a;
}

std::string query_name(const std::string& name) { return name == "." ? name : name + "."; }

bool writable_dir(const std::filesystem::path& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return false;
  const auto probe = dir / ".danerelay-write-test";
  {
    std::ofstream f(probe);
    if (!f) return false;
  }
  std::filesystem::remove(probe, ec);
  return true;
}

void atomic_write(const std::filesystem::path& target, std::string_view content) {
  const auto tmp = target.string() + ".tmp";
  {
    std::ofstream f(tmp, std::ios::trunc);
    f << content;
    if (!f.flush()) throw SetupError("cannot write " + tmp);
  }
  std::filesystem::rename(tmp, target);
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Coroutine helpers

asio::awaitable<Answer> lookup(Resolver& resolver, Query query) {
  co_return co_await asio::async_initiate<decltype(asio::use_awaitable), void(Answer)>(
      [&resolver](auto handler, Query q) { resolver.async_lookup(std::move(q), std::move(handler)); },
      asio::use_awaitable, std::move(query));
}

asio::awaitable<std::vector<Answer>> lookup_all(Resolver& resolver, std::vector<Query> queries) {
  if (queries.empty()) co_return std::vector<Answer>{};
  using Signature = void(std::vector<Answer>);
  co_return co_await asio::async_initiate<decltype(asio::use_awaitable), Signature>(
      [&resolver](auto handler, std::vector<Query> qs) {
        struct State {
          std::vector<Answer> answers;
          std::size_t remaining;
          asio::any_completion_handler<Signature> handler;
        };
        auto state = std::make_shared<State>(State{std::vector<Answer>(qs.size()), qs.size(), std::move(handler)});
        for (std::size_t i = 0; i < qs.size(); ++i) {
          resolver.async_lookup(std::move(qs[i]), [state, i](Answer a) {
            state->answers[i] = std::move(a);
            if (--state->remaining == 0) std::move(state->handler)(std::move(state->answers));
          });
        }
      },
      asio::use_awaitable, std::move(queries));
}

// ---------------------------------------------------------------------------------------------
// Trust anchor

TrustAnchor prepare_trust_anchor(const config::DnsSettings& settings, const std::filesystem::path& state_dir) {
  namespace fs = std::filesystem;
  TrustAnchor ta;
  std::error_code ec;
  if (!settings.trust_anchor.empty()) {
    if (!fs::is_regular_file(settings.trust_anchor, ec)) {
      throw SetupError("dns.trust_anchor: cannot read " + settings.trust_anchor.string() +
                       ": refusing to run without a DNSSEC trust anchor");
    }
    ta.file = settings.trust_anchor;
    ta.managed = settings.trust_anchor_auto_update;
    return ta;
  }

  const fs::path seed = settings.trust_anchor_seed;
  const bool have_seed = !seed.empty() && fs::is_regular_file(seed, ec);
  const fs::path target = state_dir / "root.key";
  if (!settings.trust_anchor_auto_update || !writable_dir(state_dir)) {
    // Without a writable state directory the anchor cannot be managed: use the seed as it is.
    if (!have_seed) {
      throw SetupError("dns: no trust anchor: " + state_dir.string() + " is not writable and " +
                       (seed.empty() ? std::string("no seed is configured") : seed.string() + " does not exist") +
                       " (install dns-root-data or set dns.trust_anchor)");
    }
    ta.file = seed;
    ta.managed = false;
    if (settings.trust_anchor_auto_update) {
      ta.notes.push_back("state directory " + state_dir.string() + " is not writable: using " + seed.string() +
                         " read-only, without RFC 5011 updates");
    }
    return ta;
  }

  ta.file = target;
  ta.managed = true;
  const bool have_target = fs::is_regular_file(target, ec);
  if (have_seed && (!have_target || fs::last_write_time(target, ec) < fs::last_write_time(seed, ec))) {
    // Debian's unbound-helper pattern: copy when missing or older, atomically.
    std::ifstream in(seed, std::ios::binary);
    std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    atomic_write(target, content);
    ta.notes.push_back("trust anchor " + target.string() + " seeded from " + seed.string());
  } else if (!have_target) {
    atomic_write(target, kBuiltinRootDs);
    ta.notes.push_back("warning: " + (seed.empty() ? std::string("no trust anchor seed") : seed.string() + " missing") +
                       "; seeded " + target.string() + " from the built-in root DS records (KSK-2017, KSK-2024)");
  }
  return ta;
}

// ---------------------------------------------------------------------------------------------
// UnboundResolver

struct UnboundResolver::Impl : std::enable_shared_from_this<Impl> {
  struct Pending {
    Impl* impl = nullptr;
    std::uint64_t id = 0;
    int async_id = 0;
    Query query;
    Handler handler;
    asio::steady_timer timer;
    explicit Pending(asio::any_io_executor ex) : timer(std::move(ex)) {}
  };

  // Definitive answers (secure or insecure, data or none) kept for their TTL, as libunbound's own
  // cache would serve them; a hit skips the round trip through libunbound's worker thread (two
  // socketpair hand-offs and some ten fcntl/read/write calls per query). Bogus answers and errors
  // are never kept: each is asked again.
  struct Memo {
    Answer answer;
    Clock::time_point stored;
    Clock::time_point expires;
  };
  static constexpr std::size_t kMemoEntries = 10000;

  asio::any_io_executor executor;
  ub_ctx* ctx = nullptr;
  std::map<Query, Memo> memo;
  asio::posix::stream_descriptor fd;
  std::unordered_map<std::uint64_t, std::unique_ptr<Pending>> pending;
  std::uint64_t next_id = 1;
  bool waiting = false;
  bool closed = false;
  std::string broken;  // set when libunbound's descriptor failed
  std::chrono::milliseconds timeout;

  Impl(asio::any_io_executor ex, std::chrono::milliseconds t) : executor(ex), fd(ex), timeout(t) {}

  ~Impl() {
    if (fd.is_open()) (void)fd.release();
    if (ctx != nullptr) ub_ctx_delete(ctx);
  }

  void complete(std::uint64_t id, Answer answer) {
    auto it = pending.find(id);
    if (it == pending.end()) return;
    std::unique_ptr<Pending> p = std::move(it->second);
    pending.erase(it);
    p->timer.cancel();
    if (pending.empty() && waiting) {
      // Nothing left to wait for (a cancelled query never writes to libunbound's pipe): drop the
      // fd wait so an idle resolver holds no work and an io_context can run dry.
      boost::system::error_code ec;
      fd.cancel(ec);
    }
    asio::post(executor, [h = std::move(p->handler), a = std::move(answer)]() mutable { std::move(h)(std::move(a)); });
  }

  static void on_result(void* mydata, int err, ub_result* result) {
    auto* p = static_cast<Pending*>(mydata);
    Answer a = to_answer(p->query, err, result);
    if (result != nullptr) ub_resolve_free(result);
    p->impl->remember(a);
    p->impl->complete(p->id, std::move(a));
  }

  void remember(const Answer& a) {
    if (!a.ok() || a.ttl == 0) return;
    const auto now = Clock::now();
    if (memo.size() >= kMemoEntries) {
      std::erase_if(memo, [now](const auto& e) { return e.second.expires <= now; });
      if (memo.size() >= kMemoEntries) memo.clear();  // all live: start over rather than grow
    }
    memo.insert_or_assign(a.query, Memo{a, now, now + std::chrono::seconds(a.ttl)});
  }

  // The kept answer for `query`, its TTL counted down; nullopt when none or expired.
  std::optional<Answer> recall(const Query& query) {
    const auto it = memo.find(query);
    if (it == memo.end()) return std::nullopt;
    const auto now = Clock::now();
    if (now >= it->second.expires) {
      memo.erase(it);
      return std::nullopt;
    }
    Answer a = it->second.answer;
    const auto left = std::chrono::duration_cast<std::chrono::seconds>(it->second.expires - now).count();
    a.ttl = static_cast<std::uint32_t>(std::max<std::int64_t>(1, left));
    return a;
  }

  void wait() {
    if (waiting || closed || pending.empty()) return;
    waiting = true;
    fd.async_wait(asio::posix::stream_descriptor::wait_read, [self = shared_from_this()](boost::system::error_code ec) {
      self->waiting = false;
      if (self->closed) return;
      if (ec && ec != asio::error::operation_aborted) {
        // The descriptor itself failed: waiting again would spin. Fail what is pending and every
        // later query, loudly, instead of pretending to resolve.
        self->broken = "libunbound descriptor: " + ec.message();
        self->fail_all(self->broken);
        return;
      }
      if (!ec) {
        // Runs the callbacks of every finished query, in this thread.
        if (int err = ub_process(self->ctx); err != 0) self->fail_all("ub_process: " + ub_error(err));
      }
      self->wait();
    });
  }

  void start(Query query, Handler handler) {
    if (!closed && broken.empty()) {
      if (auto kept = recall(query)) {
        asio::post(executor, [h = std::move(handler), a = std::move(*kept)]() mutable { std::move(h)(std::move(a)); });
        return;
      }
    }
    auto p = std::make_unique<Pending>(executor);
    p->impl = this;
    p->id = next_id++;
    p->query = std::move(query);
    // swap, not move-assignment: Boost 1.81's any_completion_handler::operator=(&&) wraps the
    // handler in itself recursively until the stack overflows.
    p->handler.swap(handler);
    Pending* raw = p.get();
    const std::uint64_t id = raw->id;
    pending.emplace(id, std::move(p));

    if (closed || !broken.empty()) {
      Answer a = error_answer(raw->query, Failure::other, closed ? std::string("resolver shut down") : broken);
      complete(id, std::move(a));
      return;
    }
    const int err = ub_resolve_async(ctx, query_name(raw->query.name).c_str(), static_cast<int>(raw->query.type),
                                     1 /* IN */, raw, &Impl::on_result, &raw->async_id);
    if (err != 0) {
      Answer a = error_answer(raw->query, Failure::other, ub_error(err));
      complete(id, std::move(a));
      return;
    }
    raw->timer.expires_after(timeout);
    raw->timer.async_wait([self = shared_from_this(), id](boost::system::error_code ec) {
      if (ec || self->closed) return;
      auto it = self->pending.find(id);
      if (it == self->pending.end()) return;
      // After ub_cancel libunbound never calls back for this query.
      (void)ub_cancel(self->ctx, it->second->async_id);
      Answer a = error_answer(it->second->query, Failure::timeout, "no answer within " + std::to_string(self->timeout.count()) + " ms");
      self->complete(id, std::move(a));
    });
    wait();
  }

  // Completes every outstanding query with an error answer.
  void fail_all(const std::string& why) {
    std::vector<std::uint64_t> ids;
    for (auto& [id, p] : pending) {
      (void)ub_cancel(ctx, p->async_id);
      ids.push_back(id);
    }
    for (auto id : ids) {
      Answer a = error_answer(pending.at(id)->query, Failure::other, why);
      complete(id, std::move(a));
    }
  }

  void shutdown() {
    closed = true;
    fail_all("resolver shut down");
    boost::system::error_code ec;
    fd.cancel(ec);
  }
};

UnboundResolver::UnboundResolver(asio::any_io_executor executor, const config::DnsSettings& settings,
                                 const TrustAnchor& anchor)
    : impl_(std::make_shared<Impl>(executor, settings.query_timeout)) {
  ub_ctx* ctx = ub_ctx_create();
  if (ctx == nullptr) throw SetupError("dns: cannot create a libunbound context");
  impl_->ctx = ctx;

  if (!settings.unbound_config.empty()) {
    check_unbound_config(settings.unbound_config);
    if (int err = ub_ctx_config(ctx, settings.unbound_config.c_str()); err != 0) {
      throw SetupError("dns.unbound_config: " + settings.unbound_config.string() + ": " + ub_error(err));
    }
  }
  for (const auto& [name, value] : settings.unbound_options) {
    const std::string option = name.ends_with(':') ? name : name + ":";
    // D-01: the relay's own trust anchor and an intact validator, whatever the options say.
    if (const std::string_view why = config::refused_unbound_option(option); !why.empty()) {
      throw SetupError("dns.unbound_options: " + config::unbound_refusal(name.ends_with(':') ? name.substr(0, name.size() - 1) : name, why));
    }
    if (int err = ub_ctx_set_option(ctx, option.c_str(), value.c_str()); err != 0) {
      throw SetupError("dns.unbound_options: \"" + name + "\" = \"" + value + "\": " + ub_error(err));
    }
  }
  for (const auto& fwd : settings.forwarders) {
    if (int err = ub_ctx_set_fwd(ctx, fwd.c_str()); err != 0) {
      throw SetupError("dns.forwarders: \"" + fwd + "\": " + ub_error(err));
    }
  }
  if (anchor.file.empty()) throw SetupError("dns: refusing to run without a DNSSEC trust anchor");
  const int ta_err = anchor.managed ? ub_ctx_add_ta_autr(ctx, anchor.file.c_str()) : ub_ctx_add_ta_file(ctx, anchor.file.c_str());
  if (ta_err != 0) throw SetupError("dns: trust anchor " + anchor.file.string() + ": " + ub_error(ta_err));
  // Threads, not the default fork: a forked resolver is unsafe in a threaded program.
  if (int err = ub_ctx_async(ctx, 1); err != 0) throw SetupError("dns: ub_ctx_async: " + ub_error(err));
  const int fd = ub_fd(ctx);
  if (fd < 0) throw SetupError("dns: libunbound gave no file descriptor");
  impl_->fd.assign(fd);
}

UnboundResolver::~UnboundResolver() { impl_->shutdown(); }

void UnboundResolver::async_lookup(Query query, Handler handler) { impl_->start(std::move(query), std::move(handler)); }

std::size_t UnboundResolver::pending() const noexcept { return impl_->pending.size(); }

// ---------------------------------------------------------------------------------------------
// Self-test

std::string SelfTest::summary() const {
  const std::string what = "DNSSEC self-test (" + answer.query.name + " DNSKEY)";
  if (ok) return what + ": validation works, answer secure";
  if (answer.verdict == Verdict::insecure) {
    return what + " FAILED: answer insecure — the trust anchor does not cover this name, so no DNSSEC "
                  "validation takes place and DANE would never engage";
  }
  return what + " FAILED: " + answer.describe() +
         " — check the trust anchor, the system clock and that the upstream path passes DNSSEC records";
}

asio::awaitable<SelfTest> self_test(Resolver& resolver, std::string name) {
  SelfTest t;
  // A named Query, not a temporary: g++ 12 bit-copies prvalue class temporaries passed to a
  // coroutine inside a co_await expression (the copy's std::string then points into the old frame).
  Query query{normalize_name(name), RRType::DNSKEY};
  t.answer = co_await lookup(resolver, std::move(query));
  t.ok = t.answer.secure() && t.answer.has_data();
  co_return t;
}

}  // namespace danerelay::dns
