// smtp/server_session.cpp — see server_session.hpp. The conversation is narrated in place; every
// expected failure is a value; every loop is bounded by a count, a buffer limit or a deadline.
#include "smtp/server_session.hpp"

#include <openssl/crypto.h>
#include <openssl/ssl.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/experimental/parallel_group.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <ctime>
#include <optional>
#include <tuple>
#include <variant>
#include <vector>

#include "dns/client_name_lookup.hpp"
#include "smtp/command.hpp"
#include "smtp/data_reader.hpp"
#include "smtp/deadline.hpp"
#include "smtp/sasl.hpp"
#include "smtp/syntax.hpp"
#include "tls/server_context.hpp"

// g++ 12 false positive: it pairs Asio's coroutine-frame operator new (aligned_alloc, inlined)
// with the frame's operator delete (which calls std::free, correctly) and reports a mismatch.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

namespace danerelay::smtp {

namespace asio = boost::asio;
using asio::ip::tcp;
using boost::system::error_code;
using Clock = std::chrono::steady_clock;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

// RFC 4954 §4: an AUTH command line or SASL response may be 12288 octets (with CRLF).
constexpr std::size_t max_auth_line = 12288;
// MAIL/RCPT parameters raise the §4.5.3.1.4 limit (RFC 1870 §6 SIZE +26, RFC 3461 §4 +100/+500,
// RFC 4954 §5 AUTH= +500): allow this much more than limits.max_command_length for them.
constexpr std::size_t mail_rcpt_extension_allowance = 1024;
constexpr std::size_t read_chunk = 16 * 1024;
// Between commands a session keeps at most this much buffer capacity; more (after DATA, a long
// pipelined burst) is given back when it goes idle (issue 12 §3: idle sessions must be small).
constexpr std::size_t idle_buffer_keep = 1024;
// Wake-ups without data in one plain read (readiness can be spurious); each waits for readiness,
// and the deadline bounds them in time as well.
constexpr int max_empty_wakeups = 1000;
constexpr std::size_t max_pending_replies = 64 * 1024;  // flush the reply buffer beyond this
constexpr int max_commands = 1000000;                   // per connection, besides every other limit
constexpr std::size_t max_data_reads = std::size_t{1} << 26;
constexpr int junk_command_limit = 100;                 // Postfix smtpd_junk_command_limit
constexpr auto final_write_limit = std::chrono::seconds(10);  // 421/521 on the way out

// What a client sent, safe for a log line: printable ASCII, bounded.
std::string printable(std::string_view s, std::size_t limit = 100) {
  std::string out;
  for (unsigned char c : s.substr(0, limit)) out.push_back(c >= 32 && c < 127 ? static_cast<char>(c) : '?');
  if (s.size() > limit) out += "...";
  return out;
}

// `from` + `d`, saturating at the end of time (a configured "1000000w" must not wrap around).
Clock::time_point deadline_after(Clock::time_point from, config::Duration d) {
  if (d <= config::Duration::zero()) return from;
  if (d >= std::chrono::duration_cast<config::Duration>(Clock::time_point::max() - from)) return Clock::time_point::max();
  return from + d;
}

int reply_code(std::string_view line) {
  if (line.size() < 3) return 0;
  return (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
}

// Postfix's per-command counters for the disconnect line, in its order.
enum Counter { c_helo, c_ehlo, c_starttls, c_auth, c_mail, c_rcpt, c_data, c_bdat, c_rset, c_noop, c_vrfy, c_etrn, c_quit, c_unknown, c_count };
constexpr std::array<const char*, c_count> counter_names{"helo", "ehlo", "starttls", "auth", "mail", "rcpt", "data",
                                                         "bdat", "rset", "noop", "vrfy", "etrn", "quit", "unknown"};

Counter counter_for(Verb v) {
  switch (v) {
    case Verb::helo: return c_helo;
    case Verb::ehlo: return c_ehlo;
    case Verb::starttls: return c_starttls;
    case Verb::auth: return c_auth;
    case Verb::mail: return c_mail;
    case Verb::rcpt: return c_rcpt;
    case Verb::data: return c_data;
    case Verb::bdat: return c_bdat;
    case Verb::rset: return c_rset;
    case Verb::noop: return c_noop;
    case Verb::vrfy: return c_vrfy;
    case Verb::etrn: return c_etrn;
    case Verb::quit: return c_quit;
    default: return c_unknown;
  }
}

}  // namespace

// ---------------------------------------------------------------------------------------------

AuthPool::AuthPool(std::size_t threads) : pool_(threads == 0 ? 1 : threads) {}
AuthPool::~AuthPool() { pool_.join(); }

// ---------------------------------------------------------------------------------------------

struct ServerSession::Impl {
  struct Outcome {
    bool go_on = true;  // false: the session is over
    bool ok = false;    // the command succeeded (for the disconnect counters)
  };

  // What reading one line produced.
  enum class LineStatus { ok, too_long, bad_bytes, bare_lf, timeout, closed };
  struct Line {
    LineStatus status = LineStatus::closed;
    std::string text;
  };

  Impl(tcp::socket s, std::shared_ptr<const ServerSettings> st, MessageStore& m, std::optional<asio::ip::address> client)
      : socket(std::move(s)), executor(socket.get_executor()), watchdog_timer(executor), settings(std::move(st)),
        store(m), log(settings->log ? settings->log : spdlog::default_logger()), hostname(settings->hostname) {
    error_code ec;
    // Plain reads are tried at once and return would_block when the client has sent nothing
    // (read_more); Asio's own operations (writes, TLS) behave the same either way.
    socket.non_blocking(true, ec);
    ec.clear();
    // The client a PROXY header named, or the peer itself.
    auto address = client ? *client : socket.remote_endpoint(ec).address();
    if (address.is_v6() && address.to_v6().is_v4_mapped()) {
      address = asio::ip::make_address_v4(asio::ip::v4_mapped, address.to_v6());
    }
    if (!ec) {
      client_address = address.to_string();
      if (address.is_v4()) {
        const auto b = address.to_v4().to_bytes();
        address_bytes.assign(b.begin(), b.end());
      } else {
        const auto b = address.to_v6().to_bytes();
        address_bytes.assign(b.begin(), b.end());
      }
    } else {
      client_address = "unknown";
    }
    namaddr = client_name + "[" + client_address + "]";
    received_address = address.is_v6() ? "IPv6:" + client_address : client_address;
    // Started now, at accept; awaited (bounded) before the first log line in run().
    if (!ec && settings->reverse_lookup && settings->resolver != nullptr) {
      if (const auto ip = dns::IpAddress::parse(client_address)) {
        name_lookup = std::make_unique<dns::ClientNameLookup>(executor, settings->resolver, *ip,
                                                              settings->reverse_lookup_timeout);
      }
    }
  }

