// tests/smtp/client_session_test.cpp — the real SMTP client (smtp/client_session.hpp) against the
// in-process sink (tests/support/smtp_sink.hpp) on loopback, presenting the test world's
// certificates; DANE policies come from tls::decide() over a hand-built secure plan (the DNS side
// is covered by tests/tls/end_to_end_test.cpp). Wherever delivery must not happen, the tests
// assert that the sink saw no MAIL command and received no message body.
#include "relay/delivery/outcome.hpp"  // the status a failure gets is the outcome policy's
#include "smtp/client_session.hpp"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "tests/support/smtp_sink.hpp"
#include "tests/support/temp_dir.hpp"
#include "tests/support/world.hpp"
#include "tls/client_context.hpp"
#include "tls/peer_report.hpp"
#include "tls/policy.hpp"

namespace danerelay::smtp {
namespace {

namespace asio = boost::asio;
using testsupport::Cert;
using testsupport::SinkOptions;
using testsupport::SmtpSink;

Timeouts fast_timeouts() {
  Timeouts t;
  const auto s5 = std::chrono::seconds(5);
  t.connect = t.greeting = t.ehlo = t.starttls = t.mail = t.rcpt = t.data_init = t.data_block = t.data_done = t.rset = t.quit = s5;
  return t;
}

MailSpec mail_to(std::vector<std::string> rcpts, std::string sender = "sender@client.test") {
  MailSpec m;
  m.sender = std::move(sender);
  for (auto& r : rcpts) m.recipients.push_back(RcptSpec{std::move(r), {}, {}});
  return m;
}

const std::string kBody = "Subject: test\r\nFrom: sender@client.test\r\n\r\nHello.\r\n";

bool has_command(const testsupport::SinkStats& s, std::string_view verb) {
  return std::any_of(s.commands.begin(), s.commands.end(), [&](const std::string& c) { return c.rfind(verb, 0) == 0; });
}

struct Attempt {
  std::optional<HostFailure> failure;
  std::vector<TransactionResult> results;
  std::optional<tls::PeerReport> report;
  bool tls = false;
  bool reusable = false;
  std::string namaddr;
  std::string namaddr_port;
  std::chrono::milliseconds elapsed{0};
};

class ClientSessionTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new testsupport::TempDir("danerelay-smtp-session");
    world_ = new testsupport::World(testsupport::build_world(dir_->path() / "world"));
  }
  static void TearDownTestSuite() {
    delete world_;
    delete dir_;
  }

  static const Cert& cert(const std::string& host) { return world_->host_certs.at(host); }

  // leaf + CA in one PEM file, as a real MX would present it.
  static std::filesystem::path chain_file(const std::string& host) {
    const auto path = dir_->path() / (host + ".chain.pem");
    if (!std::filesystem::exists(path)) {
      std::ofstream out(path);
      out << cert(host).pem() << world_->ca.pem();
    }
    return path;
  }

  static SinkOptions sink_options(const std::string& address = "127.0.0.11", const std::string& host = "mx.secure.test") {
    SinkOptions o;
    o.address = address;
    o.hostname = host;
    o.chain_file = chain_file(host);
    o.key_file = cert(host).key_file;
    return o;
  }

  // tls::decide() over a secure plan whose one host publishes `tlsa` (3 1 1 of `tlsa_cert`).
  static tls::HostPolicy dane_policy(const std::string& host, const Cert& tlsa_cert) {
    dns::DeliveryPlan plan;
    plan.domain = "secure.test";
    plan.next_hop = "secure.test";
    plan.mx_security = dns::Verdict::secure;
    plan.status = dns::PlanStatus::deliver;
    dns::Host h;
    h.name = h.expanded = host;
    h.address_security = dns::Verdict::secure;
    h.usable = true;
    h.tlsa.state = dns::TlsaState::found;
    h.tlsa.candidates = {host};
    h.tlsa.base_domain = host;
    h.tlsa.qname = h.tlsa.owner = "_25._tcp." + host;
    h.tlsa.records.push_back(dns::TlsaRecord{3, 1, 1, testsupport::tlsa_association(tlsa_cert.x509.get(), 1, 1)});
    plan.hosts.push_back(h);
    const std::vector<std::string> order{"sha512", "sha256"};
    return tls::decide(plan, plan.hosts.front(), config::TlsLevel::dane, order);
  }

