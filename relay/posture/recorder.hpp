// relay/posture/recorder.hpp — the posture history of a running daemon: fed one call per
// recipient result (the ResultObserver signature of relay/core/observer.hpp), kept in memory,
// saved to and loaded from a small crash-safe file in server.state_dir.
//
// Who calls what: the daemon passes record() as its result observer, calls load() once at
// start-up, save() periodically and at shutdown, and history() when the posture page is asked
// for. Time comes from an injected clock, so tests move it (a bucket rollover across midnight, a
// gap of days) without waiting.
//
// The file (history.hpp's format, version 1) is written to "<file>.tmp", flushed (fsync),
// renamed over the file, and the directory flushed: after a crash there is either the old or
// the new history, never a torn one. Its size is bounded by construction (288 + 30 buckets,
// at most 100 domains of at most 255 bytes). A corrupt or truncated file gives a warning and an
// empty history (the bad file is kept as "<file>.corrupt" for inspection), never a failed start.
#pragma once

#include <filesystem>
#include <functional>
#include <mutex>
#include <optional>
#include <string>

#include "config/config.hpp"
#include "relay/core/envelope.hpp"
#include "relay/posture/history.hpp"

namespace danerelay::relay::posture {

// "<server.state_dir>/posture-history.json"
[[nodiscard]] std::filesystem::path history_file(const config::Config& cfg);

struct LoadedHistory {
  History history;               // empty when the file is missing or unusable
  std::optional<std::string> warning;  // why the file was not used (missing is not a warning)
  bool found = false;            // the file existed
};
// Reads and decodes a history file (no side effects).
[[nodiscard]] LoadedHistory read_history_file(const std::filesystem::path& file);

// Writes `text` to `file` crash-safely (tmp, fsync, rename, fsync of the directory); the
// errno text of the failing step on failure.
[[nodiscard]] std::optional<std::string> write_file_durably(const std::filesystem::path& file, const std::string& text);

class Recorder {
 public:
  using Now = std::function<WallClock::time_point()>;
  explicit Recorder(std::filesystem::path file, Now now = [] { return WallClock::now(); });

  // One recipient result (relay/core/observer.hpp ResultObserver). Thread-safe.
  void record(const Envelope& envelope, const RecipientResult& result);

  // A copy of the history with what fell out of the windows dropped, and the time it is for.
  [[nodiscard]] History history() const;
  [[nodiscard]] WallClock::time_point now() const { return now_(); }
  [[nodiscard]] const std::filesystem::path& file() const noexcept { return file_; }

  // Replaces the in-memory history with the file's. Returns the warning to log, if any (a
  // corrupt file is renamed to "<file>.corrupt" and the history starts empty).
  std::optional<std::string> load();
  // Writes the history (tmp, fsync, rename, fsync dir). Returns the error to log, if any; the
  // in-memory history is kept either way.
  std::optional<std::string> save() const;

 private:
  std::filesystem::path file_;
  Now now_;
  mutable std::mutex mutex_;
  History history_;
};

}  // namespace danerelay::relay::posture
