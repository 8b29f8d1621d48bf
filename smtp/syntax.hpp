// smtp/syntax.hpp — the one copy of the mail syntax every layer checks: host names, address
// literals, RFC 3461 xtext and the RFC 5322 date. Pure functions, no dependencies; the config
// loader, the DNS planner, the TLS policy, the SMTP server and client and the notices all use
// these, so a name or a literal means the same thing at every edge.
//
// Host names are RFC 5321 §2.3.5 / RFC 1123 §2.1 LDH names, checked the way Postfix's
// valid_hostname() does: labels of letters, digits and '-', none longer than 63 or starting or
// ending with '-', at most 253 characters, one trailing dot allowed (the root), and no numeric
// top-level label ("192.0.2.1" is an address). Postfix also tolerates '_'; we do not: an SMTP
// domain, an MX target and a configured host name are all LDH. With `utf8`, bytes >= 0x80 may
// appear in labels (RFC 6531 U-labels under SMTPUTF8).
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace danerelay::syntax {

[[nodiscard]] bool is_host_name(std::string_view name, bool utf8 = false) noexcept;

// An address in its textual form, inet_pton's rules (dotted quad; RFC 4291 text without brackets).
[[nodiscard]] bool is_ipv4_address(std::string_view text) noexcept;
[[nodiscard]] bool is_ipv6_address(std::string_view text) noexcept;

// RFC 5321 §4.1.3 address-literal: "[192.0.2.1]" or "[IPv6:2001:db8::1]" (the tag in any case).
// `untagged_v6` also accepts "[2001:db8::1]", the form Postfix's next-hop syntax and
// mynetworks use; SMTP commands never do. General literals (tag:content) are refused: nothing
// registers one.
struct AddressLiteral {
  bool v6 = false;
  std::string address;   // without brackets and tag: "192.0.2.1", "2001:db8::1"
};
[[nodiscard]] std::optional<AddressLiteral> parse_address_literal(std::string_view text, bool untagged_v6 = false);

// A host as a log line names it: the address of an address literal ("[IPv6:::1]" → "::1"),
// anything else unchanged.
[[nodiscard]] std::string_view literal_address_or_name(std::string_view host) noexcept;

// RFC 3461 §4 xtext: "+", "=" and anything outside "!".."~" as "+HH" (upper-case hex).
[[nodiscard]] std::string xtext_encode(std::string_view text);
// nullopt for malformed xtext (a "+" not followed by two upper-case hex digits, a byte outside
// "!".."~", a bare "=").
[[nodiscard]] std::optional<std::string> xtext_decode(std::string_view text);

// RFC 5322 §3.3 date-time in UTC, for Received: and notices: "Thu, 03 Dec 2026 10:45:55 +0000".
// (Postfix's mail_date() adds a "(UTC)" comment; a comment carries nothing a reader needs.)
[[nodiscard]] std::string rfc5322_date(std::chrono::system_clock::time_point when);

}  // namespace danerelay::syntax