  static tls::HostPolicy may_policy(const std::string& host = "mx.secure.test") {
    tls::HostPolicy p;
    p.level = config::TlsLevel::may;
    p.requirement = tls::Requirement::opportunistic;
    p.plaintext_fallback = true;
    p.sni = host;
    p.tls_feature = "may";
    return p;
  }

  static tls::HostPolicy plaintext_policy() {
    tls::HostPolicy p;
    p.level = config::TlsLevel::none;
    p.requirement = tls::Requirement::none;
    p.plaintext_fallback = true;
    return p;
  }

  // One connection: open, then each message in turn while the session stays usable, then QUIT.
  static Attempt attempt(const tls::HostPolicy& policy, const SmtpSink& sink, const std::vector<MailSpec>& mails,
                         const std::vector<std::string>& bodies, const Timeouts& timeouts = fast_timeouts(),
                         const std::string& host = "mx.secure.test") {
    asio::io_context io;
    asio::ssl::context ctx(tls::make_client_context({}).release());
    SessionOptions so;
    so.helo_name = "client.test";
    so.host_name = host;
    so.peer = asio::ip::tcp::endpoint(asio::ip::make_address(sink.address()), sink.port());
    so.timeouts = timeouts;
    so.body_chunk = 1024;  // several chunks for the larger bodies
    ClientSession session(io.get_executor(), ctx, policy, so);
    Attempt a;
    const auto t0 = std::chrono::steady_clock::now();
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
          a.failure = co_await session.open();
          for (std::size_t i = 0; !a.failure && i < mails.size() && session.reusable(); ++i) {
            BodySource body = BodySource::from_string(bodies.at(i));
            a.results.push_back(co_await session.send(mails[i], body));
          }
          a.reusable = session.reusable();
          a.tls = session.tls_active();
          co_await session.quit();
        },
        [](std::exception_ptr e) {
          if (e) std::rethrow_exception(e);
        });
    io.run_for(std::chrono::seconds(30));
    EXPECT_TRUE(io.stopped()) << "the client did not finish in 30 s";
    a.elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0);
    a.report = session.tls_report();
    a.namaddr = session.namaddr();
    a.namaddr_port = session.namaddr_port();
    return a;
  }

  static inline testsupport::TempDir* dir_ = nullptr;
  static inline testsupport::World* world_ = nullptr;
};

// ---- Plain delivery ---------------------------------------------------------------------------

TEST_F(ClientSessionTest, PlainDeliveryWithPipeliningBatchesCommandsAndTheFinalDot) {
  auto o = sink_options();
  o.starttls = false;
  SmtpSink sink(o);
  const auto a = attempt(may_policy(), sink, {mail_to({"a@secure.test", "b@secure.test"})}, {kBody});
  ASSERT_FALSE(a.failure) << a.failure->text;
  ASSERT_EQ(a.results.size(), 1u);
  const auto& r = a.results[0];
  EXPECT_FALSE(r.failure);
  ASSERT_EQ(r.recipients.size(), 2u);
  for (const auto& o2 : r.recipients) {
    EXPECT_EQ(o2.disposition, Disposition::sent) << o2.text;
    EXPECT_EQ(relay::outcome_of(o2).status, "2.0.0");
    EXPECT_EQ(o2.command, "end of DATA");
    EXPECT_EQ(o2.text, "250 2.0.0 Ok: queued as S1");
  }
  EXPECT_FALSE(a.tls);
  EXPECT_TRUE(a.reusable);
  EXPECT_EQ(r.connection_use, 1);
  EXPECT_GT(r.setup.count(), 0);
  sink.wait_sessions_ended(1, std::chrono::seconds(5));
  const auto s = sink.stats();
  ASSERT_EQ(s.transactions.size(), 1u);
  EXPECT_EQ(s.transactions[0].body, kBody);
  EXPECT_EQ(s.transactions[0].rcpts.size(), 2u);
  EXPECT_GE(s.max_commands_per_read, 4u) << "RFC 2920: MAIL, 2 RCPT and DATA in one write";
  EXPECT_TRUE(s.transactions[0].dot_with_data) << "the final . must travel with the last data";
  EXPECT_TRUE(has_command(s, "QUIT"));
}

