// relay/queue/spool_scan.hpp — reading a spool directory back: recovery at start (recover()),
// the read-only listing of `danerelay queue` without a daemon (scan()), and one message
// (load()). A message file counts only when its trailer and checksum agree
// (spool_format.hpp); anything else is a leftover of a crash before the rename, or damage.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "relay/core/queue_state.hpp"

namespace danerelay::relay::spool_scan {

// The envelope of DIR/msg/NAME, or nullopt with the reason in *why.
[[nodiscard]] std::optional<Envelope> read_message(const std::filesystem::path& dir, const std::string& name, std::string* why);
// The state of a valid message: DIR/state/QID, or the initial state when there is none; a
// corrupt file also gives the initial state (with a warning): delivering again to recipients
// that were already done (at-least-once) beats losing the ones that were not.
[[nodiscard]] MessageState read_state(const std::filesystem::path& dir, const Envelope& e, std::vector<std::string>* warnings);
// Every valid message, oldest first. `repair` (recover) deletes what does not belong: tmp/
// leftovers, invalid message files, orphan and half-written state files; without it (scan)
// they are only reported in *warnings.
[[nodiscard]] std::vector<QueuedMessage> read_spool(const std::filesystem::path& dir, std::vector<std::string>* warnings, bool repair);

}  // namespace danerelay::relay::spool_scan
