// relay/queue/spool_scan.cpp — see spool_scan.hpp.
#include "relay/queue/spool_scan.hpp"

#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <set>
#include <thread>
#include <unordered_map>

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

// The files are read by this many threads: a restart reads two small files per queued message,
// and 100,000 of them one after the other took 2.5 s from the page cache and 22 s from disk
// (queue_scale_bench --restart). Reading is independent per message; what the reads found is
// then handled in name order on the caller's thread, so the result, the warnings and the repairs
// are the same as a sequential scan's. More threads than cores: cold reads wait for the disk.
constexpr unsigned kReadThreads = 8;
constexpr std::size_t kReadBatch = 64;  // names a thread claims at a time

// `work(i)` for every i < n, on up to kReadThreads threads (this one included).
template <class F>
void for_each_index(std::size_t n, F work) {
  std::atomic<std::size_t> next{0};
  auto run = [&] {
    for (std::size_t start = next.fetch_add(kReadBatch); start < n; start = next.fetch_add(kReadBatch)) {
      for (std::size_t i = start; i < std::min(n, start + kReadBatch); ++i) work(i);
    }
  };
  const std::size_t helpers = std::min<std::size_t>(kReadThreads - 1, n / kReadBatch);
  std::vector<std::jthread> threads;
  threads.reserve(helpers);
  for (std::size_t t = 0; t < helpers; ++t) threads.emplace_back(run);
  run();
}  // the jthreads join here

// What reading one msg/ name (and its state) found.
struct Found {
  std::optional<Envelope> envelope;
  std::string why;  // when there is no envelope
  MessageState state;
  std::vector<std::string> warnings;  // read_state's
};

// What reading one segment found, in log order.
struct SegmentEvent {
  SegmentRecord type = SegmentRecord::message;
  std::optional<Envelope> envelope;  // message
  SegmentRef ref;                    // message
  std::vector<std::string> ids;      // done
};
struct SegmentFound {
  std::uint64_t seq = 0;
  std::vector<SegmentEvent> events;
  std::vector<std::string> warnings;
};

void read_one_segment(const fs::path& path, SegmentFound& out) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  struct stat st {};
  if (!fd || ::fstat(fd.get(), &st) != 0) {
    out.warnings.push_back(errno_text("open", path, errno));
    return;
  }
  const auto size = static_cast<std::uint64_t>(st.st_size);
  std::string header(kSegmentHeaderSize, '\0');
  std::string payload;
  std::uint64_t pos = 0;
  while (pos < size) {
    std::string why;
    std::optional<SegmentHeader> h;
    if (size - pos < kSegmentHeaderSize) {
      why = "shorter than a record header";
    } else if (int e = pread_all(fd.get(), header.data(), header.size(), pos); e != 0) {
      why = errno_text("read", path, e);
    } else {
      h = parse_segment_header(header, size - pos - kSegmentHeaderSize, &why);
    }
    if (!h) {
      // A write a crash cut short (never acknowledged: acknowledgement waits for the flush), or
      // damage; nothing after it can be found again.
      out.warnings.push_back("ignoring the last " + std::to_string(size - pos) + " bytes of " + path.string() + " from offset " +
                             std::to_string(pos) + ": " + why);
      return;
    }
    const std::uint64_t length = h->a_length + h->b_length;
    payload.resize(static_cast<std::size_t>(length));
    if (int e = pread_all(fd.get(), payload.data(), payload.size(), pos + kSegmentHeaderSize); e != 0) {
      out.warnings.push_back(errno_text("read", path, e));
      return;
    }
    const std::uint64_t at = pos;
    pos += kSegmentHeaderSize + length;
    if (!segment_checksum_matches(header, payload)) {
      out.warnings.push_back("skipping a damaged record in " + path.string() + " at offset " + std::to_string(at) + " (checksum mismatch)");
      continue;
    }
    SegmentEvent ev;
    ev.type = h->type;
    const std::string_view a(payload.data(), static_cast<std::size_t>(h->a_length));
    if (h->type == SegmentRecord::done) {
      for (std::size_t start = 0; start < a.size();) {
        const std::size_t end = a.find('\n', start);
        if (end == std::string_view::npos) break;
        ev.ids.emplace_back(a.substr(start, end - start));
        start = end + 1;
      }
    } else {
      try {
        Envelope e = parse_envelope_record(a);
        if (e.size != h->b_length) throw std::runtime_error("envelope size does not match the record");
        ev.ref = SegmentRef{out.seq, at, h->a_length, h->b_length};
        e.body = path.string();
        e.body_offset = at + kSegmentHeaderSize + h->a_length;
        ev.envelope = std::move(e);
      } catch (const std::exception& x) {
        out.warnings.push_back("skipping a record in " + path.string() + " at offset " + std::to_string(at) + ": bad envelope record: " + x.what());
        continue;
      }
    }
    out.events.push_back(std::move(ev));
  }
}

}  // namespace

