// tests/relay/pkix_e2e_test.cpp — PKIX levels (`verify`, `secure`) end to end: `danerelay run` as
// a child process, mail injected over SMTP, delivery over a signed test hierarchy (libunbound
// validating against its private trust anchor) to in-process sinks on loopback port 25 (root, as
// in CI), with a test CA as `tls.client.ca_file`. Checklist P-01, P-02 and P-03 (issue 10,
// findings 1 and 2): what the certificate must be named, per delivery, as in Postfix.
//
// The world here is its own (the standard one has no partner-style unsigned zones):
//   partner.example.    unsigned. forged → MX mx.elsewhere.example (outside the partner domain),
//                       nh → MX mx.nh (its certificate names the next hop nh.partner.example),
//                       dot → MX mx.dot (its certificate names the MX host: dot-nexthop).
//   elsewhere.example.  unsigned. mx.
//   hn.example.         unsigned. MX 10 mx1 (certificate for the literal name "hostname"), 20 mx2.
//   sec.example.        unsigned. MX mx.
//   ssec.example.       signed (DS in the signed root). MX mx.
// Every certificate the sinks show is issued by the test CA the relay trusts, so each refusal
// below is about the name, never the chain.
//
// Each test starts its own daemon (own state directory and port) with the same policy tables.
// Waits are bounded polls of the daemon's log or the sinks' records.
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <csignal>
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "tests/support/daemon.hpp"
#include "tests/support/hierarchy.hpp"
#include "tests/support/pki.hpp"
#include "tests/support/smtp_injector.hpp"
#include "tests/support/smtp_sink.hpp"
#include "tests/support/temp_dir.hpp"

namespace danerelay::relay::pkix_e2e {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using testsupport::Cert;
using testsupport::Hierarchy;
using testsupport::Pki;
using testsupport::ZoneKind;

std::string quoted(const fs::path& p) {
  std::string out = "\"";
  for (char c : p.string()) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

// The sink addresses (port 25). 127.0.3.0/24: no other test's sinks live there.
constexpr const char* kElsewhere = "127.0.3.11";  // mx.elsewhere.example
constexpr const char* kNh = "127.0.3.12";         // mx.nh.partner.example
constexpr const char* kDot = "127.0.3.13";        // mx.dot.partner.example
constexpr const char* kHn1 = "127.0.3.21";        // mx1.hn.example
constexpr const char* kHn2 = "127.0.3.22";        // mx2.hn.example
constexpr const char* kSec = "127.0.3.31";        // mx.sec.example
constexpr const char* kSsec = "127.0.3.32";       // mx.ssec.example
constexpr const char* kLit = "127.0.3.41";        // [127.0.3.41]:25, match relay.lit.example
constexpr const char* kLit2 = "127.0.3.42";       // [127.0.3.42]:25, match relay.lit2.example

// The policy tables under test (appended to every daemon's configuration).
constexpr const char* kPolicy = R"(
[policy]
default = "dane"

# Finding 1 / P-01: the example.toml partner table.
[policy.destination.".partner.example"]
level = "verify"
match = ["nexthop", "dot-nexthop"]

[policy.destination."hn.example"]
level = "verify"
match = ["hostname"]

[policy.destination."sec.example"]
level = "secure"
match = ["hostname"]

[policy.destination."ssec.example"]
level = "secure"
match = ["hostname"]

# P-02: address-literal next hops with a literal name to check.
[policy.destination."lit.example"]
level = "verify"
nexthop = "[127.0.3.41]:25"
match = ["relay.lit.example"]

[policy.destination."lit2.example"]
level = "verify"
nexthop = "[127.0.3.42]:25"
match = ["relay.lit2.example"]
)";

// The signed hierarchy, the test CA and the certificates, made once per test binary.
struct World {
  testsupport::TempDir dir{"danerelay-pkix"};
  Hierarchy::Built dns;
  Cert ca;
  fs::path ca_file;
  std::map<std::string, std::pair<fs::path, fs::path>> certs;  // label → {chain (leaf + CA), key}

