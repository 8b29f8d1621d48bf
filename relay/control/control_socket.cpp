// relay/control/control_socket.cpp — see control_socket.hpp. Server: one accept loop and one coroutine
// per connection on the daemon's executor; every wait is raced against a timer (`op || timer`).
// Client: plain POSIX calls with poll() deadlines (the CLI has no event loop).
#include "relay/control/control_socket.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <spdlog/spdlog.h>

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <set>
#include <system_error>
#include <utility>
#include <variant>

// g++ 12 false positive: it pairs Asio's coroutine-frame operator new (aligned_alloc, inlined)
// with the frame's operator delete (which calls std::free, correctly) and reports a mismatch.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

namespace danerelay::relay {

namespace asio = boost::asio;
using boost::system::error_code;
using json = nlohmann::json;
using stream = asio::local::stream_protocol;
using namespace boost::asio::experimental::awaitable_operators;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
constexpr std::size_t kMaxResponse = std::size_t{256} << 20;  // client side: a very large queue listing

json failure(std::string_view code, std::string text) {
  return json{{"ok", false}, {"error", std::move(text)}, {"code", std::string(code)}};
}

std::string dump_line(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
}

// The address length limit of sun_path (108 bytes on Linux, including the NUL).
bool fits_sun_path(const std::filesystem::path& p) { return p.native().size() < sizeof(sockaddr_un::sun_path); }

}  // namespace

std::filesystem::path control_socket_path(const config::Config& config) {
  if (!config.server.control_socket.empty()) return config.server.control_socket;
  return config.server.state_dir / "control.sock";
}

json entry_to_json(const QueueEntry& e) {
  json rcpts = json::array();
  for (const auto& r : e.recipients) {
    json o{{"address", r.address}};
    if (!r.orig_address.empty()) o["orig_address"] = r.orig_address;
    if (!r.delay_reason.empty()) o["delay_reason"] = r.delay_reason;
    rcpts.push_back(std::move(o));
  }
  return json{{"queue_name", e.queue_name},       {"queue_id", e.queue_id}, {"arrival_time", e.arrival_time},
              {"message_size", e.message_size},   {"forced_expire", e.forced_expire},
              {"sender", e.sender},               {"recipients", std::move(rcpts)}};
}

QueueEntry entry_from_json(const json& j) {
  QueueEntry e;
  e.queue_name = j.at("queue_name").get<std::string>();
  e.queue_id = j.at("queue_id").get<std::string>();
  e.arrival_time = j.at("arrival_time").get<std::int64_t>();
  e.message_size = j.at("message_size").get<std::uint64_t>();
  e.forced_expire = j.at("forced_expire").get<bool>();
  e.sender = j.at("sender").get<std::string>();
  for (const auto& r : j.at("recipients")) {
    QueueEntry::Recipient x;
    x.address = r.at("address").get<std::string>();
    x.orig_address = r.value("orig_address", std::string{});
    x.delay_reason = r.value("delay_reason", std::string{});
    e.recipients.push_back(std::move(x));
  }
  return e;
}

// ---- server ---------------------------------------------------------------------------------

struct ControlServer::Impl : std::enable_shared_from_this<Impl> {
  Impl(asio::any_io_executor ex, std::filesystem::path p, QueueControl& c, std::shared_ptr<spdlog::logger> l,
       ControlServerOptions o)
      : executor(std::move(ex)), path(std::move(p)), control(c), log(std::move(l)), options(o) {}

  asio::any_io_executor executor;
  std::filesystem::path path;
  QueueControl& control;
  std::shared_ptr<spdlog::logger> log;
  ControlServerOptions options;
  std::optional<stream::acceptor> acceptor;
  std::set<stream::socket*> connections;
  bool running = false;
  dev_t bound_dev = 0;   // identity of the socket file we created, to unlink only our own
  ino_t bound_ino = 0;

  void remove_stale_socket();
  static asio::awaitable<void> accept_loop(std::shared_ptr<Impl> self);
  static asio::awaitable<void> serve(std::shared_ptr<Impl> self, stream::socket socket);
  asio::awaitable<json> handle(const std::string& line);
  asio::awaitable<json> mutate(const std::string& op, const json& request);
};

