// smtp/server_observer.hpp — hooks through which the inbound server reports what it did (for
// metrics), without knowing who listens. Every member may be empty; ServerSettings::observer
// null means nobody listens. Called from the sessions' strands; must not block.
#pragma once

#include <functional>
#include <string_view>

namespace danerelay::smtp {

struct ServerObserver {
  // A connection was admitted and its session starts (listener name).
  std::function<void(std::string_view listener)> session;
  // A message was committed and "250 … queued as" sent (listener name).
  std::function<void(std::string_view listener)> message;
  // A refusal with this reply code: the "reject:" lines (MAIL, RCPT, DATA, END-OF-MESSAGE:
  // relay denied, size, storage, bare newlines, hop count) and connections refused at admission
  // (421 too many connections).
  std::function<void(int code)> rejection;
  // One failed AUTH (535 or an aborted/malformed exchange counted by the failure limiter).
  std::function<void()> auth_failure;
};

}  // namespace danerelay::smtp
