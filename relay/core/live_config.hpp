// relay/core/live_config.hpp — values in force that a reload replaces while the daemon runs
// (SIGHUP, relay/daemon/reload.hpp): the configuration, and what is built from it.
//
// Readers take a snapshot (a shared_ptr to an immutable value) and keep it for as long as they
// use it: a delivery attempt holds the configuration it started with across its awaits, so a
// reload in the middle never changes the policy under it, and the next attempt sees the new one.
// Not thread-safe: get() and set() are called on the daemon's event-loop thread only.
#pragma once

#include <memory>
#include <utility>

#include "config/config.hpp"

namespace danerelay::relay {

template <class T>
class Live {
 public:
  explicit Live(T initial) : current_(std::make_shared<const T>(std::move(initial))) {}
  explicit Live(std::shared_ptr<const T> initial) : current_(std::move(initial)) {}

  // A value the caller owns and keeps alive (and may change between uses: tests do).
  [[nodiscard]] static std::shared_ptr<const Live> borrowed(const T& value) {
    return std::make_shared<const Live>(std::shared_ptr<const T>(&value, [](const T*) {}));
  }

  [[nodiscard]] std::shared_ptr<const T> get() const noexcept { return current_; }
  void set(T next) { current_ = std::make_shared<const T>(std::move(next)); }

 private:
  std::shared_ptr<const T> current_;
};

using LiveConfig = Live<config::Config>;

}  // namespace danerelay::relay
