// tests/smtp/server_session_test.cpp — the inbound server (smtp/server.hpp, smtp/server_session.hpp)
// over real loopback sockets. The client is raw: it writes exactly the bytes an attacker would
// (smuggling, pipelining after STARTTLS) and reads replies line by line. The MessageStore is an
// in-memory fake whose commit() can be held until the test releases it. TLS uses certificates
// made at test time (tests/support/pki.hpp).
//
// The server runs on its own io_context thread; the client is blocking with a 10 s receive
// timeout (SO_RCVTIMEO), so a broken server fails a test instead of hanging it.
#include "smtp/server.hpp"

#include <crypt.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "dns/resolver.hpp"
#include "smtp/sasl.hpp"
#include "tests/support/pki.hpp"
#include "tests/support/temp_dir.hpp"
#include "tests/support/world.hpp"
#include "tls/server_context.hpp"

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

namespace danerelay::smtp {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;
using boost::system::error_code;

// ---- The fake store -------------------------------------------------------------------------

struct Committed {
  InboundEnvelope envelope;
  std::string data;
};

struct FakeStore final : MessageStore {
  explicit FakeStore(asio::io_context& io) : gate(io) { gate.expires_at(asio::steady_timer::time_point::max()); }

  bool has_space(std::uint64_t size) override {
    std::lock_guard lock(mutex);
    last_space_query = size;
    return space;
  }

  std::unique_ptr<MessageSink> begin() override;

  // Test thread: wait (bounded) until a commit() has started.
  bool wait_commit_started() {
    std::unique_lock lock(mutex);
    return cv.wait_for(lock, std::chrono::seconds(10), [&] { return commits_started > 0; });
  }
  void release() {
    asio::post(gate.get_executor(), [this] {
      hold = false;
      gate.cancel();
    });
  }
  std::vector<Committed> messages() {
    std::lock_guard lock(mutex);
    return committed;
  }

