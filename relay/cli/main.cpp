// relay/cli/main.cpp — the only main(): parse the command line (CLI11), dispatch to a subcommand,
// map failures to exit codes (see commands.hpp).
#include <CLI/CLI.hpp>

#include <iostream>
#include <vector>

#include "relay/cli/commands.hpp"

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

  CheckOptions check_options;
  auto* chk = app.add_subcommand("check", "what the relay would do with mail for DOMAIN: MX, addresses, TLSA and their "
                                          "DNSSEC verdicts, the effective level and its rule, --connect: a STARTTLS handshake "
                                          "per address; exit 0 deliverable, 1 would defer/bounce, 2 config, 3 DNSSEC self-test");
  add_config_option(chk);
  chk->add_option("domain", check_options.domain, "recipient domain")->required();
  chk->add_option("-p,--port", check_options.port, "destination port (default: delivery.port)")->check(CLI::Range(1, 65535));
  chk->add_flag("--connect", check_options.connect, "connect to every address: EHLO, STARTTLS, handshake, QUIT (never MAIL)");
  chk->add_flag("--json", check_options.json, "one JSON document with the same facts");
  chk->add_flag("--strict", check_options.strict, "exit 1 when any host or address fails, even if another works");
  chk->add_flag("--no-self-test", check_options.skip_self_test, "skip the DNSSEC self-test");

  ProbeOptions probe_options;
  auto* prb = app.add_subcommand("probe", "one server, like posttls-finger: TLSA at _PORT._tcp.HOST, a STARTTLS handshake "
                                          "per address at the dane level, QUIT; exit 0 when TLS came up (authenticated where "
                                          "TLSA records are usable), 1 otherwise");
  add_config_option(prb);
  prb->add_option("target", probe_options.target, "HOST[:PORT], ADDRESS or [ADDRESS]:PORT (default port: delivery.port)")->required();
  prb->add_option("--tlsa-from", probe_options.tlsa_from,
                  "use the TLSA RRset at _PORT._tcp.NAME (NAME also the TLSA base domain: SNI, DANE-TA name) instead of HOST's");
  prb->add_flag("--json", probe_options.json, "one JSON document (check's shape)");

  ResolveOptions resolve;
  auto* res = app.add_subcommand("resolve", "kept beside check: the raw RFC 7672 delivery plan for several domains, -t with "
                                            "every DNS answer (exit 1 when the self-test fails)");
  add_config_option(res);
  res->add_option("domains", resolve.domains, "recipient domains")->required();
  res->add_option("-p,--port", resolve.port, "destination port (default: delivery.port)")->check(CLI::Range(1, 65535));
  res->add_flag("-t,--trace", resolve.trace, "also print every DNS answer the plan was built from");
  res->add_flag("--no-self-test", resolve.skip_self_test, "skip the DNSSEC self-test");

  QueueOptions queue;
  auto* que = app.add_subcommand("queue", "queue operations: list (mailq), show, flush, delete, hold, release, expire");
  add_config_option(que);
  que->require_subcommand(1);
  std::vector<CLI::App*> queue_verbs;
  auto add_verb = [&](const char* name, const char* help) {
    auto* verb = que->add_subcommand(name, help);
    add_config_option(verb);
    queue_verbs.push_back(verb);
    return verb;
  };
  add_verb("list", "list the queue like mailq (postqueue -p)")
      ->add_flag("-j,--json", queue.json, "JSON Lines with postqueue -j field names");
  add_verb("show", "show one message's envelope, recipient states and headers")
      ->add_option("id", queue.id, "queue ID")->required();
  add_verb("flush", "attempt delivery now: one message, or all (postqueue -f / -i)")
      ->add_option("id", queue.id, "queue ID (default: every message)");
  add_verb("delete", "delete without a bounce (postsuper -d)")->add_option("id", queue.id, "queue ID or ALL")->required();
  add_verb("hold", "put on hold (postsuper -h)")->add_option("id", queue.id, "queue ID")->required();
  add_verb("release", "release from hold (postsuper -H)")->add_option("id", queue.id, "queue ID")->required();
  add_verb("expire", "force expiry: bounce at the next attempt, which is now (postsuper -e)")
      ->add_option("id", queue.id, "queue ID")->required();

  ReportOptions report;
  auto* rep = app.add_subcommand("report", "print the posture history (deliveries by DANE/TLS class) as CSV or JSON");
  add_config_option(rep);
  rep->add_option("--since", report.since, "how far back: 24h (5-minute buckets) up to 30d (daily buckets); default 30d");
  rep->add_option("--format", report.format, "csv (default) or json");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? kExitOk : kExitUsage;
  }
  global.config_path = config_path;
  std::size_t queue_config_count = que->count("-c");
  for (auto* verb : queue_verbs) {
    queue_config_count += verb->count("-c");
    if (*verb) queue.verb = verb->get_name();
  }
  global.config_given = app.count("-c") + run->count("-c") + check->count("-c") + res->count("-c") + chk->count("-c") +
                        prb->count("-c") + rep->count("-c") + queue_config_count > 0;

  try {
    if (*check) return cmd_check_config(global);
    if (*res) return cmd_resolve(global, resolve);
    if (*chk) return cmd_check(global, check_options);
    if (*prb) return cmd_probe(global, probe_options);
    if (*run) return cmd_run(global);
    if (*que) return cmd_queue(global, queue);
    if (*rep) return cmd_report(global, report);
  } catch (const std::exception& e) {
    std::cerr << "danerelay: " << e.what() << '\n';
    return kExitFailure;
  }
  return kExitUsage;
}
