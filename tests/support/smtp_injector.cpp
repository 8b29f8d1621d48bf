// tests/support/smtp_injector.cpp — see smtp_injector.hpp.
#include "tests/support/smtp_injector.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace danerelay::testsupport {

namespace {

std::string base64(const std::string& in) {
  std::string out(4 * ((in.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(in.data()), static_cast<int>(in.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

SSL* ssl_of(void* p) { return static_cast<SSL*>(p); }

}  // namespace

SmtpInjector::SmtpInjector(const std::string& address, std::uint16_t port, std::chrono::milliseconds timeout,
                           bool implicit_tls, const std::string& source) {
  sockaddr_storage ss{};
  socklen_t len = 0;
  if (address.find(':') != std::string::npos) {
    auto* a6 = reinterpret_cast<sockaddr_in6*>(&ss);
    a6->sin6_family = AF_INET6;
    a6->sin6_port = htons(port);
    if (inet_pton(AF_INET6, address.c_str(), &a6->sin6_addr) != 1) throw std::runtime_error("bad address " + address);
    len = sizeof(sockaddr_in6);
  } else {
    auto* a4 = reinterpret_cast<sockaddr_in*>(&ss);
    a4->sin_family = AF_INET;
    a4->sin_port = htons(port);
    if (inet_pton(AF_INET, address.c_str(), &a4->sin_addr) != 1) throw std::runtime_error("bad address " + address);
    len = sizeof(sockaddr_in);
  }
  fd_ = ::socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd_ < 0) throw std::runtime_error(std::string("socket: ") + std::strerror(errno));
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(timeout.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((timeout.count() % 1000) * 1000);
  ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  int one = 1;
  ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (!source.empty()) {
    sockaddr_storage from{};
    socklen_t from_len = 0;
    bool parsed = false;
    if (ss.ss_family == AF_INET6) {
      auto* a6 = reinterpret_cast<sockaddr_in6*>(&from);
      a6->sin6_family = AF_INET6;
      parsed = inet_pton(AF_INET6, source.c_str(), &a6->sin6_addr) == 1;
      from_len = sizeof(sockaddr_in6);
    } else {
      auto* a4 = reinterpret_cast<sockaddr_in*>(&from);
      a4->sin_family = AF_INET;
      parsed = inet_pton(AF_INET, source.c_str(), &a4->sin_addr) == 1;
      from_len = sizeof(sockaddr_in);
    }
    if (!parsed || ::bind(fd_, reinterpret_cast<sockaddr*>(&from), from_len) != 0) {
      const std::string why = parsed ? std::strerror(errno) : "not an address of the server's family";
      ::close(fd_);
      fd_ = -1;
      throw std::runtime_error("bind to " + source + ": " + why);
    }
  }
  if (::connect(fd_, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    const std::string why = std::strerror(errno);
    ::close(fd_);
    fd_ = -1;
    throw std::runtime_error("connect to " + address + ":" + std::to_string(port) + ": " + why);
  }
  if (implicit_tls) handshake();
  greeting_ = read_reply();
}

SmtpInjector::~SmtpInjector() {
  if (ssl_ != nullptr) SSL_free(ssl_of(ssl_));
  if (ctx_ != nullptr) SSL_CTX_free(static_cast<SSL_CTX*>(ctx_));
  if (fd_ >= 0) ::close(fd_);
}

void SmtpInjector::handshake() {
  ctx_ = SSL_CTX_new(TLS_client_method());
  ssl_ = SSL_new(static_cast<SSL_CTX*>(ctx_));
  SSL_set_fd(ssl_of(ssl_), fd_);
  if (SSL_connect(ssl_of(ssl_)) != 1) throw std::runtime_error("TLS handshake with the relay failed");
}

void SmtpInjector::write_all(const std::string& bytes) {
  std::size_t off = 0;
  while (off < bytes.size()) {
    long n = 0;
    if (ssl_ != nullptr) {
      n = SSL_write(ssl_of(ssl_), bytes.data() + off, static_cast<int>(bytes.size() - off));
    } else {
      n = ::send(fd_, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
    }
    if (n <= 0) throw std::runtime_error("write to the relay failed");
    off += static_cast<std::size_t>(n);
  }
}

bool SmtpInjector::fill() {
  char buf[16384];
  long n = 0;
  if (ssl_ != nullptr) {
    n = SSL_read(ssl_of(ssl_), buf, sizeof buf);
  } else {
    n = ::recv(fd_, buf, sizeof buf, 0);
  }
  if (n <= 0) return false;
  buffer_.append(buf, static_cast<std::size_t>(n));
  return true;
}

std::string SmtpInjector::read_reply() {
  std::string reply;
  for (;;) {
    auto eol = buffer_.find("\r\n");
    while (eol == std::string::npos) {
      if (!fill()) throw std::runtime_error("connection closed or timed out; got so far: " + reply + buffer_);
      eol = buffer_.find("\r\n");
    }
    std::string line = buffer_.substr(0, eol);
    buffer_.erase(0, eol + 2);
    if (!reply.empty()) reply += "\r\n";
    reply += line;
    if (line.size() < 4 || line[3] != '-') return reply;
  }
}

std::string SmtpInjector::command(const std::string& line) {
  write_all(line + "\r\n");
  return read_reply();
}

std::string SmtpInjector::raw(const std::string& bytes, int replies) {
  write_all(bytes);
  std::string out;
  for (int i = 0; i < replies; ++i) {
    if (i > 0) out += "\n";
    out += read_reply();
  }
  return out;
}

std::string SmtpInjector::starttls() {
  std::string r = command("STARTTLS");
  if (r.rfind("220", 0) != 0) return r;
  buffer_.clear();
  handshake();
  return r;
}

std::string SmtpInjector::auth_plain(const std::string& user, const std::string& password) {
  return command("AUTH PLAIN " + base64(std::string(1, '\0') + user + std::string(1, '\0') + password));
}

std::string SmtpInjector::auth_login(const std::string& user, const std::string& password) {
  std::string r = command("AUTH LOGIN");
  if (r.rfind("334", 0) != 0) return r;
  r = command(base64(user));
  if (r.rfind("334", 0) != 0) return r;
  return command(base64(password));
}

std::string SmtpInjector::send(const std::string& from, const std::vector<std::string>& to, const std::string& message,
                               const std::string& mail_params, const std::string& rcpt_params) {
  std::string r = command("MAIL FROM:<" + from + ">" + (mail_params.empty() ? "" : " " + mail_params));
  if (r.rfind("250", 0) != 0) return "MAIL: " + r;
  int accepted = 0;
  std::string last_rcpt;
  for (const auto& t : to) {
    last_rcpt = command("RCPT TO:<" + t + ">" + (rcpt_params.empty() ? "" : " " + rcpt_params));
    if (last_rcpt.rfind("250", 0) == 0) ++accepted;
  }
  if (accepted == 0) {
    command("RSET");
    return "RCPT: " + last_rcpt;
  }
  r = command("DATA");
  if (r.rfind("354", 0) != 0) return "DATA: " + r;
  std::string data;
  data.reserve(message.size() + 64);
  bool line_start = true;
  for (char c : message) {
    if (line_start && c == '.') data += '.';
    data += c;
    line_start = c == '\n';
  }
  if (data.size() < 2 || data.compare(data.size() - 2, 2, "\r\n") != 0) data += "\r\n";
  data += ".\r\n";
  write_all(data);
  return read_reply();
}

void SmtpInjector::quit() {
  try {
    command("QUIT");
  } catch (const std::exception&) {
  }
}

std::string SmtpInjector::queued_as(const std::string& reply) {
  const auto p = reply.find("queued as ");
  if (p == std::string::npos) return {};
  std::string id = reply.substr(p + 10);
  while (!id.empty() && (id.back() == '\r' || id.back() == '\n' || id.back() == ' ')) id.pop_back();
  return id;
}

}  // namespace danerelay::testsupport