  std::mutex mutex;
  std::condition_variable cv;
  bool space = true;
  std::uint64_t last_space_query = 0;
  bool hold = false;             // commit() waits for release()
  bool fail_commit = false;
  int commits_started = 0;
  int begun = 0;
  std::vector<Committed> committed;
  asio::steady_timer gate;       // server thread only
};

struct FakeSink final : MessageSink {
  FakeSink(FakeStore& s, std::string id) : store(s), qid(std::move(id)) {}
  const std::string& queue_id() const noexcept override { return qid; }
  void write(std::string_view bytes) override { data.append(bytes); }
  asio::awaitable<CommitResult> commit(InboundEnvelope envelope) override {
    {
      std::lock_guard lock(store.mutex);
      ++store.commits_started;
    }
    store.cv.notify_all();
    if (store.hold) (void)co_await store.gate.async_wait(asio::as_tuple(asio::use_awaitable));
    if (store.fail_commit) co_return CommitResult{false, "disk on fire"};
    std::lock_guard lock(store.mutex);
    store.committed.push_back(Committed{std::move(envelope), data});
    co_return CommitResult{true, {}};
  }
  FakeStore& store;
  std::string qid;
  std::string data;
};

std::unique_ptr<MessageSink> FakeStore::begin() {
  std::lock_guard lock(mutex);
  ++begun;
  char id[13];
  std::snprintf(id, sizeof id, "%012X", 0xABC000 + begun);
  return std::make_unique<FakeSink>(*this, id);
}

// ---- The raw client -------------------------------------------------------------------------

class Client {
 public:
  // `source`: the client's own address, bound before connecting ("127.0.0.161"); empty: any.
  explicit Client(const tcp::endpoint& server, const std::string& source = {}) : socket_(io_) {
    if (!source.empty()) {
      socket_.open(server.protocol());
      socket_.bind(tcp::endpoint(asio::ip::make_address(source), 0));
    }
    socket_.connect(server);
    timeval tv{10, 0};
    ::setsockopt(socket_.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(socket_.native_handle(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  }

  void send(std::string_view bytes) {
    error_code ec;
    if (tls_) asio::write(*tls_, asio::buffer(bytes.data(), bytes.size()), ec);
    else asio::write(socket_, asio::buffer(bytes.data(), bytes.size()), ec);
  }

  // One line without CRLF; "" with eof_ set when the server closed.
  std::string line() {
    for (int i = 0; i < 10000; ++i) {
      if (const auto lf = buf_.find("\r\n"); lf != std::string::npos) {
        std::string l = buf_.substr(0, lf);
        buf_.erase(0, lf + 2);
        return l;
      }
      std::array<char, 4096> chunk;
      error_code ec;
      const std::size_t n = tls_ ? tls_->read_some(asio::buffer(chunk), ec) : socket_.read_some(asio::buffer(chunk), ec);
      if (ec || n == 0) {
        eof_ = true;
        return "";
      }
      buf_.append(chunk.data(), n);
    }
    return "";
  }

  // A whole (possibly multi-line) reply, lines joined with '\n'.
  std::string reply() {
    std::string all;
    for (int i = 0; i < 100; ++i) {
      const std::string l = line();
      if (l.empty()) return all;
      all += (all.empty() ? "" : "\n") + l;
      if (l.size() < 4 || l[3] != '-') return all;
    }
    return all;
  }

  // True when the server closed the connection (EOF with nothing more to read).
  bool closed() {
    const std::string l = line();
    return l.empty() && eof_;
  }

  bool starttls() {
    ssl_.emplace(asio::ssl::context::tls_client);
    ssl_->set_verify_mode(asio::ssl::verify_none);
    tls_.emplace(socket_, *ssl_);
    error_code ec;
    tls_->handshake(asio::ssl::stream_base::client, ec);
    return !ec;
  }

  [[nodiscard]] bool pending_data() {
    error_code ec;
    return !buf_.empty() || socket_.available(ec) > 0;
  }

  // A slow client: `bytes` one at a time, `interval` apart, until all are sent or the server
  // has answered (or closed). Bounded by bytes.size() * interval.
  void trickle(std::string_view bytes, std::chrono::milliseconds interval) {
    for (char c : bytes) {
      if (pending_data()) return;
      send(std::string_view(&c, 1));
      std::this_thread::sleep_for(interval);
    }
  }

 private:
  asio::io_context io_;
  tcp::socket socket_;
  std::optional<asio::ssl::context> ssl_;
  std::optional<asio::ssl::stream<tcp::socket&>> tls_;
  std::string buf_;
  bool eof_ = false;
};

std::string plain_auth(const std::string& user, const std::string& pass) {
  return base64_encode(std::string("\0", 1) + user + std::string("\0", 1) + pass);
}

std::string sha512_hash(const std::string& password) {
  char salt[CRYPT_GENSALT_OUTPUT_SIZE];
  crypt_gensalt_rn("$6$", 1000, nullptr, 0, salt, sizeof salt);
  auto data = std::make_unique<crypt_data>();
  return crypt_rn(password.c_str(), salt, data.get(), sizeof(crypt_data));
}

// ---- The fixture ----------------------------------------------------------------------------

class ServerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new testsupport::TempDir("danerelay-server");
    testsupport::Pki pki(dir_->path());
    const auto ca = pki.make_ca("Test CA");
    testsupport::Pki::LeafOptions lo;
    lo.common_name = "relay.test";
    lo.dns_names = {"relay.test"};
    lo.issuer = &ca;
    const auto leaf = pki.make_leaf(lo);
    config::TlsServerSettings ts;
    ts.cert_file = pki.write_chain("chain.pem", {&leaf, &ca});
    ts.key_file = leaf.key_file;
    tls_ = new std::shared_ptr<tls::ServerContext>(std::make_shared<tls::ServerContext>(ts));
    creds_ = new std::shared_ptr<const Credentials>(
        std::make_shared<const Credentials>(Credentials::parse("alice:" + sha512_hash("secret") + "\n", "test")));
  }
  static void TearDownTestSuite() {
    delete creds_;
    delete tls_;
    delete dir_;
  }

  void SetUp() override {
    store_ = std::make_unique<FakeStore>(io_);
    log_stream_ = std::make_shared<std::ostringstream>();
    auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(*log_stream_);
    sink->set_pattern("%v");
    logger_ = std::make_shared<spdlog::logger>("smtpd-test", sink);
    logger_->set_level(spdlog::level::info);
    logger_->flush_on(spdlog::level::info);
  }

  void TearDown() override {
    for (auto& s : servers_) s->stop();
    store_->release();
    guard_.reset();
    if (thread_.joinable()) {
      if (done_.wait_for(std::chrono::seconds(10)) != std::future_status::ready) io_.stop();
      thread_.join();
    }
    servers_.clear();
  }

  ServerSettings settings() {
    ServerSettings s;
    s.listener.name = "test";
    s.listener.address = config::Endpoint{"127.0.0.1", 0};
    s.listener.tls = config::Listener::Tls::starttls;
    s.listener.allow_networks = {*config::Cidr::parse("127.0.0.0/8")};
    s.limits.command_timeout = std::chrono::seconds(30);
    s.limits.data_timeout = std::chrono::seconds(30);
    s.hostname = "relay.test";
    s.tls = *tls_;
    s.credentials = *creds_;
    s.log = logger_;
    return s;
  }

  tcp::endpoint start(ServerSettings s) {
    servers_.push_back(std::make_unique<Server>(io_.get_executor(), std::move(s), *store_));
    servers_.back()->start();
    if (!thread_.joinable()) {
      std::promise<void> p;
      done_ = p.get_future();
      thread_ = std::thread([this, p = std::move(p)]() mutable {
        io_.run();
        p.set_value();
      });
    }
    return servers_.back()->local_endpoint();
  }

  std::string logs() {
    logger_->flush();
    return log_stream_->str();
  }

  // Greeting + EHLO; returns the EHLO reply.
  static std::string hello(Client& c, const std::string& name = "client.test") {
    EXPECT_EQ(c.reply(), "220 relay.test ESMTP danerelay");
    c.send("EHLO " + name + "\r\n");
    return c.reply();
  }

  static void tls_hello(Client& c) {
    hello(c);
    c.send("STARTTLS\r\n");
    ASSERT_EQ(c.reply(), "220 2.0.0 Ready to start TLS");
    ASSERT_TRUE(c.starttls());
    c.send("EHLO client.test\r\n");
    const auto r = c.reply();
    ASSERT_EQ(r.substr(0, 4), "250-");
  }

  // MAIL + RCPT + DATA up to the 354.
  static void begin_message(Client& c, const std::string& rcpt = "rcpt@dest.example") {
    c.send("MAIL FROM:<sender@client.test>\r\n");
    ASSERT_EQ(c.reply(), "250 2.1.0 Ok");
    c.send("RCPT TO:<" + rcpt + ">\r\n");
    ASSERT_EQ(c.reply(), "250 2.1.5 Ok");
    c.send("DATA\r\n");
    ASSERT_EQ(c.reply(), "354 End data with <CR><LF>.<CR><LF>");
  }

  // Asserts the smuggling attempt `body` (sent after the 354) is rejected with 521 and closes.
  void expect_smuggling_blocked(const std::string& body, const std::string& what) {
    Client c(start(settings()));
    hello(c);
    begin_message(c);
    c.send(body);
    EXPECT_EQ(c.reply(), "521 5.5.2 relay.test Error: bare " + what + " received");
    EXPECT_TRUE(c.closed());
    EXPECT_TRUE(store_->messages().empty());
  }

  static testsupport::TempDir* dir_;
  static std::shared_ptr<tls::ServerContext>* tls_;
  static std::shared_ptr<const Credentials>* creds_;

  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> guard_{io_.get_executor()};
  std::unique_ptr<FakeStore> store_;
  std::vector<std::unique_ptr<Server>> servers_;
  std::thread thread_;
  std::future<void> done_;
  std::shared_ptr<std::ostringstream> log_stream_;
  std::shared_ptr<spdlog::logger> logger_;
};

testsupport::TempDir* ServerTest::dir_ = nullptr;
std::shared_ptr<tls::ServerContext>* ServerTest::tls_ = nullptr;
std::shared_ptr<const Credentials>* ServerTest::creds_ = nullptr;

const std::string kSmuggled = "MAIL FROM:<evil@attacker.example>\r\nRCPT TO:<victim@dest.example>\r\nDATA\r\nFrom: ceo\r\n\r\nsmuggled\r\n.\r\n";

// ---- Tests ----------------------------------------------------------------------------------

TEST_F(ServerTest, EhloAdvertisesInPostfixOrderWithoutAuthBeforeTls) {
  auto s = settings();
  s.listener.auth = config::Listener::Auth::optional;
  s.limits.max_message_size = 12345;
  Client c(start(s));
  EXPECT_EQ(hello(c), "250-relay.test\n250-PIPELINING\n250-SIZE 12345\n250-STARTTLS\n250-ENHANCEDSTATUSCODES\n"
                      "250-8BITMIME\n250-DSN\n250 SMTPUTF8");
  c.send("HELO client.test\r\n");
  EXPECT_EQ(c.reply(), "250 relay.test");
  c.send("QUIT\r\n");
  EXPECT_EQ(c.reply(), "221 2.0.0 Bye");
  EXPECT_TRUE(c.closed());
}

TEST_F(ServerTest, AcceptsAMessageWithReceivedHeaderAndUnstuffing) {
  Client c(start(settings()));
  hello(c);
  begin_message(c);
  c.send("Message-ID: <m1@client.test>\r\nSubject: hi\r\n\r\n..dot\r\nbody\r\n.\r\n");
  const std::string r = c.reply();
  EXPECT_EQ(r.substr(0, 30), "250 2.0.0 Ok: queued as 000000");
  c.send("QUIT\r\n");
  EXPECT_EQ(c.reply(), "221 2.0.0 Bye");
  const auto msgs = store_->messages();
  ASSERT_EQ(msgs.size(), 1u);
  const auto& d = msgs[0].data;
  EXPECT_EQ(d.rfind("Received: from client.test (unknown [127.0.0.1])\r\n\tby relay.test (danerelay) with ESMTP id ", 0), 0u) << d;
  EXPECT_NE(d.find("\r\n\tfor <rcpt@dest.example>; "), std::string::npos) << d;
  EXPECT_NE(d.find("\r\nMessage-ID: <m1@client.test>\r\nSubject: hi\r\n\r\n.dot\r\nbody\r\n"), std::string::npos) << d;
  EXPECT_EQ(msgs[0].envelope.sender, "sender@client.test");
  EXPECT_EQ(msgs[0].envelope.protocol, "ESMTP");
  EXPECT_EQ(msgs[0].envelope.client_address, "127.0.0.1");
  EXPECT_EQ(msgs[0].envelope.helo, "client.test");
  EXPECT_EQ(msgs[0].envelope.listener, "test");
  const auto l = logs();
  EXPECT_NE(l.find("connect from unknown[127.0.0.1]"), std::string::npos) << l;
  EXPECT_NE(l.find(": client=unknown[127.0.0.1]\n"), std::string::npos) << l;
  EXPECT_NE(l.find(": message-id=<m1@client.test>"), std::string::npos) << l;
}

TEST_F(ServerTest, DisconnectLineCountsCommands) {
  Client c(start(settings()));
  hello(c);
  begin_message(c);
  c.send("x\r\n.\r\nFOO\r\nQUIT\r\n");
  EXPECT_EQ(c.reply().substr(0, 3), "250");
  EXPECT_EQ(c.reply(), "502 5.5.2 Error: command not recognized");
  EXPECT_EQ(c.reply(), "221 2.0.0 Bye");
  EXPECT_TRUE(c.closed());
  servers_.front()->stop();
  store_->release();
  guard_.reset();
  done_.wait_for(std::chrono::seconds(10));
  EXPECT_NE(logs().find("disconnect from unknown[127.0.0.1] ehlo=1 mail=1 rcpt=1 data=1 quit=1 unknown=0/1 commands=5/6"),
            std::string::npos)
      << logs();
}

// SMTP smuggling (each would let a second, forged message through on a vulnerable server).
TEST_F(ServerTest, SmugglingLfDotLfIsRejected) { expect_smuggling_blocked("Subject: a\r\n\r\nbody\n.\n" + kSmuggled, "<LF>"); }
TEST_F(ServerTest, SmugglingCrDotLfIsRejected) { expect_smuggling_blocked("Subject: a\r\n\r\nbody\r\n\r.\n" + kSmuggled, "<CR>"); }
TEST_F(ServerTest, SmugglingLfDotCrLfIsRejected) { expect_smuggling_blocked("Subject: a\r\n\r\nbody\n.\r\n" + kSmuggled, "<LF>"); }
TEST_F(ServerTest, BareCrInsideDataIsRejected) { expect_smuggling_blocked("Subject: a\r\n\r\nab\rcd\r\n.\r\n", "<CR>"); }
TEST_F(ServerTest, BareLfInsideDataIsRejected) { expect_smuggling_blocked("Subject: a\nX: y\r\n\r\nbody\r\n.\r\n", "<LF>"); }

TEST_F(ServerTest, BareLfInCommandIsRejected) {
  Client c(start(settings()));
  hello(c);
  c.send("NOOP\n");
  EXPECT_EQ(c.reply(), "521 5.5.2 relay.test Error: bare <LF> received");
  EXPECT_TRUE(c.closed());
}

TEST_F(ServerTest, PipelinedCommandsGetRepliesInOrder) {
  Client c(start(settings()));
  hello(c);
  c.send("MAIL FROM:<a@client.test>\r\nRCPT TO:<b@dest.example>\r\nRCPT TO:<bad\r\nDATA\r\n");
  EXPECT_EQ(c.reply(), "250 2.1.0 Ok");
  EXPECT_EQ(c.reply(), "250 2.1.5 Ok");
  EXPECT_EQ(c.reply(), "501 5.1.3 Bad recipient address syntax");
  EXPECT_EQ(c.reply(), "354 End data with <CR><LF>.<CR><LF>");
  c.send(".\r\nQUIT\r\n");
  EXPECT_EQ(c.reply().substr(0, 3), "250");
  EXPECT_EQ(c.reply(), "221 2.0.0 Bye");
}

TEST_F(ServerTest, CommandsPipelinedAfterStarttlsAreDiscarded) {
  Client c(start(settings()));
  hello(c);
  // The injected MAIL arrives in plaintext in the same segment; a vulnerable server would answer
  // it after the handshake as if the client had sent it over TLS.
  c.send("STARTTLS\r\nMAIL FROM:<evil@attacker.example>\r\n");
  ASSERT_EQ(c.reply(), "220 2.0.0 Ready to start TLS");
  ASSERT_TRUE(c.starttls());
  c.send("EHLO client.test\r\n");
  const std::string r = c.reply();
  EXPECT_EQ(r.substr(0, 15), "250-relay.test\n") << r;
  EXPECT_EQ(r.find("STARTTLS"), std::string::npos);
  // The injected MAIL left no transaction behind: this MAIL is not "nested".
  c.send("MAIL FROM:<a@client.test>\r\n");
  EXPECT_EQ(c.reply(), "250 2.1.0 Ok");
  EXPECT_NE(logs().find("improper command pipelining after STARTTLS"), std::string::npos) << logs();
}

TEST_F(ServerTest, StateIsResetAfterStarttls) {
  Client c(start(settings()));
  hello(c);
  c.send("STARTTLS\r\n");
  ASSERT_EQ(c.reply(), "220 2.0.0 Ready to start TLS");
  ASSERT_TRUE(c.starttls());
  c.send("MAIL FROM:<a@client.test>\r\n");
  EXPECT_EQ(c.reply(), "503 5.5.1 Error: send HELO/EHLO first");
  c.send("STARTTLS\r\n");
  EXPECT_EQ(c.reply(), "554 5.5.1 Error: TLS already active");
}

TEST_F(ServerTest, AuthRefusedBeforeTlsAcceptedAfterPlain) {
  auto s = settings();
  s.listener.auth = config::Listener::Auth::optional;
  Client c(start(s));
  hello(c);
  c.send("AUTH PLAIN " + plain_auth("alice", "secret") + "\r\n");
  EXPECT_EQ(c.reply(), "538 5.7.11 Encryption required for requested authentication mechanism");
  c.send("STARTTLS\r\n");
  ASSERT_EQ(c.reply(), "220 2.0.0 Ready to start TLS");
  ASSERT_TRUE(c.starttls());
  c.send("EHLO client.test\r\n");
  EXPECT_NE(c.reply().find("\n250-AUTH PLAIN LOGIN\n"), std::string::npos);
  c.send("AUTH PLAIN " + plain_auth("alice", "secret") + "\r\n");
  EXPECT_EQ(c.reply(), "235 2.7.0 Authentication successful");
  c.send("AUTH PLAIN " + plain_auth("alice", "secret") + "\r\n");
  EXPECT_EQ(c.reply(), "503 5.5.1 Error: already authenticated");
}

TEST_F(ServerTest, AuthLoginAfterTlsAndFailureIsLogged) {
  auto s = settings();
  s.listener.auth = config::Listener::Auth::optional;
  Client c(start(s));
  tls_hello(c);
  c.send("AUTH LOGIN\r\n");
  EXPECT_EQ(c.reply(), "334 VXNlcm5hbWU6");
  c.send(base64_encode("alice") + "\r\n");
  EXPECT_EQ(c.reply(), "334 UGFzc3dvcmQ6");
  c.send(base64_encode("wrong") + "\r\n");
  EXPECT_EQ(c.reply(), "535 5.7.8 Error: authentication failed");
  EXPECT_NE(logs().find("unknown[127.0.0.1]: SASL LOGIN authentication failed: authentication failure"), std::string::npos)
      << logs();
  c.send("AUTH LOGIN\r\n");
  EXPECT_EQ(c.reply(), "334 VXNlcm5hbWU6");
  c.send("*\r\n");
  EXPECT_EQ(c.reply(), "501 5.7.0 Authentication aborted");
  c.send("AUTH LOGIN " + base64_encode("alice") + "\r\n");
  EXPECT_EQ(c.reply(), "334 UGFzc3dvcmQ6");
  c.send(base64_encode("secret") + "\r\n");
  EXPECT_EQ(c.reply(), "235 2.7.0 Authentication successful");
}

TEST_F(ServerTest, AuthNotEnabled) {
  Client c(start(settings()));
  tls_hello(c);
  c.send("AUTH PLAIN " + plain_auth("alice", "secret") + "\r\n");
  EXPECT_EQ(c.reply(), "503 5.5.1 Error: authentication not enabled");
}

TEST_F(ServerTest, RelayDeniedOutsideAllowNetworksWithoutAuth) {
  auto s = settings();
  s.listener.allow_networks = {*config::Cidr::parse("192.0.2.0/24")};
  Client c(start(s));
  hello(c);
  c.send("MAIL FROM:<a@client.test>\r\n");
  EXPECT_EQ(c.reply(), "250 2.1.0 Ok");
  c.send("RCPT TO:<victim@dest.example>\r\n");
  EXPECT_EQ(c.reply(), "554 5.7.1 <victim@dest.example>: Relay access denied");
  c.send("DATA\r\n");
  EXPECT_EQ(c.reply(), "554 5.5.1 Error: no valid recipients");
  EXPECT_NE(logs().find("NOQUEUE: reject: RCPT from unknown[127.0.0.1]: 554 5.7.1 <victim@dest.example>: Relay access "
                        "denied; from=<a@client.test> to=<victim@dest.example> proto=ESMTP helo=<client.test>"),
            std::string::npos)
      << logs();
}

TEST_F(ServerTest, NoNetworksAndNoAuthIsNeverAnOpenRelay) {
  auto s = settings();
  s.listener.allow_networks.clear();
  Client c(start(s));
  hello(c);
  c.send("MAIL FROM:<a@client.test>\r\nRCPT TO:<victim@dest.example>\r\nRCPT TO:<postmaster>\r\n");
  EXPECT_EQ(c.reply(), "250 2.1.0 Ok");
  EXPECT_EQ(c.reply(), "554 5.7.1 <victim@dest.example>: Relay access denied");
  EXPECT_EQ(c.reply(), "554 5.7.1 <postmaster@relay.test>: Relay access denied");
}

TEST_F(ServerTest, RelayAllowedWhenAuthenticated) {
  auto s = settings();
  s.listener.allow_networks.clear();
  s.listener.auth = config::Listener::Auth::optional;
  s.listener.auth_header = true;  // the login name in Received: only on request
  Client c(start(s));
  tls_hello(c);
  c.send("AUTH PLAIN " + plain_auth("alice", "secret") + "\r\n");
  ASSERT_EQ(c.reply(), "235 2.7.0 Authentication successful");
  begin_message(c);
  c.send("Subject: x\r\n\r\nhi\r\n.\r\n");
  EXPECT_EQ(c.reply().substr(0, 3), "250");
  const auto msgs = store_->messages();
  ASSERT_EQ(msgs.size(), 1u);
  EXPECT_EQ(msgs[0].envelope.protocol, "ESMTPSA");
  EXPECT_EQ(msgs[0].envelope.auth_user, "alice");
  EXPECT_EQ(msgs[0].envelope.auth_method, "PLAIN");
  EXPECT_NE(msgs[0].data.find("\r\n\t(using TLSv1."), std::string::npos) << msgs[0].data;
  EXPECT_NE(msgs[0].data.find("\r\n\t(Authenticated sender: alice)\r\n\tby relay.test (danerelay) with ESMTPSA id "),
            std::string::npos)
      << msgs[0].data;
  EXPECT_NE(logs().find(": client=unknown[127.0.0.1], sasl_method=PLAIN, sasl_username=alice"), std::string::npos) << logs();
}

TEST_F(ServerTest, RequireTlsAndRequiredAuthGateMail) {
  auto s = settings();
  s.listener.require_tls = true;
  s.listener.auth = config::Listener::Auth::required;
  Client c(start(s));
  hello(c);
  c.send("MAIL FROM:<a@client.test>\r\n");
  EXPECT_EQ(c.reply(), "530 5.7.0 Must issue a STARTTLS command first");
  c.send("STARTTLS\r\n");
  ASSERT_EQ(c.reply(), "220 2.0.0 Ready to start TLS");
  ASSERT_TRUE(c.starttls());
  c.send("EHLO client.test\r\n");
  c.reply();
  c.send("MAIL FROM:<a@client.test>\r\n");
  EXPECT_EQ(c.reply(), "530 5.7.0 Authentication required");
}

TEST_F(ServerTest, NoSpaceGives452AtMail) {
  store_->space = false;
  Client c(start(settings()));
  hello(c);
  c.send("MAIL FROM:<a@client.test> SIZE=4242\r\n");
  EXPECT_EQ(c.reply(), "452 4.3.1 Insufficient system storage");
  EXPECT_EQ(store_->last_space_query, 4242u);
}

TEST_F(ServerTest, SizeLimits) {
  auto s = settings();
  s.limits.max_message_size = 100;
  Client c(start(s));
  hello(c);
  c.send("MAIL FROM:<a@client.test> SIZE=101\r\n");
  EXPECT_EQ(c.reply(), "552 5.3.4 Message size exceeds fixed limit");
  begin_message(c);
  c.send(std::string(80, 'x') + "\r\n" + std::string(80, 'y') + "\r\n.\r\n");
  EXPECT_EQ(c.reply(), "552 5.3.4 Error: message file too big");
  c.send("NOOP\r\n");
  EXPECT_EQ(c.reply(), "250 2.0.0 Ok");
  EXPECT_TRUE(store_->messages().empty());
}

TEST_F(ServerTest, LongDataLineRejectedAfterTheEnd) {
  Client c(start(settings()));
  hello(c);
  begin_message(c);
  c.send(std::string(1200, 'x') + "\r\n.\r\n");
  EXPECT_EQ(c.reply(), "500 5.5.2 Error: line too long");
  EXPECT_TRUE(store_->messages().empty());
}

TEST_F(ServerTest, TooManyRecipients) {
  auto s = settings();
  s.limits.max_recipients = 2;
  Client c(start(s));
  hello(c);
  c.send("MAIL FROM:<a@client.test>\r\nRCPT TO:<b1@d.example>\r\nRCPT TO:<b2@d.example>\r\nRCPT TO:<b3@d.example>\r\n");
  EXPECT_EQ(c.reply(), "250 2.1.0 Ok");
  EXPECT_EQ(c.reply(), "250 2.1.5 Ok");
  EXPECT_EQ(c.reply(), "250 2.1.5 Ok");
  EXPECT_EQ(c.reply(), "452 4.5.3 Error: too many recipients");
}

TEST_F(ServerTest, DsnParametersReachTheEnvelope) {
  Client c(start(settings()));
  hello(c);
  c.send("MAIL FROM:<a@client.test> RET=HDRS ENVID=env+2Bid SIZE=20 BODY=8BITMIME SMTPUTF8\r\n");
  EXPECT_EQ(c.reply(), "250 2.1.0 Ok");
  c.send("RCPT TO:<b@d.example> NOTIFY=SUCCESS,DELAY ORCPT=rfc822;b+40d.example\r\n");
  EXPECT_EQ(c.reply(), "250 2.1.5 Ok");
  c.send("RCPT TO:<c@d.example> NOTIFY=NEVER\r\n");
  EXPECT_EQ(c.reply(), "250 2.1.5 Ok");
  c.send("DATA\r\n");
  EXPECT_EQ(c.reply(), "354 End data with <CR><LF>.<CR><LF>");
  c.send("hi\r\n.\r\n");
  EXPECT_EQ(c.reply().substr(0, 3), "250");
  const auto msgs = store_->messages();
  ASSERT_EQ(msgs.size(), 1u);
  const auto& e = msgs[0].envelope;
  EXPECT_EQ(e.ret, "HDRS");
  EXPECT_EQ(e.envid, "env+id");
  EXPECT_EQ(e.declared_size, 20u);
  EXPECT_TRUE(e.eightbit);
  EXPECT_TRUE(e.smtputf8);
  ASSERT_EQ(e.recipients.size(), 2u);
  EXPECT_EQ(e.recipients[0].address, "b@d.example");
  EXPECT_EQ(e.recipients[0].notify, kNotifySuccess | kNotifyDelay);
  EXPECT_EQ(e.recipients[0].orcpt, "rfc822;b@d.example");
  EXPECT_EQ(e.recipients[1].notify, kNotifyNever);
  // Two recipients: no "for" clause; SMTPUTF8: RFC 6531 protocol name.
  EXPECT_EQ(msgs[0].data.find("\tfor <"), std::string::npos);
  EXPECT_NE(msgs[0].data.find(" with UTF8SMTP id "), std::string::npos) << msgs[0].data;
}

TEST_F(ServerTest, Reply250OnlyAfterCommitCompletes) {
  store_->hold = true;
  Client c(start(settings()));
  hello(c);
  begin_message(c);
  c.send("Subject: x\r\n\r\nhi\r\n.\r\n");
  ASSERT_TRUE(store_->wait_commit_started());
  EXPECT_FALSE(c.pending_data()) << "a reply arrived before commit() completed";
  store_->release();
  EXPECT_EQ(c.reply().substr(0, 24), "250 2.0.0 Ok: queued as ");
  EXPECT_EQ(store_->messages().size(), 1u);
}

TEST_F(ServerTest, CommitFailureGives451) {
  store_->fail_commit = true;
  Client c(start(settings()));
  hello(c);
  begin_message(c);
  c.send("hi\r\n.\r\n");
  EXPECT_EQ(c.reply(), "451 4.3.0 Error: queue file write error");
  EXPECT_NE(logs().find("queue file write error: disk on fire"), std::string::npos) << logs();
}

TEST_F(ServerTest, TooManyErrorsCloses) {
  auto s = settings();
  s.limits.max_errors = 3;
  Client c(start(s));
  hello(c);
  c.send("FOO\r\nBAR\r\nMAIL FROM:<bad\r\nNOOP\r\n");
  EXPECT_EQ(c.reply(), "502 5.5.2 Error: command not recognized");
  EXPECT_EQ(c.reply(), "502 5.5.2 Error: command not recognized");
  EXPECT_EQ(c.reply(), "501 5.1.7 Bad sender address syntax");
  EXPECT_EQ(c.reply(), "421 4.7.0 relay.test Error: too many errors");
  EXPECT_TRUE(c.closed());
}

TEST_F(ServerTest, OverlongCommandLine) {
  Client c(start(settings()));
  hello(c);
  c.send("NOOP " + std::string(600, 'x') + "\r\n");
  EXPECT_EQ(c.reply(), "500 5.5.2 Error: line too long");
  c.send("NOOP " + std::string(20000, 'x') + "\r\nNOOP\r\n");
  EXPECT_EQ(c.reply(), "500 5.5.2 Error: line too long");
  EXPECT_EQ(c.reply(), "250 2.0.0 Ok");
}

TEST_F(ServerTest, PerClientConnectionLimit) {
  auto s = settings();
  s.limits.max_connections_per_client = 1;
  const auto ep = start(s);
  Client first(ep);
  EXPECT_EQ(first.reply(), "220 relay.test ESMTP danerelay");
  Client second(ep);
  EXPECT_EQ(second.reply(), "421 4.7.0 relay.test Error: too many connections from 127.0.0.1");
  EXPECT_TRUE(second.closed());
}

TEST_F(ServerTest, TotalConnectionLimitIsSharedAcrossListeners) {
  auto s = settings();
  s.limits.max_connections = 1;
  s.tracker = std::make_shared<ConnectionTracker>(1, 10);
  auto s2 = s;
  const auto ep1 = start(s);
  const auto ep2 = start(s2);
  Client first(ep1);
  EXPECT_EQ(first.reply(), "220 relay.test ESMTP danerelay");
  Client second(ep2);
  EXPECT_EQ(second.reply(), "421 4.7.0 relay.test Error: too many connections");
}

TEST_F(ServerTest, CommandTimeout) {
  auto s = settings();
  s.limits.command_timeout = std::chrono::milliseconds(200);
  Client c(start(s));
  EXPECT_EQ(c.reply(), "220 relay.test ESMTP danerelay");
  EXPECT_EQ(c.reply(), "421 4.4.2 relay.test Error: timeout exceeded");
  EXPECT_TRUE(c.closed());
}

TEST_F(ServerTest, DataTimeout) {
  auto s = settings();
  s.limits.data_timeout = std::chrono::milliseconds(200);
  Client c(start(s));
  hello(c);
  begin_message(c);
  c.send("partial line");
  EXPECT_EQ(c.reply(), "421 4.4.2 relay.test Error: timeout exceeded");
  EXPECT_TRUE(c.closed());
  EXPECT_TRUE(store_->messages().empty());
}

// Finding 4: a timeout per read let a client keep a session forever by sending one byte now and
// then. command_timeout now bounds the whole line, from the moment the server starts reading it.
TEST_F(ServerTest, SlowCommandLineHitsTheCommandDeadline) {
  auto s = settings();
  s.limits.command_timeout = std::chrono::seconds(1);
  Client c(start(s));
  hello(c);
  const auto t0 = std::chrono::steady_clock::now();
  c.trickle("NOOP xxxxxxxx\r\n", std::chrono::milliseconds(250));  // 15 bytes over 3.75 s, each read < 1 s apart
  EXPECT_EQ(c.reply(), "421 4.4.2 relay.test Error: timeout exceeded");
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(2500));
  EXPECT_TRUE(c.closed());
  EXPECT_NE(logs().find("timeout after EHLO from unknown[127.0.0.1]"), std::string::npos) << logs();
}

// Issue 12 §2: the session's watchdog ends a timed step by cancelling the socket; over TLS that
// must abort the stream's read (a composed operation over the socket) just the same, and the 421
// still goes out over TLS.
TEST_F(ServerTest, SilentClientOverTlsTimesOutAndHearsWhy) {
  auto s = settings();
  s.limits.command_timeout = std::chrono::seconds(1);
  Client c(start(s));
  tls_hello(c);
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(c.reply(), "421 4.4.2 relay.test Error: timeout exceeded");
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(2500));
  EXPECT_TRUE(c.closed());
  EXPECT_NE(logs().find("timeout after EHLO from unknown[127.0.0.1]"), std::string::npos) << logs();
}