void ControlServer::Impl::remove_stale_socket() {
  struct stat st {};
  if (lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return;
    throw std::system_error(errno, std::generic_category(), "control socket " + path.string());
  }
  if (!S_ISSOCK(st.st_mode))
    throw std::system_error(EEXIST, std::generic_category(), "control socket " + path.string() + " exists and is not a socket");
  // Someone still listening (another daemon on the same state directory) must not lose its socket.
  std::string error;
  ControlFailure kind = ControlFailure::none;
  const json ping{{"op", "ping"}};
  const auto answer = control_request(path, ping, error, &kind, std::chrono::milliseconds(2000));
  if (answer || kind != ControlFailure::no_daemon)
    throw std::system_error(EADDRINUSE, std::generic_category(),
                            "control socket " + path.string() + " is in use by another process");
  if (::unlink(path.c_str()) != 0 && errno != ENOENT)
    throw std::system_error(errno, std::generic_category(), "remove stale control socket " + path.string());
  if (log) log->info("removed stale control socket {}", path.string());
}

asio::awaitable<void> ControlServer::Impl::accept_loop(std::shared_ptr<Impl> self) {
  while (self->running && self->acceptor && self->acceptor->is_open()) {
    auto [ec, socket] = co_await self->acceptor->async_accept(use_tuple);
    if (!self->running || ec == asio::error::operation_aborted) break;
    if (ec) {
      // EMFILE and friends: say so and pause rather than spin.
      if (self->log) self->log->warn("control socket {}: accept: {}", self->path.string(), ec.message());
      asio::steady_timer pause(self->executor, std::chrono::milliseconds(200));
      co_await pause.async_wait(use_tuple);
      continue;
    }
    auto owner = self;
    asio::co_spawn(self->executor, serve(std::move(owner), std::move(socket)), asio::detached);
  }
}

asio::awaitable<void> ControlServer::Impl::serve(std::shared_ptr<Impl> self, stream::socket socket) {
  self->connections.insert(&socket);
  const auto write_line = [&](const json& answer) -> asio::awaitable<bool> {
    const std::string out = dump_line(answer);
    asio::steady_timer timer(self->executor, self->options.write_timeout);
    auto op = asio::async_write(socket, asio::buffer(out), use_tuple);
    auto wait = timer.async_wait(use_tuple);
    auto r = co_await (std::move(op) || std::move(wait));
    co_return r.index() == 0 && !std::get<0>(std::get<0>(r));
  };

  if (self->connections.size() > self->options.max_connections) {
    if (self->log) self->log->warn("control socket: too many connections ({}), refusing one", self->connections.size() - 1);
    const json busy = failure("busy", "too many control connections; try again");
    co_await write_line(busy);
  } else {
    std::string buffer;
    while (self->running) {
      // One request line, bounded in size and in time.
      asio::steady_timer timer(self->executor, self->options.idle_timeout);
      auto op = asio::async_read_until(socket, asio::dynamic_buffer(buffer, self->options.max_request + 1), '\n', use_tuple);
      auto wait = timer.async_wait(use_tuple);
      auto r = co_await (std::move(op) || std::move(wait));
      if (r.index() == 1) break;  // idle: close quietly
      const auto [ec, n] = std::get<0>(r);
      if (ec == asio::error::not_found) {
        const json big = failure("too_large", "request longer than " + std::to_string(self->options.max_request) + " bytes");
        co_await write_line(big);
        break;
      }
      if (ec) break;  // end of file, reset, or closed by stop()
      std::string line = buffer.substr(0, n - 1);
      buffer.erase(0, n);
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (line.empty()) continue;
      const json answer = co_await self->handle(line);
      if (!self->running) break;
      if (!co_await write_line(answer)) break;
    }
  }
  self->connections.erase(&socket);
  error_code ignored;
  socket.close(ignored);
}

asio::awaitable<json> ControlServer::Impl::handle(const std::string& line) {
  json request = json::parse(line, nullptr, false);
  if (request.is_discarded() || !request.is_object()) co_return failure("bad_request", "malformed request: not a JSON object");
  const auto op_it = request.find("op");
  if (op_it == request.end() || !op_it->is_string()) co_return failure("bad_request", "malformed request: no \"op\"");
  const std::string op = op_it->get<std::string>();

  std::string error;
  try {
    if (op == "ping") co_return json{{"ok", true}};
    if (op == "list") {
      json entries = json::array();
      for (const auto& e : control.list()) entries.push_back(entry_to_json(e));
      co_return json{{"ok", true}, {"entries", std::move(entries)}};
    }
    if (op == "show") {
      const auto id_it = request.find("id");
      const auto id = id_it != request.end() && id_it->is_string() ? QueueId::parse(id_it->get<std::string>()) : std::nullopt;
      if (!id) co_return failure("bad_request", "show: not a queue id");
      auto text = control.show(*id);
      if (!text) co_return failure("not_found", id->str() + ": no such message");
      co_return json{{"ok", true}, {"text", std::move(*text)}};
    }
    if (op == "flush" || op == "hold" || op == "release" || op == "delete" || op == "expire") {
      json answer = co_await mutate(op, request);
      co_return answer;
    }
    co_return failure("bad_request", "unknown op \"" + op + "\"");
  } catch (const std::exception& e) {
    error = e.what();
  }
  if (log) log->warn("control socket: {} failed: {}", op, error);
  co_return failure("failed", op + " failed: " + error);
}

