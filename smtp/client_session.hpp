// smtp/client_session.hpp — the outbound SMTP client for ONE connection to ONE address, as
// Boost.Asio C++20 coroutines.
//
// What this is: connect (IPv4/IPv6, optional source address, TCP_NODELAY), greeting, EHLO (HELO
// only where the host policy allows plaintext), STARTTLS at the level the tls::HostPolicy demands
// (with the response-injection check), the second EHLO, then any number of mail transactions
// (MAIL/RCPT/DATA, PIPELINING when offered, SIZE, 8BITMIME, SMTPUTF8, DSN), RSET between them
// when needed, and QUIT. Every step has its own RFC 5321 §4.5.3.2 timeout.
//
// What this is not: the delivery policy. It does not pick hosts, retry in plaintext after a failed
// handshake (D-12 is the caller's choice on a NEW connection: see HostFailure::tls_handshake_failed),
// cache connections, or turn results into queue actions. It reports, as values:
//   - open():  nothing (ready) or a HostFailure: this host is not used, no MAIL was sent;
//   - send():  per recipient the reply that decided it (2xx sent, 4xx deferred, 5xx bounced), or
//              the HostFailure that broke the transaction (the undecided recipients are deferred).
// Texts follow Postfix (smtp_proto.c, smtp_trouble.c, smtp_chat.c) so delivery lines read the same:
//   "host mx.example.org[192.0.2.1] refused to talk to me: 421 4.3.2 busy"
//   "TLS is required, but was not offered by host mx.example.org[192.0.2.1]"
//   "Server certificate not verified", "Cannot start TLS: handshake failure"
//   "lost connection with mx.example.org[192.0.2.1] while receiving the initial server greeting"
//   "conversation with mx.example.org[192.0.2.1] timed out while sending message body"
//   "host mx.example.org[192.0.2.1] said: 550 5.1.1 no such user (in reply to RCPT TO command)"
//
// Lifetime: the session, the asio::ssl::context and the references passed to open()/send() must
// outlive the coroutines; run everything on one strand (the session is not thread-safe).
// Pass named variables to the coroutines (g++ 12 bit-copies prvalue class temporaries passed as
// coroutine arguments inside a co_await expression), which is why send() takes references.
//
// Spec: RFC 5321 (§3.3 transactions, §4.1.1 commands, §4.2 replies, §4.5.2 transparency,
// §4.5.3.2 timeouts), RFC 3207 (STARTTLS; §4.2 discard knowledge after TLS, §5 injection),
// RFC 2920 (PIPELINING), RFC 1870 (SIZE), RFC 6152 (8BITMIME), RFC 6531 (SMTPUTF8),
// RFC 3461 (DSN: RET, ENVID, NOTIFY, ORCPT), RFC 7672 §2.2 (TLS requirement per host).
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/system/error_code.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "smtp/ehlo.hpp"
#include "smtp/reply.hpp"
#include "tls/dane_session.hpp"
#include "tls/peer_report.hpp"
#include "tls/policy.hpp"