// The handshake is a timed step too (command_timeout): a client that says STARTTLS and then
// nothing is dropped, and the log says why.
TEST_F(ServerTest, ClientThatNeverHandshakesAfterStarttlsIsDropped) {
  auto s = settings();
  s.limits.command_timeout = std::chrono::milliseconds(300);
  Client c(start(s));
  hello(c);
  c.send("STARTTLS\r\n");
  ASSERT_EQ(c.reply(), "220 2.0.0 Ready to start TLS");
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_TRUE(c.closed());
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(2500));
  for (int i = 0; i < 100 && logs().find("SSL_accept error") == std::string::npos; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_NE(logs().find("SSL_accept error from unknown[127.0.0.1]: timed out"), std::string::npos) << logs();
}

// Finding 4, DATA: one header line trickled a byte at a time must finish within data_timeout
// (Postfix smtpd_per_record_deadline).
TEST_F(ServerTest, DataLineTrickledByteByByteHitsTheLineDeadline) {
  auto s = settings();
  s.limits.data_timeout = std::chrono::seconds(1);
  Client c(start(s));
  hello(c);
  begin_message(c);
  const auto t0 = std::chrono::steady_clock::now();
  c.trickle("Subject: very slow\r\n", std::chrono::milliseconds(250));
  EXPECT_EQ(c.reply(), "421 4.4.2 relay.test Error: timeout exceeded");
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(2500));
  EXPECT_TRUE(c.closed());
  EXPECT_TRUE(store_->messages().empty());
}

