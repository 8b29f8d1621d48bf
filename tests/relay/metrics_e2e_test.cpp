// tests/relay/metrics_e2e_test.cpp — `danerelay run` with [metrics] enabled over the signed test
// world: a known delivery mix, then /metrics scraped and checked for EXACT counts, its histograms
// read by hand (cumulative _bucket, le="+Inf" = _count, _sum), and the whole scrape passed through
// a real Prometheus exposition parser (Debian's python3-prometheus-client). The health checks
// before the DNSSEC self-test passed (never, here: it asks a bogus zone) and after.
//
// Inbound: a looping message refused (554 5.4.6), a failed AUTH, a relay denial (554 5.7.1).
// The mix (one message each, from a listener that allows 127.0.0.0/8):
//   secure.test       DANE-EE matches                 sent, verified, dane_result ok (D-10)
//   expiredleaf.test  the sink shows another cert     deferred 4.7.5, failed, auth_failed (D-39)
//   insecure.test     unsigned, no STARTTLS offered   sent in plaintext, insecure_chain (D-12, D-24)
//   bogus-ds.test     MX lookup bogus                 deferred 4.4.3, no connection, tempfail (D-05)
#include <gtest/gtest.h>

#include <csignal>
#include <cstdio>
#include <regex>
#include <thread>

#include "tests/metrics/http_client.hpp"
#include "tests/relay/relay_fixture.hpp"

namespace danerelay::relay::e2e {
namespace {

using namespace std::chrono_literals;

Shared* shared = nullptr;

// One sample's value from exposition text ("name{labels} value"), or -1 when absent.
double sample(const std::string& text, const std::string& series) {
  const std::string key = "\n" + series + " ";
  const auto at = ("\n" + text).find(key);
  if (at == std::string::npos) return -1;
  const auto start = at + key.size() - 1;
  return std::stod(text.substr(start, text.find('\n', start) - start));
}

class MetricsEndToEnd : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { shared = new Shared(); }
  static void TearDownTestSuite() {
    delete shared;
    shared = nullptr;
  }
  void TearDown() override {
    if (daemon_) {
      daemon_->signal(SIGTERM);
      EXPECT_EQ(daemon_->wait(20s), 0);
      if (HasFailure()) std::cerr << "---- daemon log ----\n" << daemon_->log();
    }
  }

  // The daemon with metrics on a free port; `self_test_name` "." passes, a bogus zone never does.
  void start(const std::string& self_test_name) {
    static int counter = 0;
    metrics_port_ = testsupport::free_port();
    instance_ = std::make_unique<Instance>(*shared, shared->dir.path() / ("m" + std::to_string(++counter)),
                                           "[metrics]\nenabled = true\naddress = \"127.0.0.1:" + std::to_string(metrics_port_) +
                                               "\"\n");
    std::string text = read_file(instance_->config);
    const auto dns = text.find("[dns]\n");
    ASSERT_NE(dns, std::string::npos);
    text.insert(dns + 6, "self_test_name = \"" + self_test_name + "\"\n");
    std::ofstream(instance_->config) << text;
    daemon_ = std::make_unique<testsupport::Daemon>(DANERELAY_BINARY, instance_->config, instance_->log);
    ASSERT_TRUE(daemon_->wait_listening("127.0.0.1", instance_->relay_port, 20s)) << daemon_->log();
    ASSERT_TRUE(daemon_->wait_listening("127.0.0.1", metrics_port_, 10s)) << daemon_->log();
  }

  std::string scrape() {
    const auto r = testsupport::http_get("127.0.0.1", metrics_port_, "/metrics");
    EXPECT_EQ(r.status, 200) << r.raw;
    EXPECT_NE(r.head.find("Content-Type: text/plain; version=0.0.4; charset=utf-8"), std::string::npos) << r.head;
    return r.body;
  }

  std::string submit(const std::string& to) {
    testsupport::SmtpInjector c("127.0.0.1", instance_->relay_port);
    c.command("EHLO exchange.org.test");
    auto r = c.send("sender@org.test", {to}, "From: <sender@org.test>\r\nTo: <" + to + ">\r\nSubject: metrics\r\n\r\nmetrics\r\n");
    c.quit();
    return r;
  }

