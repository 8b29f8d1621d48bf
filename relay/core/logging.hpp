// relay/core/logging.hpp — spdlog set-up: one named logger per service, Postfix-style lines.
//
// Lines look like syslog's: "2026-11-23T10:00:00.123456+0000 danerelay/dns[4242]: warning: text".
// The name is <log.syslog_name>/<service> (ecosystem §9.2). log.target picks where lines go:
// journald natively (SYSLOG_IDENTIFIER=<name>, priority, facility mail, the fields of
// journal_fields()), so `journalctl -t danerelay/smtp` finds one service and `journalctl -o short`
// prints lines pflogsumm --syslog-name=danerelay counts; syslog(3) with the same identifier; or
// stderr with an ISO timestamp (none when systemd's JOURNAL_STREAM is set, journald adds it).
// Info lines carry no level word, warnings say "warning:", as Postfix does.
#pragma once

#include <spdlog/logger.h>

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/config.hpp"

namespace danerelay::relay {

// (Re)configures logging from the settings; safe to call again after a config reload.
void setup_logging(const config::LogSettings& settings);

// log.target with `auto` resolved: journal when JOURNAL_STREAM is set, else stderr.
[[nodiscard]] config::LogSettings::Target effective_target(config::LogSettings::Target target);

// The structured journald fields of a log line (pure): QUEUE_ID from a leading "QID: ", and from a
// delivery line RECIPIENT_DOMAIN (of to=<…>, lower case), DSN and STATUS. Sent as DANERELAY_<name>.
[[nodiscard]] std::vector<std::pair<std::string, std::string>> journal_fields(std::string_view message);

// The logger for one service ("dns", "smtp", "qmgr", "main", ...), created on first use.
[[nodiscard]] std::shared_ptr<spdlog::logger> logger(std::string_view service);

}  // namespace danerelay::relay
