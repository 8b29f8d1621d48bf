// tests/support/smtp_sink.cpp — see smtp_sink.hpp. One coroutine per connection on the sink's own
// io_context; everything shared with the test thread sits behind one mutex.
#include "tests/support/smtp_sink.hpp"

#include <openssl/ssl.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <algorithm>
#include <array>
#include <cctype>
#include <condition_variable>
#include <mutex>
#include <set>
#include <stdexcept>
#include <thread>

// g++ 12 false positive on Asio coroutine frames (aligned_alloc vs the frame's operator delete).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

namespace danerelay::testsupport {

namespace asio = boost::asio;
using asio::ip::tcp;
using boost::system::error_code;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
constexpr std::size_t max_line = 4096;
constexpr int max_commands = 10000;
constexpr std::size_t max_drain = 1024 * 1024;

std::string upper(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// "<User@Example.org> NOTIFY=NEVER" → "user@example.org"
std::string path_address(std::string_view arg) {
  const auto open = arg.find('<');
  const auto close = arg.find('>');
  if (open == std::string_view::npos || close == std::string_view::npos || close < open) return lower(arg);
  return lower(arg.substr(open + 1, close - open - 1));
}

// One connection's stream: plain TCP, then TLS after STARTTLS; lines are read from rbuf.
struct Conn {
  tcp::socket sock;
  std::optional<asio::ssl::stream<tcp::socket&>> tls;
  std::string rbuf;
  std::uint64_t reads = 0;

  explicit Conn(tcp::socket s) : sock(std::move(s)) {}

  asio::awaitable<error_code> read_some() {
    std::array<char, 64 * 1024> buf;
    error_code ec;
    std::size_t n = 0;
    if (tls) {
      std::tie(ec, n) = co_await tls->async_read_some(asio::buffer(buf), use_tuple);
    } else {
      std::tie(ec, n) = co_await sock.async_read_some(asio::buffer(buf), use_tuple);
    }
    if (!ec) {
      rbuf.append(buf.data(), n);
      ++reads;
    }
    co_return ec;
  }

  // A view, not a std::string: callers pass temporaries inside co_await, which g++ 12 would
  // bit-copy into the frame as a class argument; the view's target outlives the full expression.
  asio::awaitable<error_code> write(std::string_view data) {
    error_code ec;
    if (tls) {
      std::tie(ec, std::ignore) = co_await asio::async_write(*tls, asio::buffer(data.data(), data.size()), use_tuple);
    } else {
      std::tie(ec, std::ignore) = co_await asio::async_write(sock, asio::buffer(data.data(), data.size()), use_tuple);
    }
    co_return ec;
  }

  std::optional<std::string> take_line() {
    const auto lf = rbuf.find('\n');
    if (lf == std::string::npos) return std::nullopt;
    std::string line = rbuf.substr(0, lf);
    rbuf.erase(0, lf + 1);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    return line;
  }
};

}  // namespace

int SinkStats::bodies() const {
  return static_cast<int>(std::count_if(transactions.begin(), transactions.end(),
                                        [](const SinkTransaction& t) { return t.body.has_value(); }));
}

struct SmtpSink::Impl {
  SinkOptions options;
  mutable std::mutex mutex;
  mutable std::condition_variable cv;
  SinkStats stats;
  int ended = 0;
  int active = 0;
  bool run_done = false;
  std::set<tcp::socket*> live;  // sink thread only
  std::optional<asio::ssl::context> ssl;
  asio::io_context io;
  tcp::acceptor acceptor{io};
  std::uint16_t port = 0;
  std::thread thread;

  explicit Impl(SinkOptions o) : options(std::move(o)) {}

  template <typename F>
  void locked(F&& f) {
    std::lock_guard lock(mutex);
    f(stats);
  }

