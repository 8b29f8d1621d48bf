// smtp/server.cpp — see server.hpp.
#include "smtp/server.hpp"

#include <unistd.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <system_error>
#include <vector>

#include "smtp/client_limits.hpp"
#include "smtp/proxy_protocol.hpp"

// g++ 12 false positive on Asio coroutine frames (see smtp/client_session.cpp).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

namespace danerelay::smtp {

namespace asio = boost::asio;
using asio::ip::tcp;
using boost::system::error_code;
using namespace boost::asio::experimental::awaitable_operators;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
constexpr auto refuse_write_limit = std::chrono::seconds(5);
constexpr auto accept_error_pause = std::chrono::milliseconds(100);
// A balancer writes the PROXY header as soon as it has connected (haproxy sends it with the
// connection), so a header that takes longer than this is not coming: the connection only holds a
// slot of limits.max_connections. limits.command_timeout (5 min by default) bounds a command line;
// a header is bounded by that or by this, whichever is shorter.
constexpr auto proxy_header_limit = std::chrono::seconds(10);

std::string local_hostname() {
  std::array<char, 256> buf{};
  if (::gethostname(buf.data(), buf.size() - 1) != 0 || buf[0] == '\0') return "localhost";
  return std::string(buf.data());
}

std::string endpoint_text(const tcp::endpoint& ep) {
  const auto a = ep.address();
  return (a.is_v6() ? "[" + a.to_string() + "]" : a.to_string()) + ":" + std::to_string(ep.port());
}

// IPv4-mapped IPv6 (what a "[::]" listener sees for IPv4 clients) as the IPv4 address it carries.
asio::ip::address unmapped(asio::ip::address a) {
  if (a.is_v6() && a.to_v6().is_v4_mapped()) a = asio::ip::make_address_v4(asio::ip::v4_mapped, a.to_v6());
  return a;
}

// The client's address as logged and counted: IPv4-mapped IPv6 shown as IPv4.
std::string client_address(const tcp::socket& socket) {
  error_code ec;
  const auto ep = socket.remote_endpoint(ec);
  if (ec) return "unknown";
  return unmapped(ep.address()).to_string();
}

// listener.proxy_from: may this peer write a PROXY header?
bool is_balancer(const std::vector<config::Cidr>& balancers, const tcp::socket& socket) {
  error_code ec;
  const auto ep = socket.remote_endpoint(ec);
  if (ec) return false;
  const auto a = unmapped(ep.address());
  std::vector<std::uint8_t> bytes;
  if (a.is_v4()) {
    const auto b = a.to_v4().to_bytes();
    bytes.assign(b.begin(), b.end());
  } else {
    const auto b = a.to_v6().to_bytes();
    bytes.assign(b.begin(), b.end());
  }
  return std::any_of(balancers.begin(), balancers.end(),
                     [&](const config::Cidr& net) { return net.contains(bytes.data(), bytes.size()); });
}

std::string admission_line(const ServerSettings& settings, ConnectionTracker::Admission admission,
                           const std::string& address) {
  std::string line = "421 4.7.0 " + settings.hostname + " Error: too many connections";
  const auto& log = settings.log;
  if (admission == ConnectionTracker::Admission::too_many_from_client) {
    line += " from " + address;
    log->warn("Connection concurrency limit exceeded: {} from unknown[{}] for service {}",
              settings.tracker->from(address) + 1, address, settings.listener.name);
  } else {
    log->warn("Connection limit exceeded: {} for service {}, refusing unknown[{}]", settings.tracker->total() + 1,
              settings.listener.name, address);
  }
  if (settings.observer && settings.observer->rejection) settings.observer->rejection(421);
  return line + "\r\n";
}

}  // namespace

// ---- ConnectionTracker ------------------------------------------------------------------------

ConnectionTracker::Slot& ConnectionTracker::Slot::operator=(Slot&& other) noexcept {
  if (this != &other) {
    release();
    tracker_ = std::move(other.tracker_);
    key_ = std::move(other.key_);
    named_ = other.named_;
  }
  return *this;
}

void ConnectionTracker::Slot::release() noexcept {
  if (tracker_) tracker_->release(key_, named_);
  tracker_.reset();
  key_.clear();
  named_ = false;
}

void ConnectionTracker::set_limits(std::uint32_t max_connections, std::uint32_t max_per_client) {
  std::lock_guard lock(mutex_);
  max_total_ = max_connections;
  max_per_client_ = max_per_client;
}

