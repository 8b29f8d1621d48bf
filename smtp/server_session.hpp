// smtp/server_session.hpp — ONE inbound ESMTP connection, as a Boost.Asio C++20 coroutine.
//
// What this is: greeting (after the handshake on implicit-TLS listeners, RFC 8314 §3.3), EHLO/HELO,
// STARTTLS (RFC 3207), AUTH PLAIN/LOGIN only under TLS (RFC 4954, smtp/sasl.hpp), mail
// transactions (MAIL/RCPT/DATA, RFC 5321 §3.3) with SIZE, 8BITMIME, SMTPUTF8 and DSN parameters,
// PIPELINING (RFC 2920), RSET/NOOP/QUIT/VRFY/HELP, relay control, limits and timeouts. Accepted
// messages go to a MessageStore (smtp/inbound.hpp); 250 is sent for a message only after
// MessageSink::commit() reported it durable.
//
// What this is not: the listener (smtp/server.hpp owns the socket acceptor and the connection
// limits), the queue, or a content filter.
//
// Client names (issue 11 item 6, Postfix smtpd): the session starts a forward-confirmed reverse
// lookup when it is created, at accept (dns/client_name_lookup.hpp, through the relay's validating
// resolver), and awaits it before its first log line, "connect from NAME[ADDR]" — so the greeting
// (and on an implicit-TLS listener the handshake) waits for it, at most
// ServerSettings::reverse_lookup_timeout (5 s), as Postfix smtpd resolves its client before the
// greeting. NAME is the confirmed name or "unknown" (no PTR, a failed or bogus one, an invalid
// name, no forward confirmation, the bound passed, or reverse_lookup off: then no query at all);
// why it is unknown is a warning line before "connect from". The name appears in every smtpd line
// and in Received: "from HELO (NAME [ADDR])"; it never decides anything.
//
// Relay control (Postfix smtpd_relay_restrictions = permit_mynetworks, permit_sasl_authenticated,
// reject): a RCPT is accepted only when the client address is in listener.allow_networks or the
// session authenticated; otherwise "554 5.7.1 <addr>: Relay access denied". With no networks and
// no AUTH nobody can relay — never an open relay.
//
// Smuggling defences: bare <LF> in a command line or bare <CR>/<LF> in DATA → 521 and close
// (smtp/data_reader.hpp); bytes pipelined after STARTTLS are discarded before the handshake
// (CVE-2011-0411 class) and all SMTP state is reset after it (RFC 3207 §4.2).
//
// Password guessing: failed AUTH (535) is counted per client by ServerSettings::auth_failures
// (smtp/client_limits.hpp); at limits.max_auth_failures_per_client in five minutes →
// "421 4.7.0 HOST Error: too many AUTH failures", close, and AUTH from that client is refused
// the same way until the window moves on. Received: names the SASL login only with
// listener.auth_header (Postfix smtpd_sasl_authenticated_header); a message whose Received:
// fields (ours included) reach limits.max_hops is rejected with 554 5.4.6 (checklist L-01).
//
// Time limits are deadlines, not idle timers (smtp/deadline.hpp): a command line must arrive
// within limits.command_timeout of when its reading starts; a DATA line within data_timeout of
// the previous line's end, and all of DATA within data_timeout + bytes / min_data_rate. Expiry:
// "421 4.4.2 HOST Error: timeout exceeded", close. One timer serves them all: a watchdog coroutine
// beside the conversation cancels the socket when the pending step's deadline passes (issue 12 §2,
// "Time limits" in server_session.cpp); nothing is allocated per command, and an idle session
// holds no read buffer (a few KiB in all: bench/idle_sessions_bench).
//
// Reply texts and log lines follow Postfix smtpd (log parsers key on them): "connect from
// unknown[192.0.2.1]", "QID: client=unknown[192.0.2.1], sasl_method=LOGIN, sasl_username=u",
// "QID: message-id=<…>", "NOQUEUE: reject: RCPT from unknown[…]: 554 5.7.1 …; from=<a> to=<b>
// proto=ESMTP helo=<h>", "disconnect from unknown[…] ehlo=1 mail=1 rcpt=1 data=1 quit=1 commands=5".
//
// Errors: none thrown to the caller; every I/O failure ends the session (logged as "lost
// connection after CMD" / "timeout after CMD"). Pass named variables into the coroutines (g++ 12).
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/thread_pool.hpp>

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "config/config.hpp"
#include "smtp/client_limits.hpp"
#include "smtp/credentials.hpp"
#include "smtp/inbound.hpp"
#include "smtp/server_observer.hpp"

