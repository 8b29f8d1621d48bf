// relay/queue/posix_io.hpp — the few POSIX file operations the spool is built from, each
// returning errno rather than throwing (the disk thread turns them into SpoolResult text), with
// EINTR and short reads and writes handled once, here.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <unistd.h>

namespace danerelay::relay::posix {

// A file descriptor that closes itself.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) noexcept : fd_(fd) {}
  UniqueFd(UniqueFd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&& o) noexcept {
    if (this != &o) reset(std::exchange(o.fd_, -1));
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() { reset(); }
  void reset(int fd = -1) noexcept {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }
  [[nodiscard]] int get() const noexcept { return fd_; }
  [[nodiscard]] explicit operator bool() const noexcept { return fd_ >= 0; }

 private:
  int fd_ = -1;
};

// "<op> <path>: <strerror>", the spool's error text.
[[nodiscard]] std::string errno_text(std::string_view op, const std::filesystem::path& path, int err);
// 0 or errno. Loops over short writes and EINTR.
[[nodiscard]] int write_all(int fd, std::string_view data);
// 0 or errno: all of `parts`, in order, at the file's current position, in as few writev
// calls as IOV_MAX allows. Loops over short writes and EINTR.
[[nodiscard]] int writev_all(int fd, const std::vector<std::string_view>& parts);
// 0 or errno; a short read counts as EIO (the file shrank under us).
[[nodiscard]] int pread_all(int fd, char* out, std::size_t size, std::uint64_t offset);
// 0 or errno, EINTR retried.
[[nodiscard]] int fdatasync_retry(int fd);
[[nodiscard]] int fsync_retry(int fd);
// rename that refuses to replace: queue ids are time-based, so after a clock step back a new id
// can equal one already in msg/; silently replacing that message would lose it. EEXIST then.
[[nodiscard]] int rename_noreplace(int from_dir, const std::string& from, int to_dir, const std::string& to);
// Entry names of a directory (no "." / ".."), sorted; nullopt + errno when it cannot be read.
[[nodiscard]] std::optional<std::vector<std::string>> list_directory(const std::filesystem::path& dir, int* err);
// Whole small file, or nullopt (errno in *err; ENOENT = missing).
[[nodiscard]] std::optional<std::string> read_small_file(const std::filesystem::path& path, int* err);
// Best effort: makes a directory's entries durable.
void fsync_directory(const std::filesystem::path& path);
// Throw std::system_error: for start-up, where a failure is fatal.
[[nodiscard]] UniqueFd open_directory(const std::filesystem::path& path);
void make_directory(const std::filesystem::path& path);  // 0700; an existing one is fine

}  // namespace danerelay::relay::posix
