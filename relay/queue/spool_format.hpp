// relay/queue/spool_format.hpp — the bytes of the spool's files, as pure functions: the
// envelope and state records (JSON) and the trailer that makes a message file self-checking.
// No I/O: the scan reads files and asks these functions whether they check out; the disk thread
// asks them what to write. tests/relay/spool_format_test.cpp pins the bytes with golden values,
// so a change of format cannot slip in unnoticed (files written by one version are read by the next).
//
// FILE FORMAT of msg/QID (all integers little-endian):
//   [message bytes, body_offset 0][envelope record: JSON][trailer, 32 bytes]
//   trailer:  0  8  magic "DRSPOOL\n"
//             8  4  format version (1)
//            12  4  CRC-32 (IEEE) over the envelope record followed by the trailer with this field zeroed
//            16  8  message length
//            24  8  envelope record length
// state/QID is the state record alone (JSON), replaced as a whole by save().
//
// SEGMENT FORMAT of seg/SSSSSSSSSSSSSSSS (16 hex digits: the segment's sequence number), the
// append-only log that carries messages below the hand-off size: records one after another, each
//   header:   0  8  magic "DRSEGv1\n"
//             8  4  type: 1 message, 2 done
//            12  4  CRC-32 (IEEE) over the header with this field zeroed, then the payload
//            16  8  length A   message: the envelope record     done: the id list
//            24  8  length B   message: the message bytes       done: 0
//   payload: A bytes then B bytes. A done record's id list is queue ids, each followed by "\n":
//            those messages are gone (delivered, removed, or moved to msg/ by save()).
// The checksum covers the whole record, message bytes included: a record a crash cut short, or
// one that never reached the disk in full, does not check out and is skipped.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "relay/core/queue_state.hpp"

namespace danerelay::relay::spool_format {

inline constexpr std::size_t kTrailerSize = 32;
// An envelope record larger than this is damage, not data (a few thousand recipients at most).
inline constexpr std::uint64_t kMaxEnvelopeRecord = 64 * 1024 * 1024;
// save() writes state/QID.tmp, then renames it over state/QID.
inline constexpr std::string_view kStateTmpSuffix = ".tmp";

// CRC-32/IEEE, continuable: crc32(b, crc32(a)) == crc32(a+b).
[[nodiscard]] std::uint32_t crc32(std::string_view data, std::uint32_t crc = 0);

// The 32 trailer bytes for a message of `message_length` bytes followed by `record`.
[[nodiscard]] std::string make_trailer(std::uint64_t message_length, std::string_view record);

struct Trailer {
  std::uint64_t message_length = 0;
  std::uint64_t record_length = 0;
};
// Checks magic, version and that the lengths add up to `file_size`; nullopt with the reason in
// *why otherwise. `trailer` is the file's last kTrailerSize bytes.
[[nodiscard]] std::optional<Trailer> parse_trailer(std::string_view trailer, std::uint64_t file_size, std::string* why);
// Whether the trailer's checksum covers `record`.
[[nodiscard]] bool checksum_matches(std::string_view trailer, std::string_view record);

// ---- segments ----
inline constexpr std::size_t kSegmentHeaderSize = 32;
enum class SegmentRecord : std::uint32_t { message = 1, done = 2 };

// The 16-hex-digit file name of segment `seq`, and back (nullopt for anything else).
[[nodiscard]] std::string segment_name(std::uint64_t seq);
[[nodiscard]] std::optional<std::uint64_t> parse_segment_name(std::string_view name);

// The header of a record whose payload is `a` then `b`.
[[nodiscard]] std::string segment_header(SegmentRecord type, std::string_view a, std::string_view b);

struct SegmentHeader {
  SegmentRecord type = SegmentRecord::message;
  std::uint64_t a_length = 0;
  std::uint64_t b_length = 0;
};
// Checks magic, type and that the payload fits in the `remaining` bytes after the header;
// nullopt with the reason in *why otherwise. `header` is kSegmentHeaderSize bytes.
[[nodiscard]] std::optional<SegmentHeader> parse_segment_header(std::string_view header, std::uint64_t remaining, std::string* why);
// Whether the header's checksum covers `payload` (A then B).
[[nodiscard]] bool segment_checksum_matches(std::string_view header, std::string_view payload);

// Strict UTF-8 (nlohmann's default): an address that is not valid UTF-8 makes this throw, so
// commit() fails rather than store it altered.
[[nodiscard]] std::string envelope_record(const Envelope& e);
// Throws on a wrong shape; the scan turns that into a warning.
[[nodiscard]] Envelope parse_envelope_record(std::string_view text);
// Remote replies may carry bytes that are not UTF-8; they are for humans, so they are replaced
// (U+FFFD) instead of failing the save.
[[nodiscard]] std::string state_record(const MessageState& s);
[[nodiscard]] MessageState parse_state_record(std::string_view text);

// Every recipient pending, nothing tried.
[[nodiscard]] MessageState initial_state(const Envelope& e);

}  // namespace danerelay::relay::spool_format