  World() {
    Pki pki(dir.path() / "pki");
    ca = pki.make_ca("danerelay PKIX e2e test CA");
    ca_file = pki.write_chain("ca.pem", {&ca});
    auto leaf = [&](const std::string& label, std::vector<std::string> names) {
      Pki::LeafOptions o;
      o.common_name = names.front();
      o.dns_names = std::move(names);
      o.issuer = &ca;
      const Cert c = pki.make_leaf(o);
      certs[label] = {pki.write_chain(label + ".chain.pem", {&c, &ca}), c.key_file};
    };
    leaf("mx.elsewhere.example", {"mx.elsewhere.example"});
    leaf("nh.partner.example", {"nh.partner.example"});  // the next hop, not the MX host
    leaf("mx.dot.partner.example", {"mx.dot.partner.example"});
    leaf("hostname", {"hostname"});  // what a literal reading of match = ["hostname"] would accept
    leaf("mx2.hn.example", {"mx2.hn.example"});
    leaf("mx.sec.example", {"mx.sec.example"});
    leaf("mx.ssec.example", {"mx.ssec.example"});
    leaf("relay.lit.example", {"relay.lit.example"});
    leaf("other.example", {"other.example"});

    Hierarchy h(dir.path() / "dns");
    h.zone("partner.example.", ZoneKind::insecure)
        .mx("forged", 10, "mx.elsewhere.example.")
        .mx("nh", 10, "mx.nh")
        .a("mx.nh", kNh)
        .mx("dot", 10, "mx.dot")
        .a("mx.dot", kDot);
    h.zone("elsewhere.example.", ZoneKind::insecure).a("mx", kElsewhere);
    h.zone("hn.example.", ZoneKind::insecure).mx("@", 10, "mx1").mx("@", 20, "mx2").a("mx1", kHn1).a("mx2", kHn2);
    h.zone("sec.example.", ZoneKind::insecure).mx("@", 10, "mx").a("mx", kSec);
    h.zone("ssec.example.").mx("@", 10, "mx").a("mx", kSsec);
    dns = h.build();
  }

  // The daemon's configuration, in `where`: the resolver on this world, the test CA as the PKIX
  // trust store, one relay listener on 127.0.0.1:`port`, Postfix's tls= field, long backoff (a
  // deferred message stays deferred), then `policy`.
  fs::path write_config(const fs::path& where, std::uint16_t port, const std::string& policy) const {
    fs::create_directories(where / "state");
    std::ostringstream c;
    c << "[server]\nhostname = \"relay.danerelay.test\"\nstate_dir = " << quoted(where / "state") << "\n\n"
      << "[dns]\ntrust_anchor = " << quoted(dns.trust_anchor) << "\ntrust_anchor_auto_update = false\n"
      << "unbound_config = " << quoted(dns.unbound_conf) << "\nquery_timeout = \"5s\"\n";
    if (!dns.unbound_options.empty()) {
      c << "\n[dns.unbound_options]\n";
      for (const auto& [k, v] : dns.unbound_options) c << '"' << k << "\" = \"" << v << "\"\n";
    }
    c << "\n[tls.client]\nca_file = " << quoted(ca_file) << "\n\n"
      << "[[listener]]\nname = \"relay\"\naddress = \"127.0.0.1:" << port
      << "\"\ntls = \"none\"\nauth = \"none\"\nallow_networks = [\"127.0.0.0/8\"]\n\n"
      << "[delivery]\nconnect_timeout = \"5s\"\ngreeting_timeout = \"10s\"\nconnection_cache_time = \"0s\"\n\n"
      << "[queue]\nmin_backoff = \"1h\"\nmax_backoff = \"1h\"\n\n"
      << "[log]\ntls_feature_status = true\n"
      << policy << "\n";
    const fs::path file = where / "danerelay.toml";
    std::ofstream(file) << c.str();
    return file;
  }
};

World* world = nullptr;

// `danerelay ARGS` → {exit code, stdout and stderr}.
std::pair<int, std::string> run_cli(const std::string& args) {
  const std::string cmd = std::string(DANERELAY_BINARY) + " " + args + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return {-1, "popen failed"};
  std::string out;
  char buf[4096];
  while (std::size_t n = fread(buf, 1, sizeof buf, p)) out.append(buf, n);
  const int st = pclose(p);
  return {WIFEXITED(st) ? WEXITSTATUS(st) : -1, out};
}

bool contains(const std::string& haystack, const std::string& needle) { return haystack.find(needle) != std::string::npos; }

// The lines of `log` that contain `needle`.
std::string lines_with(const std::string& log, const std::string& needle) {
  std::istringstream in(log);
  std::string out;
  for (std::string l; std::getline(in, l);) {
    if (contains(l, needle)) out += l + "\n";
  }
  return out;
}

class PkixEndToEnd : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { world = new World(); }
  static void TearDownTestSuite() {
    delete world;
    world = nullptr;
  }