// A limit of 0 means "no limit".
ConnectionTracker::Admission ConnectionTracker::admit(const std::string& client_address, Slot& slot) {
  slot.release();  // before taking the lock: releasing takes it too
  const std::string key = client_key(client_address, ipv6_prefix_);
  std::lock_guard lock(mutex_);
  if (max_total_ != 0 && total_ >= max_total_) return Admission::too_many;
  auto& n = per_client_[key];
  if (max_per_client_ != 0 && n >= max_per_client_) {
    if (n == 0) per_client_.erase(key);
    return Admission::too_many_from_client;
  }
  ++n;
  ++total_;
  slot.tracker_ = shared_from_this();
  slot.key_ = key;
  slot.named_ = true;
  return Admission::admitted;
}

ConnectionTracker::Admission ConnectionTracker::admit_unnamed(Slot& slot) {
  slot.release();
  std::lock_guard lock(mutex_);
  if (max_total_ != 0 && total_ >= max_total_) return Admission::too_many;
  ++total_;
  slot.tracker_ = shared_from_this();
  return Admission::admitted;
}

ConnectionTracker::Admission ConnectionTracker::name(const std::string& client_address, Slot& slot) {
  if (slot.tracker_.get() != this || slot.named_) return Admission::too_many;
  const std::string key = client_key(client_address, ipv6_prefix_);
  std::lock_guard lock(mutex_);
  auto& n = per_client_[key];
  if (max_per_client_ != 0 && n >= max_per_client_) {
    if (n == 0) per_client_.erase(key);
    return Admission::too_many_from_client;
  }
  ++n;
  slot.key_ = key;
  slot.named_ = true;
  return Admission::admitted;
}

void ConnectionTracker::release(const std::string& key, bool named) noexcept {
  std::lock_guard lock(mutex_);
  if (total_ > 0) --total_;
  if (!named) return;
  const auto it = per_client_.find(key);
  if (it != per_client_.end() && --it->second == 0) per_client_.erase(it);
}

std::size_t ConnectionTracker::total() const {
  std::lock_guard lock(mutex_);
  return total_;
}

std::size_t ConnectionTracker::from(const std::string& client_address) const {
  const std::string key = client_key(client_address, ipv6_prefix_);
  std::lock_guard lock(mutex_);
  const auto it = per_client_.find(key);
  return it == per_client_.end() ? 0 : it->second;
}

// ---- Server -----------------------------------------------------------------------------------

struct Server::State : std::enable_shared_from_this<Server::State> {
  State(asio::any_io_executor ex, ServerSettings s, MessageStore& m)
      : executor(std::move(ex)), store(m), acceptor(executor) {
    if (s.hostname.empty()) s.hostname = local_hostname();
    if (!s.log) s.log = spdlog::default_logger();
    if (!s.auth_pool) s.auth_pool = std::make_shared<AuthPool>(2);
    if (!s.auth_failures) {
      s.auth_failures = std::make_shared<AuthFailureLimiter>(s.limits.max_auth_failures_per_client, s.limits.client_ipv6_prefix);
    }
    if (!s.tracker) {
      s.tracker = std::make_shared<ConnectionTracker>(s.limits.max_connections, s.limits.max_connections_per_client,
                                                      s.limits.client_ipv6_prefix);
    }
    settings = std::make_shared<const ServerSettings>(std::move(s));
  }

  // The settings new sessions get; a session keeps the snapshot it started with.
  std::shared_ptr<const ServerSettings> current() {
    std::lock_guard lock(mutex);
    return settings;
  }
  void replace(std::shared_ptr<const ServerSettings> next) {
    std::lock_guard lock(mutex);
    settings = std::move(next);
  }

  void forget(ServerSession* session) {
    std::lock_guard lock(mutex);
    sessions.erase(session);
  }

  // A proxied connection while its header is awaited (smtp/server.hpp): stop() closes it too.
  struct Pending {
    explicit Pending(tcp::socket s) : socket(std::move(s)), executor(socket.get_executor()) {}
    tcp::socket socket;              // touched on `executor` (its strand) only
    asio::any_io_executor executor;
  };
  // False once stopped: the caller closes the connection instead.
  bool hold(const std::shared_ptr<Pending>& p) {
    std::lock_guard lock(mutex);
    if (stopped) return false;
    pending.emplace(p.get(), p);
    return true;
  }
  void forget(Pending* p) {
    std::lock_guard lock(mutex);
    pending.erase(p);
  }

  asio::any_io_executor executor;
  std::shared_ptr<const ServerSettings> settings;
  MessageStore& store;
  tcp::acceptor acceptor;
  tcp::endpoint bound;
  std::mutex mutex;
  std::map<ServerSession*, std::weak_ptr<ServerSession>> sessions;
  std::map<Pending*, std::weak_ptr<Pending>> pending;
  bool stopped = false;
};

