// smtp/sasl.hpp — the server side of SMTP AUTH (RFC 4954) for PLAIN (RFC 4616) and LOGIN
// (draft-murchison-sasl-login), as a sans-I/O state machine.
//
// What this is: the exchange only. The session sends "AUTH <mech> [initial-response]" to
// start(), each client response line to step(), and sends what comes back: a "334 <challenge>"
// line, or (Step::credentials) verifies the name and password it is handed — slowly, off the
// event loop (smtp/credentials.hpp) — or a failure reply. What it is not: a credential check,
// a policy (which mechanisms are offered, TLS-only) or a counter of failed attempts.
//
// Rules:
//   - "*" as a response cancels: "501 5.7.0 Authentication aborted" (RFC 4954 §4);
//   - "=" as the initial response is an empty response (RFC 4954 §4);
//   - malformed base64 (strict: RFC 4648 §4 alphabet, padding only at the end, length a multiple
//     of four, no whitespace) → "501 5.5.2 Cannot decode response";
//   - PLAIN: message = [authzid] NUL authcid NUL passwd (RFC 4616 §2); authzid must be empty or
//     equal to authcid (we do not support acting as another user), names and passwords must
//     not contain NUL, names no control characters → Step::failed with the 535 text;
//   - LOGIN: "334 VXNlcm5hbWU6" ("Username:"), "334 UGFzc3dvcmQ6" ("Password:"); an initial
//     response to AUTH LOGIN is taken as the user name (what Outlook and Cyrus do).
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace danerelay::smtp {

// RFC 4648 §4 base64, strict. nullopt when malformed.
[[nodiscard]] std::optional<std::string> base64_decode(std::string_view text);
[[nodiscard]] std::string base64_encode(std::string_view bytes);

class SaslExchange {
 public:
  enum class Mechanism { plain, login };

  struct Step {
    enum class Kind { challenge, credentials, failed };
    Kind kind = Kind::failed;
    std::string reply;     // challenge: "334 ..."; failed: the reply line (501/535)
  };

  // "PLAIN"/"LOGIN" in any case; nullopt for others.
  [[nodiscard]] static std::optional<Mechanism> parse_mechanism(std::string_view name) noexcept;
  [[nodiscard]] static std::string_view name(Mechanism m) noexcept;

  explicit SaslExchange(Mechanism mechanism) : mechanism_(mechanism) {}

  // `initial`: the initial response as sent (base64 or "="), if any.
  [[nodiscard]] Step start(std::optional<std::string_view> initial);
  // One client response line (CRLF removed).
  [[nodiscard]] Step step(std::string_view line);

  // Valid after Step::credentials.
  [[nodiscard]] const std::string& username() const noexcept { return username_; }
  [[nodiscard]] const std::string& password() const noexcept { return password_; }
  // Overwrites the password in memory (call once it has been checked).
  void forget_password() noexcept;

  [[nodiscard]] Mechanism mechanism() const noexcept { return mechanism_; }

 private:
  Step plain_response(std::string_view decoded);

  Mechanism mechanism_;
  enum class State { start, plain_wait, login_user, login_password, finished } state_ = State::start;
  std::string username_;
  std::string password_;
};

}  // namespace danerelay::smtp
