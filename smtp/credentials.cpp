// smtp/credentials.cpp — see credentials.hpp.
#include "smtp/credentials.hpp"

#include <crypt.h>
#include <openssl/crypto.h>
#include <sys/stat.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>

namespace danerelay::smtp {

namespace {

constexpr std::size_t max_file_size = 16 * 1024 * 1024;

[[noreturn]] void fail(std::string_view source, std::size_t line, const std::string& why) {
  throw CredentialsError(std::string(source) + ":" + std::to_string(line) + ": " + why);
}

bool supported_prefix(std::string_view hash) {
  return hash.starts_with("$y$") || hash.starts_with("$6$") || hash.starts_with("$2b$") || hash.starts_with("$2y$");
}

// A complete hash, not just a setting ("$6$salt" would make crypt_rn compute a fresh hash that
// never matches): the checksum part has its algorithm's length (base-64 characters).
bool complete_hash(std::string_view hash) {
  if (hash.starts_with("$2")) return hash.size() == 60;  // $2b$NN$ + 22 salt + 31 hash
  const std::size_t last = hash.rfind('$');
  const std::size_t expected = hash.starts_with("$6$") ? 86 : 43;  // SHA-512-crypt, yescrypt
  return last != std::string_view::npos && hash.size() - last - 1 == expected;
}

bool valid_name(std::string_view name) {
  if (name.empty() || name.size() > 255) return false;
  for (unsigned char c : name) {
    if (c <= 32 || c == 127 || c == ':') return false;
  }
  return true;
}

// crypt_rn into per-call state (struct crypt_data is ~32 KiB: heap, not stack). Returns ""
// when libxcrypt refuses (it then writes a string starting with '*').
std::string compute(std::string_view password, const std::string& setting) {
  auto data = std::make_unique<crypt_data>();
  std::memset(data.get(), 0, sizeof(crypt_data));
  const std::string phrase(password);
  const char* out = crypt_rn(phrase.c_str(), setting.c_str(), data.get(), sizeof(crypt_data));
  std::string result = out != nullptr && out[0] != '*' ? std::string(out) : std::string();
  OPENSSL_cleanse(data.get(), sizeof(crypt_data));
  return result;
}

}  // namespace

Credentials::Credentials() : table_(std::make_shared<const Table>()) {}
Credentials::Credentials(const Credentials& other) : table_(other.table_.load()) {}
Credentials::Credentials(Credentials&& other) noexcept : table_(other.table_.load()) {}
Credentials& Credentials::operator=(const Credentials& other) {
  if (this != &other) table_.store(other.table_.load());
  return *this;
}
Credentials& Credentials::operator=(Credentials&& other) noexcept {
  if (this != &other) table_.store(other.table_.load());
  return *this;
}

bool Credentials::contains(std::string_view user) const {
  const auto t = table_.load();
  return t->users.find(user) != t->users.end();
}

Credentials Credentials::parse(std::string_view text, std::string_view source) {
  auto table = std::make_shared<Table>();
  std::size_t line_no = 0;
  while (!text.empty()) {
    ++line_no;
    const std::size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t')) line.remove_suffix(1);
    std::string_view probe = line;
    while (!probe.empty() && (probe.front() == ' ' || probe.front() == '\t')) probe.remove_prefix(1);
    if (probe.empty() || probe.front() == '#') continue;
    const std::size_t colon = line.find(':');
    if (colon == std::string_view::npos) fail(source, line_no, "expected name:hash");
    const auto name = line.substr(0, colon);
    const auto hash = line.substr(colon + 1);
    if (!valid_name(name)) fail(source, line_no, "invalid user name");
    if (!supported_prefix(hash)) fail(source, line_no, "unsupported hash (want $y$, $6$ or $2b$)");
    const std::string h(hash);
    if (crypt_checksalt(h.c_str()) != CRYPT_SALT_OK || !complete_hash(h)) fail(source, line_no, "malformed or disabled hash");
    if (!table->users.emplace(std::string(name), h).second) {
      fail(source, line_no, "duplicate user \"" + std::string(name) + "\"");
    }
    if (table->dummy_hash.empty()) table->dummy_hash = h;
  }
  Credentials c;
  c.table_.store(std::move(table));
  return c;
}

CredentialsLoad Credentials::load(const std::filesystem::path& file) {
  std::vector<std::string> warnings;
  const std::string name = file.string();
  std::ifstream in(file, std::ios::binary);
  if (!in) throw CredentialsError(name + ": cannot open: " + std::strerror(errno));
  struct stat st {};
  if (::stat(name.c_str(), &st) == 0 && (st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    warnings.push_back("credentials file " + name + " is accessible by group or others (mode " + mode +
                       "); it should be mode 0600");
  }
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) throw CredentialsError(name + ": read error");
  const std::string content = text.str();
  if (content.size() > max_file_size) throw CredentialsError(name + ": file too large");
  return CredentialsLoad{parse(content, name), std::move(warnings)};
}

bool Credentials::verify(std::string_view user, std::string_view password) const {
  const auto t = table_.load();  // this snapshot, even if a reload swaps the table meanwhile
  if (t->users.empty()) return false;
  const auto it = t->users.find(user);
  const std::string& stored = it != t->users.end() ? it->second : t->dummy_hash;
  const std::string computed = compute(password, stored);
  const bool same = !computed.empty() && computed.size() == stored.size() &&
                    CRYPTO_memcmp(computed.data(), stored.data(), stored.size()) == 0;
  return same && it != t->users.end();
}

}  // namespace danerelay::smtp