namespace {

asio::awaitable<void> run_session(std::shared_ptr<Server::State> state, std::shared_ptr<ServerSession> session,
                                  ConnectionTracker::Slot slot) {
  try {
    co_await session->run();
  } catch (const std::exception& e) {
    state->current()->log->error("{}: session aborted: {}", session->namaddr(), e.what());
  }
  state->forget(session.get());
  (void)slot;  // released here, with the connection
}

// Over a connection limit: one 421 (bounded), then close. Postfix anvil words the log line.
asio::awaitable<void> refuse(tcp::socket socket, std::string line) {
  asio::steady_timer timer(socket.get_executor(), refuse_write_limit);
  auto op = asio::async_write(socket, asio::buffer(line), use_tuple);
  auto wait = timer.async_wait(use_tuple);
  (void)co_await (std::move(op) || std::move(wait));
  error_code ec;
  socket.shutdown(tcp::socket::shutdown_both, ec);
  socket.close(ec);
}

// What reading a PROXY header gave: the client it names (none: v2 LOCAL, v1 UNKNOWN, …: the
// balancer itself), or why the connection is to be closed.
struct HeaderRead {
  bool ok = false;
  int version = 0;
  std::optional<asio::ip::address> client;
  std::string error;
};

// proxy_protocol.hpp's contract: peek, parse what was seen, and consume only header bytes, so
// that the client's first bytes stay in the kernel for the session (and its TLS handshake).
// Bytes the parser called need_more are header bytes: they are consumed, and the next peek then
// waits for new ones (peeking at the same bytes again would return at once, a busy loop). Each
// round consumes at least one byte, so at most kMaxHeader rounds; the deadline bounds the time.
asio::awaitable<HeaderRead> read_proxy_header(std::shared_ptr<Server::State::Pending> p,
                                              std::chrono::steady_clock::time_point deadline) {
  HeaderRead out;
  std::string seen;  // consumed so far, every byte part of the header
  std::array<char, proxy::kMaxHeader> buf{};
  asio::steady_timer timer(p->executor, deadline);
  for (std::size_t round = 0; round <= proxy::kMaxHeader; ++round) {
    auto peek = p->socket.async_receive(asio::buffer(buf.data(), buf.size() - seen.size()),
                                        tcp::socket::message_peek, use_tuple);
    auto r = co_await (std::move(peek) || timer.async_wait(use_tuple));
    if (r.index() == 1) {
      out.error = "timeout after " + std::to_string(seen.size()) + " bytes of the header";
      co_return out;
    }
    const auto [ec, n] = std::get<0>(r);
    if (ec || n == 0) {
      out.error = "lost connection after " + std::to_string(seen.size()) + " bytes of the header" +
                  (ec && ec != asio::error::eof ? " (" + ec.message() + ")" : "");
      co_return out;
    }
    const std::string bytes = seen + std::string(buf.data(), n);
    const proxy::Result parsed = proxy::parse(bytes);
    if (parsed.status == proxy::Status::error) {
      out.error = parsed.error;
      co_return out;
    }
    // Consume the header's bytes that were peeked (all of them while need_more; up to the
    // header's end once done). They are in the socket's receive queue: the read returns at once.
    const std::size_t take = parsed.status == proxy::Status::done ? parsed.header.length - seen.size() : n;
    auto [read_ec, got] = co_await asio::async_read(p->socket, asio::buffer(buf.data(), take), use_tuple);
    if (read_ec) {
      out.error = "lost connection in the header (" + read_ec.message() + ")";
      co_return out;
    }
    seen.append(buf.data(), got);
    if (parsed.status == proxy::Status::done) {
      out.ok = true;
      out.version = parsed.header.version;
      if (parsed.header.source) {
        error_code bad;
        const auto a = asio::ip::make_address(parsed.header.source->address, bad);
        if (bad) {  // the parser's text is inet_ntop's: impossible, but never guess a client
          out.ok = false;
          out.error = "unusable source address in the header";
          co_return out;
        }
        out.client = unmapped(a);
      }
      co_return out;
    }
    if (seen.size() >= proxy::kMaxHeader) break;
  }
  out.error = "header longer than " + std::to_string(proxy::kMaxHeader) + " bytes";
  co_return out;
}

// One connection of a PROXY listener from a balancer: the header, then the per-client admission
// by the client it names, then the session. `slot` already counts the connection in the total.
asio::awaitable<void> run_proxied(std::shared_ptr<Server::State> state, std::shared_ptr<Server::State::Pending> p,
                                  std::shared_ptr<const ServerSettings> snapshot, ConnectionTracker::Slot slot) {
  struct Forget {  // every way out of here, an exception included
    Server::State& state;
    Server::State::Pending* p;
    ~Forget() { state.forget(p); }
  } forget{*state, p.get()};
  const ServerSettings& settings = *snapshot;
  const auto& log = settings.log;
  const std::string balancer = client_address(p->socket);
  const auto limit = std::min<std::chrono::steady_clock::duration>(settings.limits.command_timeout, proxy_header_limit);
  const HeaderRead header = co_await read_proxy_header(p, std::chrono::steady_clock::now() + limit);
  error_code ec;
  if (!header.ok) {
    log->warn("listener {}: PROXY header from {}: {}; disconnecting", settings.listener.name, balancer, header.error);
    p->socket.close(ec);
    co_return;
  }
  const std::string address = header.client ? header.client->to_string() : balancer;
  log->debug("listener {}: PROXY v{} header from {}: client {}", settings.listener.name, header.version, balancer,
             header.client ? address : std::string("none (LOCAL/UNKNOWN: the balancer itself)"));
  const auto admission = settings.tracker->name(address, slot);
  if (admission != ConnectionTracker::Admission::admitted) {
    std::string line = admission_line(settings, admission, address);
    co_await refuse(std::move(p->socket), std::move(line));
    co_return;
  }
  auto session = std::make_shared<ServerSession>(std::move(p->socket), snapshot, state->store, header.client);
  if (settings.observer && settings.observer->session) settings.observer->session(settings.listener.name);
  {
    std::lock_guard lock(state->mutex);
    if (state->stopped) co_return;
    state->sessions.emplace(session.get(), session);
  }
  co_await run_session(state, std::move(session), std::move(slot));
}

}  // namespace

