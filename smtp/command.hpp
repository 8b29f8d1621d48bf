// smtp/command.hpp — the inbound server's command-line parser (sans I/O).
//
// What this is: pure functions from one command line (CRLF already removed) to values:
//   parse_verb()       the verb, case-insensitive (RFC 5321 §2.4), and the argument text;
//   parse_helo()       the EHLO/HELO argument: a domain or an address literal (§4.1.1.1, §4.1.3);
//   parse_mail()       "FROM:<reverse-path> [params]" with the ESMTP parameters we announce;
//   parse_rcpt()       "TO:<forward-path> [params]", including "<postmaster>" (§4.1.1.3, §4.5.1);
//   xtext_decode()     RFC 3461 §4 xtext, strictly.
// What this is not: policy. Whether a command may be given now (sequence, TLS, AUTH, relay
// control, size limits) is the session's business; this module only says "well-formed or not".
//
// Errors are values: a Rejection carries the complete reply line to send ("501 5.1.7 Bad sender
// address syntax"), worded as Postfix smtpd words it so operators and log parsers see familiar
// texts. Nothing here throws (beyond std::bad_alloc).
//
// Accepted leniency (Postfix strict_rfc821_envelopes = no): "MAIL FROM: <a@b>" (space after the
// colon) and an address without angle brackets; source routes "<@a,@b:u@d>" are accepted and the
// route dropped (RFC 5321 §4.1.1.3, Appendix C). Not accepted: unqualified addresses other than
// "<postmaster>", 8-bit addresses without SMTPUTF8 (RFC 6531 §3.4), paths over 256 octets
// (§4.5.3.1.3), lower-case hex in xtext (RFC 3461 §4 says upper case).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

namespace danerelay::smtp {

enum class Verb { helo, ehlo, mail, rcpt, data, bdat, rset, noop, quit, vrfy, expn, help, etrn, starttls, auth, unknown };

struct CommandLine {
  Verb verb = Verb::unknown;
  std::string name;       // the verb as sent, upper-cased ("MAIL"); empty for an empty line
  std::string argument;   // everything after the verb and its separating spaces
};

// A parse failure: the complete reply line without CRLF.
struct Rejection {
  std::string reply;  // "501 5.5.4 Syntax: MAIL FROM:<address>"
  friend bool operator==(const Rejection&, const Rejection&) = default;
};

// MAIL FROM and its RFC 1870 / 6152 / 6531 / 3461 / 4954 parameters.
struct MailCommand {
  std::string sender;               // "" = null reverse-path
  std::uint64_t size = 0;           // SIZE= (0: not given)
  bool eightbit = false;            // BODY=8BITMIME
  bool smtputf8 = false;            // SMTPUTF8
  std::string ret;                  // "", "FULL", "HDRS"
  std::string envid;                // xtext-decoded
};

// RCPT TO and its RFC 3461 parameters.
struct RcptCommand {
  std::string address;              // without brackets; "postmaster" for <postmaster>
  bool postmaster = false;          // the unqualified special case of RFC 5321 §4.5.1
  std::string orcpt;                // "rfc822;user@example.org" (addr-type as sent, value decoded)
  std::uint8_t notify = 0;          // kNotify* bits from smtp/inbound.hpp; 0: not given
};

template <class T>
using Parsed = std::variant<T, Rejection>;

[[nodiscard]] CommandLine parse_verb(std::string_view line);

// The EHLO/HELO argument (one word). Rejection texts: "501 5.5.4 Syntax: EHLO hostname",
// "501 5.5.2 <x>: Helo command rejected: invalid ip address", "... Invalid name".
[[nodiscard]] Parsed<std::string> parse_helo(std::string_view argument, Verb verb);

// `argument` is what follows the verb ("FROM:<a@b> SIZE=10").
[[nodiscard]] Parsed<MailCommand> parse_mail(std::string_view argument);
// `smtputf8`: the transaction's MAIL carried SMTPUTF8 (8-bit recipients allowed).
[[nodiscard]] Parsed<RcptCommand> parse_rcpt(std::string_view argument, bool smtputf8);

// RFC 3629 well-formed UTF-8: no overlong forms, no surrogates, nothing above U+10FFFF.
[[nodiscard]] bool valid_utf8(std::string_view s);

}  // namespace danerelay::smtp
