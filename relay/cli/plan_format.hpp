// relay/cli/plan_format.hpp — a delivery plan as text a mail operator can read (`danerelay resolve`),
// and the DNS answers behind it in zone-file style (`--trace`).
#pragma once

#include <string>

#include "dns/destination.hpp"
#include "relay/delivery/routing.hpp"

namespace danerelay::relay {

[[nodiscard]] std::string format_plan(const dns::Resolution& resolution, const Routing& routing);
[[nodiscard]] std::string format_trace(const dns::Resolution& resolution);

}  // namespace danerelay::relay
