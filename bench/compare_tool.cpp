// bench/compare_tool.cpp — the helpers of bench/compare.sh (danerelay against Postfix in one run):
//
//   compare-tool world DIR
//       builds the benchmark's signed DNS world under DIR with tests/support/hierarchy (real
//       ldns-signed zones, a fake signed root, trust anchor DIR/dns/root.ta, auth-zone
//       unbound.conf DIR/dns/unbound.conf) and tests/support/pki:
//         dane.test   signed; MX mx.dane.test → 127.0.0.71, TLSA _25._tcp.mx.dane.test 3 1 1 of
//                     the sink's leaf (DIR/sink.chain.pem, DIR/sink.key.pem)
//         plain.test  unsigned (no DS in test.); MX mx.plain.test → 127.0.0.72 (sink without TLS)
//       Prints "trust_anchor PATH" and "unbound_conf PATH".
//
//   compare-tool sink ADDRESS PORT COUNT_FILE [--tls CHAIN KEY]
//       a lean SMTP sink (one thread, Asio coroutines): greets, answers EHLO (PIPELINING, 8BITMIME,
//       STARTTLS when --tls), replies to pipelined commands in one write, reads DATA up to the final
//       ".", discards the body and replies 250. It counts messages; every 5 ms, when the count has
//       changed, it rewrites COUNT_FILE in place with "<count> <steady_clock ns of the last 250>".
//       Runs until SIGTERM/SIGINT. Not for tests: it parses just enough SMTP for MTAs and the load.
//
//   compare-tool load ADDRESS PORT --sessions S --per-session M --messages N --size BYTES
//                     [--starttls] [--timeout SECONDS] [--rcpt ADDR]
//       the load client, playing smtp-source (S concurrent sessions, each a new connection carrying
//       up to M messages, N messages in all, no PIPELINING, like smtp-source without -P) and
//       recording, for every message, the time from sending the end of DATA ("." line) to the
//       250 reply. Prints one line of key=value: start_ns end_ns (steady_clock, the same clock as
//       the sink's), accepted, failed, p50_ms, p99_ms. Bounded: stops at N messages or after
//       --timeout seconds (default 600), whichever comes first.
#include <openssl/ssl.h>
#include <signal.h>
#include <fcntl.h>
#include <unistd.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/buffers_iterator.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/hierarchy.hpp"
#include "tests/support/pki.hpp"

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"  // false positive on coroutine frames (g++ 12)
#endif

