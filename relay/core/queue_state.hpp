// relay/core/queue_state.hpp — what the queue keeps per message besides its envelope: per-recipient
// delivery state, attempt count, next attempt, hold and notice flags. The spool stores it
// (crash-safe, replaced whole after every attempt); the scheduler, bounces and `danerelay queue`
// read it. Plain values.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "relay/core/envelope.hpp"

namespace danerelay::relay {

enum class RecipientStatus : std::uint8_t {
  pending,   // not delivered yet (never tried, or deferred: see last_*)
  sent,      // delivered (2xx)
  bounced,   // failed permanently or expired; a bounce was queued when NOTIFY asked for one
};
[[nodiscard]] std::string_view to_string(RecipientStatus status) noexcept;  // "pending", "sent", "bounced"
[[nodiscard]] std::optional<RecipientStatus> parse_recipient_status(std::string_view text) noexcept;

// One recipient's state; index-parallel to Envelope::recipients.
struct RecipientState {
  RecipientStatus status = RecipientStatus::pending;
  // The last attempt's result (empty before the first attempt).
  std::string dsn;            // "4.7.5"
  std::string reason;         // Postfix-style text: "Server certificate not verified", "host … said: 550 …"
  std::string remote_mta;     // host that answered: "mx.example.org" (RFC 3464 Remote-MTA), empty: none
  std::string diagnostic;     // RFC 3464 Diagnostic-Code value: "smtp; 550 5.1.1 No such user", empty: none
  std::int64_t last_attempt = 0;  // unix seconds, 0 = never
  bool delay_notified = false;    // a delay notice covered this recipient
  // Sent or bounced, and the notice NOTIFY asks for (success or failure) is not in the queue yet:
  // one that could not be queued (disk full, …) is tried again at the next attempt, after a
  // restart too, and the message stays queued until every owed notice is.
  bool notice_owed = false;
  friend bool operator==(const RecipientState&, const RecipientState&) = default;
};

struct MessageState {
  std::vector<RecipientState> recipients;
  std::uint32_t attempts = 0;
  std::int64_t next_attempt = 0;   // unix milliseconds; 0 = as soon as possible
  bool hold = false;               // `queue hold`: no delivery until released
  bool forced_expire = false;      // `queue expire`: bounce at the next attempt
  friend bool operator==(const MessageState&, const MessageState&) = default;
};

// A message as the spool holds it. envelope.body/body_offset/size locate the message text.
struct QueuedMessage {
  Envelope envelope;
  MessageState state;
};

}  // namespace danerelay::relay
