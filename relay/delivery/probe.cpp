// relay/delivery/probe.cpp — see probe.hpp.
#include "relay/delivery/probe.hpp"

#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <memory>

namespace danerelay::relay {

namespace asio = boost::asio;

asio::awaitable<ProbeResult> probe(asio::any_io_executor executor, asio::ssl::context* tls_context, ConnectorSettings settings,
                                   std::string host, dns::IpAddress address, std::uint16_t port, tls::HostPolicy policy) {
  ProbeResult r;
  r.host = host;
  r.address = address.to_string();
  r.port = port;
  r.policy = policy;
  if (policy.requirement == tls::Requirement::defer) {
    // D-13, D-14, D-20: the delivery never connects to such a host; neither does a check.
    r.failure = smtp::HostFailure{smtp::HostFailure::Kind::policy_defer, policy.reason, std::nullopt, {}};
    co_return r;
  }
  smtp::SessionOptions options;
  options.helo_name = settings.helo_name;
  options.host_name = host;
  const auto ip = asio::ip::make_address(r.address);
  options.peer = asio::ip::tcp::endpoint(ip, port);
  options.source = ip.is_v6() ? settings.source_v6 : settings.source_v4;
  options.timeouts = settings.timeouts;
  auto session = std::make_unique<smtp::ClientSession>(executor, *tls_context, policy, options);
  r.failure = co_await session->open();
  r.setup = session->setup_time();
  r.tls = session->tls_active();
  r.report = session->tls_report();
  // A report exists only after a STARTTLS that was offered and answered; without one, the
  // capabilities of the (only, plaintext) EHLO say whether it was offered.
  r.starttls_offered = r.report.has_value() || session->capabilities().starttls;
  if (r.failure) {
    using K = smtp::HostFailure::Kind;
    if (r.failure->kind == K::starttls_rejected || r.failure->kind == K::tls_injection) r.starttls_offered = true;
    if (r.failure->kind == K::tls_not_offered) r.starttls_offered = false;
  }
  if (r.report) {
    const std::string namaddr = tls::format_namaddr(host, r.address, port);
    for (const std::string& line :
         {tls::dane_match_line(*r.report, namaddr), tls::summary_line(*r.report, namaddr), tls::verify_failure_line(*r.report, namaddr)}) {
      if (!line.empty()) r.log.push_back(line);
    }
  }
  // Never MAIL: QUIT right after the (second) EHLO. open() has closed a failed session already.
  if (!r.failure) co_await session->quit();
  session->close();
  co_return r;
}

bool probe_passes(const ProbeResult& r) noexcept {
  if (!r.failure) return true;
  return r.failure->tls_handshake_failed() && r.policy.plaintext_fallback;
}

}  // namespace danerelay::relay