// Finding 4, DATA: whole lines, each well within data_timeout of the last, still cannot hold the
// session: the DATA deadline is data_timeout + bytes received / min_data_rate (500 B/s default),
// counted from the 354 (a line every nine minutes against the 10-minute default, scaled down).
TEST_F(ServerTest, DataLinesTooSlowForTheMinimumRateTimeOut) {
  auto s = settings();
  s.limits.data_timeout = std::chrono::seconds(1);
  Client c(start(s));
  hello(c);
  begin_message(c);
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < 7 && !c.pending_data(); ++i) {  // at most 7 * 600 ms
    c.send("line " + std::to_string(i) + "\r\n");
    std::this_thread::sleep_for(std::chrono::milliseconds(600));
  }
  EXPECT_EQ(c.reply(), "421 4.4.2 relay.test Error: timeout exceeded");
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(2500));
  EXPECT_TRUE(c.closed());
  EXPECT_TRUE(store_->messages().empty());
  EXPECT_NE(logs().find("timeout after DATA ("), std::string::npos) << logs();
}

// The rate credit: bytes already received extend the DATA deadline, so a big message at a decent
// rate followed by a few slow lines is still accepted.
TEST_F(ServerTest, DataBytesReceivedEarnTimeAtTheMinimumRate) {
  auto s = settings();
  s.limits.data_timeout = std::chrono::seconds(1);
  Client c(start(s));
  hello(c);
  begin_message(c);
  std::string bulk = "Subject: bulk\r\n\r\n";
  for (int i = 0; i < 20; ++i) bulk += std::string(98, 'b') + "\r\n";  // 2000 bytes: +4 s at 500 B/s
  c.send(bulk);
  for (int i = 0; i < 3; ++i) {  // 1.5 s of slow lines, more than data_timeout, each within the per-line second
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    c.send("slow " + std::to_string(i) + "\r\n");
  }
  c.send(".\r\n");
  EXPECT_EQ(c.reply().substr(0, 24), "250 2.0.0 Ok: queued as ");
  EXPECT_EQ(store_->messages().size(), 1u);
}

