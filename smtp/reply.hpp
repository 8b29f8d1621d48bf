// smtp/reply.hpp — SMTP replies (RFC 5321 §4.2) and a sans-I/O parser for them.
//
// What this is: the reply value every client step returns, and an incremental parser fed one
// line at a time (CRLF already removed) by whatever reads the socket — the KumoMTA
// ResponseBuilder / Postfix smtp_chat split: no socket here, so every malformed input is a table
// row in the tests. Enhanced status codes (RFC 3463, RFC 2034) are recognised on the first line.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace danerelay::smtp {

struct Reply {
  int code = 0;                     // 200..599
  std::string enhanced;             // "2.0.0" when the server sent one, else empty
  std::vector<std::string> lines;   // text of each line, after "ddd-"/"ddd " (enhanced code kept)

  [[nodiscard]] bool positive() const noexcept { return code >= 200 && code < 400; }
  [[nodiscard]] bool transient() const noexcept { return code >= 400 && code < 500; }
  [[nodiscard]] bool permanent() const noexcept { return code >= 500 && code < 600; }
  // All lines joined with spaces after the code, as Postfix logs a reply: "250 2.0.0 Ok: queued as X".
  [[nodiscard]] std::string one_line() const;
  // The enhanced code, or one derived from the basic code class (X.0.0) when there is none.
  [[nodiscard]] std::string dsn() const;
};

class ReplyParser {
 public:
  enum class Status { need_more, complete, malformed };

  struct Limits {
    std::size_t max_line_length = 4096;   // RFC 5321 §4.5.3.1.5 says 512; real servers send more
    std::size_t max_lines = 256;
  };

  ReplyParser() = default;
  explicit ReplyParser(Limits limits) : limits_(limits) {}

  // One reply line without its CRLF. After `complete`, take() the reply; after `malformed`,
  // error() says why and the connection should be dropped.
  Status feed(std::string_view line);
  [[nodiscard]] Reply take();
  [[nodiscard]] const std::string& error() const noexcept { return error_; }

 private:
  Limits limits_;
  Reply current_;
  std::string error_;
};

}  // namespace danerelay::smtp