  asio::awaitable<void> accept_loop() {
    for (int accepted = 0; accepted < 100000; ++accepted) {
      auto [ec, sock] = co_await acceptor.async_accept(use_tuple);
      if (ec) co_return;  // closed by stop()
      if (active >= options.max_connections) {
        error_code ignored;
        sock.close(ignored);
        continue;
      }
      // Like a real MTA: replies go out at once (no Nagle stall against the client's delayed ACK).
      error_code nodelay_ec;
      sock.set_option(asio::ip::tcp::no_delay(true), nodelay_ec);
      int number = 0;
      locked([&](SinkStats& s) { number = ++s.connections; });
      ++active;
      asio::co_spawn(io, session(std::move(sock), number), asio::detached);
    }
  }

  // Reads and discards until the peer goes away: a server that stopped answering.
  static asio::awaitable<void> drain(Conn& c) {
    for (std::size_t total = 0; total < max_drain;) {
      c.rbuf.clear();
      if (co_await c.read_some()) co_return;
      total += c.rbuf.size();
    }
  }

  asio::awaitable<std::optional<std::string>> read_line(Conn& c, bool count_commands) {
    for (int reads = 0; reads < 100000; ++reads) {
      if (auto line = c.take_line()) co_return line;
      if (c.rbuf.size() > max_line + 2) co_return std::nullopt;
      if (co_await c.read_some()) co_return std::nullopt;
      if (count_commands) {
        const auto lines = static_cast<std::size_t>(std::count(c.rbuf.begin(), c.rbuf.end(), '\n'));
        locked([&](SinkStats& s) { s.max_commands_per_read = std::max(s.max_commands_per_read, lines); });
      }
    }
    co_return std::nullopt;
  }

  std::string ehlo_reply(bool tls_active) const {
    const auto& o = options;
    std::vector<std::string> lines{o.hostname};
    if (o.pipelining) lines.emplace_back("PIPELINING");
    lines.push_back(o.size ? "SIZE " + std::to_string(o.size) : "SIZE");
    if (o.eightbitmime) lines.emplace_back("8BITMIME");
    if (o.smtputf8) lines.emplace_back("SMTPUTF8");
    if (o.dsn) lines.emplace_back("DSN");
    lines.emplace_back("ENHANCEDSTATUSCODES");
    if (o.starttls && !tls_active) lines.emplace_back("STARTTLS");
    std::string out;
    for (std::size_t i = 0; i < lines.size(); ++i) out += "250" + std::string(i + 1 < lines.size() ? "-" : " ") + lines[i] + "\r\n";
    return out;
  }

  asio::awaitable<void> session(tcp::socket sock, int number) {
    Conn c(std::move(sock));
    live.insert(&c.sock);
    struct Guard {
      Impl& self;
      Conn& conn;
      ~Guard() {
        self.live.erase(&conn.sock);
        --self.active;
        std::lock_guard lock(self.mutex);
        ++self.ended;
        self.cv.notify_all();
      }
    } guard{*this, c};
    co_await converse(c, number);
    error_code ignored;
    c.sock.close(ignored);
  }

