// relay/core/queue_state.cpp — see queue_state.hpp.
#include "relay/core/queue_state.hpp"

namespace danerelay::relay {

std::string_view to_string(RecipientStatus status) noexcept {
  switch (status) {
    case RecipientStatus::pending: return "pending";
    case RecipientStatus::sent: return "sent";
    case RecipientStatus::bounced: return "bounced";
  }
  return "pending";
}

std::optional<RecipientStatus> parse_recipient_status(std::string_view text) noexcept {
  if (text == "pending") return RecipientStatus::pending;
  if (text == "sent") return RecipientStatus::sent;
  if (text == "bounced") return RecipientStatus::bounced;
  return std::nullopt;
}

}  // namespace danerelay::relay