std::vector<SegmentMessage> read_segments(const fs::path& dir, std::vector<std::string>* warnings, SegmentIndex* index) {
  std::vector<SegmentMessage> out;
  int err = 0;
  auto names = list_directory(dir / "seg", &err);
  if (!names) {
    if (err != ENOENT) warn(warnings, errno_text("read directory", dir / "seg", err));
    return out;
  }
  std::vector<SegmentFound> found;
  for (const auto& n : *names) {
    if (const auto seq = parse_segment_name(n)) {
      found.emplace_back().seq = *seq;
    } else {
      warn(warnings, "not a segment: " + (dir / "seg" / n).string());
    }
  }
  for_each_index(found.size(), [&](std::size_t i) { read_one_segment(dir / "seg" / segment_name(found[i].seq), found[i]); });

  // In log order: a message is queued from its record until a done record names it.
  std::unordered_map<std::string, std::size_t> where;  // id → index in out (a done erases)
  std::vector<bool> gone;
  SegmentIndex local;
  SegmentIndex& ix = index != nullptr ? *index : local;
  for (auto& f : found) {
    ix.live[f.seq] = 0;
    ix.last = std::max(ix.last, f.seq);
    for (auto& w : f.warnings) warn(warnings, std::move(w));
    for (auto& ev : f.events) {
      if (ev.type == SegmentRecord::done) {
        for (const auto& id : ev.ids) {
          if (auto it = where.find(id); it != where.end()) {
            gone[it->second] = true;
            --ix.live[out[it->second].ref.segment];
            where.erase(it);
          }
        }
        continue;
      }
      const std::string id = ev.envelope->id.str();
      if (auto it = where.find(id); it != where.end()) {
        // Two records for one id: only a clock step plus a lost collision check could do this.
        // The later one counts; the earlier one is kept on disk until its segment goes.
        warn(warnings, "queue id " + id + " appears twice in the segment log; the later record counts");
        gone[it->second] = true;
        --ix.live[out[it->second].ref.segment];
        where.erase(it);
      }
      where.emplace(id, out.size());
      ++ix.live[f.seq];
      out.push_back(SegmentMessage{std::move(*ev.envelope), ev.ref});
      gone.push_back(false);
    }
    f.events.clear();
  }
  std::vector<SegmentMessage> queued;
  queued.reserve(where.size());
  for (std::size_t i = 0; i < out.size(); ++i) {
    if (!gone[i]) queued.push_back(std::move(out[i]));
  }
  return queued;
}

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
std::vector<QueuedMessage> read_spool(const fs::path& dir, std::vector<std::string>* warnings, bool repair, SegmentIndex* index) {
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

  // The state files, listed once: most messages in segments have none, and one failed open per
  // message would cost more than the listing.
  std::set<std::string> state_names;
  if (auto names = list_directory(dir / "state", &err)) state_names.insert(names->begin(), names->end());
  auto state_of = [&](const Envelope& e, std::vector<std::string>* w) {
    return state_names.contains(e.id.str()) ? read_state(dir, e, w) : initial_state(e);
  };

  std::set<std::string> valid;
  auto msg_names = list_directory(dir / "msg", &err);
  if (!msg_names) {
    warn(warnings, errno_text("read directory", dir / "msg", err));
    return out;
  }
  std::vector<Found> found(msg_names->size());
  for_each_index(msg_names->size(), [&](std::size_t i) {
    const std::string& n = (*msg_names)[i];
    Found& f = found[i];
    const auto id = QueueId::parse(n);
    if (!id || id->str() != n) {
      f.why = "not a queue id";
      return;
    }
    f.envelope = read_message(dir, n, &f.why);
    if (f.envelope) f.state = state_of(*f.envelope, &f.warnings);
  });
  out.reserve(found.size());
  for (std::size_t i = 0; i < found.size(); ++i) {
    const std::string& n = (*msg_names)[i];
    Found& f = found[i];
    if (!f.envelope) {
      const fs::path path = dir / "msg" / n;
      warn(warnings, (repair ? "discarding " : "invalid ") + path.string() + ": " + f.why);
      if (repair) {
        drop(path);
        msg_changed = true;
      }
      continue;
    }
    valid.insert(n);
    for (auto& w : f.warnings) warn(warnings, std::move(w));
    out.push_back(QueuedMessage{std::move(*f.envelope), std::move(f.state)});
  }
  found.clear();

  // The segment log; a message save() moved to msg/ may still have its copy here (the done record
  // that retires it is written after the move): msg/ wins.
  SegmentIndex local;
  SegmentIndex& ix = index != nullptr ? *index : local;
  for (auto& m : read_segments(dir, warnings, &ix)) {
    const std::string id = m.envelope.id.str();
    if (valid.contains(id)) {
      --ix.live[m.ref.segment];
      ix.shadowed.emplace_back(id, m.ref.segment);
      continue;
    }
    valid.insert(id);
    std::vector<std::string> w;
    MessageState state = state_of(m.envelope, &w);
    for (auto& x : w) warn(warnings, std::move(x));
    ix.messages.emplace_back(id, m.ref);
    out.push_back(QueuedMessage{std::move(m.envelope), std::move(state)});
  }

  for (const auto& n : state_names) {
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
  // Deletions made durable so that a second crash does not bring the junk back (harmless, but noisy).
  if (msg_changed) fsync_directory(dir / "msg");
  if (state_changed) fsync_directory(dir / "state");

  std::sort(out.begin(), out.end(), [](const QueuedMessage& a, const QueuedMessage& b) {
    return a.envelope.arrival != b.envelope.arrival ? a.envelope.arrival < b.envelope.arrival : a.envelope.id < b.envelope.id;
  });
  return out;
}

}  // namespace danerelay::relay::spool_scan
