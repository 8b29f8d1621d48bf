// smtp/credentials.hpp — the SMTP AUTH user table (server.credentials_file) and password checks.
//
// What this is: a parsed, immutable "name:hash" file and a verify() that checks one password
// against it with libxcrypt. What it is not: a SASL exchange (smtp/sasl.hpp) or a policy on
// who may relay.
//
// File format (one user per line):
//   # comment            blank lines and lines starting with '#' are ignored
//   scanner:$y$j9T$…     name ':' crypt(3) hash; yescrypt "$y$", SHA-512-crypt "$6$",
//                        bcrypt "$2b$" ("$2y$" too); make one with `mkpasswd -m yescrypt`
// Names: 1..255 octets, no ':' or whitespace or control characters, each at most once.
// Trailing whitespace and a CR before the LF are ignored.
//
// Errors: load()/parse() throw CredentialsError whose what() names FILE:LINE and the reason
// ("/etc/danerelay/users:3: unsupported hash (want $y$, $6$ or $2b$)"); hashes are never
// quoted in messages. load() also returns warnings: the file is readable by group or others.
//
// verify() is slow on purpose (yescrypt ≈ 10+ ms) and thread-safe (crypt_rn, per-call state):
// run it on a worker thread, never on the event loop. An unknown user costs one hash computation
// too (against the first user's hash, so the same algorithm and cost), and the comparison is
// constant-time (CRYPTO_memcmp), so response times do not reveal which names exist.
#pragma once

#include <atomic>
#include <filesystem>
#include <functional>
#include <memory>
#include <map>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace danerelay::smtp {

class CredentialsError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct CredentialsLoad;

// A snapshot-swapping table: assigning another Credentials (e.g. a reloaded file on SIGHUP,
// `*shared = std::move(loaded.credentials)`) atomically replaces the table while verify() calls
// on worker threads keep using the one they started with.
class Credentials {
 public:
  Credentials();  // no users: verify() always fails
  Credentials(const Credentials& other);
  Credentials(Credentials&& other) noexcept;
  Credentials& operator=(const Credentials& other);
  Credentials& operator=(Credentials&& other) noexcept;
  ~Credentials() = default;

  // Reads and parses `file`. Throws CredentialsError.
  [[nodiscard]] static CredentialsLoad load(const std::filesystem::path& file);
  // Parses file text; `source` names it in errors. Throws CredentialsError.
  [[nodiscard]] static Credentials parse(std::string_view text, std::string_view source);

  // Slow (one crypt(3) computation); thread-safe. False for unknown users and wrong passwords.
  [[nodiscard]] bool verify(std::string_view user, std::string_view password) const;

  [[nodiscard]] std::size_t size() const noexcept { return table_.load()->users.size(); }
  [[nodiscard]] bool contains(std::string_view user) const;

 private:
  struct Table {
    std::map<std::string, std::string, std::less<>> users;  // name → hash
    std::string dummy_hash;  // the first user's hash: unknown users pay the same cost
  };
  std::atomic<std::shared_ptr<const Table>> table_;
};

struct CredentialsLoad {
  Credentials credentials;
  std::vector<std::string> warnings;  // e.g. "credentials file F is accessible by group or others (mode 0644); ..."
};

}  // namespace danerelay::smtp
