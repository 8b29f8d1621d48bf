// tests/smtp/credentials_test.cpp — smtp/credentials.hpp with hashes generated at test time
// (libxcrypt crypt_gensalt_rn + crypt_rn): yescrypt and SHA-512-crypt, file errors, permissions.
#include "smtp/credentials.hpp"

#include <crypt.h>
#include <sys/stat.h>

#include <gtest/gtest.h>

#include <fstream>
#include <memory>
#include <stdexcept>
#include <string>

#include "tests/support/temp_dir.hpp"

namespace danerelay::smtp {
namespace {

std::string make_hash(const char* prefix, unsigned long count, const std::string& password) {
  char salt[CRYPT_GENSALT_OUTPUT_SIZE];
  if (crypt_gensalt_rn(prefix, count, nullptr, 0, salt, sizeof salt) == nullptr) throw std::runtime_error("gensalt");
  auto data = std::make_unique<crypt_data>();
  const char* h = crypt_rn(password.c_str(), salt, data.get(), sizeof(crypt_data));
  if (h == nullptr || h[0] == '*') throw std::runtime_error("crypt");
  return h;
}

TEST(Credentials, VerifiesYescryptAndSha512) {
  const std::string text = "# users\n\nalice:" + make_hash("$y$", 0, "wonderland") + "\r\nbob:" +
                           make_hash("$6$", 1000, "builder") + "  \n";
  const auto c = Credentials::parse(text, "users");
  EXPECT_EQ(c.size(), 2u);
  EXPECT_TRUE(c.verify("alice", "wonderland"));
  EXPECT_FALSE(c.verify("alice", "Wonderland"));
  EXPECT_FALSE(c.verify("alice", ""));
  EXPECT_TRUE(c.verify("bob", "builder"));
  EXPECT_FALSE(c.verify("bob", "wonderland"));
  EXPECT_FALSE(c.verify("carol", "wonderland"));  // unknown user: still one hash, still false
  EXPECT_FALSE(c.verify("", ""));
}

TEST(Credentials, EmptyTableRejectsEveryone) {
  const Credentials c;
  EXPECT_FALSE(c.verify("alice", "x"));
  EXPECT_EQ(Credentials::parse("# nothing\n", "f").size(), 0u);
}

TEST(Credentials, ErrorsNameFileAndLine) {
  const std::string good = make_hash("$6$", 1000, "pw");
  struct Row {
    std::string text;
    std::string want;
  };
  const std::vector<Row> rows{
      {"# c\nalice\n", "users:2: expected name:hash"},
      {"alice:" + good + "\nalice:" + good + "\n", "users:2: duplicate user \"alice\""},
      {"alice:$1$abc$def\n", "users:1: unsupported hash (want $y$, $6$ or $2b$)"},
      {"alice:plaintext\n", "users:1: unsupported hash (want $y$, $6$ or $2b$)"},
      {"a b:" + good + "\n", "users:1: invalid user name"},
      {":" + good + "\n", "users:1: invalid user name"},
      {"alice:$6$\n", "users:1: malformed or disabled hash"},
  };
  for (const auto& r : rows) {
    try {
      (void)Credentials::parse(r.text, "users");
      ADD_FAILURE() << "accepted: " << r.text;
    } catch (const CredentialsError& e) {
      EXPECT_EQ(std::string(e.what()), r.want);
    }
  }
}

TEST(Credentials, LoadWarnsAboutPermissionsAndReloadSwaps) {
  testsupport::TempDir dir("danerelay-credentials");
  const auto path = dir.path() / "users";
  {
    std::ofstream out(path);
    out << "alice:" << make_hash("$6$", 1000, "one") << "\n";
  }
  ::chmod(path.c_str(), 0644);
  auto loaded = Credentials::load(path);
  ASSERT_EQ(loaded.warnings.size(), 1u);
  EXPECT_NE(loaded.warnings[0].find("accessible by group or others (mode 0644)"), std::string::npos);
  auto shared = std::make_shared<Credentials>(std::move(loaded.credentials));
  EXPECT_TRUE(shared->verify("alice", "one"));

  {
    std::ofstream out(path);
    out << "alice:" << make_hash("$6$", 1000, "two") << "\n";
  }
  ::chmod(path.c_str(), 0600);
  auto again = Credentials::load(path);
  EXPECT_TRUE(again.warnings.empty());
  *shared = std::move(again.credentials);  // what the daemon does on SIGHUP
  EXPECT_FALSE(shared->verify("alice", "one"));
  EXPECT_TRUE(shared->verify("alice", "two"));

  EXPECT_THROW((void)Credentials::load(dir.path() / "missing"), CredentialsError);
}

}  // namespace
}  // namespace danerelay::smtp
