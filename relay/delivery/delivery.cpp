// relay/delivery/delivery.cpp — see delivery.hpp. The per-recipient wording ("host mx.example[192.0.2.1]
// said: 550 5.1.1 … (in reply to RCPT TO command)") comes from the SMTP client; this file decides
// which host is tried, and what is left when none delivers.
#include "relay/delivery/delivery.hpp"

#include <fmt/format.h>

#include "relay/delivery/delivery_log.hpp"
#include "relay/delivery/loop_detection.hpp"
#include "relay/delivery/outcome.hpp"
#include "tls/peer_report.hpp"

namespace danerelay::relay {

namespace asio = boost::asio;

namespace {

// The last host-level failure, for the relay= field and the reason of what is left deferred.
struct LastFailure {
  std::optional<Outcome> outcome;
  std::string host;
  std::string address;
  std::uint16_t port = 0;
};

DeliveryStatus status_of(Action a) {
  switch (a) {
    case Action::delivered: return DeliveryStatus::sent;
    case Action::bounce: return DeliveryStatus::bounced;
    case Action::next_host:
    case Action::defer: return DeliveryStatus::deferred;
  }
  return DeliveryStatus::deferred;
}

// A deferral always carries a 4.x.x status: a host that is definitively absent (5.4.4) only
// bounces the message when every host is (the plan says so), never as the last of several.
std::string transient(std::string status) {
  if (!status.empty() && status[0] == '5') status[0] = '4';
  return status;
}

}  // namespace

asio::awaitable<std::vector<RecipientResult>> deliver(Envelope envelope, dns::DeliveryPlan plan, DeliverySettings settings,
                                                      Connector connect, LogSink log) {
  // The frame owns its inputs (by value); the connector gets pointers into them.
  std::vector<RecipientResult> results(envelope.recipients.size());
  std::vector<std::size_t> pending;
  for (std::size_t i = 0; i < results.size(); ++i) {
    results[i].recipient = envelope.recipients[i];
    results[i].delays.before_queue = settings.before_queue;
    results[i].delays.in_queue = settings.in_queue;
    results[i].attempt = settings.attempt;
    results[i].tls.level = std::string(config::to_string(settings.level));
    results[i].dnssec_mx = std::string(dns::to_string(plan.mx_security));
    pending.push_back(i);
  }
  auto decide_recipient = [&](std::size_t i, DeliveryStatus status, const Outcome& o) {
    RecipientResult& r = results[i];
    r.status = status;
    r.dsn = status == DeliveryStatus::deferred ? transient(o.status) : o.status;
    if (!o.reply_decided) r.failure = o.failure;
    r.reason = o.text;
    r.done = Clock::now();
  };

  LastFailure last;
  // Postfix counts the DNS lookups in the connection set-up stage ("c").
  std::chrono::microseconds failed_setup = settings.dns_lookup;

  if (plan.status != dns::PlanStatus::deliver) {
    // The DNS already decided: no connection (D-05, RFC 7505, D-07 with no host left).
    const Outcome o = outcome_of(plan);
    for (std::size_t i : pending) decide_recipient(i, status_of(o.action), o);
    pending.clear();
  }

  std::size_t addresses_tried = 0;
  bool looped = false;  // L-01: the connector refused a host that is (or comes after) ourselves
  for (const dns::Host& host : plan.hosts) {
    if (looped || pending.empty() || addresses_tried >= settings.max_addresses) break;
    if (!host.usable) {
      // D-07, D-13: no connection to a host whose TLSA (or address) lookup failed.
      last = {outcome_of(host), host.name, host.addresses.empty() ? "" : host.addresses.front().to_string(), plan.port};
      continue;
    }
    tls::HostPolicy policy = tls::decide(plan, host, settings.level, settings.digest_order, settings.match_names);
    for (const std::string& note : policy.notes) log(envelope.id.str() + ": " + note);
    if (policy.requirement == tls::Requirement::defer) {
      // D-14, D-20: mandatory DANE cannot be met by this host; never connect to it.
      last = {outcome_of(Failure::tls_policy, policy.reason, host.name), host.name,
              host.addresses.empty() ? "" : host.addresses.front().to_string(), plan.port};
      continue;
    }
    for (const dns::IpAddress& address : host.addresses) {
      if (pending.empty() || addresses_tried >= settings.max_addresses) break;
      ++addresses_tried;
      HostAttempt attempt{&envelope, &plan, &host, address, plan.port, policy, false, pending};
      SessionResult r = co_await connect(attempt);
      if (r.loop) {
        // L-01: this host is ourselves, or no better than a host that is (loop_detection.hpp). No
        // connection was made, and none is made to the hosts after it (no better preference).
        looped = true;
        const bool route = configured_route(plan);
        const std::string self = tls::format_namaddr(r.loop->host, r.loop->address, r.loop->port);
        if (route) {
          log(fmt::format("{}: warning: next hop {} for {} is a listener of this relay: configuration problem", envelope.id.str(),
                          self, plan.domain));
        } else if (plan.kind == dns::DestinationKind::mx) {
          log(fmt::format("{}: {} (MX preference {}) is a listener of this relay: MX hosts of preference {} and above are not tried",
                          envelope.id.str(), self, r.loop->preference, r.loop->preference));
        } else {
          log(fmt::format("{}: {} is a listener of this relay", envelope.id.str(), self));
        }
        const Outcome o = outcome_of(route ? Failure::route_loops_back : Failure::loops_back, {}, plan.domain);
        if (r.loop->best) {
          // Postfix: "mail for X loops back to myself", relay=none.
          for (std::size_t i : pending) {
            results[i].delays.connection_setup = failed_setup;
            decide_recipient(i, status_of(o.action), o);
          }
          pending.clear();
        } else if (!last.outcome) {
          last = {o, {}, {}, 0};  // cannot happen (a better host was skipped or tried), but never unexplained
        }
        break;
      }
      if (!r.transaction && r.failure && r.failure->tls_handshake_failed() && policy.plaintext_fallback) {
        // D-12: TLS was only opportunistic (no secure TLSA, insecure destination or level may):
        // a new connection without STARTTLS is allowed, and logged.
        log(fmt::format("{}: TLS handshake failed ({}); trying again without TLS (opportunistic TLS: no secure TLSA records)",
                        tls::format_namaddr(host.name, address.to_string(), plan.port), r.failure->text));
        failed_setup += r.connection_setup;
        HostAttempt retry = attempt;
        retry.plaintext_retry = true;
        retry.policy.requirement = tls::Requirement::none;
        r = co_await connect(retry);
        r.tls.feature = policy.tls_feature + ":none";
      }
      if (!r.transaction) {
        // D-10, D-11, D-39, D-45: this host failed before any transaction — next address/host.
        last = {r.failure ? outcome_of(*r.failure) : outcome_of(Failure::connect, "no transaction with " + host.name),
                host.name, address.to_string(), plan.port};
        failed_setup += r.connection_setup;
        continue;
      }

      // A transaction ran: the client decided every attempted recipient from the replies.
      for (std::size_t k = 0; k < attempt.recipients.size(); ++k) {
        const std::size_t i = attempt.recipients[k];
        RecipientResult& res = results[i];
        res.relay_host = host.name;
        res.relay_address = address.to_string();
        res.relay_port = plan.port;
        res.connection_use = r.connection_use;
        res.dnssec_host = std::string(dns::to_string(host.address_security));
        const std::string level = res.tls.level;
        res.tls = r.tls;
        res.tls.level = level;
        res.delays.connection_setup = failed_setup + r.connection_setup;
        res.delays.transmission = r.transmission;
        if (k >= r.recipients.size()) {
          decide_recipient(i, DeliveryStatus::deferred, outcome_of(Failure::internal_error, "no outcome for this recipient"));
          continue;
        }
        const smtp::RecipientOutcome& o = r.recipients[k];
        res.reply_code = o.reply ? o.reply->code : 0;
        res.command = o.command;
        const Outcome decided = outcome_of(o);
        decide_recipient(i, status_of(decided.action), decided);
      }
      pending.clear();
    }
  }

  // Hosts exhausted: what is left is deferred with the last reason (Postfix keeps the last one).
  for (std::size_t i : pending) {
    RecipientResult& res = results[i];
    res.relay_host = last.address.empty() ? std::string() : last.host;
    res.relay_address = last.address;
    res.relay_port = last.port;
    res.delays.connection_setup = failed_setup;
    decide_recipient(i, DeliveryStatus::deferred, last.outcome ? *last.outcome : outcome_of(Failure::no_hosts, {}, plan.domain));
  }
  for (const auto& r : results) {
    log(settings.json_log ? delivery_json(envelope, r) : delivery_line(envelope, r, settings.tls_feature_status));
  }
  co_return results;
}

}  // namespace danerelay::relay