  void start() {
    // Short directory names: the control socket's path must fit in sun_path (108 bytes).
    static int counter = 0;
    dir_ = world->dir.path() / ("d" + std::to_string(++counter));
    port_ = testsupport::free_port();
    config_ = world->write_config(dir_, port_, kPolicy);
    daemon_ = std::make_unique<testsupport::Daemon>(DANERELAY_BINARY, config_, dir_ / "danerelay.log");
    ASSERT_TRUE(daemon_->wait_listening("127.0.0.1", port_, 20s)) << daemon_->log();
  }

  void TearDown() override {
    if (daemon_) {
      daemon_->signal(SIGTERM);
      EXPECT_EQ(daemon_->wait(20s), 0) << daemon_->log();
      if (HasFailure()) std::cerr << "---- daemon log ----\n" << daemon_->log();
    }
  }

  // A sink at `address`:25 presenting the chain of `cert` (a World::certs label). A sink that
  // cannot be made (port 25 needs root, as in CI) fails the test: nothing here skips.
  static std::unique_ptr<testsupport::SmtpSink> sink(const std::string& address, const std::string& cert) {
    testsupport::SinkOptions o;
    o.address = address;
    o.port = 25;
    o.hostname = "sink-" + address;
    const auto& [chain, key] = world->certs.at(cert);
    o.chain_file = chain;
    o.key_file = key;
    try {
      return std::make_unique<testsupport::SmtpSink>(o);
    } catch (const std::exception& e) {
      ADD_FAILURE() << "sink " << address << ":25: " << e.what() << " (port 25 needs root)";
      return nullptr;
    }
  }

  // Injects one message for `to` through the relay listener; its queue id.
  std::string submit(const std::string& to, const std::string& subject) {
    testsupport::SmtpInjector c("127.0.0.1", port_);
    c.command("EHLO app.org.test");
    const std::string msg = "From: <app@org.test>\r\nTo: <" + to + ">\r\nSubject: " + subject + "\r\nMessage-ID: <" +
                            subject + "@org.test>\r\n\r\nPKIX end to end.\r\n";
    const std::string reply = c.send("app@org.test", {to}, msg);
    c.quit();
    EXPECT_EQ(reply.substr(0, 3), "250") << reply;
    const std::string qid = testsupport::SmtpInjector::queued_as(reply);
    EXPECT_EQ(qid.size(), 12u) << reply;
    return qid;
  }

  // Waits for the delivery line of (qid, rcpt) and returns it ("" after the bounded wait).
  std::string delivery_line(const std::string& qid, const std::string& rcpt) {
    const std::string needle = qid + ": to=<" + rcpt + ">";
    if (!daemon_->wait_log(needle, 30s)) return "";
    return lines_with(daemon_->log(), needle);
  }

  // The message is still in the queue, deferred (the daemon's own view, over the control socket).
  void expect_queued_deferred(const std::string& qid) {
    const auto [rc, out] = run_cli("-c " + config_.string() + " queue list --json");
    EXPECT_EQ(rc, 0) << out;
    EXPECT_TRUE(contains(out, "\"queue_id\": \"" + qid + "\"")) << out;
    EXPECT_TRUE(contains(out, "\"queue_name\": \"deferred\"")) << out;
  }

  static int bodies_with(const testsupport::SmtpSink& s, const std::string& text) {
    int n = 0;
    for (const auto& t : s.stats().transactions) {
      if (t.body && contains(*t.body, text)) ++n;
    }
    return n;
  }

  static int mail_commands(const testsupport::SmtpSink& s) {
    int n = 0;
    for (const auto& c : s.stats().commands) {
      if (c.rfind("MAIL", 0) == 0) ++n;
    }
    return n;
  }

  fs::path dir_;
  fs::path config_;
  std::uint16_t port_ = 0;
  std::unique_ptr<testsupport::Daemon> daemon_;
};