// Checklist L-01 (mail loops): Postfix hop_count_limit = 50 counts the Received: fields of the
// message as queued, ours included, and rejects when the count reaches the limit (cleanup:
// ++hop_count >= var_hopcount_limit). With the default 50: 48 from the client (49 stored) pass,
// 49 (50 stored) are rejected after the final dot and nothing is stored.
TEST_F(ServerTest, L01_TooManyReceivedHeadersAreRejectedAtTheDefaultLimit) {
  auto received = [](int n) {
    std::string h;
    for (int i = 0; i < n; ++i) h += "Received: from hop" + std::to_string(i) + ".example by x.example; Thu, 1 Jan 2026 00:00:00 +0000\r\n";
    return h;
  };
  Client c(start(settings()));
  hello(c);
  begin_message(c);
  c.send(received(49) + "Subject: loop\r\n\r\nbody\r\n.\r\n");
  EXPECT_EQ(c.reply(), "554 5.4.6 Too many hops");
  EXPECT_TRUE(store_->messages().empty());
  EXPECT_NE(logs().find(": reject: END-OF-MESSAGE from unknown[127.0.0.1]: 554 5.4.6 Too many hops;"), std::string::npos)
      << logs();
  // The session goes on, and one hop fewer is accepted.
  begin_message(c);
  c.send(received(48) + "Subject: loop\r\n\r\nbody\r\n.\r\n");
  EXPECT_EQ(c.reply().substr(0, 24), "250 2.0.0 Ok: queued as ");
  ASSERT_EQ(store_->messages().size(), 1u);
}

// Checklist L-01 with limits.max_hops = 5: 3 Received: from the client (4 stored) pass, 4 do not.
TEST_F(ServerTest, L01_MaxHopsIsConfigurable) {
  auto s = settings();
  s.limits.max_hops = 5;
  Client c(start(s));
  hello(c);
  begin_message(c);
  c.send("Received: a\r\nReceived: b\r\nreceived: c\r\nRECEIVED : d\r\n\r\nbody\r\n.\r\n");
  EXPECT_EQ(c.reply(), "554 5.4.6 Too many hops");
  begin_message(c);
  c.send("Received: a\r\nReceived: b\r\nreceived: c\r\n\r\nbody\r\n.\r\n");
  EXPECT_EQ(c.reply().substr(0, 24), "250 2.0.0 Ok: queued as ");
  const auto msgs = store_->messages();
  ASSERT_EQ(msgs.size(), 1u);
  EXPECT_EQ(msgs[0].data.rfind("Received: from client.test ", 0), 0u);  // ours first, then theirs
}

// Checklist L-01: only the header section counts; Received: lines in the body (a forwarded
// message pasted in) and folded continuation lines do not.
TEST_F(ServerTest, L01_ReceivedLinesInTheBodyDoNotCount) {
  std::string body = "Subject: fwd\r\nReceived: from a.example\r\n\tby b.example; Thu, 1 Jan 2026 00:00:00 +0000\r\n\r\n";
  for (int i = 0; i < 60; ++i) body += "Received: from pasted" + std::to_string(i) + ".example\r\n";
  Client c(start(settings()));
  hello(c);
  begin_message(c);
  c.send(body + ".\r\n");
  EXPECT_EQ(c.reply().substr(0, 24), "250 2.0.0 Ok: queued as ");
  EXPECT_EQ(store_->messages().size(), 1u);
}

// Issue item 10: the SASL login name is not published in Received: unless the listener asks
// (Postfix smtpd_sasl_authenticated_header = no).
TEST_F(ServerTest, AuthenticatedSenderIsLeftOutOfReceivedByDefault) {
  auto s = settings();
  s.listener.allow_networks.clear();
  s.listener.auth = config::Listener::Auth::optional;
  Client c(start(s));
  tls_hello(c);
  c.send("AUTH PLAIN " + plain_auth("alice", "secret") + "\r\n");
  ASSERT_EQ(c.reply(), "235 2.7.0 Authentication successful");
  begin_message(c);
  c.send("Subject: x\r\n\r\nhi\r\n.\r\n");
  EXPECT_EQ(c.reply().substr(0, 3), "250");
  const auto msgs = store_->messages();
  ASSERT_EQ(msgs.size(), 1u);
  EXPECT_EQ(msgs[0].data.find("Authenticated sender"), std::string::npos) << msgs[0].data;
  EXPECT_EQ(msgs[0].data.find("alice"), std::string::npos) << msgs[0].data;
  EXPECT_NE(msgs[0].data.find(")\r\n\tby relay.test (danerelay) with ESMTPSA id "), std::string::npos) << msgs[0].data;
  EXPECT_EQ(msgs[0].envelope.auth_user, "alice");  // the queue still knows (logs, not headers)
}

// Finding 4: IPv6 clients are counted per /64 (limits.client_ipv6_prefix): one host owns a whole
// /64 and can pick a fresh address per connection. IPv4 and IPv4-mapped IPv6 count per address.
TEST(ConnectionTrackerTest, CountsIpv6ClientsPerPrefixAndV4MappedAsV4) {
  auto t = std::make_shared<ConnectionTracker>(100, 1);
  ConnectionTracker::Slot a, b, c, d, e, f;
  EXPECT_EQ(t->admit("2001:db8:1:2::1", a), ConnectionTracker::Admission::admitted);
  EXPECT_EQ(t->admit("2001:db8:1:2:ffff:ffff:ffff:ffff", b), ConnectionTracker::Admission::too_many_from_client);
  EXPECT_EQ(t->admit("2001:db8:1:3::1", c), ConnectionTracker::Admission::admitted);
  EXPECT_EQ(t->from("2001:db8:1:2::77"), 1u);
  EXPECT_EQ(t->admit("192.0.2.1", d), ConnectionTracker::Admission::admitted);
  EXPECT_EQ(t->admit("::ffff:192.0.2.1", e), ConnectionTracker::Admission::too_many_from_client);
  EXPECT_EQ(t->admit("192.0.2.2", f), ConnectionTracker::Admission::admitted);
  EXPECT_EQ(t->total(), 4u);
  a = ConnectionTracker::Slot();
  EXPECT_EQ(t->admit("2001:db8:1:2::2", b), ConnectionTracker::Admission::admitted);
}

// limits.client_ipv6_prefix reaches the tracker the Server makes for itself; a shared tracker
// brings its own prefix.
TEST(ConnectionTrackerTest, PrefixLengthIsConfigurable) {
  auto t = std::make_shared<ConnectionTracker>(100, 1, 48);
  ConnectionTracker::Slot a, b, c;
  EXPECT_EQ(t->admit("2001:db8:1:2::1", a), ConnectionTracker::Admission::admitted);
  EXPECT_EQ(t->admit("2001:db8:1:ffff::1", b), ConnectionTracker::Admission::too_many_from_client);
  EXPECT_EQ(t->admit("2001:db8:2::1", c), ConnectionTracker::Admission::admitted);
  auto per_address = std::make_shared<ConnectionTracker>(100, 1, 128);
  ConnectionTracker::Slot d, e;
  EXPECT_EQ(per_address->admit("2001:db8::1", d), ConnectionTracker::Admission::admitted);
  EXPECT_EQ(per_address->admit("2001:db8::2", e), ConnectionTracker::Admission::admitted);
}

// Admitting into a slot that still holds a connection releases that one first (this used to
// take the tracker's lock twice and hang).
TEST(ConnectionTrackerTest, ReusingAHeldSlotReleasesItFirst) {
  auto t = std::make_shared<ConnectionTracker>(100, 1);
  ConnectionTracker::Slot a;
  EXPECT_EQ(t->admit("192.0.2.1", a), ConnectionTracker::Admission::admitted);
  EXPECT_EQ(t->admit("192.0.2.1", a), ConnectionTracker::Admission::admitted);
  EXPECT_EQ(t->total(), 1u);
  EXPECT_EQ(t->admit("192.0.2.2", a), ConnectionTracker::Admission::admitted);
  EXPECT_EQ(t->from("192.0.2.1"), 0u);
  EXPECT_EQ(t->from("192.0.2.2"), 1u);
}

// Finding 4: password guessing. At most limits.max_auth_failures_per_client failed AUTH per
// client in five minutes, counted process-wide (one limiter shared by every listener): the
// failure that reaches the limit gets 421 and the connection closes; a new AUTH from that client
// is refused the same way, on any listener, until the window has moved on. The clock is fake.
TEST_F(ServerTest, AuthFailuresPerClientAreLimitedAcrossListeners) {
  auto now_ms = std::make_shared<std::atomic<std::int64_t>>(1'000'000);
  auto s = settings();
  s.listener.auth = config::Listener::Auth::optional;
  s.limits.max_auth_failures_per_client = 3;
  s.auth_failures = std::make_shared<AuthFailureLimiter>(3, 64, [now_ms] {
    return AuthFailureLimiter::Clock::time_point(std::chrono::milliseconds(now_ms->load()));
  });
  auto s2 = s;
  s2.listener.name = "second";
  const auto ep1 = start(s);
  const auto ep2 = start(s2);
  {
    Client c(ep1);
    tls_hello(c);
    for (int i = 0; i < 2; ++i) {
      c.send("AUTH PLAIN " + plain_auth("alice", "guess" + std::to_string(i)) + "\r\n");
      EXPECT_EQ(c.reply(), "535 5.7.8 Error: authentication failed");
    }
    c.send("AUTH PLAIN " + plain_auth("alice", "guess2") + "\r\n");
    EXPECT_EQ(c.reply(), "421 4.7.0 relay.test Error: too many AUTH failures");
    EXPECT_TRUE(c.closed());
  }
  {
    Client c(ep2);  // another listener, same client: still refused, even with the right password
    tls_hello(c);
    c.send("AUTH PLAIN " + plain_auth("alice", "secret") + "\r\n");
    EXPECT_EQ(c.reply(), "421 4.7.0 relay.test Error: too many AUTH failures");
    EXPECT_TRUE(c.closed());
  }
  EXPECT_NE(logs().find("too many AUTH failures (3) from unknown[127.0.0.1] for service test"), std::string::npos)
      << logs();
  now_ms->fetch_add(5 * 60 * 1000);  // the window moves on
  {
    Client c(ep1);
    tls_hello(c);
    c.send("AUTH PLAIN " + plain_auth("alice", "secret") + "\r\n");
    EXPECT_EQ(c.reply(), "235 2.7.0 Authentication successful");
  }
}

