// tests/relay/loop_detection_test.cpp — checklist L-01 part 2, "loops back to myself":
//   - own_endpoints() (relay/daemon): listeners → (address, port) pairs, the wildcard listeners
//     expanded to a given list of interface addresses, as a table;
//   - is_own_endpoint(): the match is on (address, port), never the address alone;
//   - the delivery loop through the scripted connector, wrapped by refuse_own_endpoints(): no
//     connection to ourselves, Postfix's truncation of MX hosts no better than ourselves, and the
//     outcome (bounce 5.4.6 for the best MX, defer 4.3.5 for a configured route).
#include "relay/daemon/own_endpoints.hpp"
#include "relay/delivery/delivery.hpp"
#include "relay/delivery/loop_detection.hpp"
#include "relay/delivery/outcome.hpp"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include <map>
#include <regex>

#include "tests/dns/fake_answers.hpp"

namespace danerelay::relay {
namespace {

namespace asio = boost::asio;
using dns::RRType;
using dns::testing::FakeAnswers;
constexpr auto S = dns::Verdict::secure;

config::Listener listener(const std::string& host, std::uint16_t port) {
  config::Listener l;
  l.address = config::Endpoint{host, port};
  return l;
}

// A machine with a loopback interface (127.0.0.1/8, ::1/128), one Ethernet interface with an
// IPv4 and two IPv6 addresses (a global and a link-local one).
const std::vector<InterfaceAddress> kMachine{
    {"127.0.0.1", 8, true}, {"192.0.2.5", 24, false}, {"::1", 128, true}, {"2001:db8::5", 64, false}, {"fe80::5", 64, false}};

TEST(OwnEndpoints, L01_ListenersExpandToTheirAddressAndPortWildcardsToEveryInterface) {
  struct Row {
    const char* what;
    std::vector<config::Listener> listeners;
    std::vector<InterfaceAddress> interfaces;
    const char* want;
  };
  for (const Row& row : std::vector<Row>{
           {"a specific address is itself, nothing more", {listener("127.0.0.1", 2525)}, kMachine, "127.0.0.1:2525"},
           {"a specific IPv6 address", {listener("2001:db8::5", 25)}, kMachine, "[2001:db8::5]:25"},
           {"0.0.0.0: every IPv4 interface address; loopback's whole network",
            {listener("0.0.0.0", 25)}, kMachine, "127.0.0.0/8:25, 192.0.2.5:25"},
           {":: is dual-stack: IPv4 and IPv6 addresses, link-local too",
            {listener("::", 25)}, kMachine, "127.0.0.0/8:25, 192.0.2.5:25, [::1]:25, [2001:db8::5]:25, [fe80::5]:25"},
           {"a wildcard without interfaces (getifaddrs failed) is still loopback",
            {listener("::", 587)}, {}, "127.0.0.0/8:587, [::1]:587"},
           {"0.0.0.0 without interfaces", {listener("0.0.0.0", 25)}, {}, "127.0.0.0/8:25"},
           {"an address on loopback counts with its network; elsewhere alone",
            {listener("0.0.0.0", 25)}, {{"127.0.0.1", 8, true}, {"10.9.0.1", 16, true}, {"198.51.100.7", 24, false}},
            "127.0.0.0/8:25, 10.9.0.0/16:25, 198.51.100.7:25"},
           {"two listeners, each on its port; duplicates once",
            {listener("127.0.0.1", 2525), listener("0.0.0.0", 25), listener("127.0.0.1", 2525)}, kMachine,
            "127.0.0.1:2525, 127.0.0.0/8:25, 192.0.2.5:25"},
           {"the default listener ([::]:25)", {config::Listener{}}, {{"127.0.0.1", 8, true}},
            "127.0.0.0/8:25, [::1]:25"},
           {"port 0 is not known before binding: skipped", {listener("127.0.0.1", 0)}, kMachine, ""},
       }) {
    SCOPED_TRACE(row.what);
    EXPECT_EQ(to_string(own_endpoints(row.listeners, row.interfaces)), row.want);
  }
}

TEST(OwnEndpoints, L01_TheMachineHasInterfaceAddressesIncludingLoopback) {
  std::string error;
  const auto interfaces = interface_addresses(&error);
  EXPECT_TRUE(error.empty()) << error;
  bool loopback = false;
  for (const auto& i : interfaces) {
    EXPECT_TRUE(dns::IpAddress::parse(i.address).has_value()) << i.address;
    loopback = loopback || (i.loopback && i.address == "127.0.0.1" && i.prefix == 8);
  }
  EXPECT_TRUE(loopback) << "lo with 127.0.0.1/8 (the tests run with lo up)";
}

TEST(OwnEndpoints, L01_MatchIsOnAddressAndPort) {
  const OwnEndpoints own = own_endpoints({listener("127.0.0.1", 2525), listener("0.0.0.0", 25), listener("::", 587)}, kMachine);
  struct Row {
    const char* address;
    std::uint16_t port;
    bool want;
  };
  for (const Row& row : {
           Row{"127.0.0.1", 2525, true},
           Row{"127.0.0.2", 2525, false},      // the specific listener is one address
           Row{"127.0.0.1", 2526, false},      // another port is another server
           Row{"127.0.0.11", 25, true},        // 0.0.0.0:25 takes all of 127.0.0.0/8
           Row{"192.0.2.5", 25, true},
           Row{"192.0.2.6", 25, false},        // a neighbour on the LAN is not us
           Row{"192.0.2.5", 2525, false},
           Row{"2001:db8::5", 25, false},      // 0.0.0.0 does not take IPv6
           Row{"2001:db8::5", 587, true},      // :: does
           Row{"::1", 587, true},
           Row{"::ffff:127.0.0.1", 2525, true},  // IPv4-mapped: the IPv4 address
           Row{"::ffff:192.0.2.5", 25, true},
           Row{"198.51.100.1", 25, false},
       }) {
    SCOPED_TRACE(std::string(row.address) + ":" + std::to_string(row.port));
    const auto ip = dns::IpAddress::parse(row.address);
    ASSERT_TRUE(ip);
    EXPECT_EQ(is_own_endpoint(own, *ip, row.port), row.want);
  }
}

// ── The delivery loop, through the scripted connector ───────────────────────────────────────

SessionResult delivered() {
  SessionResult r;
  r.transaction = true;
  smtp::RecipientOutcome o;
  o.disposition = smtp::Disposition::sent;
  smtp::ReplyParser p;
  (void)p.feed("250 2.0.0 Ok: queued as ABC");
  o.reply = p.take();
  o.command = "end of DATA";
  o.text = o.reply->one_line();
  r.recipients.push_back(o);
  return r;
}

// Results by host name, every attempt recorded; a host without a script refuses the connection.
struct Script {
  std::map<std::string, SessionResult> by_host;
  std::vector<std::string> attempts;  // "host[address]:port"