  // ---- I/O -------------------------------------------------------------------------------------
  //
  // Time limits (issue 12 §2). Each timed step — a read, a write, the TLS handshake — is ONE
  // direct operation on the socket. The session has one timer and one watchdog coroutine for its
  // whole life (started by run()); a step only writes its deadline into `step_deadline` (arm)
  // and clears it when the operation completes (disarm). When the deadline passes with the step
  // still pending, the watchdog sets `step_timed_out` and cancels the socket's operations; the
  // step sees operation_aborted and reports asio::error::timed_out (timed()), which is what the
  // callers have always seen. Before this, every step was `co_await (op || timer.async_wait())`:
  // a co_spawn per branch, a timer constructed and destroyed, several allocations per command.
  //
  // The watchdog sleeps until the timer's expiry and re-reads `step_deadline` when it wakes, so
  // arming a deadline later than that expiry — the usual case: each command's deadline is later
  // than the last — touches no timer at all. Only an earlier deadline (goodbye's 10 s, a short
  // first limit after an idle wait) moves the timer, which wakes the watchdog to re-arm.

  void arm(Clock::time_point deadline) {
    step_timed_out = false;
    step_deadline = deadline;
    if (deadline < watchdog_timer.expiry()) watchdog_timer.expires_at(deadline);
  }
  void disarm() { step_deadline = Clock::time_point::max(); }
  // A step's result: aborted by the watchdog is a timeout; aborted otherwise (stop()) is not.
  [[nodiscard]] error_code timed(const error_code& ec) const {
    if (ec == asio::error::operation_aborted && step_timed_out) return asio::error::timed_out;
    return ec;
  }

  // Runs beside the conversation for the session's life; run() ends it (by cancellation) when
  // the conversation is over, before the Impl can go away. It touches only the timer, the two
  // step fields and the socket, all members; it never outlives run().
  asio::awaitable<void> watchdog() {
    for (;;) {
      watchdog_timer.expires_at(step_deadline);  // max while no step is pending
      (void)co_await watchdog_timer.async_wait(use_tuple);
      // Cancelled by run(): the conversation is over. Checked whatever the wait returned (the
      // cancellation can come after the timer fired), never by awaiting again (which would throw).
      if ((co_await asio::this_coro::cancellation_state).cancelled() != asio::cancellation_type::none) co_return;
      // Woken early (an earlier deadline was armed) or late (the step already finished or moved
      // its deadline on): only a deadline that has passed counts.
      if (Clock::now() >= step_deadline) {
        step_timed_out = true;
        step_deadline = Clock::time_point::max();
        error_code ignored;
        socket.cancel(ignored);  // the step's operation completes with operation_aborted
      }
    }
  }

  // Reads what the client has sent, appending it to rbuf; waits for it until `deadline` (an
  // absolute time: the limits bound whole lines and all of DATA, not single reads, so that a byte
  // now and then cannot hold the session; deadline.hpp).
  //
  // Memory (issue 12 §3): plain reads go into a per-thread scratch array (no suspension between
  // the read and the copy, so sessions sharing the thread cannot interleave), and rbuf grows by
  // exactly the bytes that arrived. While the client is silent the session waits for readiness,
  // holding no read buffer: an idle session keeps only rbuf/wbuf capacity, at most
  // idle_buffer_keep each. Over TLS, OpenSSL may hold decrypted bytes the socket no longer
  // shows, so the read goes through the stream into the session's TLS buffer (allocated at the
  // handshake, with the stream's own much larger buffers).
  asio::awaitable<error_code> read_more(Clock::time_point deadline) {
    if (!socket.is_open()) co_return asio::error::not_connected;
    if (Clock::now() >= deadline) co_return asio::error::timed_out;
    if (tls) {
      arm(deadline);
      const auto [ec, n] = co_await tls->async_read_some(asio::buffer(tls_read_buffer.get(), read_chunk), use_tuple);
      disarm();
      rbuf.append(tls_read_buffer.get(), n);
      co_return timed(ec);
    }
    thread_local std::array<char, read_chunk> scratch;
    for (int wakeups = 0; wakeups < max_empty_wakeups; ++wakeups) {
      error_code ec;
      const std::size_t n = socket.read_some(asio::buffer(scratch), ec);
      if (ec != asio::error::would_block && ec != asio::error::try_again) {
        rbuf.append(scratch.data(), n);
        co_return ec;
      }
      if (rbuf.empty()) release_idle_buffers();
      arm(deadline);
      const auto [wait_ec] = co_await socket.async_wait(tcp::socket::wait_read, use_tuple);
      disarm();
      if (wait_ec) co_return timed(wait_ec);
    }
    co_return asio::error::timed_out;  // readiness without data, again and again: treat as a stall
  }

  // The session waits for its client with nothing to parse and nothing to send: give back what
  // a burst made the buffers grow to (std::string keeps its capacity through erase/clear).
  void release_idle_buffers() {
    if (rbuf.capacity() > idle_buffer_keep) std::string().swap(rbuf);
    if (wbuf.empty() && wbuf.capacity() > idle_buffer_keep) std::string().swap(wbuf);
  }

