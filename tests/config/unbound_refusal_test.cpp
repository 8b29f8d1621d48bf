// tests/config/unbound_refusal_test.cpp — the unbound options danerelay refuses, wherever they are
// written: in [dns.unbound_options] (FILE:LINE:COL of danerelay.toml and the key) and in the file
// named by dns.unbound_config (that file's name, the option's line and column, and the key that
// loads it). The relay's only trust anchor is dns.trust_anchor (D-01): options that add anchors or
// change what validates are refused by the loader, so check-config (config::load_file) names them.
#include "config/load.hpp"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace danerelay::config {
namespace {

namespace fs = std::filesystem;
using Lines = std::vector<std::string>;

class UnboundRefusal : public ::testing::Test {
 protected:
  UnboundRefusal() {
    std::string pattern = (fs::temp_directory_path() / "unbound_refusal.XXXXXX").string();
    dir_ = ::mkdtemp(pattern.data());
  }
  ~UnboundRefusal() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  fs::path write(const std::string& name, std::string_view text) const {
    const fs::path file = dir_ / name;
    std::ofstream(file, std::ios::binary) << text;
    return file;
  }

  // danerelay.toml (in the scratch directory) loading `conf` as dns.unbound_config, via load_file
  // as check-config does.
  Lines check(std::string_view conf, std::string_view more_toml = "") {
    conf_ = write("unbound.conf", conf);
    toml_ = write("danerelay.toml", "[server]\nstate_dir = \"state\"\n\n[dns]\nunbound_config = \"unbound.conf\"\n" +
                                        std::string(more_toml));
    const auto result = load_file(toml_);
    Lines out;
    for (const auto& d : result.errors) out.push_back(d.str());
    EXPECT_EQ(result.config.has_value(), out.empty());
    return out;
  }

  static Lines errors_of(std::string_view toml) {
    const auto result = load_string(toml, "danerelay.toml");
    Lines out;
    for (const auto& d : result.errors) out.push_back(d.str());
    EXPECT_EQ(result.config.has_value(), out.empty());
    return out;
  }

  // "<unbound.conf>:LINE:COL: error: unbound option "NAME" WHY; danerelay refuses it (in the file of
  // key "dns.unbound_config", <danerelay.toml>:5:18)"
  std::string in_conf(int line, int column, const std::string& name, const std::string& why) const {
    return conf_.string() + ":" + std::to_string(line) + ":" + std::to_string(column) + ": error: unbound option \"" + name +
           "\" " + why + "; danerelay refuses it (in the file of key \"dns.unbound_config\", " + toml_.string() + ":5:18)";
  }

