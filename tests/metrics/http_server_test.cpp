// tests/metrics/http_server_test.cpp — the metrics/health listener: the routes (pure table), then
// the real server on loopback: exact responses, keep-alive, allow_networks (403 and close), a slow
// client cut off at the read deadline, oversized requests and request bodies refused.
#include "relay/metrics/http_server.hpp"

#include <gtest/gtest.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include <atomic>
#include <thread>

#include "relay/metrics/registry.hpp"
#include "tests/metrics/http_client.hpp"

namespace danerelay::relay::metrics {
namespace {

using namespace std::chrono_literals;
using testsupport::http_get;
using testsupport::http_request;

HttpSettings settings_with(bool ready, bool page) {
  HttpSettings s;
  s.metrics = [] { return std::string("x_total 1\n"); };
  s.ready = [ready] { return ready; };
  if (page) {
    s.page = [] {
      HttpResponse r;
      r.content_type = "text/html; charset=utf-8";
      r.body = "<p>posture</p>";
      r.headers.emplace_back("Content-Security-Policy", "default-src 'none'");
      return r;
    };
  }
  return s;
}

struct RouteCase {
  std::string_view name;
  bool ready;
  bool page;
  std::string_view method;
  std::string_view target;
  unsigned status;
  std::string_view body;
};
const RouteCase kRoutes[] = {
    {"Metrics", false, false, "GET", "/metrics", 200, "x_total 1\n"},
    {"MetricsWithQuery", false, false, "GET", "/metrics?name[]=x", 200, "x_total 1\n"},
    {"LiveIsAlwaysOk", false, false, "GET", "/healthz/live", 200, "ok\n"},
    {"ReadyBeforeIs503", false, false, "GET", "/healthz/ready", 503, "not ready\n"},
    {"ReadyAfterIs200", true, false, "GET", "/healthz/ready", 200, "ready\n"},
    {"RootWithoutPageIs404", true, false, "GET", "/", 404, "not found\n"},
    {"RootWithPage", true, true, "GET", "/", 200, "<p>posture</p>"},
    {"UnknownPathIs404", true, true, "GET", "/metrics/", 404, "not found\n"},
    {"OtherPathIs404", true, true, "GET", "/index.html", 404, "not found\n"},
    {"PostIs405", true, true, "POST", "/metrics", 405, "method not allowed\n"},
    {"HeadIs405", true, true, "HEAD", "/metrics", 405, "method not allowed\n"},
};
class Routes : public testing::TestWithParam<RouteCase> {};
TEST_P(Routes, Answer) {
  const auto& c = GetParam();
  const HttpResponse r = route(settings_with(c.ready, c.page), c.method, c.target);
  EXPECT_EQ(r.status, c.status);
  EXPECT_EQ(r.body, c.body);
  if (c.target.starts_with("/metrics") && c.status == 200) {
    EXPECT_EQ(r.content_type, "text/plain; version=0.0.4; charset=utf-8");
  }
  if (c.status == 405) {
    ASSERT_EQ(r.headers.size(), 1u);
    EXPECT_EQ(r.headers[0].first, "Allow");
    EXPECT_EQ(r.headers[0].second, "GET");
  }
}
INSTANTIATE_TEST_SUITE_P(Http, Routes, testing::ValuesIn(kRoutes), [](const auto& i) { return std::string(i.param.name); });

TEST(Allowed, NetworksMatchV4V6AndMappedV4) {
  const std::vector<config::Cidr> nets{*config::Cidr::parse("127.0.0.0/8"), *config::Cidr::parse("::1/128")};
  EXPECT_TRUE(allowed(nets, boost::asio::ip::make_address("127.0.0.1")));
  EXPECT_TRUE(allowed(nets, boost::asio::ip::make_address("127.9.9.9")));
  EXPECT_TRUE(allowed(nets, boost::asio::ip::make_address("::1")));
  EXPECT_TRUE(allowed(nets, boost::asio::ip::make_address("::ffff:127.0.0.1")));
  EXPECT_FALSE(allowed(nets, boost::asio::ip::make_address("10.0.0.1")));
  EXPECT_FALSE(allowed(nets, boost::asio::ip::make_address("::2")));
  EXPECT_FALSE(allowed({}, boost::asio::ip::make_address("127.0.0.1")));
}

// A server on 127.0.0.1:<ephemeral> with its own event-loop thread.
class Served : public testing::Test {
 protected:
  void start(HttpSettings s) {
    s.address = config::Endpoint{"127.0.0.1", 0};
    server_ = std::make_unique<HttpServer>(io_.get_executor(), std::move(s));
    server_->start();
    port_ = server_->local_endpoint().port();
    thread_ = std::thread([this] { io_.run(); });
  }
  void TearDown() override {
    if (server_) server_->stop();
    work_.reset();
    io_.stop();
    if (thread_.joinable()) thread_.join();
    server_.reset();
  }
  static HttpSettings loopback(bool ready) {
    HttpSettings s = settings_with(ready, false);
    s.allow_networks = {*config::Cidr::parse("127.0.0.0/8")};
    return s;
  }
  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_{io_.get_executor()};
  std::unique_ptr<HttpServer> server_;
  std::thread thread_;
  std::uint16_t port_ = 0;
};

TEST_F(Served, MetricsExactResponse) {
  start(loopback(true));
  const auto r = http_get("127.0.0.1", port_, "/metrics");
  EXPECT_EQ(r.status, 200) << r.raw;
  EXPECT_NE(r.head.find("\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8"), std::string::npos) << r.head;
  EXPECT_NE(r.head.find("\r\nContent-Length: 10"), std::string::npos) << r.head;
  EXPECT_NE(r.head.find("\r\nConnection: close"), std::string::npos) << r.head;
  EXPECT_EQ(r.body, "x_total 1\n");
}

TEST_F(Served, HealthBeforeAndAfterReady) {
  std::atomic<bool> ready{false};
  HttpSettings s = loopback(false);
  s.ready = [&ready] { return ready.load(); };
  start(std::move(s));
  EXPECT_EQ(http_get("127.0.0.1", port_, "/healthz/live").status, 200);
  EXPECT_EQ(http_get("127.0.0.1", port_, "/healthz/ready").status, 503);
  ready = true;
  EXPECT_EQ(http_get("127.0.0.1", port_, "/healthz/ready").status, 200);
  EXPECT_EQ(http_get("127.0.0.1", port_, "/healthz/live").status, 200);
  EXPECT_EQ(http_get("127.0.0.1", port_, "/").status, 404);
  EXPECT_EQ(http_get("127.0.0.1", port_, "/nothing").status, 404);
}

TEST_F(Served, KeepAliveAnswersTwoRequestsOnOneConnection) {
  start(loopback(true));
  const auto r = http_request("127.0.0.1", port_,
                              "GET /healthz/live HTTP/1.1\r\nHost: x\r\n\r\nGET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(r.status, 200);
  EXPECT_NE(r.raw.find("ok\n"), std::string::npos) << r.raw;
  EXPECT_NE(r.raw.find("x_total 1\n"), std::string::npos) << r.raw;
}

TEST_F(Served, ClientOutsideAllowNetworksGets403AndAClosedConnection) {
  HttpSettings s = loopback(true);
  s.allow_networks = {*config::Cidr::parse("10.0.0.0/8"), *config::Cidr::parse("::1/128")};
  start(std::move(s));
  const auto r = http_get("127.0.0.1", port_, "/metrics");
  EXPECT_EQ(r.status, 403) << r.raw;
  EXPECT_EQ(r.body, "forbidden\n");
  EXPECT_EQ(r.raw.find("x_total"), std::string::npos);
}

TEST_F(Served, SlowClientIsCutOffAtTheReadDeadline) {
  HttpSettings s = loopback(true);
  s.read_timeout = 400ms;
  start(std::move(s));
  const int fd = testsupport::tcp_connect("127.0.0.1", port_);
  ASSERT_GE(fd, 0);
  const auto t0 = std::chrono::steady_clock::now();
  // One byte every 100 ms: each arrives well within any idle timeout, the request never does.
  const std::string request = "GET /metrics HTTP/1.1\r\nHost: slow\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
  bool closed = false;
  std::string got;
  for (char c : request) {
    if (::send(fd, &c, 1, MSG_NOSIGNAL) != 1) {
      closed = true;
      break;
    }
    got += testsupport::read_all(fd, 100ms);
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 0) > 0 && (p.revents & (POLLIN | POLLHUP))) {
      char b;
      if (::recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) == 0) {
        closed = true;
        break;
      }
    }
    if (std::chrono::steady_clock::now() - t0 > 3s) break;
  }
  const auto took = std::chrono::steady_clock::now() - t0;
  ::close(fd);
  EXPECT_TRUE(closed) << "the server kept a trickling client for " << std::chrono::duration_cast<std::chrono::milliseconds>(took).count()
                      << " ms";
  EXPECT_LT(took, 2s);
  EXPECT_GE(took, 350ms);
  EXPECT_EQ(got.find("200 OK"), std::string::npos) << got;
}

TEST_F(Served, OversizedRequestGets431AndClose) {
  HttpSettings s = loopback(true);
  s.max_request = 1024;
  start(std::move(s));
  const auto r = http_request("127.0.0.1", port_, "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(4000, 'a') + "\r\n\r\n");
  EXPECT_EQ(r.status, 431) << r.raw;
}

TEST_F(Served, RequestWithABodyGets413) {
  start(loopback(true));
  const auto r = http_request("127.0.0.1", port_, "GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello");
  EXPECT_EQ(r.status, 413) << r.raw;
}

TEST_F(Served, GarbageGets400) {
  start(loopback(true));
  const auto r = http_request("127.0.0.1", port_, "HELLO\r\n\r\n");
  EXPECT_EQ(r.status, 400) << r.raw;
}

}  // namespace
}  // namespace danerelay::relay::metrics
