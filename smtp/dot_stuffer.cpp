// smtp/dot_stuffer.cpp — see dot_stuffer.hpp.
#include "smtp/dot_stuffer.hpp"

namespace danerelay::smtp {

void DotStuffer::feed(std::string_view chunk, std::string& out) {
  out.reserve(out.size() + chunk.size() + chunk.size() / 64 + 2);
  for (char c : chunk) {
    if (at_line_start_ && c == '.') out += '.';  // RFC 5321 §4.5.2
    if (c == '\n' && !prev_cr_) out += '\r';     // bare LF → CRLF: never send one (SMTP smuggling)
    out += c;
    at_line_start_ = c == '\n';
    prev_cr_ = c == '\r';
  }
}

void DotStuffer::finish(std::string& out) {
  if (prev_cr_) {
    out += '\n';
  } else if (!at_line_start_) {
    out += "\r\n";
  }
  out += ".\r\n";
  at_line_start_ = true;
  prev_cr_ = false;
}

}  // namespace danerelay::smtp