  Connector connector() {
    return [this](HostAttempt a) -> asio::awaitable<SessionResult> {
      attempts.push_back(a.host->name + "[" + a.address.to_string() + "]:" + std::to_string(a.port));
      auto it = by_host.find(a.host->name);
      if (it != by_host.end()) co_return it->second;
      SessionResult refused;
      smtp::HostFailure f;
      f.kind = smtp::HostFailure::Kind::connect;
      f.text = "connect to " + a.host->name + "[" + a.address.to_string() + "]:" + std::to_string(a.port) + ": Connection refused";
      refused.failure = std::move(f);
      co_return refused;
    };
  }
};

struct Attempted {
  std::vector<RecipientResult> results;
  std::vector<std::string> log;
};

Attempted run(const dns::DeliveryPlan& plan, Script& script, const OwnEndpoints& own) {
  asio::io_context io;
  Attempted out;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        Envelope e;
        e.id = *QueueId::parse("0123456789AB");
        e.sender = "s@org.test";
        e.recipients.push_back(Recipient{"a@" + plan.domain, {}, notify_unset});
        dns::DeliveryPlan p = plan;
        DeliverySettings settings;
        Connector guarded = refuse_own_endpoints(script.connector(), std::make_shared<const OwnEndpoints>(own));
        out.results = co_await deliver(std::move(e), std::move(p), settings, std::move(guarded),
                                       [&](const std::string& line) { out.log.push_back(line); });
      },
      [](std::exception_ptr e) {
        if (e) std::rethrow_exception(e);
      });
  io.run();
  return out;
}

dns::DeliveryPlan mx_plan(std::initializer_list<std::pair<int, std::string>> mx, std::initializer_list<std::pair<std::string, std::string>> hosts) {
  FakeAnswers f;
  f.mx("d.test", S, mx);
  for (const auto& [name, address] : hosts) f.host(name, S, {address}).nodata("_25._tcp." + name, RRType::TLSA, S);
  dns::PlanRequest req;
  req.domain = "d.test";
  return f.plan(req);
}