// Finding 1: `.partner.example` at verify with match = ["nexthop", "dot-nexthop"] (our own
// example.toml). The MX answer is unsigned, so an attacker can make it name a host outside the
// partner domain; that host's CA-valid certificate for its own name must not be enough (P-01:
// match replaces verify's default "hostname"; P-03: the MX host name is DNS-learned).
TEST_F(PkixEndToEnd, P01_P03_VerifyMatchNexthopNeverDeliversToAnMxHostOutsideThePartnerDomain) {
  auto forged = sink(kElsewhere, "mx.elsewhere.example");
  ASSERT_TRUE(forged);
  start();
  const std::string qid = submit("user@forged.partner.example", "forged");
  const std::string line = delivery_line(qid, "user@forged.partner.example");
  ASSERT_FALSE(line.empty()) << daemon_->log();
  EXPECT_TRUE(contains(line, "relay=mx.elsewhere.example[127.0.3.11]:25")) << line;
  EXPECT_TRUE(contains(line, "dsn=4.7.5, status=deferred (Server certificate not verified)")) << line;
  // Why: the certificate (CA-valid: the chain verified) names neither forged.partner.example nor
  // a subdomain of it.
  const std::string log = daemon_->log();
  EXPECT_TRUE(contains(log, "server certificate verification failed for mx.elsewhere.example[127.0.3.11]:25: "
                            "num=62:hostname mismatch"))
      << log;
  EXPECT_FALSE(contains(log, "Verified TLS connection established to mx.elsewhere.example")) << log;
  // match has no "hostname": the MX host name was not used, so there is no P-03 note about it.
  EXPECT_FALSE(contains(log, "verify: matching MX host name")) << log;
  EXPECT_EQ(forged->stats().tls_handshakes + forged->stats().tls_failures, 1) << "one TLS attempt";
  EXPECT_EQ(mail_commands(*forged), 0) << "no MAIL to a host that failed authentication";
  EXPECT_EQ(forged->stats().bodies(), 0);
  expect_queued_deferred(qid);
}

// The same table delivers to the partner's own MX hosts: nh's certificate names the next hop
// (nh.partner.example, not the MX host name: "nexthop" is expanded, not a literal word), dot's
// names the MX host mx.dot.partner.example, a subdomain of the next hop ("dot-nexthop").
TEST_F(PkixEndToEnd, P01_VerifyMatchNexthopAndDotNexthopDeliverToThePartnersMxHosts) {
  auto nh = sink(kNh, "nh.partner.example");
  auto dot = sink(kDot, "mx.dot.partner.example");
  ASSERT_TRUE(nh && dot);
  start();
  const std::string qid_nh = submit("user@nh.partner.example", "nexthop");
  const std::string qid_dot = submit("user@dot.partner.example", "dotnexthop");
  ASSERT_TRUE(daemon_->wait_log(qid_nh + ": removed", 30s)) << daemon_->log();
  ASSERT_TRUE(daemon_->wait_log(qid_dot + ": removed", 30s)) << daemon_->log();
  const std::string log = daemon_->log();
  EXPECT_TRUE(std::regex_search(
      log, std::regex(qid_nh + ": to=<user@nh\\.partner\\.example>, relay=mx\\.nh\\.partner\\.example\\[127\\.0\\.3\\.12\\]:25, "
                               "[^\n]*, tls=verify, dsn=2\\.0\\.0, status=sent")))
      << log;
  EXPECT_TRUE(std::regex_search(
      log, std::regex(qid_dot + ": to=<user@dot\\.partner\\.example>, relay=mx\\.dot\\.partner\\.example\\[127\\.0\\.3\\.13\\]:25, "
                                "[^\n]*, tls=verify, dsn=2\\.0\\.0, status=sent")))
      << log;
  EXPECT_TRUE(contains(log, "Verified TLS connection established to mx.nh.partner.example[127.0.3.12]:25")) << log;
  EXPECT_TRUE(contains(log, "Verified TLS connection established to mx.dot.partner.example[127.0.3.13]:25")) << log;
  EXPECT_EQ(bodies_with(*nh, "Subject: nexthop"), 1);
  EXPECT_EQ(bodies_with(*dot, "Subject: dotnexthop"), 1);
}

