// relay/cli/plan_format.hpp — a delivery plan as text a mail operator can read (`danerelay resolve`),
// and the DNS answers behind it in zone-file style (`--trace`).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "dns/destination.hpp"
#include "relay/delivery/routing.hpp"

namespace danerelay::relay {

[[nodiscard]] std::string format_plan(const dns::Resolution& resolution, const Routing& routing);
[[nodiscard]] std::string format_trace(const dns::Resolution& resolution);

// One host's TLSA state in one line: "TLSA _25._tcp.mx.example: none (secure denial)", "… LOOKUP ERROR: …".
[[nodiscard]] std::string tlsa_line(const dns::Host& host);

// One record of an answer in presentation form ("10 mx.example.", "3 1 1 ab…", "192.0.2.1");
// RFC 3597 "\# len hex" for what does not decode.
[[nodiscard]] std::string rdata_text(dns::RRType type, const std::vector<std::uint8_t>& rdata);

}  // namespace danerelay::relay
