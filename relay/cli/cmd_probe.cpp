// relay/cli/cmd_probe.cpp — `danerelay probe HOST[:PORT] [--tlsa-from NAME]`: one server, like
// Postfix's posttls-finger: its addresses, the TLSA RRset at _PORT._tcp.HOST (or, with
// --tlsa-from, at _PORT._tcp.NAME instead, NAME then being the TLSA base domain: SNI and the
// DANE-TA reference name, as posttls-finger uses "the TLSA records of that name instead"), then
// one session per address through the delivery's client at the dane level (relay::probe:
// STARTTLS, handshake, QUIT; never MAIL). HOST may be an IP address (no TLSA then, unless
// --tlsa-from). The lookups are the planner's for a configured next hop, so NAME's TLSA is
// looked up only where NAME's own address records are secure (RFC 7672 §2.2.3), as delivery does.
//
// Exit 0 when every address completed the TLS handshake, authenticated where usable TLSA records
// exist (DANE-EE/DANE-TA); 1 otherwise (no STARTTLS, handshake or authentication failure, a
// lookup failure, the DNSSEC self-test failed).
#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <charconv>
#include <iostream>

#include "dns/destination.hpp"
#include "relay/cli/check_report.hpp"
#include "relay/cli/commands.hpp"
#include "relay/cli/run_task.hpp"
#include "relay/core/logging.hpp"
#include "relay/daemon/resolver_setup.hpp"
#include "relay/delivery/probe.hpp"
#include "relay/delivery/smtp_connector.hpp"
#include "tls/client_context.hpp"

