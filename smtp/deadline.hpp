// smtp/deadline.hpp — the inbound server's DATA time limit as plain arithmetic (no clock, no I/O),
// so that the rule can be checked with a table instead of a slow client.
//
// Finding 4 ("trust at the edges"): a time limit per read lets a client hold a session forever
// by sending a byte now and then. The session therefore uses absolute deadlines:
//   - a command line must arrive in full within limits.command_timeout of the moment the server
//     starts reading it (that one is a plain sum, computed in server_session.cpp);
//   - a DATA line must arrive in full within limits.data_timeout of the moment the previous
//     line ended (Postfix smtpd_per_record_deadline), AND all of DATA is bounded by
//     data_timeout + bytes received / limits.min_data_rate (Postfix 3.7 smtpd_min_data_rate), so
//     whole lines sent just inside the per-line limit cannot hold the session either, while a
//     client sending at least min_data_rate bytes per second never runs out of time.
#pragma once

#include <cstdint>

#include "config/config.hpp"

namespace danerelay::smtp {

// When, counted from the start of DATA (the 354), the line that began `line_start` after it
// must be complete, once `bytes` octets of DATA have been received:
//     min(line_start + data_timeout, data_timeout + bytes / min_data_rate)
// `min_data_rate` is in bytes per second; 0 gives no rate term (the per-line limit alone).
// Never overflows: the result saturates at Duration::max(). Negative inputs count as 0.
[[nodiscard]] config::Duration data_line_deadline(config::Duration data_timeout, config::Duration line_start,
                                                  std::uint64_t bytes, std::uint32_t min_data_rate) noexcept;

}  // namespace danerelay::smtp
