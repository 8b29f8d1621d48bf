// relay/cli/cmd_run.cpp — `danerelay run`: the smarthost in the foreground. Loads the
// configuration (exit 2 on an error), fills in the host name, sets up logging, logs the warnings
// check-config would print, and hands over to the daemon (relay/daemon/daemon.hpp).
#include <unistd.h>

#include "relay/cli/commands.hpp"
#include "relay/core/logging.hpp"
#include "relay/daemon/daemon.hpp"

namespace danerelay::relay {

namespace {

std::string hostname_of(const config::Config& cfg) {
  if (!cfg.server.hostname.empty()) return cfg.server.hostname;
  char name[256] = {};
  if (gethostname(name, sizeof name - 1) == 0 && name[0] != '\0') return name;
  return "localhost";
}

}  // namespace

int cmd_run(const GlobalOptions& options) {
  auto cfg = load_config(options);
  if (!cfg) return kExitConfig;
  cfg->server.hostname = hostname_of(*cfg);
  setup_logging(cfg->log);
  auto log = logger("main");
  for (const auto& w : config_warnings(*cfg)) log->warn("{}", w.substr(w.find("warning: ") + 9));
  return run_daemon(std::move(*cfg));
}

}  // namespace danerelay::relay
