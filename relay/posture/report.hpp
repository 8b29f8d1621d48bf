// relay/posture/report.hpp — `danerelay report`: the posture history as a series for machines
// (the coalition's adoption measurement), CSV or JSON. Pure: history and time in, text out.
//
// A window up to 24 hours is cut from the 5-minute series, a longer one (up to 30 days) from the
// daily series; every bucket of the window is a row, empty ones as zeros, oldest first, the last
// one being the bucket that holds `now`. Columns: start (ISO 8601 UTC), width (seconds),
// verified, trusted, unauthenticated, plaintext, deferred, bounced (classes: history.hpp).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "relay/posture/history.hpp"

namespace danerelay::relay::posture {

struct ReportSeries {
  Seconds width{0};
  std::vector<Bucket> buckets;
};

// nullopt when `since` is not within (0, 30 days].
[[nodiscard]] std::optional<ReportSeries> report_series(const History& history, WallClock::time_point now, Seconds since);

[[nodiscard]] std::string format_report_csv(const ReportSeries& series);
// {"generated": ISO, "since_seconds": N, "width": W, "buckets": [{"start": ISO, "width": W, "verified": n, …}], "totals": {…}}
[[nodiscard]] std::string format_report_json(const ReportSeries& series, WallClock::time_point now, Seconds since);

}  // namespace danerelay::relay::posture