// Declared here (needs State): the accept loop, one coroutine per listener.
asio::awaitable<void> accept_loop(std::shared_ptr<Server::State> state);

namespace {

// A new session's strand. Over the io_context's own executor type when that is what the Server
// was given (always, in the relay): strand<io_context::executor_type> fits in any_io_executor's
// inline storage, while strand<any_io_executor> does not, so then every copy of the session's
// executor — one per asynchronous operation, for its work tracking — allocates (issue 12 §2:
// measured ~4 heap allocations per command from this alone; server_session_alloc_test.cpp).
asio::any_io_executor session_strand(const asio::any_io_executor& executor) {
  if (const auto* io = executor.target<asio::io_context::executor_type>()) return asio::make_strand(*io);
  return asio::make_strand(executor);
}

}  // namespace

asio::awaitable<void> accept_loop(std::shared_ptr<Server::State> state) {
  for (;;) {
    auto strand = session_strand(state->executor);
    auto [ec, accepted] = co_await state->acceptor.async_accept(strand, use_tuple);
    // Read after each accept: Server::update() may have replaced them (a reload).
    const std::shared_ptr<const ServerSettings> snapshot = state->current();
    const ServerSettings& settings = *snapshot;
    const auto& log = settings.log;
    if (ec) {
      if (ec == asio::error::operation_aborted || !state->acceptor.is_open()) break;
      log->warn("listener {}: accept: {}", settings.listener.name, ec.message());
      asio::steady_timer pause(state->executor, accept_error_pause);  // e.g. EMFILE: do not spin
      (void)co_await pause.async_wait(use_tuple);
      continue;
    }
    tcp::socket socket(std::move(accepted));
    // Replies are small and the client waits for each (or each pipelined group): without
    // TCP_NODELAY, Nagle + delayed ACK stall the first reply after the TLS handshake by ~40 ms.
    boost::system::error_code nodelay_ec;
    socket.set_option(tcp::no_delay(true), nodelay_ec);
    const std::string address = client_address(socket);
    ConnectionTracker::Slot slot;
    if (settings.listener.proxy_protocol) {
      // Only a balancer may say who the client is; anyone else gets nothing, not even a 421
      // (the listener is not meant to be reachable from there).
      if (!is_balancer(settings.listener.proxy_from, socket)) {
        log->warn("listener {}: connection from {} refused: not in proxy_from", settings.listener.name, address);
        error_code close_ec;
        socket.close(close_ec);
        continue;
      }
      // The total counts it now; per client once the header has named the client (run_proxied).
      const auto admission = settings.tracker->admit_unnamed(slot);
      if (admission != ConnectionTracker::Admission::admitted) {
        std::string line = admission_line(settings, admission, address);
        auto ex = socket.get_executor();
        asio::co_spawn(ex, refuse(std::move(socket), std::move(line)), asio::detached);
        continue;
      }
      auto pending = std::make_shared<Server::State::Pending>(std::move(socket));
      if (!state->hold(pending)) break;
      asio::co_spawn(strand, run_proxied(state, pending, snapshot, std::move(slot)), asio::detached);
      continue;
    }
    const auto admission = settings.tracker->admit(address, slot);
    if (admission != ConnectionTracker::Admission::admitted) {
      std::string line = admission_line(settings, admission, address);
      auto ex = socket.get_executor();
      asio::co_spawn(ex, refuse(std::move(socket), std::move(line)), asio::detached);
      continue;
    }
    auto session = std::make_shared<ServerSession>(std::move(socket), snapshot, state->store);
    if (settings.observer && settings.observer->session) settings.observer->session(settings.listener.name);
    {
      std::lock_guard lock(state->mutex);
      if (state->stopped) break;
      state->sessions.emplace(session.get(), session);
    }
    asio::co_spawn(strand, run_session(state, session, std::move(slot)), asio::detached);
  }
}

