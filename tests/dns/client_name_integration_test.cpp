// tests/dns/client_name_integration_test.cpp — inbound client names (dns/client_name_lookup.hpp)
// through UnboundResolver against the real signed test world: its reverse zones
// (127.in-addr.arpa. signed and delegated from the root, a bogus-DS and an unsigned child, a dead
// delegation; the ::1 reverse zone) and clients.test (tests/support/world.cpp, add_client_names).
// Nothing stands in for the validator.
#include "dns/client_name_lookup.hpp"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <chrono>
#include <functional>
#include <optional>
#include <string>

#include "tests/support/temp_dir.hpp"
#include "tests/support/world.hpp"

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

namespace danerelay::dns {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// Forwards to the real resolver and records what was asked.
struct CountingResolver final : Resolver {
  explicit CountingResolver(Resolver& r) : real(r) {}
  void async_lookup(Query query, Handler handler) override {
    asked.push_back(query);
    real.async_lookup(std::move(query), std::move(handler));
  }
  Resolver& real;
  std::vector<Query> asked;
};

class ClientNameWorld : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new testsupport::TempDir("danerelay-rdns-it");
    world_ = new testsupport::World(testsupport::build_world(dir_->path()));
  }
  static void TearDownTestSuite() {
    delete world_;
    delete dir_;
  }

  // Runs `body` with a fresh resolver (per-query timeout `timeout`) on a fresh io_context.
  template <typename T>
  static T run(std::function<asio::awaitable<T>(Resolver&)> body, std::chrono::milliseconds timeout = 5s) {
    asio::io_context io;
    const auto s = testsupport::dns_settings(*world_, timeout);
    auto anchor = prepare_trust_anchor(s, world_->state_dir);
    UnboundResolver resolver(io.get_executor(), s, anchor);
    std::optional<T> out;
    asio::co_spawn(io, [&]() -> asio::awaitable<void> { out = co_await body(resolver); },
                   [](std::exception_ptr e) {
                     if (e) std::rethrow_exception(e);
                   });
    io.run();
    return std::move(*out);
  }

  static ClientName name_of(const std::string& address, std::vector<Query>* asked = nullptr) {
    return run<ClientName>([address, asked](Resolver& r) -> asio::awaitable<ClientName> {
      CountingResolver counting(r);
      IpAddress ip = *IpAddress::parse(address);
      ClientName c = co_await lookup_client_name(counting, ip);
      if (asked != nullptr) *asked = counting.asked;
      co_return c;
    });
  }

  static inline testsupport::TempDir* dir_ = nullptr;
  static inline testsupport::World* world_ = nullptr;
};

TEST_F(ClientNameWorld, ForwardConfirmedSecurePtrNamesTheClient) {
  std::vector<Query> asked;
  const ClientName c = name_of("127.0.0.161", &asked);
  EXPECT_EQ(c.name, "exchange.clients.test");
  EXPECT_EQ(c.status, ClientNameStatus::confirmed) << c.detail;
  EXPECT_EQ(asked, (std::vector<Query>{{"161.0.0.127.in-addr.arpa", RRType::PTR}, {"exchange.clients.test", RRType::A}}));
}

TEST_F(ClientNameWorld, TheReverseZoneIsServedSignedNotByUnboundsLocalZone) {
  // Without `local-zone: "127.in-addr.arpa." nodefault` libunbound would answer from its built-in
  // zone (NXDOMAIN here, "localhost" for .1), insecure.
  const Answer a = run<Answer>([](Resolver& r) { return lookup(r, Query{"161.0.0.127.in-addr.arpa", RRType::PTR}); });
  EXPECT_EQ(a.verdict, Verdict::secure) << a.describe();
  ASSERT_EQ(a.rdata.size(), 1u);
  EXPECT_EQ(decode_ptr(a.rdata[0]), "exchange.clients.test");
  const Answer one = run<Answer>([](Resolver& r) { return lookup(r, Query{"1.0.0.127.in-addr.arpa", RRType::PTR}); });
  EXPECT_TRUE(one.secure() && one.nxdomain) << one.describe();
}

TEST_F(ClientNameWorld, NoPtrIsUnknownWithoutAForwardQuery) {
  std::vector<Query> asked;
  const ClientName c = name_of("127.0.0.160", &asked);
  EXPECT_EQ(c.name, "unknown");
  EXPECT_EQ(c.status, ClientNameStatus::no_ptr) << c.detail;
  EXPECT_EQ(asked.size(), 1u);
}

TEST_F(ClientNameWorld, ForgedPtrWhoseNameHasAnotherAddressIsUnknown) {
  const ClientName c = name_of("127.0.0.162");
  EXPECT_EQ(c.name, "unknown");
  EXPECT_EQ(c.status, ClientNameStatus::not_confirmed);
  EXPECT_EQ(c.ptr_name, "forged.clients.test");
}

TEST_F(ClientNameWorld, D03_BogusPtrIsUnknownAndItsNameIsNeverLookedUp) {
  // bogus.clients.test does have A 127.0.0.163: a relay that used the bogus PTR would confirm it.
  std::vector<Query> asked;
  const ClientName c = name_of("127.0.0.163", &asked);
  EXPECT_EQ(c.name, "unknown");
  EXPECT_EQ(c.status, ClientNameStatus::ptr_bogus) << c.detail;
  EXPECT_EQ(asked.size(), 1u);
}

