// tests/metrics/http_client.hpp — a blocking HTTP/1.1 client for the metrics tests: one request
// on a fresh loopback connection ("Connection: close"), the whole response read until the server
// closes. Bounded: every read waits at most `timeout`.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <string>

namespace danerelay::testsupport {

struct HttpReply {
  int status = 0;          // 0: no status line came
  std::string head;        // status line and headers
  std::string body;
  std::string raw;
};

// A connected TCP socket to address:port (IPv4), or -1.
inline int tcp_connect(const std::string& address, std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  ::inet_pton(AF_INET, address.c_str(), &a.sin_addr);
  if (fd >= 0 && ::connect(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a) == 0) return fd;
  if (fd >= 0) ::close(fd);
  return -1;
}

// Everything until EOF (or `timeout` of silence).
inline std::string read_all(int fd, std::chrono::milliseconds timeout) {
  std::string out;
  char buf[8192];
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(timeout.count())) <= 0) break;
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  return out;
}

inline HttpReply parse_reply(std::string raw) {
  HttpReply r;
  r.raw = std::move(raw);
  const auto end = r.raw.find("\r\n\r\n");
  r.head = r.raw.substr(0, end);
  if (end != std::string::npos) r.body = r.raw.substr(end + 4);
  if (r.raw.rfind("HTTP/1.1 ", 0) == 0 && r.raw.size() >= 12) r.status = std::stoi(r.raw.substr(9, 3));
  return r;
}

inline HttpReply http_request(const std::string& address, std::uint16_t port, const std::string& request,
                              std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  const int fd = tcp_connect(address, port);
  if (fd < 0) return {};
  (void)::send(fd, request.data(), request.size(), MSG_NOSIGNAL);
  HttpReply r = parse_reply(read_all(fd, timeout));
  ::close(fd);
  return r;
}

inline HttpReply http_get(const std::string& address, std::uint16_t port, const std::string& path) {
  return http_request(address, port, "GET " + path + " HTTP/1.1\r\nHost: relay\r\nConnection: close\r\n\r\n");
}

}  // namespace danerelay::testsupport
