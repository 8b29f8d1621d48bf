// tests/config/load_test.cpp — config/load.hpp: TOML → Config and the FILE:LINE:COL diagnostics.
// Every error class (syntax, wrong type, bad value, unknown key) is checked with its exact text at
// the top level, in a section, inside [[listener]] and inside a [policy.destination] table; the
// shipped config/example.toml must load clean and list exactly the defaults; golden files in
// tests/data/config (NAME.toml → NAME.ref) show whole-file reports.
#include "config/load.hpp"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <toml++/toml.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace danerelay::config {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using Lines = std::vector<std::string>;

const fs::path kSourceDir = DANERELAY_SOURCE_DIR;

Lines errors_of(std::string_view toml) {
  const auto result = load_string(toml, "danerelay.toml");
  Lines out;
  for (const auto& d : result.errors) out.push_back(d.str());
  EXPECT_EQ(result.config.has_value(), out.empty()) << "config is set exactly when there are no errors";
  return out;
}

Config loaded(std::string_view toml, std::string_view name = "danerelay.toml") {
  auto result = load_string(toml, name);
  EXPECT_TRUE(result.ok());
  for (const auto& d : result.errors) ADD_FAILURE() << d.str();
  return result.config.value_or(Config{});
}

std::string read_text(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  EXPECT_TRUE(in) << file;
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// A scratch directory, removed with everything in it at the end of the test.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "config_test.XXXXXX").string();
    path_ = ::mkdtemp(pattern.data());
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  [[nodiscard]] const fs::path& path() const { return path_; }
  fs::path write(const std::string& name, std::string_view text) const {
    const fs::path file = path_ / name;
    std::ofstream(file, std::ios::binary) << text;
    return file;
  }

 private:
  fs::path path_;
};

// ── Diagnostics ──────────────────────────────────────────────────────────────────────────────

TEST(Diagnostic, PrintsFileLineColumnLikeACompiler) {
  EXPECT_EQ((Diagnostic{"danerelay.toml", 12, 9, "boom"}.str()), "danerelay.toml:12:9: error: boom");
  EXPECT_EQ((Diagnostic{"/etc/danerelay/danerelay.toml", 0, 0, "gone"}.str()),
            "/etc/danerelay/danerelay.toml: error: gone");
}

TEST(ConfigLoad, SyntaxErrorGivesTomlppDescriptionAtItsPosition) {
  EXPECT_EQ(errors_of("[dns]\nquery_timeout = \n"),
            Lines{"danerelay.toml:2:17: error: Error while parsing key-value pair: expected value, saw '\\n'"});
  EXPECT_EQ(errors_of("[server]\nhostname = \"relay.example.net\"\nhostname = \"x\"\n"),
            Lines{"danerelay.toml:3:12: error: Error while parsing key-value pair: cannot redefine existing string "
                  "'hostname'"});
}

TEST(ConfigLoad, WrongTypeAtTopLevelNamesKeyAndValuePosition) {
  EXPECT_EQ(errors_of("dns = 5\n"), Lines{"danerelay.toml:1:7: error: expected a table for key \"dns\""});
}

TEST(ConfigLoad, WrongTypeInSectionNamesDottedKeyAndValuePosition) {
  EXPECT_EQ(errors_of("[dns]\n"
                      "trust_anchor = 5\n"
                      "query_timeout = true\n"),
            (Lines{"danerelay.toml:2:16: error: expected a string for key \"dns.trust_anchor\"",
                   "danerelay.toml:3:17: error: expected a duration (a string such as \"30s\" or an integer number of "
                   "seconds) for key \"dns.query_timeout\""}));
}

TEST(ConfigLoad, WrongTypeInListenerNamesIndexedKey) {
  EXPECT_EQ(errors_of("[[listener]]\n"
                      "address = \"[::]:25\"\n"
                      "require_tls = \"yes\"\n"),
            Lines{"danerelay.toml:3:15: error: expected a boolean (true or false) for key \"listener[0].require_tls\""});
}

TEST(ConfigLoad, WrongTypeInPolicyTableNamesQuotedDestination) {
  EXPECT_EQ(errors_of("[policy.destination.\"bank.example\"]\n"
                      "match = \"nexthop\"\n"),
            Lines{"danerelay.toml:2:9: error: expected an array for key \"policy.destination.\\\"bank.example\\\".match\""});
}

TEST(ConfigLoad, UnknownKeyAtTopLevelPointsAtTheKey) {
  EXPECT_EQ(errors_of("[server]\n"
                      "hostname = \"relay.example.net\"\n"
                      "\n"
                      "[dnss]\n"
                      "query_timeout = \"5s\"\n"),
            Lines{"danerelay.toml:4:2: error: unknown key \"dnss\""});
  EXPECT_EQ(errors_of("verbose = true\n"), Lines{"danerelay.toml:1:1: error: unknown key \"verbose\""});
}

TEST(ConfigLoad, UnknownKeyInSectionNamesFileLineAndDottedKey) {
  EXPECT_EQ(errors_of("[dns]\n"
                      "trust_anchr = \"/var/lib/danerelay/root.key\"\n"),
            Lines{"danerelay.toml:2:1: error: unknown key \"dns.trust_anchr\""});
  EXPECT_EQ(errors_of("[tls.client]\n"
                      "  min_protocl = \"TLSv1.3\"\n"),
            Lines{"danerelay.toml:2:3: error: unknown key \"tls.client.min_protocl\""});
  EXPECT_EQ(errors_of("[tls.serve]\ncert_file = \"a\"\n"), Lines{"danerelay.toml:1:6: error: unknown key \"tls.serve\""});
}

TEST(ConfigLoad, UnknownKeyInListenerNamesFileLineAndIndexedKey) {
  EXPECT_EQ(errors_of("[[listener]]\n"
                      "name = \"relay\"\n"
                      "\n"
                      "[[listener]]\n"
                      "name = \"submission\"\n"
                      "address = \"[::]:587\"\n"
                      "auth_mechanism = [\"PLAIN\"]\n"),
            Lines{"danerelay.toml:7:1: error: unknown key \"listener[1].auth_mechanism\""});
}

TEST(ConfigLoad, UnknownKeyInPolicyTableNamesFileLineAndKey) {
  EXPECT_EQ(errors_of("[policy]\n"
                      "default = \"dane\"\n"
                      "\n"
                      "[policy.destination.\"bank.example\"]\n"
                      "levle = \"dane-only\"\n"),
            Lines{"danerelay.toml:5:1: error: unknown key \"policy.destination.\\\"bank.example\\\".levle\""});
}

TEST(ConfigLoad, UnknownPolicyLevelListsTheLevels) {
  EXPECT_EQ(errors_of("[policy]\n"
                      "default = \"daen\"\n"),
            Lines{"danerelay.toml:2:11: error: unknown policy level \"daen\" (expected one of none, may, encrypt, "
                  "dane, dane-only, verify, secure) for key \"policy.default\""});
}

