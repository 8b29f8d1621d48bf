// smtp/data_reader.cpp — see data_reader.hpp. One pass over the input, no look-ahead beyond
// the two held bytes (a line-initial '.' and a CR), so chunk boundaries never matter.
#include "smtp/data_reader.hpp"

#include <cctype>
#include <cstring>

namespace danerelay::smtp {

namespace {

constexpr std::size_t max_header_line = 998;  // RFC 5322 §2.1.1

bool is_message_id_header(std::string_view line) {
  constexpr std::string_view name = "message-id:";
  if (line.size() < name.size()) return false;
  for (std::size_t i = 0; i < name.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(line[i])) != name[i]) return false;
  }
  return true;
}

// The field name of a header line ("Received" for "Received: from …"), or empty when the line is
// not a header field: RFC 5322 §3.6.8 ftext (printable ASCII except ':'), then optional white
// space (obs-optional, §4.5.8), then ':'.
std::string_view field_name(std::string_view line) {
  std::size_t i = 0;
  while (i < line.size() && line[i] >= 33 && line[i] <= 126 && line[i] != ':') ++i;
  std::size_t colon = i;
  while (colon < line.size() && (line[colon] == ' ' || line[colon] == '\t')) ++colon;
  if (i == 0 || colon == line.size() || line[colon] != ':') return {};
  return line.substr(0, i);
}

bool equals_ignoring_case(std::string_view a, std::string_view lower) {
  if (a.size() != lower.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) != lower[i]) return false;
  }
  return true;
}

std::string trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return std::string(s);
}

}  // namespace

void DataReader::emit(std::string_view bytes, Output& out) {
  size_ += bytes.size();
  if (size_ > max_size_) too_big_ = true;
  if (too_big_ || line_too_long_) return;  // rejected anyway: stop producing
  out.append(bytes);
}

void DataReader::header_bytes(std::string_view bytes) {
  if (!in_headers_ || header_line_.size() >= max_header_line) return;
  header_line_.append(bytes.substr(0, max_header_line - header_line_.size()));
}

// A complete header line (without CRLF): start, continue or end a Message-ID field, count a
// Received: field; an empty line (RFC 5322 §2.1) or a line that is no header field ends the
// header section.
void DataReader::header_line_end() {
  if (!in_headers_) return;
  const std::string_view line = header_line_;
  const bool continuation = seen_field_ && !line.empty() && (line.front() == ' ' || line.front() == '\t');
  if (continuation) {
    if (in_message_id_ && message_id_.size() + line.size() <= max_header_line) message_id_ += trim(line);
  } else {
    if (in_message_id_) have_message_id_ = true;
    in_message_id_ = false;
    const std::string_view name = field_name(line);
    if (name.empty()) {
      in_headers_ = false;  // the empty line, or the body began without one
    } else {
      seen_field_ = true;
      if (equals_ignoring_case(name, "received")) ++received_count_;
      if (!have_message_id_ && is_message_id_header(line)) {
        in_message_id_ = true;
        message_id_ = trim(line.substr(11));
      }
    }
  }
  header_line_.clear();
}

DataReader::Status DataReader::feed(std::string_view in, std::string& out, std::size_t& consumed) {
  struct StringOutput final : Output {
    std::string& s;
    explicit StringOutput(std::string& o) : s(o) {}
    void append(std::string_view bytes) override { s.append(bytes); }
  } o(out);
  return feed(in, o, consumed);
}

// The same decisions as a byte-at-a-time machine (the unit tests feed every case both whole and
// byte by byte), but the bytes inside a line are found with memchr: per line, one search for its
// LF and one for a CR before it. Message bytes are emitted in runs [run_start, i) that include the
// CRLFs; a run is cut only before a line-initial '.' (dropped or, with CR LF, the end of data).
DataReader::Status DataReader::feed(std::string_view in, Output& out, std::size_t& consumed) {
  consumed = 0;
  if (status_ != Status::need_more) return status_;
  const char* const p = in.data();
  const std::size_t n = in.size();
  std::size_t i = 0;
  std::size_t run_start = 0;
  auto flush_run = [&](std::size_t end) {
    if (end > run_start) emit(in.substr(run_start, end - run_start), out);
    run_start = end;
  };
  auto count = [&](std::size_t bytes) {
    line_len_ += bytes;
    if (line_len_ > max_line_) line_too_long_ = true;
  };
  while (i < n) {
    if (cr_held_) {  // the byte after a CR must be its LF
      cr_held_ = false;
      count(1);
      if (p[i] != '\n') {
        status_ = Status::bare_cr;
        consumed = i + 1;
        return status_;
      }
      // End of a line. ".CRLF" alone is the end of data (§4.1.1.4); the run before the dot was
      // emitted when the dot was held, and ".CRLF" itself is not message data.
      if (dot_held_) {
        status_ = Status::done;
        consumed = i + 1;
        return status_;
      }
      ++i;  // the CR LF stay in the run
      header_line_end();
      at_line_start_ = true;
      line_len_ = 0;
      continue;
    }
    if (at_line_start_) {
      at_line_start_ = false;
      if (p[i] == '.') {  // §4.5.2: decide when the next byte arrives
        count(1);
        flush_run(i);
        dot_held_ = true;
        ++i;
        run_start = i;
        continue;
      }
    } else if (dot_held_ && p[i] != '\r') {
      dot_held_ = false;  // ".x": the stuffed dot is dropped; "x" starts the run
    }
    // The rest of the line: up to its LF, or the end of the input.
    const void* lf_at = std::memchr(p + i, '\n', n - i);
    const std::size_t stop = lf_at != nullptr ? static_cast<std::size_t>(static_cast<const char*>(lf_at) - p) : n;
    const void* cr_at = std::memchr(p + i, '\r', stop - i);
    if (cr_at == nullptr) {
      count(stop - i);
      header_bytes(in.substr(i, stop - i));
      if (stop == n) {
        i = n;
        break;
      }
      status_ = Status::bare_lf;  // an LF without its CR
      consumed = stop + 1;
      return status_;
    }
    const auto cr = static_cast<std::size_t>(static_cast<const char*>(cr_at) - p);
    count(cr - i + 1);
    header_bytes(in.substr(i, cr - i));
    cr_held_ = true;
    i = cr + 1;
  }
  // Hold back nothing but a CR after a held dot (".\r" may be the end of data): it is never data.
  flush_run(cr_held_ && dot_held_ ? n - 1 : n);
  consumed = n;
  return status_;
}

}  // namespace danerelay::smtp
