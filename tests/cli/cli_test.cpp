// tests/cli/cli_test.cpp — the danerelay binary as an operator runs it: exit codes (0 ok,
// 2 configuration error, 64 usage), FILE:LINE:COL diagnostics, and `resolve` over the signed
// test world printing readable plans (`check` and `probe`: check_test.cpp).
#include <gtest/gtest.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "tests/support/daemon.hpp"
#include "tests/support/temp_dir.hpp"
#include "tests/support/world.hpp"

namespace {

struct Run {
  int status = -1;
  std::string output;  // stdout and stderr together
};

Run run(const std::string& args) {
  Run r;
  const std::string cmd = std::string(DANERELAY_BINARY) + " " + args + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return r;
  std::array<char, 4096> buf{};
  while (std::fgets(buf.data(), buf.size(), p) != nullptr) r.output += buf.data();
  const int st = pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

class Cli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new danerelay::testsupport::TempDir("danerelay-cli");
    world_ = new danerelay::testsupport::World(danerelay::testsupport::build_world(dir_->path() / "world"));
  }
  static void TearDownTestSuite() {
    delete world_;
    delete dir_;
  }
  static std::string write(const std::string& name, const std::string& text) {
    auto path = dir_->path() / name;
    std::ofstream(path) << text;
    return path.string();
  }
  static std::string config() { return world_->config_file.string(); }
  // The world's configuration with a private state directory and one listener on a free
  // loopback port (not the default [::]:25, which needs root and would collide with the MX sinks
  // of other suites).
  static std::string daemon_config(const std::string& name) {
    std::ifstream in(world_->config_file);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const auto p = text.find("state_dir = ");
    const auto state = dir_->path() / (name + "-state");
    text.replace(p, text.find('\n', p) - p, "state_dir = \"" + state.string() + "\"");
    text += "\n[[listener]]\nname = \"relay\"\naddress = \"127.0.0.1:" + std::to_string(danerelay::testsupport::free_port()) +
            "\"\nallow_networks = [\"127.0.0.0/8\"]\n";
    return write(name + ".toml", text);
  }
  static inline danerelay::testsupport::TempDir* dir_ = nullptr;
  static inline danerelay::testsupport::World* world_ = nullptr;
};

TEST_F(Cli, CheckConfigAcceptsTheGeneratedWorldConfig) {
  auto r = run("check-config -c " + config());
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("configuration OK"), std::string::npos);
}

TEST_F(Cli, CheckConfigWarnsAboutAListenerNobodyMayUse) {
  const auto file = write("closed.toml",
                          "[[listener]]\nname = \"closed\"\naddress = \"127.0.0.1:2525\"\ntls = \"none\"\nauth = \"none\"\n\n"
                          "[[listener]]\nname = \"sub\"\naddress = \"127.0.0.1:2587\"\ntls = \"none\"\nauth = \"required\"\n");
  auto r = run("check-config -c " + file);
  EXPECT_EQ(r.status, 0) << "warnings are not errors: " << r.output;
  EXPECT_NE(r.output.find(file + ":1:1: warning: listener \"closed\": auth = \"none\" and allow_networks is empty"),
            std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("listener \"sub\": AUTH is enabled but server.credentials_file is not set"), std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("listener \"sub\": AUTH is only offered over TLS"), std::string::npos) << r.output;
}

