// relay/delivery/probe.hpp — one diagnostic connection, as `danerelay check --connect` and
// `danerelay probe` make it: connect, greeting, EHLO, STARTTLS with the host's tls::HostPolicy,
// the second EHLO, then QUIT. Never MAIL: nothing is delivered, and the server sees an ordinary
// session that ends before a transaction (posttls-finger, mox "dane dial").
//
// It is the delivery's own client (smtp::ClientSession::open, the same code the Connector runs),
// so what it reports is what a delivery attempt to that address would meet: the HostFailure that
// would make delivery skip the host, or the TLS result (tls::PeerReport: trust, matched record,
// depth, peer name) and the Postfix TLS lines the delivery log would carry.
//
// What this is not: the verdict. Whether the result lets mail through under the effective policy
// (a failed opportunistic handshake is retried in plaintext, D-12) is the caller's reading; see
// probe_passes().
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ssl/context.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "dns/types.hpp"
#include "relay/delivery/smtp_connector.hpp"
#include "smtp/client_session.hpp"
#include "tls/peer_report.hpp"
#include "tls/policy.hpp"

namespace danerelay::relay {

struct ProbeResult {
  std::string host;                          // the name used in texts (MX host as published)
  std::string address;
  std::uint16_t port = 25;
  tls::HostPolicy policy;                    // what the session was asked to do
  std::optional<smtp::HostFailure> failure;  // open() failed: why (no transaction was possible)
  bool starttls_offered = false;             // the server announced STARTTLS before TLS
  bool tls = false;                          // a TLS session was established
  std::optional<tls::PeerReport> report;     // after a STARTTLS handshake (successful or not)
  std::vector<std::string> log;              // Postfix's TLS lines, as the delivery log writes them
  std::chrono::microseconds setup{0};        // connect to ready (Postfix delay "c")
};

// One session to `address`:`port` of `host` under `policy`, ended with QUIT. Arguments by value
// (the coroutine frame owns them); `tls_context` must outlive the coroutine. A policy that defers
// makes no connection (failure kind policy_defer).
[[nodiscard]] boost::asio::awaitable<ProbeResult> probe(boost::asio::any_io_executor executor,
                                                        boost::asio::ssl::context* tls_context, ConnectorSettings settings,
                                                        std::string host, dns::IpAddress address, std::uint16_t port,
                                                        tls::HostPolicy policy);

// Would a delivery to this address get through under its policy? The session became ready, or
// its TLS handshake failed where plaintext is allowed (the delivery retries without TLS, D-12).
[[nodiscard]] bool probe_passes(const ProbeResult& result) noexcept;

}  // namespace danerelay::relay
