// smtp/client_session.cpp — see client_session.hpp. The protocol steps are narrated in place
// (Beast style); every expected failure is a value, and every loop is bounded by a count or a
// deadline. Spec references are at the step they govern.
#include "smtp/client_session.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <sys/socket.h>

#include <array>
#include <cerrno>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <tuple>
#include <utility>
#include <variant>

#include "smtp/dot_stuffer.hpp"
#include "smtp/syntax.hpp"
#include "tls/openssl_ptr.hpp"

// g++ 12 false positive: it pairs Asio's coroutine-frame operator new (aligned_alloc, inlined)
// with the frame's operator delete (which calls std::free, correctly) and reports a mismatch.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

namespace danerelay::smtp {

namespace asio = boost::asio;
using boost::system::error_code;

struct ClientSession::ReadResult {
  error_code ec;
  Reply reply;
};

// The deadline timer's view of the session ("I/O primitives" below).
struct ClientSession::Watch {
  asio::ip::tcp::socket* socket = nullptr;  // null once the session is gone
  std::uint64_t generation = 0;             // of the step armed last
  bool armed = false;                       // a step is pending
  bool fired = false;                       // its deadline passed: the socket was cancelled
};

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

// Postfix's stage names (smtp_proto.c xfer_states and smtp_helo()), used in "while …" texts.
constexpr std::string_view stage_greeting = "receiving the initial server greeting";
constexpr std::string_view stage_ehlo = "performing the EHLO handshake";
constexpr std::string_view stage_helo = "performing the HELO handshake";
constexpr std::string_view stage_starttls = "receiving the STARTTLS response";
constexpr std::string_view stage_handshake = "performing the TLS handshake";
constexpr std::string_view stage_rset = "sending RSET";
constexpr std::string_view stage_mail = "sending MAIL FROM";
constexpr std::string_view stage_rcpt = "sending RCPT TO";
constexpr std::string_view stage_data = "sending DATA command";
constexpr std::string_view stage_body = "sending message body";
constexpr std::string_view stage_dot = "sending end of data -- message may be sent more than once";

// Bounds on what a peer can make us buffer or loop over.
constexpr std::size_t max_pending_bytes = 64 * 1024;   // received bytes without a line end
constexpr int max_reads_per_reply = 100000;            // besides the deadline
constexpr std::size_t max_body_chunks = std::size_t{1} << 22;

error_code protocol_error() { return make_error_code(boost::system::errc::protocol_error); }

constexpr std::size_t read_chunk = 16 * 1024;

using Clock = std::chrono::steady_clock;

// `Clock::now() + d`, saturating at the end of time (a configured "1000000w" must not wrap).
Clock::time_point deadline_after(Duration d) {
  const Clock::time_point now = Clock::now();
  if (d <= Duration::zero()) return now;
  if (d >= std::chrono::duration_cast<Duration>(Clock::time_point::max() - now)) return Clock::time_point::max();
  return now + d;
}

std::chrono::microseconds since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0);
}

// No CR, LF, NUL or other controls, no angle brackets: a path that cannot smuggle a command.
bool clean_path(std::string_view s) {
  for (unsigned char c : s) {
    if (c < 0x20 || c == 0x7f || c == '<' || c == '>') return false;
  }
  return true;
}

// RFC 3461 §4.1 NOTIFY and §4.3 RET values: letters and commas only.
bool clean_keyword(std::string_view s) {
  for (char c : s) {
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == ',')) return false;
  }
  return true;
}

Disposition disposition_of(const Reply& r) {
  if (r.positive() && r.code < 300) return Disposition::sent;
  if (r.permanent()) return Disposition::bounced;
  return Disposition::deferred;  // 4xx, and a 3xx where none belongs
}

RecipientOutcome outcome_from(const Reply& r, std::string_view command, const std::string& namaddr) {
  RecipientOutcome o;
  o.disposition = disposition_of(r);
  o.reply = r;
  o.command = std::string(command);
  o.text = o.disposition == Disposition::sent ? r.one_line() : host_said(namaddr, r, command);
  return o;
}

RecipientOutcome refused(LocalCheck check, std::string text) {
  RecipientOutcome o;
  o.disposition = Disposition::bounced;
  o.check = check;
  o.text = std::move(text);
  return o;
}