  fs::path dir_, conf_, toml_;
};

constexpr const char* kAnchor = "adds a DNSSEC trust anchor besides dns.trust_anchor";
constexpr const char* kInsecure = "declares names insecure, so DANE would not apply to them";

// ── [dns.unbound_options] ────────────────────────────────────────────────────────────────────

TEST_F(UnboundRefusal, D01_TrustAnchorOptionsAreRefusedWithLineAndKey) {
  EXPECT_EQ(errors_of("[dns.unbound_options]\n"
                      "\"trust-anchor\" = \". IN DS 20326 8 2 E06D44B80B8F1D39A95C0B0D7C65D08458E880409BBC683457104237C7F8EC8D\"\n"
                      "\"trust-anchor-file:\" = \"/etc/unbound/other.key\"\n"
                      "auto-trust-anchor-file = \"/var/lib/unbound/root.key\"\n"
                      "trusted-keys-file = \"/etc/unbound/keys.conf\"\n"),
            (Lines{"danerelay.toml:2:1: error: unbound option \"trust-anchor\" " + std::string(kAnchor) +
                       "; danerelay refuses it for key \"dns.unbound_options.trust-anchor\"",
                   "danerelay.toml:3:1: error: unbound option \"trust-anchor-file\" " + std::string(kAnchor) +
                       "; danerelay refuses it for key \"dns.unbound_options.\\\"trust-anchor-file:\\\"\"",
                   "danerelay.toml:4:1: error: unbound option \"auto-trust-anchor-file\" " + std::string(kAnchor) +
                       "; danerelay refuses it for key \"dns.unbound_options.auto-trust-anchor-file\"",
                   "danerelay.toml:5:1: error: unbound option \"trusted-keys-file\" " + std::string(kAnchor) +
                       "; danerelay refuses it for key \"dns.unbound_options.trusted-keys-file\""}));
}

TEST_F(UnboundRefusal, D01_OptionsThatWeakenValidationAreRefusedWithLineAndKey) {
  const auto errors = errors_of("[dns.unbound_options]\n"
                                "domain-insecure = [\"bank.example\"]\n"
                                "val-permissive-mode = true\n"
                                "module-config = \"iterator\"\n"
                                "insecure-lan-zones = true\n"
                                "harden-dnssec-stripped = false\n"
                                "val-override-date = \"20200101000000\"\n"
                                "fake-sha1 = true\n"
                                "permit-small-holddown = true\n");
  ASSERT_EQ(errors.size(), 8u) << ::testing::PrintToString(errors);
  EXPECT_EQ(errors[0], "danerelay.toml:2:1: error: unbound option \"domain-insecure\" " + std::string(kInsecure) +
                           "; danerelay refuses it for key \"dns.unbound_options.domain-insecure\"");
  const char* names[] = {"domain-insecure", "val-permissive-mode", "module-config", "insecure-lan-zones",
                         "harden-dnssec-stripped", "val-override-date", "fake-sha1", "permit-small-holddown"};
  for (std::size_t i = 0; i < errors.size(); ++i) {
    EXPECT_EQ(errors[i].rfind("danerelay.toml:" + std::to_string(i + 2) + ":1: error: unbound option \"" + names[i] + "\" ", 0), 0u)
        << errors[i];
    EXPECT_NE(errors[i].find("; danerelay refuses it for key \"dns.unbound_options." + std::string(names[i]) + "\""),
              std::string::npos)
        << errors[i];
  }
}

TEST_F(UnboundRefusal, HarmlessOptionsStillLoad) {
  EXPECT_TRUE(errors_of("[dns.unbound_options]\n"
                        "\"infra-cache-max-rtt\" = \"300\"\n"
                        "do-ip6 = false\n"
                        "\"local-zone\" = [\"test. nodefault\"]\n"
                        "\"val-log-level\" = 2\n")
                  .empty());
}

// ── dns.unbound_config ───────────────────────────────────────────────────────────────────────

TEST_F(UnboundRefusal, D01_UnboundConfigFileNamesTheFileTheLineAndTheOption) {
  const auto errors = check("# local additions\n"
                            "server:\n"
                            "    trust-anchor-file: \"/etc/unbound/other.key\"\n"
                            "    verbosity: 1\n"
                            "  domain-insecure: \"bank.example\"\n"
                            "auth-zone:\n"
                            "    name: \"example\"\n");
  EXPECT_EQ(errors, (Lines{in_conf(3, 5, "trust-anchor-file", kAnchor), in_conf(5, 3, "domain-insecure", kInsecure)}));
}

TEST_F(UnboundRefusal, D01_UnboundConfigFileEveryTrustAnchorOption) {
  const auto errors = check("server:\n"
                            "\ttrust-anchor: \". IN DS 1 8 2 AA\"\n"
                            "\tauto-trust-anchor-file: /var/lib/unbound/root.key\n"
                            "\ttrusted-keys-file: /etc/unbound/keys.conf\n"
                            "\tval-permissive-mode: yes\n"
                            "\tmodule-config: \"iterator\"\n"
                            "\tinsecure-lan-zones: yes\n");
  ASSERT_EQ(errors.size(), 6u) << ::testing::PrintToString(errors);
  EXPECT_EQ(errors[0], in_conf(2, 2, "trust-anchor", kAnchor));
  EXPECT_EQ(errors[1], in_conf(3, 2, "auto-trust-anchor-file", kAnchor));
  EXPECT_EQ(errors[2], in_conf(4, 2, "trusted-keys-file", kAnchor));
  EXPECT_EQ(errors[3].rfind(conf_.string() + ":5:2: error: unbound option \"val-permissive-mode\" ", 0), 0u) << errors[3];
  EXPECT_EQ(errors[4].rfind(conf_.string() + ":6:2: error: unbound option \"module-config\" ", 0), 0u) << errors[4];
  EXPECT_EQ(errors[5], in_conf(7, 2, "insecure-lan-zones", kInsecure));
}

TEST_F(UnboundRefusal, D01_UnboundConfigFileKeywordsAreFoundAsUnboundsLexerFindsThem) {
  // unbound reads "name:" tokens anywhere: several on one line, glued to a clause keyword, or a
  // value glued to the colon. Comments and quoted strings hold no options.
  const auto errors = check("server: verbosity: 1 domain-insecure: \"a.example\"\n"
                            "server:trust-anchor-file: /etc/x.key\n"
                            "server:\n"
                            "    # trust-anchor-file: \"/commented/out\"\n"
                            "    local-data: \"txt.example. TXT 'trust-anchor: not an option'\"\n"
                            "    val-override-date:20200101000000\n");
  ASSERT_EQ(errors.size(), 3u) << ::testing::PrintToString(errors);
  EXPECT_EQ(errors[0], in_conf(1, 22, "domain-insecure", kInsecure));
  EXPECT_EQ(errors[1], in_conf(2, 8, "trust-anchor-file", kAnchor));
  EXPECT_EQ(errors[2].rfind(conf_.string() + ":6:5: error: unbound option \"val-override-date\" ", 0), 0u) << errors[2];
}

TEST_F(UnboundRefusal, D01_UnboundConfigFileIncludesAreRefused) {
  // danerelay checks every option of the file; an include would load options it never saw.
  write("more.conf", "server:\n    trust-anchor-file: /etc/x.key\n");
  const auto errors = check("server:\n    include: \"" + (dir_ / "more.conf").string() + "\"\ninclude-toplevel: more.conf\n");
  ASSERT_EQ(errors.size(), 2u) << ::testing::PrintToString(errors);
  EXPECT_EQ(errors[0], in_conf(2, 5, "include", "loads another file whose options danerelay does not check"));
  EXPECT_EQ(errors[1], in_conf(3, 1, "include-toplevel", "loads another file whose options danerelay does not check"));
}

TEST_F(UnboundRefusal, TheTestWorldsKindOfUnboundConfigLoads) {
  // What tests/support/hierarchy.cpp writes: server options, local-zone nodefault, auth-zones.
  EXPECT_TRUE(check("# generated\nserver:\n    verbosity: 0\n    use-syslog: no\n    chroot: \"\"\n"
                    "    do-not-query-localhost: no\n    do-ip6: no\n    infra-cache-max-rtt: 300\n"
                    "    local-zone: \"test.\" nodefault\n"
                    "auth-zone:\n    name: \".\"\n    zonefile: \"/tmp/root.zone.signed\"\n    for-upstream: yes\n"
                    "    for-downstream: no\n    fallback-enabled: no\n",
                    "trust_anchor = \"/tmp/root.ta\"\ntrust_anchor_auto_update = false\n")
                  .empty());
}

TEST_F(UnboundRefusal, ErrorsInTheTomlFileComeBeforeThoseInTheUnboundConfigFile) {
  const auto errors = check("server:\n    domain-insecure: \"a.example\"\n", "query_timeout = \"soon\"\n");
  ASSERT_EQ(errors.size(), 2u) << ::testing::PrintToString(errors);
  EXPECT_EQ(errors[0].rfind(toml_.string() + ":6:17: error: ", 0), 0u) << errors[0];
  EXPECT_EQ(errors[1], in_conf(2, 5, "domain-insecure", kInsecure));
}

}  // namespace
}  // namespace danerelay::config