  asio::awaitable<error_code> write_raw(std::string_view data, config::Duration limit) {
    if (!socket.is_open()) co_return asio::error::not_connected;
    arm(deadline_after(Clock::now(), limit));
    error_code ec;
    if (tls) {
      std::tie(ec, std::ignore) = co_await asio::async_write(*tls, asio::buffer(data.data(), data.size()), use_tuple);
    } else {
      std::tie(ec, std::ignore) = co_await asio::async_write(socket, asio::buffer(data.data(), data.size()), use_tuple);
    }
    disarm();
    co_return timed(ec);
  }

  // RFC 2920 §3.2: replies are queued and sent when the client's input is exhausted (or before a
  // reply the client must see before it may go on: 354, 334, STARTTLS's 220, 221, 421, 521).
  asio::awaitable<bool> flush() {
    if (wbuf.empty()) co_return true;
    // Written from wbuf itself (nothing appends to it while this coroutine waits: the session is
    // one sequence), then cleared, keeping its capacity for the next replies.
    const error_code ec = co_await write_raw(wbuf, settings->limits.command_timeout);
    wbuf.clear();
    if (ec) {
      lost(ec);
      co_return false;
    }
    co_return true;
  }

  void reply(std::string_view line) {
    wbuf.append(line);
    wbuf.append("\r\n");
  }
  void error_reply(std::string_view line) {
    reply(line);
    ++errors;
  }

  // The last words: reply, flush (bounded), close.
  asio::awaitable<void> goodbye(std::string_view line) {
    reply(line);
    const auto limit = std::chrono::duration_cast<config::Duration>(final_write_limit);
    (void)co_await write_raw(wbuf, limit);
    wbuf.clear();
    close();
  }

  void close() {
    closed = true;
    error_code ec;
    socket.shutdown(tcp::socket::shutdown_both, ec);
    socket.close(ec);
  }

  void lost(const error_code& ec) {
    if (!closed) {
      if (ec == asio::error::timed_out) {
        log->info("timeout after {} from {}", last_command, namaddr);
      } else {
        log->info("lost connection after {} from {}", last_command, namaddr);
      }
    }
    close();
  }

  // One line from the client, CRLF removed. `limit`: the longest line (with CRLF) we buffer.
  // `timeout` bounds the whole line, counted from now (Postfix smtpd_per_request_deadline).
  asio::awaitable<Line> next_line(config::Duration timeout, std::size_t limit) {
    Line line;
    const Clock::time_point deadline = deadline_after(Clock::now(), timeout);
    for (std::size_t reads = 0; reads < max_data_reads; ++reads) {
      if (discarding) {  // the rest of an over-long line
        const auto lf = rbuf.find('\n');
        if (lf != std::string::npos) {
          rbuf.erase(0, lf + 1);
          discarding = false;
          line.status = LineStatus::too_long;
          co_return line;
        }
        rbuf.clear();
      } else if (const auto lf = rbuf.find('\n'); lf != std::string::npos) {
        // Postfix smtpd_forbid_bare_newline: a command line ends in CRLF, nothing else.
        if (lf == 0 || rbuf[lf - 1] != '\r') {
          line.status = LineStatus::bare_lf;
          co_return line;
        }
        line.text = rbuf.substr(0, lf - 1);
        rbuf.erase(0, lf + 1);
        if (lf + 1 > limit) {
          line.status = LineStatus::too_long;
          line.text.clear();
          co_return line;
        }
        line.status = line.text.find_first_of(std::string_view("\r\0", 2)) == std::string::npos ? LineStatus::ok
                                                                                                : LineStatus::bad_bytes;
        co_return line;
      } else if (rbuf.size() > limit) {
        discarding = true;
        rbuf.clear();
      }
      // Input exhausted: now the queued replies go out (RFC 2920 §3.2).
      if (!co_await flush()) {
        line.status = LineStatus::closed;
        co_return line;
      }
      const error_code ec = co_await read_more(deadline);
      if (ec == asio::error::timed_out) {
        line.status = LineStatus::timeout;
        co_return line;
      }
      if (ec) {
        lost(ec);
        line.status = LineStatus::closed;
        co_return line;
      }
    }
    lost(asio::error::message_size);
    co_return line;
  }

  // Handles the non-ok line outcomes that end or penalise the session. True: go on reading.
  asio::awaitable<bool> line_problem(const Line& line) {
    switch (line.status) {
      case LineStatus::ok: co_return true;
      case LineStatus::too_long:
        error_reply("500 5.5.2 Error: line too long");  // RFC 5321 §4.5.3.1.10
        co_return true;
      case LineStatus::bad_bytes:
        error_reply("500 5.5.2 Error: bad syntax");
        co_return true;
      case LineStatus::bare_lf:
        log->info("bare <LF> received after {} from {}", last_command, namaddr);
        {
          const std::string last_words = "521 5.5.2 " + hostname + " Error: bare <LF> received";
          co_await goodbye(last_words);
        }
        co_return false;
      case LineStatus::timeout:
        log->info("timeout after {} from {}", last_command, namaddr);
        {
          const std::string last_words = "421 4.4.2 " + hostname + " Error: timeout exceeded";
          co_await goodbye(last_words);
        }
        co_return false;
      case LineStatus::closed: co_return false;
    }
    co_return false;
  }

  // ---- TLS ---------------------------------------------------------------------------------------

  [[nodiscard]] bool tls_available() const {
    return settings->tls != nullptr && settings->listener.tls != config::Listener::Tls::none;
  }