TEST_F(ClientNameWorld, InvalidHostNameInPtrIsUnknown) {
  std::vector<Query> asked;
  const ClientName c = name_of("127.0.0.164", &asked);  // under_score.clients.test, A 127.0.0.164
  EXPECT_EQ(c.name, "unknown");
  EXPECT_EQ(c.status, ClientNameStatus::invalid_name);
  EXPECT_EQ(c.ptr_name, "under_score.clients.test");
  EXPECT_EQ(asked.size(), 1u);
}

TEST_F(ClientNameWorld, PtrZoneOnADeadServerIsUnknown) {
  const ClientName c = name_of("127.0.0.165");
  EXPECT_EQ(c.name, "unknown");
  EXPECT_EQ(c.status, ClientNameStatus::ptr_failed) << c.detail;
}

TEST_F(ClientNameWorld, D03_BogusForwardAnswerConfirmsNothing) {
  const ClientName c = name_of("127.0.0.166");  // host.expired-clients.test: A 127.0.0.166, expired RRSIGs
  EXPECT_EQ(c.name, "unknown");
  EXPECT_EQ(c.status, ClientNameStatus::forward_failed);
  EXPECT_NE(c.detail.find("bogus"), std::string::npos) << c.detail;
}

TEST_F(ClientNameWorld, InsecurePtrStillNamesAForwardConfirmedClient) {
  const ClientName c = name_of("127.0.0.167");  // unsigned 167.0.0.127.in-addr.arpa.
  EXPECT_EQ(c.name, "insecure.clients.test");
  EXPECT_EQ(c.status, ClientNameStatus::confirmed);
}

TEST_F(ClientNameWorld, OfTwoPtrNamesTheConfirmedOneIsUsed) {
  std::vector<Query> asked;
  const ClientName c = name_of("127.0.0.168", &asked);  // a.clients.test (.99) and b.clients.test (.168)
  EXPECT_EQ(c.name, "b.clients.test");
  EXPECT_EQ(asked.size(), 3u);
}

TEST_F(ClientNameWorld, ForwardLookupThatFailsIsUnknown) {
  const ClientName c = name_of("127.0.0.169");  // PTR mx.dead.test
  EXPECT_EQ(c.name, "unknown");
  EXPECT_EQ(c.status, ClientNameStatus::forward_failed);
  EXPECT_EQ(c.ptr_name, "mx.dead.test");
}

TEST_F(ClientNameWorld, Ipv6LoopbackIsConfirmedByAaaa) {
  std::vector<Query> asked;
  const ClientName c = name_of("::1", &asked);
  EXPECT_EQ(c.name, "exchange.clients.test") << to_string(c.status) << ": " << c.detail;
  ASSERT_EQ(asked.size(), 2u);
  EXPECT_EQ(asked[1], (Query{"exchange.clients.test", RRType::AAAA}));
}

// The bounded form the SMTP server uses: started, then awaited.
TEST_F(ClientNameWorld, BoundedLookupReturnsTheNameWhenInTime) {
  const ClientName c = run<ClientName>([](Resolver& r) -> asio::awaitable<ClientName> {
    ClientNameLookup lookup(co_await asio::this_coro::executor, &r, *IpAddress::parse("127.0.0.161"), 5s);
    ClientName first = co_await lookup.result();
    ClientName again = co_await lookup.result();
    EXPECT_EQ(again.name, first.name);
    co_return first;
  });
  EXPECT_EQ(c.name, "exchange.clients.test");
}

TEST_F(ClientNameWorld, BoundedLookupWithoutResolverAsksNothing) {
  const ClientName c = run<ClientName>([](Resolver&) -> asio::awaitable<ClientName> {
    ClientNameLookup lookup(co_await asio::this_coro::executor, nullptr, *IpAddress::parse("127.0.0.161"), 5s);
    co_return co_await lookup.result();
  });
  EXPECT_EQ(c.name, "unknown");
  EXPECT_EQ(c.status, ClientNameStatus::disabled);
}

TEST_F(ClientNameWorld, BoundedLookupGivesUpAtItsLimitWhileTheServerDoesNotAnswer) {
  // The PTR zone of 127.0.0.165 is delegated to the dead server: libunbound keeps trying for
  // longer than this bound (its own query timeout is 5 s here).
  const auto start = Clock::now();
  const ClientName c = run<ClientName>([](Resolver& r) -> asio::awaitable<ClientName> {
    ClientNameLookup lookup(co_await asio::this_coro::executor, &r, *IpAddress::parse("127.0.0.165"), 50ms);
    co_return co_await lookup.result();
  });
  const auto waited = Clock::now() - start;
  EXPECT_EQ(c.name, "unknown");
  EXPECT_EQ(c.status, ClientNameStatus::timeout) << c.detail;
  EXPECT_EQ(c.detail, "timeout (no answer within 50 ms)");
  (void)waited;
}

}  // namespace
}  // namespace danerelay::dns