// Aborted exchanges ("*") and malformed responses test no password: they do not count.
TEST_F(ServerTest, OnlyFailedCredentialsCountAsAuthFailures) {
  auto s = settings();
  s.listener.auth = config::Listener::Auth::optional;
  s.limits.max_auth_failures_per_client = 2;
  s.limits.max_errors = 100;
  Client c(start(s));
  tls_hello(c);
  for (int i = 0; i < 5; ++i) {
    c.send("AUTH LOGIN\r\n");
    EXPECT_EQ(c.reply(), "334 VXNlcm5hbWU6");
    c.send("*\r\n");
    EXPECT_EQ(c.reply(), "501 5.7.0 Authentication aborted");
  }
  c.send("AUTH PLAIN " + plain_auth("alice", "wrong") + "\r\n");
  EXPECT_EQ(c.reply(), "535 5.7.8 Error: authentication failed");
  c.send("AUTH PLAIN " + plain_auth("alice", "wrong") + "\r\n");
  EXPECT_EQ(c.reply(), "421 4.7.0 relay.test Error: too many AUTH failures");
  EXPECT_TRUE(c.closed());
}

TEST_F(ServerTest, ImplicitTlsHandshakesBeforeGreeting) {
  auto s = settings();
  s.listener.tls = config::Listener::Tls::implicit;
  s.listener.auth = config::Listener::Auth::optional;
  Client c(start(s));
  ASSERT_TRUE(c.starttls());
  const auto r = hello(c);
  EXPECT_EQ(r.find("STARTTLS"), std::string::npos);
  EXPECT_NE(r.find("250-AUTH PLAIN LOGIN"), std::string::npos);
}

TEST_F(ServerTest, SequenceErrorsAndMiscCommands) {
  Client c(start(settings()));
  EXPECT_EQ(c.reply(), "220 relay.test ESMTP danerelay");
  c.send("MAIL FROM:<a@client.test>\r\n");
  EXPECT_EQ(c.reply(), "503 5.5.1 Error: send HELO/EHLO first");
  c.send("EHLO client.test\r\n");
  c.reply();
  c.send("RCPT TO:<b@d.example>\r\n");
  EXPECT_EQ(c.reply(), "503 5.5.1 Error: need MAIL command");
  c.send("DATA\r\n");
  EXPECT_EQ(c.reply(), "503 5.5.1 Error: need RCPT command");
  c.send("MAIL FROM:<a@client.test>\r\nMAIL FROM:<a@client.test>\r\n");
  EXPECT_EQ(c.reply(), "250 2.1.0 Ok");
  EXPECT_EQ(c.reply(), "503 5.5.1 Error: nested MAIL command");
  c.send("RSET\r\nVRFY root\r\nBDAT 10 LAST\r\nHELP\r\nNOOP\r\n");
  EXPECT_EQ(c.reply(), "250 2.0.0 Ok");
  EXPECT_EQ(c.reply(), "502 5.5.1 VRFY command is disabled");
  EXPECT_EQ(c.reply(), "502 5.5.2 Error: command not recognized");
  EXPECT_EQ(c.reply().substr(0, 10), "214 2.0.0 ");
  EXPECT_EQ(c.reply(), "250 2.0.0 Ok");
}

TEST_F(ServerTest, BindFailureNamesTheAddress) {
  const auto ep = start(settings());
  auto s = settings();
  s.listener.address = config::Endpoint{"127.0.0.1", ep.port()};
  Server clash(io_.get_executor(), s, *store_);
  try {
    clash.start();
    ADD_FAILURE() << "bound twice";
  } catch (const std::system_error& e) {
    EXPECT_NE(std::string(e.what()).find("127.0.0.1:" + std::to_string(ep.port())), std::string::npos) << e.what();
  }
}

// ---- Client names (issue 11 item 6) -----------------------------------------------------------
// The sessions resolve their clients through a real UnboundResolver over the signed test world
// (tests/support/world.cpp add_client_names): the client connects from a chosen 127.0.0.x.

// Forwards to the real resolver and counts the queries (asked on the server's thread).
struct CountingResolver final : dns::Resolver {
  explicit CountingResolver(dns::Resolver& r) : real(r) {}
  void async_lookup(dns::Query query, Handler handler) override {
    ++asked;
    real.async_lookup(std::move(query), std::move(handler));
  }
  dns::Resolver& real;
  std::atomic<int> asked{0};
};

class ClientNameTest : public ServerTest {
 protected:
  static void SetUpTestSuite() {
    ServerTest::SetUpTestSuite();
    world_dir_ = new testsupport::TempDir("danerelay-server-rdns");
    world_ = new testsupport::World(testsupport::build_world(world_dir_->path()));
  }
  static void TearDownTestSuite() {
    delete world_;
    delete world_dir_;
    ServerTest::TearDownTestSuite();
  }

  void SetUp() override {
    ServerTest::SetUp();
    const auto s = testsupport::dns_settings(*world_);
    resolver_ = std::make_unique<dns::UnboundResolver>(io_.get_executor(), s, dns::prepare_trust_anchor(s, world_->state_dir));
    counting_ = std::make_unique<CountingResolver>(*resolver_);
  }
  void TearDown() override {
    ServerTest::TearDown();  // the io thread has ended: nothing uses the resolver any more
    counting_.reset();
    resolver_.reset();
  }

  ServerSettings named(std::chrono::milliseconds bound = std::chrono::seconds(5)) {
    ServerSettings s = settings();
    s.resolver = counting_.get();
    s.reverse_lookup_timeout = bound;
    return s;
  }

  // One message from `source` through a fresh server; returns the committed message.
  Committed one_message(const std::string& source, ServerSettings s) {
    Client c(start(std::move(s)), source);
    hello(c);
    begin_message(c);
    c.send("Subject: hi\r\n\r\nbody\r\n.\r\n");
    EXPECT_EQ(c.reply().substr(0, 3), "250");
    c.send("QUIT\r\n");
    EXPECT_EQ(c.reply(), "221 2.0.0 Bye");
    EXPECT_TRUE(c.closed());
    const auto msgs = store_->messages();
    EXPECT_EQ(msgs.size(), 1u);
    return msgs.empty() ? Committed{} : msgs[0];
  }