TEST(ConfigLoad, BadValueInListenerNamesIndexedKey) {
  EXPECT_EQ(errors_of("[[listener]]\n"
                      "address = \"[::]:25\"\n"
                      "tls = \"startls\"\n"),
            Lines{"danerelay.toml:3:7: error: unknown listener TLS mode \"startls\" (expected one of none, starttls, "
                  "implicit) for key \"listener[0].tls\""});
}

TEST(ConfigLoad, BadValueInPolicyTableNamesQuotedDestination) {
  EXPECT_EQ(errors_of("[policy.destination.\".partner.example\"]\n"
                      "level = \"dane_only\"\n"),
            Lines{"danerelay.toml:2:9: error: unknown policy level \"dane_only\" (expected one of none, may, encrypt, "
                  "dane, dane-only, verify, secure) for key \"policy.destination.\\\".partner.example\\\".level\""});
}

TEST(ConfigLoad, BadArrayElementPointsAtTheElement) {
  EXPECT_EQ(errors_of("[[listener]]\n"
                      "address = \"0.0.0.0:25\"\n"
                      "allow_networks = [\"10.0.0.0/8\", \"10.0.0.0/33\"]\n"),
            Lines{"danerelay.toml:3:33: error: invalid network \"10.0.0.0/33\" (expected an address or CIDR such as "
                  "\"10.0.0.0/8\", \"192.0.2.7\" or \"2001:db8::/32\") for key \"listener[0].allow_networks[1]\""});
}

TEST(ConfigLoad, AllErrorsAreReportedInFileOrder) {
  EXPECT_EQ(errors_of("[queue]\n"
                      "min_backoff = \"5x\"\n"
                      "max_lifetime = 5.5\n"
                      "[limits]\n"
                      "max_recipients = 50\n"
                      "max_message_size = \"50XB\"\n"
                      "colour = \"blue\"\n"
                      "[log]\n"
                      "level = \"verbose\"\n"),
            (Lines{
                "danerelay.toml:2:15: error: invalid duration \"5x\" (expected an integer number of seconds or a "
                "number with unit ms, s, m, h, d, w, e.g. \"30s\", \"1h30m\") for key \"queue.min_backoff\"",
                "danerelay.toml:3:16: error: expected a duration (a string such as \"30s\" or an integer number of "
                "seconds) for key \"queue.max_lifetime\"",
                "danerelay.toml:5:18: error: value 50 is out of range (expected at least 100, RFC 5321 \u00a74.5.3.1.8) "
                "for key \"limits.max_recipients\"",
                "danerelay.toml:6:20: error: invalid size \"50XB\" (expected an integer number of bytes or a number with "
                "unit k, M, G, T (x1000) or KiB, MiB, GiB, TiB (x1024), e.g. \"50MB\") for key "
                "\"limits.max_message_size\"",
                "danerelay.toml:7:1: error: unknown key \"limits.colour\"",
                "danerelay.toml:9:9: error: unknown log level \"verbose\" (expected one of trace, debug, info, warn, "
                "error, critical, off) for key \"log.level\"",
            }));
}

TEST(ConfigLoad, ErrorsInSeveralListenersAndPolicyTablesAreAllReported) {
  EXPECT_EQ(errors_of("[[listener]]\n"
                      "address = \"[::]:25\"\n"
                      "auth = \"sometimes\"\n"
                      "[[listener]]\n"
                      "name = \"submission\"\n"
                      "address = \"[::]:0\"\n"
                      "[policy.destination.\"a.example\"]\n"
                      "level = \"strict\"\n"
                      "[policy.destination.\"b.example\"]\n"
                      "nexthop = \"[mx.b.example:25\"\n"),
            (Lines{"danerelay.toml:3:8: error: unknown auth mode \"sometimes\" (expected one of none, optional, "
                   "required) for key \"listener[0].auth\"",
                   "danerelay.toml:6:11: error: invalid listen address \"[::]:0\" (expected an IP address and port, "
                   "e.g. \"[::]:25\", \"0.0.0.0:25\" or \"127.0.0.1:2525\"; IPv6 in brackets) for key "
                   "\"listener[1].address\"",
                   "danerelay.toml:8:9: error: unknown policy level \"strict\" (expected one of none, may, encrypt, "
                   "dane, dane-only, verify, secure) for key \"policy.destination.\\\"a.example\\\".level\"",
                   "danerelay.toml:10:11: error: invalid nexthop \"[mx.b.example:25\" (expected \"host\", "
                   "\"host:port\", \"[host]:port\", \"[192.0.2.1]:25\" or \"[IPv6:2001:db8::1]:25\") for key "
                   "\"policy.destination.\\\"b.example\\\".nexthop\""}));
}

TEST(ConfigLoad, UnreadableFileGivesOneDiagnosticWithoutPosition) {
  const auto result = load_file("/nonexistent/danerelay.toml");
  EXPECT_FALSE(result.ok());
  EXPECT_FALSE(result.config);
  EXPECT_EQ(result.errors, (std::vector<Diagnostic>{{"/nonexistent/danerelay.toml", 0, 0,
                                                     "cannot read configuration file: No such file or directory"}}));

  TempDir dir;
  const auto directory = load_file(dir.path());
  ASSERT_EQ(directory.errors.size(), 1u);
  EXPECT_EQ(directory.errors[0].str(), dir.path().string() + ": error: cannot read configuration file: Is a directory");
}

// ── Values ───────────────────────────────────────────────────────────────────────────────────

TEST(ConfigLoad, EmptyFileLoadsTheDefaultsWithOneDefaultListener) {
  Config want;
  want.source = "danerelay.toml";
  want.listeners.emplace_back();
  EXPECT_EQ(loaded(""), want);
  EXPECT_EQ(loaded("# only a comment\n"), want);
}

