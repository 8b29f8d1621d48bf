// smtp/command.cpp — see command.hpp. Grammar references are RFC 5321 §4.1.2 unless noted.
#include "smtp/command.hpp"

#include <arpa/inet.h>

#include <array>
#include <cctype>
#include <cstring>
#include <vector>

#include "smtp/inbound.hpp"
#include "smtp/syntax.hpp"

namespace danerelay::smtp {

namespace {

constexpr std::size_t max_path = 256;    // §4.5.3.1.3, including the angle brackets
constexpr std::size_t max_domain = 255;  // §4.5.3.1.2
constexpr std::size_t max_envid = 100;   // RFC 3461 §4.4
constexpr std::size_t max_orcpt = 500;   // RFC 3461 §4.2

bool is_alpha(unsigned char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'); }
bool is_digit(unsigned char c) { return c >= '0' && c <= '9'; }
bool is_alnum(unsigned char c) { return is_alpha(c) || is_digit(c); }

std::string upper(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (std::toupper(static_cast<unsigned char>(a[i])) != std::toupper(static_cast<unsigned char>(b[i]))) return false;
  }
  return true;
}

bool istarts_with(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && iequals(s.substr(0, prefix.size()), prefix);
}

std::string_view trim_spaces(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool has_8bit(std::string_view s) {
  for (unsigned char c : s) {
    if (c >= 0x80) return true;
  }
  return false;
}

// atext (RFC 5322 §3.2.3), plus UTF-8 octets where SMTPUTF8 allows them (RFC 6531 §3.3).
bool is_atext(unsigned char c, bool utf8) {
  if (is_alnum(c)) return true;
  if (c >= 0x80) return utf8;
  return std::strchr("!#$%&'*+-/=?^_`{|}~", c) != nullptr && c != 0;
}

// Dot-string = Atom *("." Atom)
bool valid_dot_string(std::string_view s, bool utf8) {
  if (s.empty() || s.front() == '.' || s.back() == '.') return false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c == '.') {
      if (s[i - 1] == '.') return false;
    } else if (!is_atext(c, utf8)) {
      return false;
    }
  }
  return true;
}

// Quoted-string = DQUOTE *( qtextSMTP / quoted-pairSMTP ) DQUOTE
bool valid_quoted_string(std::string_view s, bool utf8) {
  if (s.size() < 2 || s.front() != '"' || s.back() != '"') return false;
  for (std::size_t i = 1; i + 1 < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c == '\\') {
      ++i;
      if (i + 1 >= s.size()) return false;
      const auto q = static_cast<unsigned char>(s[i]);
      if (q < 32 || q > 126) return false;  // quoted-pairSMTP = "\" %d32-126
    } else if (c == '"') {
      return false;
    } else if (c >= 0x80) {
      if (!utf8) return false;
    } else if (c < 32 || c > 126) {
      return false;
    }
  }
  return true;
}

// Where a path ends: the '>' closing it (quotes respected), or the first space without brackets.
// Returns the path text (brackets included when present) or nullopt when unterminated.
std::optional<std::string_view> take_path(std::string_view& rest) {
  if (!rest.empty() && rest.front() == '<') {
    bool quoted = false;
    for (std::size_t i = 1; i < rest.size(); ++i) {
      const char c = rest[i];
      if (quoted && c == '\\') {
        ++i;
      } else if (c == '"') {
        quoted = !quoted;
      } else if (c == '>' && !quoted) {
        const auto path = rest.substr(0, i + 1);
        rest.remove_prefix(i + 1);
        return path;
      }
    }
    return std::nullopt;
  }
  const std::size_t sp = rest.find(' ');
  const auto path = rest.substr(0, sp);
  rest.remove_prefix(sp == std::string_view::npos ? rest.size() : sp);
  return path;
}

enum class PathError { none, syntax, unqualified, needs_utf8 };

struct PathResult {
  PathError error = PathError::none;
  std::string address;   // mailbox without brackets or route
  bool null_path = false;
  bool postmaster = false;
};