namespace danerelay::relay {

namespace asio = boost::asio;

std::optional<ProbeTarget> parse_probe_target(std::string_view text, std::uint16_t default_port) {
  ProbeTarget t;
  t.port = default_port;
  std::string_view host = text;
  std::string_view port;
  if (text.starts_with('[')) {
    const auto close = text.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    host = text.substr(1, close - 1);
    if (host.starts_with("IPv6:") || host.starts_with("ipv6:")) host.remove_prefix(5);
    const std::string_view rest = text.substr(close + 1);
    if (!rest.empty()) {
      if (!rest.starts_with(':')) return std::nullopt;
      port = rest.substr(1);
    }
    if (!dns::IpAddress::parse(host)) return std::nullopt;
  } else if (std::count(text.begin(), text.end(), ':') == 1) {
    const auto colon = text.find(':');
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  if (host.empty()) return std::nullopt;
  if (!port.empty() || text.ends_with(':')) {
    unsigned value = 0;
    const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (ec != std::errc() || end != port.data() + port.size() || value == 0 || value > 65535) return std::nullopt;
    t.port = static_cast<std::uint16_t>(value);
  }
  t.host = std::string(host);
  t.address = dns::IpAddress::parse(host).has_value();
  return t;
}

namespace {

dns::PlanRequest probe_request(const std::string& host, bool address, std::uint16_t port) {
  dns::PlanRequest r;
  r.port = port;
  r.lookup_tlsa = true;
  if (address) {
    const auto ip = dns::IpAddress::parse(host);
    r.domain = ip && ip->v6 ? "[IPv6:" + ip->to_string() + "]" : "[" + host + "]";
  } else {
    r.domain = dns::normalize_name(host);
    r.route = dns::Route{r.domain, port, false};
  }
  return r;
}

}  // namespace

int cmd_probe(const GlobalOptions& options, const ProbeOptions& probe_options) {
  auto cfg = load_config(options);
  if (!cfg) return kExitConfig;
  const auto target = parse_probe_target(probe_options.target, cfg->delivery.port);
  if (!target) {
    std::cerr << "danerelay probe: " << probe_options.target << ": not HOST, HOST:PORT, ADDRESS or [ADDRESS]:PORT\n";
    return kExitUsage;
  }
  setup_logging(cfg->log);

  asio::io_context io;
  std::unique_ptr<dns::UnboundResolver> resolver;
  std::unique_ptr<asio::ssl::context> tls_context;
  try {
    resolver = open_resolver(io, *cfg);
    tls_context = std::make_unique<asio::ssl::context>(tls::make_client_context(cfg->tls.client).release());
  } catch (const std::exception& e) {
    std::cerr << "danerelay: " << e.what() << '\n';
    return kExitConfig;
  }

  int rc = kExitFailure;
  const ConnectorSettings settings = connector_settings(*cfg);
  run_task(
      io, "probe",
      [&]() -> asio::awaitable<void> {
        const dns::SelfTest t = co_await dns::self_test(*resolver, cfg->dns.self_test_name);
        Routing routing;
        routing.level = config::TlsLevel::dane;  // posttls-finger's default with DNSSEC: dane
        routing.request = probe_request(target->host, target->address, target->port);
        dns::Resolution res = co_await dns::resolve_destination(*resolver, routing.request);
        std::string tlsa_problem;
        if (!probe_options.tlsa_from.empty() && !res.plan.hosts.empty()) {
          // The TLSA RRset (and base domain) of NAME instead of HOST's own.
          dns::PlanRequest from = probe_request(probe_options.tlsa_from, false, target->port);
          dns::Resolution other = co_await dns::resolve_destination(*resolver, from);
          for (const auto& q : other.order) {
            if (!res.answers.contains(q)) res.order.push_back(q);
          }
          res.answers.insert(other.answers.begin(), other.answers.end());
          dns::Host& h = res.plan.hosts.front();
          if (other.plan.hosts.empty()) {
            tlsa_problem = other.plan.reason;
          } else {
            const dns::Host& o = other.plan.hosts.front();
            h.tlsa = o.tlsa;
            if (o.tlsa.state == dns::TlsaState::error) {
              h.usable = false;
              h.problem = o.problem;
              h.reason = o.reason;
            } else if (!o.usable) {
              tlsa_problem = o.reason;
            } else if (o.tlsa.state == dns::TlsaState::insecure_address) {
              h.notes.push_back("--tlsa-from " + o.name + ": its address records are insecure, so it has no usable TLSA (RFC 7672 §2.2.3)");
            }
          }
        }
        CheckReport report = make_check(res, routing, *cfg);
        report.probe = true;
        report.rule = "probe: always dane, whatever the configuration says";
        bool ok = t.ok && tlsa_problem.empty() && res.plan.status == dns::PlanStatus::deliver && !res.plan.hosts.empty();
        std::string text = t.summary() + "\n\n";
        if (!tlsa_problem.empty()) text += "--tlsa-from " + probe_options.tlsa_from + ": " + tlsa_problem + "\n";
        report.self_test_ok = t.ok;
        report.self_test = t.summary();
        if (ok) {
          const asio::any_io_executor executor = io.get_executor();  // named: see cmd_check.cpp
          const dns::Host& host = res.plan.hosts.front();
          const tls::HostPolicy policy = host_policy(res.plan, host, routing, *cfg);
          const bool connect = report.hosts.front().problem.empty() && !host.addresses.empty();
          if (!connect) ok = false;
          for (std::size_t k = 0; connect && k < host.addresses.size(); ++k) {
            const dns::IpAddress address = host.addresses[k];
            ProbeResult p = co_await probe(executor, tls_context.get(), settings, host.name, address, res.plan.port, policy);
            for (const auto& line : p.log) text += line + "\n";
            // posttls-finger's success: TLS up, and authenticated where TLSA records are usable.
            const bool authenticated = p.report && p.report->established &&
                                       (policy.requirement != tls::Requirement::dane || p.report->authenticated);
            if (p.failure || !p.tls || !authenticated) ok = false;
            add_probe(report, 0, p);
          }
        }
        finish_check(report);
        if (probe_options.json) {
          nlohmann::json j = check_json(report, true);
          j["exit"] = ok ? kExitOk : kExitFailure;
          std::cout << j.dump(2) << '\n';
        } else {
          std::cout << text << format_check(report);
          std::cout << (ok ? "  probe: ok\n" : "  probe: FAILED\n");
        }
        rc = ok ? kExitOk : kExitFailure;
        resolver.reset();
      },
      rc);
  return rc;
}

}  // namespace danerelay::relay