TEST_F(ClientSessionTest, PlainDeliveryWithoutPipeliningSendsOneCommandAtATime) {
  auto o = sink_options();
  o.starttls = false;
  o.pipelining = false;
  SmtpSink sink(o);
  const auto a = attempt(may_policy(), sink, {mail_to({"a@secure.test", "b@secure.test"})}, {kBody});
  ASSERT_FALSE(a.failure) << a.failure->text;
  ASSERT_EQ(a.results.size(), 1u);
  for (const auto& r : a.results[0].recipients) EXPECT_EQ(r.disposition, Disposition::sent) << r.text;
  const auto s = sink.stats();
  EXPECT_EQ(s.max_commands_per_read, 1u);
  ASSERT_EQ(s.transactions.size(), 1u);
  EXPECT_EQ(s.transactions[0].body, kBody);
}

TEST_F(ClientSessionTest, HeloFallbackOnlyWherePlaintextIsAllowed) {
  auto o = sink_options();
  o.starttls = false;
  o.ehlo_supported = false;
  SmtpSink sink(o);
  const auto a = attempt(may_policy(), sink, {mail_to({"a@secure.test"})}, {kBody});
  ASSERT_FALSE(a.failure) << a.failure->text;
  EXPECT_EQ(a.results.at(0).recipients.at(0).disposition, Disposition::sent);
  EXPECT_TRUE(has_command(sink.stats(), "HELO"));

  SmtpSink strict(o);
  const auto d = attempt(dane_policy("mx.secure.test", cert("mx.secure.test")), strict, {mail_to({"a@secure.test"})}, {kBody});
  ASSERT_TRUE(d.failure);
  EXPECT_EQ(d.failure->kind, HostFailure::Kind::tls_not_offered);
  const auto s = strict.stats();
  EXPECT_FALSE(has_command(s, "HELO"));
  EXPECT_FALSE(has_command(s, "MAIL"));
}

// ---- STARTTLS and DANE ------------------------------------------------------------------------

TEST_F(ClientSessionTest, DaneEeMatchDeliversVerified) {
  SmtpSink sink(sink_options());
  const auto policy = dane_policy("mx.secure.test", cert("mx.secure.test"));
  ASSERT_EQ(policy.requirement, tls::Requirement::dane);
  const auto a = attempt(policy, sink, {mail_to({"a@secure.test"})}, {kBody});
  ASSERT_FALSE(a.failure) << a.failure->text;
  EXPECT_TRUE(a.tls);
  ASSERT_TRUE(a.report);
  EXPECT_TRUE(a.report->authenticated) << a.report->failure;
  EXPECT_EQ(a.report->trust, tls::Trust::verified);
  EXPECT_EQ(a.namaddr_port, "mx.secure.test[127.0.0.11]:" + std::to_string(sink.port()));
  EXPECT_EQ(tls::summary_line(*a.report, a.namaddr_port).rfind("Verified TLS connection established to mx.secure.test[127.0.0.11]:", 0), 0u);
  EXPECT_EQ(tls::dane_match_line(*a.report, a.namaddr_port).find("Matched DANE EE certificate at depth 0: 3 1 1 "),
            a.namaddr_port.size() + 2);
  EXPECT_EQ(a.results.at(0).recipients.at(0).disposition, Disposition::sent);
  sink.wait_sessions_ended(1, std::chrono::seconds(5));
  const auto s = sink.stats();
  EXPECT_EQ(s.tls_handshakes, 1);
  ASSERT_EQ(s.sni.size(), 1u);
  EXPECT_EQ(s.sni[0], "mx.secure.test") << "D-43";
  ASSERT_EQ(s.transactions.size(), 1u);
  EXPECT_TRUE(s.transactions[0].tls);
  EXPECT_EQ(s.transactions[0].body, kBody);
  // RFC 3207 §4.2: EHLO again after TLS.
  EXPECT_EQ(std::count_if(s.commands.begin(), s.commands.end(), [](const std::string& c) { return c.rfind("EHLO", 0) == 0; }), 2);
}

