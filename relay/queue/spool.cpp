// relay/queue/spool.cpp — the durable queue; see spool.hpp for the layout and the contract.
//
// The spool in three files: spool_format (the bytes: records and the self-checking trailer, pure),
// spool_scan (reading a directory back: recover, scan, load) and this one, the disk thread that
// makes writes durable in groups. posix_io holds the system calls they share.
//
// WHY THE MESSAGE COMES FIRST in msg/QID: Writer::write() streams it to tmp/ while it arrives;
// the envelope is only known complete at commit, so it goes after it, and the trailer (read from
// the end) says where everything is. A file that does not check out is a leftover of a crash
// before the rename, or damage, and recover() discards it with a warning. Discarding is safe: a
// message is acknowledged (250) only after commit() completed, i.e. after the file was flushed,
// renamed into msg/ and the directory flushed, so a file that does not check out was never
// acknowledged — unless the disk itself lost data, which the warning then reports.
//
// DURABILITY ORDER (Postfix global/mail_stream.c does the same for its queue files):
//   commit: write tmp/QID → fdatasync → rename to msg/QID → fsync msg/ → complete.
//   save:   write state/QID.tmp → fdatasync → rename to state/QID → fsync state/ → complete.
//   remove: unlink msg/QID → fsync msg/ → unlink state/QID → fsync state/ → complete.
//
// GROUP COMMIT: one disk thread takes every queued request (up to max_batch commits, saves and
// removals, plus any streamed appends in front of them), performs all writes, starts writeback of
// every file (sync_file_range), waits for each (fdatasync, up to 8 in flight at once so that
// ext4 folds them into one journal commit instead of one device flush each), renames, then flushes each touched directory ONCE and completes the whole round.
// While one round flushes, the next one's requests queue up, so the batch size adapts to load.
//
// DIAGNOSTICS: I/O errors come back as SpoolResult text "<operation> <path>: <strerror>".
// recover()/scan() report discarded and odd files through `warnings` (recover() also logs them).
#include "relay/queue/spool.hpp"

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/execution/outstanding_work.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/prefer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <latch>
#include <map>
#include <mutex>
#include <set>
#include <system_error>
#include <thread>
#include <unordered_map>
#include <utility>

#include "relay/core/logging.hpp"
#include "relay/queue/posix_io.hpp"
#include "relay/queue/spool_format.hpp"
#include "relay/queue/spool_scan.hpp"

// g++ 12 false positive: it pairs Asio's coroutine-frame operator new (aligned_alloc, inlined)
// with the frame's operator delete (which calls std::free, correctly) and reports a mismatch.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

namespace danerelay::relay {

std::filesystem::path spool_directory(const config::Config& cfg) {
  return cfg.queue.directory.empty() ? cfg.server.state_dir / "spool" : cfg.queue.directory;
}

namespace {

namespace asio = boost::asio;
namespace fs = std::filesystem;
using json = nlohmann::json;

// Writer hands its buffer to the disk thread once it holds this much: bounds the memory a
// session holds without making the disk thread handle tiny writes.
constexpr std::size_t kHandOff = 256 * 1024;
// How many fdatasync calls of one round are in flight at once (see round(), step 2).
constexpr std::size_t kSyncThreads = 8;

using namespace posix;
using namespace spool_format;
using spool_scan::read_message;
using spool_scan::read_spool;
using spool_scan::read_state;
using spool_scan::SegmentRef;

// ---- the disk thread ------------------------------------------------------------------------

using Completion = asio::any_completion_handler<void(SpoolResult)>;

// One message being written to tmp/. Touched only by the disk thread once created.
struct TmpFile {
  std::string name;
  UniqueFd fd;
  std::string error;  // first write error; later appends are skipped, commit reports it
  bool gone = false;  // failed and already removed
};

struct Job {
  enum class Kind { append, discard, commit, save, remove };
  Kind kind = Kind::append;
  std::shared_ptr<TmpFile> file;  // append, discard, commit
  std::string name;               // queue id (save, remove)
  // append: data; commit: the rest of the file (to tmp/), or the whole message (to the log);
  // save: the state record
  std::string bytes;
  std::string record;     // commit to the log: the envelope record
  bool in_log = false;    // commit: goes to the segment log; remove: the message is in the log
  bool relocate = false;  // save: may move a message out of the log into msg/
  // Completion and a work-tracking executor to post it on (keeps io_context::run() going while
  // the disk thread holds the request). unique_ptr: any_completion_handler must not be
  // move-assigned (Boost 1.81 recursion), and this way Job moves never touch it.
  std::unique_ptr<Completion> done;
  asio::any_io_executor done_executor;
  // Round bookkeeping.
  SpoolResult result;
  UniqueFd fd;              // save: the state/QID.tmp file
  bool renamed = false;     // commit: now msg/QID
  bool superseded = false;  // save: a later save of the same id in this round replaces it
  std::string header;       // commit to the log: the record header
  SegmentRef ref;           // commit to the log: where it went; remove, relocating save: where it was
  UniqueFd move_fd;         // relocating save: tmp/QID, the message's own file being written
  std::string move_error;   // relocating save: why the message stays in the log
  bool moved = false;       // relocating save: msg/QID is in place
};

// The segment log's bookkeeping; disk thread only (recover() fills it before serving).
struct Log {
  std::map<std::uint64_t, std::uint64_t> live;        // segment → its messages still queued
  std::unordered_map<std::string, SegmentRef> where;  // id → position, for messages in the log
  UniqueFd active;                                    // the segment appended to (O_APPEND)
  std::uint64_t active_seq = 0;                       // its number (0: none open)
  std::uint64_t active_size = 0;
  std::uint64_t next_seq = 1;
  std::vector<std::string> pending_done;  // ids whose done record is due: a round runs for them
  std::vector<std::string> retry_done;    // after a failed write or flush: go with the next round
  bool housekeeping = false;              // a round is due even without requests
};

struct Core {
  asio::any_io_executor executor;
  SpoolOptions options;
  fs::path dir;
  UniqueFd tmp_dir, msg_dir, state_dir, seg_dir;

