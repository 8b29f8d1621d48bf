// smtp/sasl.cpp — see sasl.hpp. Our own strict base64 decoder: EVP_DecodeBlock accepts
// whitespace and reports padding as output bytes, which makes strictness harder than this.
#include "smtp/sasl.hpp"

#include <openssl/crypto.h>

#include <array>
#include <cctype>

namespace danerelay::smtp {

namespace {

constexpr std::string_view alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

constexpr std::string_view aborted = "501 5.7.0 Authentication aborted";
constexpr std::string_view undecodable = "501 5.5.2 Cannot decode response";
constexpr std::string_view auth_failed = "535 5.7.8 Error: authentication failed";

int value_of(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

SaslExchange::Step failed(std::string_view reply) {
  return SaslExchange::Step{SaslExchange::Step::Kind::failed, std::string(reply)};
}

SaslExchange::Step challenge(std::string_view text) {
  return SaslExchange::Step{SaslExchange::Step::Kind::challenge, "334 " + base64_encode(text)};
}

// A user name we are willing to log and look up: no NUL, no controls, not empty.
bool clean_name(std::string_view s) {
  if (s.empty() || s.size() > 255) return false;
  for (unsigned char c : s) {
    if (c < 32 || c == 127) return false;
  }
  return true;
}

void wipe(std::string& s) noexcept {
  if (!s.empty()) OPENSSL_cleanse(s.data(), s.size());
  s.clear();
}

}  // namespace

std::optional<std::string> base64_decode(std::string_view text) {
  if (text.size() % 4 != 0) return std::nullopt;
  std::string out;
  out.reserve(text.size() / 4 * 3);
  for (std::size_t i = 0; i < text.size(); i += 4) {
    const bool last = i + 4 == text.size();
    std::array<int, 4> v{};
    int pad = 0;
    for (int k = 0; k < 4; ++k) {
      const char c = text[i + static_cast<std::size_t>(k)];
      if (c == '=') {
        // Padding only in the last quantum, only in its last one or two places.
        if (!last || k < 2) return std::nullopt;
        ++pad;
        v[static_cast<std::size_t>(k)] = 0;
      } else {
        if (pad > 0) return std::nullopt;  // data after '='
        v[static_cast<std::size_t>(k)] = value_of(c);
        if (v[static_cast<std::size_t>(k)] < 0) return std::nullopt;
      }
    }
    const unsigned triple = (static_cast<unsigned>(v[0]) << 18) | (static_cast<unsigned>(v[1]) << 12) |
                            (static_cast<unsigned>(v[2]) << 6) | static_cast<unsigned>(v[3]);
    // RFC 4648 §3.5: the unused bits before padding must be zero (canonical encoding).
    if ((pad == 1 && (triple & 0xFF) != 0) || (pad == 2 && (triple & 0xFFFF) != 0)) return std::nullopt;
    out.push_back(static_cast<char>((triple >> 16) & 0xFF));
    if (pad < 2) out.push_back(static_cast<char>((triple >> 8) & 0xFF));
    if (pad < 1) out.push_back(static_cast<char>(triple & 0xFF));
  }
  return out;
}

std::string base64_encode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const unsigned t = (static_cast<unsigned char>(bytes[i]) << 16) | (static_cast<unsigned char>(bytes[i + 1]) << 8) |
                       static_cast<unsigned char>(bytes[i + 2]);
    out.push_back(alphabet[(t >> 18) & 63]);
    out.push_back(alphabet[(t >> 12) & 63]);
    out.push_back(alphabet[(t >> 6) & 63]);
    out.push_back(alphabet[t & 63]);
  }
  const std::size_t rest = bytes.size() - i;
  if (rest > 0) {
    unsigned t = static_cast<unsigned>(static_cast<unsigned char>(bytes[i])) << 16;
    if (rest == 2) t |= static_cast<unsigned>(static_cast<unsigned char>(bytes[i + 1])) << 8;
    out.push_back(alphabet[(t >> 18) & 63]);
    out.push_back(alphabet[(t >> 12) & 63]);
    out.push_back(rest == 2 ? alphabet[(t >> 6) & 63] : '=');
    out.push_back('=');
  }
  return out;
}

std::optional<SaslExchange::Mechanism> SaslExchange::parse_mechanism(std::string_view name) noexcept {
  auto eq = [&](std::string_view m) {
    if (name.size() != m.size()) return false;
    for (std::size_t i = 0; i < m.size(); ++i) {
      if (std::toupper(static_cast<unsigned char>(name[i])) != m[i]) return false;
    }
    return true;
  };
  if (eq("PLAIN")) return Mechanism::plain;
  if (eq("LOGIN")) return Mechanism::login;
  return std::nullopt;
}

std::string_view SaslExchange::name(Mechanism m) noexcept { return m == Mechanism::plain ? "PLAIN" : "LOGIN"; }

void SaslExchange::forget_password() noexcept { wipe(password_); }

SaslExchange::Step SaslExchange::start(std::optional<std::string_view> initial) {
  if (state_ != State::start) return failed(auth_failed);
  if (mechanism_ == Mechanism::plain) {
    if (!initial) {
      state_ = State::plain_wait;
      return challenge("");  // RFC 4954 §4: "334 " and an empty challenge
    }
    return step(*initial);  // handled like the response below ("=" means empty)
  }
  state_ = State::login_user;
  if (!initial) return challenge("Username:");
  return step(*initial);
}

SaslExchange::Step SaslExchange::step(std::string_view line) {
  if (line == "*") {  // RFC 4954 §4: the client cancels
    state_ = State::finished;
    wipe(password_);
    return failed(aborted);
  }
  std::optional<std::string> decoded;
  if (line == "=") {
    decoded = std::string();
  } else {
    decoded = base64_decode(line);
  }
  if (!decoded) {
    state_ = State::finished;
    return failed(undecodable);
  }
  switch (state_) {
    case State::start:
    case State::plain_wait: {
      state_ = State::finished;
      auto s = plain_response(*decoded);
      wipe(*decoded);
      return s;
    }
    case State::login_user:
      if (!clean_name(*decoded)) {
        state_ = State::finished;
        return failed(auth_failed);
      }
      username_ = std::move(*decoded);
      state_ = State::login_password;
      return challenge("Password:");
    case State::login_password:
      state_ = State::finished;
      if (decoded->empty() || decoded->find('\0') != std::string::npos) {
        wipe(*decoded);
        return failed(auth_failed);
      }
      password_ = std::move(*decoded);
      return Step{Step::Kind::credentials, {}};
    case State::finished: break;
  }
  return failed(auth_failed);
}

// RFC 4616 §2: message = [authzid] UTF8NUL authcid UTF8NUL passwd
SaslExchange::Step SaslExchange::plain_response(std::string_view decoded) {
  const std::size_t first = decoded.find('\0');
  if (first == std::string_view::npos) return failed(auth_failed);
  const std::size_t second = decoded.find('\0', first + 1);
  if (second == std::string_view::npos) return failed(auth_failed);
  const auto authzid = decoded.substr(0, first);
  const auto authcid = decoded.substr(first + 1, second - first - 1);
  const auto passwd = decoded.substr(second + 1);
  if (!clean_name(authcid) || passwd.empty() || passwd.find('\0') != std::string_view::npos) return failed(auth_failed);
  if (!authzid.empty() && authzid != authcid) return failed(auth_failed);  // no proxy authorization
  username_ = std::string(authcid);
  password_ = std::string(passwd);
  return Step{Step::Kind::credentials, {}};
}

}  // namespace danerelay::smtp
