// tests/support/smtp_injector.hpp — a small blocking SMTP client for end-to-end tests, the crash
// test and the accept benchmark: it plays the organisation's mail server (Exchange, a printer,
// an application) that submits mail to danerelay. Plain TCP to a loopback address, optional
// STARTTLS (OpenSSL; the relay's certificate is not verified — clients of a smarthost often
// don't, and the tests are about the relay), optional AUTH PLAIN or LOGIN, then transactions.
//
// Every call returns the server's replies as text, so a test can assert on exact codes. Errors
// (connection refused, timeout, TLS failure) throw std::runtime_error. Reads are bounded by a
// receive timeout (SO_RCVTIMEO) so a hung server fails the test instead of hanging it.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace danerelay::testsupport {

class SmtpInjector {
 public:
  // Connects and reads the greeting (greeting() returns it). `source`: the client's own address,
  // bound before connecting (e.g. "127.0.0.161", a world address with a PTR); empty: the kernel's.
  SmtpInjector(const std::string& address, std::uint16_t port,
               std::chrono::milliseconds timeout = std::chrono::seconds(30), bool implicit_tls = false,
               const std::string& source = "");
  ~SmtpInjector();
  SmtpInjector(const SmtpInjector&) = delete;
  SmtpInjector& operator=(const SmtpInjector&) = delete;

  [[nodiscard]] const std::string& greeting() const noexcept { return greeting_; }

  // Sends `line` + CRLF and returns the whole reply ("250-…\r\n250 …" without the final CRLF).
  std::string command(const std::string& line);
  // Raw bytes, no CRLF added; then reads `replies` complete replies (0: none) joined by "\n".
  std::string raw(const std::string& bytes, int replies);
  // STARTTLS (expects 220) and the handshake; returns the 220 reply.
  std::string starttls();
  // AUTH PLAIN with an initial response, or AUTH LOGIN in three steps; returns the final reply.
  std::string auth_plain(const std::string& user, const std::string& password);
  std::string auth_login(const std::string& user, const std::string& password);

  // One transaction: MAIL, RCPTs, DATA, message (dot-stuffed here), ".". Returns the reply to
  // the final "." (or the first failing reply, prefixed with the command that got it).
  std::string send(const std::string& from, const std::vector<std::string>& to, const std::string& message,
                   const std::string& mail_params = "", const std::string& rcpt_params = "");

  void quit();
  [[nodiscard]] bool tls() const noexcept { return ssl_ != nullptr; }
  // The queue id in "250 2.0.0 Ok: queued as QID" (empty if none).
  [[nodiscard]] static std::string queued_as(const std::string& reply);

 private:
  void write_all(const std::string& bytes);
  std::string read_reply();
  bool fill();
  void handshake();

  int fd_ = -1;
  void* ctx_ = nullptr;   // SSL_CTX*
  void* ssl_ = nullptr;   // SSL*
  std::string buffer_;
  std::string greeting_;
};

}  // namespace danerelay::testsupport
