// smtp/inbound.hpp — the boundary between the inbound SMTP server and whatever stores accepted
// mail (the relay's spool). The server knows nothing about the queue: it asks a MessageStore
// for space at MAIL, streams DATA into a MessageSink, and replies 250 only when commit() says the
// message is on stable storage.
//
// Plain values; no I/O here. relay/ implements MessageStore over its spool.
#pragma once

#include <boost/asio/awaitable.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace danerelay::smtp {

// RFC 3461 NOTIFY bits (same values as relay::Notify): 0 = not given (acts as FAILURE,DELAY).
inline constexpr std::uint8_t kNotifyNever = 1;
inline constexpr std::uint8_t kNotifySuccess = 2;
inline constexpr std::uint8_t kNotifyFailure = 4;
inline constexpr std::uint8_t kNotifyDelay = 8;

struct InboundRecipient {
  std::string address;       // RCPT TO path without angle brackets
  std::string orcpt;         // RFC 3461 ORCPT, decoded: "rfc822;user@example.org"; empty if none
  std::uint8_t notify = 0;
};

// Everything the server learnt about one message, handed over at end of DATA.
struct InboundEnvelope {
  std::string sender;                      // "" = null reverse-path
  std::vector<InboundRecipient> recipients;
  std::string ret;                         // RFC 3461 RET: "", "FULL" or "HDRS"
  std::string envid;                       // RFC 3461 ENVID, xtext-decoded
  bool eightbit = false;                   // BODY=8BITMIME
  bool smtputf8 = false;                   // SMTPUTF8
  std::uint64_t declared_size = 0;         // SIZE= (0: not given)
  // The client, for logs and the Received: header.
  std::string listener;                    // listener name ("relay", "submission")
  std::string client_name;                 // reverse DNS name or "unknown"
  std::string client_address;              // "192.0.2.1" / "2001:db8::1"
  std::string helo;                        // EHLO/HELO argument
  std::string protocol;                    // RFC 3848: "ESMTP", "ESMTPS", "ESMTPA", "ESMTPSA"
  std::string auth_user;                   // SASL login name, empty if none
  std::string auth_method;                 // "PLAIN" / "LOGIN"
};

struct CommitResult {
  bool ok = false;
  std::string error;  // when !ok: why (logged; the client gets 451 4.3.0)
};

// One message being received. Bytes arrive in order (already dot-unstuffed, CRLF line ends,
// starting with the Received: header the server prepends). Destroying a sink without a
// successful commit() discards the message.
class MessageSink {
 public:
  virtual ~MessageSink() = default;
  [[nodiscard]] virtual const std::string& queue_id() const noexcept = 0;  // 12 upper-case hex
  // Never blocks the event loop on disk; a failure is remembered and reported by commit().
  virtual void write(std::string_view bytes) = 0;
  // Returns once the message (data and directory entry) is durable, or failed. Pass `envelope`
  // as a named variable (g++ 12 coroutine temporaries).
  [[nodiscard]] virtual boost::asio::awaitable<CommitResult> commit(InboundEnvelope envelope) = 0;
};

class MessageStore {
 public:
  virtual ~MessageStore() = default;
  // At MAIL: is there room for a message of `size` bytes (0: unknown) above the configured
  // reserve? false → 452 4.3.1.
  [[nodiscard]] virtual bool has_space(std::uint64_t size) = 0;
  // At the first DATA/BDAT: a new message with a fresh queue id.
  [[nodiscard]] virtual std::unique_ptr<MessageSink> begin() = 0;
};

}  // namespace danerelay::smtp
