// tests/support/temp_dir.cpp — TempDir: mkdtemp-style creation with a random suffix, recursive removal.
#include "tests/support/temp_dir.hpp"

#include <random>
#include <stdexcept>
#include <string>
#include <system_error>
#include <utility>

namespace danerelay::testsupport {
namespace {

std::string random_suffix() {
  static constexpr char alphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
  std::random_device device;
  std::uniform_int_distribution<std::size_t> pick(0, sizeof alphabet - 2);
  std::string out;
  for (int i = 0; i < 12; ++i) out += alphabet[pick(device)];
  return out;
}

}  // namespace

TempDir::TempDir(std::string_view prefix) {
  const std::filesystem::path base = std::filesystem::temp_directory_path();
  for (int attempt = 0; attempt < 16; ++attempt) {
    std::filesystem::path candidate = base / (std::string(prefix) + "-" + random_suffix());
    std::error_code error;
    // create_directory returns false when the name exists: try another suffix rather than share it.
    if (std::filesystem::create_directory(candidate, error)) {
      path_ = std::move(candidate);
      return;
    }
    if (error) throw std::runtime_error("cannot create " + candidate.string() + ": " + error.message());
  }
  throw std::runtime_error("cannot find a free temporary directory name under " + base.string());
}

TempDir::~TempDir() { remove(); }

TempDir::TempDir(TempDir&& other) noexcept : path_(std::exchange(other.path_, {})) {}

TempDir& TempDir::operator=(TempDir&& other) noexcept {
  if (this != &other) {
    remove();
    path_ = std::exchange(other.path_, {});
  }
  return *this;
}

void TempDir::remove() noexcept {
  if (path_.empty()) return;
  std::error_code ignored;  // a destructor must not throw; a leftover temp dir is not worth a crash
  std::filesystem::remove_all(path_, ignored);
  path_.clear();
}

}  // namespace danerelay::testsupport
