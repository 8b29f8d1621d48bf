// relay/cli/cmd_report.cpp — `danerelay report [--since 30d] [--format csv|json]`: the posture
// history from <server.state_dir>/posture-history.json as a series (relay/posture/report.hpp).
// Reads the file the daemon saves; works whether or not the daemon runs (what it counted since
// its last save is not in the file yet). Exit codes: 0 printed (an absent file is an empty
// history, said on stderr), 1 the file is unusable, 2 configuration error, 64 usage.
#include <iostream>

#include "config/values.hpp"
#include "relay/cli/commands.hpp"
#include "relay/posture/recorder.hpp"
#include "relay/posture/report.hpp"

namespace danerelay::relay {

int cmd_report(const GlobalOptions& options, const ReportOptions& report) {
  const std::string who = "danerelay report";
  const auto since = config::parse_duration(report.since);
  const auto seconds = since ? std::chrono::duration_cast<posture::Seconds>(*since) : posture::Seconds(0);
  if (!since || seconds <= posture::Seconds(0) || seconds > posture::Seconds(30 * 86400) ||
      std::chrono::milliseconds(seconds) != *since) {
    std::cerr << who << ": --since " << report.since << ": not a duration from 1s to 30d (e.g. 24h, 7d, 30d)\n";
    return kExitUsage;
  }
  if (report.format != "csv" && report.format != "json") {
    std::cerr << who << ": --format " << report.format << ": must be csv or json\n";
    return kExitUsage;
  }
  auto cfg = load_config(options);
  if (!cfg) return kExitConfig;
  const auto file = posture::history_file(*cfg);
  auto loaded = posture::read_history_file(file);
  if (loaded.warning) {
    std::cerr << who << ": " << *loaded.warning << '\n';
    return kExitFailure;
  }
  if (!loaded.found) std::cerr << who << ": no posture history at " << file.string() << " yet: every bucket is empty\n";
  const auto now = posture::WallClock::now();
  const auto series = posture::report_series(loaded.history, now, seconds);
  std::cout << (report.format == "csv" ? posture::format_report_csv(*series)
                                       : posture::format_report_json(*series, now, seconds))
            << std::flush;
  return kExitOk;
}

}  // namespace danerelay::relay
