// tests/support/demo_main.cpp — `danerelay-demo DIR`: the quick-start demonstration of the working
// smarthost. scripts/demo.sh runs it as root in a network namespace that has only loopback.
//
//   1. builds the signed test world in DIR/world (tests/support/world.hpp) and writes
//      DIR/danerelay.toml: the world's DNS settings + a relay listener on 127.0.0.1:2525 (clients in
//      127.0.0.0/8 may relay) + a listener on 127.0.0.1:2526 that lets nobody relay without AUTH;
//   2. starts in-process SMTP sinks playing the destination MX hosts on port 25 of the world's
//      loopback addresses (one of twomx.test's two MX hosts presents the wrong certificate);
//   3. starts `danerelay -c DIR/danerelay.toml run` (log: DIR/danerelay.log);
//   4. submits mail as an organisation's mail server would (EHLO, STARTTLS, MAIL/RCPT/DATA), and
//      tries to relay from a client that is not allowed to;
//   5. waits (bounded) for the deliveries, then prints the daemon's log, `danerelay queue list`,
//      what each sink received, and `danerelay check --connect twomx.test`;
//   6. stops the daemon with SIGTERM.
// Exit status 0 when everything the demo shows happened; 1 (with the reason) otherwise.
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "tests/metrics/http_client.hpp"
#include "tests/support/daemon.hpp"
#include "tests/support/pki.hpp"
#include "tests/support/smtp_injector.hpp"
#include "tests/support/smtp_sink.hpp"
#include "tests/support/world.hpp"

#ifndef DANERELAY_BINARY
#error "DANERELAY_BINARY (the path of the danerelay executable) must be defined"
#endif

namespace {

namespace fs = std::filesystem;
namespace ts = danerelay::testsupport;
using namespace std::chrono_literals;

constexpr std::uint16_t kRelayPort = 2525;       // allow_networks 127.0.0.0/8
constexpr std::uint16_t kSubmissionPort = 2526;  // allow_networks []: relaying needs AUTH
constexpr std::uint16_t kMetricsPort = 9425;     // [metrics]: /metrics, /healthz/*, the posture page
const std::string kSender = "sender@danetta.test";

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

void heading(const std::string& title) { std::cout << "\n== " << title << "\n" << std::flush; }

// The world's configuration with the demo's own state directory, listeners, relay certificate and
// fast retries (a real deployment keeps the defaults: 5m … 4000s, delay notice after 4h).
std::string make_config(const ts::World& world, const fs::path& dir, const fs::path& relay_chain,
                        const fs::path& relay_key) {
  std::string text = read_file(world.config_file);
  const auto server = text.find("[server]\n");
  const auto state_line = text.find("state_dir = ", server);
  if (server == std::string::npos || state_line == std::string::npos) {
    throw std::runtime_error("no [server] state_dir in " + world.config_file.string());
  }
  const auto state_end = text.find('\n', state_line);
  text.replace(state_line, state_end - state_line, "state_dir = \"" + (dir / "state").string() + "\"");
  std::ostringstream c;
  c << text << "\n"
    << "[tls.server]\ncert_file = \"" << relay_chain.string() << "\"\nkey_file = \"" << relay_key.string() << "\"\n\n"
    << "# The organisation's mail servers (127.0.0.0/8 here) relay through this listener without AUTH.\n"
    << "[[listener]]\nname = \"relay\"\naddress = \"127.0.0.1:" << kRelayPort
    << "\"\ntls = \"starttls\"\nauth = \"none\"\nallow_networks = [\"127.0.0.0/8\", \"::1/128\"]\n\n"
    << "# Nobody may relay through this one without AUTH (and there are no AUTH users).\n"
    << "[[listener]]\nname = \"closed\"\naddress = \"127.0.0.1:" << kSubmissionPort
    << "\"\ntls = \"starttls\"\nauth = \"none\"\nallow_networks = []\n\n"
    << "[delivery]\nconnect_timeout = \"5s\"\ngreeting_timeout = \"10s\"\nconnection_cache_time = \"0s\"\n\n"
    << "# Demo timing: retry after 2 s, delay notice after 3 s.\n"
    << "[queue]\nmin_backoff = \"2s\"\nmax_backoff = \"2s\"\ndelay_warning = \"3s\"\n\n"
    << "# Prometheus /metrics and the posture page at http://127.0.0.1:" << kMetricsPort << "/ (loopback only).\n"
    << "[metrics]\nenabled = true\naddress = \"127.0.0.1:" << kMetricsPort << "\"\n";
  return c.str();
}

struct SinkSpec {
  std::string label;      // e.g. "mx1.twomx.test 127.0.0.131"
  std::string note;       // what it presents
  std::unique_ptr<ts::SmtpSink> sink;
};

std::string message(const std::string& to, const std::string& subject) {
  return "From: Sender <" + kSender + ">\r\nTo: <" + to + ">\r\nSubject: " + subject +
         "\r\nMessage-ID: <" + subject + "@danetta.test>\r\n\r\nHello from the danerelay demo.\r\n";
}

// `danerelay -c CONFIG ARGS`: stdout and stderr, and the exit status.
std::pair<int, std::string> cli(const fs::path& config, const std::string& args) {
  const std::string cmd = std::string(DANERELAY_BINARY) + " -c '" + config.string() + "' " + args + " 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  if (p == nullptr) return {-1, "popen failed\n"};
  std::string out;
  char buf[4096];
  while (std::size_t n = std::fread(buf, 1, sizeof buf, p)) out.append(buf, n);
  const int st = ::pclose(p);
  return {WIFEXITED(st) ? WEXITSTATUS(st) : -1, out};
}

std::string indent(const std::string& text, const std::string& by = "   ") {
  std::string out;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) out += by + l + "\n";
  return out;
}

