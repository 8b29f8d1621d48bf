// tests/relay/relay_fixture.hpp — shared set-up for the whole-relay tests (relay_e2e_test.cpp,
// crash_test.cpp): the signed test world, certificates for the relay and for the sinks that play
// the destination MX hosts (port 25 on the world's loopback addresses: needs root, which CI has;
// the tests skip otherwise), a danerelay.toml for the daemon, and the daemon as a child process.
#pragma once

#include <crypt.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>

#include <gtest/gtest.h>

#include <csignal>

#include "tests/support/daemon.hpp"
#include "tests/support/pki.hpp"
#include "tests/support/smtp_injector.hpp"
#include "tests/support/smtp_sink.hpp"
#include "tests/support/temp_dir.hpp"
#include "tests/support/world.hpp"

namespace danerelay::relay::e2e {

namespace fs = std::filesystem;

inline std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// A crypt(3) hash of `password` (yescrypt, libcrypt's default prefix), as `mkpasswd` makes.
inline std::string crypt_hash(const std::string& password) {
  char salt[CRYPT_GENSALT_OUTPUT_SIZE];
  if (crypt_gensalt_rn("$y$", 0, nullptr, 0, salt, sizeof salt) == nullptr) throw std::runtime_error("crypt_gensalt");
  crypt_data data{};
  const char* h = crypt_rn(password.c_str(), salt, &data, sizeof data);
  if (h == nullptr || h[0] == '*') throw std::runtime_error("crypt_rn");
  return h;
}

// The world, the PKI and file paths, made once per test binary (≈0.2 s).
struct Shared {
  testsupport::TempDir dir{"danerelay-e2e"};
  testsupport::World world;
  std::map<std::string, fs::path> chains;  // MX host → chain file (leaf + CA)
  fs::path relay_chain;
  fs::path relay_key;

  Shared() : world(testsupport::build_world(dir.path() / "world")) {
    testsupport::Pki pki(dir.path() / "pki");
    for (const auto& [host, cert] : world.host_certs) chains[host] = pki.write_chain(host + ".chain.pem", {&cert, &world.ca});
    testsupport::Pki::LeafOptions lo;
    lo.common_name = "relay.danerelay.test";
    lo.dns_names = {"relay.danerelay.test"};
    lo.issuer = &world.ca;
    const auto relay = pki.make_leaf(lo);
    relay_chain = pki.write_chain("relay.chain.pem", {&relay, &world.ca});
    relay_key = relay.key_file;
  }

  // A sink for an MX host of the world at `address`:25, presenting `cert_host`'s chain
  // ("" = no STARTTLS). Null only when port 25 cannot be bound for lack of privilege (not root);
  // every other failure (EADDRINUSE, a broken test PKI) throws and fails the test.
  std::unique_ptr<testsupport::SmtpSink> sink(const std::string& address, const std::string& cert_host,
                                              testsupport::SinkOptions o = {}) {
    o.address = address;
    o.port = 25;
    if (cert_host.empty()) {
      o.starttls = false;
    } else {
      o.chain_file = chains.at(cert_host);
      o.key_file = world.host_certs.at(cert_host).key_file;
    }
    try {
      return std::make_unique<testsupport::SmtpSink>(o);
    } catch (const testsupport::PrivilegedPortDenied& e) {
      std::cerr << "sink " << address << ":25: " << e.what() << "\n";
      return nullptr;
    }
  }
};

// One daemon's files: its own state directory, ports and configuration.
struct Instance {
  fs::path dir;
  fs::path config;
  fs::path log;
  fs::path state;
  std::uint16_t relay_port = 0;        // 127.0.0.1, allow_networks 127.0.0.0/8, STARTTLS offered
  std::uint16_t submission_port = 0;   // 127.0.0.1, nobody allowed without AUTH, STARTTLS before AUTH