const OwnEndpoints& own_25() {  // this relay listens on 192.0.2.9:25 and 127.0.0.1:2525
  static const OwnEndpoints own = own_endpoints({listener("192.0.2.9", 25), listener("127.0.0.1", 2525)}, {});
  return own;
}

TEST(LoopDetection, L01_BestMxIsOurselvesBouncesWithoutAnyConnection) {
  Script s;
  const auto plan = mx_plan({{10, "mx1.d.test"}, {20, "mx2.d.test"}}, {{"mx1.d.test", "192.0.2.9"}, {"mx2.d.test", "192.0.2.2"}});
  const Attempted o = run(plan, s, own_25());
  EXPECT_TRUE(s.attempts.empty()) << "the backup MX behind us is not tried either (smtp_truncate_self)";
  ASSERT_EQ(o.results.size(), 1u);
  EXPECT_EQ(o.results[0].status, DeliveryStatus::bounced);
  EXPECT_EQ(o.results[0].dsn, "5.4.6");
  EXPECT_EQ(o.results[0].reason, "mail for d.test loops back to myself");
  ASSERT_TRUE(o.results[0].failure);
  EXPECT_EQ(*o.results[0].failure, Failure::loops_back);
  ASSERT_EQ(o.log.size(), 2u);
  EXPECT_EQ(o.log[0], "0123456789AB: mx1.d.test[192.0.2.9]:25 (MX preference 10) is a listener of this relay: "
                      "MX hosts of preference 10 and above are not tried");
  EXPECT_TRUE(std::regex_search(o.log[1], std::regex(R"(0123456789AB: to=<a@d\.test>, relay=none, .*, dsn=5\.4\.6, )"
                                                     R"(status=bounced \(mail for d\.test loops back to myself\)$)")))
      << o.log[1];
}

TEST(LoopDetection, L01_AnEqualPreferencePeerOfOurselvesIsNotTriedEither) {
  // Postfix drops every host of our preference: we are an MX of that rank, the mail is ours.
  Script s;
  s.by_host["mx1.d.test"] = delivered();
  const auto plan = mx_plan({{10, "mx1.d.test"}, {10, "mx2.d.test"}}, {{"mx1.d.test", "192.0.2.1"}, {"mx2.d.test", "192.0.2.9"}});
  const Attempted o = run(plan, s, own_25());
  EXPECT_TRUE(s.attempts.empty());
  EXPECT_EQ(o.results[0].status, DeliveryStatus::bounced);
  EXPECT_EQ(o.results[0].dsn, "5.4.6");
}

TEST(LoopDetection, L01_AsBackupMxOnlyBetterHostsAreTriedAndTheirReasonIsKept) {
  const auto plan = mx_plan({{10, "mx1.d.test"}, {20, "mx2.d.test"}, {30, "mx3.d.test"}},
                            {{"mx1.d.test", "192.0.2.1"}, {"mx2.d.test", "192.0.2.9"}, {"mx3.d.test", "192.0.2.3"}});
  {
    SCOPED_TRACE("the primary is down: the mail waits for it");
    Script s;
    const Attempted o = run(plan, s, own_25());
    EXPECT_EQ(s.attempts, std::vector<std::string>{"mx1.d.test[192.0.2.1]:25"}) << "neither ourselves nor the host behind us";
    EXPECT_EQ(o.results[0].status, DeliveryStatus::deferred);
    EXPECT_EQ(o.results[0].dsn, "4.4.1");
    EXPECT_EQ(o.results[0].reason, "connect to mx1.d.test[192.0.2.1]:25: Connection refused");
    EXPECT_EQ(o.results[0].relay_host, "mx1.d.test");
  }
  {
    SCOPED_TRACE("the primary takes it");
    Script s;
    s.by_host["mx1.d.test"] = delivered();
    const Attempted o = run(plan, s, own_25());
    EXPECT_EQ(s.attempts.size(), 1u);
    EXPECT_EQ(o.results[0].status, DeliveryStatus::sent);
  }
}