TEST_F(ClientSessionTest, DaneMismatchIsAHostFailureWithoutMailOrBody) {
  SmtpSink sink(sink_options());  // presents mx.secure.test's certificate
  const auto policy = dane_policy("mx.secure.test", cert("mx.unusable.test"));
  const auto a = attempt(policy, sink, {mail_to({"a@secure.test"})}, {kBody});
  ASSERT_TRUE(a.failure);
  EXPECT_EQ(a.failure->kind, HostFailure::Kind::tls_authentication) << a.failure->text;
  EXPECT_EQ(a.failure->text, "Server certificate not verified");
  EXPECT_EQ(relay::outcome_of(*a.failure).status, "4.7.5");
  EXPECT_FALSE(a.failure->tls_handshake_failed()) << "never a reason for plaintext (D-39)";
  ASSERT_TRUE(a.report);
  EXPECT_FALSE(a.report->authenticated);
  EXPECT_EQ(tls::verify_failure_line(*a.report, a.namaddr_port),
            "server certificate verification failed for " + a.namaddr_port + ": num=65:no matching DANE TLSA records");
  EXPECT_TRUE(a.results.empty());
  sink.wait_sessions_ended(1, std::chrono::seconds(5));
  const auto s = sink.stats();
  EXPECT_FALSE(has_command(s, "MAIL"));
  EXPECT_EQ(s.bodies(), 0);
  EXPECT_EQ(s.tls_handshakes, 0);
  EXPECT_EQ(s.tls_failures, 1);
}

TEST_F(ClientSessionTest, TlsRequiredButNotOfferedIsAHostFailure) {
  auto o = sink_options();
  o.starttls = false;
  SmtpSink sink(o);
  const auto a = attempt(dane_policy("mx.secure.test", cert("mx.secure.test")), sink, {mail_to({"a@secure.test"})}, {kBody});
  ASSERT_TRUE(a.failure);
  EXPECT_EQ(a.failure->kind, HostFailure::Kind::tls_not_offered);
  EXPECT_EQ(a.failure->text, "TLS is required, but was not offered by host mx.secure.test[127.0.0.11]");
  EXPECT_EQ(relay::outcome_of(*a.failure).status, "4.7.4");
  const auto s = sink.stats();
  EXPECT_FALSE(has_command(s, "MAIL"));
  EXPECT_EQ(s.bodies(), 0);
}

TEST_F(ClientSessionTest, DataAfterTheStarttlsReplyAbortsTheSession) {
  for (const auto& policy : {may_policy(), dane_policy("mx.secure.test", cert("mx.secure.test"))}) {
    auto o = sink_options();
    o.inject_after_starttls = "250-injected\r\n250 STARTTLS\r\n";
    SmtpSink sink(o);
    const auto a = attempt(policy, sink, {mail_to({"a@secure.test"})}, {kBody});
    ASSERT_TRUE(a.failure) << to_string(policy.requirement);
    EXPECT_EQ(a.failure->kind, HostFailure::Kind::tls_injection) << a.failure->text;
    EXPECT_NE(a.failure->text.find("after its STARTTLS reply"), std::string::npos) << a.failure->text;
    EXPECT_FALSE(a.failure->tls_handshake_failed());
    sink.wait_sessions_ended(1, std::chrono::seconds(5));
    const auto s = sink.stats();
    EXPECT_FALSE(has_command(s, "MAIL"));
    EXPECT_EQ(s.bodies(), 0);
    EXPECT_EQ(s.tls_handshakes, 0);
  }
}

TEST_F(ClientSessionTest, HandshakeFailureIsFlaggedSoTheCallerMayRetryInPlaintext) {
  auto o = sink_options();
  o.fail_handshake = true;
  SmtpSink sink(o);
  const auto policy = may_policy();
  const auto a = attempt(policy, sink, {mail_to({"a@secure.test"})}, {kBody});
  ASSERT_TRUE(a.failure);
  EXPECT_TRUE(a.failure->tls_handshake_failed()) << a.failure->text;
  EXPECT_EQ(a.failure->text, "Cannot start TLS: handshake failure");
  EXPECT_FALSE(has_command(sink.stats(), "MAIL"));
  EXPECT_EQ(sink.stats().bodies(), 0);

  // D-12: the caller's plaintext retry, on a new connection, where the policy allows it.
  ASSERT_TRUE(policy.plaintext_fallback);
  const auto retry = attempt(plaintext_policy(), sink, {mail_to({"a@secure.test"})}, {kBody});
  ASSERT_FALSE(retry.failure) << retry.failure->text;
  EXPECT_FALSE(retry.tls);
  EXPECT_EQ(retry.results.at(0).recipients.at(0).disposition, Disposition::sent);
  const auto s = sink.stats();
  EXPECT_EQ(s.connections, 2);
  EXPECT_EQ(s.bodies(), 1);
  EXPECT_FALSE(s.transactions.at(0).tls);

  // With DANE required the same failure is still a handshake failure, but the policy forbids
  // plaintext (plaintext_fallback false): the caller tries the next host.
  EXPECT_FALSE(dane_policy("mx.secure.test", cert("mx.secure.test")).plaintext_fallback);
}

