// relay/metrics/registry.hpp — a small Prometheus metrics registry: counters, gauges and
// histograms with fixed buckets, each a family of series keyed by label values, and the text
// exposition format 0.0.4 written by hand (prometheus.io/docs/instrumenting/exposition_formats).
//
// What this is: values in memory and render(), a pure function of them. What it is not: the HTTP
// server (relay/metrics/http_server.hpp) or what the relay counts (relay/metrics/relay_metrics.hpp).
//
// Format rules followed (and table-tested, tests/metrics/registry_test.cpp): one "# HELP" and one
// "# TYPE" line per family; HELP text escapes \ and newline; label values escape \, " and newline;
// a histogram writes cumulative NAME_bucket{…,le="B"} series ending in le="+Inf", then NAME_sum
// and NAME_count; values are shortest round-trip decimals ("+Inf", "-Inf", "NaN" spelled so).
// Order is deterministic: families by name, series by their label values.
//
// Threads: every member function may be called from any thread (one mutex; the daemon updates
// from its event loop and from the spool's disk thread, the HTTP server renders). Family
// references stay valid for the registry's lifetime.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace danerelay::relay::metrics {

enum class Type { counter, gauge, histogram };

using Labels = std::vector<std::string>;  // values, in the order of the family's label names

class Registry;

// One metric family. Updates with label values that do not match the label names in number
// are ignored (a programming error must not take the daemon down; the tests catch it).
class Family {
 public:
  // Counter and gauge: add `v` (counters: v >= 0, others ignored). Creates the series at 0 first.
  void add(const Labels& labels, double v = 1);
  // Gauge: set the value.
  void set(const Labels& labels, double v);
  // Histogram: one observation.
  void observe(const Labels& labels, double v);
  // Creates the series (at 0) so that it is exposed before anything happened.
  void touch(const Labels& labels);

  // Tests: the value of a counter/gauge series, or a histogram's count; 0 when absent.
  [[nodiscard]] double value(const Labels& labels) const;

  [[nodiscard]] const std::string& name() const noexcept { return name_; }

 private:
  friend class Registry;
  struct Series {
    double value = 0;                    // counter, gauge
    std::vector<std::uint64_t> buckets;  // histogram: per bucket (not cumulative), + one for +Inf
    double sum = 0;
    std::uint64_t count = 0;
  };
  Family(std::mutex& mutex, std::string name, std::string help, Type type, std::vector<std::string> label_names,
         std::vector<double> bounds);
  Series* series(const Labels& labels);  // mutex held
  void render(std::string& out) const;   // mutex held

  std::mutex& mutex_;
  std::string name_;
  std::string help_;
  Type type_;
  std::vector<std::string> label_names_;
  std::vector<double> bounds_;  // histogram upper bounds, ascending, without +Inf
  std::map<Labels, Series> series_;
};

class Registry {
 public:
  Registry() = default;
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  // A family without labels gets its one series at once (exposed as 0).
  Family& counter(std::string name, std::string help, std::vector<std::string> label_names = {});
  Family& gauge(std::string name, std::string help, std::vector<std::string> label_names = {});
  // `bounds`: ascending upper bounds; +Inf is added.
  Family& histogram(std::string name, std::string help, std::vector<double> bounds, std::vector<std::string> label_names = {});

  // The text exposition format 0.0.4.
  [[nodiscard]] std::string render() const;

 private:
  Family& add(std::string name, std::string help, Type type, std::vector<std::string> label_names, std::vector<double> bounds);
  mutable std::mutex mutex_;
  std::map<std::string, std::unique_ptr<Family>> families_;  // by name: the render order
};

// Exposition details, public for their table tests.
[[nodiscard]] std::string escape_label_value(std::string_view v);  // \ → \\, " → \", newline → \n
[[nodiscard]] std::string escape_help(std::string_view v);         // \ → \\, newline → \n
[[nodiscard]] std::string format_value(double v);                  // shortest round trip; +Inf, -Inf, NaN

// The content type of render()'s output.
inline constexpr std::string_view kContentType = "text/plain; version=0.0.4; charset=utf-8";

}  // namespace danerelay::relay::metrics
