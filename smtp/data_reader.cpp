// smtp/data_reader.cpp — see data_reader.hpp. One pass over the input, no look-ahead beyond
// the two held bytes (a line-initial '.' and a CR), so chunk boundaries never matter.
#include "smtp/data_reader.hpp"

#include <cctype>

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

void DataReader::emit(std::string_view bytes, std::string& out) {
  size_ += bytes.size();
  if (size_ > max_size_) too_big_ = true;
  if (too_big_ || line_too_long_) return;  // rejected anyway: stop producing
  out.append(bytes);
}

void DataReader::header_byte(char c) {
  if (in_headers_ && header_line_.size() < max_header_line) header_line_.push_back(c);
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
  consumed = 0;
  if (status_ != Status::need_more) return status_;
  std::size_t i = 0;
  // Ordinary bytes are copied in runs; the state machine only looks at CR, LF and line starts.
  std::size_t run_start = 0;
  auto flush_run = [&](std::size_t end) {
    if (end > run_start) emit(in.substr(run_start, end - run_start), out);
  };
  for (; i < in.size(); ++i) {
    const char c = in[i];
    ++line_len_;
    if (line_len_ > max_line_) line_too_long_ = true;
    if (cr_held_) {
      cr_held_ = false;
      if (c != '\n') {  // CR not followed by LF
        status_ = Status::bare_cr;
        consumed = i + 1;
        return status_;
      }
      // End of a line. ".CRLF" alone is the end of data (§4.1.1.4).
      if (dot_held_) {
        status_ = Status::done;
        consumed = i + 1;
        return status_;
      }
      emit("\r\n", out);
      header_line_end();
      at_line_start_ = true;
      line_len_ = 0;
      run_start = i + 1;
      continue;
    }
    if (c == '\n') {  // LF without CR
      status_ = Status::bare_lf;
      consumed = i + 1;
      return status_;
    }
    if (c == '\r') {
      flush_run(i);
      cr_held_ = true;
      run_start = i + 1;
      continue;
    }
    if (at_line_start_) {
      at_line_start_ = false;
      if (c == '.') {  // §4.5.2: decide when the next byte arrives
        flush_run(i);
        dot_held_ = true;
        run_start = i + 1;
        continue;
      }
    } else if (dot_held_) {
      dot_held_ = false;  // ".x": the stuffed dot is dropped; "x" starts the run
    }
    header_byte(c);
  }
  flush_run(i);
  consumed = in.size();
  return status_;
}

}  // namespace danerelay::smtp