TEST(ConfigLoad, EveryKeyIsReadIntoItsMember) {
  const Config c = loaded(R"toml(
[server]
hostname = "Relay.Example.NET."
state_dir = "/srv/danerelay"
reverse_lookup = false
reverse_lookup_timeout = "1500ms"

[[listener]]
name = "submission"
address = "[2001:db8::25]:587"
tls = "starttls"
require_tls = true
auth = "required"
auth_mechanisms = ["PLAIN"]
allow_networks = ["192.0.2.0/24", "2001:db8::/32"]
auth_header = true

[limits]
max_message_size = "10MiB"
max_recipients = 100
max_line_length = 2000
max_command_length = 1024
max_connections = 20
max_connections_per_client = 2
client_ipv6_prefix = 56
max_errors = 3
max_hops = 30
max_auth_failures_per_client = 4
command_timeout = 60
data_timeout = "1h30m"
min_data_rate = 2000

[tls.server]
cert_file = "/etc/ssl/relay.pem"
key_file = "/etc/ssl/relay.key"

[tls.client]
digest_order = ["sha256"]
min_protocol = "TLSv1.3"
ca_file = "/etc/ssl/certs/ca-certificates.crt"
ca_path = "/etc/ssl/certs"

[dns]
trust_anchor = "/etc/unbound/root.key"
trust_anchor_seed = ""
trust_anchor_auto_update = false
forwarders = ["127.0.0.1", "2001:db8::53@5353"]
unbound_config = "/etc/danerelay/unbound.conf"
query_timeout = "300ms"
self_test_name = "Example.ORG."

[delivery]
port = 2525
source_address_v4 = "192.0.2.10"
source_address_v6 = "2001:db8::10"
connect_timeout = "5s"
max_concurrency = 10
max_concurrency_per_destination = 10

[policy]
default = "dane-only"

[queue]
directory = "/var/spool/danerelay"
min_backoff = "1m"
max_backoff = "1h"
max_lifetime = "2d"
delay_warning = 0

[log]
format = "json"
syslog_name = "postfix/danerelay"
level = "debug"
tls_feature_status = true

[metrics]
enabled = false
address = "[::1]:9100"
)toml");
  EXPECT_EQ(c.server.hostname, "relay.example.net");
  EXPECT_EQ(c.server.state_dir, "/srv/danerelay");
  EXPECT_FALSE(c.server.reverse_lookup);
  EXPECT_EQ(c.server.reverse_lookup_timeout, Duration{1500ms});
  ASSERT_EQ(c.listeners.size(), 1u);
  const Listener& l = c.listeners[0];
  EXPECT_EQ(l.name, "submission");
  EXPECT_EQ(l.address, (Endpoint{"2001:db8::25", 587}));
  EXPECT_EQ(l.tls, Listener::Tls::starttls);
  EXPECT_TRUE(l.require_tls);
  EXPECT_EQ(l.auth, Listener::Auth::required);
  EXPECT_EQ(l.auth_mechanisms, Lines{"PLAIN"});
  ASSERT_EQ(l.allow_networks.size(), 2u);
  EXPECT_EQ(l.allow_networks[1].text, "2001:db8::/32");
  EXPECT_TRUE(l.auth_header);
  EXPECT_EQ(l.where, (SourceLocation{"danerelay.toml", 8, 1}));

  EXPECT_EQ(c.limits.max_message_size, 10u * 1024 * 1024);
  EXPECT_EQ(c.limits.max_recipients, 100u);
  EXPECT_EQ(c.limits.max_line_length, 2000u);
  EXPECT_EQ(c.limits.max_command_length, 1024u);
  EXPECT_EQ(c.limits.max_connections, 20u);
  EXPECT_EQ(c.limits.max_connections_per_client, 2u);
  EXPECT_EQ(c.limits.client_ipv6_prefix, 56u);
  EXPECT_EQ(c.limits.max_errors, 3u);
  EXPECT_EQ(c.limits.max_hops, 30u);
  EXPECT_EQ(c.limits.max_auth_failures_per_client, 4u);
  EXPECT_EQ(c.limits.command_timeout, Duration{60s});
  EXPECT_EQ(c.limits.data_timeout, Duration{90min});
  EXPECT_EQ(c.limits.min_data_rate, 2000u);

  EXPECT_EQ(c.tls.server.cert_file, "/etc/ssl/relay.pem");
  EXPECT_EQ(c.tls.server.key_file, "/etc/ssl/relay.key");
  EXPECT_EQ(c.tls.client.digest_order, Lines{"sha256"});
  EXPECT_EQ(c.tls.client.min_protocol, "TLSv1.3");
  EXPECT_EQ(c.tls.client.ca_file, "/etc/ssl/certs/ca-certificates.crt");
  EXPECT_EQ(c.tls.client.ca_path, "/etc/ssl/certs");

  EXPECT_EQ(c.dns.trust_anchor, "/etc/unbound/root.key");
  EXPECT_EQ(c.dns.trust_anchor_seed, "");
  EXPECT_FALSE(c.dns.trust_anchor_auto_update);
  EXPECT_EQ(c.dns.forwarders, (Lines{"127.0.0.1", "2001:db8::53@5353"}));
  EXPECT_EQ(c.dns.unbound_config, "/etc/danerelay/unbound.conf");
  EXPECT_EQ(c.dns.query_timeout, Duration{300ms});
  EXPECT_EQ(c.dns.self_test_name, "example.org");

  EXPECT_EQ(c.delivery.port, 2525);
  EXPECT_EQ(c.delivery.source_address_v4, "192.0.2.10");
  EXPECT_EQ(c.delivery.source_address_v6, "2001:db8::10");
  EXPECT_EQ(c.delivery.connect_timeout, Duration{5s});
  EXPECT_EQ(c.delivery.max_concurrency, 10u);
  EXPECT_EQ(c.delivery.max_concurrency_per_destination, 10u);

  EXPECT_EQ(c.policy.default_level, TlsLevel::dane_only);
  EXPECT_EQ(c.policy.default_where.file, "danerelay.toml");  // `danerelay check` names it
  EXPECT_GT(c.policy.default_where.line, 0u);
  EXPECT_EQ(c.queue.directory, "/var/spool/danerelay");
  EXPECT_EQ(c.queue.min_backoff, Duration{1min});
  EXPECT_EQ(c.queue.max_backoff, Duration{1h});
  EXPECT_EQ(c.queue.max_lifetime, Duration{48h});
  EXPECT_EQ(c.queue.delay_warning, Duration{0});

  EXPECT_EQ(c.log.format, LogSettings::Format::json);
  EXPECT_EQ(c.log.syslog_name, "postfix/danerelay");
  EXPECT_EQ(c.log.level, "debug");
  EXPECT_TRUE(c.log.tls_feature_status);
  EXPECT_FALSE(c.metrics.enabled);
  EXPECT_EQ(c.metrics.address, (Endpoint{"::1", 9100}));
}

// Issue 11 item 6: inbound client names, on by default with a 5 s bound; each key refuses what it cannot mean.
TEST(ConfigLoad, ReverseLookupKeysDefaultOnWithFiveSecondsAndRefuseWrongValues) {
  const Config defaults = loaded("");
  EXPECT_TRUE(defaults.server.reverse_lookup);
  EXPECT_EQ(defaults.server.reverse_lookup_timeout, Duration{5s});
  EXPECT_EQ(loaded("[server]\nreverse_lookup_timeout = 2\n").server.reverse_lookup_timeout, Duration{2s});
  EXPECT_EQ(errors_of("[server]\nreverse_lookup = \"no\"\n"),
            Lines{"danerelay.toml:2:18: error: expected a boolean (true or false) for key \"server.reverse_lookup\""});
  EXPECT_EQ(errors_of("[server]\nreverse_lookup_timeout = \"0s\"\n"),
            Lines{"danerelay.toml:2:26: error: duration \"0s\" is too short (minimum 1ms) for key "
                  "\"server.reverse_lookup_timeout\""});
  EXPECT_EQ(errors_of("[server]\nreverse_lookups = false\n"),
            Lines{"danerelay.toml:2:1: error: unknown key \"server.reverse_lookups\""});
}