// match = ["hostname"] is the MX host name of each delivery attempt, not the word: mx1 shows a
// CA-valid certificate for the literal name "hostname" and is refused; mx2 shows one for
// mx2.hn.example and gets the message. The MX lookup was insecure, which verify accepts (as
// Postfix does) and logs at info (P-03).
TEST_F(PkixEndToEnd, P01_P03_VerifyMatchHostnameIsTheMxHostOfEachAttemptNotTheWord) {
  auto mx1 = sink(kHn1, "hostname");
  auto mx2 = sink(kHn2, "mx2.hn.example");
  ASSERT_TRUE(mx1 && mx2);
  start();
  const std::string qid = submit("user@hn.example", "hostname");
  ASSERT_TRUE(daemon_->wait_log(qid + ": removed", 30s)) << daemon_->log();
  const std::string log = daemon_->log();
  EXPECT_TRUE(contains(log, "server certificate verification failed for mx1.hn.example[127.0.3.21]:25: "
                            "num=62:hostname mismatch"))
      << log;
  EXPECT_EQ(mail_commands(*mx1), 0) << "no MAIL to mx1";
  EXPECT_EQ(mx1->stats().bodies(), 0);
  EXPECT_TRUE(contains(log, "Verified TLS connection established to mx2.hn.example[127.0.3.22]:25")) << log;
  EXPECT_TRUE(std::regex_search(
      log, std::regex(qid + ": to=<user@hn\\.example>, relay=mx2\\.hn\\.example\\[127\\.0\\.3\\.22\\]:25, "
                            "[^\n]*, tls=verify, dsn=2\\.0\\.0, status=sent")))
      << log;
  EXPECT_EQ(bodies_with(*mx2, "Subject: hostname"), 1);
  // P-03, per host: the name matched came from an unsigned MX answer.
  for (const std::string host : {"mx1.hn.example", "mx2.hn.example"}) {
    EXPECT_TRUE(contains(log, qid + ": verify: matching MX host name " + host +
                                  " learned from an insecure MX lookup for hn.example (subject to DNS forgery, P-03)"))
        << host << "\n"
        << log;
  }
}

// P-03 + P-02: at secure, a host name learned from an unsigned MX lookup is never a reference
// name, so match = ["hostname"] leaves no names at all; that defers with 4.7.5 without even
// connecting. It never means "any certificate the CA signed" (mx.sec.example's certificate would
// have matched a literal or default reading of the names).
TEST_F(PkixEndToEnd, P02_P03_SecureWithOnlyAnInsecureMxHostNameHasNoNamesAndDefers475) {
  auto mx = sink(kSec, "mx.sec.example");
  ASSERT_TRUE(mx);
  start();
  const std::string qid = submit("user@sec.example", "secure-insecure");
  const std::string line = delivery_line(qid, "user@sec.example");
  ASSERT_FALSE(line.empty()) << daemon_->log();
  EXPECT_TRUE(contains(line, "dsn=4.7.5, status=deferred (no certificate names to match for ")) << line;
  EXPECT_TRUE(contains(line, "configure match names")) << line;
  const std::string log = daemon_->log();
  EXPECT_TRUE(contains(log, qid + ": secure: MX host name mx.sec.example not matched: the MX lookup for sec.example "
                                  "was not DNSSEC-validated (P-03)"))
      << log;
  EXPECT_EQ(mx->stats().connections, 0) << "no connection without names to check";
  EXPECT_EQ(mx->stats().bodies(), 0);
  expect_queued_deferred(qid);
}

// The contrast: the same table for a DNSSEC-signed MX RRset does use the MX host name.
TEST_F(PkixEndToEnd, P03_SecureMatchHostnameFromASignedMxIsDeliveredVerified) {
  auto mx = sink(kSsec, "mx.ssec.example");
  ASSERT_TRUE(mx);
  start();
  const std::string qid = submit("user@ssec.example", "secure-signed");
  ASSERT_TRUE(daemon_->wait_log(qid + ": removed", 30s)) << daemon_->log();
  const std::string log = daemon_->log();
  EXPECT_TRUE(contains(log, "Verified TLS connection established to mx.ssec.example[127.0.3.32]:25")) << log;
  EXPECT_TRUE(std::regex_search(
      log, std::regex(qid + ": to=<user@ssec\\.example>, relay=mx\\.ssec\\.example\\[127\\.0\\.3\\.32\\]:25, "
                            "[^\n]*, tls=secure, dsn=2\\.0\\.0, status=sent")))
      << log;
  EXPECT_FALSE(contains(log, "not DNSSEC-validated")) << log;
  EXPECT_EQ(bodies_with(*mx, "Subject: secure-signed"), 1);
}