// Scale-out: a balancer that may relay itself is worth a warning (its health checks would).
TEST_F(Cli, CheckConfigWarnsAboutABalancerInsideAllowNetworks) {
  const auto file = write("lb.toml",
                          "[[listener]]\nname = \"lb\"\naddress = \"127.0.0.1:2525\"\ntls = \"none\"\n"
                          "allow_networks = [\"192.0.2.0/24\", \"10.0.0.0/8\"]\nproxy_protocol = true\n"
                          "proxy_from = [\"10.0.0.5\"]\n\n"
                          "[[listener]]\nname = \"fine\"\naddress = \"127.0.0.1:2526\"\ntls = \"none\"\n"
                          "allow_networks = [\"192.0.2.0/24\"]\nproxy_protocol = true\nproxy_from = [\"10.0.0.0/24\"]\n");
  auto r = run("check-config -c " + file);
  EXPECT_EQ(r.status, 0) << "warnings are not errors: " << r.output;
  EXPECT_NE(r.output.find(file + ":1:1: warning: listener \"lb\": allow_networks entry 10.0.0.0/8 holds the balancer "
                          "10.0.0.5 (proxy_from): connections whose PROXY header names no client (health checks, LOCAL, "
                          "UNKNOWN) may relay as the balancer"),
            std::string::npos)
      << r.output;
  EXPECT_EQ(r.output.find("listener \"fine\": allow_networks"), std::string::npos) << r.output;
}

