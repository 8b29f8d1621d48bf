// relay/posture/report.cpp — the `danerelay report` series and its CSV and JSON renderings
// (see report.hpp).
#include "relay/posture/report.hpp"

#include <nlohmann/json.hpp>

namespace danerelay::relay::posture {

std::optional<ReportSeries> report_series(const History& history, WallClock::time_point now, Seconds since) {
  const Seconds longest = kDailyWidth * static_cast<std::int64_t>(kDailyBuckets);
  if (since <= Seconds(0) || since > longest) return std::nullopt;
  const bool fine = since <= kFineWidth * static_cast<std::int64_t>(kFineBuckets);
  const Series& s = fine ? history.fine : history.daily;
  auto all = s.dense(now);
  const auto wanted = static_cast<std::size_t>((since.count() + s.width().count() - 1) / s.width().count());
  ReportSeries out{s.width(), {}};
  out.buckets.assign(all.end() - static_cast<std::ptrdiff_t>(std::min(wanted, all.size())), all.end());
  return out;
}

std::string format_report_csv(const ReportSeries& series) {
  std::string out = "start,width";
  for (std::size_t i = 0; i < kOutcomes; ++i) out += "," + std::string(to_string(static_cast<Outcome>(i)));
  out += "\n";
  for (const auto& b : series.buckets) {
    out += iso8601_utc(b.start) + "," + std::to_string(series.width.count());
    for (auto v : b.counts.n) out += "," + std::to_string(v);
    out += "\n";
  }
  return out;
}

std::string format_report_json(const ReportSeries& series, WallClock::time_point now, Seconds since) {
  using json = nlohmann::json;
  json buckets = json::array();
  Counts totals;
  for (const auto& b : series.buckets) {
    json row{{"start", iso8601_utc(b.start)}, {"width", series.width.count()}};
    for (std::size_t i = 0; i < kOutcomes; ++i) row[std::string(to_string(static_cast<Outcome>(i)))] = b.counts.n[i];
    buckets.push_back(std::move(row));
    totals += b.counts;
  }
  json t = json::object();
  for (std::size_t i = 0; i < kOutcomes; ++i) t[std::string(to_string(static_cast<Outcome>(i)))] = totals.n[i];
  const auto now_s = std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
  json j{{"generated", iso8601_utc(now_s)},
         {"since_seconds", since.count()},
         {"width", series.width.count()},
         {"buckets", std::move(buckets)},
         {"totals", std::move(t)}};
  return j.dump(2) + "\n";
}

}  // namespace danerelay::relay::posture
