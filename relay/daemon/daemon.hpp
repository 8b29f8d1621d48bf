// relay/daemon/daemon.hpp — the running smarthost: the one place where the rooms below meet.
// It opens the validating resolver, recovers the spool, starts the queue manager with the
// delivery path, the control socket and the inbound listeners, and runs until SIGINT/SIGTERM.
// SIGHUP re-reads the server certificate and the credentials file.
#pragma once

#include "config/config.hpp"

namespace danerelay::relay {

// `cfg` is loaded and checked, server.hostname is set and logging is set up (relay/cli/cmd_run.cpp).
// Returns an exit status of relay/core/exit_codes.hpp: 0 after a clean stop, 2 when the
// configuration cannot be put into effect (trust anchor, certificate, credentials), 1 otherwise.
[[nodiscard]] int run_daemon(config::Config cfg);

}  // namespace danerelay::relay