// ---- Replies --------------------------------------------------------------------------------

TEST_F(ClientSessionTest, PerRecipientRepliesDecideEachRecipient) {
  for (const bool pipelining : {true, false}) {
    auto o = sink_options();
    o.starttls = false;
    o.pipelining = pipelining;
    o.rcpt_replies = {{"b@secure.test", "450 4.2.1 mailbox busy"}, {"c@secure.test", "550 5.1.1 no such user"}};
    SmtpSink sink(o);
    const auto a = attempt(may_policy(), sink, {mail_to({"a@secure.test", "b@secure.test", "c@secure.test"})}, {kBody});
    ASSERT_FALSE(a.failure) << a.failure->text;
    const auto& r = a.results.at(0).recipients;
    ASSERT_EQ(r.size(), 3u);
    EXPECT_EQ(r[0].disposition, Disposition::sent);
    EXPECT_EQ(r[1].disposition, Disposition::deferred);
    EXPECT_EQ(relay::outcome_of(r[1]).status, "4.2.1");
    EXPECT_EQ(r[1].text, "host mx.secure.test[127.0.0.11] said: 450 4.2.1 mailbox busy (in reply to RCPT TO command)");
    EXPECT_EQ(r[2].disposition, Disposition::bounced);
    EXPECT_EQ(relay::outcome_of(r[2]).status, "5.1.1");
    EXPECT_EQ(r[2].command, "RCPT TO");
    const auto s = sink.stats();
    ASSERT_EQ(s.transactions.size(), 1u);
    EXPECT_EQ(s.transactions[0].accepted, std::vector<std::string>{"<a@secure.test>"});
    EXPECT_EQ(s.transactions[0].body, kBody);
  }
}

TEST_F(ClientSessionTest, PermanentMailRejectionBouncesEveryRecipientWithoutBody) {
  for (const bool pipelining : {true, false}) {
    auto o = sink_options();
    o.starttls = false;
    o.pipelining = pipelining;
    o.mail_reply = "553 5.7.1 sender rejected";
    SmtpSink sink(o);
    const auto a = attempt(may_policy(), sink, {mail_to({"a@secure.test", "b@secure.test"})}, {kBody});
    ASSERT_FALSE(a.failure) << a.failure->text;
    for (const auto& r : a.results.at(0).recipients) {
      EXPECT_EQ(r.disposition, Disposition::bounced);
      EXPECT_EQ(relay::outcome_of(r).status, "5.7.1");
      EXPECT_EQ(r.command, "MAIL FROM");
    }
    EXPECT_TRUE(a.reusable);
    EXPECT_EQ(sink.stats().bodies(), 0);
  }
}

TEST_F(ClientSessionTest, DataRejectionDecidesTheAcceptedRecipients) {
  auto o = sink_options();
  o.starttls = false;
  o.data_reply = "451 4.3.0 try again";
  SmtpSink sink(o);
  const auto a = attempt(may_policy(), sink, {mail_to({"a@secure.test"})}, {kBody});
  ASSERT_FALSE(a.failure);
  const auto& r = a.results.at(0).recipients.at(0);
  EXPECT_EQ(r.disposition, Disposition::deferred);
  EXPECT_EQ(r.command, "DATA");
  EXPECT_EQ(sink.stats().bodies(), 0);
}

TEST_F(ClientSessionTest, GreetingRefusalMeansTryTheNextHost) {
  for (const std::string greeting : {"421 4.3.2 too busy", "554 5.7.1 go away"}) {
    auto o = sink_options();
    o.greeting = greeting;
    SmtpSink sink(o);
    const auto a = attempt(may_policy(), sink, {mail_to({"a@secure.test"})}, {kBody});
    ASSERT_TRUE(a.failure);
    EXPECT_EQ(a.failure->kind, HostFailure::Kind::greeting_rejected);
    EXPECT_EQ(a.failure->text, "host mx.secure.test[127.0.0.11] refused to talk to me: " + greeting);
    EXPECT_EQ(relay::outcome_of(*a.failure).status[0], '4') << "Postfix smtp_skip_5xx_greeting";
    EXPECT_FALSE(has_command(sink.stats(), "MAIL"));
  }
}