std::string first_line(const std::string& reply) { return reply.substr(0, reply.find('\r')); }

int run(const fs::path& dir) {
  const auto started = std::chrono::steady_clock::now();
  std::vector<std::string> problems;

  // 1. World, relay certificate, configuration.
  fs::create_directories(dir / "state");
  const ts::World world = ts::build_world(dir / "world");
  ts::Pki pki(dir / "pki");
  std::map<std::string, fs::path> chains;  // MX host → chain file (leaf + CA)
  for (const auto& [host, cert] : world.host_certs) chains[host] = pki.write_chain(host + ".chain.pem", {&cert, &world.ca});
  ts::Pki::LeafOptions lo;
  lo.common_name = "relay.danerelay.test";
  lo.dns_names = {"relay.danerelay.test"};
  lo.issuer = &world.ca;
  const ts::Cert relay_cert = pki.make_leaf(lo);
  const fs::path relay_chain = pki.write_chain("relay.chain.pem", {&relay_cert, &world.ca});
  const fs::path config = dir / "danerelay.toml";
  const fs::path log_file = dir / "danerelay.log";
  std::ofstream(config) << make_config(world, dir, relay_chain, relay_cert.key_file);

  heading("configuration");
  std::cout << "   signed test world: " << world.domains.size() << " domains under " << (dir / "world").string() << "\n"
            << "   config:            " << config.string() << "\n"
            << "   relay listener:    127.0.0.1:" << kRelayPort << " (STARTTLS; 127.0.0.0/8 may relay)\n"
            << "   closed listener:   127.0.0.1:" << kSubmissionPort << " (STARTTLS; nobody may relay without AUTH)\n";
  if (auto [rc, out] = cli(config, "check-config"); rc != 0) {
    std::cout << indent(out);
    std::cerr << "danerelay-demo: the generated configuration does not check (exit " << rc << ")\n";
    return 1;
  }

  // 2. Sinks playing the destination MX hosts on port 25.
  heading("destination MX hosts (in-process SMTP sinks on port 25)");
  std::vector<SinkSpec> sinks;
  auto add_sink = [&](const std::string& host, const std::string& address, const std::string& cert_host,
                      const std::string& note, bool essential) -> ts::SmtpSink* {
    ts::SinkOptions o;
    o.address = address;
    o.port = 25;
    o.hostname = host;
    if (cert_host.empty()) {
      o.starttls = false;
    } else {
      o.chain_file = chains.at(cert_host);
      o.key_file = world.host_certs.at(cert_host).key_file;
    }
    const std::string label = host + " [" + address + "]:25";
    try {
      sinks.push_back({label, note, std::make_unique<ts::SmtpSink>(o)});
      std::cout << "   " << label << "  " << note << "\n";
      return sinks.back().sink.get();
    } catch (const std::exception& e) {
      std::string why = e.what();
      why = why.substr(0, why.find(" ["));  // without Boost's source location
      std::cout << "   " << label << "  NOT STARTED: " << why << "\n";
      if (essential) throw std::runtime_error("cannot listen on [" + address + "]:25 (" + why + "): run as root");
      return nullptr;
    }
  };
  ts::SmtpSink* secure4 = add_sink("mx.secure.test", "127.0.0.11", "mx.secure.test", "STARTTLS, its own certificate (3 1 1 TLSA)", true);
  ts::SmtpSink* secure6 = add_sink("mx.secure.test", "::1", "mx.secure.test", "STARTTLS, its own certificate (3 1 1 TLSA)", false);
  ts::SmtpSink* twomx1 = add_sink("mx1.twomx.test", "127.0.0.131", "mx.danetta.test",
                                  "STARTTLS, the WRONG certificate (mx.danetta.test's): DANE must refuse it", true);
  ts::SmtpSink* twomx2 = add_sink("mx2.twomx.test", "127.0.0.132", "mx2.twomx.test", "STARTTLS, its own certificate", true);
  ts::SmtpSink* danetta = add_sink("mx.danetta.test", "127.0.0.141", "mx.danetta.test",
                                   "STARTTLS, CA-issued chain (2 0 1 TLSA); the sender's domain: gets notices", true);
  ts::SmtpSink* insecure = add_sink("mx.insecure.test", "127.0.0.31", "", "no STARTTLS (unsigned zone: plaintext allowed)", true);
  (void)twomx1;
  (void)twomx2;

  // 3. The daemon.
  heading("starting danerelay -c " + config.string() + " run");
  ts::Daemon daemon(DANERELAY_BINARY, config, log_file);
  if (!daemon.wait_listening("127.0.0.1", kRelayPort, 20s) || !daemon.wait_listening("127.0.0.1", kSubmissionPort, 5s)) {
    std::cerr << "danerelay-demo: the daemon did not start listening; its log (" << log_file.string() << "):\n"
              << daemon.log();
    return 1;
  }
  std::cout << "   listening on 127.0.0.1:" << kRelayPort << " and 127.0.0.1:" << kSubmissionPort << " (pid "
            << daemon.pid() << ", log " << log_file.string() << ")\n";

  // 4. Submissions, as the organisation's Exchange server would make them.
  // From 127.0.0.161, whose PTR (exchange.clients.test) is forward-confirmed in the world: the log
  // names the client as Postfix would; the closed-listener client below stays unknown[127.0.0.1].
  heading("submitting mail as exchange.org.test (127.0.0.161 → 127.0.0.1:" + std::to_string(kRelayPort) + ", STARTTLS)");
  struct Submitted {
    std::string rcpt;
    std::string qid;
    bool deliverable;
  };
  std::vector<Submitted> submitted;
  {
    ts::SmtpInjector c("127.0.0.1", kRelayPort, 10s, false, "127.0.0.161");
    std::cout << "   S: " << first_line(c.greeting()) << "\n";
    c.command("EHLO exchange.org.test");
    std::cout << "   C: STARTTLS → S: " << first_line(c.starttls()) << "\n";
    c.command("EHLO exchange.org.test");
    const std::vector<std::pair<std::string, bool>> rcpts = {
        {"user@secure.test", true}, {"user@twomx.test", true}, {"user@insecure.test", true}, {"user@bogus-ds.test", false}};
    for (const auto& [rcpt, deliverable] : rcpts) {
      const std::string reply = c.send(kSender, {rcpt}, message(rcpt, "demo-" + rcpt.substr(rcpt.find('@') + 1)));
      std::cout << "   <" << kSender << "> → <" << rcpt << ">: " << first_line(reply) << "\n";
      const std::string qid = ts::SmtpInjector::queued_as(reply);
      if (reply.rfind("250", 0) != 0 || qid.empty()) {
        problems.push_back("submission to " + rcpt + " was not accepted: " + first_line(reply));
        continue;
      }
      submitted.push_back({rcpt, qid, deliverable});
    }
    c.quit();
  }

  heading("a client trying to relay through the closed listener (127.0.0.1:" + std::to_string(kSubmissionPort) + ")");
  {
    ts::SmtpInjector c("127.0.0.1", kSubmissionPort, 10s);
    c.command("EHLO printer.org.test");
    c.starttls();
    c.command("EHLO printer.org.test");
    std::cout << "   C: MAIL FROM:<printer@org.test>   S: " << first_line(c.command("MAIL FROM:<printer@org.test>")) << "\n";
    const std::string r = c.command("RCPT TO:<someone@secure.test>");
    std::cout << "   C: RCPT TO:<someone@secure.test>  S: " << first_line(r) << "\n";
    if (r.rfind("554 5.7.1", 0) != 0) problems.push_back("relaying without permission was not refused: " + first_line(r));
    c.quit();
  }

  // 5. Wait (bounded) for the deliveries, the deferral of bogus-ds.test and its delay notice.
  heading("waiting for delivery (at most 15 s)");
  const auto deadline = std::chrono::steady_clock::now() + 15s;
  auto left = [&] {
    return std::max(std::chrono::milliseconds(0),
                    std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()));
  };
  for (const auto& s : submitted) {
    if (s.deliverable) {
      const bool ok = daemon.wait_log(s.qid + ": removed", left());
      std::cout << "   " << s.qid << " <" << s.rcpt << ">: " << (ok ? "delivered, removed from the queue" : "NOT delivered")
                << "\n";
      if (!ok) problems.push_back(s.rcpt + " (" + s.qid + ") was not delivered within 15 s");
    } else {
      const std::string attempt = s.qid + ": to=<" + s.rcpt + ">";
      bool deferred = daemon.wait_log(attempt, left());
      if (deferred) {  // that line says status=deferred
        const std::string log = daemon.log();
        const auto at = log.find(attempt);
        deferred = log.substr(at, log.find('\n', at) - at).find("status=deferred") != std::string::npos;
      }
      std::cout << "   " << s.qid << " <" << s.rcpt << ">: " << (deferred ? "deferred, stays in the queue" : "NO ATTEMPT LOGGED")
                << "\n";
      if (!deferred) problems.push_back(s.rcpt + " (" + s.qid + ") was not attempted");
      const bool notice = daemon.wait_log(s.qid + ": sender delay notification", left());
      std::cout << "   " << s.qid << ": delay notice to <" << kSender << "> " << (notice ? "queued" : "NOT SENT") << "\n";
      if (!notice) problems.push_back("no delay notice for " + s.qid);
      const bool arrived = notice && [&] {
        while (left() > 0ms) {
          if (danetta->stats().bodies() >= 1) return true;
          std::this_thread::sleep_for(20ms);
        }
        return danetta->stats().bodies() >= 1;
      }();
      std::cout << "   delay notice " << (arrived ? "delivered to mx.danetta.test" : "NOT DELIVERED to mx.danetta.test") << "\n";
      if (notice && !arrived) problems.push_back("the delay notice did not reach mx.danetta.test");
    }
  }
  std::this_thread::sleep_for(200ms);  // let the log catch up with the last delivery's lines

  heading("danerelay log (" + log_file.string() + ")");
  std::cout << daemon.log();

  heading("danerelay -c " + config.string() + " queue list");
  {
    auto [rc, out] = cli(config, "queue list");
    std::cout << out;
    if (rc != 0) problems.push_back("`danerelay queue list` exited " + std::to_string(rc));
  }

  heading("what the MX hosts received");
  for (const auto& s : sinks) {
    const ts::SinkStats st = s.sink->stats();
    int tls = 0, plain = 0;
    for (const auto& t : st.transactions) {
      if (t.body) ++(t.tls ? tls : plain);
    }
    std::ostringstream line;
    line << st.connections << (st.connections == 1 ? " connection" : " connections") << ", " << st.tls_handshakes
         << " TLS handshake" << (st.tls_handshakes == 1 ? "" : "s");
    if (st.tls_failures > 0) line << " (+" << st.tls_failures << " failed)";
    line << "; " << tls + plain << (tls + plain == 1 ? " message" : " messages");
    if (tls + plain > 0) line << (plain == 0 ? " over TLS" : tls == 0 ? " in plaintext" : " (mixed TLS/plaintext)");
    for (const auto& t : st.transactions) {
      if (t.body && t.mail.rfind("<>", 0) == 0) {
        line << " [notice from <>: " << (t.body->find("Action: delayed") != std::string::npos ? "delayed" : "DSN") << "]";
      }
    }
    std::cout << "   " << s.label << ": " << line.str() << "\n";
  }
  if (secure4->stats().bodies() + (secure6 ? secure6->stats().bodies() : 0) != 1) {
    problems.push_back("mx.secure.test did not receive exactly one message");
  }
  if (twomx1->stats().bodies() != 0) problems.push_back("mx1.twomx.test (wrong certificate) received a message");
  if (twomx2->stats().bodies() != 1) problems.push_back("mx2.twomx.test did not receive exactly one message");
  if (insecure->stats().bodies() != 1) problems.push_back("mx.insecure.test did not receive exactly one message");

  // What an operator asks the relay about a destination: `danerelay check`, with one STARTTLS
  // handshake per MX address (no MAIL). twomx.test: mx1 fails DANE, mx2 works → exit 0, a warning.
  heading("danerelay -c " + config.string() + " check --connect twomx.test");
  {
    auto [rc, out] = cli(config, "check --connect --no-self-test twomx.test");
    std::cout << out << "   exit status " << rc << "\n";
    if (rc != 0) problems.push_back("`danerelay check --connect twomx.test` exited " + std::to_string(rc));
  }

  // The posture page and the counters behind it, as a monitoring system and an operator see them.
  heading("posture page and metrics (http://127.0.0.1:" + std::to_string(kMetricsPort) + "/, /metrics)");
  {
    const auto page = ts::http_get("127.0.0.1", kMetricsPort, "/");
    const auto metrics = ts::http_get("127.0.0.1", kMetricsPort, "/metrics");
    if (page.status != 200 || metrics.status != 200) {
      problems.push_back("the metrics listener answered / with " + std::to_string(page.status) + " and /metrics with " +
                         std::to_string(metrics.status));
    } else {
      const fs::path saved = dir / "posture.html";
      std::ofstream(saved, std::ios::binary) << page.body;
      std::cout << "   posture page (" << page.body.size() << " bytes, inline SVG, no scripts) saved as " << saved.string()
                << ": open it in a browser\n";
      std::istringstream lines(metrics.body);
      for (std::string line; std::getline(lines, line);) {
        if (line.rfind("danerelay_dane_result_total", 0) == 0 || line.rfind("danerelay_deliveries_total", 0) == 0 ||
            line.rfind("danerelay_plaintext_deliveries_total", 0) == 0) {
          std::cout << "   " << line << "\n";
        }
      }
    }
  }

  // 6. Stop.
  heading("stopping danerelay (SIGTERM)");
  daemon.signal(SIGTERM);
  const int rc = daemon.wait(20s);
  std::cout << "   exit status " << rc << "\n";
  if (rc != 0) problems.push_back("danerelay exited with status " + std::to_string(rc) + " after SIGTERM");

  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  if (!problems.empty()) {
    heading("DEMO FAILED");
    for (const auto& p : problems) std::cout << "   " << p << "\n";
    std::cerr << "danerelay-demo: " << problems.size() << " problem(s); files in " << dir.string() << "\n";
    return 1;
  }
  std::printf("\n== done in %.1f s; everything is in %s\n", secs, dir.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: danerelay-demo DIR   (as root, in a network namespace with only loopback: see scripts/demo.sh)\n";
    return 64;
  }
  std::signal(SIGPIPE, SIG_IGN);
  try {
    return run(fs::absolute(argv[1]));
  } catch (const std::exception& e) {
    std::cerr << "danerelay-demo: " << e.what() << '\n';
    return 1;
  }
}
