// relay/core/envelope.hpp — what the queue stores and delivery consumes for one message: the envelope
// with its DSN parameters (RFC 3461), and the per-recipient result of one delivery attempt.
// Plain values; the spool (de)serialises them, the SMTP client reads them, the log prints them.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "relay/core/failure.hpp"
#include "relay/core/queue_id.hpp"

namespace danerelay::relay {

// RFC 3461 §4.1 NOTIFY: a set of flags; `unset` behaves as FAILURE,DELAY (§4.1, last paragraph).
enum Notify : std::uint8_t { notify_unset = 0, notify_never = 1, notify_success = 2, notify_failure = 4, notify_delay = 8 };

struct Recipient {
  std::string address;       // as given in RCPT TO, without angle brackets
  std::string orcpt;         // RFC 3461 §4.2 ORCPT value ("rfc822;user@example.org"), empty if none
  std::uint8_t notify = notify_unset;
};

// RFC 3461 §4.3 RET.
enum class Ret : std::uint8_t { unspecified, full, headers };

using Clock = std::chrono::system_clock;

struct Envelope {
  QueueId id = QueueId::next();
  std::string sender;                  // "" is the null reverse-path (bounces)
  std::vector<Recipient> recipients;
  Ret ret = Ret::unspecified;
  std::string envid;                   // RFC 3461 §4.4 ENVID, xtext-decoded
  std::uint64_t size = 0;              // message bytes as stored (CRLF line ends)
  bool eightbit = false;               // BODY=8BITMIME needed (RFC 6152)
  bool smtputf8 = false;               // SMTPUTF8 needed (RFC 6531)
  Clock::time_point arrival = Clock::now();
  // The message file (headers + body, CRLF). A string, not a std::filesystem::path: a path keeps
  // its parsed components on the heap too (≈ 350 bytes more per queued message).
  std::string body;
  std::uint64_t body_offset = 0;       // where the message starts in that file (the spool puts the envelope first)
};

enum class DeliveryStatus : std::uint8_t { sent, deferred, bounced };
[[nodiscard]] std::string_view to_string(DeliveryStatus status) noexcept;  // "sent", "deferred", "bounced"

// Postfix's four delay stages (log_adhoc.c): before the queue manager, in the queue manager,
// connection set-up (DNS, connect, greeting, EHLO, TLS), transmission.
struct DelayStages {
  std::chrono::microseconds before_queue{0};
  std::chrono::microseconds in_queue{0};
  std::chrono::microseconds connection_setup{0};
  std::chrono::microseconds transmission{0};
};

// What TLS did for the connection that carried (or failed to carry) a recipient.
struct TlsSummary {
  std::string level;         // configured level: "dane", "dane-only", "may", ...
  std::string feature;       // Postfix 3.11 tls= value: "dane", "dane:encrypt", "!dane", "dane?", ...
  std::string trust;         // "Verified", "Trusted", "Untrusted", "Anonymous"; empty: no TLS
  std::string protocol;      // "TLSv1.3"
  std::string cipher;
  std::string matched;       // DANE record that matched, "3 1 1 <hex>"
  int depth = -1;            // chain depth it matched at
};

struct RecipientResult {
  Recipient recipient;
  DeliveryStatus status = DeliveryStatus::deferred;
  std::string dsn;            // enhanced status "2.0.0", from the outcome policy (relay/delivery/outcome.hpp)
  std::optional<Failure> failure;  // the kind that decided it; none when a server reply did
  std::string reason;         // remote reply ("250 2.0.0 Ok: queued as X") or our text
  std::string relay_host;     // empty: no connection was made (logged as relay=none)
  std::string relay_address;
  std::uint16_t relay_port = 0;
  int connection_use = 0;     // >1 when the connection was reused (conn_use=N)
  int reply_code = 0;         // the remote SMTP reply code, 0 when there was none
  std::string command;        // the command that reply answered: "RCPT TO", "DATA", "." ...
  int attempt = 1;            // delivery attempts so far, this one included
  std::string dnssec_mx;      // "secure" / "insecure": the MX RRset's verdict
  std::string dnssec_host;    // the relay host's address verdict
  TlsSummary tls;
  DelayStages delays;
  Clock::time_point done = Clock::now();
};

}  // namespace danerelay::relay