  // The log once its disconnect line is there (the session logs it after the client saw 221).
  std::string logs_after_disconnect() {
    for (int i = 0; i < 200; ++i) {
      const std::string l = logs();
      if (l.find("disconnect from ") != std::string::npos) return l;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return logs();
  }

  static inline testsupport::TempDir* world_dir_ = nullptr;
  static inline testsupport::World* world_ = nullptr;
  std::unique_ptr<dns::UnboundResolver> resolver_;
  std::unique_ptr<CountingResolver> counting_;
};

TEST_F(ClientNameTest, ForwardConfirmedClientIsNamedInEveryLineAndInReceived) {
  const Committed m = one_message("127.0.0.161", named());
  EXPECT_EQ(m.data.rfind("Received: from client.test (exchange.clients.test [127.0.0.161])\r\n\tby relay.test (danerelay) ", 0),
            0u) << m.data;
  EXPECT_EQ(m.envelope.client_name, "exchange.clients.test");
  EXPECT_EQ(m.envelope.client_address, "127.0.0.161");
  const std::string l = logs_after_disconnect();
  EXPECT_EQ(l.rfind("connect from exchange.clients.test[127.0.0.161]\n", 0), 0u) << l;  // the first line: no warning
  EXPECT_NE(l.find(": client=exchange.clients.test[127.0.0.161]\n"), std::string::npos) << l;
  EXPECT_NE(l.find("disconnect from exchange.clients.test[127.0.0.161] ehlo=1 mail=1 rcpt=1 data=1 quit=1"), std::string::npos) << l;
  EXPECT_EQ(counting_->asked.load(), 2);  // PTR, then A
}

TEST_F(ClientNameTest, ForgedPtrGivesUnknownWithPostfixsWarning) {
  const Committed m = one_message("127.0.0.162", named());  // PTR forged.clients.test, whose A is 127.0.0.99
  EXPECT_EQ(m.data.rfind("Received: from client.test (unknown [127.0.0.162])\r\n", 0), 0u) << m.data;
  EXPECT_EQ(m.envelope.client_name, "unknown");
  const std::string l = logs_after_disconnect();
  EXPECT_EQ(l.rfind("hostname forged.clients.test does not resolve to address 127.0.0.162\n"
                    "connect from unknown[127.0.0.162]\n", 0), 0u) << l;
  EXPECT_NE(l.find(": client=unknown[127.0.0.162]\n"), std::string::npos) << l;
  EXPECT_EQ(l.find("forged.clients.test["), std::string::npos) << l;
}

TEST_F(ClientNameTest, D03_BogusPtrIsNeverUsed) {
  // bogus.clients.test has A 127.0.0.163: only validation keeps it out of the logs.
  const Committed m = one_message("127.0.0.163", named());
  EXPECT_EQ(m.data.rfind("Received: from client.test (unknown [127.0.0.163])\r\n", 0), 0u) << m.data;
  const std::string l = logs_after_disconnect();
  EXPECT_NE(l.find("127.0.0.163: reverse lookup failed: bogus ("), std::string::npos) << l;
  EXPECT_NE(l.find("connect from unknown[127.0.0.163]\n"), std::string::npos) << l;
  EXPECT_EQ(l.find("bogus.clients.test"), std::string::npos) << l;
  EXPECT_EQ(counting_->asked.load(), 1);  // no forward query for a name from a bogus answer
}

TEST_F(ClientNameTest, NoPtrIsUnknownWithoutWarning) {
  (void)one_message("127.0.0.160", named());
  const std::string l = logs_after_disconnect();
  EXPECT_EQ(l.rfind("connect from unknown[127.0.0.160]\n", 0), 0u) << l;
}

TEST_F(ClientNameTest, RejectLineNamesTheClientToo) {
  ServerSettings s = named();
  s.listener.allow_networks.clear();  // nobody may relay
  Client c(start(std::move(s)), "127.0.0.168");  // PTR a.clients.test (.99) and b.clients.test (.168)
  hello(c);
  c.send("MAIL FROM:<a@client.test>\r\nRCPT TO:<x@dest.example>\r\nQUIT\r\n");
  EXPECT_EQ(c.reply(), "250 2.1.0 Ok");
  EXPECT_EQ(c.reply(), "554 5.7.1 <x@dest.example>: Relay access denied");
  EXPECT_EQ(c.reply(), "221 2.0.0 Bye");
  const std::string l = logs_after_disconnect();
  EXPECT_NE(l.find("connect from b.clients.test[127.0.0.168]\n"), std::string::npos) << l;
  EXPECT_NE(l.find("NOQUEUE: reject: RCPT from b.clients.test[127.0.0.168]: 554 5.7.1 <x@dest.example>: Relay access denied;"),
            std::string::npos) << l;
}

TEST_F(ClientNameTest, Ipv6ClientIsConfirmedByAaaa) {
  ServerSettings s = named();
  s.listener.address = config::Endpoint{"::1", 0};
  s.listener.allow_networks = {*config::Cidr::parse("::1/128")};
  const Committed m = one_message("::1", std::move(s));
  EXPECT_EQ(m.data.rfind("Received: from client.test (exchange.clients.test [IPv6:::1])\r\n", 0), 0u) << m.data;
  const std::string l = logs_after_disconnect();
  EXPECT_EQ(l.rfind("connect from exchange.clients.test[::1]\n", 0), 0u) << l;
}

TEST_F(ClientNameTest, ReverseLookupOffAsksNothingAndNamesNobody) {
  ServerSettings s = named();
  s.reverse_lookup = false;  // server.reverse_lookup = false
  const Committed m = one_message("127.0.0.161", std::move(s));
  EXPECT_EQ(m.data.rfind("Received: from client.test (unknown [127.0.0.161])\r\n", 0), 0u) << m.data;
  EXPECT_EQ(m.envelope.client_name, "unknown");
  const std::string l = logs_after_disconnect();
  EXPECT_EQ(l.rfind("connect from unknown[127.0.0.161]\n", 0), 0u) << l;
  EXPECT_EQ(counting_->asked.load(), 0);
}

TEST_F(ClientNameTest, GreetingWaitsAtMostTheBoundForAServerThatDoesNotAnswer) {
  // 165.0.0.127.in-addr.arpa. is delegated to the dead server: libunbound gives up only after its
  // retries (~0.6 s, each capped at the world's 300 ms RTT ceiling), later than this 200 ms bound.
  const auto bound = std::chrono::milliseconds(200);
  const auto start_at = std::chrono::steady_clock::now();
  Client c(start(named(bound)), "127.0.0.165");
  EXPECT_EQ(c.reply(), "220 relay.test ESMTP danerelay");
  const auto waited = std::chrono::steady_clock::now() - start_at;
  EXPECT_GE(waited, bound - std::chrono::milliseconds(5));
  EXPECT_LT(waited, std::chrono::seconds(2));
  c.send("QUIT\r\n");
  EXPECT_EQ(c.reply(), "221 2.0.0 Bye");
  const std::string l = logs_after_disconnect();
  EXPECT_EQ(l.rfind("127.0.0.165: reverse lookup failed: timeout (no answer within 200 ms)\n"
                    "connect from unknown[127.0.0.165]\n", 0), 0u) << l;
}

TEST_F(ClientNameTest, ALookupInProgressDelaysNoOtherSession) {
  const tcp::endpoint server = start(named());
  Client slow(server, "127.0.0.165");  // its PTR lookup takes ~0.6 s (dead server), bound 5 s
  const auto start_at = std::chrono::steady_clock::now();
  Client fast(server, "127.0.0.161");
  EXPECT_EQ(fast.reply(), "220 relay.test ESMTP danerelay");
  const auto fast_wait = std::chrono::steady_clock::now() - start_at;
  EXPECT_FALSE(slow.pending_data()) << "the slow client's greeting came first";
  EXPECT_EQ(slow.reply(), "220 relay.test ESMTP danerelay");
  EXPECT_LT(fast_wait, std::chrono::steady_clock::now() - start_at);
  const std::string l = logs();
  const auto fast_line = l.find("connect from exchange.clients.test[127.0.0.161]");
  const auto slow_line = l.find("connect from unknown[127.0.0.165]");
  ASSERT_NE(fast_line, std::string::npos) << l;
  ASSERT_NE(slow_line, std::string::npos) << l;
  EXPECT_LT(fast_line, slow_line) << l;
  EXPECT_NE(l.find("127.0.0.165: reverse lookup failed: servfail"), std::string::npos) << l;
}


// ---- PROXY protocol listeners (issue 12 §4; smtp/server.hpp) ----------------------------------
// The test client plays the balancer: it connects from 127.0.0.1 (proxy_from) and writes the
// header haproxy would write, naming a client it is not.

// A v2 PROXY header (proxy-protocol.txt §2.2) for TCP from `source`:`sport` to 127.0.0.1:25 (IPv4
// or IPv6 by the address), or LOCAL (a health check) when `source` is empty.
std::string proxy_v2(const std::string& source = {}, std::uint16_t sport = 40000) {
  std::string h("\r\n\r\n\0\r\nQUIT\n", 12);
  if (source.empty()) return h + std::string("\x20\x00\x00\x00", 4);
  const auto a = asio::ip::make_address(source);
  std::string addresses;
  if (a.is_v4()) {
    h += std::string("\x21\x11\x00\x0c", 4);
    const auto b = a.to_v4().to_bytes();
    const auto d = asio::ip::make_address_v4("127.0.0.1").to_bytes();
    addresses.append(b.begin(), b.end());
    addresses.append(d.begin(), d.end());
  } else {
    h += std::string("\x21\x21\x00\x24", 4);
    const auto b = a.to_v6().to_bytes();
    const auto d = asio::ip::make_address_v6("::1").to_bytes();
    addresses.append(b.begin(), b.end());
    addresses.append(d.begin(), d.end());
  }
  addresses += static_cast<char>(sport >> 8);
  addresses += static_cast<char>(sport & 0xff);
  addresses += std::string("\x00\x19", 2);
  return h + addresses;
}

class ProxyListenerTest : public ServerTest {
 protected:
  // A listener behind the balancer 127.0.0.1 that lets 192.0.2.0/24 and 2001:db8::/32 relay.
  ServerSettings proxied() {
    ServerSettings s = settings();
    s.listener.proxy_protocol = true;
    s.listener.proxy_from = {*config::Cidr::parse("127.0.0.1/32")};
    s.listener.allow_networks = {*config::Cidr::parse("192.0.2.0/24"), *config::Cidr::parse("2001:db8::/32")};
    return s;
  }