  std::uint16_t metrics_port_ = 0;
  std::unique_ptr<Instance> instance_;
  std::unique_ptr<testsupport::Daemon> daemon_;
};

TEST_F(MetricsEndToEnd, KnownDeliveryMixGivesExactCountsThatARealParserReads) {
  auto mx = shared->sink("127.0.0.11", "mx.secure.test");
  auto mx6 = shared->sink("::1", "mx.secure.test");
  auto wrong = shared->sink("127.0.0.142", "mx.secure.test");  // not expiredleaf's own certificate
  auto plain = shared->sink("127.0.0.31", "");                  // no STARTTLS
  if (!mx || !mx6 || !wrong || !plain) GTEST_SKIP() << "cannot listen on port 25: run as root, as CI does";
  start(".");
  if (HasFatalFailure()) return;
  ASSERT_TRUE(daemon_->wait_log("DNSSEC self-test (. DNSKEY): validation works", 10s)) << daemon_->log();
  EXPECT_EQ(testsupport::http_get("127.0.0.1", metrics_port_, "/healthz/ready").status, 200);
  EXPECT_EQ(testsupport::http_get("127.0.0.1", metrics_port_, "/healthz/live").status, 200);

  for (const char* to : {"user@secure.test", "user@expiredleaf.test", "user@insecure.test", "user@bogus-ds.test"}) {
    EXPECT_EQ(submit(to).substr(0, 3), "250") << to;
  }
  // Inbound refusals: a mail loop (L-01: 50 Received: fields, 554 5.4.6) on the relay listener; a
  // failed AUTH and a relay denial (554 5.7.1) on the submission listener.
  {
    testsupport::SmtpInjector c("127.0.0.1", instance_->relay_port);
    c.command("EHLO exchange.org.test");
    std::string looping;
    for (int i = 0; i < 50; ++i) looping += "Received: from hop" + std::to_string(i) + ".org.test by relay; Thu, 3 Dec 2026 12:00:00 +0000\r\n";
    EXPECT_EQ(c.send("sender@org.test", {"user@secure.test"}, looping + "Subject: loop\r\n\r\nloop\r\n").substr(0, 3), "554");
    c.quit();
  }
  {
    testsupport::SmtpInjector c("127.0.0.1", instance_->submission_port);
    c.command("EHLO printer.org.test");
    ASSERT_EQ(c.starttls().substr(0, 3), "220");
    c.command("EHLO printer.org.test");
    EXPECT_EQ(c.auth_login("alice", "wrong").substr(0, 3), "535");
    EXPECT_EQ(c.command("MAIL FROM:<printer@org.test>").substr(0, 3), "250");
    EXPECT_EQ(c.command("RCPT TO:<someone@secure.test>").substr(0, 3), "554");
    c.quit();
  }
  // Every result is in once four are counted and no attempt is active.
  std::string text;
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  for (;;) {
    text = scrape();
    const double results = std::max(0.0, sample(text, R"(danerelay_deliveries_total{status="sent",tls="dane"})")) +
                           std::max(0.0, sample(text, R"(danerelay_deliveries_total{status="deferred",tls="dane"})"));
    if ((results >= 4 && sample(text, R"(danerelay_queue_messages{queue="active"})") == 0) ||
        std::chrono::steady_clock::now() > deadline) {
      break;
    }
    std::this_thread::sleep_for(100ms);
  }

  // Exact counts.
  const std::pair<const char*, double> want[] = {
      {R"(danerelay_messages_received_total{listener="relay"})", 4},
      {R"(danerelay_smtpd_sessions_total{listener="relay"})", 6},  // wait_listening's probe, 4 messages, the loop
      {R"(danerelay_smtpd_sessions_total{listener="submission"})", 1},
      {R"(danerelay_smtpd_rejections_total{code="554"})", 2},
      {R"(danerelay_deliveries_total{status="sent",tls="dane"})", 2},
      {R"(danerelay_deliveries_total{status="deferred",tls="dane"})", 2},
      {"danerelay_plaintext_deliveries_total", 1},
      {R"(danerelay_dane_result_total{result="ok"})", 1},
      {R"(danerelay_dane_result_total{result="auth_failed"})", 1},
      {R"(danerelay_dane_result_total{result="insecure_chain"})", 1},
      {R"(danerelay_dane_result_total{result="tempfail"})", 1},
      {R"(danerelay_dane_result_total{result="unusable"})", 0},
      {R"(danerelay_dane_result_total{result="not_applicable"})", 0},
      {R"(danerelay_tls_connections_total{trust="verified"})", 1},
      {R"(danerelay_tls_connections_total{trust="failed"})", 1},
      {R"(danerelay_tls_connections_total{trust="plaintext"})", 1},
      {R"(danerelay_tls_connections_total{trust="trusted"})", 0},
      {R"(danerelay_tls_connections_total{trust="untrusted"})", 0},
      {R"(danerelay_queue_messages{queue="active"})", 0},
      {R"(danerelay_queue_messages{queue="deferred"})", 2},
      {R"(danerelay_queue_messages{queue="hold"})", 0},
      {R"(danerelay_dns_queries_total{rrtype="MX",result="bogus"})", 1},
      {R"(danerelay_dns_queries_total{rrtype="MX",result="insecure"})", 1},
      {"danerelay_dnssec_validating", 1},
      {R"(danerelay_build_info{version="0.1.0"})", 1},
      {"danerelay_smtpd_auth_failures_total", 1},
      {"danerelay_tls_handshake_duration_seconds_count", 2},
  };
  for (const auto& [series, value] : want) EXPECT_EQ(sample(text, series), value) << series << "\n" << text;
  EXPECT_GE(sample(text, "danerelay_queue_oldest_message_age_seconds"), 0) << text;
  EXPECT_EQ(text.find("danerelay_deliveries_total{status=\"bounced\""), std::string::npos) << text;

  // Histograms by hand: each bucket cumulative, le="+Inf" equals _count, _sum present.
  for (const std::string stage : {"before_queue_manager", "queue_manager", "connection_setup", "transmission"}) {
    const std::string base = "danerelay_smtp_delivery_delay_seconds";
    EXPECT_EQ(sample(text, base + "_count{stage=\"" + stage + "\"}"), 4) << stage;
    EXPECT_EQ(sample(text, base + "_bucket{stage=\"" + stage + "\",le=\"+Inf\"}"), 4) << stage;
    EXPECT_GE(sample(text, base + "_sum{stage=\"" + stage + "\"}"), 0) << stage;
    double previous = 0;
    for (const char* le : {"0.001", "0.01", "0.1", "1", "10", "60", "300", "3600", "86400", "+Inf"}) {
      const double v = sample(text, base + "_bucket{stage=\"" + stage + "\",le=\"" + le + "\"}");
      EXPECT_GE(v, previous) << stage << " le=" << le;
      previous = v;
    }
  }
  EXPECT_EQ(sample(text, R"(danerelay_tls_handshake_duration_seconds_bucket{le="+Inf"})"), 2) << text;
  EXPECT_GT(sample(text, "danerelay_tls_handshake_duration_seconds_sum"), 0) << text;
  // Each message was committed in some group-commit round (several, with state saves).
  EXPECT_GE(sample(text, "danerelay_spool_flush_operations_count"), 1) << text;
  EXPECT_GE(sample(text, "danerelay_spool_flush_operations_sum"), 4) << text;
  EXPECT_EQ(sample(text, R"(danerelay_spool_flush_operations_bucket{le="+Inf"})"), sample(text, "danerelay_spool_flush_operations_count"));

  // A real parser reads every line: python3-prometheus-client, which raises on any malformed one
  // (Debian's python3, where the Debian package is; not whatever python3 comes first in PATH).
  const fs::path file = instance_->dir / "scrape.txt";
  std::ofstream(file) << text;
  const std::string cmd = "/usr/bin/python3 -c 'import sys\nfrom prometheus_client.parser import text_string_to_metric_families as f\n"
                          "n = 0\nfor fam in f(open(sys.argv[1]).read()):\n    n += len(fam.samples)\n"
                          "    print(fam.name, fam.type, len(fam.samples))\nprint(\"samples\", n)' " +
                          file.string() + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string parsed;
  char buf[512];
  while (std::fgets(buf, sizeof buf, p) != nullptr) parsed += buf;
  EXPECT_EQ(pclose(p), 0) << parsed;
  // The parser names counters without _total and knows the histogram types.
  EXPECT_NE(parsed.find("danerelay_dane_result counter 6\n"), std::string::npos) << parsed;
  EXPECT_NE(parsed.find("danerelay_smtp_delivery_delay_seconds histogram 48\n"), std::string::npos) << parsed;
  EXPECT_NE(parsed.find("danerelay_queue_messages gauge 3\n"), std::string::npos) << parsed;
  std::size_t lines = 0;
  for (char c : text) lines += c == '\n' ? 1 : 0;
  std::size_t comments = 0;
  for (std::size_t at = text.find("# "); at != std::string::npos; at = text.find("\n# ", at + 1)) ++comments;
  EXPECT_NE(parsed.find("samples " + std::to_string(lines - comments) + "\n"), std::string::npos)
      << "every sample line parsed: " << lines << " lines, " << comments << " comments\n" << parsed;

  // The example alert rules (docs/prometheus-alerts.yml) are YAML and name only metrics served.
  const std::string rules = std::string(DANERELAY_SOURCE_DIR) + "/docs/prometheus-alerts.yml";
  const std::string check = "/usr/bin/python3 -c 'import re, sys, yaml\ndoc = yaml.safe_load(open(sys.argv[1]))\n"
                            "scrape = open(sys.argv[2]).read()\nnames = set()\n"
                            "for g in doc[\"groups\"]:\n    for r in g[\"rules\"]:\n"
                            "        names |= set(re.findall(r\"danerelay_[a-z_]+\", r[\"expr\"]))\n"
                            "missing = [n for n in sorted(names) if (\"\\n\" + n) not in (\"\\n\" + scrape)]\n"
                            "print(len(names), \"names\", \"missing:\", missing)\nsys.exit(1 if missing or not names else 0)' " +
                            rules + " " + file.string() + " 2>&1";
  FILE* q = popen(check.c_str(), "r");
  ASSERT_NE(q, nullptr);
  std::string checked;
  while (std::fgets(buf, sizeof buf, q) != nullptr) checked += buf;
  EXPECT_EQ(pclose(q), 0) << checked;

  // The posture page at "/" after the same mix, in Debian's headless chromium
  // (tests/browser/check.mjs): plots drawn, nothing requested but the page, no CSP violation, and
  // the counts and shares shown equal to the /metrics counters just scraped. The screenshot is
  // <instance>/posture/posture.png.
  const auto page = testsupport::http_get("127.0.0.1", metrics_port_, "/");
  ASSERT_EQ(page.status, 200) << page.head;
  const fs::path out = instance_->dir / "posture";
  fs::create_directories(out);
  std::ofstream(out / "page.html", std::ios::binary) << page.body;
  // The headers as the daemon sent them, for check.mjs's own server to send again.
  std::string headers_json = "{";
  for (const char* name : {"Content-Type", "Content-Security-Policy", "X-Content-Type-Options", "Cache-Control"}) {
    const std::string key = std::string("\r\n") + name + ": ";
    const auto at = page.head.find(key);
    ASSERT_NE(at, std::string::npos) << name << " missing:\n" << page.head;
    const auto start = at + key.size();
    const std::string value = page.head.substr(start, page.head.find("\r\n", start) - start);
    headers_json += std::string(headers_json.size() > 1 ? "," : "") + "\"" + name + "\": \"" + value + "\"";
  }
  std::ofstream(out / "headers.json") << headers_json << "}\n";
  const auto n = [&](const char* series) { return static_cast<long>(std::max(0.0, sample(text, series))); };
  const long verified = n(R"(danerelay_dane_result_total{result="ok"})");
  const long plaintext = n("danerelay_plaintext_deliveries_total");
  const long deferred = n(R"(danerelay_deliveries_total{status="deferred",tls="dane"})");
  const long sent = n(R"(danerelay_deliveries_total{status="sent",tls="dane"})");
  ASSERT_EQ(verified + plaintext, sent) << "the mix has one DANE-verified and one plaintext delivery";
  const std::string window = "{\"verified\": " + std::to_string(verified) + ", \"trusted\": 0, \"unauthenticated\": 0, \"plaintext\": " +
                             std::to_string(plaintext) + ", \"deferred\": " + std::to_string(deferred) + ", \"bounced\": 0}";
  std::ofstream(out / "expected.json") << "{\"24h\": " << window << ", \"30d\": " << window << "}\n";
  const std::string browser = "CHROMIUM=/usr/bin/chromium node " + std::string(DANERELAY_SOURCE_DIR) + "/tests/browser/check.mjs " +
                              out.string() + " 2>&1";
  FILE* b = popen(browser.c_str(), "r");
  ASSERT_NE(b, nullptr);
  std::string shown;
  while (std::fgets(buf, sizeof buf, b) != nullptr) shown += buf;
  EXPECT_EQ(pclose(b), 0) << shown;
  EXPECT_TRUE(fs::exists(out / "posture.png")) << shown;
  // Kept beside the test binary's working directory (the instance's directory is removed).
  std::error_code ec;
  fs::copy_file(out / "posture.png", fs::current_path() / "posture-live.png", fs::copy_options::overwrite_existing, ec);
  std::cerr << "posture page screenshot: " << (fs::current_path() / "posture-live.png").string() << "\n";
}

TEST_F(MetricsEndToEnd, NotReadyWhileTheSelfTestFailsButLive) {
  start("bogus-ds.test");
  if (HasFatalFailure()) return;
  ASSERT_TRUE(daemon_->wait_log("DNSSEC self-test (bogus-ds.test DNSKEY)", 15s)) << daemon_->log();
  EXPECT_EQ(testsupport::http_get("127.0.0.1", metrics_port_, "/healthz/live").status, 200);
  const auto ready = testsupport::http_get("127.0.0.1", metrics_port_, "/healthz/ready");
  EXPECT_EQ(ready.status, 503) << ready.raw;
  EXPECT_EQ(ready.body, "not ready\n");
  EXPECT_EQ(sample(scrape(), "danerelay_dnssec_validating"), 0);
}

}  // namespace
}  // namespace danerelay::relay::e2e