namespace spdlog {
class logger;
}
namespace danerelay::tls {
class ServerContext;
}
namespace danerelay::dns {
class Resolver;
}

namespace danerelay::smtp {

class ConnectionTracker;  // smtp/server.hpp

// Worker threads for password hashing (Credentials::verify is ~10+ ms of CPU: never on the event
// loop). One pool may serve every listener. Destruction joins the threads.
class AuthPool {
 public:
  explicit AuthPool(std::size_t threads = 2);
  ~AuthPool();
  AuthPool(const AuthPool&) = delete;
  AuthPool& operator=(const AuthPool&) = delete;
  [[nodiscard]] boost::asio::thread_pool::executor_type executor() noexcept { return pool_.get_executor(); }

 private:
  boost::asio::thread_pool pool_;
};

// Everything one listener's sessions need. Shared, read-only once the Server starts.
struct ServerSettings {
  config::Listener listener;
  config::Limits limits;
  std::string hostname;                               // greeting/EHLO/Received; empty → gethostname()
  std::shared_ptr<tls::ServerContext> tls;            // null → no STARTTLS / implicit TLS possible
  std::shared_ptr<const Credentials> credentials;     // null → no user can authenticate
  std::shared_ptr<spdlog::logger> log;                // null → spdlog::default_logger()
  std::shared_ptr<ConnectionTracker> tracker;         // shared across listeners; null → the Server's own
  // Failed AUTH per client (limits.max_auth_failures_per_client per 5 minutes). Meant to be ONE
  // for the whole process, shared by every listener; null → the Server makes its own.
  std::shared_ptr<AuthFailureLimiter> auth_failures;
  std::shared_ptr<AuthPool> auth_pool;                // null → the Server makes a 2-thread pool
  std::shared_ptr<const ServerObserver> observer;      // null → nobody is told (smtp/server_observer.hpp)
  // Client names (server.reverse_lookup, server.reverse_lookup_timeout): false or no resolver → no
  // query, every client "unknown". The resolver must outlive the io_context's run and is used from
  // its (single) event-loop thread only.
  bool reverse_lookup = true;
  dns::Resolver* resolver = nullptr;
  std::chrono::milliseconds reverse_lookup_timeout = std::chrono::seconds(5);
};

class ServerSession : public std::enable_shared_from_this<ServerSession> {
 public:
  // `socket` is connected; its executor (a strand) runs the session. `store` must outlive it.
  // `settings` must have log, auth_pool, auth_failures and hostname filled in (the Server does that).
  // `client`: the client's address when it is not the socket's peer (a PROXY protocol header named
  // it, smtp/server.hpp); it is then the address for everything the session decides and logs.
  ServerSession(boost::asio::ip::tcp::socket socket, std::shared_ptr<const ServerSettings> settings, MessageStore& store,
                std::optional<boost::asio::ip::address> client = std::nullopt);
  ~ServerSession();
  ServerSession(const ServerSession&) = delete;
  ServerSession& operator=(const ServerSession&) = delete;

  // The whole conversation; returns when the connection is closed. Call once. Keep the session
  // alive (a shared_ptr) until it completes.
  [[nodiscard]] boost::asio::awaitable<void> run();

  // From any thread: close the connection; run() then completes.
  void stop();

  // "unknown[192.0.2.1]"; "exchange.org.example[10.1.2.3]" once the client name is known.
  [[nodiscard]] const std::string& namaddr() const noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace danerelay::smtp
