// relay/control/control_socket.hpp — the control socket between `danerelay queue …` and the running
// daemon (as mox's CLI talks to its daemon): a Unix stream socket, mode 0600, in the state
// directory.
//
// PROTOCOL. Line-delimited JSON: the client sends one JSON object on one line, the server answers
// with one JSON object on one line; a connection may carry any number of requests in sequence.
//   {"op":"list"}                         → {"ok":true,"entries":[ENTRY…]}
//   {"op":"show","id":"QID"}              → {"ok":true,"text":"…"}
//   {"op":"flush"} / {"op":"flush","id":"QID"}
//   {"op":"hold"|"release"|"expire","id":"QID"}
//   {"op":"delete","id":"QID"|"ALL"}      → {"ok":true,"count":N}
//   any failure                           → {"ok":false,"error":"text","code":"CODE"}
// CODE is "not_found" (no such message), "bad_request" (malformed JSON, unknown op, bad id),
// "too_large" (request line over the limit; the server then closes), "busy" (too many clients;
// closes) or "failed" (the operation threw). ENTRY is a QueueEntry with postqueue -j member names
// (queue_name, queue_id, arrival_time, message_size, forced_expire, sender, recipients[{address,
// orig_address?, delay_reason?}]); optional members are omitted when empty.
// An operation naming one message that affects none answers not_found when no such message is
// queued, else ok with count 0 (e.g. hold of a message already on hold).
//
// SERVER. Coroutines on the daemon's executor; QueueControl is called only on that executor.
// Bounded: request line size, idle time waiting for a request, time to write a response, number
// of concurrent connections.
//
// CLIENT. control_request(): synchronous, with one deadline, for the CLI.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/logger.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "config/config.hpp"
#include "relay/control/queue_control.hpp"

namespace danerelay::relay {

// server.control_socket, or "<server.state_dir>/control.sock" when that is empty.
[[nodiscard]] std::filesystem::path control_socket_path(const config::Config& config);

struct ControlServerOptions {
  std::size_t max_request = 64 * 1024;                      // bytes in one request line
  std::chrono::milliseconds idle_timeout{std::chrono::seconds(60)};   // waiting for (the rest of) a request
  std::chrono::milliseconds write_timeout{std::chrono::seconds(30)};  // writing one response
  std::size_t max_connections = 32;
};

class ControlServer {
 public:
  ControlServer(boost::asio::any_io_executor executor, std::filesystem::path socket_path, QueueControl& control,
                std::shared_ptr<spdlog::logger> log, ControlServerOptions options = {});
  ~ControlServer();  // stop()
  ControlServer(const ControlServer&) = delete;
  ControlServer& operator=(const ControlServer&) = delete;

  // Binds and starts accepting. A leftover socket file that nobody answers on is removed first;
  // a socket another process still listens on, or a non-socket file at the path, is an error.
  // The socket is made 0600 before listen(), so no one else can ever connect. Throws
  // std::system_error (with the path in what()) on failure.
  void start();
  // Stops accepting, closes open connections and removes the socket file (when it is still ours).
  // Call on the executor's thread. Operations already running in QueueControl complete; their
  // answers are dropped. The QueueControl must outlive the executor's pending work.
  void stop();

  [[nodiscard]] const std::filesystem::path& socket_path() const noexcept;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

// The protocol's ENTRY encoding (also used by tests and the CLI).
[[nodiscard]] nlohmann::json entry_to_json(const QueueEntry& entry);
[[nodiscard]] QueueEntry entry_from_json(const nlohmann::json& json);  // throws nlohmann::json::exception

enum class ControlFailure {
  none,
  no_daemon,   // no socket file (ENOENT) or nobody listening (ECONNREFUSED)
  failed,      // anything else: permission denied, timeout, malformed answer, …
};

// Sends one request and returns the daemon's answer (which may itself say "ok":false). nullopt on
// failure, with a one-line explanation in `error` and the kind in *failure.
[[nodiscard]] std::optional<nlohmann::json> control_request(const std::filesystem::path& socket_path,
                                                            const nlohmann::json& request, std::string& error,
                                                            ControlFailure* failure = nullptr,
                                                            std::chrono::milliseconds timeout = std::chrono::seconds(60));

}  // namespace danerelay::relay