  std::mutex mutex;
  std::condition_variable wake;
  std::deque<Job> queue;  // guarded by mutex
  bool stopping = false;  // guarded by mutex
  Log log;                // disk thread (and recover(), under mutex, before serving)

  std::atomic<std::uint64_t> commits{0}, flush_rounds{0}, state_writes{0}, removals{0};

  // Helpers for the side-by-side fdatasyncs of a round, started once (not per round: a thread
  // start costs more than a small round's flushes). The disk thread is the kSyncThreads-th.
  asio::thread_pool sync_pool{kSyncThreads - 1};

  void enqueue(Job job) {
    {
      std::lock_guard lock(mutex);
      if (stopping) return;  // after ~Spool: the tmp file (if any) is left for recover()
      queue.push_back(std::move(job));
    }
    wake.notify_one();
  }

  void note(std::string_view op, const fs::path& path) const {
    if (options.on_disk_op) options.on_disk_op(op, path);
  }

  void run() {
    std::vector<Job> batch;
    for (;;) {
      {
        std::unique_lock lock(mutex);
        wake.wait(lock, [&] { return stopping || !queue.empty() || !log.pending_done.empty() || log.housekeeping; });
        if (queue.empty() && log.pending_done.empty() && !log.housekeeping) return;  // stopping, and everything queued is done
        std::size_t durable = 0;
        while (!queue.empty() && durable < std::max<std::size_t>(options.max_batch, 1)) {
          if (queue.front().kind == Job::Kind::commit || queue.front().kind == Job::Kind::save || queue.front().kind == Job::Kind::remove) ++durable;
          batch.push_back(std::move(queue.front()));
          queue.pop_front();
        }
      }
      round(batch);
      batch.clear();
    }
  }

  [[nodiscard]] fs::path segment_path(std::uint64_t seq) const { return dir / "seg" / segment_name(seq); }

