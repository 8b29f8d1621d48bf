// relay/daemon/resolver_setup.hpp — the validating resolver as every subcommand opens it: prepare the
// trust anchor (logging what was seeded), then the libunbound context. Throws dns::SetupError,
// which the callers report as a configuration error (exit 2).
#pragma once

#include <boost/asio/io_context.hpp>

#include <memory>

#include "config/config.hpp"
#include "dns/resolver.hpp"

namespace danerelay::relay {

// `anchor`, when given, receives the trust anchor in use (the posture page shows it).
[[nodiscard]] std::unique_ptr<dns::UnboundResolver> open_resolver(boost::asio::io_context& io, const config::Config& config,
                                                                 dns::TrustAnchor* anchor = nullptr);

}  // namespace danerelay::relay
