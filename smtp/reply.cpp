// smtp/reply.cpp — see reply.hpp. Spec: RFC 5321 §4.2 (reply syntax, multi-line replies with one
// code), RFC 3463 §2 / RFC 2034 (enhanced status codes: class.subject.detail, class = first digit).
#include "smtp/reply.hpp"

#include <cctype>

namespace danerelay::smtp {

namespace {

bool digit(char c) { return c >= '0' && c <= '9'; }

// "2.1.5 text" → length of "2.1.5" when it is a well-formed enhanced code of class `klass`.
std::size_t enhanced_length(std::string_view text, char klass) {
  if (text.size() < 5 || text[0] != klass || text[1] != '.') return 0;
  std::size_t i = 2;
  auto number = [&](std::size_t max_digits) {
    const std::size_t start = i;
    while (i < text.size() && digit(text[i]) && i - start < max_digits) ++i;
    return i > start;
  };
  if (!number(3) || i >= text.size() || text[i] != '.') return 0;
  ++i;
  if (!number(3)) return 0;
  if (i < text.size() && text[i] != ' ') return 0;
  return i;
}

}  // namespace

std::string Reply::one_line() const {
  std::string out = std::to_string(code);
  for (const auto& l : lines) {
    if (l.empty()) continue;
    out += ' ';
    out += l;
  }
  return out;
}

std::string Reply::dsn() const {
  if (!enhanced.empty()) return enhanced;
  return std::string(1, static_cast<char>('0' + code / 100)) + ".0.0";
}

ReplyParser::Status ReplyParser::feed(std::string_view line) {
  if (line.size() > limits_.max_line_length) {
    error_ = "reply line longer than " + std::to_string(limits_.max_line_length) + " bytes";
    return Status::malformed;
  }
  // "ddd" [ ("-" / SP) text ]: the code's first digit is 2..5 (RFC 5321 §4.2).
  if (line.size() < 3 || !digit(line[0]) || !digit(line[1]) || !digit(line[2]) || line[0] < '2' || line[0] > '5' ||
      (line.size() > 3 && line[3] != ' ' && line[3] != '-')) {
    error_ = "malformed reply line \"" + std::string(line.substr(0, 64)) + "\"";
    return Status::malformed;
  }
  const int code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
  if (!current_.lines.empty() && code != current_.code) {
    error_ = "multi-line reply changes its code from " + std::to_string(current_.code) + " to " + std::to_string(code);
    return Status::malformed;
  }
  if (current_.lines.size() >= limits_.max_lines) {
    error_ = "reply longer than " + std::to_string(limits_.max_lines) + " lines";
    return Status::malformed;
  }
  current_.code = code;
  std::string_view text = line.size() > 4 ? line.substr(4) : std::string_view{};
  if (current_.lines.empty()) {
    if (auto n = enhanced_length(text, line[0])) current_.enhanced = std::string(text.substr(0, n));
  }
  current_.lines.emplace_back(text);
  const bool last = line.size() == 3 || line[3] == ' ';
  return last ? Status::complete : Status::need_more;
}

Reply ReplyParser::take() {
  Reply r = std::move(current_);
  current_ = Reply{};
  error_.clear();
  return r;
}

}  // namespace danerelay::smtp
