// relay/queue/spool.hpp — the durable queue on disk: one file per message, made durable before the
// SMTP server says 250, with group commit so that one flush carries many messages, and a small
// per-message state file replaced atomically after every delivery attempt.
//
// Layout under the spool directory (created 0700):
//   tmp/QID        being received; never acknowledged; deleted by recover()
//   msg/QID        the message: [message bytes][envelope record][fixed-size trailer with magic,
//                  lengths and a checksum]. Written to tmp/, flushed, renamed here, directory
//                  flushed. Immutable afterwards. A file whose trailer does not check out is a
//                  crash leftover and is discarded.
//   state/QID      MessageState, replaced by write-new + flush + rename (+ directory flush).
//                  Missing → the initial state (every recipient pending).
//
// Threads: all disk work (writes, flushes, renames, unlinks) runs on the spool's own disk
// thread; the event loop only copies bytes and waits on completions, so it never blocks on disk.
// Completions are delivered on the executor given to the constructor.
//
// Errors: I/O failures come back as SpoolError values (errno text and the path); nothing throws
// across the event loop except std::bad_alloc.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"
#include "relay/core/queue_state.hpp"

namespace danerelay::relay {

// queue.directory, or "<state_dir>/spool" when empty (`run` and `queue` agree on it).
[[nodiscard]] std::filesystem::path spool_directory(const config::Config& cfg);

struct SpoolOptions {
  std::filesystem::path directory;
  std::uint64_t min_free_space = 0;   // queue.min_free_space
  std::size_t max_batch = 256;        // most messages one flush carries
  // Test hook, empty in production: called on the disk thread right after each successful
  // "fdatasync" (file), "rename" (path = the new name), "unlink" and "fsync" (directory), so a
  // test can check the durability order without strace.
  std::function<void(std::string_view op, const std::filesystem::path& path)> on_disk_op;
  // Observer hook (metrics), empty by default: called on the disk thread after each group-commit
  // round that flushed anything, with the number of commits, state saves and removals it
  // carried. Must be thread-safe and must not block.
  std::function<void(std::size_t operations)> on_flush;
};

struct SpoolStats {
  std::uint64_t commits = 0;          // messages made durable
  std::uint64_t flush_rounds = 0;     // group-commit rounds (each ends with one directory flush)
  std::uint64_t state_writes = 0;
  std::uint64_t removals = 0;
};

// What commit/save/remove report: empty error = success.
struct SpoolResult {
  std::string error;
  [[nodiscard]] bool ok() const noexcept { return error.empty(); }
};

class Spool {
 public:
  class Writer;

  // Creates the directory layout if needed and starts the disk thread. Throws std::system_error
  // when the directory cannot be created or opened.
  Spool(boost::asio::any_io_executor executor, SpoolOptions options);
  ~Spool();  // finishes queued disk work, then joins the disk thread
  Spool(const Spool&) = delete;
  Spool& operator=(const Spool&) = delete;

  // At start, before serving: deletes tmp/ leftovers, discards incomplete or corrupt msg/ files
  // and orphan state files (each with a warning), and returns every complete message with its
  // state, oldest first. Synchronous.
  [[nodiscard]] std::vector<QueuedMessage> recover(std::vector<std::string>* warnings = nullptr);

  // Read-only view for `danerelay queue list/show` without a daemon: changes nothing on disk.
  [[nodiscard]] static std::vector<QueuedMessage> scan(const std::filesystem::path& directory,
                                                       std::vector<std::string>* warnings = nullptr);
  [[nodiscard]] static std::optional<QueuedMessage> load(const std::filesystem::path& directory, const QueueId& id);

  // A new message with a fresh queue id. Writer::write() copies bytes and hands large amounts to
  // the disk thread; it never blocks.
  [[nodiscard]] std::unique_ptr<Writer> begin();

  // Makes the written message durable under msg/ with `envelope` (whose id must be the writer's;
  // body, body_offset and size are filled in). Group-committed: it completes after the flush that
  // carried it. On error the temporary file is removed and nothing is queued.
  [[nodiscard]] boost::asio::awaitable<SpoolResult> commit(std::unique_ptr<Writer> writer, Envelope& envelope);
  // Convenience for messages built in memory (bounces, delay notices).
  [[nodiscard]] boost::asio::awaitable<SpoolResult> commit(std::string message, Envelope& envelope);

  // Replaces the state file, crash-safe (write-new, flush, rename, directory flush; batched).
  [[nodiscard]] boost::asio::awaitable<SpoolResult> save(QueueId id, MessageState state);
  // Removes msg/QID, then state/QID, durably (a crash in between leaves an orphan state file,
  // which recover() deletes).
  [[nodiscard]] boost::asio::awaitable<SpoolResult> remove(QueueId id);

  // Free space on the spool's file system minus `size` is at least min_free_space (statvfs).
  [[nodiscard]] bool has_space(std::uint64_t size) const;

  [[nodiscard]] const std::filesystem::path& directory() const noexcept;
  [[nodiscard]] SpoolStats stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

class Spool::Writer {
 public:
  virtual ~Writer() = default;
  [[nodiscard]] virtual const QueueId& id() const noexcept = 0;
  virtual void write(std::string_view bytes) = 0;
  [[nodiscard]] virtual std::uint64_t size() const noexcept = 0;  // bytes written so far
};

}  // namespace danerelay::relay
