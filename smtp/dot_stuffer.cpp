// smtp/dot_stuffer.cpp — see dot_stuffer.hpp.
#include "smtp/dot_stuffer.hpp"

#include <cstring>

namespace danerelay::smtp {

// Line by line, not byte by byte: memchr finds each LF; the bytes before it are appended in one
// piece. The only per-line decisions are the line-initial '.' and whether the LF had its CR.
void DotStuffer::feed(std::string_view chunk, std::string& out) {
  out.reserve(out.size() + chunk.size() + chunk.size() / 64 + 2);
  const char* const p = chunk.data();
  const std::size_t n = chunk.size();
  std::size_t i = 0;
  while (i < n) {
    if (at_line_start_ && p[i] == '.') out += '.';  // RFC 5321 §4.5.2
    const void* lf_at = std::memchr(p + i, '\n', n - i);
    if (lf_at == nullptr) {
      out.append(p + i, n - i);
      at_line_start_ = false;
      prev_cr_ = p[n - 1] == '\r';
      return;
    }
    const auto lf = static_cast<std::size_t>(static_cast<const char*>(lf_at) - p);
    const bool had_cr = lf > i ? p[lf - 1] == '\r' : prev_cr_;
    out.append(p + i, lf - i);
    if (!had_cr) out += '\r';  // bare LF → CRLF: never send one (SMTP smuggling)
    out += '\n';
    at_line_start_ = true;
    prev_cr_ = false;
    i = lf + 1;
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