// P-02: an address-literal route at verify checks the literal match name, and only that: the
// server at [127.0.3.41] names relay.lit.example and gets the mail; the one at [127.0.3.42] shows
// a CA-valid certificate for another name and does not.
TEST_F(PkixEndToEnd, P02_AddressLiteralNexthopAtVerifyChecksTheLiteralMatchName) {
  auto lit = sink(kLit, "relay.lit.example");
  auto lit2 = sink(kLit2, "other.example");
  ASSERT_TRUE(lit && lit2);
  start();
  const std::string qid = submit("user@lit.example", "literal");
  const std::string qid2 = submit("user@lit2.example", "literal2");
  ASSERT_TRUE(daemon_->wait_log(qid + ": removed", 30s)) << daemon_->log();
  const std::string line2 = delivery_line(qid2, "user@lit2.example");
  ASSERT_FALSE(line2.empty()) << daemon_->log();
  const std::string log = daemon_->log();
  EXPECT_TRUE(std::regex_search(log, std::regex(qid + ": to=<user@lit\\.example>, relay=[^,]*127\\.0\\.3\\.41\\]:25, "
                                                      "[^\n]*, tls=verify, dsn=2\\.0\\.0, status=sent")))
      << log;
  EXPECT_TRUE(std::regex_search(log, std::regex("Verified TLS connection established to [^ ]*127\\.0\\.3\\.41\\]:25")))
      << log;
  EXPECT_EQ(bodies_with(*lit, "Subject: literal"), 1);

  EXPECT_TRUE(contains(line2, "dsn=4.7.5, status=deferred (Server certificate not verified)")) << line2;
  EXPECT_TRUE(std::regex_search(log, std::regex("server certificate verification failed for [^ ]*127\\.0\\.3\\.42\\]:25: "
                                                "num=62:hostname mismatch")))
      << log;
  EXPECT_EQ(mail_commands(*lit2), 0);
  EXPECT_EQ(lit2->stats().bodies(), 0);
  expect_queued_deferred(qid2);
}

// P-02 at start-up: verify/secure with an address-literal next hop and no literal match name
// would leave nothing to check; check-config and `danerelay run` refuse it (exit 2), naming the
// key, and the daemon never listens.
TEST_F(PkixEndToEnd, P02_CheckConfigAndRunRefuseAnAddressLiteralNexthopWithoutALiteralMatchName) {
  static int counter = 0;
  for (const std::string level : {"verify", "secure"}) {
    for (const std::string match : {"", "match = [\"hostname\", \"nexthop\", \"dot-nexthop\"]\n"}) {
      SCOPED_TRACE(level + " / " + (match.empty() ? "default match" : match));
      const fs::path where = world->dir.path() / ("c" + std::to_string(++counter));
      const std::uint16_t port = testsupport::free_port();
      const fs::path config = world->write_config(
          where, port,
          std::string(kPolicy) + "\n[policy.destination.\"bad.example\"]\nlevel = \"" + level +
              "\"\nnexthop = \"[127.0.3.43]:25\"\n" + match);
      const std::string key = "for key \"policy.destination.\\\"bad.example\\\".nexthop\"";
      const std::string why = "address-literal nexthop \"[127.0.3.43]:25\" at level \"" + level +
                              "\" leaves no certificate name to check";

      const auto [rc, out] = run_cli("check-config -c " + config.string());
      EXPECT_EQ(rc, 2) << out;
      EXPECT_TRUE(contains(out, why)) << out;
      EXPECT_TRUE(contains(out, key)) << out;

      testsupport::Daemon d(DANERELAY_BINARY, config, where / "danerelay.log");
      EXPECT_EQ(d.wait(10s), 2) << d.log();  // a daemon that started instead is killed after 10 s
      EXPECT_TRUE(contains(d.log(), why)) << d.log();
      EXPECT_TRUE(contains(d.log(), key)) << d.log();
    }
  }
  // With a literal name the same route is accepted.
  const fs::path where = world->dir.path() / ("c" + std::to_string(++counter));
  const fs::path config = world->write_config(
      where, testsupport::free_port(),
      std::string(kPolicy) + "\n[policy.destination.\"bad.example\"]\nlevel = \"verify\"\nnexthop = \"[127.0.3.43]:25\"\n"
                             "match = [\"nexthop\", \"relay.bad.example\"]\n");
  const auto [rc, out] = run_cli("check-config -c " + config.string());
  EXPECT_EQ(rc, 0) << out;
}

}  // namespace
}  // namespace danerelay::relay::pkix_e2e