asio::awaitable<json> ControlServer::Impl::mutate(const std::string& op, const json& request) {
  const auto id_it = request.find("id");
  const bool has_id = id_it != request.end() && !id_it->is_null();
  if (has_id && !id_it->is_string()) co_return failure("bad_request", op + ": not a queue id");
  const std::string id_text = has_id ? id_it->get<std::string>() : std::string{};

  std::size_t count = 0;
  if (op == "flush" && !has_id) {
    std::optional<QueueId> all;
    count = co_await control.flush(all);
    if (log) log->info("control: flush: {} message{}", count, count == 1 ? "" : "s");
    co_return json{{"ok", true}, {"count", count}};
  }
  if (!has_id) co_return failure("bad_request", op + ": a queue id is required");

  if (op == "delete" && id_text == "ALL") {
    // postsuper -d ALL: every message the queue manager knows now.
    for (const auto& e : control.list()) {
      auto qid = QueueId::parse(e.queue_id);
      if (!qid) continue;
      QueueId one = *qid;
      count += co_await control.remove(one);
    }
    if (log) log->info("control: delete ALL: {} message{}", count, count == 1 ? "" : "s");
    co_return json{{"ok", true}, {"count", count}};
  }

  auto parsed = QueueId::parse(id_text);
  if (!parsed) co_return failure("bad_request", op + ": " + id_text + ": not a queue id");
  QueueId id = *parsed;
  if (op == "flush") {
    std::optional<QueueId> one = id;
    count = co_await control.flush(one);
  } else if (op == "hold") {
    count = co_await control.hold(id);
  } else if (op == "release") {
    count = co_await control.release(id);
  } else if (op == "delete") {
    count = co_await control.remove(id);
  } else {
    count = co_await control.expire(id);
  }
  if (count == 0) {
    bool exists = false;
    for (const auto& e : control.list()) exists = exists || e.queue_id == id.str();
    if (!exists) co_return failure("not_found", id.str() + ": no such message");
  }
  if (log) log->info("control: {} {}: {} message{}", op, id.str(), count, count == 1 ? "" : "s");
  co_return json{{"ok", true}, {"count", count}};
}

ControlServer::ControlServer(asio::any_io_executor executor, std::filesystem::path socket_path, QueueControl& control,
                             std::shared_ptr<spdlog::logger> log, ControlServerOptions options)
    : impl_(std::make_shared<Impl>(std::move(executor), std::move(socket_path), control, std::move(log), options)) {}

ControlServer::~ControlServer() {
  try {
    stop();
  } catch (...) {  // NOLINT(bugprone-empty-catch): a destructor reports nothing
  }
}

const std::filesystem::path& ControlServer::socket_path() const noexcept { return impl_->path; }

void ControlServer::start() {
  Impl& s = *impl_;
  if (s.running) return;
  if (!fits_sun_path(s.path))
    throw std::system_error(ENAMETOOLONG, std::generic_category(), "control socket " + s.path.string());
  s.remove_stale_socket();

  // bind → chmod 0600 → listen: connecting to a Unix socket needs write permission on its file,
  // and before listen() every connect is refused, so no one but the owner can ever get in.
  error_code ec;
  s.acceptor.emplace(s.executor);
  const stream::endpoint endpoint(s.path.string());
  s.acceptor->open(endpoint.protocol(), ec);
  if (!ec) s.acceptor->bind(endpoint, ec);
  if (ec) {
    s.acceptor.reset();
    throw std::system_error(ec, "control socket " + s.path.string());
  }
  struct stat st {};
  if (::chmod(s.path.c_str(), 0600) != 0 || ::lstat(s.path.c_str(), &st) != 0) {
    const int err = errno;
    s.acceptor.reset();
    ::unlink(s.path.c_str());
    throw std::system_error(err, std::generic_category(), "control socket " + s.path.string() + ": chmod 0600");
  }
  s.bound_dev = st.st_dev;
  s.bound_ino = st.st_ino;
  s.acceptor->listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    s.acceptor.reset();
    ::unlink(s.path.c_str());
    throw std::system_error(ec, "control socket " + s.path.string() + ": listen");
  }
  s.running = true;
  auto self = impl_;
  asio::co_spawn(s.executor, Impl::accept_loop(std::move(self)), asio::detached);
  if (s.log) s.log->info("control socket listening on {}", s.path.string());
}

