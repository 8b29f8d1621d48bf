// relay/metrics/http_server.hpp — the metrics and health HTTP listener ([metrics] address),
// Boost.Beast on the daemon's event loop: one coroutine per connection, HTTP/1.1 keep-alive.
//
// Paths (route(), pure and table-tested):
//   GET /metrics        200, the exposition text (Content-Type text/plain; version=0.0.4; charset=utf-8)
//   GET /healthz/live   200 "ok" while the event loop runs (it answers from it)
//   GET /healthz/ready  200 "ready" once ready() (the daemon: the DNSSEC self-test passed, the
//                       queue index was loaded, the listeners are up), 503 "not ready" before
//   GET /               the page handler the caller gives (body, content type, extra headers);
//                       404 without one
//   anything else       404; a method other than GET → 405 with "Allow: GET"
//
// Defences: a client whose address is outside allow_networks (metrics.allow_networks, default
// loopback) gets "403 Forbidden" and the connection is closed, without its request being
// answered otherwise. A request (line and headers) over max_request bytes, or with a body, gets
// 400/413 and a close; the whole request must arrive within read_timeout of the connection (or of
// the previous response), else the connection is closed without an answer (slow clients cannot
// hold it); at most max_connections at once (more are closed at accept).
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "config/config.hpp"

namespace spdlog {
class logger;
}

namespace danerelay::relay::metrics {

struct HttpResponse {
  unsigned status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // extra, e.g. Content-Security-Policy
};

using PageHandler = std::function<HttpResponse()>;

struct HttpSettings {
  config::Endpoint address{"127.0.0.1", 9425};
  std::vector<config::Cidr> allow_networks;          // empty: nobody
  std::chrono::milliseconds read_timeout{10000};     // for one whole request
  std::size_t max_request = 8192;                    // request line + headers, bytes
  std::size_t max_connections = 64;
  std::function<std::string()> metrics;              // the /metrics body
  std::function<bool()> ready;                       // /healthz/ready; empty: never ready
  PageHandler page;                                  // "/"; empty: 404
  std::shared_ptr<spdlog::logger> log;               // null → spdlog::default_logger()
};

// What a request gets, from its method and target (the query string is ignored).
[[nodiscard]] HttpResponse route(const HttpSettings& settings, std::string_view method, std::string_view target);

// True when `address` ("127.0.0.1", "::1", "::ffff:10.0.0.1") lies in one of `networks`.
[[nodiscard]] bool allowed(const std::vector<config::Cidr>& networks, const boost::asio::ip::address& address);

class HttpServer {
 public:
  HttpServer(boost::asio::any_io_executor executor, HttpSettings settings);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds and listens; throws std::system_error naming the address.
  void start();
  // Closes the acceptor and every connection. Idempotent.
  void stop();
  [[nodiscard]] boost::asio::ip::tcp::endpoint local_endpoint() const;

  struct State;

 private:
  std::shared_ptr<State> state_;
};

}  // namespace danerelay::relay::metrics
