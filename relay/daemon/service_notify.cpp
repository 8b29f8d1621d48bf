// relay/daemon/service_notify.cpp — see service_notify.hpp.
#include "relay/daemon/service_notify.hpp"

#include <systemd/sd-daemon.h>

#include <cstdlib>
#include <ctime>

#include <fmt/format.h>

namespace danerelay::relay {

namespace {

std::string plural(std::uint64_t n, std::string_view one, std::string_view many) {
  return fmt::format("{} {}", n, n == 1 ? one : many);
}

}  // namespace

std::string service_status(std::size_t queued, const QueueCounters& counters) {
  return fmt::format("queue {}; since start: {} delivered, {}, {} bounced", plural(queued, "message", "messages"),
                     plural(counters.sent, "recipient", "recipients"), plural(counters.deferred, "deferral", "deferrals"),
                     counters.bounced);
}

ServiceNotifier::ServiceNotifier() {
  const char* socket = std::getenv("NOTIFY_SOCKET");
  active_ = socket != nullptr && socket[0] != '\0';
  std::uint64_t usec = 0;
  if (active_ && sd_watchdog_enabled(0, &usec) > 0 && usec > 0) watchdog_ = std::chrono::microseconds(usec);
}

void ServiceNotifier::send(const std::string& state) {
  if (active_) (void)sd_notify(0, state.c_str());
}

void ServiceNotifier::ready(std::string_view status) { send(fmt::format("READY=1\nSTATUS={}", status)); }

void ServiceNotifier::status(std::string_view status) { send(fmt::format("STATUS={}", status)); }

void ServiceNotifier::reloading() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  const auto usec = static_cast<std::uint64_t>(ts.tv_sec) * 1000000U + static_cast<std::uint64_t>(ts.tv_nsec) / 1000U;
  send(fmt::format("RELOADING=1\nMONOTONIC_USEC={}\nSTATUS=reloading", usec));
}

void ServiceNotifier::stopping() { send("STOPPING=1\nSTATUS=stopping: listeners closed, finishing deliveries in flight"); }

void ServiceNotifier::watchdog() { send("WATCHDOG=1"); }

}  // namespace danerelay::relay
