// relay/cmd_check_config.cpp — `danerelay check-config [-c FILE]`: every error as
// FILE:LINE:COL: error: …, exit 2 when there is any; unknown keys are errors (a mistyped security
// setting must never pass silently).
#include <iostream>

#include "config/load.hpp"
#include "relay/commands.hpp"

namespace danerelay::relay {

std::optional<config::Config> load_config(const GlobalOptions& options) {
  std::error_code ec;
  if (!options.config_given && !std::filesystem::exists(options.config_path, ec)) {
    std::cerr << "danerelay: " << options.config_path.string() << " not found; using the built-in defaults\n";
    // An empty file is exactly the defaults (including the default listener).
    auto defaults = config::load_string("", "(built-in defaults)");
    return std::move(defaults.config);
  }
  auto result = config::load_file(options.config_path);
  for (const auto& d : result.errors) std::cerr << d.str() << '\n';
  if (!result.ok()) return std::nullopt;
  return std::move(result.config);
}

int cmd_check_config(const GlobalOptions& options) {
  auto result = config::load_file(options.config_path);
  for (const auto& d : result.errors) std::cerr << d.str() << '\n';
  if (!result.ok()) {
    std::cerr << options.config_path.string() << ": " << result.errors.size() << " error"
              << (result.errors.size() == 1 ? "" : "s") << '\n';
    return kExitConfig;
  }
  std::cout << options.config_path.string() << ": configuration OK\n";
  return kExitOk;
}

}  // namespace danerelay::relay
