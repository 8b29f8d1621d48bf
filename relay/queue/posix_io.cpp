// relay/queue/posix_io.cpp — see posix_io.hpp.
#include "relay/queue/posix_io.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <limits.h>
#include <sys/uio.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <system_error>

namespace danerelay::relay::posix {

namespace fs = std::filesystem;

std::string errno_text(std::string_view op, const fs::path& path, int err) {
  return std::string(op) + " " + path.string() + ": " + std::strerror(err);
}

// 0 or errno. Loops over short writes and EINTR.
int write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return 0;
}

int writev_all(int fd, const std::vector<std::string_view>& parts) {
  std::vector<iovec> iov;
  iov.reserve(std::min<std::size_t>(parts.size(), IOV_MAX));
  std::size_t next = 0;
  while (next < parts.size()) {
    iov.clear();
    while (next < parts.size() && iov.size() < IOV_MAX) {
      if (!parts[next].empty()) iov.push_back(iovec{const_cast<char*>(parts[next].data()), parts[next].size()});
      ++next;
    }
    std::size_t first = 0;
    while (first < iov.size()) {
      const ssize_t n = ::writev(fd, iov.data() + first, static_cast<int>(std::min<std::size_t>(iov.size() - first, IOV_MAX)));
      if (n < 0) {
        if (errno == EINTR) continue;
        return errno;
      }
      auto done = static_cast<std::size_t>(n);
      while (first < iov.size() && done >= iov[first].iov_len) done -= iov[first++].iov_len;
      if (first < iov.size()) {
        iov[first].iov_base = static_cast<char*>(iov[first].iov_base) + done;
        iov[first].iov_len -= done;
      }
    }
  }
  return 0;
}

// 0 or errno; ENODATA-like short reads count as EIO (the file shrank under us).
int pread_all(int fd, char* out, std::size_t size, std::uint64_t offset) {
  while (size > 0) {
    const ssize_t n = ::pread(fd, out, size, static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    if (n == 0) return EIO;
    out += n;
    size -= static_cast<std::size_t>(n);
    offset += static_cast<std::uint64_t>(n);
  }
  return 0;
}

int fdatasync_retry(int fd) {
  int r = 0;
  do r = ::fdatasync(fd);
  while (r != 0 && errno == EINTR);
  return r == 0 ? 0 : errno;
}

int fsync_retry(int fd) {
  int r = 0;
  do r = ::fsync(fd);
  while (r != 0 && errno == EINTR);
  return r == 0 ? 0 : errno;
}

// rename that refuses to replace: queue ids are time-based, so after a clock step back a new id
// can equal one already in msg/; silently replacing that message would lose it.
int rename_noreplace(int from_dir, const std::string& from, int to_dir, const std::string& to) {
  if (::renameat2(from_dir, from.c_str(), to_dir, to.c_str(), RENAME_NOREPLACE) == 0) return 0;
  if (errno != EINVAL && errno != ENOSYS) return errno;
  // File system without RENAME_NOREPLACE: check, then rename (only the disk thread creates names).
  struct stat st {};
  if (::fstatat(to_dir, to.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) return EEXIST;
  return ::renameat(from_dir, from.c_str(), to_dir, to.c_str()) == 0 ? 0 : errno;
}

// Entry names of a directory (no "." / ".."); nullopt + errno when it cannot be read.
std::optional<std::vector<std::string>> list_directory(const fs::path& dir, int* err) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) {
    *err = errno;
    return std::nullopt;
  }
  std::vector<std::string> names;
  while (const dirent* e = ::readdir(d)) {
    std::string_view n = e->d_name;
    if (n != "." && n != "..") names.emplace_back(n);
  }
  ::closedir(d);
  std::sort(names.begin(), names.end());
  return names;
}

// Whole small file, or nullopt (errno in *err; ENOENT = missing).
std::optional<std::string> read_small_file(const fs::path& path, int* err) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd) {
    *err = errno;
    return std::nullopt;
  }
  std::string out;
  char buf[16384];
  for (;;) {
    const ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      *err = errno;
      return std::nullopt;
    }
    if (n == 0) break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  return out;
}

void fsync_directory(const fs::path& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd) (void)fsync_retry(fd.get());
}

UniqueFd open_directory(const fs::path& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd) throw std::system_error(errno, std::generic_category(), "open " + path.string());
  return fd;
}

void make_directory(const fs::path& path) {
  // 0700: message contents and addresses are private to the daemon's user.
  if (::mkdir(path.c_str(), 0700) != 0 && errno != EEXIST) throw std::system_error(errno, std::generic_category(), "mkdir " + path.string());
}

}  // namespace danerelay::relay::posix