TEST(ConfigLoad, DurationsAndSizesAcceptPlainIntegers) {
  const Config c = loaded("[dns]\nquery_timeout = 5\n[limits]\nmax_message_size = 1024\n");
  EXPECT_EQ(c.dns.query_timeout, Duration{5s});
  EXPECT_EQ(c.limits.max_message_size, 1024u);
}

TEST(ConfigLoad, ZeroAndNegativeValuesAreRejectedWhereMeaningless) {
  EXPECT_EQ(errors_of("[dns]\nquery_timeout = \"0s\"\n"),
            Lines{"danerelay.toml:2:17: error: duration \"0s\" is too short (minimum 1ms) for key \"dns.query_timeout\""});
  EXPECT_EQ(errors_of("[queue]\nmin_backoff = -5\n"),
            Lines{"danerelay.toml:2:15: error: invalid duration -5 (expected an integer number of seconds or a number "
                  "with unit ms, s, m, h, d, w, e.g. \"30s\", \"1h30m\") for key \"queue.min_backoff\""});
  EXPECT_EQ(errors_of("[limits]\nmax_message_size = 0\n"),
            Lines{"danerelay.toml:2:20: error: size 0 is too small (minimum 1 bytes) for key \"limits.max_message_size\""});
  EXPECT_EQ(errors_of("[delivery]\nport = 0\n"),
            Lines{"danerelay.toml:2:8: error: value 0 is out of range (expected 1..65535) for key \"delivery.port\""});
  EXPECT_EQ(errors_of("[delivery]\nport = 65536\n"),
            Lines{"danerelay.toml:2:8: error: value 65536 is out of range (expected 1..65535) for key \"delivery.port\""});
  EXPECT_EQ(errors_of("[limits]\nmax_errors = 4294967296\n"),
            Lines{"danerelay.toml:2:14: error: value 4294967296 is out of range (expected at most 4294967295) for key "
                  "\"limits.max_errors\""});
  // A zero delay_warning is documented as "no delay notices".
  EXPECT_EQ(loaded("[queue]\ndelay_warning = \"0s\"\n").queue.delay_warning, Duration{0});
}

// The "trust at the edges" limits: values that would switch a defence off, or make no sense.
TEST(ConfigLoad, EdgeLimitsRejectMeaninglessValues) {
  EXPECT_EQ(errors_of("[limits]\nmax_hops = 1\nmin_data_rate = 0\nclient_ipv6_prefix = 0\nmax_auth_failures_per_client = 0\n"),
            (Lines{"danerelay.toml:2:12: error: value 1 is out of range (expected at least 2, danerelay's own Received: "
                   "counts) for key \"limits.max_hops\"",
                   "danerelay.toml:3:17: error: value 0 is out of range (expected at least 1) for key \"limits.min_data_rate\"",
                   "danerelay.toml:4:22: error: value 0 is out of range (expected 1..128) for key \"limits.client_ipv6_prefix\"",
                   "danerelay.toml:5:32: error: value 0 is out of range (expected at least 1) for key "
                   "\"limits.max_auth_failures_per_client\""}));
  EXPECT_EQ(errors_of("[limits]\nclient_ipv6_prefix = 129\nmin_data_rate = \"500\"\n"),
            (Lines{"danerelay.toml:2:22: error: value 129 is out of range (expected 1..128) for key "
                   "\"limits.client_ipv6_prefix\"",
                   "danerelay.toml:3:17: error: expected an integer for key \"limits.min_data_rate\""}));
  EXPECT_EQ(errors_of("[[listener]]\nauth_header = \"yes\"\n"),
            Lines{"danerelay.toml:2:15: error: expected a boolean (true or false) for key \"listener[0].auth_header\""});
  const Config c = loaded("[limits]\nmax_hops = 2\nmin_data_rate = 1\nclient_ipv6_prefix = 128\nmax_auth_failures_per_client = 1\n");
  EXPECT_EQ(c.limits.max_hops, 2u);
  EXPECT_EQ(c.limits.min_data_rate, 1u);
  EXPECT_EQ(c.limits.client_ipv6_prefix, 128u);
  EXPECT_EQ(c.limits.max_auth_failures_per_client, 1u);
}

TEST(ConfigLoad, RfcMinimumLimitsAreEnforced) {
  EXPECT_EQ(errors_of("[limits]\nmax_line_length = 998\nmax_command_length = 511\n"),
            (Lines{"danerelay.toml:2:19: error: value 998 is out of range (expected at least 1000, RFC 5321 "
                   "\u00a74.5.3.1.6) for key \"limits.max_line_length\"",
                   "danerelay.toml:3:22: error: value 511 is out of range (expected at least 512, RFC 5321 "
                   "\u00a74.5.3.1.4) for key \"limits.max_command_length\""}));
}

TEST(ConfigLoad, CrossFieldLimitsPointAtTheValueWritten) {
  EXPECT_EQ(errors_of("[limits]\nmax_connections = 10\n"),
            Lines{"danerelay.toml:2:19: error: value 10 is below max_connections_per_client (50, the default) for key "
                  "\"limits.max_connections\""});
  EXPECT_EQ(errors_of("[delivery]\nmax_concurrency_per_destination = 200\n"),
            Lines{"danerelay.toml:2:35: error: value 200 exceeds max_concurrency (100) for key "
                  "\"delivery.max_concurrency_per_destination\""});
  EXPECT_EQ(errors_of("[queue]\nmax_backoff = \"1m\"\n"),
            Lines{"danerelay.toml:2:15: error: duration \"1m\" is shorter than min_backoff (5m) for key "
                  "\"queue.max_backoff\""});
  EXPECT_EQ(errors_of("[queue]\nmin_backoff = \"2h\"\n"),
            Lines{"danerelay.toml:2:15: error: duration \"2h\" is longer than max_backoff (1h6m40s) for key "
                  "\"queue.min_backoff\""});
}

TEST(ConfigLoad, LogTargetIsOneOfFour) {
  EXPECT_EQ(errors_of("[log]\ntarget = \"jornal\"\n"),
            Lines{"danerelay.toml:2:10: error: unknown log target \"jornal\" (expected one of auto, journal, syslog, stderr) "
                  "for key \"log.target\""});
  for (const char* t : {"auto", "journal", "syslog", "stderr"}) {
    EXPECT_EQ(errors_of(std::string("[log]\ntarget = \"") + t + "\"\n"), Lines{}) << t;
  }
}

TEST(ConfigLoad, OneBadValueDoesNotCascadeIntoCrossFieldErrors) {
  EXPECT_EQ(errors_of("[limits]\nmax_connections = \"many\"\nmax_connections_per_client = 600\n"),
            Lines{"danerelay.toml:2:19: error: expected an integer for key \"limits.max_connections\""});
}