  asio::awaitable<void> converse(Conn& c, int number) {
    const auto& o = options;
    if (o.hang_at == "CONNECT") co_return co_await drain(c);
    const std::string greeting = o.greeting.empty() ? "220 " + o.hostname + " ESMTP sink" : o.greeting;
    if (co_await c.write(greeting + "\r\n")) co_return;
    if (greeting[0] == '4') co_return;  // RFC 5321 §3.1: 421 and close
    const bool refusing = greeting[0] == '5';

    std::optional<std::size_t> tx;  // index into stats.transactions of the open transaction
    int accepted = 0;
    int bodies_here = 0;            // messages carried by this connection
    for (int commands = 0; commands < max_commands; ++commands) {
      auto line = co_await read_line(c, true);
      if (!line) co_return;
      locked([&](SinkStats& s) { s.commands.push_back(*line); });
      if (o.close_at_next_command && o.close_after_bodies > 0 && bodies_here >= o.close_after_bodies) co_return;
      const auto space = line->find(' ');
      const std::string verb = upper(line->substr(0, std::min(space, line->find(':'))));
      const std::string arg = line->find(':') != std::string::npos ? line->substr(line->find(':') + 1) : "";
      if (!o.hang_at.empty() && o.hang_at == verb) co_return co_await drain(c);
      if (verb == "QUIT") {
        co_await c.write("221 2.0.0 Bye\r\n");
        co_return;
      }
      if (refusing) {
        if (co_await c.write("503 5.5.1 Bad sequence of commands\r\n")) co_return;
        continue;
      }
      std::string reply;
      if (verb == "EHLO") {
        if (!o.ehlo_supported) {
          reply = "502 5.5.2 Error: command not recognized\r\n";
        } else if (!o.ehlo_reply.empty()) {
          if (co_await c.write(o.ehlo_reply + "\r\n")) co_return;
          if (o.ehlo_reply.rfind("421", 0) == 0) co_return;
          continue;
        } else {
          reply = ehlo_reply(c.tls.has_value());
        }
      } else if (verb == "HELO") {
        reply = "250 " + o.hostname + "\r\n";
      } else if (verb == "STARTTLS") {
        if (!o.starttls || c.tls) {
          reply = "502 5.5.1 Error: command not implemented\r\n";
        } else {
          if (co_await c.write("220 2.0.0 Ready to start TLS\r\n" + o.inject_after_starttls)) co_return;
          c.rbuf.clear();  // anything the client pipelined after STARTTLS is not TLS
          if (o.fail_handshake || !ssl) {
            c.rbuf.clear();
            co_await c.read_some();  // the ClientHello
            co_await c.write("this is not a TLS ServerHello\r\n");
            locked([](SinkStats& s) { ++s.tls_failures; });
            co_return;
          }
          c.tls.emplace(c.sock, *ssl);
          auto [hec] = co_await c.tls->async_handshake(asio::ssl::stream_base::server, use_tuple);
          if (hec) {
            locked([](SinkStats& s) { ++s.tls_failures; });
            co_return;
          }
          const char* sni = SSL_get_servername(c.tls->native_handle(), TLSEXT_NAMETYPE_host_name);
          locked([&](SinkStats& s) {
            ++s.tls_handshakes;
            s.sni.emplace_back(sni ? sni : "");
          });
          tx.reset();  // RFC 3207 §4.2: the server forgets the pre-TLS state too
          accepted = 0;
          continue;
        }
      } else if (verb == "MAIL") {
        SinkTransaction t;
        t.connection = number;
        t.tls = c.tls.has_value();
        t.mail = arg;
        locked([&](SinkStats& s) {
          s.transactions.push_back(t);
          tx = s.transactions.size() - 1;
        });
        accepted = 0;
        reply = (o.mail_reply.empty() ? "250 2.1.0 Ok" : o.mail_reply) + "\r\n";
        if (reply[0] != '2') tx.reset();
      } else if (verb == "RCPT") {
        if (!tx) {
          reply = "503 5.5.1 Error: need MAIL command\r\n";
        } else {
          const auto it = o.rcpt_replies.find(path_address(arg));
          reply = (it == o.rcpt_replies.end() ? "250 2.1.5 Ok" : it->second) + "\r\n";
          const bool ok = reply[0] == '2';
          if (ok) ++accepted;
          locked([&](SinkStats& s) {
            s.transactions[*tx].rcpts.push_back(arg);
            if (ok) s.transactions[*tx].accepted.push_back(arg);
          });
        }
      } else if (verb == "DATA") {
        if (!tx) {
          reply = "503 5.5.1 Error: need RCPT command\r\n";
        } else if (accepted == 0) {
          reply = "554 5.5.1 Error: no valid recipients\r\n";
        } else if (!o.data_reply.empty() && o.data_reply[0] != '3') {
          reply = o.data_reply + "\r\n";
        } else {
          const std::string go = o.data_reply.empty() ? "354 End data with <CR><LF>.<CR><LF>" : o.data_reply;
          if (co_await c.write(go + "\r\n")) co_return;
          // RFC 5321 §4.5.2: undo the transparency; "." alone ends the data.
          std::string body;
          std::uint64_t last_data_read = 0;
          bool any_data = false;
          bool dot_with_data = false;
          for (;;) {
            auto data = co_await read_line(c, false);
            if (!data) co_return;
            if (*data == ".") {
              dot_with_data = !any_data || c.reads == last_data_read;
              break;
            }
            any_data = true;
            last_data_read = c.reads;
            body += (!data->empty() && (*data)[0] == '.') ? data->substr(1) : *data;
            body += "\r\n";
            if (body.size() > o.max_body_bytes) co_return;
          }
          if (o.hang_at == ".") co_return co_await drain(c);
          int queued = 0;
          locked([&](SinkStats& s) {
            s.transactions[*tx].body = body;
            s.transactions[*tx].dot_with_data = dot_with_data;
            queued = s.bodies();
          });
          tx.reset();
          accepted = 0;
          ++bodies_here;
          reply = (o.dot_reply.empty() ? "250 2.0.0 Ok: queued as S" + std::to_string(queued) : o.dot_reply) + "\r\n";
        }
      } else if (verb == "RSET") {
        tx.reset();
        accepted = 0;
        reply = "250 2.0.0 Ok\r\n";
      } else if (verb == "NOOP") {
        reply = "250 2.0.0 Ok\r\n";
      } else {
        reply = "502 5.5.2 Error: command not recognized\r\n";
      }
      if (co_await c.write(reply)) co_return;
      if (o.close_after_bodies > 0 && bodies_here >= o.close_after_bodies && !o.close_at_next_command) {
        if (!o.idle_close_reply.empty()) (void)co_await c.write(o.idle_close_reply + "\r\n");
        co_return;
      }
    }
  }

