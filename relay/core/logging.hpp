// relay/core/logging.hpp — spdlog set-up: one named logger per service, Postfix-style lines.
//
// Lines look like syslog's: "2026-11-23T10:00:00.123456+0000 danerelay/dns[4242]: warning: text".
// The name is <log.syslog_name>/<service> (ecosystem §9.2), so `journalctl -t danerelay/smtp`
// and pflogsumm --syslog-name=danerelay work. Under systemd (JOURNAL_STREAM set) the timestamp is
// left to journald. Info lines carry no level word, warnings say "warning:", as Postfix does.
#pragma once

#include <spdlog/logger.h>

#include <memory>
#include <string_view>

#include "config/config.hpp"

namespace danerelay::relay {

// (Re)configures logging from the settings; safe to call again after a config reload.
void setup_logging(const config::LogSettings& settings);

// The logger for one service ("dns", "smtp", "qmgr", "main", ...), created on first use.
[[nodiscard]] std::shared_ptr<spdlog::logger> logger(std::string_view service);

}  // namespace danerelay::relay