// The two keys' errors through the binary: file:line:col, the key, exit 2.
TEST_F(Cli, CheckConfigExitsTwoForProxyKeysThatDoNothingOrAcceptNobody) {
  const auto file = write("proxy.toml",
                          "[[listener]]\nname = \"a\"\naddress = \"127.0.0.1:2525\"\nproxy_protocol = true\n\n"
                          "[[listener]]\nname = \"b\"\naddress = \"127.0.0.1:2526\"\nproxy_from = [\"10.0.0.5\"]\n");
  auto r = run("check-config -c " + file);
  EXPECT_EQ(r.status, 2) << r.output;
  EXPECT_NE(r.output.find(file + ":4:18: error: proxy_protocol = true needs proxy_from"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("for key \"listener[0].proxy_protocol\""), std::string::npos) << r.output;
  EXPECT_NE(r.output.find(file + ":9:14: error: proxy_from is set but proxy_protocol is not true"), std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("for key \"listener[1].proxy_from\""), std::string::npos) << r.output;
}

TEST_F(Cli, CheckConfigExitsTwoAndNamesFileLineColumnAndKey) {
  const auto file = write("bad.toml", "[dns]\nquery_timeout = \"soon\"\n\n[policy]\ndefault = \"daen\"\n");
  auto r = run("check-config -c " + file);
  EXPECT_EQ(r.status, 2) << r.output;
  EXPECT_NE(r.output.find(file + ":2:"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("dns.query_timeout"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find(file + ":5:"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("daen"), std::string::npos) << r.output;
}

TEST_F(Cli, CheckConfigReportsUnknownKeys) {
  const auto file = write("typo.toml", "[dns]\ntrust_anchr = \"/x\"\n");
  auto r = run("check-config -c " + file);
  EXPECT_EQ(r.status, 2) << r.output;
  EXPECT_NE(r.output.find(file + ":2:1: error:"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("trust_anchr"), std::string::npos) << r.output;
}

TEST_F(Cli, CheckConfigOnAMissingFileExitsTwo) {
  auto r = run("check-config -c " + (dir_->path() / "absent.toml").string());
  EXPECT_EQ(r.status, 2) << r.output;
}

TEST_F(Cli, ResolveRefusesABadConfigWithExitTwo) {
  const auto file = write("bad2.toml", "[delivery]\nport = 70000\n");
  auto r = run("resolve -c " + file + " secure.test");
  EXPECT_EQ(r.status, 2) << r.output;
}

TEST_F(Cli, ResolveWithAMissingTrustAnchorIsAConfigErrorNotAnInsecureRun) {
  const auto file = write("noanchor.toml", "[dns]\ntrust_anchor = \"" + (dir_->path() / "none.ta").string() +
                                               "\"\nunbound_config = \"" + world_->dns.unbound_conf.string() + "\"\n");
  auto r = run("resolve -c " + file + " secure.test");
  EXPECT_EQ(r.status, 2) << r.output;
  EXPECT_NE(r.output.find("trust anchor"), std::string::npos) << r.output;
}

TEST_F(Cli, UnknownSubcommandIsAUsageError) {
  auto r = run("frobnicate");
  EXPECT_EQ(r.status, 64) << r.output;
}

// `resolve` is kept beside `check` and `probe` (not an alias): --help says so.
TEST_F(Cli, HelpListsCheckAndProbeAndSaysResolveIsKept) {
  auto r = run("--help");
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("  check "), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("  probe "), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("kept beside check"), std::string::npos) << r.output;
}

TEST_F(Cli, ResolvePrintsSelfTestAndAPlanForEveryWorldDomain) {
  std::string domains;
  for (const auto& d : world_->domains) domains += " " + d.name;
  auto r = run("resolve -c " + config() + domains);
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("DNSSEC self-test (. DNSKEY): validation works"), std::string::npos) << r.output;
  for (const auto& d : world_->domains) EXPECT_NE(r.output.find(d.name + ": "), std::string::npos) << d.name;
  EXPECT_NE(r.output.find("NOT USABLE: 4.7.5 TLSA lookup error for mx3.multi.test:25"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("plan: BOUNCE 5.1.10 Domain nullmx.test does not accept mail (nullMX)"), std::string::npos);
  EXPECT_NE(r.output.find("plan: DEFER 4.4.3 Host or domain name not found. Name service error for name=bogus-ds.test type=MX"),
            std::string::npos);
  EXPECT_NE(r.output.find("configured next hop mx.secure.test (no MX lookup), port 2525"), std::string::npos);
  EXPECT_NE(r.output.find("policy: dane (from [policy.destination.\"routed.test\"])"), std::string::npos);
  EXPECT_NE(r.output.find("MX insecure"), std::string::npos);
}

TEST_F(Cli, ResolveTraceShowsEveryAnswerWithItsVerdict) {
  auto r = run("resolve --no-self-test -t -c " + config() + " secure.test");
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("secure.test. IN MX ; secure"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("_25._tcp.mx.secure.test. IN TLSA ; secure"), std::string::npos) << r.output;
}

TEST_F(Cli, ResolveWithAWrongTrustAnchorFailsTheSelfTestAndDefers) {
  const auto ta = write("wrong.ta", ". IN DS 12345 13 2 " + std::string(64, 'c') + "\n");
  const auto file = write("wrong.toml", "[dns]\ntrust_anchor = \"" + ta + "\"\ntrust_anchor_auto_update = false\nunbound_config = \"" +
                                            world_->dns.unbound_conf.string() + "\"\n");
  auto r = run("resolve -c " + file + " secure.test");
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_NE(r.output.find("DNSSEC self-test (. DNSKEY) FAILED: bogus"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("plan: DEFER 4.4.3"), std::string::npos) << r.output;
}

TEST_F(Cli, RunStartsSelfTestsLogsAndStopsCleanlyOnSigterm) {
  const auto cfg = daemon_config("run");
  danerelay::testsupport::Daemon daemon(DANERELAY_BINARY, cfg, dir_->path() / "run.log");
  EXPECT_TRUE(daemon.wait_log("validation works", std::chrono::seconds(20))) << daemon.log();
  daemon.signal(SIGTERM);
  EXPECT_EQ(daemon.wait(), 0) << daemon.log();
  const std::string log = daemon.log();
  EXPECT_NE(log.find("danerelay/dns["), std::string::npos) << log;
  EXPECT_NE(log.find("DNSSEC self-test (. DNSKEY): validation works"), std::string::npos) << log;
  EXPECT_NE(log.find("stopping"), std::string::npos) << log;
}

// ---- danerelay queue ---------------------------------------------------------------------------

// A configuration whose state directory is fresh: no daemon, no spool (dir_ is the suite's TempDir).
#define QUEUE_CONFIG(name) write(std::string(name) + ".toml", "[server]\nstate_dir = \"" + (dir_->path() / (std::string(name) + "-state")).string() + "\"\n")

TEST_F(Cli, QueueListWithoutDaemonOrSpoolSaysEmpty) {
  const auto cfg = QUEUE_CONFIG("qlist");
  auto r = run("-c " + cfg + " queue list");
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(r.output, "Mail queue is empty\n");
  r = run("queue list --json -c " + cfg);
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(r.output, "");
}

TEST_F(Cli, QueueBadIdIsAUsageError) {
  const auto cfg = QUEUE_CONFIG("qbad");
  for (const char* verb : {"show", "hold", "release", "expire", "delete", "flush"}) {
    auto r = run("-c " + cfg + " queue " + verb + " 12345");
    EXPECT_EQ(r.status, 64) << verb << ": " << r.output;
    EXPECT_NE(r.output.find("12345: not a queue id"), std::string::npos) << r.output;
  }
  auto r = run("-c " + cfg + " queue hold");  // the id is required
  EXPECT_EQ(r.status, 64) << r.output;
  r = run("-c " + cfg + " queue");  // a verb is required
  EXPECT_EQ(r.status, 64) << r.output;
}

TEST_F(Cli, QueueChangesNeedTheDaemon) {
  const auto cfg = QUEUE_CONFIG("qflush");
  auto r = run("-c " + cfg + " queue flush");
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_NE(r.output.find("danerelay queue flush: the daemon is not running (no control socket at "), std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("control.sock)"), std::string::npos) << r.output;
  r = run("-c " + cfg + " queue delete ALL");
  EXPECT_EQ(r.status, 1) << r.output;
  r = run("-c " + cfg + " queue show 0123456789ab");
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_NE(r.output.find("0123456789AB: no such message"), std::string::npos) << r.output;
}

// With the daemon running, the verbs go over its control socket.
TEST_F(Cli, QueueTalksToTheRunningDaemon) {
  const auto cfg = daemon_config("qdaemon");
  danerelay::testsupport::Daemon daemon(DANERELAY_BINARY, cfg, dir_->path() / "qdaemon.log");
  ASSERT_TRUE(daemon.wait_log("daemon started", std::chrono::seconds(20))) << daemon.log();
  const auto list = run("-c " + cfg + " queue list");
  const auto flush = run("-c " + cfg + " queue flush");
  const auto hold = run("-c " + cfg + " queue hold 0123456789AB");
  daemon.signal(SIGTERM);
  const int status = daemon.wait();
  const std::string log = daemon.log();
  ASSERT_NE(log.find("daemon started"), std::string::npos) << log;
  EXPECT_NE(log.find("control socket listening on "), std::string::npos) << log;
  EXPECT_EQ(log.find("Sanitizer"), std::string::npos) << log;
  EXPECT_EQ(log.find("runtime error"), std::string::npos) << log;
  EXPECT_EQ(status, 0) << log;
  EXPECT_EQ(list.status, 0) << list.output;
  EXPECT_NE(list.output.find("Mail queue is empty\n"), std::string::npos) << list.output;
  EXPECT_EQ(flush.status, 0) << flush.output;
  EXPECT_NE(flush.output.find("danerelay queue: Flushed: 0 messages\n"), std::string::npos) << flush.output;
  EXPECT_EQ(hold.status, 1) << hold.output;
  EXPECT_NE(hold.output.find("0123456789AB: no such message"), std::string::npos) << hold.output;
}

// `danerelay report`: the posture history file of the configured state directory as a series.
// The file is written here in its documented format (version 1), with buckets placed relative to
// the real clock: one 5-minute bucket an hour ago, one daily bucket three days ago.
std::string iso_utc(std::int64_t t) {
  const std::time_t tt = static_cast<std::time_t>(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

class Report : public Cli {
 protected:
  // A config whose state_dir is a directory of its own; returns the config path.
  static std::string report_config(const std::string& name, std::filesystem::path* state) {
    *state = dir_->path() / (name + "-state");
    std::filesystem::create_directories(*state);
    return write(name + ".toml", "[server]\nstate_dir = \"" + state->string() + "\"\n");
  }
  static std::int64_t now() { return static_cast<std::int64_t>(std::time(nullptr)); }
};

TEST_F(Report, PrintsTheSavedSeriesAsCsvAndJson) {
  std::filesystem::path state;
  const auto cfg = report_config("report", &state);
  const std::int64_t fine = (now() - 3600) / 300 * 300;
  const std::int64_t today = now() / 86400 * 86400;
  const std::int64_t day = today - 3 * 86400;
  std::ofstream(state / "posture-history.json")
      << R"({"format":"danerelay-posture-history","version":1,"saved":0,)"
      << R"("fine":{"width":300,"buckets":[[)" << fine << R"(,3,1,0,2,1,0]]},)"
      << R"("daily":{"width":86400,"buckets":[[)" << day << R"(,10,2,3,4,5,6],[)" << today << R"(,3,1,0,2,1,0]]},)"
      << R"("domains":[]})";
  auto csv = run("report -c " + cfg + " --since 24h --format csv");
  EXPECT_EQ(csv.status, 0) << csv.output;
  EXPECT_EQ(csv.output.rfind("start,width,verified,trusted,unauthenticated,plaintext,deferred,bounced\n", 0), 0u) << csv.output;
  EXPECT_NE(csv.output.find(iso_utc(fine) + ",300,3,1,0,2,1,0\n"), std::string::npos) << csv.output;
  EXPECT_EQ(std::count(csv.output.begin(), csv.output.end(), '\n'), 1 + 288) << "every bucket of the 24 hours, empty ones too";

  auto week = run("report -c " + cfg + " --since 7d");
  EXPECT_EQ(week.status, 0) << week.output;
  EXPECT_EQ(std::count(week.output.begin(), week.output.end(), '\n'), 1 + 7) << week.output;
  EXPECT_NE(week.output.find(iso_utc(day) + ",86400,10,2,3,4,5,6\n"), std::string::npos) << week.output;

  auto js = run("report -c " + cfg + " --since 30d --format json");
  EXPECT_EQ(js.status, 0) << js.output;
  const auto j = nlohmann::json::parse(js.output, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << js.output;
  EXPECT_EQ(j["width"], 86400);
  ASSERT_EQ(j["buckets"].size(), 30u);
  EXPECT_EQ(j["buckets"][26]["start"], iso_utc(day));
  EXPECT_EQ(j["buckets"][26]["bounced"], 6);
  EXPECT_EQ(j["buckets"][29]["start"], iso_utc(today));
  EXPECT_EQ(j["totals"]["verified"], 13);
  EXPECT_EQ(j["totals"]["plaintext"], 6);
}

TEST_F(Report, WithoutAHistoryPrintsEmptyBucketsAndSaysSo) {
  std::filesystem::path state;
  const auto cfg = report_config("report-empty", &state);
  auto r = run("report -c " + cfg + " --since 2d");
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("no posture history at " + (state / "posture-history.json").string() + " yet"), std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find(",86400,0,0,0,0,0,0\n"), std::string::npos) << r.output;
}

TEST_F(Report, ACorruptHistoryExitsOneAndSaysWhy) {
  std::filesystem::path state;
  const auto cfg = report_config("report-corrupt", &state);
  std::ofstream(state / "posture-history.json") << R"({"format":"danerelay-posture-history","version":1,"fine":{"wid)";
  auto r = run("report -c " + cfg);
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_NE(r.output.find("is unusable (not valid JSON"), std::string::npos) << r.output;
  EXPECT_TRUE(std::filesystem::exists(state / "posture-history.json")) << "report only reads; the daemon keeps it aside";
}

TEST_F(Report, RefusesABadWindowOrFormatAsAUsageError) {
  std::filesystem::path state;
  const auto cfg = report_config("report-usage", &state);
  for (const char* args : {"--since 31d", "--since soon", "--since 0s", "--format xml"}) {
    auto r = run("report -c " + cfg + " " + args);
    EXPECT_EQ(r.status, 64) << args << ": " << r.output;
  }
}

}  // namespace
