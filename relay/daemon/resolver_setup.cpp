// relay/daemon/resolver_setup.cpp — see resolver_setup.hpp.
#include "relay/daemon/resolver_setup.hpp"

#include "relay/core/logging.hpp"

namespace danerelay::relay {

std::unique_ptr<dns::UnboundResolver> open_resolver(boost::asio::io_context& io, const config::Config& config,
                                                   dns::TrustAnchor* used) {
  auto log = logger("dns");
  auto anchor = dns::prepare_trust_anchor(config.dns, config.server.state_dir);
  for (const auto& n : anchor.notes) log->info("{}", n);
  log->debug("trust anchor {} ({})", anchor.file.string(), anchor.managed ? "RFC 5011 managed" : "static");
  if (used != nullptr) *used = anchor;
  return std::make_unique<dns::UnboundResolver>(io.get_executor(), config.dns, anchor);
}

}  // namespace danerelay::relay
