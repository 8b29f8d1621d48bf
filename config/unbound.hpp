// config/unbound.hpp — the unbound.conf options danerelay refuses, and a scanner that finds them in
// an unbound.conf file (dns.unbound_config) the way unbound's own lexer would.
//
// What this is: one list, used by the loader (config/load.cpp: check-config and `run` refuse the
// configuration with FILE:LINE:COL) and again by the resolver (dns/resolver.cpp, before anything
// reaches libunbound, for settings that did not come through the loader). DANE's guarantees rest
// on DNSSEC validation against the relay's own trust anchor (dns.trust_anchor, D-01); an option
// that adds another anchor, declares names insecure, or lets unvalidated data count as validated is
// refused, never honoured. `include:` / `include-toplevel:` are refused in both places: the file
// they would load is one danerelay never checked.
//
// The scanner follows unbound's util/configlexer.lex: an option is an unquoted "name:" token
// anywhere on a line (several may share one, and "server:name:" is two), values may be glued to
// the colon; '#' at the start of a token comments out the rest of the line; '...' and "..." hold
// no options (backslash escapes inside them). Names are compared ignoring case. Where it cannot
// tell keyword from value it errs towards refusing: an unquoted value that looks like a refused
// "name:" is reported too.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace danerelay::config {

// Why danerelay refuses the unbound option `name` (as in unbound.conf, with or without the
// trailing colon, any case), e.g. "adds a DNSSEC trust anchor besides dns.trust_anchor"; empty
// when the option is allowed.
[[nodiscard]] std::string_view refused_unbound_option(std::string_view name) noexcept;

// "unbound option "NAME" WHY; danerelay refuses it"
[[nodiscard]] std::string unbound_refusal(std::string_view name, std::string_view why);

struct RefusedUnboundOption {
  std::uint32_t line = 0;    // 1-based, in the scanned text
  std::uint32_t column = 0;  // 1-based, where the option name starts
  std::string name;          // as written, without the colon
  std::string_view why;      // refused_unbound_option(name)
};

// Every refused option in unbound.conf text, in file order.
[[nodiscard]] std::vector<RefusedUnboundOption> scan_unbound_conf(std::string_view text);

}  // namespace danerelay::config
