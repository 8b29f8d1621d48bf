// relay/cli/cmd_queue.cpp — `danerelay queue list|show|flush|delete|hold|release|expire`: the
// mailq / postqueue / postsuper verbs. The daemon is asked over its control socket; `list` and
// `show` fall back to reading the spool when no daemon runs (then no message shows as active).
// Exit codes: 0 done, 1 failure (no daemon for a change, no such message), 2 configuration
// error, 64 usage (not a queue id).
#include <nlohmann/json.hpp>

#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include "relay/cli/commands.hpp"
#include "relay/control/control_socket.hpp"
#include "relay/control/queue_control.hpp"
#include "relay/queue/spool.hpp"

namespace danerelay::relay {

namespace {

using json = nlohmann::json;

std::string plural(std::size_t n) { return std::to_string(n) + (n == 1 ? " message" : " messages"); }

// The verbs that change the queue, with postsuper's summary words (postsuper.c, "Deleted: %d message%s").
const char* summary_word(const std::string& verb) {
  if (verb == "delete") return "Deleted";
  if (verb == "hold") return "Placed on hold";
  if (verb == "release") return "Released from hold";
  if (verb == "expire") return "Force-expired";
  return "Flushed";
}

// The daemon's error answer → message and exit code.
int answer_error(const std::string& who, const json& answer) {
  const std::string error = answer.value("error", std::string("the daemon refused the request"));
  std::cerr << who << ": " << error << '\n';
  return kExitFailure;
}

int print_list(const std::vector<QueueEntry>& entries, bool as_json) {
  std::cout << (as_json ? format_json(entries) : format_mailq(entries)) << std::flush;
  return kExitOk;
}

int list_from_spool(const std::string& who, const std::filesystem::path& dir, bool as_json) {
  std::error_code ec;
  if (!std::filesystem::exists(dir, ec)) return print_list({}, as_json);  // nothing was ever queued
  std::vector<std::string> warnings;
  std::vector<QueuedMessage> messages;
  try {
    messages = Spool::scan(dir, &warnings);
  } catch (const std::exception& e) {
    std::cerr << who << ": cannot read the spool " << dir.string() << ": " << e.what() << '\n';
    return kExitFailure;
  }
  for (const auto& w : warnings) std::cerr << who << ": warning: " << w << '\n';
  std::vector<QueueEntry> entries;
  entries.reserve(messages.size());
  for (const auto& m : messages) entries.push_back(queue_entry(m, false));
  return print_list(entries, as_json);
}

int show_from_spool(const std::string& who, const std::filesystem::path& dir, const QueueId& id) {
  std::optional<QueuedMessage> message;
  std::error_code ec;
  if (std::filesystem::exists(dir, ec)) {
    try {
      message = Spool::load(dir, id);
    } catch (const std::exception& e) {
      std::cerr << who << ": cannot read the spool " << dir.string() << ": " << e.what() << '\n';
      return kExitFailure;
    }
  }
  if (!message) {
    std::cerr << who << ": " << id.str() << ": no such message\n";
    return kExitFailure;
  }
  std::string error;
  auto headers = read_headers(*message, &error);
  if (!headers) {
    std::cerr << who << ": warning: " << error << '\n';
    headers = std::string{};
  }
  std::cout << format_show(*message, *headers) << std::flush;
  return kExitOk;
}

}  // namespace

int cmd_queue(const GlobalOptions& options, const QueueOptions& queue) {
  const std::string who = "danerelay queue " + queue.verb;

  // Usage first: a bad id is the same mistake with any configuration.
  std::optional<QueueId> id;
  const bool all = queue.verb == "delete" && queue.id == "ALL";
  if (!queue.id.empty() && !all) {
    id = QueueId::parse(queue.id);
    if (!id) {
      std::cerr << who << ": " << queue.id << ": not a queue id (12 hexadecimal digits"
                << (queue.verb == "delete" ? ", or ALL" : "") << ")\n";
      return kExitUsage;
    }
  }

  auto cfg = load_config(options);
  if (!cfg) return kExitConfig;
  const auto socket = control_socket_path(*cfg);
  const auto spool = spool_directory(*cfg);

  json request{{"op", queue.verb}};
  if (id) request["id"] = id->str();
  if (all) request["id"] = "ALL";

  std::string error;
  ControlFailure failure = ControlFailure::none;
  const auto answer = control_request(socket, request, error, &failure);
  if (!answer) {
    if (failure == ControlFailure::no_daemon) {
      if (queue.verb == "list") return list_from_spool(who, spool, queue.json);
      if (queue.verb == "show") return show_from_spool(who, spool, *id);
      std::cerr << who << ": the daemon is not running (no control socket at " << socket.string() << ")\n";
      return kExitFailure;
    }
    std::cerr << who << ": " << error << '\n';
    return kExitFailure;
  }
  if (!answer->value("ok", false)) return answer_error("danerelay queue", *answer);

  try {
    if (queue.verb == "list") {
      std::vector<QueueEntry> entries;
      for (const auto& e : answer->at("entries")) entries.push_back(entry_from_json(e));
      return print_list(entries, queue.json);
    }
    if (queue.verb == "show") {
      std::cout << answer->at("text").get<std::string>() << std::flush;
      return kExitOk;
    }
    const auto count = answer->at("count").get<std::size_t>();
    std::cout << "danerelay queue: " << summary_word(queue.verb) << ": " << plural(count) << '\n';
    return kExitOk;
  } catch (const json::exception& e) {
    std::cerr << who << ": malformed answer from the daemon: " << e.what() << '\n';
    return kExitFailure;
  }
}

}  // namespace danerelay::relay
