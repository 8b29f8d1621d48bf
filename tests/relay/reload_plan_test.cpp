// tests/relay/reload_plan_test.cpp — what a reload applies and what needs a restart
// (relay/daemon/reload_plan.hpp), from pairs of configuration texts through the real loader.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>

#include "config/load.hpp"
#include "relay/daemon/reload_plan.hpp"

namespace danerelay::relay {
namespace {

config::Config load(const std::string& text) {
  auto r = config::load_string(text, "/etc/danerelay/danerelay.toml");
  EXPECT_TRUE(r.ok()) << (r.errors.empty() ? std::string() : r.errors.front().str());
  return r.config.value_or(config::Config{});
}

bool has(const std::vector<std::string>& v, const std::string& prefix) {
  return std::any_of(v.begin(), v.end(), [&](const std::string& s) { return s.rfind(prefix, 0) == 0; });
}

const std::string kBase = R"(
[server]
hostname = "relay.org.test"
state_dir = "/var/lib/danerelay"

[[listener]]
name = "relay"
address = "127.0.0.1:2525"
allow_networks = ["10.0.0.0/8"]

[policy]
default = "dane"

[policy.destination."bank.test"]
level = "dane-only"
)";

TEST(ReloadPlan, TheSameFileChangesNothing) {
  const auto plan = plan_reload(load(kBase), load(kBase));
  EXPECT_TRUE(plan.applied.empty());
  EXPECT_TRUE(plan.restart_needed.empty());
  EXPECT_EQ(plan.effective, load(kBase));
}

TEST(ReloadPlan, MovedLinesAreNoChange) {
  // Two blank lines before everything: every rule's file:line differs, nothing else.
  const auto plan = plan_reload(load(kBase), load("\n\n" + kBase));
  EXPECT_TRUE(plan.applied.empty());
  EXPECT_TRUE(plan.restart_needed.empty());
}

TEST(ReloadPlan, ANewPolicyTableIsApplied) {
  std::string next = kBase + "\n[policy.destination.\"partner.test\"]\nlevel = \"encrypt\"\n";
  const auto plan = plan_reload(load(kBase), load(next));
  EXPECT_EQ(plan.applied, std::vector<std::string>{"policy"});
  EXPECT_TRUE(plan.restart_needed.empty());
  ASSERT_NE(plan.effective.policy.find("partner.test"), nullptr);
  EXPECT_EQ(plan.effective.policy.find("partner.test")->level, config::TlsLevel::encrypt);
}

TEST(ReloadPlan, AnAllowListAndLimitsApplyToTheListenerAsItIs) {
  std::string next = kBase;
  next.replace(next.find("10.0.0.0/8"), 10, "10.1.0.0/16");
  next += "\n[limits]\nmax_recipients = 200\n";
  const auto plan = plan_reload(load(kBase), load(next));
  EXPECT_TRUE(has(plan.applied, "listener \"relay\""));
  EXPECT_TRUE(has(plan.applied, "limits"));
  EXPECT_TRUE(plan.restart_needed.empty());
  EXPECT_EQ(plan.effective.listeners.at(0).allow_networks.at(0).text, "10.1.0.0/16");
  EXPECT_EQ(plan.effective.limits.max_recipients, 200u);
}

// Going behind a balancer (or back) is a listener change like an allow-list: no restart.
TEST(ReloadPlan, TurningTheProxyProtocolOnAppliesToTheListenerAsItIs) {
  std::string next = kBase;
  next.replace(next.find("allow_networks"), 0, "proxy_protocol = true\nproxy_from = [\"10.0.0.5/32\"]\n");
  const auto plan = plan_reload(load(kBase), load(next));
  EXPECT_EQ(plan.applied, std::vector<std::string>{"listener \"relay\""});
  EXPECT_TRUE(plan.restart_needed.empty());
  EXPECT_TRUE(plan.effective.listeners.at(0).proxy_protocol);
  ASSERT_EQ(plan.effective.listeners.at(0).proxy_from.size(), 1u);
  EXPECT_EQ(plan.effective.listeners.at(0).proxy_from.at(0).text, "10.0.0.5/32");
  const auto back = plan_reload(load(next), load(kBase));
  EXPECT_EQ(back.applied, std::vector<std::string>{"listener \"relay\""});
  EXPECT_FALSE(back.effective.listeners.at(0).proxy_protocol);
}

TEST(ReloadPlan, AMovedListenerNeedsARestartAndKeepsItsRunningAddress) {
  std::string next = kBase;
  next.replace(next.find("2525"), 4, "2526");
  next.replace(next.find("10.0.0.0/8"), 10, "10.1.0.0/16");
  const auto running = load(kBase);
  const auto plan = plan_reload(running, load(next));
  EXPECT_TRUE(has(plan.restart_needed, "listeners"));
  // The listeners stay as they run, the allow-list change with them (it belongs to that listener).
  EXPECT_EQ(plan.effective.listeners, running.listeners);
}

TEST(ReloadPlan, RestartOnlyKeysAreNamedAndKeepTheirRunningValues) {
  const std::string next = R"(
[server]
hostname = "relay.org.test"
state_dir = "/srv/danerelay"

[[listener]]
name = "relay"
address = "127.0.0.1:2525"
allow_networks = ["10.0.0.0/8"]

[policy]
default = "dane"

[policy.destination."bank.test"]
level = "dane-only"

[dns]
query_timeout = "3s"

[queue]
directory = "/srv/spool"
min_backoff = "1m"

[limits]
client_ipv6_prefix = 56

[delivery]
max_concurrency = 70
connect_timeout = "9s"

[log]
syslog_name = "smarthost"
level = "debug"
)";
  const auto running = load(kBase);
  const auto plan = plan_reload(running, load(next));
  for (const char* key : {"server.state_dir", "dns", "queue.directory", "limits.client_ipv6_prefix", "delivery.max_concurrency",
                          "log.syslog_name"}) {
    EXPECT_TRUE(has(plan.restart_needed, key)) << key;
  }
  EXPECT_EQ(plan.effective.server.state_dir, running.server.state_dir);
  EXPECT_EQ(plan.effective.dns, running.dns);
  EXPECT_EQ(plan.effective.queue.directory, running.queue.directory);
  EXPECT_EQ(plan.effective.limits.client_ipv6_prefix, running.limits.client_ipv6_prefix);
  EXPECT_EQ(plan.effective.delivery.max_concurrency, running.delivery.max_concurrency);
  EXPECT_EQ(plan.effective.log.syslog_name, running.log.syslog_name);
  // … while the reloadable keys next to them are applied.
  EXPECT_EQ(plan.effective.queue.min_backoff, std::chrono::minutes(1));
  EXPECT_EQ(plan.effective.delivery.connect_timeout, std::chrono::seconds(9));
  EXPECT_EQ(plan.effective.log.level, "debug");
  EXPECT_TRUE(has(plan.applied, "queue"));
  EXPECT_TRUE(has(plan.applied, "delivery"));
  EXPECT_TRUE(has(plan.applied, "log"));
  EXPECT_FALSE(has(plan.applied, "limits"));  // only the restart-only key of [limits] changed
}

TEST(ReloadPlan, TlsChangesAskForNewContexts) {
  const auto plan = plan_reload(load(kBase), load(kBase + "\n[tls.client]\nmin_protocol = \"TLSv1.3\"\n"));
  EXPECT_TRUE(plan.tls_client_changed);
  EXPECT_FALSE(plan.tls_server_changed);
  EXPECT_TRUE(has(plan.applied, "tls.client"));
}

}  // namespace
}  // namespace danerelay::relay
