// relay/queue/spool_scan.cpp — see spool_scan.hpp.
#include "relay/queue/spool_scan.hpp"

#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <set>

#include "relay/queue/posix_io.hpp"
#include "relay/queue/spool_format.hpp"

namespace danerelay::relay::spool_scan {

namespace {

namespace fs = std::filesystem;
using namespace posix;
using namespace spool_format;

void warn(std::vector<std::string>* warnings, std::string text) {
  if (warnings != nullptr) warnings->push_back(std::move(text));
}

}  // namespace

// The envelope of msg/NAME, or nullopt with the reason in *why.
std::optional<Envelope> read_message(const fs::path& dir, const std::string& name, std::string* why) {
  const fs::path path = dir / "msg" / name;
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd) {
    *why = errno_text("open", path, errno);
    return std::nullopt;
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) {
    *why = errno_text("fstat", path, errno);
    return std::nullopt;
  }
  const auto file_size = static_cast<std::uint64_t>(st.st_size);
  if (!S_ISREG(st.st_mode) || file_size < kTrailerSize) {
    *why = "too short for a trailer (" + std::to_string(file_size) + " bytes)";
    return std::nullopt;
  }
  std::string trailer(kTrailerSize, '\0');
  if (int e = pread_all(fd.get(), trailer.data(), kTrailerSize, file_size - kTrailerSize); e != 0) {
    *why = errno_text("read", path, e);
    return std::nullopt;
  }
  const auto fields = parse_trailer(trailer, file_size, why);
  if (!fields) return std::nullopt;
  const std::uint64_t message_length = fields->message_length;
  std::string record(fields->record_length, '\0');
  if (int e = pread_all(fd.get(), record.data(), record.size(), message_length); e != 0) {
    *why = errno_text("read", path, e);
    return std::nullopt;
  }
  if (!checksum_matches(trailer, record)) {
    *why = "envelope checksum mismatch";
    return std::nullopt;
  }
  try {
    Envelope e = parse_envelope_record(record);
    if (e.id.str() != name) {
      *why = "envelope id " + e.id.str() + " does not match the file name";
      return std::nullopt;
    }
    if (e.size != message_length) {
      *why = "envelope size does not match the trailer";
      return std::nullopt;
    }
    e.body = path;
    e.body_offset = 0;
    return e;
  } catch (const std::exception& x) {
    *why = std::string("bad envelope record: ") + x.what();
    return std::nullopt;
  }
}

// The state of a valid message: the file, or the initial state when there is none; a corrupt
// file also gives the initial state (with a warning): delivering again to recipients that were
// already done (at-least-once) beats losing the ones that were not.
MessageState read_state(const fs::path& dir, const Envelope& e, std::vector<std::string>* warnings) {
  const fs::path path = dir / "state" / e.id.str();
  int err = 0;
  const auto text = read_small_file(path, &err);
  if (!text) {
    if (err != ENOENT) warn(warnings, errno_text("read", path, err) + "; using the initial state");
    return initial_state(e);
  }
  try {
    MessageState s = parse_state_record(*text);
    if (s.recipients.size() != e.recipients.size()) throw std::runtime_error("recipient count differs from the envelope");
    return s;
  } catch (const std::exception& x) {
    warn(warnings, "corrupt state file " + path.string() + " (" + x.what() + "); using the initial state");
    return initial_state(e);
  }
}

// scan() and recover() in one: `repair` deletes what does not belong (recover) instead of only
// reporting it (scan).
std::vector<QueuedMessage> read_spool(const fs::path& dir, std::vector<std::string>* warnings, bool repair) {
  std::vector<QueuedMessage> out;
  bool msg_changed = false;
  bool state_changed = false;
  auto drop = [&](const fs::path& p) {
    std::error_code ec;
    fs::remove(p, ec);
    if (ec) warn(warnings, "cannot remove " + p.string() + ": " + ec.message());
  };

  int err = 0;
  if (repair) {
    // tmp/: messages whose commit never completed, so never acknowledged.
    if (auto names = list_directory(dir / "tmp", &err)) {
      for (const auto& n : *names) {
        warn(warnings, "removing incomplete message " + (dir / "tmp" / n).string());
        drop(dir / "tmp" / n);
      }
    }
  }

  std::set<std::string> valid;
  auto msg_names = list_directory(dir / "msg", &err);
  if (!msg_names) {
    warn(warnings, errno_text("read directory", dir / "msg", err));
    return out;
  }
  for (const auto& n : *msg_names) {
    const fs::path path = dir / "msg" / n;
    const auto id = QueueId::parse(n);
    std::string why;
    std::optional<Envelope> e;
    if (!id || id->str() != n) {
      why = "not a queue id";
    } else {
      e = read_message(dir, n, &why);
    }
    if (!e) {
      warn(warnings, (repair ? "discarding " : "invalid ") + path.string() + ": " + why);
      if (repair) {
        drop(path);
        msg_changed = true;
      }
      continue;
    }
    valid.insert(n);
    MessageState s = read_state(dir, *e, warnings);
    out.push_back(QueuedMessage{std::move(*e), std::move(s)});
  }

  if (auto names = list_directory(dir / "state", &err)) {
    for (const auto& n : *names) {
      const bool leftover = n.size() > kStateTmpSuffix.size() && n.ends_with(kStateTmpSuffix);
      if (!leftover && valid.contains(n)) continue;
      // An orphan is what remove() leaves when it crashes between its two unlinks (or the state
      // of a discarded message); a .tmp is a save() that never completed.
      if (!leftover) warn(warnings, (repair ? "removing orphan state file " : "orphan state file ") + (dir / "state" / n).string());
      if (repair) {
        drop(dir / "state" / n);
        state_changed = true;
      }
    }
  }
  // Deletions made durable so that a second crash does not bring the junk back (harmless, but noisy).
  if (msg_changed) fsync_directory(dir / "msg");
  if (state_changed) fsync_directory(dir / "state");

  std::sort(out.begin(), out.end(), [](const QueuedMessage& a, const QueuedMessage& b) {
    return a.envelope.arrival != b.envelope.arrival ? a.envelope.arrival < b.envelope.arrival : a.envelope.id < b.envelope.id;
  });
  return out;
}

}  // namespace danerelay::relay::spool_scan
