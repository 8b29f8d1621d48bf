// smtp/dot_stuffer.hpp — the DATA transparency encoder (RFC 5321 §4.5.2), streaming.
//
// Feed the message in chunks of any size; lines starting with "." get a second ".", bare LF
// becomes CRLF, and finish() ends the data with CRLF "." CRLF (adding the missing final CRLF).
// One encoder per message. Chunk boundaries may fall anywhere, even between CR and LF.
#pragma once

#include <string>
#include <string_view>

namespace danerelay::smtp {

class DotStuffer {
 public:
  void feed(std::string_view chunk, std::string& out);
  void finish(std::string& out);

 private:
  bool at_line_start_ = true;
  bool prev_cr_ = false;
};

}  // namespace danerelay::smtp