TEST(ConfigLoad, HostNamesAndAddressesAreValidated) {
  EXPECT_EQ(errors_of("[server]\nhostname = \"relay_1.example\"\n"),
            Lines{"danerelay.toml:2:12: error: invalid host name \"relay_1.example\" (expected letters, digits and '-' "
                  "in dot-separated labels; internationalized names as A-labels \"xn--...\") for key "
                  "\"server.hostname\""});
  EXPECT_EQ(errors_of("[delivery]\nsource_address_v4 = \"2001:db8::1\"\n"),
            Lines{"danerelay.toml:2:21: error: invalid IPv4 address \"2001:db8::1\" (expected e.g. \"192.0.2.10\", or "
                  "\"\" for the kernel's choice) for key \"delivery.source_address_v4\""});
  EXPECT_EQ(errors_of("[metrics]\naddress = \"localhost:9425\"\n"),
            Lines{"danerelay.toml:2:11: error: invalid listen address \"localhost:9425\" (expected an IP address and "
                  "port, e.g. \"127.0.0.1:9425\"; IPv6 in brackets) for key \"metrics.address\""});
  EXPECT_EQ(errors_of("[dns]\nforwarders = [\"127.0.0.1\", \"dns.example\", \"192.0.2.53@0\"]\n"),
            (Lines{"danerelay.toml:2:28: error: invalid forwarder \"dns.example\" (expected an IP address, optionally "
                   "with @port, e.g. \"192.0.2.53\" or \"2001:db8::53@5353\") for key \"dns.forwarders[1]\"",
                   "danerelay.toml:2:43: error: invalid forwarder \"192.0.2.53@0\" (expected an IP address, optionally "
                   "with @port, e.g. \"192.0.2.53\" or \"2001:db8::53@5353\") for key \"dns.forwarders[2]\""}));
}

TEST(ConfigLoad, DigestOrderMustBeKnownNonEmptyAndDuplicateFree) {
  EXPECT_EQ(errors_of("[tls.client]\ndigest_order = [\"sha256\", \"sha1\", \"sha256\"]\n"),
            (Lines{"danerelay.toml:2:27: error: unknown digest \"sha1\" (expected one of sha512, sha256) for key "
                   "\"tls.client.digest_order[1]\"",
                   "danerelay.toml:2:35: error: duplicate digest \"sha256\" for key \"tls.client.digest_order[2]\""}));
  EXPECT_EQ(errors_of("[tls.client]\ndigest_order = []\n"),
            Lines{"danerelay.toml:2:16: error: empty list (expected one or more of sha512, sha256, strongest first) for "
                  "key \"tls.client.digest_order\""});
  EXPECT_EQ(errors_of("[tls.client]\nmin_protocol = \"TLSv1.1\"\n"),
            Lines{"danerelay.toml:2:16: error: unknown TLS protocol version \"TLSv1.1\" (expected one of TLSv1.2, "
                  "TLSv1.3) for key \"tls.client.min_protocol\""});
}

TEST(ConfigLoad, CertificateAndKeyMustBeSetTogether) {
  EXPECT_EQ(errors_of("[tls.server]\ncert_file = \"/etc/danerelay/cert.pem\"\n"),
            Lines{"danerelay.toml:2:13: error: cert_file without key_file (set both or neither) for key "
                  "\"tls.server.cert_file\""});
  EXPECT_EQ(errors_of("[tls.server]\nkey_file = \"/etc/danerelay/key.pem\"\n"),
            Lines{"danerelay.toml:2:12: error: key_file without cert_file (set both or neither) for key "
                  "\"tls.server.key_file\""});
}

TEST(ConfigLoad, RelativePathsResolveAgainstTheConfigDirectory) {
  const Config c = loaded(R"toml(
[server]
state_dir = "state"
[tls.server]
cert_file = "certs/relay.pem"
key_file = "../private/relay.key"
[dns]
trust_anchor = "/var/lib/unbound/root.key"
unbound_config = "./unbound.conf"
)toml",
                          "/etc/danerelay/danerelay.toml");
  EXPECT_EQ(c.source, "/etc/danerelay/danerelay.toml");
  EXPECT_EQ(c.server.state_dir, "/etc/danerelay/state");
  EXPECT_EQ(c.tls.server.cert_file, "/etc/danerelay/certs/relay.pem");
  EXPECT_EQ(c.tls.server.key_file, "/etc/private/relay.key");
  EXPECT_EQ(c.dns.trust_anchor, "/var/lib/unbound/root.key");
  EXPECT_EQ(c.dns.unbound_config, "/etc/danerelay/unbound.conf");
  EXPECT_EQ(c.dns.trust_anchor_seed, "/usr/share/dns/root.key");  // defaults are not rebased
}

TEST(ConfigLoad, LoadFileResolvesPathsAgainstTheFilesDirectoryAndRecordsItsAbsolutePath) {
  TempDir dir;
  const fs::path file = dir.write("danerelay.toml", "[tls.server]\ncert_file = \"cert.pem\"\nkey_file = \"key.pem\"\n");
  const auto result = load_file(file);
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result.config->source, file);
  EXPECT_EQ(result.config->tls.server.cert_file, dir.path() / "cert.pem");

  const fs::path bad = dir.write("bad.toml", "[dns]\nquery_timeout = \"soon\"\n");
  const auto failed = load_file(bad);
  ASSERT_EQ(failed.errors.size(), 1u);
  EXPECT_EQ(failed.errors[0].file, bad.string());
  EXPECT_EQ(failed.errors[0].line, 2u);
  EXPECT_EQ(failed.errors[0].column, 17u);
}

TEST(ConfigLoad, EmptyStateDirIsRejected) {
  EXPECT_EQ(errors_of("[server]\nstate_dir = \"\"\n"),
            Lines{"danerelay.toml:2:13: error: empty path for key \"server.state_dir\""});
}

// ── [dns.unbound_options] ────────────────────────────────────────────────────────────────────

TEST(ConfigLoad, UnboundOptionsKeepFileOrderAndConvertScalars) {
  const Config c = loaded(R"toml(
[dns.unbound_options]
"infra-cache-max-rtt" = "300"
"edns-buffer-size" = 1232
"qname-minimisation" = true
"local-zone:" = ["a.example. static", "b.example. static"]
aggressive-nsec = false
)toml");
  using Pair = std::pair<std::string, std::string>;
  EXPECT_EQ(c.dns.unbound_options, (std::vector<Pair>{{"infra-cache-max-rtt", "300"},
                                                      {"edns-buffer-size", "1232"},
                                                      {"qname-minimisation", "yes"},
                                                      {"local-zone", "a.example. static"},
                                                      {"local-zone", "b.example. static"},
                                                      {"aggressive-nsec", "no"}}));
}

TEST(ConfigLoad, UnboundOptionsRejectBadNamesAndValueTypes) {
  EXPECT_EQ(errors_of("[dns.unbound_options]\n"
                      "\"Bad_Name\" = \"1\"\n"
                      "\"edns-buffer-size\" = 1.5\n"
                      "\"local-zone\" = [\"x\", {}]\n"),
            (Lines{"danerelay.toml:2:1: error: invalid unbound option name \"Bad_Name\" (expected lower-case letters, "
                   "digits and '-', as in unbound.conf) for key \"dns.unbound_options.Bad_Name\"",
                   "danerelay.toml:3:22: error: expected a string, integer or boolean for key "
                   "\"dns.unbound_options.edns-buffer-size\"",
                   "danerelay.toml:4:22: error: expected a string, integer or boolean for key "
                   "\"dns.unbound_options.local-zone[1]\""}));
}

