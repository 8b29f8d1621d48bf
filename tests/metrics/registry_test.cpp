// tests/metrics/registry_test.cpp — the exposition text format 0.0.4, exactly: HELP/TYPE lines,
// escaping, histogram buckets (cumulative, le="+Inf"), _sum and _count, deterministic order.
#include "relay/metrics/registry.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <thread>

namespace danerelay::relay::metrics {
namespace {

struct EscapeCase {
  std::string_view name;
  std::string_view in;
  std::string_view label;
  std::string_view help;
};
const EscapeCase kEscapes[] = {
    {"Plain", "dane", "dane", "dane"},
    {"Backslash", R"(a\b)", R"(a\\b)", R"(a\\b)"},
    {"Quote", R"(say "hi")", R"(say \"hi\")", R"(say "hi")"},
    {"Newline", "two\nlines", R"(two\nlines)", R"(two\nlines)"},
    {"All", "\\\"\n", R"(\\\"\n)", "\\\\\"\\n"},
    {"Empty", "", "", ""},
};
class Escaping : public testing::TestWithParam<EscapeCase> {};
TEST_P(Escaping, LabelValuesAndHelp) {
  EXPECT_EQ(escape_label_value(GetParam().in), GetParam().label);
  EXPECT_EQ(escape_help(GetParam().in), GetParam().help);
}
INSTANTIATE_TEST_SUITE_P(Exposition, Escaping, testing::ValuesIn(kEscapes), [](const auto& i) { return std::string(i.param.name); });

struct ValueCase {
  std::string_view name;
  double v;
  std::string_view text;
};
const ValueCase kValues[] = {
    {"Zero", 0, "0"},
    {"Integer", 42, "42"},
    {"Fraction", 0.005, "0.005"},
    {"TwoAndAHalf", 2.5, "2.5"},
    {"Large", 86400, "86400"},
    {"PlusInf", std::numeric_limits<double>::infinity(), "+Inf"},
    {"MinusInf", -std::numeric_limits<double>::infinity(), "-Inf"},
    {"NaN", std::numeric_limits<double>::quiet_NaN(), "NaN"},
};
class Values : public testing::TestWithParam<ValueCase> {};
TEST_P(Values, ShortestRoundTrip) { EXPECT_EQ(format_value(GetParam().v), GetParam().text); }
INSTANTIATE_TEST_SUITE_P(Exposition, Values, testing::ValuesIn(kValues), [](const auto& i) { return std::string(i.param.name); });

TEST(Registry, CountersAndGaugesRenderExactlyInNameAndLabelOrder) {
  Registry r;
  auto& d = r.counter("x_deliveries_total", "Deliveries by status.", {"status", "tls"});
  auto& g = r.gauge("x_queue_messages", "Queue.", {"queue"});
  r.counter("x_auth_failures_total", "Failed AUTH.\nSecond line \\ here.");
  d.add({"sent", "dane"});
  d.add({"deferred", "dane"}, 2);
  d.add({"sent", "dane"});
  d.add({"sent", "a\"b"});
  d.add({"sent"});           // wrong arity: ignored
  d.add({"sent", "dane"}, -1);  // a counter never goes down: ignored
  g.set({"hold"}, 3);
  g.set({"active"}, 1);
  g.add({"active"}, -1);
  EXPECT_EQ(r.render(),
            "# HELP x_auth_failures_total Failed AUTH.\\nSecond line \\\\ here.\n"
            "# TYPE x_auth_failures_total counter\n"
            "x_auth_failures_total 0\n"
            "# HELP x_deliveries_total Deliveries by status.\n"
            "# TYPE x_deliveries_total counter\n"
            "x_deliveries_total{status=\"deferred\",tls=\"dane\"} 2\n"
            "x_deliveries_total{status=\"sent\",tls=\"a\\\"b\"} 1\n"
            "x_deliveries_total{status=\"sent\",tls=\"dane\"} 2\n"
            "# HELP x_queue_messages Queue.\n"
            "# TYPE x_queue_messages gauge\n"
            "x_queue_messages{queue=\"active\"} 0\n"
            "x_queue_messages{queue=\"hold\"} 3\n");
  EXPECT_EQ(d.value({"sent", "dane"}), 2);
  EXPECT_EQ(d.value({"bounced", "dane"}), 0);
}

TEST(Registry, HistogramBucketsAreCumulativeEndInPlusInfThenSumAndCount) {
  Registry r;
  auto& h = r.histogram("x_delay_seconds", "Delay.", {0.25, 1, 10}, {"stage"});
  h.observe({"transmission"}, 0.125);
  h.observe({"transmission"}, 0.25);  // on a bound: le is "less than or equal"
  h.observe({"transmission"}, 5);
  h.observe({"transmission"}, 50);    // above every bound: only +Inf
  h.observe({"connection_setup"}, 0.5);
  h.add({"transmission"});            // not for histograms: ignored
  EXPECT_EQ(r.render(),
            "# HELP x_delay_seconds Delay.\n"
            "# TYPE x_delay_seconds histogram\n"
            "x_delay_seconds_bucket{stage=\"connection_setup\",le=\"0.25\"} 0\n"
            "x_delay_seconds_bucket{stage=\"connection_setup\",le=\"1\"} 1\n"
            "x_delay_seconds_bucket{stage=\"connection_setup\",le=\"10\"} 1\n"
            "x_delay_seconds_bucket{stage=\"connection_setup\",le=\"+Inf\"} 1\n"
            "x_delay_seconds_sum{stage=\"connection_setup\"} 0.5\n"
            "x_delay_seconds_count{stage=\"connection_setup\"} 1\n"
            "x_delay_seconds_bucket{stage=\"transmission\",le=\"0.25\"} 2\n"
            "x_delay_seconds_bucket{stage=\"transmission\",le=\"1\"} 2\n"
            "x_delay_seconds_bucket{stage=\"transmission\",le=\"10\"} 3\n"
            "x_delay_seconds_bucket{stage=\"transmission\",le=\"+Inf\"} 4\n"
            "x_delay_seconds_sum{stage=\"transmission\"} 55.375\n"
            "x_delay_seconds_count{stage=\"transmission\"} 4\n");
}

TEST(Registry, UnlabelledHistogramHasOnlyLe) {
  Registry r;
  auto& h = r.histogram("x_flush", "Flush.", {1, 2});
  h.observe({}, 2);
  EXPECT_EQ(r.render(),
            "# HELP x_flush Flush.\n# TYPE x_flush histogram\n"
            "x_flush_bucket{le=\"1\"} 0\nx_flush_bucket{le=\"2\"} 1\nx_flush_bucket{le=\"+Inf\"} 1\n"
            "x_flush_sum 2\nx_flush_count 1\n");
}

TEST(Registry, ALabelledFamilyWithoutSeriesHasOnlyItsHelpAndType) {
  Registry r;
  r.counter("x_rejections_total", "Rejections.", {"code"});
  EXPECT_EQ(r.render(), "# HELP x_rejections_total Rejections.\n# TYPE x_rejections_total counter\n");
}

TEST(Registry, UpdatesFromSeveralThreadsAreAllCounted) {
  Registry r;
  auto& c = r.counter("x_total", "X.");
  auto& h = r.histogram("x_h", "H.", {1});
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10000; ++i) {
        c.add({});
        h.observe({}, 1);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(c.value({}), 40000);
  EXPECT_EQ(h.value({}), 40000);
}

}  // namespace
}  // namespace danerelay::relay::metrics
