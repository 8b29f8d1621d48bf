// relay/metrics/http_server.cpp — see http_server.hpp.
#include "relay/metrics/http_server.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <spdlog/spdlog.h>

#include <map>
#include <system_error>

#include "relay/metrics/registry.hpp"

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"  // false positive on coroutine frames (g++ 12)
#endif

namespace danerelay::relay::metrics {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

HttpResponse text(unsigned status, std::string body) {
  HttpResponse r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

std::string endpoint_text(const tcp::endpoint& e) {
  const std::string a = e.address().to_string();
  return (e.address().is_v6() ? "[" + a + "]" : a) + ":" + std::to_string(e.port());
}

}  // namespace

HttpResponse route(const HttpSettings& settings, std::string_view method, std::string_view target) {
  if (method != "GET") {
    HttpResponse r = text(405, "method not allowed\n");
    r.headers.emplace_back("Allow", "GET");
    return r;
  }
  const std::string_view path = target.substr(0, target.find('?'));
  if (path == "/metrics") {
    HttpResponse r;
    r.content_type = std::string(kContentType);
    r.body = settings.metrics ? settings.metrics() : std::string();
    return r;
  }
  if (path == "/healthz/live") return text(200, "ok\n");
  if (path == "/healthz/ready") return settings.ready && settings.ready() ? text(200, "ready\n") : text(503, "not ready\n");
  if (path == "/" && settings.page) return settings.page();
  return text(404, "not found\n");
}

bool allowed(const std::vector<config::Cidr>& networks, const asio::ip::address& address) {
  for (const auto& net : networks) {
    if (address.is_v4()) {
      const auto b = address.to_v4().to_bytes();
      if (net.contains(b.data(), b.size())) return true;
    } else {
      const auto b = address.to_v6().to_bytes();
      if (net.contains(b.data(), b.size())) return true;
    }
  }
  return false;
}

struct HttpServer::State {
  State(asio::any_io_executor ex, HttpSettings s) : executor(ex), acceptor(ex), settings(std::move(s)) {
    if (!settings.log) settings.log = spdlog::default_logger();
  }
  asio::any_io_executor executor;
  tcp::acceptor acceptor;
  HttpSettings settings;
  bool stopped = false;
  std::uint64_t next_id = 0;
  std::map<std::uint64_t, beast::tcp_stream*> open;  // on the executor only
};

namespace {

using State = HttpServer::State;

asio::awaitable<void> respond(beast::tcp_stream& stream, const State& state, HttpResponse r, unsigned version, bool keep_alive) {
  http::response<http::string_body> res{static_cast<http::status>(r.status), version};
  res.set(http::field::server, "danerelay");
  res.set(http::field::content_type, r.content_type);
  res.set(http::field::cache_control, "no-store");
  for (const auto& [name, value] : r.headers) res.set(name, value);
  res.body() = std::move(r.body);
  res.keep_alive(keep_alive);
  res.prepare_payload();
  stream.expires_after(state.settings.read_timeout);
  (void)co_await http::async_write(stream, res, use_tuple);
}

asio::awaitable<void> serve(std::shared_ptr<State> state, tcp::socket socket) {
  const auto& s = state->settings;
  beast::tcp_stream stream(std::move(socket));
  const std::uint64_t id = state->next_id++;
  state->open.emplace(id, &stream);
  boost::system::error_code peer_ec;
  const tcp::endpoint peer = stream.socket().remote_endpoint(peer_ec);
  if (peer_ec || !allowed(s.allow_networks, peer.address())) {
    s.log->warn("metrics: refused {} (not in metrics.allow_networks)", peer_ec ? std::string("?") : endpoint_text(peer));
    co_await respond(stream, *state, text(403, "forbidden\n"), 11, false);
  } else {
    beast::flat_buffer buffer(s.max_request);
    for (;;) {
      http::request_parser<http::empty_body> parser;
      parser.header_limit(static_cast<std::uint32_t>(s.max_request));
      parser.body_limit(0);
      // One deadline for the whole request: a client that trickles bytes gets no longer.
      stream.expires_after(s.read_timeout);
      auto [ec, n] = co_await http::async_read(stream, buffer, parser, use_tuple);
      (void)n;
      if (ec == beast::error::timeout) {
        s.log->info("metrics: timeout reading a request from {}", endpoint_text(peer));
        break;
      }
      if (ec == http::error::header_limit || ec == http::error::buffer_overflow) {
        co_await respond(stream, *state, text(431, "request too large\n"), 11, false);
        break;
      }
      if (ec == http::error::body_limit || ec == http::error::unexpected_body) {
        co_await respond(stream, *state, text(413, "no request body accepted\n"), 11, false);
        break;
      }
      if (ec == http::error::end_of_stream || ec == asio::error::eof || ec == asio::error::operation_aborted) break;
      if (ec) {
        co_await respond(stream, *state, text(400, "bad request\n"), 11, false);
        break;
      }
      const auto& req = parser.get();
      const bool keep = req.keep_alive() && !state->stopped;
      co_await respond(stream, *state, route(s, std::string_view(req.method_string().data(), req.method_string().size()),
                                             std::string_view(req.target().data(), req.target().size())),
                       req.version(), keep);
      if (!keep) break;
    }
  }
  state->open.erase(id);
  boost::system::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
  stream.socket().close(ignored);
}

asio::awaitable<void> accept_loop(std::shared_ptr<State> state) {
  for (;;) {
    auto [ec, socket] = co_await state->acceptor.async_accept(use_tuple);
    if (ec) {
      if (ec == asio::error::operation_aborted || !state->acceptor.is_open()) co_return;
      state->settings.log->warn("metrics: accept: {}", ec.message());
      continue;
    }
    if (state->open.size() >= state->settings.max_connections) {
      boost::system::error_code ignored;
      socket.close(ignored);
      continue;
    }
    asio::co_spawn(state->executor, serve(state, std::move(socket)), asio::detached);
  }
}

}  // namespace

HttpServer::HttpServer(asio::any_io_executor executor, HttpSettings settings)
    : state_(std::make_shared<State>(std::move(executor), std::move(settings))) {}

HttpServer::~HttpServer() { stop(); }

void HttpServer::start() {
  const auto& a = state_->settings.address;
  const std::string where = (a.host.find(':') != std::string::npos ? "[" + a.host + "]" : a.host) + ":" + std::to_string(a.port);
  try {
    const tcp::endpoint ep(asio::ip::make_address(a.host), a.port);
    state_->acceptor.open(ep.protocol());
    state_->acceptor.set_option(tcp::acceptor::reuse_address(true));
    state_->acceptor.bind(ep);
    state_->acceptor.listen();
  } catch (const boost::system::system_error& e) {
    throw std::system_error(e.code(), "cannot listen on " + where + " (metrics.address)");
  }
  asio::co_spawn(state_->executor, accept_loop(state_), asio::detached);
}

void HttpServer::stop() {
  asio::dispatch(state_->executor, [state = state_] {
    if (state->stopped) return;
    state->stopped = true;
    boost::system::error_code ignored;
    state->acceptor.close(ignored);
    for (auto& [id, stream] : state->open) stream->socket().close(ignored);
  });
}

tcp::endpoint HttpServer::local_endpoint() const {
  boost::system::error_code ec;
  return state_->acceptor.local_endpoint(ec);
}

}  // namespace danerelay::relay::metrics
