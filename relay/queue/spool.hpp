// relay/queue/spool.hpp — the durable queue on disk: every message made durable before the SMTP
// server says 250, with group commit so that one flush carries many messages, and a small
// per-message state file replaced atomically after a delivery attempt.
//
// Layout under the spool directory (created 0700):
//   seg/SSSS…     the segment log, where messages below 256 KiB go: append-only files of
//                 self-checking records (spool_format.hpp), one flush per round for all of them.
//                 A "message" record queues a message; a "done" record retires messages (delivered,
//                 removed, or moved to msg/). A segment is deleted once nothing in it is queued and
//                 every older segment is gone.
//   tmp/QID        a large message being received (streamed in 256 KiB pieces), or a message being
//                  moved out of the log; never acknowledged; deleted by recover()
//   msg/QID        a message in its own file: [message bytes][envelope record][fixed-size trailer
//                  with magic, lengths and a checksum]. Written to tmp/, flushed, renamed here,
//                  directory flushed. Immutable afterwards. Large messages go here at once; a
//                  message in the log moves here when its first attempt leaves it queued
//                  (save(..., relocate)), so that mail waiting for days does not pin segments.
//                  When both exist (a crash right after a move), msg/ wins.
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
  // A segment of the log takes no more appends once it holds this much: small enough that a
  // few messages waiting long (until their first attempt ends) pin little disk.
  std::uint64_t segment_bytes = 16 * 1024 * 1024;
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
  bool id_taken = false;  // commit: the queue id is already in the spool (a clock step); take another
  // commit, and a relocating save that moved the message: where its bytes are now.
  std::string body;
  std::uint64_t body_offset = 0;
  [[nodiscard]] bool ok() const noexcept { return error.empty(); }
  static SpoolResult failed(std::string why) {
    SpoolResult r;
    r.error = std::move(why);
    return r;
  }
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

  // At start, before serving (before any other call): deletes tmp/ leftovers, discards incomplete
  // or corrupt msg/ files, damaged log records and orphan state files (each with a warning), and
  // returns every complete message with its state, oldest first. Synchronous. New records go to
  // a new segment.
  [[nodiscard]] std::vector<QueuedMessage> recover(std::vector<std::string>* warnings = nullptr);

  // Read-only view for `danerelay queue list/show` without a daemon: changes nothing on disk.
  [[nodiscard]] static std::vector<QueuedMessage> scan(const std::filesystem::path& directory,
                                                       std::vector<std::string>* warnings = nullptr);
  [[nodiscard]] static std::optional<QueuedMessage> load(const std::filesystem::path& directory, const QueueId& id);

  // A new message with a fresh queue id. Writer::write() copies bytes and hands large amounts to
  // the disk thread; it never blocks.
  [[nodiscard]] std::unique_ptr<Writer> begin();

  // Makes the written message durable with `envelope` (whose id must be the writer's; body,
  // body_offset and size are filled in on success): in the segment log, or under msg/ when it was
  // large enough to be streamed. Group-committed: it completes after the flush that carried it.
  // On error nothing is queued (id_taken says the id was somebody else's).
  [[nodiscard]] boost::asio::awaitable<SpoolResult> commit(std::unique_ptr<Writer> writer, Envelope& envelope);
  // Convenience for messages built in memory (bounces, delay notices).
  [[nodiscard]] boost::asio::awaitable<SpoolResult> commit(std::string message, Envelope& envelope);

  // Replaces the state file, crash-safe (write-new, flush, rename, directory flush; batched).
  // `relocate`: the message is not being read (its attempt is over) and may move from the log to
  // msg/QID in the same round; the result's body then says where it is now, and the caller's
  // envelope must follow. A failed move leaves it in the log (a warning), the save still counts.
  [[nodiscard]] boost::asio::awaitable<SpoolResult> save(QueueId id, MessageState state, bool relocate = false);
  // Removes the message durably: a done record in the log, or msg/QID unlinked; then state/QID
  // (a crash in between leaves an orphan state file, which recover() deletes).
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