RecipientOutcome broken_by(const HostFailure& f) {
  RecipientOutcome o;
  o.disposition = Disposition::deferred;
  o.broken = f.kind;
  o.text = f.text;
  return o;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Small vocabulary

std::string_view to_string(LocalCheck check) noexcept {
  switch (check) {
    case LocalCheck::smtputf8_not_offered: return "smtputf8_not_offered";
    case LocalCheck::size_exceeded: return "size_exceeded";
    case LocalCheck::bad_sender_syntax: return "bad_sender_syntax";
    case LocalCheck::bad_recipient_syntax: return "bad_recipient_syntax";
  }
  return "?";
}

std::string_view to_string(HostFailure::Kind kind) noexcept {
  using K = HostFailure::Kind;
  switch (kind) {
    case K::policy_defer: return "policy_defer";
    case K::connect: return "connect";
    case K::lost_connection: return "lost_connection";
    case K::timeout: return "timeout";
    case K::protocol: return "protocol";
    case K::greeting_rejected: return "greeting_rejected";
    case K::helo_rejected: return "helo_rejected";
    case K::tls_not_offered: return "tls_not_offered";
    case K::starttls_rejected: return "starttls_rejected";
    case K::tls_injection: return "tls_injection";
    case K::tls_handshake: return "tls_handshake";
    case K::tls_authentication: return "tls_authentication";
    case K::local: return "local";
  }
  return "unknown";
}

std::string_view to_string(Disposition disposition) noexcept {
  switch (disposition) {
    case Disposition::sent: return "sent";
    case Disposition::deferred: return "deferred";
    case Disposition::bounced: return "bounced";
  }
  return "unknown";
}

std::string host_said(std::string_view namaddr, const Reply& reply, std::string_view command) {
  return "host " + std::string(namaddr) + " said: " + reply.one_line() + " (in reply to " + std::string(command) +
         " command)";
}

BodySource BodySource::from_string(std::string text) {
  auto state = std::make_shared<std::pair<std::string, std::size_t>>(std::move(text), 0);
  return BodySource([state](std::span<char> buffer, std::string&) -> std::optional<std::size_t> {
    const std::size_t n = std::min(buffer.size(), state->first.size() - state->second);
    state->first.copy(buffer.data(), n, state->second);
    state->second += n;
    return n;
  });
}

BodySource BodySource::from_file(std::filesystem::path path, std::uint64_t offset, std::uint64_t length) {
  auto stream = std::make_shared<std::ifstream>();
  auto left = std::make_shared<std::uint64_t>(length);
  return BodySource([stream, left, offset, path = std::move(path)](std::span<char> buffer,
                                                                   std::string& error) -> std::optional<std::size_t> {
    if (!stream->is_open()) {
      stream->open(path, std::ios::binary);
      if (!stream->is_open()) {
        error = "cannot open message file " + path.string();
        return std::nullopt;
      }
      stream->seekg(static_cast<std::streamoff>(offset));
    }
    const auto want = static_cast<std::size_t>(std::min<std::uint64_t>(buffer.size(), *left));
    if (want == 0) return 0;
    stream->read(buffer.data(), static_cast<std::streamsize>(want));
    if (stream->bad() || (*left != UINT64_MAX && static_cast<std::size_t>(stream->gcount()) < want)) {
      error = "cannot read message file " + path.string();
      return std::nullopt;
    }
    const auto got = static_cast<std::size_t>(stream->gcount());
    if (*left != UINT64_MAX) *left -= got;
    return got;
  });
}

// ---------------------------------------------------------------------------------------------
// Session

ClientSession::ClientSession(asio::any_io_executor executor, asio::ssl::context& tls_context, tls::HostPolicy policy,
                             SessionOptions options)
    : executor_(executor),
      tls_context_(tls_context),
      policy_(std::move(policy)),
      options_(std::move(options)),
      socket_(executor),
      deadline_timer_(executor),
      watch_(std::make_shared<Watch>()) {
  watch_->socket = &socket_;
  const std::string address = options_.peer.address().to_string();
  namaddr_ = (options_.host_name.empty() ? address : options_.host_name) + "[" + address + "]";
}

ClientSession::~ClientSession() {
  watch_->socket = nullptr;  // a timer handler still queued must not touch the socket
  close();
}

std::string ClientSession::namaddr_port() const {
  const std::string address = options_.peer.address().to_string();
  return tls::format_namaddr(options_.host_name.empty() ? address : options_.host_name, address, options_.peer.port());
}

bool ClientSession::idle_intact() noexcept {
  if (!reusable() || !rbuf_.empty()) return false;
  if (tls_active_ && tls_ && SSL_pending(tls_->native_handle()) > 0) return false;
  char byte = 0;
  const ssize_t n = ::recv(socket_.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK;  // nothing to read: still idle
  return false;  // 0: the peer closed; > 0: it said something while nobody asked
}

void ClientSession::close() noexcept {
  error_code ignored;
  socket_.shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
  socket_.close(ignored);
  state_ = State::closed;
}

HostFailure ClientSession::io_failure(const error_code& ec, std::string_view stage) {
  HostFailure f;
  f.stage = std::string(stage);
  if (ec == asio::error::timed_out) {
    f.kind = HostFailure::Kind::timeout;
    f.text = "conversation with " + namaddr_ + " timed out while " + f.stage;
  } else if (ec == protocol_error()) {
    f.kind = HostFailure::Kind::protocol;
    f.text = "host " + namaddr_ + " sent a malformed reply while " + f.stage + ": " + protocol_error_;
  } else {
    f.kind = HostFailure::Kind::lost_connection;
    f.text = "lost connection with " + namaddr_ + " while " + f.stage;
  }
  close();
  return f;
}

HostFailure ClientSession::reply_failure(HostFailure::Kind kind, const Reply& reply, std::string_view stage) {
  HostFailure f;
  f.kind = kind;
  f.stage = std::string(stage);
  f.reply = reply;
  f.text = "host " + namaddr_ + " refused to talk to me: " + reply.one_line();
  return f;
}

// ---- I/O primitives: one deadline per step (RFC 5321 §4.5.3.2), one timer per session -------
//
// Each step — connect, a write, the reads of one reply, the TLS handshake — is ONE direct
// operation on the socket, under one deadline timer that lives as long as the session (issue 12
// §2; before, each step was `co_await (op || timer.async_wait())`: two co_spawns, a parallel group
// and a timer per operation, and every read a 16 KiB coroutine frame too big for Asio's frame
// cache). arm() starts the timer's wait for the step's deadline; disarm() cancels it when the
// operation completes. On expiry with the step still pending the handler cancels the socket's
// operations; the step sees operation_aborted and timed() turns that into asio::error::timed_out,
// what the callers have always seen. Unlike the inbound session (one run() from start to end,
// with a watchdog coroutine beside it) a client session lives between calls — idle in the
// connection cache, destroyed whenever the cache says — so the timer's handler is a plain
// callback that holds the Watch (shared), not the session: the session's destructor clears
// Watch::socket, and a generation number makes a handler that was already queued for an earlier
// step (expired just as its operation completed) do nothing. (Watch is defined at the top.)

void ClientSession::arm(Clock::time_point deadline) {
  Watch& w = *watch_;
  ++w.generation;
  w.armed = true;
  w.fired = false;
  deadline_timer_.expires_at(deadline);
  deadline_timer_.async_wait([watch = watch_, generation = w.generation](const error_code& ec) {
    if (ec || watch->generation != generation || !watch->armed || watch->socket == nullptr) return;
    watch->fired = true;
    error_code ignored;
    watch->socket->cancel(ignored);
  });
}

void ClientSession::disarm() {
  watch_->armed = false;
  deadline_timer_.cancel();  // no wait left behind: an io_context with only idle sessions can run out of work
}

error_code ClientSession::timed(const error_code& ec) const {
  if (ec == asio::error::operation_aborted && watch_->fired) return asio::error::timed_out;
  return ec;
}

asio::awaitable<error_code> ClientSession::write_all(std::string_view data, Duration limit) {
  if (!socket_.is_open()) co_return asio::error::not_connected;
  arm(deadline_after(limit));
  error_code ec;
  if (tls_active_) {
    std::tie(ec, std::ignore) = co_await asio::async_write(*tls_, asio::buffer(data.data(), data.size()), use_tuple);
  } else {
    std::tie(ec, std::ignore) = co_await asio::async_write(socket_, asio::buffer(data.data(), data.size()), use_tuple);
  }
  disarm();
  ec = timed(ec);
  if (ec == asio::error::timed_out) close();
  co_return ec;
}

asio::awaitable<error_code> ClientSession::read_more(Clock::time_point deadline) {
  if (!socket_.is_open()) co_return asio::error::not_connected;
  if (Clock::now() >= deadline) {
    close();
    co_return asio::error::timed_out;
  }
  if (!read_buffer_) read_buffer_ = std::make_unique_for_overwrite<char[]>(read_chunk);
  const auto buf = asio::buffer(read_buffer_.get(), read_chunk);
  arm(deadline);
  error_code ec;
  std::size_t n = 0;
  if (tls_active_) {
    std::tie(ec, n) = co_await tls_->async_read_some(buf, use_tuple);
  } else {
    std::tie(ec, n) = co_await socket_.async_read_some(buf, use_tuple);
  }
  disarm();
  ec = timed(ec);
  if (ec == asio::error::timed_out) {
    close();
    co_return ec;
  }
  if (ec) co_return ec;
  rbuf_.append(read_buffer_.get(), n);
  co_return error_code{};
}

std::optional<std::string> ClientSession::take_line() {
  const auto lf = rbuf_.find('\n');
  if (lf == std::string::npos) return std::nullopt;
  std::string line = rbuf_.substr(0, lf);
  rbuf_.erase(0, lf + 1);
  if (!line.empty() && line.back() == '\r') line.pop_back();  // lenient: bare LF ends a reply line too
  return line;
}

asio::awaitable<ClientSession::ReadResult> ClientSession::read_reply(Duration limit) {
  // One deadline for the whole (possibly multi-line) reply; RFC 5321 §4.2.1 multi-line replies
  // are assembled by the sans-I/O parser.
  const Clock::time_point deadline = deadline_after(limit);
  for (int reads = 0; reads < max_reads_per_reply; ++reads) {
    while (auto line = take_line()) {
      switch (parser_.feed(*line)) {
        case ReplyParser::Status::complete: {
          Reply reply = parser_.take();
          if (reply.code == 421) closing_ = true;  // RFC 5321 §3.8: the server is closing the channel
          co_return ReadResult{{}, std::move(reply)};
        }
        case ReplyParser::Status::malformed:
          protocol_error_ = parser_.error();
          parser_ = ReplyParser{};
          co_return ReadResult{protocol_error(), {}};
        case ReplyParser::Status::need_more: break;
      }
    }
    if (rbuf_.size() > max_pending_bytes) {
      protocol_error_ = "reply line longer than " + std::to_string(max_pending_bytes) + " bytes";
      co_return ReadResult{protocol_error(), {}};
    }
    const error_code ec = co_await read_more(deadline);
    if (ec) co_return ReadResult{ec, {}};
  }
  protocol_error_ = "reply arrives in too many pieces";
  co_return ReadResult{protocol_error(), {}};
}

asio::awaitable<ClientSession::ReadResult> ClientSession::chat(std::string_view command, Duration limit) {
  const error_code ec = co_await write_all(command, limit);
  if (ec) co_return ReadResult{ec, {}};
  co_return co_await read_reply(limit);
}

// ---- Connection set-up ----------------------------------------------------------------------

asio::awaitable<std::optional<HostFailure>> ClientSession::open() {
  if (state_ != State::fresh) throw std::logic_error("ClientSession::open() called twice");
  const auto t0 = std::chrono::steady_clock::now();

  // RFC 7672 §2.2 / D-13: a host the policy defers is not contacted at all.
  if (policy_.requirement == tls::Requirement::defer) {
    state_ = State::closed;
    HostFailure f;
    f.kind = HostFailure::Kind::policy_defer;
    f.text = policy_.reason;
    co_return f;
  }

  // 1. TCP connect, from the configured source address, within the connect timeout.
  auto connect_failure = [&](const error_code& ec) {
    HostFailure f;
    f.kind = HostFailure::Kind::connect;
    f.stage = "connecting";
    f.text = "connect to " + namaddr_port() + ": " + ec.message();
    close();
    return f;
  };
  error_code ec;
  socket_.open(options_.peer.protocol(), ec);
  if (!ec && options_.source) socket_.bind(asio::ip::tcp::endpoint(*options_.source, 0), ec);
  if (ec) co_return connect_failure(ec);
  {
    arm(deadline_after(options_.timeouts.connect));
    const auto [connect_ec] = co_await socket_.async_connect(options_.peer, use_tuple);
    disarm();
    if (const error_code cec = timed(connect_ec)) co_return connect_failure(cec);
  }
  // No Nagle: a pipelined batch or the last body chunk must not wait for a delayed ACK.
  socket_.set_option(asio::ip::tcp::no_delay(true), ec);

  auto failure = co_await negotiate();
  setup_time_ = since(t0);
  if (failure) {
    // A refusal in words leaves the conversation sane: say QUIT. I/O failures already closed.
    if (socket_.is_open()) co_await quit();
    state_ = State::closed;
    co_return failure;
  }
  state_ = State::ready;
  co_return std::nullopt;
}

asio::awaitable<std::optional<HostFailure>> ClientSession::negotiate() {
  // 2. The greeting (RFC 5321 §3.1, §4.5.3.2.1). Postfix smtp_skip_5xx_greeting: a 5xx greeting
  //    is a reason to try another host, so it is reported with a 4.x.x code.
  auto greeting = co_await read_reply(options_.timeouts.greeting);
  if (greeting.ec) co_return io_failure(greeting.ec, stage_greeting);
  if (!greeting.reply.positive() || greeting.reply.code >= 300) {
    co_return reply_failure(HostFailure::Kind::greeting_rejected, greeting.reply, stage_greeting);
  }

  // 3. EHLO (HELO only where plaintext is allowed).
  if (auto f = co_await hello(false)) co_return f;

  // 4. STARTTLS when offered and the policy uses TLS at all.
  if (policy_.requirement != tls::Requirement::none && caps_.starttls) {
    if (auto f = co_await start_tls()) co_return f;
  }

  // 5. RFC 7672 §2.2 (D-10, D-11): when TLS is required, never go on in plaintext.
  if (!tls_active_ && policy_.tls_required()) {
    HostFailure f;
    f.kind = HostFailure::Kind::tls_not_offered;
    f.stage = stage_ehlo;
    f.text = "TLS is required, but was not offered by host " + namaddr_;
    co_return f;
  }
  co_return std::nullopt;
}

asio::awaitable<std::optional<HostFailure>> ClientSession::hello(bool after_tls) {
  const std::string ehlo = "EHLO " + options_.helo_name + "\r\n";
  auto r = co_await chat(ehlo, options_.timeouts.ehlo);
  if (r.ec) co_return io_failure(r.ec, stage_ehlo);
  if (r.reply.positive() && r.reply.code < 300) {
    caps_ = Capabilities::parse(r.reply);
    co_return std::nullopt;
  }
  if (r.reply.code == 421) co_return reply_failure(HostFailure::Kind::helo_rejected, r.reply, stage_ehlo);

  // RFC 5321 §4.1.1.1: a server without EHLO gets HELO — but HELO has no STARTTLS, so where the
  // policy requires TLS and it is not up yet, this host cannot be used.
  if (!after_tls && policy_.tls_required()) {
    HostFailure f;
    f.kind = HostFailure::Kind::tls_not_offered;
    f.stage = stage_ehlo;
    f.reply = r.reply;
    f.text = "TLS is required, but was not offered by host " + namaddr_;
    co_return f;
  }
  const std::string helo = "HELO " + options_.helo_name + "\r\n";
  auto h = co_await chat(helo, options_.timeouts.ehlo);
  if (h.ec) co_return io_failure(h.ec, stage_helo);
  if (!h.reply.positive() || h.reply.code >= 300) {
    co_return reply_failure(HostFailure::Kind::helo_rejected, h.reply, stage_helo);
  }
  caps_ = Capabilities{};
  co_return std::nullopt;
}

asio::awaitable<std::optional<HostFailure>> ClientSession::start_tls() {
  const Duration limit = options_.timeouts.starttls;
  auto r = co_await chat("STARTTLS\r\n", limit);
  if (r.ec) co_return io_failure(r.ec, stage_starttls);
  if (!r.reply.positive() || r.reply.code >= 300) {
    if (policy_.tls_required()) {
      HostFailure f;
      f.kind = HostFailure::Kind::starttls_rejected;
      f.stage = stage_starttls;
      f.reply = r.reply;
      f.text = "TLS is required, but host " + namaddr_ + " refused to start TLS: " + r.reply.one_line();
      co_return f;
    }
    co_return std::nullopt;  // opportunistic: go on in plaintext on this connection (Postfix does too)
  }

  // RFC 3207 §5 and the "NO STARTTLS" response-injection attacks: the server may not send
  // anything after its 220 until the handshake. Bytes already buffered (by us or the kernel)
  // would be read as if they came over TLS — abort, never hand them to the TLS layer.
  error_code aec;
  const std::size_t kernel_pending = socket_.available(aec);
  if (!rbuf_.empty() || kernel_pending > 0) {
    HostFailure f;
    f.kind = HostFailure::Kind::tls_injection;
    f.stage = stage_starttls;
    f.text = "Cannot start TLS: host " + namaddr_ + " sent " + std::to_string(rbuf_.size() + kernel_pending) +
             " bytes after its STARTTLS reply (response injection)";
    close();
    co_return f;
  }

  // The SSL object shares the TCP socket; the per-host DANE/PKIX policy goes in before the
  // handshake (tls/dane_session.hpp), the verdict comes out after it (tls/peer_report.hpp).
  tls_.emplace(socket_, tls_context_);
  try {
    setup_ = tls::configure_session(tls_->native_handle(), policy_);
  } catch (const std::exception& e) {
    HostFailure f;
    f.kind = HostFailure::Kind::local;
    f.stage = stage_handshake;
    f.text = std::string("Cannot start TLS: ") + e.what();
    close();
    co_return f;
  }

  error_code hec;
  const auto handshake_started = std::chrono::steady_clock::now();
  {
    arm(deadline_after(limit));
    const auto [handshake_ec] = co_await tls_->async_handshake(asio::ssl::stream_base::client, use_tuple);
    disarm();
    hec = timed(handshake_ec);
  }
  handshake_time_ = since(handshake_started);
  const bool auth_required =
      setup_->requirement == tls::Requirement::dane || setup_->requirement == tls::Requirement::pkix;
  if (hec) {
    std::string why = hec.message();
    if (const std::string queue = tls::drain_openssl_errors(); !queue.empty()) why += "; " + queue;
    report_ = tls::inspect_peer(tls_->native_handle(), policy_, *setup_, why);
    HostFailure f;
    f.stage = stage_handshake;
    if (auth_required && report_->verify_failure) {
      // The verifier aborted the handshake (D-39, D-45): an authentication failure, never a
      // reason to try plaintext.
      f.kind = HostFailure::Kind::tls_authentication;
      f.text = "Server certificate not verified";
    } else {
      f.kind = HostFailure::Kind::tls_handshake;
      f.text = "Cannot start TLS: handshake failure";
    }
    close();
    co_return f;
  }
  tls_active_ = true;
  report_ = tls::inspect_peer(tls_->native_handle(), policy_, *setup_);
  if (auth_required && !report_->authenticated) {
    HostFailure f;
    f.kind = HostFailure::Kind::tls_authentication;
    f.stage = stage_handshake;
    f.text = setup_->requirement == tls::Requirement::pkix && report_->trust < tls::Trust::trusted
                 ? "Server certificate not trusted"
                 : "Server certificate not verified";
    co_return f;  // TLS is up: open() says QUIT over it
  }

  // RFC 3207 §4.2: forget everything learned before TLS; ask again.
  caps_ = Capabilities{};
  co_return co_await hello(true);
}

// ---- Mail transactions ------------------------------------------------------------------------

asio::awaitable<TransactionResult> ClientSession::send(const MailSpec& mail, BodySource& body) {
  TransactionResult res;
  const std::size_t n = mail.recipients.size();
  res.recipients.resize(n);
  std::vector<bool> decided(n, false);
  auto decide = [&](std::size_t i, RecipientOutcome o) {
    res.recipients[i] = std::move(o);
    decided[i] = true;
  };
  auto decide_rest = [&](const RecipientOutcome& o) {
    for (std::size_t i = 0; i < n; ++i) {
      if (!decided[i]) decide(i, o);
    }
  };
  auto fail = [&](HostFailure f) {
    decide_rest(broken_by(f));
    res.failure = std::move(f);
    state_ = State::broken;
    close();
  };

  if (!reusable()) {
    HostFailure f;
    f.kind = HostFailure::Kind::local;
    f.text = "connection with " + namaddr_ + " is not usable";
    decide_rest(broken_by(f));
    res.failure = std::move(f);
    co_return res;
  }
  const auto t0 = std::chrono::steady_clock::now();
  res.connection_use = transactions_ + 1;
  res.setup = transactions_ == 0 ? setup_time_ : std::chrono::microseconds{0};
  auto finish = [&] {
    ++transactions_;
    res.transmission = since(t0);
  };

  // Local checks before any command: what this server cannot take is bounced without MAIL.
  if (mail.smtputf8 && !caps_.smtputf8) {  // RFC 6531 §3.4
    decide_rest(refused(LocalCheck::smtputf8_not_offered,
                              "SMTPUTF8 is required, but was not offered by host " + namaddr_));
    finish();
    co_return res;
  }
  if (caps_.size && *caps_.size > 0 && mail.size > *caps_.size) {  // RFC 1870 §6.1
    decide_rest(refused(LocalCheck::size_exceeded,
                              "message size " + std::to_string(mail.size) + " exceeds size limit " +
                                  std::to_string(*caps_.size) + " of server " + namaddr_));
    finish();
    co_return res;
  }
  if (!clean_path(mail.sender) || !clean_keyword(mail.ret)) {
    decide_rest(refused(LocalCheck::bad_sender_syntax, "bad sender address syntax"));
    finish();
    co_return res;
  }
  std::vector<std::size_t> active;  // recipients that get a RCPT command
  for (std::size_t i = 0; i < n; ++i) {
    const auto& r = mail.recipients[i];
    if (r.address.empty() || !clean_path(r.address) || !clean_keyword(r.notify) || !clean_path(r.orcpt)) {
      decide(i, refused(LocalCheck::bad_recipient_syntax, "bad recipient address syntax"));
    } else {
      active.push_back(i);
    }
  }
  if (active.empty()) {
    finish();
    co_return res;
  }

  // RSET when the previous transaction may have left state behind (RFC 5321 §4.1.1.5).
  if (needs_rset_) {
    auto r = co_await chat("RSET\r\n", options_.timeouts.rset);
    if (r.ec) {
      fail(io_failure(r.ec, stage_rset));
      co_return res;
    }
    if (r.reply.code / 100 != 2) {
      HostFailure f;
      f.kind = HostFailure::Kind::protocol;
      f.stage = std::string(stage_rset);
      f.reply = r.reply;
      f.text = host_said(namaddr_, r.reply, "RSET");
      fail(std::move(f));
      co_return res;
    }
    needs_rset_ = false;
  }

  // The commands. MAIL parameters only for extensions the server announced.
  std::string mail_cmd = "MAIL FROM:<" + mail.sender + ">";
  if (caps_.size && mail.size > 0) mail_cmd += " SIZE=" + std::to_string(mail.size);       // RFC 1870
  if (mail.eightbit && caps_.eightbitmime) mail_cmd += " BODY=8BITMIME";                    // RFC 6152
  if (mail.smtputf8) mail_cmd += " SMTPUTF8";                                                // RFC 6531 §3.4
  if (caps_.dsn) {                                                                           // RFC 3461 §4.3, §4.4
    if (!mail.ret.empty()) mail_cmd += " RET=" + mail.ret;
    if (!mail.envid.empty()) mail_cmd += " ENVID=" + syntax::xtext_encode(mail.envid);
  }
  mail_cmd += "\r\n";
  std::vector<std::string> rcpt_cmds;
  for (std::size_t i : active) {
    const auto& r = mail.recipients[i];
    std::string c = "RCPT TO:<" + r.address + ">";
    if (caps_.dsn) {  // RFC 3461 §4.1, §4.2
      if (!r.notify.empty()) c += " NOTIFY=" + r.notify;
      if (const auto semi = r.orcpt.find(';'); semi != std::string::npos) {
        c += " ORCPT=" + r.orcpt.substr(0, semi) + ";" + syntax::xtext_encode(std::string_view(r.orcpt).substr(semi + 1));
      }
    }
    rcpt_cmds.push_back(c + "\r\n");
  }

  needs_rset_ = true;  // until the transaction is known to be over
  res.mail_sent = true;
  std::optional<Reply> mail_reply;
  std::vector<std::optional<Reply>> rcpt_replies(active.size());
  std::optional<Reply> data_reply;
  std::size_t accepted = 0;

  if (caps_.pipelining) {
    // RFC 2920 §3.1: MAIL, the RCPTs and DATA in one write (one TCP segment where they fit);
    // then the replies, in order.
    std::string batch = mail_cmd;
    for (const auto& c : rcpt_cmds) batch += c;
    batch += "DATA\r\n";
    if (auto ec = co_await write_all(batch, options_.timeouts.mail)) {
      fail(io_failure(ec, stage_mail));
      co_return res;
    }
    auto m = co_await read_reply(options_.timeouts.mail);
    if (m.ec) {
      fail(io_failure(m.ec, stage_mail));
      co_return res;
    }
    mail_reply = m.reply;
    for (std::size_t k = 0; k < active.size(); ++k) {
      auto r = co_await read_reply(options_.timeouts.rcpt);
      if (r.ec) {
        fail(io_failure(r.ec, stage_rcpt));
        co_return res;
      }
      rcpt_replies[k] = r.reply;
      if (r.reply.code / 100 == 2) ++accepted;
    }
    auto d = co_await read_reply(options_.timeouts.data_init);
    if (d.ec) {
      fail(io_failure(d.ec, stage_data));
      co_return res;
    }
    data_reply = d.reply;
  } else {
    // RFC 5321 §3.3: one command, one reply; stop at the first reason to.
    auto m = co_await chat(mail_cmd, options_.timeouts.mail);
    if (m.ec) {
      fail(io_failure(m.ec, stage_mail));
      co_return res;
    }
    mail_reply = m.reply;
    if (m.reply.code / 100 == 2) {
      for (std::size_t k = 0; k < active.size(); ++k) {
        auto r = co_await chat(rcpt_cmds[k], options_.timeouts.rcpt);
        if (r.ec) {
          fail(io_failure(r.ec, stage_rcpt));
          co_return res;
        }
        rcpt_replies[k] = r.reply;
        if (r.reply.code / 100 == 2) ++accepted;
      }
      if (accepted > 0) {
        auto d = co_await chat("DATA\r\n", options_.timeouts.data_init);
        if (d.ec) {
          fail(io_failure(d.ec, stage_data));
          co_return res;
        }
        data_reply = d.reply;
      }
    }
  }

  // Who is decided by what: a refused MAIL decides everyone (RFC 5321 §4.1.1.2), a refused RCPT
  // that recipient, a refused DATA every accepted recipient.
  const bool data_go = data_reply && data_reply->code / 100 == 3;
  if (mail_reply->code / 100 != 2) {
    decide_rest(outcome_from(*mail_reply, "MAIL FROM", namaddr_));
  } else {
    for (std::size_t k = 0; k < active.size(); ++k) {
      if (rcpt_replies[k] && rcpt_replies[k]->code / 100 != 2) {
        decide(active[k], outcome_from(*rcpt_replies[k], "RCPT TO", namaddr_));
      }
    }
    if (accepted > 0 && !data_go && data_reply) decide_rest(outcome_from(*data_reply, "DATA", namaddr_));
  }
  if (data_go && (accepted == 0 || mail_reply->code / 100 != 2)) {
    // RFC 2920 §3.1: a server that says 354 with no valid recipient gets an empty message end
    // — never the body.
    auto e = co_await chat(".\r\n", options_.timeouts.data_done);
    if (e.ec) {
      fail(io_failure(e.ec, stage_dot));
      co_return res;
    }
    finish();
    co_return res;
  }
  if (!data_go) {
    finish();
    co_return res;
  }

  // The message, dot-stuffed, with the final "." in the same write as the last data.
  res.body_sent = true;
  if (auto f = co_await send_body(body)) {
    fail(std::move(*f));
    co_return res;
  }
  auto done = co_await read_reply(options_.timeouts.data_done);
  if (done.ec) {
    fail(io_failure(done.ec, stage_dot));
    co_return res;
  }
  needs_rset_ = false;  // RFC 5321 §4.1.1.4: the reply to "." ends the transaction either way
  decide_rest(outcome_from(done.reply, "end of DATA", namaddr_));
  finish();
  co_return res;
}

asio::awaitable<std::optional<HostFailure>> ClientSession::send_body(BodySource& body) {
  // Read one chunk ahead: when the next read says "end", the current chunk is written together
  // with CRLF "." CRLF (no separate tiny write for Nagle and delayed ACK to stall on).
  auto local_failure = [&](const std::string& why) {
    HostFailure f;
    f.kind = HostFailure::Kind::local;
    f.stage = std::string(stage_body);
    f.text = why;
    close();  // never send the final "." for a message we could not read completely
    return f;
  };
  std::vector<char> current(std::max<std::size_t>(options_.body_chunk, 512));
  std::vector<char> next(current.size());
  DotStuffer stuffer;
  std::string out;
  auto got = body.read(current);
  if (!got) co_return local_failure(body.error());
  for (std::size_t chunks = 0; chunks < max_body_chunks; ++chunks) {
    out.clear();
    stuffer.feed(std::string_view(current.data(), *got), out);
    std::optional<std::size_t> ahead = std::size_t{0};
    if (*got > 0) {
      ahead = body.read(next);
      if (!ahead) co_return local_failure(body.error());
    }
    const bool last = *ahead == 0;
    if (last) stuffer.finish(out);  // RFC 5321 §4.1.1.4 end of mail data
    if (auto ec = co_await write_all(out, options_.timeouts.data_block)) {
      co_return io_failure(ec, last ? stage_dot : stage_body);
    }
    if (last) co_return std::nullopt;
    std::swap(current, next);
    got = ahead;
  }
  co_return local_failure("message body too large");
}

asio::awaitable<void> ClientSession::quit() {
  if (socket_.is_open()) {
    // RFC 5321 §4.1.1.10. The reply does not matter; its wait is bounded.
    auto r = co_await chat("QUIT\r\n", options_.timeouts.quit);
    (void)r;
  }
  close();
}

}  // namespace danerelay::smtp
