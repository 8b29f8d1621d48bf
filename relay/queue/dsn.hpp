// relay/queue/dsn.hpp — delivery status notifications (RFC 3464): the bounce after a permanent failure
// or the end of the queue lifetime, the delay notice after queue.delay_warning, and (NOTIFY=
// SUCCESS) the success notice. A pure function: envelope, recipient states and the original
// message's text in, a complete RFC 5322 message out. The queue manager commits it to the spool
// with the null sender, like any other message.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "relay/core/queue_state.hpp"

namespace danerelay::relay {

enum class DsnKind : std::uint8_t { failure, delay, success };

struct DsnInput {
  DsnKind kind = DsnKind::failure;
  const Envelope* envelope = nullptr;
  const MessageState* state = nullptr;
  std::vector<std::size_t> recipients;   // indices into envelope->recipients this notice reports
  std::string original;                  // the original message (headers + body, CRLF); RET decides how much is included
  std::string reporting_mta;             // our host name (Reporting-MTA: dns; …, From: MAILER-DAEMON@…)
  Clock::time_point now = Clock::now();
  std::chrono::seconds max_lifetime{0};  // for the delay notice's "will keep trying until" line
  std::string boundary;                  // MIME boundary; empty → derived from the queue id and time
};

// The recipients of `state` that a notice of `kind` must report: per RFC 3461 §4.1 (NOTIFY
// unset = FAILURE,DELAY; NEVER = none), and never any when the envelope sender is null (a
// bounce is never bounced, RFC 5321 §6.1 / RFC 3461 §6.2). For delay notices, recipients already
// covered by one (delay_notified) are left out.
[[nodiscard]] std::vector<std::size_t> dsn_recipients(DsnKind kind, const Envelope& envelope, const MessageState& state,
                                                      const std::vector<std::size_t>& candidates);

// The complete notice: headers (From: MAILER-DAEMON@reporting_mta, To: <sender>, Subject,
// Date, Message-ID, Auto-Submitted: auto-replied, MIME-Version) and a multipart/report;
// report-type=delivery-status body with a human-readable part (explaining DANE failures in
// plain words), a message/delivery-status part (per-message and per-recipient fields:
// Final-Recipient, Original-Recipient, Action, Status, Remote-MTA, Diagnostic-Code,
// Last-Attempt-Date, Will-Retry-Until for delays) and the returned content (text/rfc822-headers
// for RET=HDRS, message/rfc822 otherwise; headers only for delay and success notices). CRLF line
// ends throughout.
[[nodiscard]] std::string make_dsn(const DsnInput& input);

// Plain-language explanation for the human-readable part, from the enhanced status code and
// reason text ("the destination requires authenticated TLS (DANE) and its certificate did not
// match its TLSA records"); empty when the reason text speaks for itself.
[[nodiscard]] std::string explain_reason(const std::string& dsn, const std::string& reason);

}  // namespace danerelay::relay