// ── [[listener]] ─────────────────────────────────────────────────────────────────────────────

TEST(ConfigLoad, ListenersInTheFileReplaceTheDefaultListener) {
  const Config c = loaded(R"toml(
[tls.server]
cert_file = "/etc/danerelay/cert.pem"
key_file = "/etc/danerelay/key.pem"

[[listener]]
name = "relay"
address = "127.0.0.1:2525"
allow_networks = ["127.0.0.0/8"]

[[listener]]
name = "submission"
address = "[::]:465"
tls = "implicit"
auth = "required"
)toml");
  ASSERT_EQ(c.listeners.size(), 2u);
  EXPECT_EQ(c.listeners[0].address, (Endpoint{"127.0.0.1", 2525}));
  EXPECT_EQ(c.listeners[0].where.line, 6u);
  EXPECT_EQ(c.listeners[1].name, "submission");
  EXPECT_EQ(c.listeners[1].tls, Listener::Tls::implicit);
  EXPECT_EQ(c.listeners[1].auth_mechanisms, (Lines{"PLAIN", "LOGIN"}));
  EXPECT_EQ(c.listeners[1].where.line, 11u);
}

TEST(ConfigLoad, SingleListenerTableIsExplained) {
  EXPECT_EQ(errors_of("[listener]\nname = \"relay\"\n"),
            Lines{"danerelay.toml:1:1: error: expected an array of tables (write [[listener]], not [listener]) for key "
                  "\"listener\""});
  EXPECT_EQ(errors_of("listener = []\n"),
            Lines{"danerelay.toml:1:12: error: empty array (define at least one [[listener]], or leave the key out for "
                  "the default listener) for key \"listener\""});
}

TEST(ConfigLoad, ListenerTlsRequirementsNeedACertificate) {
  EXPECT_EQ(errors_of("[[listener]]\n"
                      "address = \"[::]:587\"\n"
                      "require_tls = true\n"
                      "[[listener]]\n"
                      "name = \"smtps\"\n"
                      "address = \"[::]:465\"\n"
                      "tls = \"implicit\"\n"
                      "[[listener]]\n"
                      "name = \"plain\"\n"
                      "address = \"[::]:2525\"\n"
                      "tls = \"none\"\n"
                      "require_tls = true\n"),
            (Lines{"danerelay.toml:3:15: error: require_tls = true needs tls.server.cert_file and tls.server.key_file "
                   "for key \"listener[0].require_tls\"",
                   "danerelay.toml:7:7: error: implicit TLS needs tls.server.cert_file and tls.server.key_file for key "
                   "\"listener[1].tls\"",
                   "danerelay.toml:12:15: error: require_tls = true contradicts tls = \"none\" for key "
                   "\"listener[2].require_tls\""}));
}

TEST(ConfigLoad, DuplicateListenerNamesAndAddressesAreErrors) {
  EXPECT_EQ(errors_of("[[listener]]\n"
                      "address = \"[::]:25\"\n"
                      "[[listener]]\n"
                      "address = \"[::]:25\"\n"),
            (Lines{"danerelay.toml:3:1: error: duplicate listener name \"relay\" (also used by the listener at line 1) "
                   "for key \"listener[1]\"",
                   "danerelay.toml:4:11: error: duplicate listener address \"[::]:25\" (also used by the listener at "
                   "line 1) for key \"listener[1].address\""}));
}

// Scale-out (README "Scale-out behind a load balancer"): off by default; on, with the balancers.
TEST(ConfigLoad, ProxyProtocolListenerNamesItsBalancers) {
  const Config d = loaded("[[listener]]\naddress = \"[::]:25\"\n");
  EXPECT_FALSE(d.listeners[0].proxy_protocol);
  EXPECT_TRUE(d.listeners[0].proxy_from.empty());
  const Config c = loaded("[[listener]]\naddress = \"[::]:25\"\nproxy_protocol = true\n"
                          "proxy_from = [\"10.0.0.5\", \"2001:db8::/64\"]\n");
  ASSERT_EQ(c.listeners.size(), 1u);
  EXPECT_TRUE(c.listeners[0].proxy_protocol);
  ASSERT_EQ(c.listeners[0].proxy_from.size(), 2u);
  EXPECT_EQ(c.listeners[0].proxy_from[0].text, "10.0.0.5");
  EXPECT_EQ(c.listeners[0].proxy_from[0].prefix, 32);
  EXPECT_EQ(c.listeners[0].proxy_from[1].text, "2001:db8::/64");
  EXPECT_EQ(errors_of("[[listener]]\nproxy_from = [\"10.0.0.0/33\"]\nproxy_protocol = true\n"),
            Lines{"danerelay.toml:2:15: error: invalid network \"10.0.0.0/33\" (expected an address or CIDR such as "
                  "\"10.0.0.0/8\", \"192.0.2.7\" or \"2001:db8::/32\") for key \"listener[0].proxy_from[0]\""});
}

// A header is believed only from a balancer: proxy_protocol without one accepts nobody.
TEST(ConfigLoad, ProxyProtocolWithoutProxyFromIsAnError) {
  EXPECT_EQ(errors_of("[[listener]]\naddress = \"[::]:25\"\nproxy_protocol = true\n"),
            Lines{"danerelay.toml:3:18: error: proxy_protocol = true needs proxy_from (the load balancers' addresses, "
                  "e.g. [\"10.0.0.5/32\"]); without it no connection could be accepted for key "
                  "\"listener[0].proxy_protocol\""});
  EXPECT_EQ(errors_of("[[listener]]\nproxy_protocol = true\nproxy_from = []\n"),
            Lines{"danerelay.toml:3:14: error: proxy_protocol = true needs proxy_from (the load balancers' addresses, "
                  "e.g. [\"10.0.0.5/32\"]); without it no connection could be accepted for key "
                  "\"listener[0].proxy_from\""});
}

// Balancers named on a listener that does not read headers: a setting that does nothing.
TEST(ConfigLoad, ProxyFromWithoutProxyProtocolIsAnError) {
  EXPECT_EQ(errors_of("[[listener]]\nproxy_from = [\"10.0.0.5\"]\n"),
            Lines{"danerelay.toml:2:14: error: proxy_from is set but proxy_protocol is not true (set proxy_protocol = "
                  "true, or remove proxy_from) for key \"listener[0].proxy_from\""});
  EXPECT_EQ(errors_of("[[listener]]\nproxy_protocol = false\nproxy_from = [\"10.0.0.5\"]\n"),
            Lines{"danerelay.toml:3:14: error: proxy_from is set but proxy_protocol is not true (set proxy_protocol = "
                  "true, or remove proxy_from) for key \"listener[0].proxy_from\""});
}

