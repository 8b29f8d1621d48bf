// smtp/data_reader.hpp — the inbound DATA decoder (sans I/O): raw bytes after "354" in, the
// message out (dot-unstuffed, CRLF line ends), and the end of data recognised.
//
// What this is: a state machine fed in chunks of any size (a chunk may end anywhere, even between
// CR and LF or right after a line-initial dot). It stops consuming at the end of data, so
// pipelined commands after "." stay with the caller. Inside a line it does not step byte by byte:
// it finds the line's LF and any CR with memchr, and hands the message bytes on in runs that span
// whole lines (a run breaks only at a dropped stuffing dot and at the end of data), so that a
// 16 KiB read usually reaches the spool writer as one append (issue 12, the DATA byte loop).
//
// SMTP smuggling defence (Postfix smtpd_forbid_bare_newline = yes, CVE-2023-51764 class):
//   - end of data is ONLY <CR><LF>.<CR><LF> (RFC 5321 §4.1.1.4), or ".<CR><LF>" as the very first
//     line (the CRLF that ended the DATA command counts as the preceding line end);
//   - a bare <LF>, or a <CR> not followed by <LF>, anywhere in the data is an error: feed()
//     returns Status::bare_lf / bare_cr and the caller rejects the message and closes the
//     connection (521 5.5.2). "\n.\n", "\r.\n", "\n.\r\n" therefore never end the data: the first
//     bare byte already fails it.
//
// Transparency (RFC 5321 §4.5.2): a line-initial "." is removed when more text follows on the line.
//
// Limits, reported after the end of data so the client sees one clean reply (the session keeps
// reading to the end, RFC 1870 §6.3 / §4.5.3.1.10):
//   - too_big():       more than max_message_size unstuffed octets → 552 5.3.4;
//   - line_too_long(): a line longer than max_line_length octets including its CRLF
//     (RFC 5321 §4.5.3.1.6) → "500 5.5.2 Error: line too long" (the text §4.5.3.1.10 suggests).
//     Rejecting, not folding: folding would break DKIM signatures and hide the problem from the
//     sender; truncating loses data. Operators who need longer lines raise limits.max_line_length.
// Once either flag is set, no more message bytes are produced (the message is lost anyway).
//
// message_id(): the value of the first Message-ID header (unfolded, trimmed, at most 998
// octets), for the Postfix "QID: message-id=<…>" log line; empty when there is none.
//
// received_count(): how many Received: fields the header section holds (checklist L-01, mail
// loops; the session compares it with limits.max_hops). Only the header section counts: it ends
// at the first empty line, or, as in Postfix, at the first line that is neither a header field
// ("name:", RFC 5322 §2.2, obsolete white space before the colon allowed) nor the continuation
// of one. Received: lines in the body (a forwarded message pasted in) do not count.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace danerelay::smtp {

class DataReader {
 public:
  enum class Status { need_more, done, bare_lf, bare_cr };

  // Where the message bytes go: the session hands them straight to its MessageSink, without an
  // intermediate string (one copy fewer per body byte).
  class Output {
   public:
    virtual void append(std::string_view bytes) = 0;

   protected:
    ~Output() = default;
  };

  DataReader(std::uint64_t max_message_size, std::size_t max_line_length)
      : max_size_(max_message_size), max_line_(max_line_length) {}

  // Consumes bytes from `in` (up to and including the end-of-data line when found), appending
  // message bytes to `out`. `consumed` receives how many bytes of `in` were used; bytes after
  // the end of data are left for the caller. After done/bare_*, further feeds consume nothing.
  Status feed(std::string_view in, Output& out, std::size_t& consumed);
  Status feed(std::string_view in, std::string& out, std::size_t& consumed);  // appends to `out`

  [[nodiscard]] bool too_big() const noexcept { return too_big_; }
  [[nodiscard]] bool line_too_long() const noexcept { return line_too_long_; }
  [[nodiscard]] std::uint64_t size() const noexcept { return size_; }  // unstuffed octets seen
  [[nodiscard]] const std::string& message_id() const noexcept { return message_id_; }
  [[nodiscard]] std::uint64_t received_count() const noexcept { return received_count_; }

 private:
  void emit(std::string_view bytes, Output& out);
  void header_bytes(std::string_view bytes);
  void header_line_end();

  std::uint64_t max_size_;
  std::size_t max_line_;
  Status status_ = Status::need_more;
  bool at_line_start_ = true;  // after the DATA command's CRLF
  bool dot_held_ = false;      // a line-initial '.' not yet decided (stuffing or end?)
  bool cr_held_ = false;       // a CR waiting for its LF
  std::size_t line_len_ = 0;   // raw octets of the current line so far
  bool too_big_ = false;
  bool line_too_long_ = false;
  std::uint64_t size_ = 0;

  // Header scan for Message-ID (RFC 5322 §3.6.4) and Received: (§3.6.7), bounded.
  bool in_headers_ = true;
  bool seen_field_ = false;    // a continuation line needs a field to continue
  std::uint64_t received_count_ = 0;
  bool in_message_id_ = false;
  bool have_message_id_ = false;
  std::string header_line_;
  std::string message_id_;
};

}  // namespace danerelay::smtp
