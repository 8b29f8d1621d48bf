// relay/main.cpp — the only main(): parse the command line (CLI11), dispatch to a subcommand,
// map failures to exit codes (see commands.hpp).
#include <CLI/CLI.hpp>

#include <iostream>

#include "relay/commands.hpp"

int main(int argc, char** argv) {
  using namespace danerelay::relay;
  CLI::App app{"danerelay — a DANE-enforcing SMTP relay (smarthost)", "danerelay"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "danerelay 0.1.0");

  GlobalOptions global;
  std::string config_path = kDefaultConfigPath;
  auto add_config_option = [&](CLI::App* cmd) {
    cmd->add_option("-c,--config", config_path, "configuration file (default " + std::string(kDefaultConfigPath) + ")");
  };
  add_config_option(&app);

  auto* run = app.add_subcommand("run", "run the relay in the foreground");
  add_config_option(run);

  auto* check = app.add_subcommand("check-config", "check the configuration file; exit 2 on any error");
  add_config_option(check);

  ResolveOptions resolve;
  auto* res = app.add_subcommand("resolve", "print the RFC 7672 delivery plan for recipient domains");
  add_config_option(res);
  res->add_option("domains", resolve.domains, "recipient domains")->required();
  res->add_option("-p,--port", resolve.port, "destination port (default: delivery.port)")->check(CLI::Range(1, 65535));
  res->add_flag("-t,--trace", resolve.trace, "also print every DNS answer the plan was built from");
  res->add_flag("--no-self-test", resolve.skip_self_test, "skip the DNSSEC self-test");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? kExitOk : kExitUsage;
  }
  global.config_path = config_path;
  global.config_given = app.count("-c") + run->count("-c") + check->count("-c") + res->count("-c") > 0;

  try {
    if (*check) return cmd_check_config(global);
    if (*res) return cmd_resolve(global, resolve);
    if (*run) return cmd_run(global);
  } catch (const std::exception& e) {
    std::cerr << "danerelay: " << e.what() << '\n';
    return kExitFailure;
  }
  return kExitUsage;
}