TEST(ConfigLoad, SaslMechanismsAreCheckedAgainstWhatTheServerOffers) {
  EXPECT_EQ(errors_of("[[listener]]\nauth_mechanisms = [\"PLAIN\", \"CRAM-MD5\", \"PLAIN\"]\n"),
            (Lines{"danerelay.toml:2:29: error: unknown SASL mechanism \"CRAM-MD5\" (expected one of PLAIN, LOGIN) for "
                   "key \"listener[0].auth_mechanisms[1]\"",
                   "danerelay.toml:2:41: error: duplicate SASL mechanism \"PLAIN\" for key "
                   "\"listener[0].auth_mechanisms[2]\""}));
}

// ── [policy] ─────────────────────────────────────────────────────────────────────────────────

TEST(ConfigLoad, DestinationTablesAreNormalizedAndKeptInFileOrder) {
  const Config c = loaded(R"toml(
[policy.destination."Bank.Example."]
level = "dane-only"
[policy.destination.".partner.example"]
level = "secure"
match = ["nexthop", "Dot-Nexthop.example", ".Example.COM"]
[policy.destination."a.example"]
nexthop = "[IPv6:2001:db8::1]:25"
[policy.destination."pinned.partner.example"]
)toml");
  ASSERT_EQ(c.policy.destinations.size(), 4u);
  const auto& bank = c.policy.destinations[0];
  EXPECT_EQ(bank.pattern, "bank.example");
  EXPECT_EQ(bank.level, TlsLevel::dane_only);
  EXPECT_EQ(bank.where, (SourceLocation{"danerelay.toml", 2, 1}));
  EXPECT_EQ(c.policy.destinations[1].pattern, ".partner.example");
  EXPECT_EQ(c.policy.destinations[1].match, (Lines{"nexthop", "dot-nexthop.example", ".example.com"}));
  EXPECT_EQ(c.policy.destinations[2].pattern, "a.example");
  EXPECT_EQ(c.policy.destinations[2].level, std::nullopt);
  EXPECT_EQ(c.policy.destinations[2].nexthop, (NextHop{"2001:db8::1", 25, true}));
  // An empty table pins a name to the default level in spite of a ".parent" table.
  EXPECT_EQ(c.policy.find("pinned.partner.example"), &c.policy.destinations[3]);
  EXPECT_EQ(c.policy.find("mx.partner.example"), &c.policy.destinations[1]);
}

TEST(ConfigLoad, DuplicateDestinationAfterNormalizationPointsAtTheSecond) {
  EXPECT_EQ(errors_of("[policy.destination.\"Bank.Example\"]\n"
                      "level = \"dane-only\"\n"
                      "[policy.destination.\"bank.example.\"]\n"
                      "level = \"may\"\n"),
            Lines{"danerelay.toml:3:21: error: duplicate destination \"bank.example\" (first defined at line 1) for key "
                  "\"policy.destination.\\\"bank.example.\\\"\""});
}

TEST(ConfigLoad, InvalidDestinationNameIsReportedAtTheName) {
  EXPECT_EQ(errors_of("[policy.destination.\"bank..example\"]\nlevel = \"dane\"\n"),
            Lines{"danerelay.toml:1:21: error: invalid destination \"bank..example\" (expected a domain such as "
                  "\"example.org\", or \".example.org\" for its subdomains) for key "
                  "\"policy.destination.\\\"bank..example\\\"\""});
}

TEST(ConfigLoad, DestinationMustBeATable) {
  EXPECT_EQ(errors_of("[policy.destination]\n\"bank.example\" = \"dane-only\"\n"),
            Lines{"danerelay.toml:2:18: error: expected a table for key \"policy.destination.\\\"bank.example\\\"\""});
}

TEST(ConfigLoad, MatchIsOnlyAcceptedWithVerifyOrSecure) {
  EXPECT_EQ(errors_of("[policy.destination.\"bank.example\"]\nlevel = \"dane\"\nmatch = [\"nexthop\"]\n"),
            Lines{"danerelay.toml:3:9: error: \"match\" has no effect at level \"dane\" (only verify and secure use it) "
                  "for key \"policy.destination.\\\"bank.example\\\".match\""});
  // The level can come from policy.default.
  EXPECT_TRUE(load_string("[policy]\ndefault = \"verify\"\n[policy.destination.\"a.example\"]\nmatch = [\"hostname\"]\n",
                          "x.toml")
                  .ok());
  EXPECT_EQ(errors_of("[policy.destination.\"a.example\"]\nlevel = \"verify\"\nmatch = [\"*.example\"]\n"),
            Lines{"danerelay.toml:3:10: error: invalid match \"*.example\" (expected hostname, nexthop, dot-nexthop, a "
                  "domain name, or .domain for its subdomains) for key "
                  "\"policy.destination.\\\"a.example\\\".match[0]\""});
}

TEST(ConfigLoad, DaneOnlyWithAnAddressLiteralNexthopIsRejected) {
  const std::string want =
      "danerelay.toml:3:11: error: address-literal nexthop \"[192.0.2.1]:25\" cannot satisfy level \"dane-only\" (DANE "
      "does not apply to address literals, RFC 7672 \u00a72.2) for key \"policy.destination.\\\"bank.example\\\".nexthop\"";
  EXPECT_EQ(errors_of("[policy.destination.\"bank.example\"]\nlevel = \"dane-only\"\nnexthop = \"[192.0.2.1]:25\"\n"),
            Lines{want});
  EXPECT_EQ(errors_of("[policy]\ndefault = \"dane-only\"\n[policy.destination.\"bank.example\"]\n"
                      "nexthop = \"[192.0.2.1]:25\"\n"),
            Lines{"danerelay.toml:4:11: error: address-literal nexthop \"[192.0.2.1]:25\" cannot satisfy level "
                  "\"dane-only\" (DANE does not apply to address literals, RFC 7672 \u00a72.2) for key "
                  "\"policy.destination.\\\"bank.example\\\".nexthop\""});
  // A host-name route keeps DANE (RFC 7672 §2.2.2) and is fine with dane-only.
  EXPECT_TRUE(load_string("[policy.destination.\"bank.example\"]\nlevel = \"dane-only\"\nnexthop = \"[mx.bank.example]\"\n",
                          "x.toml")
                  .ok());
}

TEST(ConfigLoad, P02_PkixWithAnAddressLiteralNexthopNeedsALiteralMatchName) {
  // An address literal is never a certificate name: verify/secure with only keywords (or the
  // default) would leave nothing to check, and the relay would defer every message.
  for (const std::string level : {"verify", "secure"}) {
    EXPECT_EQ(errors_of("[policy.destination.\"p.example\"]\nlevel = \"" + level + "\"\nnexthop = \"[192.0.2.1]:25\"\n"),
              Lines{"danerelay.toml:3:11: error: address-literal nexthop \"[192.0.2.1]:25\" at level \"" + level +
                    "\" leaves no certificate name to check (address literals are never names): add match = "
                    "[\"the.server.name\"] for key \"policy.destination.\\\"p.example\\\".nexthop\""});
    EXPECT_EQ(errors_of("[policy.destination.\"p.example\"]\nlevel = \"" + level +
                        "\"\nnexthop = \"[192.0.2.1]:25\"\nmatch = [\"hostname\", \"nexthop\"]\n")
                  .size(),
              1u);
    EXPECT_TRUE(load_string("[policy.destination.\"p.example\"]\nlevel = \"" + level +
                                "\"\nnexthop = \"[192.0.2.1]:25\"\nmatch = [\"smtp.p.example\"]\n",
                            "x.toml")
                    .ok());
  }
}