// Path = "<" [ A-d-l ":" ] Mailbox ">"; Mailbox = Local-part "@" ( Domain / address-literal ).
PathResult check_path(std::string_view path, bool smtputf8, bool allow_postmaster) {
  PathResult r;
  if (path.size() > max_path) { r.error = PathError::syntax; return r; }
  std::string_view inner = path;
  if (!inner.empty() && inner.front() == '<') {
    if (inner.size() < 2 || inner.back() != '>') { r.error = PathError::syntax; return r; }
    inner = inner.substr(1, inner.size() - 2);
  }
  if (inner.empty()) {
    r.null_path = true;
    return r;
  }
  for (unsigned char c : inner) {
    if (c < 32 || c == 127) { r.error = PathError::syntax; return r; }
  }
  // Source route (§4.1.1.3: accept and ignore): "@a,@b:" before the mailbox.
  if (inner.front() == '@') {
    const std::size_t colon = inner.find(':');
    if (colon == std::string_view::npos) { r.error = PathError::syntax; return r; }
    std::string_view route = inner.substr(0, colon);
    while (!route.empty()) {
      if (route.front() != '@') { r.error = PathError::syntax; return r; }
      const std::size_t comma = route.find(',');
      const auto dom = route.substr(1, comma == std::string_view::npos ? std::string_view::npos : comma - 1);
      if (!syntax::is_host_name(dom, smtputf8) && !syntax::parse_address_literal(dom)) { r.error = PathError::syntax; return r; }
      route.remove_prefix(comma == std::string_view::npos ? route.size() : comma + 1);
    }
    inner.remove_prefix(colon + 1);
  }
  if (!valid_utf8(inner)) { r.error = PathError::syntax; return r; }
  // The local part: a quoted string (which may contain '@') or a dot-string.
  std::size_t at = std::string_view::npos;
  if (!inner.empty() && inner.front() == '"') {
    std::size_t i = 1;
    for (; i < inner.size(); ++i) {
      if (inner[i] == '\\') { ++i; continue; }
      if (inner[i] == '"') break;
    }
    if (i >= inner.size()) { r.error = PathError::syntax; return r; }
    at = i + 1 < inner.size() ? i + 1 : std::string_view::npos;
    if (at != std::string_view::npos && inner[at] != '@') { r.error = PathError::syntax; return r; }
  } else {
    at = inner.rfind('@');
  }
  const std::string_view local = inner.substr(0, at);
  if (at == std::string_view::npos) {
    if (allow_postmaster && iequals(local, "postmaster")) {  // §4.5.1
      r.postmaster = true;
      r.address = "postmaster";
      return r;
    }
    if (!(valid_dot_string(local, true) || valid_quoted_string(local, true))) {
      r.error = PathError::syntax;
      return r;
    }
    r.address = std::string(local);
    r.error = PathError::unqualified;
    return r;
  }
  const std::string_view domain = inner.substr(at + 1);
  const bool local_ok = valid_dot_string(local, true) || valid_quoted_string(local, true);
  const bool domain_ok = syntax::is_host_name(domain, true) || syntax::parse_address_literal(domain).has_value();
  if (!local_ok || !domain_ok) { r.error = PathError::syntax; return r; }
  r.address = std::string(inner);
  if (has_8bit(inner) && !smtputf8) r.error = PathError::needs_utf8;  // RFC 6531 §3.4
  return r;
}

// esmtp-param = esmtp-keyword ["=" esmtp-value]; keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-").
struct Param {
  std::string keyword;       // upper-cased
  std::string_view value;
  bool has_value = false;
  std::string_view text;     // as sent, for messages
};

std::optional<Param> split_param(std::string_view text) {
  Param p;
  p.text = text;
  const std::size_t eq = text.find('=');
  const std::string_view kw = text.substr(0, eq);
  if (kw.empty() || !is_alnum(static_cast<unsigned char>(kw.front()))) return std::nullopt;
  for (unsigned char c : kw) {
    if (!is_alnum(c) && c != '-') return std::nullopt;
  }
  p.keyword = upper(kw);
  if (eq != std::string_view::npos) {
    p.has_value = true;
    p.value = text.substr(eq + 1);
    if (p.value.empty()) return std::nullopt;
    for (unsigned char c : p.value) {
      if (c < 33 || c == '=' || c == 127) return std::nullopt;  // esmtp-value = 1*(%d33-60 / %d62-126)
    }
  }
  return p;
}

