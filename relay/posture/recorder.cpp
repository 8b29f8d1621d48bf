// relay/posture/recorder.cpp — the posture history's owner: the lock, the clock and the file
// (see recorder.hpp). The counting and the format are history.cpp's.
#include "relay/posture/recorder.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <utility>

namespace danerelay::relay::posture {

namespace {

// Larger than any file we write (318 buckets + 100 domains of ≤ 255 bytes is well under 200 KiB).
constexpr std::uintmax_t kMaxFileSize = 4 * 1024 * 1024;

std::string errno_text(const std::string& what, const std::filesystem::path& path, int err) {
  return what + " " + path.string() + ": " + std::strerror(err);
}

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  [[nodiscard]] int get() const { return fd_; }
  int release_and_close() {
    const int rc = ::close(fd_);
    fd_ = -1;
    return rc;
  }

 private:
  int fd_;
};

}  // namespace

std::filesystem::path history_file(const config::Config& cfg) { return cfg.server.state_dir / "posture-history.json"; }

LoadedHistory read_history_file(const std::filesystem::path& file) {
  LoadedHistory out;
  std::error_code ec;
  if (!std::filesystem::exists(file, ec)) return out;
  out.found = true;
  const auto size = std::filesystem::file_size(file, ec);
  if (ec) {
    out.warning = "cannot read the posture history " + file.string() + ": " + ec.message();
    return out;
  }
  if (size > kMaxFileSize) {
    out.warning = "posture history " + file.string() + " is larger than any history (" + std::to_string(size) + " bytes)";
    return out;
  }
  std::ifstream in(file, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  if (!in && !in.eof()) {
    out.warning = "cannot read the posture history " + file.string();
    return out;
  }
  std::string why;
  auto h = decode(text.str(), &why);
  if (!h) {
    out.warning = "posture history " + file.string() + " is unusable (" + why + "); starting with an empty history";
    return out;
  }
  out.history = std::move(*h);
  return out;
}

std::optional<std::string> write_file_durably(const std::filesystem::path& file, const std::string& text) {
  const auto tmp = std::filesystem::path(file.string() + ".tmp");
  {
    Fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640));
    if (fd.get() < 0) return errno_text("cannot create", tmp, errno);
    std::size_t done = 0;
    while (done < text.size()) {
      const ssize_t n = ::write(fd.get(), text.data() + done, text.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return errno_text("cannot write", tmp, errno);
      done += static_cast<std::size_t>(n);
    }
    if (::fsync(fd.get()) != 0) return errno_text("cannot flush", tmp, errno);
    if (fd.release_and_close() != 0) return errno_text("cannot close", tmp, errno);
  }
  if (::rename(tmp.c_str(), file.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    return errno_text("cannot rename " + tmp.string() + " to", file, err);
  }
  auto dir = file.parent_path();
  if (dir.empty()) dir = ".";
  Fd dfd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dfd.get() < 0) return errno_text("cannot open the directory", dir, errno);
  if (::fsync(dfd.get()) != 0) return errno_text("cannot flush the directory", dir, errno);
  return std::nullopt;
}

Recorder::Recorder(std::filesystem::path file, Now now) : file_(std::move(file)), now_(std::move(now)) {}

void Recorder::record(const Envelope& /*envelope*/, const RecipientResult& result) {
  const auto t = now_();
  std::lock_guard lock(mutex_);
  posture::record(history_, t, result);
}

History Recorder::history() const {
  const auto t = now_();
  std::lock_guard lock(mutex_);
  History h = history_;
  h.fine.expire(t);
  h.daily.expire(t);
  return h;
}

std::optional<std::string> Recorder::load() {
  auto loaded = read_history_file(file_);
  if (loaded.warning && loaded.found) {
    std::error_code ec;
    std::filesystem::rename(file_, file_.string() + ".corrupt", ec);
    if (!ec) *loaded.warning += "; the file was kept as " + file_.string() + ".corrupt";
  }
  const auto t = now_();
  loaded.history.fine.expire(t);
  loaded.history.daily.expire(t);
  std::lock_guard lock(mutex_);
  history_ = std::move(loaded.history);
  return loaded.warning;
}

std::optional<std::string> Recorder::save() const {
  const auto t = now_();
  std::string text;
  {
    std::lock_guard lock(mutex_);
    text = encode(history_, t);
  }
  return write_file_durably(file_, text);
}

}  // namespace danerelay::relay::posture
