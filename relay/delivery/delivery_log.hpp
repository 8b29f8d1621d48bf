// relay/delivery/delivery_log.hpp — the per-recipient delivery line, in Postfix's exact field order and
// wording (postfix/src/global/log_adhoc.c), so pflogsumm, postfix_exporter and grok patterns
// read danerelay's logs unchanged:
//
//   QID: to=<rcpt>[, orig_to=<orig>], relay=HOST[IP]:PORT[, conn_use=N], delay=D,
//        delays=a/b/c/d[, tls=FEATURE], dsn=X.Y.Z, status=sent|deferred|bounced (REASON)
//
// The tls= field is Postfix 3.11's and opt-in (log.tls_feature_status): bookworm's pflogsumm
// 1.1.5 drops every line that has it.
#pragma once

#include <chrono>
#include <string>

#include "relay/core/envelope.hpp"

namespace danerelay::relay {

// A delay as Postfix prints it (format_tv with 2 significant digits, at most 2 decimals):
// 0.42, 0.01, 0, 1.2, 13.
[[nodiscard]] std::string format_delay(std::chrono::microseconds d);

[[nodiscard]] std::string delivery_line(const Envelope& envelope, const RecipientResult& result, bool tls_feature_status);

// log.format = "json": one object per line, KumoMTA's record shape (type, id, sender, recipient,
// site, size, response{code, enhanced_code{class,subject,detail}, content, command},
// peer_address{name, addr}, timestamp, event_time, num_attempts, tls_protocol_version, tls_cipher)
// plus the DANE facts KumoMTA lacks: tls_level, tls_feature, tls_trust, dane{matched, depth},
// dnssec{mx, host}. type is Delivery, TransientFailure or Bounce.
[[nodiscard]] std::string delivery_json(const Envelope& envelope, const RecipientResult& result);

}  // namespace danerelay::relay