namespace danerelay::smtp {

using Duration = std::chrono::steady_clock::duration;

// RFC 5321 §4.5.3.2 minimum timeouts as defaults; connect, STARTTLS, RSET and QUIT follow
// Postfix (smtp_connect_timeout 30s, smtp_starttls_timeout 300s, smtp_rset_timeout 20s,
// smtp_quit_timeout 300s). Each bounds one step: a write, or the whole reply to one command.
struct Timeouts {
  Duration connect = std::chrono::seconds(30);
  Duration greeting = std::chrono::minutes(5);    // §4.5.3.2.1 initial 220
  Duration ehlo = std::chrono::minutes(5);        // EHLO/HELO (Postfix smtp_helo_timeout)
  Duration starttls = std::chrono::minutes(5);    // STARTTLS reply and the TLS handshake
  Duration mail = std::chrono::minutes(5);        // §4.5.3.2.2 MAIL
  Duration rcpt = std::chrono::minutes(5);        // §4.5.3.2.3 RCPT
  Duration data_init = std::chrono::minutes(2);   // §4.5.3.2.4 DATA → 354
  Duration data_block = std::chrono::minutes(3);  // §4.5.3.2.5 each write of message data
  Duration data_done = std::chrono::minutes(10);  // §4.5.3.2.6 reply to the final "."
  Duration rset = std::chrono::seconds(20);
  Duration quit = std::chrono::minutes(5);
};

struct SessionOptions {
  std::string helo_name = "localhost";                 // our name in EHLO/HELO
  std::string host_name;                               // the peer's name (MX host), for texts; empty: its address
  boost::asio::ip::tcp::endpoint peer;                 // address and port to connect to
  std::optional<boost::asio::ip::address> source;      // local address to bind; must match the family
  Timeouts timeouts;
  std::size_t body_chunk = 64 * 1024;                  // bytes read from the body source per write
};

// One recipient of a transaction, with its RFC 3461 parameters (sent only when the server
// announces DSN).
struct RcptSpec {
  std::string address;  // without angle brackets
  std::string notify;   // §4.1 "NEVER" or a list of SUCCESS,FAILURE,DELAY; empty: no NOTIFY
  std::string orcpt;    // §4.2 "rfc822;user@example.org" (not xtext-encoded); empty: no ORCPT
};

// One mail transaction (the smtp-side view of the queue's Envelope).
struct MailSpec {
  std::string sender;               // "" is the null reverse-path
  std::vector<RcptSpec> recipients;
  std::string ret;                  // RFC 3461 §4.3 "FULL" or "HDRS"; empty: none
  std::string envid;                // §4.4, not xtext-encoded; empty: none
  std::uint64_t size = 0;           // message size for SIZE= (RFC 1870); 0: not sent
  bool eightbit = false;            // BODY=8BITMIME when the server offers it (RFC 6152)
  bool smtputf8 = false;            // SMTPUTF8 needed: a server without it gets no MAIL (RFC 6531 §3.4)
};

// Where the message text comes from, read in chunks while DATA is written. The text is the message
// as stored (headers + body; CRLF or LF line ends); dot-stuffing and the final "." are added here.
class BodySource {
 public:
  // Fills the buffer; returns the bytes stored (0: end of message) or nullopt on a read error
  // (then error() says why).
  using Reader = std::function<std::optional<std::size_t>(std::span<char>, std::string& error)>;

  explicit BodySource(Reader reader) : reader_(std::move(reader)) {}
  [[nodiscard]] static BodySource from_string(std::string text);
  // `length` bytes from `offset` (a spool file holds its envelope before the message); the file is
  // opened on first read. A file shorter than offset + length is a read error.
  [[nodiscard]] static BodySource from_file(std::filesystem::path path, std::uint64_t offset = 0,
                                            std::uint64_t length = UINT64_MAX);

  [[nodiscard]] std::optional<std::size_t> read(std::span<char> buffer) { return reader_(buffer, error_); }
  [[nodiscard]] const std::string& error() const noexcept { return error_; }

 private:
  Reader reader_;
  std::string error_;
};

// Why this connection is (or became) unusable. From open(): the host must not be used for this
// message (try the next host, or defer when none is left); no MAIL command was sent.
struct HostFailure {
  enum class Kind {
    policy_defer,       // the HostPolicy said defer: no connection was made
    connect,            // TCP connect failed or timed out
    lost_connection,    // the peer closed or reset the connection
    timeout,            // a step exceeded its timeout
    protocol,           // malformed reply (or a bounded buffer overflowed)
    greeting_rejected,  // non-2xx greeting (5xx counted as 4xx, Postfix smtp_skip_5xx_greeting)
    helo_rejected,      // EHLO/HELO refused (421 to EHLO, or HELO refused)
    tls_not_offered,    // TLS required, no STARTTLS keyword (D-10, D-11)
    starttls_rejected,  // TLS required, STARTTLS answered with an error
    tls_injection,      // data arrived after the 220 to STARTTLS, before the handshake (RFC 3207 §5)
    tls_handshake,      // the TLS handshake failed for a reason other than authentication
    tls_authentication, // TLS up (or aborted by verification) but the required authentication failed (D-39, D-45)
    local,              // our side: the body source failed
  };
  Kind kind = Kind::lost_connection;
  std::string text;            // Postfix-style reason, see the file comment
  std::optional<Reply> reply;  // the server reply that caused it, when one did
  std::string stage;           // "receiving the initial server greeting", "sending RCPT TO", ...