  asio::awaitable<bool> handshake() {
    ssl_ctx = settings->tls->get();  // kept for the session: a reload does not pull it away
    SSL_CTX_up_ref(ssl_ctx.get());   // the asio wrapper owns (and frees) one reference
    asio_ctx.emplace(ssl_ctx.get());
    tls.emplace(socket, *asio_ctx);
    arm(deadline_after(Clock::now(), settings->limits.command_timeout));
    const auto [handshake_ec] = co_await tls->async_handshake(asio::ssl::stream_base::server, use_tuple);
    disarm();
    const error_code ec = timed(handshake_ec);
    if (ec) {
      log->info("SSL_accept error from {}: {}", namaddr, ec == asio::error::timed_out ? "timed out" : ec.message());
      tls.reset();
      close();
      co_return false;
    }
    tls_active = true;
    if (!tls_read_buffer) tls_read_buffer = std::make_unique_for_overwrite<char[]>(read_chunk);
    SSL* ssl = tls->native_handle();
    const SSL_CIPHER* cipher = SSL_get_current_cipher(ssl);
    int alg_bits = 0;
    const int bits = cipher != nullptr ? SSL_CIPHER_get_bits(cipher, &alg_bits) : 0;
    tls_summary = fmt::format("{} with cipher {} ({}/{} bits)", SSL_get_version(ssl),
                              cipher != nullptr ? SSL_CIPHER_get_name(cipher) : "unknown", bits, alg_bits);
    log->info("Anonymous TLS connection established from {}: {}", namaddr, tls_summary);
    co_return true;
  }

  // ---- State -------------------------------------------------------------------------------------

  void reset_transaction() {
    mail.reset();
    recipients.clear();
  }

  [[nodiscard]] bool relay_permitted() const {
    if (!auth_user.empty()) return true;
    for (const auto& net : settings->listener.allow_networks) {
      if (!address_bytes.empty() && net.contains(address_bytes.data(), address_bytes.size())) return true;
    }
    return false;
  }

  // RFC 3848 (and RFC 6531 §3.7.3 for the Received: "with" clause).
  [[nodiscard]] std::string protocol(bool utf8 = false) const {
    if (!esmtp) return utf8 ? "UTF8SMTP" : "SMTP";
    std::string p = utf8 ? "UTF8SMTP" : "ESMTP";
    if (tls_active) p += "S";
    if (!auth_user.empty()) p += "A";
    return p;
  }

  [[nodiscard]] std::string reject_context(bool with_rcpt, std::string_view rcpt) const {
    std::string s;
    if (mail) s += fmt::format(" from=<{}>", printable(mail->sender, 300));
    if (with_rcpt) s += fmt::format(" to=<{}>", printable(rcpt, 300));
    s += fmt::format(" proto={} helo=<{}>", protocol(), helo ? printable(*helo) : std::string());
    return s;
  }

  void log_reject(std::string_view command, std::string_view reply_line, bool with_rcpt, std::string_view rcpt) {
    log->info("NOQUEUE: reject: {} from {}: {};{}", command, namaddr, reply_line, reject_context(with_rcpt, rcpt));
    observe_rejection(reply_line);
  }

  // smtp/server_observer.hpp: what the metrics count.
  void observe_rejection(std::string_view reply_line) const {
    if (settings->observer && settings->observer->rejection) settings->observer->rejection(reply_code(reply_line));
  }
  // One failed AUTH: told to the observer, then counted by the limiter (true: over the limit).
  bool count_auth_failure() {
    if (settings->observer && settings->observer->auth_failure) settings->observer->auth_failure();
    return settings->auth_failures->record_failure(client_address);
  }

  // ---- Commands ----------------------------------------------------------------------------------

  bool on_helo(const CommandLine& cmd) {
    auto parsed = parse_helo(cmd.argument, cmd.verb);
    if (auto* rej = std::get_if<Rejection>(&parsed)) {
      error_reply(rej->reply);
      return false;
    }
    // RFC 5321 §4.1.4: EHLO/HELO resets the transaction state.
    reset_transaction();
    helo = std::get<std::string>(parsed);
    esmtp = cmd.verb == Verb::ehlo;
    if (!esmtp) {
      reply("250 " + hostname);
      return true;
    }
    const auto& l = settings->listener;
    std::vector<std::string> lines{hostname, "PIPELINING", "SIZE " + std::to_string(settings->limits.max_message_size)};
    if (tls_available() && !tls_active) lines.emplace_back("STARTTLS");
    if (l.auth != config::Listener::Auth::none && tls_active) {  // RFC 4954 §4 + RFC 3207 §4: only under TLS
      std::string mechs;
      for (const auto& m : l.auth_mechanisms) {
        if (auto mech = SaslExchange::parse_mechanism(m)) mechs += " " + std::string(SaslExchange::name(*mech));
      }
      if (!mechs.empty()) lines.push_back("AUTH" + mechs);
    }
    for (const char* kw : {"ENHANCEDSTATUSCODES", "8BITMIME", "DSN", "SMTPUTF8"}) lines.emplace_back(kw);
    for (std::size_t i = 0; i < lines.size(); ++i) reply((i + 1 < lines.size() ? "250-" : "250 ") + lines[i]);
    return true;
  }

  bool on_mail(const CommandLine& cmd) {
    const auto& l = settings->listener;
    if (!helo) { error_reply("503 5.5.1 Error: send HELO/EHLO first"); return false; }
    if (l.require_tls && !tls_active) { error_reply("530 5.7.0 Must issue a STARTTLS command first"); return false; }
    if (l.auth == config::Listener::Auth::required && auth_user.empty()) {
      error_reply("530 5.7.0 Authentication required");
      return false;
    }
    if (mail) { error_reply("503 5.5.1 Error: nested MAIL command"); return false; }
    auto parsed = parse_mail(cmd.argument);
    if (auto* rej = std::get_if<Rejection>(&parsed)) {
      error_reply(rej->reply);
      return false;
    }
    auto& m = std::get<MailCommand>(parsed);
    if (m.size > settings->limits.max_message_size) {  // RFC 1870 §6.1
      const std::string r = "552 5.3.4 Message size exceeds fixed limit";
      log_reject("MAIL", r, false, {});
      error_reply(r);
      return false;
    }
    if (!store.has_space(m.size)) {  // RFC 1870 §6.1: 452 for a temporary shortage
      const std::string r = "452 4.3.1 Insufficient system storage";
      log->warn("not enough free space in mail queue for {} from {}", m.size, namaddr);
      log_reject("MAIL", r, false, {});
      reply(r);
      return false;
    }
    mail = std::move(m);
    reply("250 2.1.0 Ok");
    return true;
  }