TEST(ConfigLoad, MetricsKeysAndTheirDefaults) {
  // The endpoint is off by default, on 127.0.0.1:9425, and only loopback may ask it.
  const Config d = *load_string("", "x.toml").config;
  EXPECT_FALSE(d.metrics.enabled);
  EXPECT_EQ(d.metrics.address, (Endpoint{"127.0.0.1", 9425}));
  ASSERT_EQ(d.metrics.allow_networks.size(), 2u);
  EXPECT_EQ(d.metrics.allow_networks[0].text, "127.0.0.0/8");
  EXPECT_EQ(d.metrics.allow_networks[1].text, "::1/128");
  auto r = load_string("[metrics]\nenabled = true\naddress = \"[::]:9100\"\nallow_networks = [\"10.1.0.0/16\", \"2001:db8::/32\"]\n",
                       "x.toml");
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r.config->metrics.enabled);
  EXPECT_EQ(r.config->metrics.address, (Endpoint{"::", 9100}));
  ASSERT_EQ(r.config->metrics.allow_networks.size(), 2u);
  EXPECT_EQ(r.config->metrics.allow_networks[0].text, "10.1.0.0/16");
  // An empty list is allowed (nobody may ask) and stays empty.
  auto none = load_string("[metrics]\nenabled = true\nallow_networks = []\n", "x.toml");
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none.config->metrics.allow_networks.empty());
}

TEST(ConfigLoad, MetricsBadValuesNameFileLineAndKey) {
  Lines errors = errors_of("[metrics]\nallow_networks = [\"10.0.0.0/33\"]\n");
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].find("danerelay.toml:2:"), std::string::npos) << errors[0];
  EXPECT_NE(errors[0].find("metrics.allow_networks"), std::string::npos) << errors[0];
  errors = errors_of("[metrics]\nenabled = \"yes\"\n");
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].find("metrics.enabled"), std::string::npos) << errors[0];
  errors = errors_of("[metrics]\nport = 9425\n");
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].find("danerelay.toml:2:"), std::string::npos) << errors[0];
  EXPECT_NE(errors[0].find("metrics.port"), std::string::npos) << errors[0];
}

// ── The shipped example and the reference ────────────────────────────────────────────────────

TEST(ExampleConfig, LoadsWithoutErrors) {
  const auto result = load_file(kSourceDir / "config" / "example.toml");
  for (const auto& d : result.errors) ADD_FAILURE() << d.str();
  EXPECT_TRUE(result.ok());
}

TEST(ExampleConfig, ListsExactlyTheDefaultsApartFromItsPolicyExamples) {
  const auto result = load_file(kSourceDir / "config" / "example.toml");
  ASSERT_TRUE(result.ok());
  Config example = *result.config;

  const auto& d = example.policy.destinations;
  ASSERT_EQ(d.size(), 3u);
  EXPECT_EQ(d[0].pattern, "bank.example");
  EXPECT_EQ(d[0].level, TlsLevel::dane_only);
  EXPECT_EQ(d[1].pattern, ".partner.example");
  EXPECT_EQ(d[1].level, TlsLevel::verify);
  EXPECT_EQ(d[2].pattern, "outsourced.example");
  EXPECT_EQ(d[2].nexthop, (NextHop{"mx.provider.example", 2525, false}));

  Config want;
  want.source = example.source;
  want.listeners.emplace_back();
  example.policy.destinations.clear();
  ASSERT_EQ(example.listeners.size(), 1u);
  example.listeners[0].where = {};
  // `check` names the line of [policy] default: the example's own line of it.
  {
    std::ifstream in(example.source);
    std::uint32_t n = 0, line_of_default = 0;
    for (std::string l; std::getline(in, l);) {
      ++n;
      if (l.rfind("default = ", 0) == 0) line_of_default = n;
    }
    ASSERT_GT(line_of_default, 0u);
    EXPECT_EQ(example.policy.default_where.line, line_of_default);
  }
  example.policy.default_where = {};
  EXPECT_EQ(example, want);
}

// Every key of the example, as "section.key" ([[listener]] keys as "listener.key", destination
// keys as policy.destination."NAME".key); [dns.unbound_options] is free-form.
void collect_keys(const toml::table& table, const std::string& prefix, std::set<std::string>& out) {
  for (const auto& [k, v] : table) {
    std::string key = prefix.empty() ? std::string(k.str()) : prefix + "." + std::string(k.str());
    if (prefix == "policy.destination") key = "policy.destination.\"NAME\"";
    if (key == "dns.unbound_options") {
      out.insert(key);
    } else if (const auto* t = v.as_table()) {
      collect_keys(*t, key, out);
    } else if (const auto* a = v.as_array(); a != nullptr && a->is_array_of_tables()) {
      for (const auto& e : *a) collect_keys(*e.as_table(), key, out);
    } else {
      out.insert(key);
    }
  }
}

TEST(ExampleConfig, EveryKeyIsDocumentedInReference) {
  const auto example = toml::parse_file((kSourceDir / "config" / "example.toml").string());
  std::set<std::string> keys;
  collect_keys(example, "", keys);
  keys.insert("policy.destination.\"NAME\".match");  // in the example only under a verify level
  keys.insert("listener.proxy_from");                 // commented out there: it needs proxy_protocol = true
  EXPECT_EQ(keys.size(), 78u) << "every member of config.hpp's settings structs, once";
  const std::string reference = read_text(kSourceDir / "config" / "REFERENCE.md");
  for (const auto& key : keys) {
    EXPECT_NE(reference.find("| `" + key + "`"), std::string::npos) << key << " is missing from REFERENCE.md";
  }
}

// ── Golden files ─────────────────────────────────────────────────────────────────────────────

TEST(GoldenFiles, EachInvalidConfigGivesItsReferenceDiagnostics) {
  const fs::path dir = kSourceDir / "tests" / "data" / "config";
  int checked = 0;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.path().extension() != ".toml") continue;
    const fs::path ref = fs::path(entry.path()).replace_extension(".ref");
    const auto result = load_string(read_text(entry.path()), entry.path().filename().string());
    std::string got;
    for (const auto& d : result.errors) got += d.str() + "\n";
    EXPECT_EQ(got, read_text(ref)) << entry.path();
    ++checked;
  }
  EXPECT_GE(checked, 2);
}

}  // namespace
}  // namespace danerelay::config