  // The log once it holds `text` (a session logs after its client saw the last reply); bounded.
  std::string logs_with(const std::string& text) {
    for (int i = 0; i < 500; ++i) {  // ≤ 5 s
      const std::string l = logs();
      if (l.find(text) != std::string::npos) return l;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return logs();
  }

  // MAIL + RCPT; the RCPT reply.
  static std::string rcpt(Client& c) {
    c.send("MAIL FROM:<a@client.test>\r\n");
    EXPECT_EQ(c.reply(), "250 2.1.0 Ok");
    c.send("RCPT TO:<rcpt@dest.example>\r\n");
    return c.reply();
  }
};

// Watched failing before the accept path read headers: the header bytes were a bad command, and
// the client was the balancer 127.0.0.1.
TEST_F(ProxyListenerTest, V1HeaderNamesTheClientForAllowListReceivedAndLogs) {
  Client c(start(proxied()));
  c.send("PROXY TCP4 192.0.2.7 127.0.0.1 40000 25\r\n");
  hello(c);
  begin_message(c);
  c.send("Subject: hi\r\n\r\nbody\r\n.\r\n");
  EXPECT_EQ(c.reply().substr(0, 30), "250 2.0.0 Ok: queued as 000000");
  c.send("QUIT\r\n");
  EXPECT_EQ(c.reply(), "221 2.0.0 Bye");
  const auto msgs = store_->messages();
  ASSERT_EQ(msgs.size(), 1u);
  EXPECT_EQ(msgs[0].data.rfind("Received: from client.test (unknown [192.0.2.7])\r\n", 0), 0u) << msgs[0].data;
  EXPECT_EQ(msgs[0].envelope.client_address, "192.0.2.7");
  const auto l = logs_with("disconnect from");
  EXPECT_NE(l.find("connect from unknown[192.0.2.7]"), std::string::npos) << l;
  EXPECT_NE(l.find(": client=unknown[192.0.2.7]\n"), std::string::npos) << l;
  EXPECT_EQ(l.find("[127.0.0.1]"), std::string::npos) << l;
}

TEST_F(ProxyListenerTest, V2HeaderOutsideAllowNetworksIsRefusedAndV6InsideRelays) {
  const auto ep = start(proxied());
  {
    Client c(ep);
    c.send(proxy_v2("198.51.100.9"));
    hello(c);
    EXPECT_EQ(rcpt(c), "554 5.7.1 <rcpt@dest.example>: Relay access denied");
  }
  {
    Client c(ep);
    c.send(proxy_v2("2001:db8::5"));
    hello(c);
    EXPECT_EQ(rcpt(c), "250 2.1.5 Ok");
    c.send("DATA\r\n");
    ASSERT_EQ(c.reply(), "354 End data with <CR><LF>.<CR><LF>");
    c.send("Subject: v6\r\n\r\nbody\r\n.\r\n");
    EXPECT_EQ(c.reply().substr(0, 3), "250");
  }
  const auto msgs = store_->messages();
  ASSERT_EQ(msgs.size(), 1u);
  EXPECT_EQ(msgs[0].data.rfind("Received: from client.test (unknown [IPv6:2001:db8::5])\r\n", 0), 0u) << msgs[0].data;
  const auto l = logs_with("client=unknown[2001:db8::5]");
  EXPECT_NE(l.find("NOQUEUE: reject: RCPT from unknown[198.51.100.9]: 554 5.7.1"), std::string::npos) << l;
  EXPECT_NE(l.find("client=unknown[2001:db8::5]"), std::string::npos) << l;
}

// No greeting and no parsing for a peer that is not a balancer, even with a valid header.
TEST_F(ProxyListenerTest, PeerOutsideProxyFromIsClosedWithoutGreeting) {
  auto s = proxied();
  s.listener.proxy_from = {*config::Cidr::parse("127.0.0.2/32")};
  Client c(start(s));
  c.send("PROXY TCP4 192.0.2.7 127.0.0.1 40000 25\r\n");
  EXPECT_TRUE(c.closed());
  const auto l = logs_with("refused");
  EXPECT_NE(l.find("listener test: connection from 127.0.0.1 refused: not in proxy_from"), std::string::npos) << l;
  EXPECT_EQ(l.find("connect from"), std::string::npos) << l;
  EXPECT_EQ(l.find("192.0.2.7"), std::string::npos) << l;
}

TEST_F(ProxyListenerTest, MalformedHeaderClosesWithTheParsersReason) {
  Client c(start(proxied()));
  c.send("EHLO client.test\r\n");
  EXPECT_TRUE(c.closed());
  const auto l = logs_with("disconnecting");
  EXPECT_NE(l.find("listener test: PROXY header from 127.0.0.1: "), std::string::npos) << l;
  EXPECT_EQ(l.find("connect from"), std::string::npos) << l;
  EXPECT_TRUE(store_->messages().empty());
}

TEST_F(ProxyListenerTest, SlowHeaderTimesOut) {
  auto s = proxied();
  s.limits.command_timeout = std::chrono::milliseconds(300);
  Client c(start(s));
  const auto begin = std::chrono::steady_clock::now();
  c.send("PROXY TCP4 ");
  EXPECT_TRUE(c.closed());
  EXPECT_LT(std::chrono::steady_clock::now() - begin, std::chrono::seconds(5));
  const auto l = logs_with("disconnecting");
  EXPECT_NE(l.find("listener test: PROXY header from 127.0.0.1: timeout after 11 bytes of the header; disconnecting"),
            std::string::npos)
      << l;
}

// The client's own bytes stay for the session: a header and a pipelined EHLO in one segment.
TEST_F(ProxyListenerTest, HeaderFollowedByPipelinedEhloInOneSegment) {
  Client c(start(proxied()));
  c.send(proxy_v2("192.0.2.8") + "EHLO client.test\r\nMAIL FROM:<a@client.test>\r\nRCPT TO:<rcpt@dest.example>\r\n");
  EXPECT_EQ(c.reply(), "220 relay.test ESMTP danerelay");
  EXPECT_EQ(c.reply().substr(0, 18), "250-relay.test\n250");
  EXPECT_EQ(c.reply(), "250 2.1.0 Ok");
  EXPECT_EQ(c.reply(), "250 2.1.5 Ok");
}

// RFC 8314 §3.3 behind a balancer: the header first, then the TLS handshake.
TEST_F(ProxyListenerTest, ImplicitTlsListenerHandshakesAfterTheV2Header) {
  auto s = proxied();
  s.listener.tls = config::Listener::Tls::implicit;
  Client c(start(s));
  c.send(proxy_v2("192.0.2.9"));
  ASSERT_TRUE(c.starttls());
  hello(c);
  EXPECT_EQ(rcpt(c), "250 2.1.5 Ok");
  const auto l = logs_with("connect from");
  EXPECT_NE(l.find("connect from unknown[192.0.2.9]"), std::string::npos) << l;
}

// A health check (v2 LOCAL) names no client: the balancer is the client, not allowed to relay.
TEST_F(ProxyListenerTest, LocalHeaderLeavesTheBalancerAsClient) {
  Client c(start(proxied()));
  c.send(proxy_v2());
  hello(c);
  EXPECT_EQ(rcpt(c), "554 5.7.1 <rcpt@dest.example>: Relay access denied");
  const auto l = logs_with("NOQUEUE");
  EXPECT_NE(l.find("connect from unknown[127.0.0.1]"), std::string::npos) << l;
}

// Every connection comes from the one balancer: the per-client limit counts the header's client.
TEST_F(ProxyListenerTest, PerClientLimitCountsTheRealClient) {
  auto s = proxied();
  s.limits.max_connections_per_client = 1;
  const auto ep = start(s);
  Client first(ep);
  first.send(proxy_v2("192.0.2.7"));
  EXPECT_EQ(first.reply(), "220 relay.test ESMTP danerelay");
  Client second(ep);
  second.send(proxy_v2("192.0.2.7", 40001));
  EXPECT_EQ(second.reply(), "421 4.7.0 relay.test Error: too many connections from 192.0.2.7");
  EXPECT_TRUE(second.closed());
  Client other(ep);
  other.send(proxy_v2("192.0.2.8"));
  EXPECT_EQ(other.reply(), "220 relay.test ESMTP danerelay");
}

// Password guessing through the balancer: the failures count against the client the header
// names, so one guesser behind the balancer does not lock everyone else out.
TEST_F(ProxyListenerTest, AuthFailuresCountTheRealClient) {
  auto s = proxied();
  s.listener.auth = config::Listener::Auth::optional;
  s.limits.max_auth_failures_per_client = 1;
  s.auth_failures = std::make_shared<AuthFailureLimiter>(1, 64);
  const auto ep = start(s);
  {
    Client c(ep);
    c.send(proxy_v2("198.51.100.9"));
    tls_hello(c);
    c.send("AUTH PLAIN " + plain_auth("alice", "guess") + "\r\n");
    EXPECT_EQ(c.reply(), "421 4.7.0 relay.test Error: too many AUTH failures");
    EXPECT_TRUE(c.closed());
  }
  {
    Client c(ep);  // another client behind the same balancer
    c.send(proxy_v2("198.51.100.10"));
    tls_hello(c);
    c.send("AUTH PLAIN " + plain_auth("alice", "secret") + "\r\n");
    EXPECT_EQ(c.reply(), "235 2.7.0 Authentication successful");
  }
  EXPECT_EQ(s.auth_failures->failures("198.51.100.9"), 1u);
  EXPECT_EQ(s.auth_failures->failures("127.0.0.1"), 0u);
  const auto l = logs_with("too many AUTH failures (1)");
  EXPECT_NE(l.find("too many AUTH failures (1) from unknown[198.51.100.9] for service test"), std::string::npos) << l;
}

// Connections that never send their header hold slots of max_connections: no more than that.
TEST_F(ProxyListenerTest, MaxConnectionsCountsConnectionsAwaitingTheirHeader) {
  auto s = proxied();
  auto tracker = std::make_shared<ConnectionTracker>(2, 10);
  s.tracker = tracker;
  const auto ep = start(s);
  Client silent1(ep);
  Client silent2(ep);
  for (int i = 0; i < 500 && tracker->total() < 2; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(tracker->total(), 2u);
  Client third(ep);
  EXPECT_EQ(third.reply(), "421 4.7.0 relay.test Error: too many connections");
  EXPECT_TRUE(third.closed());
  silent1.send(proxy_v2("192.0.2.7"));
  EXPECT_EQ(silent1.reply(), "220 relay.test ESMTP danerelay");
  EXPECT_EQ(tracker->total(), 2u);
  EXPECT_EQ(tracker->from("192.0.2.7"), 1u);
  EXPECT_EQ(tracker->from("127.0.0.1"), 0u);
}

// stop() also ends connections that are still waiting for their header.
TEST_F(ProxyListenerTest, StopClosesConnectionsAwaitingTheirHeader) {
  Client c(start(proxied()));
  c.send("PROXY TCP4 ");
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  const auto begin = std::chrono::steady_clock::now();
  servers_.back()->stop();
  EXPECT_TRUE(c.closed());
  EXPECT_LT(std::chrono::steady_clock::now() - begin, std::chrono::seconds(5));
}

// A reload (Server::update) turns the PROXY protocol on and off for the connections after it.
TEST_F(ProxyListenerTest, UpdateTurnsProxyProtocolOnAndOffForNewConnections) {
  auto plain = proxied();
  plain.listener.proxy_protocol = false;
  plain.listener.proxy_from.clear();
  const auto ep = start(plain);
  {
    Client c(ep);
    EXPECT_EQ(c.reply(), "220 relay.test ESMTP danerelay");
  }
  servers_.back()->update(proxied());
  {
    Client c(ep);
    c.send(proxy_v2("192.0.2.7"));
    hello(c);
    EXPECT_EQ(rcpt(c), "250 2.1.5 Ok");
  }
  servers_.back()->update(plain);
  {
    Client c(ep);
    hello(c);
    EXPECT_EQ(rcpt(c), "554 5.7.1 <rcpt@dest.example>: Relay access denied");
  }
  const auto l = logs_with("NOQUEUE");
  EXPECT_NE(l.find("connect from unknown[192.0.2.7]"), std::string::npos) << l;
  EXPECT_NE(l.find("NOQUEUE: reject: RCPT from unknown[127.0.0.1]"), std::string::npos) << l;
}

// The client name is looked up for the header's client (127.0.0.161 is exchange.clients.test in
// the test world), not for the balancer.
TEST_F(ClientNameTest, ProxiedClientIsTheOneNamed) {
  auto s = named();
  s.listener.proxy_protocol = true;
  s.listener.proxy_from = {*config::Cidr::parse("127.0.0.1/32")};
  Client c(start(s), "127.0.0.1");
  c.send("PROXY TCP4 127.0.0.161 127.0.0.1 40000 25\r\n");
  hello(c);
  begin_message(c);
  c.send("Subject: hi\r\n\r\nbody\r\n.\r\n");
  EXPECT_EQ(c.reply().substr(0, 3), "250");
  const auto msgs = store_->messages();
  ASSERT_EQ(msgs.size(), 1u);
  EXPECT_EQ(msgs[0].data.rfind("Received: from client.test (exchange.clients.test [127.0.0.161])\r\n", 0), 0u)
      << msgs[0].data;
}

}  // namespace
}  // namespace danerelay::smtp