namespace {

namespace asio = boost::asio;
namespace ssl = asio::ssl;
namespace fs = std::filesystem;
using asio::ip::tcp;
using namespace danerelay;

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// ── world ────────────────────────────────────────────────────────────────────────────────────────
int cmd_world(const fs::path& dir) {
  fs::create_directories(dir);
  testsupport::Pki pki(dir / "pki");
  const testsupport::Cert ca = pki.make_ca("danerelay bench CA");
  testsupport::Pki::LeafOptions o;
  o.common_name = "mx.dane.test";
  o.dns_names = {o.common_name};
  o.issuer = &ca;
  const testsupport::Cert leaf = pki.make_leaf(o);
  fs::copy_file(pki.write_chain("sink.chain.pem", {&leaf, &ca}), dir / "sink.chain.pem", fs::copy_options::overwrite_existing);
  fs::copy_file(leaf.key_file, dir / "sink.key.pem", fs::copy_options::overwrite_existing);

  testsupport::Hierarchy h(dir / "dns", "127.0.0.254");
  h.zone("dane.test.")
      .mx("@", 10, "mx")
      .a("mx", "127.0.0.71")
      .tlsa("_25._tcp.mx", testsupport::tlsa_rdata(leaf.x509.get(), 3, 1, 1));
  h.zone("plain.test.", testsupport::ZoneKind::insecure).mx("@", 10, "mx").a("mx", "127.0.0.72");
  const auto built = h.build();
  if (!built.unbound_options.empty()) {
    std::cerr << "compare-tool world: the hierarchy needs ub_ctx_set_option options; not supported here\n";
    return 1;
  }
  std::cout << "trust_anchor " << built.trust_anchor.string() << "\nunbound_conf " << built.unbound_conf.string() << "\n";
  return 0;
}

// ── sink ─────────────────────────────────────────────────────────────────────────────────────────
std::atomic<std::uint64_t> g_count{0};
std::atomic<std::int64_t> g_last_ns{0};

// One SMTP conversation on stream (plain socket or TLS stream). Returns true when the client asked
// for STARTTLS (and got its 220): the caller then handshakes and calls again on the TLS stream.
template <typename Stream>
asio::awaitable<bool> converse(Stream* stream, std::string* in, bool offer_tls, bool greet) {
  std::string out;
  if (greet) out = "220 sink.bench.test ESMTP\r\n";
  bool in_data = false;
  bool data_start = false;  // nothing of the body seen yet
  std::size_t pos = 0;  // parse position in *in
  for (;;) {
    // Handle every complete line (or the body) already buffered, collecting the replies.
    for (;;) {
      if (in_data) {
        // The body ends at CRLF "." CRLF, or is empty: "." CRLF right after the 354.
        std::size_t end = std::string::npos;
        if (data_start && in->size() - pos < 3) break;
        if (data_start && in->compare(pos, 3, ".\r\n") == 0) {
          end = pos;
        } else if (auto e = in->find("\r\n.\r\n", pos); e != std::string::npos) {
          end = e + 2;
        }
        if (end == std::string::npos) {
          // Keep the last 4 bytes (a terminator split across reads), drop the rest.
          if (in->size() - pos > 4) {
            pos = in->size() - 4;
            data_start = false;
          }
          break;
        }
        pos = end + 3;
        in_data = false;
        const auto n = g_count.fetch_add(1) + 1;
        out += "250 2.0.0 Ok: queued as S" + std::to_string(n) + "\r\n";
        g_last_ns.store(now_ns());
        continue;
      }
      const auto eol = in->find("\r\n", pos);
      if (eol == std::string::npos) break;
      std::string line = in->substr(pos, eol - pos);
      pos = eol + 2;
      std::string verb = line.substr(0, 4);
      for (auto& c : verb) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      if (verb == "EHLO") {
        out += "250-sink.bench.test\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-SIZE 0\r\n";
        if (offer_tls) out += "250-STARTTLS\r\n";
        out += "250 ENHANCEDSTATUSCODES\r\n";
      } else if (verb == "HELO") {
        out += "250 sink.bench.test\r\n";
      } else if (verb == "MAIL") {
        out += "250 2.1.0 Ok\r\n";
      } else if (verb == "RCPT") {
        out += "250 2.1.5 Ok\r\n";
      } else if (verb == "DATA") {
        out += "354 End data with <CR><LF>.<CR><LF>\r\n";
        in_data = true;
        data_start = true;
      } else if (verb == "RSET" || verb == "NOOP") {
        out += "250 2.0.0 Ok\r\n";
      } else if (verb == "QUIT") {
        out += "221 2.0.0 Bye\r\n";
        co_await asio::async_write(*stream, asio::buffer(out), asio::as_tuple(asio::use_awaitable));
        co_return false;
      } else if (verb == "STAR" && offer_tls) {
        out += "220 2.0.0 Ready to start TLS\r\n";
        co_await asio::async_write(*stream, asio::buffer(out), asio::as_tuple(asio::use_awaitable));
        in->clear();
        co_return true;
      } else {
        out += "502 5.5.2 Error: command not recognized\r\n";
      }
    }
    in->erase(0, pos);
    pos = 0;
    if (!out.empty()) {
      auto [ec, n] = co_await asio::async_write(*stream, asio::buffer(out), asio::as_tuple(asio::use_awaitable));
      if (ec) co_return false;
      out.clear();
    }
    char buf[65536];
    auto [ec, n] = co_await stream->async_read_some(asio::buffer(buf), asio::as_tuple(asio::use_awaitable));
    if (ec) co_return false;
    in->append(buf, n);
  }
}

asio::awaitable<void> sink_session(tcp::socket socket, ssl::context* tls) {
  socket.set_option(tcp::no_delay(true));
  std::string in;
  if (tls == nullptr) {
    co_await converse(&socket, &in, false, true);
    co_return;
  }
  ssl::stream<tcp::socket> s(std::move(socket), *tls);
  if (!co_await converse(&s.next_layer(), &in, true, true)) co_return;
  auto [ec] = co_await s.async_handshake(ssl::stream_base::server, asio::as_tuple(asio::use_awaitable));
  if (ec) co_return;
  co_await converse(&s, &in, false, false);
  co_await s.async_shutdown(asio::as_tuple(asio::use_awaitable));
}

asio::awaitable<void> sink_accept(tcp::acceptor* acceptor, ssl::context* tls) {
  for (;;) {
    auto [ec, socket] = co_await acceptor->async_accept(asio::as_tuple(asio::use_awaitable));
    if (ec) co_return;
    asio::co_spawn(acceptor->get_executor(), sink_session(std::move(socket), tls), asio::detached);
  }
}

int cmd_sink(const std::string& address, unsigned short port, const fs::path& count_file, const fs::path& chain,
             const fs::path& key) {
  asio::io_context io(1);
  ssl::context ctx(ssl::context::tls_server);
  const bool with_tls = !chain.empty();
  if (with_tls) {
    ctx.use_certificate_chain_file(chain.string());
    ctx.use_private_key_file(key.string(), ssl::context::pem);
  }
  tcp::acceptor acceptor(io);
  const tcp::endpoint ep(asio::ip::make_address(address), port);
  acceptor.open(ep.protocol());
  acceptor.set_option(tcp::acceptor::reuse_address(true));
  acceptor.bind(ep);
  acceptor.listen(1024);
  const int fd = ::open(count_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) throw std::runtime_error("cannot open " + count_file.string());
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    std::uint64_t written = ~std::uint64_t{0};
    while (!stop.load()) {
      const auto c = g_count.load();
      if (c != written) {
        char line[64];
        const int n = std::snprintf(line, sizeof line, "%20llu %20lld\n", static_cast<unsigned long long>(c),
                                    static_cast<long long>(g_last_ns.load()));
        if (::pwrite(fd, line, static_cast<std::size_t>(n), 0) == n) written = c;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  });
  asio::signal_set signals(io, SIGTERM, SIGINT);
  signals.async_wait([&](auto, int) { io.stop(); });
  asio::co_spawn(io, sink_accept(&acceptor, with_tls ? &ctx : nullptr), asio::detached);
  std::printf("sink listening on %s:%u%s\n", address.c_str(), port, with_tls ? " (STARTTLS)" : "");
  std::fflush(stdout);
  io.run();
  stop = true;
  writer.join();
  ::close(fd);
  return 0;
}

// ── load ─────────────────────────────────────────────────────────────────────────────────────────
struct LoadSpec {
  std::string address;
  unsigned short port = 0;
  int sessions = 20;
  int per_session = 1;
  int messages = 1000;
  std::size_t size = 4096;
  bool starttls = false;
  int timeout_s = 600;
  std::string rcpt = "user@dane.test";
};

struct LoadState {
  const LoadSpec* spec;
  std::string message;  // dot-stuffing-free body, ending in CRLF, plus ".\r\n"
  int next = 0;         // messages handed out
  int accepted = 0;
  int failed = 0;
  std::vector<double> latencies_ms;
  ssl::context* tls;
  std::int64_t deadline_ns;
};

// Reads one (possibly multi-line) reply; returns its code or 0 on error.
template <typename Stream>
asio::awaitable<int> read_reply(Stream* s, asio::streambuf* buf) {
  for (;;) {
    auto [ec, n] = co_await asio::async_read_until(*s, *buf, "\r\n", asio::as_tuple(asio::use_awaitable));
    if (ec) co_return 0;
    std::string line(asio::buffers_begin(buf->data()), asio::buffers_begin(buf->data()) + static_cast<std::ptrdiff_t>(n));
    buf->consume(n);
    if (line.size() < 4) co_return 0;
    if (line[3] != '-') co_return std::atoi(line.substr(0, 3).c_str());
  }
}

template <typename Stream>
asio::awaitable<int> command(Stream* s, asio::streambuf* buf, std::string text) {
  auto [ec, n] = co_await asio::async_write(*s, asio::buffer(text), asio::as_tuple(asio::use_awaitable));
  if (ec) co_return 0;
  co_return co_await read_reply(s, buf);
}

// The transactions of one connection, after EHLO (and STARTTLS). Returns false when the connection broke.
template <typename Stream>
asio::awaitable<bool> transactions(Stream* s, asio::streambuf* buf, LoadState* st) {
  for (int i = 0; i < st->spec->per_session && st->next < st->spec->messages && now_ns() < st->deadline_ns; ++i) {
    ++st->next;
    if (co_await command(s, buf, "MAIL FROM:<bench@org.test>\r\n") != 250 ||
        co_await command(s, buf, "RCPT TO:<" + st->spec->rcpt + ">\r\n") != 250 ||
        co_await command(s, buf, "DATA\r\n") != 354) {
      ++st->failed;
      co_return false;
    }
    auto [ec, n] = co_await asio::async_write(*s, asio::buffer(st->message), asio::as_tuple(asio::use_awaitable));
    if (ec) {
      ++st->failed;
      co_return false;
    }
    // smtp-source's order too: the body then "." in one write; the clock starts when it is sent.
    const auto t0 = now_ns();
    const int code = co_await read_reply(s, buf);
    const auto t1 = now_ns();
    if (code == 250) {
      ++st->accepted;
      st->latencies_ms.push_back(static_cast<double>(t1 - t0) / 1e6);
    } else {
      ++st->failed;
      if (code == 0) co_return false;
    }
  }
  co_await command(s, buf, "QUIT\r\n");
  co_return true;
}

asio::awaitable<void> load_session(LoadState* st) {
  auto ex = co_await asio::this_coro::executor;
  const tcp::endpoint ep(asio::ip::make_address(st->spec->address), st->spec->port);
  while (st->next < st->spec->messages && now_ns() < st->deadline_ns) {
    tcp::socket socket(ex);
    auto [ec] = co_await socket.async_connect(ep, asio::as_tuple(asio::use_awaitable));
    if (ec) {
      ++st->failed;
      asio::steady_timer t(ex, std::chrono::milliseconds(10));
      co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
      continue;
    }
    socket.set_option(tcp::no_delay(true));
    asio::streambuf buf;
    if (co_await read_reply(&socket, &buf) != 220 || co_await command(&socket, &buf, "EHLO load.org.test\r\n") != 250) {
      ++st->failed;
      continue;
    }
    if (!st->spec->starttls) {
      co_await transactions(&socket, &buf, st);
      continue;
    }
    if (co_await command(&socket, &buf, "STARTTLS\r\n") != 220) {
      ++st->failed;
      continue;
    }
    ssl::stream<tcp::socket> s(std::move(socket), *st->tls);
    auto [hec] = co_await s.async_handshake(ssl::stream_base::client, asio::as_tuple(asio::use_awaitable));
    if (hec || co_await command(&s, &buf, "EHLO load.org.test\r\n") != 250) {
      ++st->failed;
      continue;
    }
    co_await transactions(&s, &buf, st);
  }
}

int cmd_load(const LoadSpec& spec) {
  asio::io_context io(1);
  ssl::context tls(ssl::context::tls_client);
  tls.set_verify_mode(ssl::verify_none);  // the sink's capacity run: the relays verify, not the load
  LoadState st{&spec, {}, 0, 0, 0, {}, &tls, 0};
  st.message = "From: <bench@org.test>\r\nTo: <" + spec.rcpt + ">\r\nSubject: compare\r\nMessage-ID: <compare@org.test>\r\n\r\n";
  const std::string line(76, 'x');
  while (st.message.size() + 78 <= spec.size) st.message += line + "\r\n";
  st.message += ".\r\n";
  const auto start = now_ns();
  st.deadline_ns = start + std::int64_t{spec.timeout_s} * 1'000'000'000;
  for (int i = 0; i < spec.sessions; ++i) asio::co_spawn(io, load_session(&st), asio::detached);
  io.run();
  const auto end = now_ns();
  std::sort(st.latencies_ms.begin(), st.latencies_ms.end());
  auto pct = [&](double p) {
    if (st.latencies_ms.empty()) return 0.0;
    return st.latencies_ms[static_cast<std::size_t>(p * static_cast<double>(st.latencies_ms.size() - 1))];
  };
  std::printf("start_ns=%lld end_ns=%lld accepted=%d failed=%d p50_ms=%.3f p99_ms=%.3f\n", static_cast<long long>(start),
              static_cast<long long>(end), st.accepted, st.failed, pct(0.5), pct(0.99));
  return st.accepted == spec.messages ? 0 : 3;
}

int usage() {
  std::cerr << "usage: compare-tool world DIR\n"
               "       compare-tool sink ADDRESS PORT COUNT_FILE [--tls CHAIN KEY]\n"
               "       compare-tool load ADDRESS PORT --sessions S --per-session M --messages N --size BYTES\n"
               "                         [--starttls] [--timeout SECONDS] [--rcpt ADDR]\n";
  return 64;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> a(argv + 1, argv + argc);
  try {
    if (a.size() == 2 && a[0] == "world") return cmd_world(a[1]);
    if (a.size() >= 4 && a[0] == "sink") {
      fs::path chain, key;
      if (a.size() == 7 && a[4] == "--tls") {
        chain = a[5];
        key = a[6];
      } else if (a.size() != 4) {
        return usage();
      }
      return cmd_sink(a[1], static_cast<unsigned short>(std::stoi(a[2])), a[3], chain, key);
    }
    if (a.size() >= 3 && a[0] == "load") {
      LoadSpec s;
      s.address = a[1];
      s.port = static_cast<unsigned short>(std::stoi(a[2]));
      for (std::size_t i = 3; i < a.size(); ++i) {
        auto value = [&]() -> std::string {
          if (i + 1 >= a.size()) throw std::invalid_argument(a[i] + " needs a value");
          return a[++i];
        };
        if (a[i] == "--sessions") s.sessions = std::max(1, std::stoi(value()));
        else if (a[i] == "--per-session") s.per_session = std::max(1, std::stoi(value()));
        else if (a[i] == "--messages") s.messages = std::max(1, std::stoi(value()));
        else if (a[i] == "--size") s.size = static_cast<std::size_t>(std::stoul(value()));
        else if (a[i] == "--timeout") s.timeout_s = std::max(1, std::stoi(value()));
        else if (a[i] == "--rcpt") s.rcpt = value();
        else if (a[i] == "--starttls") s.starttls = true;
        else return usage();
      }
      return cmd_load(s);
    }
  } catch (const std::exception& e) {
    std::cerr << "compare-tool: " << e.what() << '\n';
    return 1;
  }
  return usage();
}
