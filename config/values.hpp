// config/values.hpp — the value syntaxes of danerelay.toml, as pure string → value functions.
//
// What this is: the small parsers config/load.cpp applies to TOML strings, public so they can be
// table-tested and reused (the CLI parses "--port" and host names the same way). No toml++ here;
// every function is total: malformed input gives std::nullopt / false, never an exception.
//
// Syntaxes (see config/REFERENCE.md for the operator's view):
//   duration  "300ms", "30s", "5m", "4h", "5d", "2w", and sums in decreasing unit order without
//             spaces: "1h30m", "1d12h". A bare number ("300") is seconds, like Postfix time
//             parameters. Integer values in the file are seconds too (load.cpp handles that).
//   size      "512", "512B", "50MB", "50M", "512k"/"512kB" (SI: ×1000), "10MiB", "512KiB"
//             (IEC: ×1024), up to T/TiB; unit letters are case-insensitive. A bare number is bytes.
//   host name smtp/syntax.hpp's is_host_name (Postfix's valid_hostname rules), one optional
//             trailing dot. Internationalized names must be written as A-labels ("xn--…").
//   address   smtp/syntax.hpp's is_ipv4_address / is_ipv6_address / parse_address_literal.
//   port      decimal 1..65535, digits only.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "config/config.hpp"

namespace danerelay::config {

[[nodiscard]] std::optional<Duration> parse_duration(std::string_view text) noexcept;
[[nodiscard]] std::optional<std::uint64_t> parse_size(std::string_view text) noexcept;
[[nodiscard]] std::optional<std::uint16_t> parse_port(std::string_view text) noexcept;

// Renders a duration in the largest exact units, the form parse_duration reads back:
// 5400000 ms → "1h30m", 300 ms → "300ms", 0 → "0s".
[[nodiscard]] std::string format_duration(Duration duration);

// A host name in canonical form: lower case, no trailing dot; nullopt when not a host name.
[[nodiscard]] std::optional<std::string> normalize_host_name(std::string_view name);

// A [policy.destination] name in canonical form: "example.org" or ".example.org" (subdomains
// only), lower case, trailing dot removed; nullopt when the rest is not a host name.
[[nodiscard]] std::optional<std::string> normalize_destination_pattern(std::string_view pattern);

}  // namespace danerelay::config
