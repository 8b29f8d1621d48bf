// config/unbound.cpp — see unbound.hpp. Option names and their meaning: unbound.conf(5), unbound 1.17
// (Debian 12) and later; the lexer rules: unbound util/configlexer.lex.
#include "config/unbound.hpp"

#include <array>
#include <cctype>

namespace danerelay::config {

namespace {

constexpr std::string_view kAnchor = "adds a DNSSEC trust anchor besides dns.trust_anchor";
constexpr std::string_view kInsecure = "declares names insecure, so DANE would not apply to them";
constexpr std::string_view kDates = "accepts DNSSEC signatures outside their validity period";
constexpr std::string_view kHolddown = "changes when RFC 5011 accepts a new trust anchor";
constexpr std::string_view kInclude = "loads another file whose options danerelay does not check";

struct Refused {
  std::string_view name;
  std::string_view why;
};

constexpr std::array<Refused, 23> kRefused{{
    // Other trust anchors than the relay's own (dns.trust_anchor, loaded by the resolver).
    {"trust-anchor", kAnchor},
    {"trust-anchor-file", kAnchor},
    {"auto-trust-anchor-file", kAnchor},
    {"trusted-keys-file", kAnchor},
    {"dlv-anchor", kAnchor},
    {"dlv-anchor-file", kAnchor},
    // Names taken out of validation: an insecure MX or TLSA answer turns DANE off (RFC 7672 §2.2).
    {"domain-insecure", kInsecure},
    {"insecure-lan-zones", kInsecure},
    {"val-nsec3-keysize-iterations", "changes which NSEC3 proofs count as insecure"},
    // The validator itself: removed, made permissive, or fooled.
    {"module-config", "can remove the validator module"},
    {"val-permissive-mode", "lets answers that failed validation through"},
    {"harden-dnssec-stripped", "can accept answers stripped of their signatures as insecure"},
    {"disable-edns-do", "stops asking for DNSSEC records"},
    {"fake-dsa", "accepts DSA signatures without checking them"},
    {"fake-sha1", "accepts SHA-1 signatures without checking them"},
    {"val-override-date", kDates},
    {"val-sig-skew-min", kDates},
    {"val-sig-skew-max", kDates},
    // RFC 5011 rollover of the relay's managed anchor.
    {"add-holddown", kHolddown},
    {"del-holddown", kHolddown},
    {"keep-missing", kHolddown},
    {"permit-small-holddown", kHolddown},
    // Files danerelay never scanned.
    {"include", kInclude},
}};
constexpr Refused kIncludeToplevel{"include-toplevel", kInclude};

}  // namespace

std::string_view refused_unbound_option(std::string_view name) noexcept {
  if (name.ends_with(':')) name.remove_suffix(1);
  if (name.empty() || name.size() > 64) return {};
  std::array<char, 64> buf{};
  for (std::size_t i = 0; i < name.size(); ++i) buf[i] = static_cast<char>(std::tolower(static_cast<unsigned char>(name[i])));
  const std::string_view key(buf.data(), name.size());
  if (key == kIncludeToplevel.name) return kIncludeToplevel.why;
  for (const Refused& r : kRefused) {
    if (r.name == key) return r.why;
  }
  return {};
}

std::string unbound_refusal(std::string_view name, std::string_view why) {
  return "unbound option \"" + std::string(name) + "\" " + std::string(why) + "; danerelay refuses it";
}

std::vector<RefusedUnboundOption> scan_unbound_conf(std::string_view text) {
  std::vector<RefusedUnboundOption> out;
  std::uint32_t line = 1;
  std::size_t line_start = 0;
  std::size_t i = 0;
  const auto column = [&](std::size_t at) { return static_cast<std::uint32_t>(at - line_start + 1); };
  const auto newline = [&](std::size_t at) {
    ++line;
    line_start = at + 1;
  };
  // Each "name:" segment of an unquoted token [begin, end): "server:trust-anchor-file:" is two.
  const auto check_token = [&](std::size_t begin, std::size_t end) {
    std::size_t seg = begin;
    for (std::size_t k = begin; k < end; ++k) {
      if (text[k] == '\\') {
        ++k;  // an escaped character never ends a name
        continue;
      }
      if (text[k] != ':') continue;
      const std::string_view name = text.substr(seg, k - seg);
      if (const std::string_view why = refused_unbound_option(name); !why.empty()) {
        out.push_back(RefusedUnboundOption{line, column(seg), std::string(name), why});
      }
      seg = k + 1;
    }
  };
  while (i < text.size()) {
    const char c = text[i];
    if (c == '\n') {
      newline(i);
      ++i;
    } else if (c == ' ' || c == '\t' || c == '\r') {
      ++i;
    } else if (c == '#') {
      while (i < text.size() && text[i] != '\n') ++i;
    } else if (c == '"' || c == '\'') {
      // A quoted value; the lexer ends it at the same quote or (an error) at a newline.
      ++i;
      while (i < text.size() && text[i] != c && text[i] != '\n') {
        if (text[i] == '\\' && i + 1 < text.size() && text[i + 1] != '\n') ++i;
        ++i;
      }
      if (i < text.size() && text[i] == c) ++i;
    } else {
      const std::size_t begin = i;
      while (i < text.size()) {
        const char d = text[i];
        if (d == ' ' || d == '\t' || d == '\r' || d == '\n' || d == '"' || d == '\'') break;
        if (d == '\\' && i + 1 < text.size() && text[i + 1] != '\n') ++i;
        ++i;
      }
      // A '#' inside the token ("server:#…") may start a comment for unbound; scanning on
      // regardless can only report more, never less.
      check_token(begin, i);
    }
  }
  return out;
}

}  // namespace danerelay::config