TEST_F(ClientSessionTest, EhloRefusedWith421IsAHostFailure) {
  auto o = sink_options();
  o.ehlo_reply = "421 4.3.2 shutting down";
  SmtpSink sink(o);
  const auto a = attempt(may_policy(), sink, {mail_to({"a@secure.test"})}, {kBody});
  ASSERT_TRUE(a.failure);
  EXPECT_EQ(a.failure->kind, HostFailure::Kind::helo_rejected);
  EXPECT_EQ(relay::outcome_of(*a.failure).status, "4.3.2");
}

// ---- Timeouts and connection failures -----------------------------------------------------------

TEST_F(ClientSessionTest, SilentServerTimesOutWithinTheConfiguredBound) {
  auto o = sink_options();
  o.hang_at = "CONNECT";
  SmtpSink sink(o);
  auto t = fast_timeouts();
  t.greeting = std::chrono::milliseconds(200);
  const auto a = attempt(may_policy(), sink, {mail_to({"a@secure.test"})}, {kBody}, t);
  ASSERT_TRUE(a.failure);
  EXPECT_EQ(a.failure->kind, HostFailure::Kind::timeout);
  EXPECT_EQ(a.failure->text, "conversation with mx.secure.test[127.0.0.11] timed out while receiving the initial server greeting");
  EXPECT_EQ(relay::outcome_of(*a.failure).status, "4.4.2");
  EXPECT_LT(a.elapsed, std::chrono::seconds(3));
}

TEST_F(ClientSessionTest, NoReplyToTheFinalDotDefersEveryRecipient) {
  auto o = sink_options();
  o.starttls = false;
  o.hang_at = ".";
  SmtpSink sink(o);
  auto t = fast_timeouts();
  t.data_done = std::chrono::milliseconds(300);
  const auto a = attempt(may_policy(), sink, {mail_to({"a@secure.test", "b@secure.test"})}, {kBody}, t);
  ASSERT_FALSE(a.failure);
  const auto& r = a.results.at(0);
  ASSERT_TRUE(r.failure);
  EXPECT_EQ(r.failure->kind, HostFailure::Kind::timeout);
  EXPECT_EQ(r.failure->text, "conversation with mx.secure.test[127.0.0.11] timed out while sending end of data -- message may be sent more than once");
  for (const auto& x : r.recipients) EXPECT_EQ(x.disposition, Disposition::deferred);
  EXPECT_TRUE(r.body_sent);
  EXPECT_FALSE(a.reusable);
  EXPECT_LT(a.elapsed, std::chrono::seconds(3));
}

TEST_F(ClientSessionTest, ConnectionRefusedIsAConnectFailure) {
  std::uint16_t port = 0;
  {
    SmtpSink gone(sink_options());
    port = gone.port();
  }
  asio::io_context io;
  asio::ssl::context ctx(tls::make_client_context({}).release());
  SessionOptions so;
  so.host_name = "mx.secure.test";
  so.peer = asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.11"), port);
  so.timeouts = fast_timeouts();
  ClientSession session(io.get_executor(), ctx, may_policy(), so);
  std::optional<HostFailure> f;
  asio::co_spawn(io, [&]() -> asio::awaitable<void> { f = co_await session.open(); }, asio::detached);
  io.run_for(std::chrono::seconds(10));
  ASSERT_TRUE(f);
  EXPECT_EQ(f->kind, HostFailure::Kind::connect);
  EXPECT_EQ(relay::outcome_of(*f).status, "4.4.1");
  EXPECT_EQ(f->text.rfind("connect to mx.secure.test[127.0.0.11]:" + std::to_string(port) + ": ", 0), 0u) << f->text;
}

// ---- Message data ---------------------------------------------------------------------------------