  bool on_rcpt(const CommandLine& cmd) {
    if (!mail) { error_reply("503 5.5.1 Error: need MAIL command"); return false; }
    auto parsed = parse_rcpt(cmd.argument, mail->smtputf8);
    if (auto* rej = std::get_if<Rejection>(&parsed)) {
      error_reply(rej->reply);
      return false;
    }
    auto& r = std::get<RcptCommand>(parsed);
    // RFC 5321 §4.5.1: postmaster without a domain is postmaster at this host.
    if (r.postmaster) r.address = "postmaster@" + hostname;
    if (recipients.size() >= settings->limits.max_recipients) {  // RFC 5321 §4.5.3.1.10
      reply("452 4.5.3 Error: too many recipients");
      return false;
    }
    if (!relay_permitted()) {
      const std::string line = "554 5.7.1 <" + printable(r.address, 300) + ">: Relay access denied";
      log_reject("RCPT", line, true, r.address);
      error_reply(line);
      return false;
    }
    InboundRecipient ir;
    ir.address = std::move(r.address);
    ir.orcpt = std::move(r.orcpt);
    ir.notify = r.notify;
    recipients.push_back(std::move(ir));
    reply("250 2.1.5 Ok");
    return true;
  }

  std::string received_header(const std::string& queue_id) const {
    // Postfix's form: from HELO (NAME [ADDR]), NAME the forward-confirmed client name or "unknown".
    std::string h = "Received: from " + *helo + " (" + client_name + " [" + received_address + "])\r\n";
    if (tls_active) h += "\t(using " + tls_summary + ")\r\n";
    // Postfix smtpd_sasl_authenticated_header: the login name only when the listener asks.
    if (!auth_user.empty() && settings->listener.auth_header) h += "\t(Authenticated sender: " + auth_user + ")\r\n";
    h += "\tby " + hostname + " (danerelay) with " + protocol(mail->smtputf8) + " id " + queue_id;
    const std::string date = syntax::rfc5322_date(std::chrono::system_clock::now());
    if (recipients.size() == 1) {
      h += "\r\n\tfor <" + recipients.front().address + ">; " + date + "\r\n";
    } else {
      h += ";\r\n\t" + date + "\r\n";
    }
    return h;
  }

  // DATA (RFC 5321 §4.1.1.4) through the reply to the final ".". False: the session is over.
  asio::awaitable<Outcome> on_data() {
    const CommandLine& cmd = current;
    bool ok = false;
    if (!cmd.argument.empty()) { error_reply("501 5.5.4 Syntax: DATA"); co_return Outcome{true, ok}; }
    if (!mail) { error_reply("503 5.5.1 Error: need RCPT command"); co_return Outcome{true, ok}; }
    if (recipients.empty()) { error_reply("554 5.5.1 Error: no valid recipients"); co_return Outcome{true, ok}; }
    std::unique_ptr<MessageSink> sink = store.begin();
    if (!sink) {
      log->warn("{}: cannot create a queue file", namaddr);
      reply("451 4.3.0 Error: queue file write error");
      reset_transaction();
      co_return Outcome{true, ok};
    }
    const std::string qid = sink->queue_id();
    if (auth_user.empty()) {
      log->info("{}: client={}", qid, namaddr);
    } else {
      log->info("{}: client={}, sasl_method={}, sasl_username={}", qid, namaddr, auth_method, auth_user);
    }
    reply("354 End data with <CR><LF>.<CR><LF>");
    if (!co_await flush()) co_return Outcome{false, ok};
    last_command = "DATA";

    sink->write(received_header(qid));
    DataReader reader(settings->limits.max_message_size, settings->limits.max_line_length);
    std::string out;
    DataReader::Status status = DataReader::Status::need_more;
    // Finding 4: each line within data_timeout of the end of the previous one, and all of DATA
    // within data_timeout + bytes / min_data_rate (smtp/deadline.hpp).
    const Clock::time_point data_start = Clock::now();
    Clock::time_point line_start = data_start;
    std::uint64_t data_bytes = 0;
    for (std::size_t reads = 0; reads < max_data_reads; ++reads) {
      if (!rbuf.empty()) {
        std::size_t consumed = 0;
        out.clear();
        status = reader.feed(rbuf, out, consumed);
        data_bytes += consumed;
        if (std::string_view(rbuf).substr(0, consumed).find('\n') != std::string_view::npos) line_start = Clock::now();
        rbuf.erase(0, consumed);
        if (!out.empty()) sink->write(out);
        if (status != DataReader::Status::need_more) break;
      }
      const auto since_start = std::chrono::duration_cast<config::Duration>(line_start - data_start);
      const config::Duration allowed = data_line_deadline(settings->limits.data_timeout, since_start, data_bytes,
                                                          settings->limits.min_data_rate);
      const error_code ec = co_await read_more(deadline_after(data_start, allowed));
      if (ec == asio::error::timed_out) {
        log->info("timeout after DATA ({} bytes) from {}", reader.size(), namaddr);
        {
          const std::string last_words = "421 4.4.2 " + hostname + " Error: timeout exceeded";
          co_await goodbye(last_words);
        }
        co_return Outcome{false, ok};
      }
      if (ec) {
        log->info("lost connection after DATA ({} bytes) from {}", reader.size(), namaddr);
        close();
        co_return Outcome{false, ok};
      }
    }
    last_command = "END-OF-MESSAGE";
    if (status == DataReader::Status::bare_lf || status == DataReader::Status::bare_cr) {
      // The SMTP smuggling defence: no message, no further commands on this connection.
      const char* what = status == DataReader::Status::bare_lf ? "<LF>" : "<CR>";
      const std::string line = fmt::format("521 5.5.2 {} Error: bare {} received", hostname, what);
      log->info("{}: reject: DATA from {}: {};{}", qid, namaddr, line, reject_context(false, {}));
      observe_rejection(line);
      co_await goodbye(line);
      co_return Outcome{false, ok};
    }
    if (status != DataReader::Status::done) {
      lost(asio::error::message_size);
      co_return Outcome{false, ok};
    }
    std::string rejection;
    if (reader.too_big()) rejection = "552 5.3.4 Error: message file too big";
    else if (reader.line_too_long()) rejection = "500 5.5.2 Error: line too long";
    else if (reader.received_count() + 1 >= settings->limits.max_hops) {
      // Checklist L-01, a mail loop: Postfix cleanup counts the Received: fields of the message as
      // queued (ours is the first of them) and rejects at hop_count >= hop_count_limit.
      log->warn("{}: message rejected: hopcount exceeded", qid);
      rejection = "554 5.4.6 Too many hops";
    }
    if (!rejection.empty()) {
      log->info("{}: reject: END-OF-MESSAGE from {}: {};{}", qid, namaddr, rejection, reject_context(false, {}));
      observe_rejection(rejection);
      error_reply(rejection);
      reset_transaction();
      co_return Outcome{true, ok};
    }
    log->info("{}: message-id={}", qid, reader.message_id().empty() ? std::string("<>") : printable(reader.message_id(), 998));

    InboundEnvelope envelope;
    envelope.sender = mail->sender;
    envelope.recipients = std::move(recipients);
    envelope.ret = mail->ret;
    envelope.envid = mail->envid;
    envelope.eightbit = mail->eightbit;
    envelope.smtputf8 = mail->smtputf8;
    envelope.declared_size = mail->size;
    envelope.listener = settings->listener.name;
    envelope.client_name = client_name;
    envelope.client_address = client_address;
    envelope.helo = *helo;
    envelope.protocol = protocol();
    envelope.auth_user = auth_user;
    envelope.auth_method = auth_method;
    reset_transaction();
    // The 250 waits for durability (RFC 5321 §4.1.1.4, §6.1: the message is ours once we say so).
    const CommitResult result = co_await sink->commit(std::move(envelope));
    if (!result.ok) {
      log->warn("{}: queue file write error: {}", qid, result.error);
      reply("451 4.3.0 Error: queue file write error");
      co_return Outcome{true, ok};
    }
    reply("250 2.0.0 Ok: queued as " + qid);
    if (settings->observer && settings->observer->message) settings->observer->message(settings->listener.name);
    ok = true;
    co_return Outcome{true, ok};
  }