Server::Server(asio::any_io_executor executor, ServerSettings settings, MessageStore& store)
    : state_(std::make_shared<State>(std::move(executor), std::move(settings), store)) {}

Server::~Server() { stop(); }

void Server::update(ServerSettings next) {
  const std::shared_ptr<const ServerSettings> now = state_->current();
  next.listener.address = now->listener.address;  // bound: only a restart moves a listener
  next.listener.tls = now->listener.tls;
  if (next.hostname.empty()) next.hostname = local_hostname();
  if (!next.log) next.log = now->log;
  if (!next.auth_pool) next.auth_pool = now->auth_pool;
  if (!next.auth_failures) next.auth_failures = now->auth_failures;
  if (!next.tracker) next.tracker = now->tracker;
  if (!next.observer) next.observer = now->observer;
  if (next.resolver == nullptr) next.resolver = now->resolver;
  state_->replace(std::make_shared<const ServerSettings>(std::move(next)));
}

void Server::start() {
  const auto snapshot = state_->current();
  const auto& l = snapshot->listener;
  const std::string where =
      (l.address.host.find(':') != std::string::npos ? "[" + l.address.host + "]" : l.address.host) + ":" +
      std::to_string(l.address.port);
  error_code ec;
  const auto address = asio::ip::make_address(l.address.host, ec);
  if (ec) throw std::system_error(std::make_error_code(std::errc::invalid_argument), "cannot listen on " + where + ": not an IP address");
  const tcp::endpoint endpoint(address, l.address.port);
  auto& acc = state_->acceptor;
  auto check = [&](const error_code& e) {
    if (e) {
      error_code ignored;
      acc.close(ignored);
      throw std::system_error(std::error_code(e.value(), std::system_category()), "cannot listen on " + where);
    }
  };
  acc.open(endpoint.protocol(), ec);
  check(ec);
  acc.set_option(asio::socket_base::reuse_address(true), ec);
  check(ec);
  if (address.is_v6() && address.is_unspecified()) {  // "::" takes IPv4 clients too
    acc.set_option(asio::ip::v6_only(false), ec);
    check(ec);
  }
  acc.bind(endpoint, ec);
  check(ec);
  acc.listen(asio::socket_base::max_listen_connections, ec);
  check(ec);
  state_->bound = acc.local_endpoint(ec);
  asio::co_spawn(state_->executor, accept_loop(state_), asio::detached);
}

void Server::stop() {
  std::vector<std::shared_ptr<ServerSession>> live;
  std::vector<std::shared_ptr<State::Pending>> waiting;
  {
    std::lock_guard lock(state_->mutex);
    if (state_->stopped) return;
    state_->stopped = true;
    for (auto& [ptr, weak] : state_->sessions) {
      if (auto s = weak.lock()) live.push_back(std::move(s));
    }
    for (auto& [ptr, weak] : state_->pending) {
      if (auto p = weak.lock()) waiting.push_back(std::move(p));
    }
  }
  for (auto& p : waiting) {
    auto ex = p->executor;
    asio::post(ex, [p = std::move(p)] {  // on its strand; closing ends the header read
      error_code ec;
      p->socket.close(ec);
    });
  }
  asio::dispatch(state_->executor, [state = state_] {
    error_code ec;
    state->acceptor.close(ec);
  });
  for (auto& s : live) s->stop();
}

tcp::endpoint Server::local_endpoint() const { return state_->bound; }

std::string Server::local_endpoint_text() const { return endpoint_text(state_->bound); }

std::shared_ptr<const ServerSettings> Server::settings() const { return state_->current(); }

}  // namespace danerelay::smtp