TEST_F(ClientSessionTest, DotStuffingSurvivesTheWire) {
  auto o = sink_options();
  o.starttls = false;
  SmtpSink sink(o);
  std::string body = "Subject: dots\r\n\r\n.leading dot\r\n..two dots\r\n.\r\nnot the end\r\n";
  for (int i = 0; i < 200; ++i) body += ".line " + std::to_string(i) + " of a body larger than one chunk\r\n";
  body += "last line without CRLF";
  const auto a = attempt(may_policy(), sink, {mail_to({"a@secure.test"})}, {body});
  ASSERT_FALSE(a.failure);
  EXPECT_EQ(a.results.at(0).recipients.at(0).disposition, Disposition::sent);
  const auto s = sink.stats();
  ASSERT_EQ(s.transactions.size(), 1u);
  EXPECT_EQ(s.transactions[0].body, body + "\r\n");
  EXPECT_TRUE(s.transactions[0].dot_with_data);
}

TEST_F(ClientSessionTest, EsmtpParametersFollowTheAnnouncedExtensions) {
  auto o = sink_options();
  o.starttls = false;
  o.size = 1000000;
  SmtpSink sink(o);
  MailSpec m = mail_to({"a@secure.test"});
  m.size = kBody.size();
  m.eightbit = true;
  m.ret = "HDRS";
  m.envid = "id+1=x";
  m.recipients[0].notify = "SUCCESS,FAILURE";
  m.recipients[0].orcpt = "rfc822;A@secure.test";
  const auto a = attempt(may_policy(), sink, {m}, {kBody});
  ASSERT_FALSE(a.failure);
  const auto s = sink.stats();
  ASSERT_EQ(s.transactions.size(), 1u);
  EXPECT_EQ(s.transactions[0].mail,
            "<sender@client.test> SIZE=" + std::to_string(kBody.size()) + " BODY=8BITMIME RET=HDRS ENVID=id+2B1+3Dx");
  EXPECT_EQ(s.transactions[0].rcpts.at(0), "<a@secure.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;A@secure.test");

  // The same message to a server without SIZE/DSN/8BITMIME gets none of the parameters.
  o.dsn = false;
  o.eightbitmime = false;
  SmtpSink plain(o);
  const auto b = attempt(may_policy(), plain, {m}, {kBody});
  ASSERT_FALSE(b.failure);
  EXPECT_EQ(plain.stats().transactions.at(0).mail, "<sender@client.test> SIZE=" + std::to_string(kBody.size()));
}

TEST_F(ClientSessionTest, LocalChecksBounceWithoutMail) {
  auto o = sink_options();
  o.starttls = false;
  o.size = 10;
  SmtpSink sink(o);
  MailSpec utf8 = mail_to({"a@secure.test"});
  utf8.smtputf8 = true;
  MailSpec big = mail_to({"a@secure.test"});
  big.size = 11;
  MailSpec injected = mail_to({"a@secure.test>\r\nRSET\r\nRCPT TO:<x@y"});
  const auto a = attempt(may_policy(), sink, {utf8, big, injected}, {kBody, kBody, kBody});
  ASSERT_FALSE(a.failure);
  ASSERT_EQ(a.results.size(), 3u);
  EXPECT_EQ(relay::outcome_of(a.results[0].recipients.at(0)).status, "5.6.7");
  EXPECT_EQ(a.results[0].recipients.at(0).text, "SMTPUTF8 is required, but was not offered by host mx.secure.test[127.0.0.11]");
  EXPECT_EQ(relay::outcome_of(a.results[1].recipients.at(0)).status, "5.3.4");
  EXPECT_EQ(relay::outcome_of(a.results[2].recipients.at(0)).status, "5.1.3");
  for (const auto& r : a.results) EXPECT_EQ(r.recipients.at(0).disposition, Disposition::bounced);
  EXPECT_TRUE(a.reusable);
  EXPECT_FALSE(has_command(sink.stats(), "MAIL"));
}

// ---- IPv6 and reuse -------------------------------------------------------------------------------

TEST_F(ClientSessionTest, Ipv6DaneDelivery) {
  SmtpSink sink(sink_options("::1"));
  const auto a = attempt(dane_policy("mx.secure.test", cert("mx.secure.test")), sink, {mail_to({"a@secure.test"})}, {kBody});
  ASSERT_FALSE(a.failure) << a.failure->text;
  EXPECT_EQ(a.namaddr, "mx.secure.test[::1]");
  ASSERT_TRUE(a.report);
  EXPECT_EQ(a.report->trust, tls::Trust::verified);
  EXPECT_EQ(a.results.at(0).recipients.at(0).disposition, Disposition::sent);
  EXPECT_EQ(sink.stats().bodies(), 1);
}