  void stop() {
    error_code ignored;
    acceptor.close(ignored);
    for (auto* s : live) s->close(ignored);
  }
};

SmtpSink::SmtpSink(SinkOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {
  auto& s = *impl_;
  if (s.options.starttls && !s.options.chain_file.empty()) {
    s.ssl.emplace(asio::ssl::context::tls_server);
    error_code ec;
    s.ssl->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                       asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 | asio::ssl::context::no_tlsv1_1);
    s.ssl->use_certificate_chain_file(s.options.chain_file.string(), ec);
    if (!ec) s.ssl->use_private_key_file(s.options.key_file.string(), asio::ssl::context::pem, ec);
    if (ec) throw std::runtime_error("smtp sink: cannot load " + s.options.chain_file.string() + ": " + ec.message());
  }
  const tcp::endpoint ep(asio::ip::make_address(s.options.address), s.options.port);
  const std::string where = s.options.address + " port " + std::to_string(s.options.port);
  error_code ec;
  s.acceptor.open(ep.protocol(), ec);
  if (!ec) s.acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) s.acceptor.bind(ep, ec);
  if (ec == boost::system::errc::permission_denied && s.options.port != 0 && s.options.port < 1024) {
    throw PrivilegedPortDenied("smtp sink: cannot bind " + where + ": " + ec.message() + " (not root)");
  }
  if (!ec) s.acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) throw std::runtime_error("smtp sink: cannot listen on " + where + ": " + ec.message());
  s.port = s.acceptor.local_endpoint().port();
  asio::co_spawn(s.io, s.accept_loop(), asio::detached);
  s.thread = std::thread([&s] {
    s.io.run();
    std::lock_guard lock(s.mutex);
    s.run_done = true;
    s.cv.notify_all();
  });
}

SmtpSink::~SmtpSink() {
  auto& s = *impl_;
  asio::post(s.io, [&s] { s.stop(); });
  {
    // Every session ends once its socket is closed; give them a moment, then force it.
    std::unique_lock lock(s.mutex);
    if (!s.cv.wait_for(lock, std::chrono::seconds(5), [&s] { return s.run_done; })) {
      lock.unlock();
      s.io.stop();
    }
  }
  s.thread.join();
}

std::uint16_t SmtpSink::port() const noexcept { return impl_->port; }
const std::string& SmtpSink::address() const noexcept { return impl_->options.address; }

SinkStats SmtpSink::stats() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->stats;
}

int SmtpSink::bodies() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->stats.bodies();
}

bool SmtpSink::wait_sessions_ended(int connections, std::chrono::milliseconds timeout) const {
  std::unique_lock lock(impl_->mutex);
  return impl_->cv.wait_for(lock, timeout, [&] { return impl_->ended >= connections; });
}

}  // namespace danerelay::testsupport