Rejection reject(std::string text) { return Rejection{std::move(text)}; }

Rejection unsupported(const Param& p) { return reject("555 5.5.4 Unsupported option: " + std::string(p.text)); }

// Splits the parameter list after the path. A path must be followed by nothing or a space.
bool split_params(std::string_view rest, std::vector<std::string_view>& out) {
  if (!rest.empty() && rest.front() != ' ') return false;
  while (!rest.empty()) {
    while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
    if (rest.empty()) break;
    const std::size_t sp = rest.find(' ');
    out.push_back(rest.substr(0, sp));
    rest.remove_prefix(sp == std::string_view::npos ? rest.size() : sp);
  }
  return true;
}

bool printable_ascii(std::string_view s) {
  for (unsigned char c : s) {
    if (c < 32 || c > 126) return false;
  }
  return true;
}

// RFC 3461 §4.1: "NEVER" alone, or a comma list of SUCCESS, FAILURE, DELAY (each once).
std::optional<std::uint8_t> parse_notify(std::string_view v) {
  if (iequals(v, "NEVER")) return kNotifyNever;
  std::uint8_t bits = 0;
  while (true) {
    const std::size_t comma = v.find(',');
    const auto item = v.substr(0, comma);
    std::uint8_t bit = 0;
    if (iequals(item, "SUCCESS")) bit = kNotifySuccess;
    else if (iequals(item, "FAILURE")) bit = kNotifyFailure;
    else if (iequals(item, "DELAY")) bit = kNotifyDelay;
    else return std::nullopt;  // includes NEVER inside a list and empty items
    if (bits & bit) return std::nullopt;
    bits |= bit;
    if (comma == std::string_view::npos) break;
    v.remove_prefix(comma + 1);
  }
  return bits;
}

// RFC 3461 §4.2: orcpt-parameter = "ORCPT=" addr-type ";" xtext; addr-type = atom.
std::optional<std::string> parse_orcpt(std::string_view v) {
  if (v.size() > max_orcpt) return std::nullopt;
  const std::size_t semi = v.find(';');
  if (semi == std::string_view::npos || semi == 0) return std::nullopt;
  const auto type = v.substr(0, semi);
  for (unsigned char c : type) {
    if (!is_atext(c, false)) return std::nullopt;
  }
  auto decoded = syntax::xtext_decode(v.substr(semi + 1));
  if (!decoded || decoded->empty() || !printable_ascii(*decoded)) return std::nullopt;
  return std::string(type) + ";" + *decoded;
}

}  // namespace

bool valid_utf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    std::size_t n = 0;
    std::uint32_t cp = 0;
    if (c < 0x80) { ++i; continue; }
    if (c >= 0xC2 && c <= 0xDF) { n = 1; cp = c & 0x1F; }
    else if (c >= 0xE0 && c <= 0xEF) { n = 2; cp = c & 0x0F; }
    else if (c >= 0xF0 && c <= 0xF4) { n = 3; cp = c & 0x07; }
    else return false;
    for (std::size_t k = 1; k <= n; ++k) {
      if (i + k >= s.size()) return false;
      const auto d = static_cast<unsigned char>(s[i + k]);
      if ((d & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (d & 0x3F);
    }
    if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10FFFF)) || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += n + 1;
  }
  return true;
}



CommandLine parse_verb(std::string_view line) {
  static constexpr std::array<std::pair<std::string_view, Verb>, 15> verbs{{
      {"HELO", Verb::helo}, {"EHLO", Verb::ehlo}, {"MAIL", Verb::mail}, {"RCPT", Verb::rcpt},
      {"DATA", Verb::data}, {"BDAT", Verb::bdat}, {"RSET", Verb::rset}, {"NOOP", Verb::noop},
      {"QUIT", Verb::quit}, {"VRFY", Verb::vrfy}, {"EXPN", Verb::expn}, {"HELP", Verb::help},
      {"ETRN", Verb::etrn}, {"STARTTLS", Verb::starttls}, {"AUTH", Verb::auth},
  }};
  CommandLine c;
  // RFC 5321 §4.1.1: verb, then SP. Leading/trailing spaces are tolerated as Postfix does.
  line = trim_spaces(line);
  const std::size_t sp = line.find_first_of(" \t");
  c.name = upper(line.substr(0, sp));
  if (sp != std::string_view::npos) c.argument = std::string(trim_spaces(line.substr(sp + 1)));
  for (const auto& [name, verb] : verbs) {
    if (c.name == name) {
      c.verb = verb;
      break;
    }
  }
  return c;
}