  // STARTTLS (RFC 3207). False: the session is over.
  asio::awaitable<Outcome> on_starttls() {
    const CommandLine& cmd = current;
    bool ok = false;
    if (!tls_available()) { error_reply("502 5.5.1 Error: command not implemented"); co_return Outcome{true, ok}; }
    if (tls_active) { error_reply("554 5.5.1 Error: TLS already active"); co_return Outcome{true, ok}; }
    if (!cmd.argument.empty()) { error_reply("501 5.5.4 Syntax: STARTTLS"); co_return Outcome{true, ok}; }
    if (mail) { error_reply("503 5.5.1 Error: MAIL transaction in progress"); co_return Outcome{true, ok}; }
    reply("220 2.0.0 Ready to start TLS");
    if (!co_await flush()) co_return Outcome{false, ok};
    // RFC 3207 §5 / CVE-2011-0411: anything the client sent after STARTTLS arrived in plaintext
    // and must never be taken as if it had come over TLS.
    if (!rbuf.empty()) {
      log->warn("{}: discarding {} bytes of improper command pipelining after STARTTLS: {}", namaddr, rbuf.size(),
                printable(rbuf));
      rbuf.clear();
    }
    discarding = false;
    if (!co_await handshake()) co_return Outcome{false, ok};
    // RFC 3207 §4.2: forget everything learnt before TLS; the client must EHLO again.
    helo.reset();
    esmtp = false;
    reset_transaction();
    auth_user.clear();
    auth_method.clear();
    ok = true;
    co_return Outcome{true, ok};
  }

  // Over limits.max_auth_failures_per_client: log (Postfix anvil style), 421, close.
  asio::awaitable<void> too_many_auth_failures() {
    log->warn("too many AUTH failures ({}) from {} for service {}", settings->auth_failures->failures(client_address),
              namaddr, settings->listener.name);
    const std::string last_words = "421 4.7.0 " + hostname + " Error: too many AUTH failures";
    co_await goodbye(last_words);
  }