  // The TLS handshake itself failed (not authentication, not an injection): where the policy
  // allows plaintext (HostPolicy::plaintext_fallback), the caller may retry on a new connection
  // without STARTTLS (D-12) and must log that it does so.
  [[nodiscard]] bool tls_handshake_failed() const noexcept { return kind == Kind::tls_handshake; }
};

[[nodiscard]] std::string_view to_string(HostFailure::Kind kind) noexcept;

// A check made before any command, on what this server announced (RFC 6531 §3.4, RFC 1870 §6.1)
// or on the addresses themselves: the recipients it fails are refused without asking.
enum class LocalCheck { smtputf8_not_offered, size_exceeded, bad_sender_syntax, bad_recipient_syntax };
[[nodiscard]] std::string_view to_string(LocalCheck check) noexcept;

enum class Disposition { sent, deferred, bounced };
[[nodiscard]] std::string_view to_string(Disposition disposition) noexcept;  // "sent", "deferred", "bounced"

// What one recipient's attempt came to.
struct RecipientOutcome {
  Disposition disposition = Disposition::deferred;
  std::optional<Reply> reply;  // the server reply that decided it (none: a HostFailure or a local check)
  std::string command;         // the command that reply answered: "MAIL FROM", "RCPT TO", "DATA", "end of DATA"
  std::optional<LocalCheck> check;             // no reply: a local check refused it
  std::optional<HostFailure::Kind> broken;     // no reply: the connection broke first (deferred)
  std::string text;            // for the log: "250 2.0.0 Ok" when sent, else "host … said: … (in reply to … command)"
};

struct TransactionResult {
  std::vector<RecipientOutcome> recipients;  // in MailSpec::recipients order
  // The transaction broke on the connection (lost, timeout, malformed reply) or locally; the
  // recipients it left undecided are deferred with its text. The session is then closed.
  std::optional<HostFailure> failure;
  bool mail_sent = false;                    // a MAIL command went out in this transaction
  bool body_sent = false;                    // message data went out (DATA got 354)
  int connection_use = 0;                    // 1 for the first transaction of the session
  // Postfix delays c and d: connection set-up (connect, greeting, EHLO, TLS; 0 on a reused
  // connection) and transmission (RSET/MAIL to the reply to the final ".").
  std::chrono::microseconds setup{0};
  std::chrono::microseconds transmission{0};
};

class ClientSession {
 public:
  // `tls_context` wraps the SSL_CTX from tls::make_client_context (asio::ssl::context(native
  // handle)) and must outlive the session. `policy` is this host's tls::decide() result.
  ClientSession(boost::asio::any_io_executor executor, boost::asio::ssl::context& tls_context, tls::HostPolicy policy,
                SessionOptions options);
  ~ClientSession();
  ClientSession(const ClientSession&) = delete;
  ClientSession& operator=(const ClientSession&) = delete;

  // Connects and negotiates up to "ready for MAIL". nullopt: ready; else why this host is not used.
  // Call once.
  [[nodiscard]] boost::asio::awaitable<std::optional<HostFailure>> open();

  // One mail transaction on a ready session (RSET first when the previous one left state behind).
  // `mail` and `body` must stay alive until the coroutine completes.
  [[nodiscard]] boost::asio::awaitable<TransactionResult> send(const MailSpec& mail, BodySource& body);

  // QUIT (bounded by timeouts.quit) when the connection is still in a sane state, then close.
  // Idempotent; never fails (a QUIT that goes wrong only closes the socket).
  [[nodiscard]] boost::asio::awaitable<void> quit();

  // Closes the socket now (no QUIT).
  void close() noexcept;

  // Ready for another send(): open() succeeded, no transaction broke the connection, not closed.
  // A 421 reply anywhere ends reuse (RFC 5321 §3.8: the server is closing the channel).
  [[nodiscard]] bool reusable() const noexcept { return state_ == State::ready && socket_.is_open() && !closing_; }

  // reusable(), and the connection is still intact after sitting idle: the peer has neither
  // closed it nor sent anything since its last reply (an idle-timeout 421, a TLS alert or
  // close_notify). A non-blocking peek at the socket; never waits. The connection cache asks
  // before it hands a session out. false also ends reuse (the session is closed by the caller).
  [[nodiscard]] bool idle_intact() noexcept;