TEST(LoopDetection, L01_AnUnusableBetterHostLeavesTheMailWaitingNotBounced) {
  // Postfix: best_pref != best_found → 4.4.4 "unable to find primary relay", never 5.4.6.
  FakeAnswers f;
  f.mx("d.test", S, {{10, "mx1.d.test"}, {20, "mx2.d.test"}})
      .host("mx1.d.test", S, {"192.0.2.1"})
      .fail("_25._tcp.mx1.d.test", RRType::TLSA)
      .host("mx2.d.test", S, {"192.0.2.9"})
      .nodata("_25._tcp.mx2.d.test", RRType::TLSA, S);
  dns::PlanRequest req;
  req.domain = "d.test";
  Script s;
  const Attempted o = run(f.plan(req), s, own_25());
  EXPECT_TRUE(s.attempts.empty());
  EXPECT_EQ(o.results[0].status, DeliveryStatus::deferred);
  EXPECT_EQ(o.results[0].dsn, "4.7.5");
  EXPECT_EQ(o.results[0].reason, "TLSA lookup error for mx1.d.test:25");
}

TEST(LoopDetection, L01_SameAddressOnAnotherPortIsNotALoop) {
  // The relay listens on 127.0.0.1:2525; a server on 127.0.0.1:25 is somebody else.
  Script s;
  s.by_host["mx1.d.test"] = delivered();
  const auto plan = mx_plan({{10, "mx1.d.test"}}, {{"mx1.d.test", "127.0.0.1"}});
  const Attempted o = run(plan, s, own_25());
  EXPECT_EQ(s.attempts, std::vector<std::string>{"mx1.d.test[127.0.0.1]:25"});
  EXPECT_EQ(o.results[0].status, DeliveryStatus::sent);
}

TEST(LoopDetection, L01_ConfiguredRouteToOurselvesDefersAsAConfigurationProblem) {
  struct Row {
    const char* what;
    dns::Route route;
  };
  for (const Row& row : {Row{"address literal [127.0.0.1]:2525", dns::Route{"127.0.0.1", 2525, true}},
                         Row{"host name resolving to us", dns::Route{"relay.d.test", 2525, false}}}) {
    SCOPED_TRACE(row.what);
    FakeAnswers f;
    f.host("relay.d.test", S, {"127.0.0.1"}).nodata("_2525._tcp.relay.d.test", RRType::TLSA, S);
    dns::PlanRequest req;
    req.domain = "d.test";
    req.route = row.route;
    Script s;
    const Attempted o = run(f.plan(req), s, own_25());
    EXPECT_TRUE(s.attempts.empty());
    EXPECT_EQ(o.results[0].status, DeliveryStatus::deferred);
    EXPECT_EQ(o.results[0].dsn, "4.3.5");
    EXPECT_EQ(o.results[0].reason, "mail for d.test loops back to myself");
    ASSERT_TRUE(o.results[0].failure);
    EXPECT_EQ(*o.results[0].failure, Failure::route_loops_back);
    ASSERT_EQ(o.log.size(), 2u);
    EXPECT_NE(o.log[0].find("warning: next hop "), std::string::npos) << o.log[0];
    EXPECT_NE(o.log[0].find("[127.0.0.1]:2525 for d.test is a listener of this relay: configuration problem"), std::string::npos)
        << o.log[0];
    EXPECT_NE(o.log[1].find("relay=none"), std::string::npos) << o.log[1];
  }
}

TEST(LoopDetection, L01_RecipientAddressLiteralOfOurselvesBounces) {
  dns::PlanRequest req;
  req.domain = "[192.0.2.9]";
  const dns::DeliveryPlan plan = FakeAnswers{}.plan(req);
  Script s;
  const Attempted o = run(plan, s, own_25());
  EXPECT_TRUE(s.attempts.empty());
  EXPECT_EQ(o.results[0].status, DeliveryStatus::bounced);
  EXPECT_EQ(o.results[0].dsn, "5.4.6");
  EXPECT_EQ(o.results[0].reason, "mail for [192.0.2.9] loops back to myself");
}

TEST(LoopDetection, L01_WithoutOwnEndpointsTheConnectorIsUnchanged) {
  Script s;
  s.by_host["mx1.d.test"] = delivered();
  const auto plan = mx_plan({{10, "mx1.d.test"}}, {{"mx1.d.test", "192.0.2.9"}});
  const Attempted o = run(plan, s, {});
  EXPECT_EQ(s.attempts.size(), 1u);
  EXPECT_EQ(o.results[0].status, DeliveryStatus::sent);
}

}  // namespace
}  // namespace danerelay::relay
