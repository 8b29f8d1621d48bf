// relay/daemon/service_notify.hpp — what the daemon tells its service manager (systemd
// Type=notify, sd_notify(3) through libsystemd): READY=1 once it is ready, STATUS= lines with the
// queue and delivery counts, RELOADING=1 … READY=1 around a SIGHUP reload (with MONOTONIC_USEC,
// so that a systemd with Type=notify-reload can use it; 252 cannot), STOPPING=1, and WATCHDOG=1
// from the event loop when WatchdogSec= is set. Without NOTIFY_SOCKET every call does nothing.
//
// Ready means: the spool recovered and the queue loaded, the listeners up, and the DNSSEC
// self-test passed. Until the self-test passes systemd keeps the unit "activating" and STATUS
// says why: a relay that cannot validate DNSSEC must not look healthy.
#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "relay/queue/queue_manager.hpp"

namespace danerelay::relay {

// The STATUS= text (pure): "queue 3 messages; since start: 10 recipients delivered, 2 deferrals,
// 0 bounced".
[[nodiscard]] std::string service_status(std::size_t queued, const QueueCounters& counters);

class ServiceNotifier {
 public:
  ServiceNotifier();
  // Whether a service manager listens (NOTIFY_SOCKET is set).
  [[nodiscard]] bool active() const noexcept { return active_; }
  // WatchdogSec= of the unit (WATCHDOG_USEC), when the watchdog is on for this process.
  [[nodiscard]] std::optional<std::chrono::microseconds> watchdog_interval() const noexcept { return watchdog_; }

  void ready(std::string_view status);
  void status(std::string_view status);
  void reloading();
  void stopping();
  void watchdog();

 private:
  void send(const std::string& state);
  bool active_ = false;
  std::optional<std::chrono::microseconds> watchdog_;
};

}  // namespace danerelay::relay
