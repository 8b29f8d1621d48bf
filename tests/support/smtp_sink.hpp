// tests/support/smtp_sink.hpp — an in-process SMTP server for client tests: listens on one loopback
// address (127.0.0.x or ::1; port 0 = ephemeral), runs on its own thread and io_context, answers
// as configured and records everything it saw.
//
// For tests only. What it can be told to do: offer STARTTLS or not and present a certificate
// chain (PEM files from testsupport::Pki); fail the TLS handshake on purpose (garbage instead of
// a ServerHello); send extra bytes right after its 220 to STARTTLS (the response-injection
// attack, RFC 3207 §5); reply with chosen codes at each stage (greeting, EHLO, MAIL, RCPT per
// address, DATA, end of data); never answer at a chosen stage (timeouts); advertise or hide
// PIPELINING, SIZE, 8BITMIME, SMTPUTF8, DSN.
// What it records (thread-safe snapshots): connections, TLS handshakes (successful and failed),
// the SNI of each handshake, every command line, each transaction's MAIL and RCPT arguments and
// the message body after undoing dot-stuffing (RFC 5321 §4.5.2) — so a test can assert that no
// body arrived where delivery must not happen — and how many command lines arrived per read
// (PIPELINING batches) and whether the final "." came in the same read as the data before it.
//
// Bounded: at most max_connections sessions at a time, command lines ≤ 4096 bytes, bodies ≤
// max_body_bytes, ≤ 10000 commands per connection; the destructor closes every socket and
// joins the thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace danerelay::testsupport {

struct SinkOptions {
  std::string address = "127.0.0.1";   // loopback only
  std::uint16_t port = 0;              // 0: ephemeral
  std::string hostname = "sink.test";  // in the greeting and EHLO reply

  // TLS.
  bool starttls = true;                 // advertise STARTTLS (needs chain_file/key_file)
  std::filesystem::path chain_file;     // PEM, leaf first
  std::filesystem::path key_file;       // PEM private key of the leaf
  bool fail_handshake = false;          // answer the ClientHello with garbage and close
  std::string inject_after_starttls;    // bytes sent in the same write as the 220 to STARTTLS

  // Extensions announced in EHLO.
  bool pipelining = true;
  bool eightbitmime = true;
  bool smtputf8 = false;
  bool dsn = true;
  std::uint64_t size = 0;               // SIZE value; 0: SIZE without a limit
  bool ehlo_supported = true;           // false: EHLO → 502, HELO accepted

  // Replies (full lines without CRLF; multi-line with "\r\n" between lines). Empty: the default.
  std::string greeting;                       // default "220 <hostname> ESMTP sink"; 4xx closes, 5xx then 503s
  std::string ehlo_reply;                     // replaces the whole EHLO reply (e.g. "421 4.3.2 busy")
  std::string mail_reply;                     // default "250 2.1.0 Ok"
  std::map<std::string, std::string> rcpt_replies;  // address (lower case) → reply; default "250 2.1.5 Ok"
  std::string data_reply;                     // default "354 End data with <CR><LF>.<CR><LF>"
  std::string dot_reply;                      // default "250 2.0.0 Ok: queued as S<n>"

  // Stop answering (keep reading) at a stage: "" never, "CONNECT" (no greeting), "EHLO", "MAIL",
  // "RCPT", "DATA", "." (after the body).
  std::string hang_at;

  // Close the connection once it has carried this many messages (0: never), as a server whose
  // idle timeout expired does; idle_close_reply (e.g. "421 4.4.2 sink Error: timeout exceeded")
  // is sent first when set. The close happens right after the reply to the final ".".
  int close_after_bodies = 0;
  std::string idle_close_reply;
  // With close_after_bodies: close only when the next command arrives, without replying (the
  // close races the client's reuse: it looks idle and intact until it sends MAIL).
  bool close_at_next_command = false;

  int max_connections = 16;
  std::size_t max_body_bytes = 8 * 1024 * 1024;
};

struct SinkTransaction {
  int connection = 0;                  // 1-based connection number
  bool tls = false;                    // the transaction ran over TLS
  std::string mail;                    // MAIL argument after "MAIL FROM:", e.g. "<a@b> SIZE=10"
  std::vector<std::string> rcpts;      // RCPT arguments after "RCPT TO:" (all, accepted or not)
  std::vector<std::string> accepted;   // the accepted ones
  std::optional<std::string> body;     // the message after un-dot-stuffing, CRLF line ends, without the final "."
  bool dot_with_data = false;          // the final "." arrived in the same read as the last data bytes
};

struct SinkStats {
  int connections = 0;
  int tls_handshakes = 0;              // completed server-side handshakes
  int tls_failures = 0;                // handshakes that failed (or were failed on purpose)
  std::vector<std::string> sni;        // server name of each completed handshake ("" if none)
  std::vector<std::string> commands;   // every command line received, in order, all connections
  std::vector<SinkTransaction> transactions;  // every MAIL starts one
  std::size_t max_commands_per_read = 0;      // largest number of complete command lines in one read
  [[nodiscard]] int bodies() const;           // transactions with a body
};

// The one sink failure a test may skip on: a port below 1024 (25, like a real MX) cannot be bound
// because this process lacks the privilege (EACCES: not root, no CAP_NET_BIND_SERVICE). Every
// other failure (EADDRINUSE, a broken test PKI, a bad address) is a plain std::runtime_error and
// must fail the test.
class PrivilegedPortDenied : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class SmtpSink {
 public:
  // Binds and starts the thread. Throws PrivilegedPortDenied (see above), std::runtime_error for
  // any other failure (bind, bad TLS files); the message names the address and the cause.
  explicit SmtpSink(SinkOptions options);
  ~SmtpSink();
  SmtpSink(const SmtpSink&) = delete;
  SmtpSink& operator=(const SmtpSink&) = delete;

  [[nodiscard]] std::uint16_t port() const noexcept;
  [[nodiscard]] const std::string& address() const noexcept;

  // A copy of what was recorded so far.
  [[nodiscard]] SinkStats stats() const;
  // How many messages (bodies) arrived so far, without copying them.
  [[nodiscard]] int bodies() const;
  // Waits (≤ timeout) until `connections` sessions have ended; true if they have.
  bool wait_sessions_ended(int connections, std::chrono::milliseconds timeout) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace danerelay::testsupport