  // AUTH (RFC 4954). False: the session is over.
  asio::awaitable<Outcome> on_auth() {
    const CommandLine& cmd = current;
    bool ok = false;
    const auto& l = settings->listener;
    if (l.auth == config::Listener::Auth::none) { error_reply("503 5.5.1 Error: authentication not enabled"); co_return Outcome{true, ok}; }
    // Finding 4: a client over its AUTH failure limit gets no further guesses, on any listener.
    if (settings->auth_failures->blocked(client_address)) {
      co_await too_many_auth_failures();
      co_return Outcome{false, ok};
    }
    if (!helo || !esmtp) { error_reply("503 5.5.1 Error: send HELO/EHLO first"); co_return Outcome{true, ok}; }
    if (!auth_user.empty()) { error_reply("503 5.5.1 Error: already authenticated"); co_return Outcome{true, ok}; }
    if (mail) { error_reply("503 5.5.1 Error: MAIL transaction in progress"); co_return Outcome{true, ok}; }
    if (!tls_active) {  // RFC 4954 §6, our policy: no passwords in plaintext
      error_reply("538 5.7.11 Encryption required for requested authentication mechanism");
      co_return Outcome{true, ok};
    }
    const std::string_view arg = cmd.argument;
    if (arg.empty()) { error_reply("501 5.5.4 Syntax: AUTH mechanism"); co_return Outcome{true, ok}; }
    const std::size_t sp = arg.find(' ');
    const auto mech_name = arg.substr(0, sp);
    std::optional<std::string_view> initial;
    if (sp != std::string_view::npos) initial = arg.substr(sp + 1);
    auto mech = SaslExchange::parse_mechanism(mech_name);
    bool offered = false;
    if (mech) {
      for (const auto& m : l.auth_mechanisms) offered = offered || SaslExchange::parse_mechanism(m) == mech;
    }
    if (!offered) { error_reply("504 5.5.4 Unrecognized authentication type"); co_return Outcome{true, ok}; }

    SaslExchange sasl(*mech);
    auto step = sasl.start(initial);
    for (int round = 0; round < 4 && step.kind == SaslExchange::Step::Kind::challenge; ++round) {
      reply(step.reply);
      auto line = co_await next_line(settings->limits.command_timeout, max_auth_line);
      if (line.status == LineStatus::too_long) {
        error_reply("500 5.5.6 SASL response limit exceeded");
        co_return Outcome{true, ok};
      }
      if (line.status != LineStatus::ok) co_return Outcome{co_await line_problem(line), false};
      step = sasl.step(line.text);
    }
    const std::string method(SaslExchange::name(*mech));
    if (step.kind == SaslExchange::Step::Kind::failed) {
      if (reply_code(step.reply) == 535) {
        log->warn("{}: SASL {} authentication failed: authentication failure", namaddr, method);
        if (count_auth_failure()) {
          co_await too_many_auth_failures();
          co_return Outcome{false, ok};
        }
      }
      error_reply(step.reply);
      co_return Outcome{true, ok};
    }
    if (step.kind != SaslExchange::Step::Kind::credentials) {
      if (count_auth_failure()) {
        co_await too_many_auth_failures();
        co_return Outcome{false, ok};
      }
      error_reply("535 5.7.8 Error: authentication failed");
      co_return Outcome{true, ok};
    }
    // The hash runs on the auth pool; this coroutine resumes on the session's executor.
    bool verified = false;
    if (auto creds = settings->credentials) {
      auto job = [creds, user = sasl.username(), password = sasl.password()]() mutable -> asio::awaitable<bool> {
        const bool good = creds->verify(user, password);
        OPENSSL_cleanse(password.data(), password.size());
        co_return good;
      };
      verified = co_await asio::co_spawn(settings->auth_pool->executor(), std::move(job), asio::use_awaitable);
    }
    sasl.forget_password();
    if (!verified) {
      log->warn("{}: SASL {} authentication failed: authentication failure", namaddr, method);
      if (count_auth_failure()) {
        co_await too_many_auth_failures();
        co_return Outcome{false, ok};
      }
      error_reply("535 5.7.8 Error: authentication failed");
      co_return Outcome{true, ok};
    }
    auth_user = sasl.username();
    auth_method = method;
    reply("235 2.7.0 Authentication successful");
    ok = true;
    co_return Outcome{true, ok};
  }

  // ---- The conversation --------------------------------------------------------------------------

  // The client's name, before anything is logged about the session (bounded by the lookup).
  asio::awaitable<void> name_client() {
    if (!name_lookup) co_return;
    const dns::ClientName name = co_await name_lookup->result();
    if (const std::string warning = dns::client_name_warning(name, client_address); !warning.empty()) {
      log->warn("{}", warning);
    }
    client_name = name.name;
    namaddr = client_name + "[" + client_address + "]";
  }

  // The conversation and, beside it, the watchdog (see "Time limits" above), as one parallel
  // group: when the conversation ends — returns or throws — the group cancels the watchdog's wait
  // and awaits it, so neither outlives run(). (Not `talk() || watchdog()`: that waits for one
  // *success*, and a conversation that threw would leave run() waiting on the watchdog for good.)
  // The session's only co_spawns.
  asio::awaitable<void> run() {
    auto [order, talk_error, watchdog_error] =
        co_await asio::experimental::make_parallel_group(asio::co_spawn(executor, talk(), asio::deferred),
                                                         asio::co_spawn(executor, watchdog(), asio::deferred))
            .async_wait(asio::experimental::wait_for_one(), asio::deferred);
    if (talk_error) std::rethrow_exception(talk_error);
    // The watchdog ends only when cancelled, after the conversation; first, it would be a bug.
    if (order[0] == 1 && watchdog_error) std::rethrow_exception(watchdog_error);
  }

  asio::awaitable<void> talk() {
    co_await name_client();
    log->info("connect from {}", namaddr);
    if (settings->listener.tls == config::Listener::Tls::implicit) {
      if (!settings->tls) {
        log->warn("{}: implicit TLS listener {} has no certificate; disconnecting", namaddr, settings->listener.name);
        close();
      } else {
        last_command = "CONNECT";
        (void)co_await handshake();  // RFC 8314 §3.3: TLS first, then the greeting
      }
    }
    if (!closed) {
      reply("220 " + hostname + " ESMTP danerelay");  // RFC 5321 §4.3.1
      co_await conversation();
    }
    if (!closed) close();
    log->info("disconnect from {}{}", namaddr, counters_text());
  }