  [[nodiscard]] const Capabilities& capabilities() const noexcept { return caps_; }
  [[nodiscard]] bool tls_active() const noexcept { return tls_active_; }
  // After a STARTTLS handshake (successful or not): what TLS achieved, and what was loaded.
  [[nodiscard]] const std::optional<tls::PeerReport>& tls_report() const noexcept { return report_; }
  [[nodiscard]] const std::optional<tls::SessionSetup>& tls_setup() const noexcept { return setup_; }
  [[nodiscard]] const tls::HostPolicy& policy() const noexcept { return policy_; }
  // "mx.example.org[192.0.2.1]" (Postfix namaddr) and with ":port" (the TLS lines use that).
  [[nodiscard]] const std::string& namaddr() const noexcept { return namaddr_; }
  [[nodiscard]] std::string namaddr_port() const;
  [[nodiscard]] int transactions() const noexcept { return transactions_; }
  [[nodiscard]] std::chrono::microseconds setup_time() const noexcept { return setup_time_; }
  // How long the TLS handshake took (successful or not); nullopt when none was attempted.
  [[nodiscard]] std::optional<std::chrono::microseconds> handshake_time() const noexcept { return handshake_time_; }

 private:
  enum class State { fresh, ready, broken, closed };
  struct ReadResult;

  boost::asio::awaitable<std::optional<HostFailure>> negotiate();
  boost::asio::awaitable<std::optional<HostFailure>> hello(bool after_tls);
  boost::asio::awaitable<std::optional<HostFailure>> start_tls();
  boost::asio::awaitable<std::optional<HostFailure>> send_body(BodySource& body);

  // I/O with a deadline; a timeout closes the socket. Errors are values.
  boost::asio::awaitable<boost::system::error_code> write_all(std::string_view data, Duration limit);
  boost::asio::awaitable<boost::system::error_code> read_more(std::chrono::steady_clock::time_point deadline);
  // The session's one deadline timer (client_session.cpp, "I/O primitives").
  struct Watch;
  void arm(std::chrono::steady_clock::time_point deadline);
  void disarm();
  [[nodiscard]] boost::system::error_code timed(const boost::system::error_code& ec) const;
  boost::asio::awaitable<ReadResult> read_reply(Duration limit);
  // A command and its reply (no pipelining).
  boost::asio::awaitable<ReadResult> chat(std::string_view command, Duration limit);

  HostFailure io_failure(const boost::system::error_code& ec, std::string_view stage);
  HostFailure reply_failure(HostFailure::Kind kind, const Reply& reply, std::string_view stage);
  std::optional<std::string> take_line();

  boost::asio::any_io_executor executor_;
  boost::asio::ssl::context& tls_context_;
  tls::HostPolicy policy_;
  SessionOptions options_;
  std::string namaddr_;

  boost::asio::ip::tcp::socket socket_;
  std::optional<boost::asio::ssl::stream<boost::asio::ip::tcp::socket&>> tls_;
  bool tls_active_ = false;
  std::string rbuf_;             // received, not yet parsed
  std::unique_ptr<char[]> read_buffer_;  // what one read may bring (16 KiB), made at the first read
  boost::asio::steady_timer deadline_timer_;
  std::shared_ptr<Watch> watch_;  // shared with the timer's pending handler, which may outlive us
  std::string protocol_error_;   // why the last read_reply failed with protocol_error
  ReplyParser parser_;

  State state_ = State::fresh;
  bool needs_rset_ = false;
  bool closing_ = false;         // the server sent 421
  int transactions_ = 0;
  Capabilities caps_;
  std::optional<tls::SessionSetup> setup_;
  std::optional<tls::PeerReport> report_;
  std::chrono::microseconds setup_time_{0};
  std::optional<std::chrono::microseconds> handshake_time_;
};

// Postfix's text for a server reply that decided something: "host mx[ip] said: 550 5.1.1 no such
// user (in reply to RCPT TO command)".
[[nodiscard]] std::string host_said(std::string_view namaddr, const Reply& reply, std::string_view command);


}  // namespace danerelay::smtp