void ControlServer::stop() {
  Impl& s = *impl_;
  if (!s.running) return;
  s.running = false;
  error_code ignored;
  if (s.acceptor) s.acceptor->close(ignored);
  for (auto* socket : s.connections) socket->close(ignored);
  // Unlink only the file we bound (a newer daemon may have replaced it).
  struct stat st {};
  if (::lstat(s.path.c_str(), &st) == 0 && st.st_dev == s.bound_dev && st.st_ino == s.bound_ino) ::unlink(s.path.c_str());
}

// ---- client ---------------------------------------------------------------------------------

namespace {

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  [[nodiscard]] int get() const { return fd_; }

 private:
  int fd_;
};

// Milliseconds left until `deadline`, at least 0.
int remaining(std::chrono::steady_clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
  return left.count() <= 0 ? 0 : static_cast<int>(std::min<long long>(left.count(), 1 << 30));
}

bool wait_for(int fd, short events, std::chrono::steady_clock::time_point deadline) {
  for (;;) {
    pollfd p{fd, events, 0};
    const int r = ::poll(&p, 1, remaining(deadline));
    if (r > 0) return true;
    if (r == 0) return false;
    if (errno != EINTR) return false;
  }
}

}  // namespace

std::optional<json> control_request(const std::filesystem::path& socket_path, const json& request, std::string& error,
                                    ControlFailure* failure_kind, std::chrono::milliseconds timeout) {
  const auto fail = [&](ControlFailure kind, std::string text) -> std::optional<json> {
    if (failure_kind != nullptr) *failure_kind = kind;
    error = std::move(text);
    return std::nullopt;
  };
  if (failure_kind != nullptr) *failure_kind = ControlFailure::none;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  const std::string where = socket_path.string();
  if (!fits_sun_path(socket_path)) return fail(ControlFailure::failed, where + ": socket path too long");

  Fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (fd.get() < 0) return fail(ControlFailure::failed, std::string("socket: ") + std::strerror(errno));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, where.c_str(), where.size() + 1);
  if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
    const int err = errno;
    if (err == ENOENT || err == ECONNREFUSED)
      return fail(ControlFailure::no_daemon, "no control socket at " + where + " (" + std::strerror(err) + ")");
    if (err != EAGAIN && err != EINPROGRESS) return fail(ControlFailure::failed, "connect " + where + ": " + std::strerror(err));
    // A full backlog: wait for the connection to complete.
    if (!wait_for(fd.get(), POLLOUT, deadline)) return fail(ControlFailure::failed, "connect " + where + ": timed out");
    int so_error = 0;
    socklen_t len = sizeof so_error;
    ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &so_error, &len);
    if (so_error == ECONNREFUSED) return fail(ControlFailure::no_daemon, "nobody listening on " + where);
    if (so_error != 0) return fail(ControlFailure::failed, "connect " + where + ": " + std::strerror(so_error));
  }

  const std::string out = dump_line(request);
  for (std::size_t sent = 0; sent < out.size();) {
    const auto n = ::send(fd.get(), out.data() + sent, out.size() - sent, MSG_NOSIGNAL);
    if (n >= 0) {
      sent += static_cast<std::size_t>(n);
      continue;
    }
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) return fail(ControlFailure::failed, "write " + where + ": " + std::strerror(errno));
    if (!wait_for(fd.get(), POLLOUT, deadline)) return fail(ControlFailure::failed, "write " + where + ": timed out");
  }

  std::string in;
  char buf[16 * 1024];
  for (;;) {
    if (const auto lf = in.find('\n'); lf != std::string::npos) {
      in.resize(lf);
      break;
    }
    if (in.size() > kMaxResponse) return fail(ControlFailure::failed, "answer from " + where + " is too large");
    const auto n = ::recv(fd.get(), buf, sizeof buf, 0);
    if (n > 0) {
      in.append(buf, static_cast<std::size_t>(n));
      continue;
    }
    if (n == 0) return fail(ControlFailure::failed, "the daemon closed the connection without an answer");
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) return fail(ControlFailure::failed, "read " + where + ": " + std::strerror(errno));
    if (!wait_for(fd.get(), POLLIN, deadline)) return fail(ControlFailure::failed, "no answer from the daemon within the time limit");
  }
  json answer = json::parse(in, nullptr, false);
  if (answer.is_discarded() || !answer.is_object()) return fail(ControlFailure::failed, "malformed answer from the daemon");
  return answer;
}

}  // namespace danerelay::relay