  asio::awaitable<void> conversation() {
    for (int n = 0; n < max_commands && !closed; ++n) {
      // Postfix smtpd_hard_error_limit.
      if (errors >= static_cast<int>(settings->limits.max_errors)) {
        log->info("too many errors after {} from {}", last_command, namaddr);
        {
          const std::string last_words = "421 4.7.0 " + hostname + " Error: too many errors";
          co_await goodbye(last_words);
        }
        co_return;
      }
      if (wbuf.size() > max_pending_replies && !co_await flush()) co_return;
      const std::size_t buffer_limit = max_auth_line + 2;
      auto line = co_await next_line(settings->limits.command_timeout, buffer_limit);
      if (line.status != LineStatus::ok) {
        if (!co_await line_problem(line)) co_return;
        continue;
      }
      current = parse_verb(line.text);
      const CommandLine& cmd = current;
      // RFC 5321 §4.5.3.1.4 (with the extension allowances for MAIL/RCPT, RFC 4954 §4 for AUTH).
      std::size_t limit = settings->limits.max_command_length;
      if (cmd.verb == Verb::mail || cmd.verb == Verb::rcpt) limit += mail_rcpt_extension_allowance;
      if (cmd.verb == Verb::auth) limit = max_auth_line;
      if (line.text.size() + 2 > limit) {
        error_reply("500 5.5.2 Error: line too long");
        continue;
      }
      if (cmd.name.empty() || !std::all_of(cmd.name.begin(), cmd.name.end(), [](char c) { return c >= 'A' && c <= 'Z'; })) {
        ++counts[c_unknown][1];
        error_reply("500 5.5.2 Error: bad syntax");
        continue;
      }
      const Counter counter = counter_for(cmd.verb);
      ++counts[counter][1];
      last_command = cmd.name;
      bool ok = false;
      bool go_on = true;
      switch (cmd.verb) {
        case Verb::helo:
        case Verb::ehlo: ok = on_helo(cmd); break;
        case Verb::mail: ok = on_mail(cmd); break;
        case Verb::rcpt: ok = on_rcpt(cmd); break;
        case Verb::data:
        case Verb::starttls:
        case Verb::auth: {
          // No reference parameters into these coroutines (g++ 12 mis-copies them): the command
          // is in `current`, the outcome comes back as a value.
          Outcome o;
          if (cmd.verb == Verb::data) o = co_await on_data();
          else if (cmd.verb == Verb::starttls) o = co_await on_starttls();
          else o = co_await on_auth();
          go_on = o.go_on;
          ok = o.ok;
          break;
        }
        case Verb::rset:
          if (!cmd.argument.empty()) { error_reply("501 5.5.4 Syntax: RSET"); break; }
          reset_transaction();  // RFC 5321 §4.1.1.5
          junk();
          reply("250 2.0.0 Ok");
          ok = true;
          break;
        case Verb::noop:  // RFC 5321 §4.1.1.9: an argument is allowed and ignored
          junk();
          reply("250 2.0.0 Ok");
          ok = true;
          break;
        case Verb::vrfy:  // RFC 5321 §3.5.3 allows 252; Postfix operators disable VRFY (no address harvesting)
          junk();
          error_reply("502 5.5.1 VRFY command is disabled");
          break;
        case Verb::help:
          junk();
          reply("214 2.0.0 Commands: EHLO HELO MAIL RCPT DATA RSET NOOP QUIT STARTTLS AUTH HELP");
          ok = true;
          break;
        case Verb::quit:  // RFC 5321 §4.1.1.10
          counts[c_quit][0]++;
          {
            const std::string last_words = "221 2.0.0 Bye";
            co_await goodbye(last_words);
          }
          co_return;
        case Verb::etrn:
        case Verb::bdat:  // CHUNKING is not offered (RFC 3030 §2: only after EHLO announces it)
        case Verb::expn:
        case Verb::unknown:
          if (cmd.verb == Verb::etrn) junk();
          error_reply("502 5.5.2 Error: command not recognized");
          break;
      }
      if (ok) ++counts[counter][0];
      if (!go_on) co_return;
    }
  }

  void junk() {
    if (++junk_commands > junk_command_limit) ++errors;
  }

  [[nodiscard]] std::string counters_text() const {
    std::string s;
    int ok = 0, total = 0;
    for (std::size_t i = 0; i < c_count; ++i) {
      if (counts[i][1] == 0) continue;
      ok += counts[i][0];
      total += counts[i][1];
      s += counts[i][0] == counts[i][1] ? fmt::format(" {}={}", counter_names[i], counts[i][0])
                                        : fmt::format(" {}={}/{}", counter_names[i], counts[i][0], counts[i][1]);
    }
    s += ok == total ? fmt::format(" commands={}", ok) : fmt::format(" commands={}/{}", ok, total);
    return s;
  }

  tcp::socket socket;
  asio::any_io_executor executor;
  asio::steady_timer watchdog_timer;                      // the session's only timer (I/O above)
  Clock::time_point step_deadline = Clock::time_point::max();  // the pending step's; max: none
  bool step_timed_out = false;                            // the watchdog cancelled the pending step
  std::shared_ptr<const ServerSettings> settings;
  MessageStore& store;
  std::shared_ptr<spdlog::logger> log;
  std::string hostname;

  std::string client_address;
  std::vector<std::uint8_t> address_bytes;
  std::string client_name{dns::kUnknownClient};  // forward-confirmed, or "unknown"
  std::string namaddr;
  std::unique_ptr<dns::ClientNameLookup> name_lookup;  // null: reverse_lookup off, no resolver
  std::string received_address;

  std::shared_ptr<SSL_CTX> ssl_ctx;
  std::optional<asio::ssl::context> asio_ctx;
  std::optional<asio::ssl::stream<tcp::socket&>> tls;
  std::unique_ptr<char[]> tls_read_buffer;  // read_chunk bytes, from the first handshake on
  bool tls_active = false;
  std::string tls_summary;

  std::string rbuf;
  std::string wbuf;
  bool discarding = false;
  bool closed = false;

  std::optional<std::string> helo;
  bool esmtp = false;
  std::string auth_user;
  std::string auth_method;
  std::optional<MailCommand> mail;
  std::vector<InboundRecipient> recipients;

  CommandLine current;  // the command being handled
  int errors = 0;
  int junk_commands = 0;
  std::string last_command = "CONNECT";
  std::array<std::array<int, 2>, c_count> counts{};
};

ServerSession::ServerSession(tcp::socket socket, std::shared_ptr<const ServerSettings> settings, MessageStore& store,
                             std::optional<asio::ip::address> client)
    : impl_(std::make_unique<Impl>(std::move(socket), std::move(settings), store, std::move(client))) {}

ServerSession::~ServerSession() = default;

asio::awaitable<void> ServerSession::run() { co_await impl_->run(); }

void ServerSession::stop() {
  asio::post(impl_->executor, [self = shared_from_this()] {
    error_code ec;
    if (self->impl_->name_lookup) self->impl_->name_lookup->cancel();
    self->impl_->socket.cancel(ec);
    self->impl_->close();
  });
}

const std::string& ServerSession::namaddr() const noexcept { return impl_->namaddr; }

}  // namespace danerelay::smtp