  void append(TmpFile& f, std::string_view data) {
    if (!f.error.empty() || data.empty()) return;
    if (!f.fd) {
      // O_EXCL: never write into somebody else's file, whatever the id generator did.
      f.fd.reset(::openat(tmp_dir.get(), f.name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
      if (!f.fd) {
        f.error = errno_text("create", dir / "tmp" / f.name, errno);
        return;
      }
    }
    if (int e = write_all(f.fd.get(), data); e != 0) fail_tmp(f, errno_text("write", dir / "tmp" / f.name, e));
  }

  void fail_tmp(TmpFile& f, std::string error) {
    if (f.error.empty()) f.error = std::move(error);
    if (f.fd) {
      f.fd.reset();
      ::unlinkat(tmp_dir.get(), f.name.c_str(), 0);
    }
    f.gone = true;
  }

  static void start_writeback(int fd) {
    // Queue the dirty pages for writeback now, for every file of the round, so the fdatasync
    // calls below mostly wait on I/O that is already in flight (and ext4 folds their journal
    // commits into one). Advisory: an error here shows up again at fdatasync.
    (void)::sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE);
  }

  // The segment the round appends to: the open one, or a fresh one when there is none or it is
  // full. `created` says a new name needs its directory flush before anything in it counts.
  std::string open_segment(bool& created) {
    if (log.active && log.active_size < options.segment_bytes) return {};
    log.active.reset();  // full: flushed by the round that last wrote it, never written again
    log.active_seq = 0;
    for (int tries = 0; tries < 64; ++tries) {
      const std::uint64_t seq = log.next_seq++;
      const std::string name = segment_name(seq);
      UniqueFd fd(::openat(seg_dir.get(), name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0600));
      if (!fd) {
        if (errno == EEXIST) continue;  // recover() was not called, or a name left from a past run
        return errno_text("create", segment_path(seq), errno);
      }
      log.active = std::move(fd);
      log.active_seq = seq;
      log.active_size = 0;
      log.live.emplace(seq, 0);
      created = true;
      return {};
    }
    return "create segment in " + (dir / "seg").string() + ": no free name";
  }

  // After a failed write or flush of the log: that descriptor is never flushed again (after a
  // failed fsync the kernel may have dropped the dirty pages and cleared the error, so a second
  // fsync "succeeding" proves nothing); the next round starts a new segment.
  void abandon_segment() {
    log.active.reset();
    log.active_seq = 0;
  }

  // A relocating save of a message in the log: writes tmp/QID in msg/'s format from the record.
  void write_relocation(Job& j) {
    const SegmentRef& r = j.ref;
    const fs::path seg = segment_path(r.segment);
    UniqueFd in(::openat(seg_dir.get(), segment_name(r.segment).c_str(), O_RDONLY | O_CLOEXEC));
    if (!in) {
      j.move_error = errno_text("open", seg, errno);
      return;
    }
    std::string header(kSegmentHeaderSize, '\0');
    std::string payload(static_cast<std::size_t>(r.envelope_length + r.body_length), '\0');
    if (int e = pread_all(in.get(), header.data(), header.size(), r.offset); e != 0) {
      j.move_error = errno_text("read", seg, e);
      return;
    }
    if (int e = pread_all(in.get(), payload.data(), payload.size(), r.offset + kSegmentHeaderSize); e != 0) {
      j.move_error = errno_text("read", seg, e);
      return;
    }
    if (!segment_checksum_matches(header, payload)) {
      j.move_error = "record of " + j.name + " in " + seg.string() + " does not check out";
      return;
    }
    const std::string_view record(payload.data(), static_cast<std::size_t>(r.envelope_length));
    const std::string_view body(payload.data() + r.envelope_length, static_cast<std::size_t>(r.body_length));
    const std::string trailer = make_trailer(body.size(), record);
    j.move_fd.reset(::openat(tmp_dir.get(), j.name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
    if (!j.move_fd) {
      j.move_error = errno_text("create", dir / "tmp" / j.name, errno);
      return;
    }
    if (int e = writev_all(j.move_fd.get(), {body, record, trailer}); e != 0) {
      j.move_error = errno_text("write", dir / "tmp" / j.name, e);
      return;
    }
    start_writeback(j.move_fd.get());
  }

  void round(std::vector<Job>& batch) {
    using K = Job::Kind;
    bool any_durable = false;

    // Done records owed from earlier rounds (relocations, failed commits, a failed log flush).
    std::vector<std::string> done_ids;
    done_ids.swap(log.pending_done);
    done_ids.insert(done_ids.end(), log.retry_done.begin(), log.retry_done.end());
    log.retry_done.clear();
    const bool housekeeping = std::exchange(log.housekeeping, false);

    // 1. Writes, in arrival order: a writer's appends come before its commit.
    std::vector<Job*> log_commits;
    std::vector<Job*> log_removes;
    for (auto& j : batch) {
      switch (j.kind) {
        case K::append:
          append(*j.file, j.bytes);
          std::string().swap(j.bytes);  // free the buffer now, not at the end of the round
          break;
        case K::discard:
          fail_tmp(*j.file, "discarded");
          break;
        case K::commit:
          any_durable = true;
          if (j.in_log) {
            // The spool never stores two messages under one id: a clock step can bring back an
            // id that is still queued (see QueueId).
            const std::string& id = j.file->name;
            if (log.where.contains(id) || ::faccessat(msg_dir.get(), id.c_str(), F_OK, 0) == 0) {
              j.result.error = "queue id " + id + " is taken in " + dir.string();
              j.result.id_taken = true;
            } else {
              log_commits.push_back(&j);
            }
            break;
          }
          append(*j.file, j.bytes);
          if (!j.file->error.empty()) {
            j.result.error = j.file->error;
          } else if (!j.file->fd) {
            j.result.error = "empty message";  // cannot happen: the trailer is always there
          } else {
            start_writeback(j.file->fd.get());
          }
          break;
        case K::save: {
          any_durable = true;
          const std::string tmp = j.name + std::string(kStateTmpSuffix);
          j.fd.reset(::openat(state_dir.get(), tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
          if (!j.fd) {
            j.result.error = errno_text("create", dir / "state" / tmp, errno);
          } else if (int e = write_all(j.fd.get(), j.bytes); e != 0) {
            j.result.error = errno_text("write", dir / "state" / tmp, e);
          } else {
            start_writeback(j.fd.get());
          }
          if (j.relocate && j.result.error.empty()) {
            if (auto it = log.where.find(j.name); it != log.where.end()) {
              j.ref = it->second;
              write_relocation(j);
            } else {
              j.relocate = false;  // not in the log (any more): nothing to move
            }
          } else {
            j.relocate = false;
          }
          break;
        }
        case K::remove:
          any_durable = true;
          if (auto it = log.where.find(j.name); it != log.where.end()) {
            j.in_log = true;
            j.ref = it->second;
            log.where.erase(it);
            done_ids.push_back(j.name);
            log_removes.push_back(&j);
          }
          break;
      }
    }

    // The log's part of the round: every new message record and one done record, in one write.
    bool log_written = false;
    bool segment_created = false;
    std::string log_error;
    std::string done_list;
    std::string done_header;
    if (!log_commits.empty() || !done_ids.empty()) {
      log_error = open_segment(segment_created);
      if (log_error.empty()) {
        std::vector<std::string_view> parts;
        parts.reserve(log_commits.size() * 3 + 2);
        std::uint64_t at = log.active_size;
        for (Job* j : log_commits) {
          j->header = segment_header(SegmentRecord::message, j->record, j->bytes);
          j->ref = SegmentRef{log.active_seq, at, j->record.size(), j->bytes.size()};
          at += kSegmentHeaderSize + j->record.size() + j->bytes.size();
          parts.insert(parts.end(), {j->header, j->record, j->bytes});
        }
        if (!done_ids.empty()) {
          for (const auto& id : done_ids) done_list.append(id).push_back('\n');
          done_header = segment_header(SegmentRecord::done, done_list, {});
          at += kSegmentHeaderSize + done_list.size();
          parts.insert(parts.end(), {done_header, done_list});
        }
        if (int e = writev_all(log.active.get(), parts); e != 0) {
          log_error = errno_text("write", segment_path(log.active_seq), e);
          // What part of the write landed is cut off again (the disk full, a file size limit),
          // so a restart does not meet a torn record; if this fails too, the reader skips it.
          (void)::ftruncate(log.active.get(), static_cast<off_t>(log.active_size));
        } else {
          log.active_size = at;
          log_written = true;
        }
      }
    }

    // Two saves of one id in a round share state/QID.tmp: only the last is renamed; the earlier
    // ones complete with its result (their content is replaced anyway).
    std::set<std::string> saved;
    for (auto it = batch.rbegin(); it != batch.rend(); ++it) {
      if (it->kind == K::save && !saved.insert(it->name).second) it->superseded = true;
    }

    // 2. Flush file data. Nothing is renamed into place before its bytes are on disk, so a
    //    name in msg/ or state/ never points at a file a crash could have left half-written.
    //    The fdatasync calls run side by side (up to kSyncThreads): issued one after another,
    //    each waited for its own device cache flush (~4 ms each measured here, see
    //    bench/spool_bench.cpp); issued together, ext4/jbd2 serves them with one commit.
    //    The segment log is one of them: one flush for all of the round's records.
    struct SyncItem {
      Job* job = nullptr;  // nullptr: the segment log
      bool relocation = false;
    };
    std::vector<SyncItem> to_sync;
    if (log_written) to_sync.push_back(SyncItem{});
    for (auto& j : batch) {
      if (!j.result.error.empty() || j.superseded) continue;
      if ((j.kind == K::commit && !j.in_log) || j.kind == K::save) to_sync.push_back(SyncItem{&j, false});
      if (j.kind == K::save && j.relocate && j.move_error.empty()) to_sync.push_back(SyncItem{&j, true});
    }
    auto sync_one = [this, &log_error](const SyncItem& item) {
      if (item.job == nullptr) {
        const fs::path p = segment_path(log.active_seq);
        if (int e = fdatasync_retry(log.active.get()); e != 0) log_error = errno_text("fdatasync", p, e);
        else note("fdatasync", p);
        return;
      }
      Job& j = *item.job;
      if (item.relocation) {
        const fs::path p = dir / "tmp" / j.name;
        if (int e = fdatasync_retry(j.move_fd.get()); e != 0) j.move_error = errno_text("fdatasync", p, e);
        else note("fdatasync", p);
        return;
      }
      const bool is_commit = j.kind == K::commit;
      const fs::path p = is_commit ? dir / "tmp" / j.file->name : dir / "state" / (j.name + std::string(kStateTmpSuffix));
      if (int e = fdatasync_retry(is_commit ? j.file->fd.get() : j.fd.get()); e != 0) j.result.error = errno_text("fdatasync", p, e);
      else note("fdatasync", p);
    };
    const std::size_t workers = std::min(to_sync.size(), kSyncThreads);
    if (workers <= 1) {
      for (const auto& item : to_sync) sync_one(item);
    } else {
      std::atomic<std::size_t> next{0};
      auto drain = [&] {
        for (std::size_t i = next++; i < to_sync.size(); i = next++) sync_one(to_sync[i]);
      };
      std::latch helpers_done(static_cast<std::ptrdiff_t>(workers - 1));
      for (std::size_t t = 1; t < workers; ++t) {
        asio::post(sync_pool, [&] {
          drain();
          helpers_done.count_down();
        });
      }
      drain();
      helpers_done.wait();  // every flush done before any rename below
    }

    // A new segment's name must be durable before anything in it counts: flushed here, before
    // the renames and unlinks of step 3 rely on this round's done record.
    if (log_written && log_error.empty() && segment_created) {
      if (int e = fsync_retry(seg_dir.get()); e != 0) log_error = errno_text("fsync", dir / "seg", e);
      else note("fsync", dir / "seg");
    }

    // The log's outcome: its records count only if the write and the flushes all succeeded.
    if (!log_error.empty()) {
      for (Job* j : log_commits) j->result.error = log_error;
      for (Job* j : log_removes) j->result.error = log_error;
      // Retire whatever of this round may have reached the disk all the same (a failed commit
      // must not come back at a restart; a failed removal must not either), in a new segment.
      for (Job* j : log_commits) log.retry_done.push_back(j->file->name);
      log.retry_done.insert(log.retry_done.end(), done_ids.begin(), done_ids.end());
      abandon_segment();
      // A message moved to msg/ whose log copy is not retired yet must not leave msg/ now: at a
      // crash the log copy would come back without its state, i.e. be delivered again.
      const std::set<std::string_view> owed(done_ids.begin(), done_ids.end());
      for (auto& j : batch) {
        if (j.kind == K::remove && !j.in_log && j.result.ok() && owed.contains(j.name)) j.result.error = log_error;
      }
    } else {
      for (Job* j : log_commits) {
        log.where.emplace(j->file->name, j->ref);
        ++log.live[j->ref.segment];
        j->result.body = segment_path(j->ref.segment).string();
        j->result.body_offset = j->ref.offset + kSegmentHeaderSize + j->ref.envelope_length;
      }
    }
    // A removal is final for the queue either way: its slot in the log goes.
    for (Job* j : log_removes) {
      if (auto it = log.live.find(j->ref.segment); it != log.live.end() && it->second > 0) --it->second;
    }

    // 3. Renames (and the first half of removals).
    bool msg_dirty = false;
    bool state_dirty = false;
    for (auto& j : batch) {
      if (!j.result.error.empty() || j.superseded) continue;
      if (j.kind == K::commit && !j.in_log) {
        if (int e = rename_noreplace(tmp_dir.get(), j.file->name, msg_dir.get(), j.file->name); e != 0) {
          j.result.error = errno_text("rename into", dir / "msg" / j.file->name, e);
          j.result.id_taken = e == EEXIST;
        } else {
          j.renamed = true;
          msg_dirty = true;
          note("rename", dir / "msg" / j.file->name);
        }
      } else if (j.kind == K::save) {
        if (j.relocate && j.move_error.empty()) {
          if (int e = rename_noreplace(tmp_dir.get(), j.name, msg_dir.get(), j.name); e != 0) {
            j.move_error = errno_text("rename into", dir / "msg" / j.name, e);
          } else {
            j.moved = true;
            j.renamed = true;
            msg_dirty = true;
            note("rename", dir / "msg" / j.name);
          }
        }
        const std::string tmp = j.name + std::string(kStateTmpSuffix);
        if (::renameat(state_dir.get(), tmp.c_str(), state_dir.get(), j.name.c_str()) != 0) {
          j.result.error = errno_text("rename into", dir / "state" / j.name, errno);
        } else {
          state_dirty = true;
          note("rename", dir / "state" / j.name);
        }
      } else if (j.kind == K::remove && !j.in_log) {
        // The message goes first: a crash before the state file goes leaves an orphan state
        // (deleted by recover()); the other order would leave a message without its state,
        // i.e. delivered again to every recipient.
        if (::unlinkat(msg_dir.get(), j.name.c_str(), 0) != 0 && errno != ENOENT) {
          j.result.error = errno_text("unlink", dir / "msg" / j.name, errno);
        } else {
          msg_dirty = true;
          note("unlink", dir / "msg" / j.name);
        }
      }
    }

    // Segments whose messages are all gone, oldest first: a done record in a segment may name
    // messages of any older one, so a segment goes only after every older one has gone (and
    // never while this round's done record is not on disk).
    bool seg_dirty = false;
    if (log_error.empty() && (log_written || housekeeping || !log_removes.empty())) {
      while (!log.live.empty() && log.live.begin()->second == 0 && log.live.begin()->first != log.active_seq) {
        const std::uint64_t seq = log.live.begin()->first;
        if (::unlinkat(seg_dir.get(), segment_name(seq).c_str(), 0) == 0 || errno == ENOENT) {
          note("unlink", segment_path(seq));
          seg_dirty = true;
          log.live.erase(log.live.begin());
        } else {
          logger("queue")->warn("cannot remove {}: {}", segment_path(seq).string(), std::strerror(errno));
          break;
        }
      }
    }

    // 4. One directory flush carries every rename and unlink of the round in msg/: only after it
    //    is the new name (or the removal) durable, so only now may a commit complete.
    if (msg_dirty) {
      if (int e = fsync_retry(msg_dir.get()); e != 0) {
        const std::string text = errno_text("fsync", dir / "msg", e);
        for (auto& j : batch) {
          if (j.result.error.empty() && ((j.kind == K::commit && j.renamed) || (j.kind == K::remove && !j.in_log))) j.result.error = text;
          if (j.kind == K::save && j.moved) {
            j.moved = false;  // the log copy stays the one that counts
            j.move_error = text;
          }
        }
      } else {
        note("fsync", dir / "msg");
      }
    }
    if (seg_dirty) {
      // Only removals of dead segments: a failed flush here loses nothing (the names come back
      // at a crash, and recover() deletes them again).
      if (int e = fsync_retry(seg_dir.get()); e != 0) {
        logger("queue")->warn("{}", errno_text("fsync", dir / "seg", e));
      } else {
        note("fsync", dir / "seg");
      }
    }

    // 5. Second half of removals, once the message's removal is durable.
    for (auto& j : batch) {
      if (j.kind != K::remove || !j.result.error.empty()) continue;
      if (::unlinkat(state_dir.get(), j.name.c_str(), 0) == 0) {
        state_dirty = true;
        note("unlink", dir / "state" / j.name);
      }
      // Failure here is not the caller's problem: the message is gone, and recover() deletes
      // the orphan state file.
    }
    if (state_dirty) {
      if (int e = fsync_retry(state_dir.get()); e != 0) {
        const std::string text = errno_text("fsync", dir / "state", e);
        for (auto& j : batch) {
          if (j.result.error.empty() && j.kind == K::save && !j.superseded) j.result.error = text;
        }
      } else {
        note("fsync", dir / "state");
      }
    }

    // 6. Clean up after failures, count, complete.
    std::map<std::string, SpoolResult> save_results;  // id → result of the last save of the round
    for (auto& j : batch) {
      if (j.kind != K::save || j.superseded || !j.relocate) continue;
      if (j.moved) {
        // The message's own file is durable: the log copy is retired by a done record (the next
        // round's; until then a restart finds both, and msg/ wins).
        j.result.body = (dir / "msg" / j.name).string();
        j.result.body_offset = 0;
        log.where.erase(j.name);
        if (auto it = log.live.find(j.ref.segment); it != log.live.end() && it->second > 0) --it->second;
        log.pending_done.push_back(j.name);
      } else {
        // Not moved: the log copy stays the one that counts, so no second copy may stay behind
        // (a later removal retires only the log's).
        if (j.renamed) ::unlinkat(msg_dir.get(), j.name.c_str(), 0);
        if (j.move_fd) {
          j.move_fd.reset();
          ::unlinkat(tmp_dir.get(), j.name.c_str(), 0);
        }
        logger("queue")->warn("{}: stays in the segment log: {}", j.name, j.move_error);
      }
    }
    for (auto& j : batch) {
      if (j.kind == K::save && !j.superseded) save_results[j.name] = j.result;
    }
    for (auto& j : batch) {
      switch (j.kind) {
        case K::commit:
          if (j.in_log) {
            if (j.result.ok()) ++commits;
            break;
          }
          if (!j.result.error.empty()) {
            // Nothing is queued after a failed commit: the client gets a 4xx and sends again.
            if (j.renamed) ::unlinkat(msg_dir.get(), j.file->name.c_str(), 0);
            fail_tmp(*j.file, j.result.error);
          } else {
            ++commits;
            j.result.body = (dir / "msg" / j.file->name).string();
            j.result.body_offset = 0;
          }
          j.file->fd.reset();
          break;
        case K::save:
          if (j.superseded) j.result = save_results[j.name];
          else if (!j.result.error.empty()) ::unlinkat(state_dir.get(), (j.name + std::string(kStateTmpSuffix)).c_str(), 0);
          j.fd.reset();
          j.move_fd.reset();
          if (j.result.ok()) ++state_writes;
          break;
        case K::remove:
          if (j.result.ok()) ++removals;
          break;
        case K::append:
        case K::discard:
          break;
      }
    }
    if (any_durable) {
      ++flush_rounds;
      if (options.on_flush) {
        std::size_t carried = 0;
        for (const auto& j : batch) carried += j.kind == K::commit || j.kind == K::save || j.kind == K::remove ? 1 : 0;
        options.on_flush(carried);
      }
    }
    for (auto& j : batch) {
      if (!j.done) continue;
      asio::post(j.done_executor, [h = std::move(j.done), r = std::move(j.result)]() mutable { std::move(*h)(std::move(r)); });
      j.done_executor = asio::any_io_executor();  // the posted handler holds the work now
    }
  }
};

// Hands `job` to the disk thread and waits for its round to complete.
asio::awaitable<SpoolResult> submit(std::shared_ptr<Core> core, Job job) {
  // A named initiation: g++ 12 bit-copies prvalue class temporaries handed to a coroutine inside
  // co_await (use_awaitable's initiate is one), which would corrupt the shared_ptr's count.
  auto initiation = [core](auto handler, Job j) {
    j.done_executor = asio::prefer(asio::get_associated_executor(handler, core->executor), asio::execution::outstanding_work.tracked);
    j.done = std::make_unique<Completion>(std::move(handler));
    core->enqueue(std::move(j));
  };
  co_return co_await asio::async_initiate<decltype(asio::use_awaitable), void(SpoolResult)>(initiation, asio::use_awaitable, std::move(job));
}

class WriterImpl final : public Spool::Writer {
 public:
  WriterImpl(std::shared_ptr<Core> core, QueueId id) : core_(std::move(core)), id_(std::move(id)), file_(std::make_shared<TmpFile>()) {
    file_->name = id_.str();
  }
  ~WriterImpl() override {
    // Abandoned (client went away mid-DATA, or commit refused early): remove what was streamed.
    if (file_ && handed_off_) {
      Job j;
      j.kind = Job::Kind::discard;
      j.file = std::move(file_);
      core_->enqueue(std::move(j));
    }
  }
  WriterImpl(const WriterImpl&) = delete;
  WriterImpl& operator=(const WriterImpl&) = delete;

  [[nodiscard]] const QueueId& id() const noexcept override { return id_; }
  [[nodiscard]] std::uint64_t size() const noexcept override { return size_; }

  void write(std::string_view bytes) override {
    buffer_.append(bytes);
    size_ += bytes.size();
    if (buffer_.size() >= kHandOff) {
      Job j;
      j.kind = Job::Kind::append;
      j.file = file_;
      j.bytes = std::exchange(buffer_, std::string());
      handed_off_ = true;
      core_->enqueue(std::move(j));
    }
  }

  // For commit(std::string): the whole message at once, without a copy.
  void adopt(std::string message) {
    size_ = message.size();
    buffer_ = std::move(message);
  }

  [[nodiscard]] const std::shared_ptr<Core>& core() const noexcept { return core_; }

  // The commit request. A message that never left this buffer goes to the segment log (the
  // whole message and its envelope record); a large one that was streamed to tmp/ gets the
  // still-buffered bytes, the envelope record and the trailer appended to its file.
  Job finish(std::string record) {
    Job j;
    j.kind = Job::Kind::commit;
    if (!handed_off_) {
      j.in_log = true;
      j.bytes = std::exchange(buffer_, std::string());
      j.record = std::move(record);
      j.file = std::move(file_);
      return j;
    }
    std::string tail = std::exchange(buffer_, std::string());
    tail.reserve(tail.size() + record.size() + kTrailerSize);
    tail.append(record);
    tail.append(make_trailer(size_, record));
    j.bytes = std::move(tail);
    j.file = std::move(file_);  // the commit round owns it now (and removes it on failure)
    return j;
  }

 private:
  std::shared_ptr<Core> core_;
  QueueId id_;
  std::shared_ptr<TmpFile> file_;
  std::string buffer_;
  std::uint64_t size_ = 0;
  bool handed_off_ = false;  // something may exist under tmp/
};

}  // namespace

struct Spool::Impl {
  std::shared_ptr<Core> core;
  std::thread disk;
};

Spool::Spool(asio::any_io_executor executor, SpoolOptions options) : impl_(std::make_unique<Impl>()) {
  auto core = std::make_shared<Core>();
  core->executor = std::move(executor);
  // Absolute, so the paths in envelopes stay valid whatever the working directory becomes.
  core->dir = fs::absolute(options.directory);
  options.directory = core->dir;
  core->options = std::move(options);
  const fs::path& dir = core->dir;
  if (const auto parent = dir.parent_path(); !parent.empty()) {
    std::error_code ec;
    fs::create_directories(parent, ec);
  }
  make_directory(dir);
  for (const char* sub : {"tmp", "msg", "state", "seg"}) make_directory(dir / sub);
  fsync_directory(dir);  // the subdirectories exist durably before anything is put in them
  core->tmp_dir = open_directory(dir / "tmp");
  core->msg_dir = open_directory(dir / "msg");
  core->state_dir = open_directory(dir / "state");
  core->seg_dir = open_directory(dir / "seg");
  impl_->core = core;
  impl_->disk = std::thread([core] { core->run(); });
}

Spool::~Spool() {
  {
    std::lock_guard lock(impl_->core->mutex);
    impl_->core->stopping = true;
  }
  impl_->core->wake.notify_one();
  impl_->disk.join();
}

std::vector<QueuedMessage> Spool::recover(std::vector<std::string>* warnings) {
  std::vector<std::string> local;
  spool_scan::SegmentIndex index;
  auto out = read_spool(impl_->core->dir, &local, true, &index);
  {
    Core& c = *impl_->core;
    std::lock_guard lock(c.mutex);
    Log& log = c.log;
    // What the disk says replaces what the disk thread knew (recover() is meant for the start;
    // called again on a running spool, the scan saw everything that was durable).
    log.where.clear();
    for (auto& [id, ref] : index.messages) log.where.emplace(std::move(id), ref);
    log.live = index.live;
    if (log.active_seq != 0) log.live.emplace(log.active_seq, 0);
    // Appending goes to a new segment: the last one may end in a record a crash cut short.
    log.next_seq = std::max(log.next_seq, index.last + 1);
    // Copies that msg/ supersedes get their done record now, before msg/ can lose the message
    // (a removal) and bring the copy back.
    for (auto& [id, seq] : index.shadowed) log.pending_done.push_back(std::move(id));
    log.housekeeping = true;  // dead segments go at once
  }
  impl_->core->wake.notify_one();
  const auto log = logger("queue");
  for (const auto& w : local) log->warn("spool recovery: {}", w);
  if (warnings != nullptr) warnings->insert(warnings->end(), local.begin(), local.end());
  return out;
}

std::vector<QueuedMessage> Spool::scan(const fs::path& directory, std::vector<std::string>* warnings) {
  return read_spool(directory, warnings, false);
}

std::optional<QueuedMessage> Spool::load(const fs::path& directory, const QueueId& id) {
  std::string why;
  auto e = read_message(directory, id.str(), &why);
  if (!e) {
    for (auto& m : spool_scan::read_segments(directory, nullptr, nullptr)) {
      if (m.envelope.id == id) {
        e = std::move(m.envelope);
        break;
      }
    }
  }
  if (!e) return std::nullopt;
  MessageState s = read_state(directory, *e, nullptr);
  return QueuedMessage{std::move(*e), std::move(s)};
}

std::unique_ptr<Spool::Writer> Spool::begin() { return std::make_unique<WriterImpl>(impl_->core, QueueId::next()); }

asio::awaitable<SpoolResult> Spool::commit(std::unique_ptr<Writer> writer, Envelope& envelope) {
  auto* w = dynamic_cast<WriterImpl*>(writer.get());
  if (w == nullptr || w->core() != impl_->core) co_return SpoolResult::failed("commit: writer does not belong to this spool");
  if (envelope.id != w->id()) co_return SpoolResult::failed("commit: envelope id " + envelope.id.str() + " is not the writer's " + w->id().str());
  envelope.size = w->size();
  std::string record;
  try {
    record = envelope_record(envelope);
  } catch (const json::exception& x) {
    co_return SpoolResult::failed(std::string("commit: envelope cannot be stored: ") + x.what());  // ~Writer discards
  }
  Job job = w->finish(std::move(record));
  std::shared_ptr<Core> core = impl_->core;
  SpoolResult r = co_await submit(core, std::move(job));
  if (r.ok()) {
    envelope.body = r.body;
    envelope.body_offset = r.body_offset;
  }
  co_return r;
}

asio::awaitable<SpoolResult> Spool::commit(std::string message, Envelope& envelope) {
  auto w = std::make_unique<WriterImpl>(impl_->core, envelope.id);
  w->adopt(std::move(message));
  std::unique_ptr<Writer> writer = std::move(w);
  co_return co_await commit(std::move(writer), envelope);
}

asio::awaitable<SpoolResult> Spool::save(QueueId id, MessageState state, bool relocate) {
  Job job;
  job.kind = Job::Kind::save;
  job.name = id.str();
  job.relocate = relocate;
  job.bytes = state_record(state);
  std::shared_ptr<Core> core = impl_->core;
  co_return co_await submit(core, std::move(job));
}

asio::awaitable<SpoolResult> Spool::remove(QueueId id) {
  Job job;
  job.kind = Job::Kind::remove;
  job.name = id.str();
  std::shared_ptr<Core> core = impl_->core;
  co_return co_await submit(core, std::move(job));
}

bool Spool::has_space(std::uint64_t size) const {
  struct statvfs vfs {};
  if (::statvfs(impl_->core->dir.c_str(), &vfs) != 0) return false;  // cannot tell: refuse (4xx) rather than fill the disk
  const std::uint64_t available = static_cast<std::uint64_t>(vfs.f_bavail) * vfs.f_frsize;
  return available >= size && available - size >= impl_->core->options.min_free_space;
}

const fs::path& Spool::directory() const noexcept { return impl_->core->dir; }

SpoolStats Spool::stats() const {
  const Core& c = *impl_->core;
  return SpoolStats{c.commits.load(), c.flush_rounds.load(), c.state_writes.load(), c.removals.load()};
}

}  // namespace danerelay::relay
