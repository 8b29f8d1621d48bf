// config/load.hpp — read danerelay.toml into a config::Config, with compiler-style diagnostics.
//
// SUMMARY
//   auto r = config::load_file("/etc/danerelay/danerelay.toml");
//   for (const auto& d : r.errors) std::cerr << d.str() << '\n';   // FILE:LINE:COL: error: …
//   if (!r.ok()) return 2;
//   const config::Config& cfg = *r.config;
//
// BEHAVIOUR
//   - A TOML syntax error stops parsing: one diagnostic, at the position toml++ reports, with
//     toml++'s own description.
//   - Otherwise every semantic error in the file is reported in one pass, sorted by position:
//     wrong types, bad values, out-of-range numbers, and unknown keys (a mistyped security
//     setting must never be ignored silently). Messages name the full dotted key, e.g.
//       danerelay.toml:4:9: error: unknown policy level "daen" (expected one of none, may,
//         encrypt, dane, dane-only, verify, secure) for key "policy.default"
//       danerelay.toml:9:1: error: unknown key "dns.trust_anchr"
//     Unknown keys point at the key; all other errors point at the value. Keys inside arrays
//     of tables carry a zero-based index: "listener[1].address". Keys that are not bare TOML
//     keys are quoted: "policy.destination.\"bank.example\".level".
//   - Relative paths in the file are resolved against the directory of the file.
//   - No [[listener]] in the file gives one default Listener.
//   - config is set only when errors is empty.
//
// DIAGNOSTICS are values; nothing here throws except std::bad_alloc.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"

namespace danerelay::config {

struct Diagnostic {
  std::string file;
  std::uint32_t line = 0;    // 1-based; 0 when the error concerns the whole file
  std::uint32_t column = 0;  // 1-based
  std::string message;

  // "FILE:LINE:COL: error: MESSAGE", or "FILE: error: MESSAGE" when line is 0.
  [[nodiscard]] std::string str() const;
  friend bool operator==(const Diagnostic&, const Diagnostic&) = default;
};

struct LoadResult {
  std::optional<Config> config;
  std::vector<Diagnostic> errors;
  [[nodiscard]] bool ok() const { return config.has_value() && errors.empty(); }
};

// Reads and loads `file`. An unreadable file gives one Diagnostic with line 0 and the system's
// reason. Diagnostics name the file as given; Config::source is its absolute path.
[[nodiscard]] LoadResult load_file(const std::filesystem::path& file);

// Loads TOML text; `source_name` names it in diagnostics and becomes Config::source. Relative
// paths in the text resolve against the directory part of `source_name` (none: left relative).
[[nodiscard]] LoadResult load_string(std::string_view toml_text, std::string_view source_name);

}  // namespace danerelay::config
