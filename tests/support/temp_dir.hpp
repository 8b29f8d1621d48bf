// tests/support/temp_dir.hpp — a uniquely named temporary directory, removed with everything in it when the
// owner goes away. For tests and the demo: each test gets its own directory, so runs never share files.
#pragma once

#include <filesystem>
#include <string_view>

namespace danerelay::testsupport {

class TempDir {
 public:
  // Creates <temp_directory_path()>/<prefix>-<random suffix>; throws std::runtime_error if it cannot.
  explicit TempDir(std::string_view prefix = "danerelay-test");
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  TempDir(TempDir&& other) noexcept;
  TempDir& operator=(TempDir&& other) noexcept;

  [[nodiscard]] const std::filesystem::path& path() const { return path_; }

 private:
  void remove() noexcept;
  std::filesystem::path path_;  // empty once moved from
};

}  // namespace danerelay::testsupport
