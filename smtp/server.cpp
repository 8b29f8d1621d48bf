// smtp/server.cpp — see server.hpp.
#include "smtp/server.hpp"

#include <unistd.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <spdlog/spdlog.h>

#include <array>
#include <system_error>
#include <vector>

#include "smtp/client_limits.hpp"

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

std::string local_hostname() {
  std::array<char, 256> buf{};
  if (::gethostname(buf.data(), buf.size() - 1) != 0 || buf[0] == '\0') return "localhost";
  return std::string(buf.data());
}

std::string endpoint_text(const tcp::endpoint& ep) {
  const auto a = ep.address();
  return (a.is_v6() ? "[" + a.to_string() + "]" : a.to_string()) + ":" + std::to_string(ep.port());
}

// The client's address as logged and counted: IPv4-mapped IPv6 shown as IPv4.
std::string client_address(const tcp::socket& socket) {
  error_code ec;
  const auto ep = socket.remote_endpoint(ec);
  if (ec) return "unknown";
  auto a = ep.address();
  if (a.is_v6() && a.to_v6().is_v4_mapped()) a = asio::ip::make_address_v4(asio::ip::v4_mapped, a.to_v6());
  return a.to_string();
}

}  // namespace

// ---- ConnectionTracker ------------------------------------------------------------------------

ConnectionTracker::Slot& ConnectionTracker::Slot::operator=(Slot&& other) noexcept {
  if (this != &other) {
    release();
    tracker_ = std::move(other.tracker_);
    key_ = std::move(other.key_);
  }
  return *this;
}

void ConnectionTracker::Slot::release() noexcept {
  if (tracker_) tracker_->release(key_);
  tracker_.reset();
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
  return Admission::admitted;
}

void ConnectionTracker::release(const std::string& key) noexcept {
  std::lock_guard lock(mutex_);
  if (total_ > 0) --total_;
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

  asio::any_io_executor executor;
  std::shared_ptr<const ServerSettings> settings;
  MessageStore& store;
  tcp::acceptor acceptor;
  tcp::endpoint bound;
  std::mutex mutex;
  std::map<ServerSession*, std::weak_ptr<ServerSession>> sessions;
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
    const auto admission = settings.tracker->admit(address, slot);
    if (admission != ConnectionTracker::Admission::admitted) {
      std::string line = "421 4.7.0 " + settings.hostname + " Error: too many connections";
      if (admission == ConnectionTracker::Admission::too_many_from_client) {
        line += " from " + address;
        log->warn("Connection concurrency limit exceeded: {} from unknown[{}] for service {}",
                  settings.tracker->from(address) + 1, address, settings.listener.name);
      } else {
        log->warn("Connection limit exceeded: {} for service {}, refusing unknown[{}]", settings.tracker->total() + 1,
                  settings.listener.name, address);
      }
      if (settings.observer && settings.observer->rejection) settings.observer->rejection(421);
      line += "\r\n";
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
  {
    std::lock_guard lock(state_->mutex);
    if (state_->stopped) return;
    state_->stopped = true;
    for (auto& [ptr, weak] : state_->sessions) {
      if (auto s = weak.lock()) live.push_back(std::move(s));
    }
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