  // `extra` is appended to the configuration (e.g. a [queue] or [limits] table); "@RELAY_PORT@"
  // and "@SUBMISSION_PORT@" in it become this instance's ports (a route back to itself, L-01).
  Instance(const Shared& shared, const fs::path& where, std::string extra) : dir(where) {
    fs::create_directories(dir);
    state = dir / "state";
    fs::create_directories(state);
    config = dir / "danerelay.toml";
    log = dir / "danerelay.log";
    relay_port = testsupport::free_port();
    do submission_port = testsupport::free_port();
    while (submission_port == relay_port);
    const fs::path credentials = dir / "passwd";
    {
      std::ofstream c(credentials);
      c << "# test users\nalice:" << crypt_hash("wonderland") << "\n";
    }
    fs::permissions(credentials, fs::perms::owner_read | fs::perms::owner_write);
    for (const auto& [name, port] : {std::pair{std::string("@RELAY_PORT@"), relay_port},
                                     std::pair{std::string("@SUBMISSION_PORT@"), submission_port}}) {
      for (auto at = extra.find(name); at != std::string::npos; at = extra.find(name, at)) {
        extra.replace(at, name.size(), std::to_string(port));
      }
    }
    std::string text = read_file(shared.world.config_file);
    // The world's [server] table, with this instance's state directory and credentials.
    const auto server = text.find("[server]\n");
    const auto state_line = text.find("state_dir = ", server);
    const auto state_end = text.find('\n', state_line);
    text.replace(state_line, state_end - state_line,
                 "state_dir = \"" + state.string() + "\"\ncredentials_file = \"" + credentials.string() + "\"");
    std::ostringstream c;
    c << text << "\n[tls.server]\ncert_file = \"" << shared.relay_chain.string() << "\"\nkey_file = \""
      << shared.relay_key.string() << "\"\n\n"
      << "[[listener]]\nname = \"relay\"\naddress = \"127.0.0.1:" << relay_port
      << "\"\ntls = \"starttls\"\nauth = \"none\"\nallow_networks = [\"127.0.0.0/8\", \"::1/128\"]\n\n"
      << "[[listener]]\nname = \"submission\"\naddress = \"127.0.0.1:" << submission_port
      << "\"\ntls = \"starttls\"\nrequire_tls = true\nauth = \"optional\"\nallow_networks = []\n\n"
      << "[delivery]\nconnect_timeout = \"5s\"\ngreeting_timeout = \"10s\"\nconnection_cache_time = \"1s\"\n\n"
      << extra << "\n";
    std::ofstream(config) << c.str();
  }
};

// A test with one `danerelay run` of its own over the binary's Shared world (the suite sets the
// global it points at): start it with extra configuration, stop it with SIGTERM at the end (exit 0
// expected; the log's tail printed when the test failed), submit through the relay listener.
class DaemonTest : public ::testing::Test {
 protected:
  explicit DaemonTest(Shared*& shared, std::string prefix) : shared_(shared), prefix_(std::move(prefix)) {}

  void start(const std::string& extra) {
    using namespace std::chrono_literals;
    static int counter = 0;
    instance_ = std::make_unique<Instance>(*shared_, shared_->dir.path() / (prefix_ + std::to_string(++counter)), extra);
    daemon_ = std::make_unique<testsupport::Daemon>(DANERELAY_BINARY, instance_->config, instance_->log);
    ASSERT_TRUE(daemon_->wait_listening("127.0.0.1", instance_->submission_port, 20s)) << daemon_->log();
  }

  void TearDown() override {
    using namespace std::chrono_literals;
    if (daemon_) {
      daemon_->signal(SIGTERM);
      EXPECT_EQ(daemon_->wait(20s), 0) << tail(daemon_->log());
      if (HasFailure()) std::cerr << "---- daemon log (last 8 KB) ----\n" << tail(daemon_->log());
    }
  }

  static std::string tail(const std::string& log) { return log.size() > 8192 ? log.substr(log.size() - 8192) : log; }

  // Through the relay listener (an allowed network, no AUTH); the reply to the final ".".
  std::string submit(const std::string& to, const std::string& subject, const std::string& text) {
    testsupport::SmtpInjector c("127.0.0.1", instance_->relay_port);
    c.command("EHLO exchange.org.test");
    auto r = c.send("sender@danetta.test", {to},
                    "From: <sender@danetta.test>\r\nTo: <" + to + ">\r\nSubject: " + subject + "\r\nMessage-ID: <" + subject +
                        "@org.test>\r\n\r\n" + text + "\r\n");
    c.quit();
    return r;
  }

  Shared*& shared_;
  std::string prefix_;
  std::unique_ptr<Instance> instance_;
  std::unique_ptr<testsupport::Daemon> daemon_;
};

}  // namespace danerelay::relay::e2e