Parsed<std::string> parse_helo(std::string_view argument, Verb verb) {
  const std::string_view name = verb == Verb::helo ? "HELO" : "EHLO";
  argument = trim_spaces(argument);
  if (argument.empty()) return reject("501 5.5.4 Syntax: " + std::string(name) + " hostname");
  // RFC 5321 §4.1.1.1: one Domain or address-literal. Further words are ignored (real clients
  // send them; Postfix too takes the line).
  const auto word = argument.substr(0, argument.find_first_of(" \t"));
  if (word.front() == '[') {
    if (!syntax::parse_address_literal(word)) {
      return reject("501 5.5.2 <" + std::string(word) + ">: Helo command rejected: invalid ip address");
    }
    return std::string(word);
  }
  // Domain, with '_' tolerated (Windows host names); no 8-bit (RFC 6531 §3.7.1: A-labels).
  bool ok = word.size() <= max_domain;
  for (unsigned char c : word) {
    if (!(is_alnum(c) || c == '-' || c == '.' || c == '_')) ok = false;
  }
  if (!ok || word.front() == '.' || word.find("..") != std::string_view::npos) {
    return reject("501 5.5.2 <" + std::string(printable_ascii(word) ? word : "?") + ">: Helo command rejected: Invalid name");
  }
  return std::string(word);
}

Parsed<MailCommand> parse_mail(std::string_view argument) {
  const Rejection syntax = reject("501 5.5.4 Syntax: MAIL FROM:<address>");
  if (!istarts_with(argument, "FROM:")) return syntax;
  std::string_view rest = argument.substr(5);
  while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);  // lenient: "FROM: <a>"
  if (rest.empty()) return syntax;
  const auto path = take_path(rest);
  if (!path) return reject("501 5.1.7 Bad sender address syntax");
  std::vector<std::string_view> params;
  if (!split_params(rest, params)) return reject("501 5.1.7 Bad sender address syntax");

  MailCommand m;
  bool seen_size = false, seen_body = false, seen_ret = false, seen_envid = false, seen_auth = false;
  for (const auto text : params) {
    auto p = split_param(text);
    if (!p) return reject("555 5.5.4 Unsupported option: " + std::string(printable_ascii(text) ? text : "?"));
    auto dup = [&](bool& seen) {
      if (seen) return true;
      seen = true;
      return false;
    };
    if (p->keyword == "SIZE") {  // RFC 1870 §6: size-value = 1*20DIGIT
      if (dup(seen_size)) return reject("501 5.5.4 Error: duplicate SIZE parameter");
      if (!p->has_value || p->value.size() > 20) return reject("501 5.5.4 Bad message size syntax");
      std::uint64_t n = 0;
      for (unsigned char c : p->value) {
        if (!is_digit(c)) return reject("501 5.5.4 Bad message size syntax");
        const std::uint64_t d = c - '0';
        if (n > (UINT64_MAX - d) / 10) return reject("501 5.5.4 Bad message size syntax");
        n = n * 10 + d;
      }
      m.size = n;
    } else if (p->keyword == "BODY") {  // RFC 6152 §2
      if (dup(seen_body)) return reject("501 5.5.4 Error: duplicate BODY parameter");
      if (!p->has_value) return unsupported(*p);
      if (iequals(p->value, "8BITMIME")) m.eightbit = true;
      else if (!iequals(p->value, "7BIT")) return unsupported(*p);  // BINARYMIME is not offered
    } else if (p->keyword == "SMTPUTF8") {  // RFC 6531 §3.4: no value
      if (m.smtputf8) return reject("501 5.5.4 Error: duplicate SMTPUTF8 parameter");
      if (p->has_value) return unsupported(*p);
      m.smtputf8 = true;
    } else if (p->keyword == "RET") {  // RFC 3461 §4.3
      if (dup(seen_ret) || !p->has_value) return reject("501 5.5.4 Bad RET parameter syntax");
      if (iequals(p->value, "FULL")) m.ret = "FULL";
      else if (iequals(p->value, "HDRS")) m.ret = "HDRS";
      else return reject("501 5.5.4 Bad RET parameter syntax");
    } else if (p->keyword == "ENVID") {  // RFC 3461 §4.4
      if (dup(seen_envid) || !p->has_value || p->value.size() > max_envid) return reject("501 5.5.4 Bad ENVID parameter syntax");
      auto decoded = syntax::xtext_decode(p->value);
      if (!decoded || decoded->empty() || !printable_ascii(*decoded)) return reject("501 5.5.4 Bad ENVID parameter syntax");
      m.envid = std::move(*decoded);
    } else if (p->keyword == "AUTH") {  // RFC 4954 §5: accepted and ignored (we trust no one's word)
      if (dup(seen_auth)) return reject("503 5.5.4 Error: multiple AUTH= options");
      if (!p->has_value || (p->value != "<>" && !syntax::xtext_decode(p->value))) return reject("501 5.5.4 Bad AUTH parameter syntax");
    } else {
      return unsupported(*p);
    }
  }

  const auto r = check_path(*path, m.smtputf8, false);
  switch (r.error) {
    case PathError::none: break;
    case PathError::syntax: return reject("501 5.1.7 Bad sender address syntax");
    case PathError::needs_utf8: return reject("553 5.6.7 Must declare SMTPUTF8 to send unicode address");
    case PathError::unqualified:
      return reject("504 5.5.2 <" + r.address + ">: Sender address rejected: need fully-qualified address");
  }
  m.sender = r.address;  // "" for <>
  return m;
}

