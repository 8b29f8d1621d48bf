// relay/queue/spool_scan.hpp — reading a spool directory back: recovery at start (recover()),
// the read-only listing of `danerelay queue` without a daemon (scan()), and one message
// (load()). A message file counts only when its trailer and checksum agree
// (spool_format.hpp); anything else is a leftover of a crash before the rename, or damage.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "relay/core/queue_state.hpp"

namespace danerelay::relay::spool_scan {

// The envelope of DIR/msg/NAME, or nullopt with the reason in *why.
[[nodiscard]] std::optional<Envelope> read_message(const std::filesystem::path& dir, const std::string& name, std::string* why);
// The state of a valid message: DIR/state/QID, or the initial state when there is none; a
// corrupt file also gives the initial state (with a warning): delivering again to recipients
// that were already done (at-least-once) beats losing the ones that were not.
[[nodiscard]] MessageState read_state(const std::filesystem::path& dir, const Envelope& e, std::vector<std::string>* warnings);
// Where a message in a segment is: the record's start and its two lengths (spool_format.hpp).
struct SegmentRef {
  std::uint64_t segment = 0;
  std::uint64_t offset = 0;
  std::uint64_t envelope_length = 0;
  std::uint64_t body_length = 0;
};

// What the segment log (DIR/seg) holds, for the spool that appends to it next.
struct SegmentIndex {
  std::map<std::uint64_t, std::uint64_t> live;                  // every segment found → its messages still queued
  std::uint64_t last = 0;                                       // the highest segment number found (0: none)
  std::vector<std::pair<std::string, SegmentRef>> messages;     // queued messages in segments, by id
  std::vector<std::pair<std::string, std::uint64_t>> shadowed;  // segment copies of messages also in msg/ (save() moved them; msg/ wins), with their segment
};

// Every queued message in DIR/seg, in log order, each with its segment position (the body field
// points into the segment). Damaged records are skipped and a cut-short tail ends a segment, each
// with a warning. `index`, when given, receives the per-segment counts.
struct SegmentMessage {
  Envelope envelope;
  SegmentRef ref;
};
[[nodiscard]] std::vector<SegmentMessage> read_segments(const std::filesystem::path& dir, std::vector<std::string>* warnings, SegmentIndex* index);

// Every valid message, oldest first. `repair` (recover) deletes what does not belong: tmp/
// leftovers, invalid message files, orphan and half-written state files; without it (scan)
// they are only reported in *warnings.
// Messages in msg/ win over a segment copy of the same id. `index`, when given, receives what the
// segment log holds (recover hands it to the disk thread).
[[nodiscard]] std::vector<QueuedMessage> read_spool(const std::filesystem::path& dir, std::vector<std::string>* warnings, bool repair,
                                                    SegmentIndex* index = nullptr);

}  // namespace danerelay::relay::spool_scan