TEST_F(ClientSessionTest, ReusedSessionRunsSeveralTransactionsOverOneHandshake) {
  auto o = sink_options();
  o.rcpt_replies = {{"nobody@secure.test", "550 5.1.1 no such user"}};
  SmtpSink sink(o);
  const std::string second = "Subject: second\r\n\r\nAgain.\r\n";
  const auto a = attempt(dane_policy("mx.secure.test", cert("mx.secure.test")), sink,
                         {mail_to({"a@secure.test"}), mail_to({"nobody@secure.test"}), mail_to({"b@secure.test"})},
                         {kBody, kBody, second});
  ASSERT_FALSE(a.failure) << a.failure->text;
  ASSERT_EQ(a.results.size(), 3u);
  EXPECT_EQ(a.results[0].recipients.at(0).disposition, Disposition::sent);
  EXPECT_EQ(a.results[1].recipients.at(0).disposition, Disposition::bounced);
  EXPECT_EQ(a.results[2].recipients.at(0).disposition, Disposition::sent);
  EXPECT_EQ(a.results[0].connection_use, 1);
  EXPECT_EQ(a.results[2].connection_use, 3);
  EXPECT_GT(a.results[0].setup.count(), 0);
  EXPECT_EQ(a.results[2].setup.count(), 0) << "a reused connection has no set-up time";
  EXPECT_TRUE(a.reusable);
  sink.wait_sessions_ended(1, std::chrono::seconds(5));
  const auto s = sink.stats();
  EXPECT_EQ(s.connections, 1);
  EXPECT_EQ(s.tls_handshakes, 1);
  EXPECT_EQ(s.bodies(), 2);
  ASSERT_EQ(s.transactions.size(), 3u);
  EXPECT_EQ(s.transactions[2].body, second);
  EXPECT_TRUE(has_command(s, "RSET")) << "the refused transaction is reset before the next one";
}

TEST_F(ClientSessionTest, A421ReplyEndsReuse) {
  auto o = sink_options();
  o.starttls = false;
  o.rcpt_replies = {{"a@secure.test", "421 4.3.2 closing down"}};
  SmtpSink sink(o);
  const auto a = attempt(may_policy(), sink, {mail_to({"a@secure.test"}), mail_to({"b@secure.test"})}, {kBody, kBody});
  ASSERT_FALSE(a.failure);
  ASSERT_EQ(a.results.size(), 1u) << "no second transaction on a closing connection";
  EXPECT_EQ(a.results[0].recipients.at(0).disposition, Disposition::deferred);
  EXPECT_FALSE(a.reusable);
  EXPECT_EQ(sink.stats().bodies(), 0);
}

TEST_F(ClientSessionTest, EncryptLevelDeliversOverUnauthenticatedTls) {
  SmtpSink sink(sink_options());
  tls::HostPolicy p = may_policy();
  p.level = config::TlsLevel::encrypt;
  p.requirement = tls::Requirement::encrypt;
  p.plaintext_fallback = false;
  const auto a = attempt(p, sink, {mail_to({"a@secure.test"})}, {kBody});
  ASSERT_FALSE(a.failure) << a.failure->text;
  EXPECT_TRUE(a.tls);
  ASSERT_TRUE(a.report);
  EXPECT_EQ(a.report->trust, tls::Trust::untrusted);
  EXPECT_EQ(sink.stats().bodies(), 1);
}

TEST_F(ClientSessionTest, PolicyDeferMakesNoConnection) {
  SmtpSink sink(sink_options());
  tls::HostPolicy p;
  p.requirement = tls::Requirement::defer;
  p.reason = "TLSA lookup error for mx.secure.test:25";
  const auto a = attempt(p, sink, {mail_to({"a@secure.test"})}, {kBody});
  ASSERT_TRUE(a.failure);
  EXPECT_EQ(a.failure->kind, HostFailure::Kind::policy_defer);
  EXPECT_EQ(a.failure->text, p.reason);
  EXPECT_EQ(sink.stats().connections, 0);
}

// ---- Pure helpers -----------------------------------------------------------------------------------

}  // namespace
}  // namespace danerelay::smtp