Parsed<RcptCommand> parse_rcpt(std::string_view argument, bool smtputf8) {
  const Rejection syntax = reject("501 5.5.4 Syntax: RCPT TO:<address>");
  if (!istarts_with(argument, "TO:")) return syntax;
  std::string_view rest = argument.substr(3);
  while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
  if (rest.empty()) return syntax;
  const auto path = take_path(rest);
  if (!path) return reject("501 5.1.3 Bad recipient address syntax");
  std::vector<std::string_view> params;
  if (!split_params(rest, params)) return reject("501 5.1.3 Bad recipient address syntax");

  RcptCommand rc;
  bool seen_orcpt = false;
  for (const auto text : params) {
    auto p = split_param(text);
    if (!p) return reject("555 5.5.4 Unsupported option: " + std::string(printable_ascii(text) ? text : "?"));
    if (p->keyword == "NOTIFY") {  // RFC 3461 §4.1
      if (rc.notify != 0 || !p->has_value) return reject("501 5.5.4 Error: Bad NOTIFY parameter syntax");
      const auto bits = parse_notify(p->value);
      if (!bits) return reject("501 5.5.4 Error: Bad NOTIFY parameter syntax");
      rc.notify = *bits;
    } else if (p->keyword == "ORCPT") {  // RFC 3461 §4.2
      if (seen_orcpt || !p->has_value) return reject("501 5.5.4 Error: Bad ORCPT parameter syntax");
      seen_orcpt = true;
      auto o = parse_orcpt(p->value);
      if (!o) return reject("501 5.5.4 Error: Bad ORCPT parameter syntax");
      rc.orcpt = std::move(*o);
    } else {
      return unsupported(*p);
    }
  }

  const auto r = check_path(*path, smtputf8, true);
  switch (r.error) {
    case PathError::none: break;
    case PathError::syntax: return reject("501 5.1.3 Bad recipient address syntax");
    case PathError::needs_utf8: return reject("553 5.6.7 Must declare SMTPUTF8 to send unicode address");
    case PathError::unqualified:
      return reject("504 5.5.2 <" + r.address + ">: Recipient address rejected: need fully-qualified address");
  }
  if (r.null_path) return reject("501 5.1.3 Bad recipient address syntax");  // §4.1.1.3: no "<>"
  rc.address = r.address;
  rc.postmaster = r.postmaster;
  return rc;
}

}  // namespace danerelay::smtp
