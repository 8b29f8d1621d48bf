// relay/metrics/relay_metrics.cpp — see relay_metrics.hpp.
#include "relay/metrics/relay_metrics.hpp"

#include <string>

namespace danerelay::relay::metrics {

namespace {

bool starts_with(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }
bool contains(std::string_view s, std::string_view p) { return s.find(p) != std::string_view::npos; }

double seconds(std::chrono::microseconds us) { return static_cast<double>(us.count()) / 1e6; }

// Buckets: TLS handshakes on a LAN take milliseconds, across the world a few hundred.
const std::vector<double> kHandshakeBuckets{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
// Postfix's delay stages span a millisecond (on loopback) to days (stage a of a deferred message).
const std::vector<double> kDelayBuckets{0.001, 0.01, 0.1, 1, 10, 60, 300, 3600, 86400};
// Operations one group commit carries (SpoolOptions::max_batch is 256).
const std::vector<double> kFlushBuckets{1, 2, 4, 8, 16, 32, 64, 128, 256};

}  // namespace

std::optional<std::string_view> dane_result(const RecipientResult& r) {
  if (r.tls.level != "dane" && r.tls.level != "dane-only") return std::nullopt;
  if (r.failure) {
    switch (*r.failure) {
      case Failure::tls_authentication: return "auth_failed";
      case Failure::mx_lookup_failed:
      case Failure::host_lookup_failed:
      case Failure::tlsa_lookup_failed:
      case Failure::resolution_incomplete: return "tempfail";
      case Failure::tls_policy:
        // dane-only could not be met (tls/policy.cpp decide_dane's reasons).
        if (contains(r.reason, "TLSA lookup error")) return "tempfail";
        if (contains(r.reason, "unusable")) return "unusable";
        if (contains(r.reason, "non DNSSEC destination")) return "insecure_chain";
        if (contains(r.reason, "no TLSA records found") || contains(r.reason, "address literal")) return "not_applicable";
        return std::nullopt;
      default: break;
    }
  }
  if (!r.tls.matched.empty()) return "ok";
  if (starts_with(r.tls.feature, "dane:encrypt")) return "unusable";
  if (starts_with(r.tls.feature, "dane:may")) {
    if (r.dnssec_mx == "insecure" || r.dnssec_host == "insecure") return "insecure_chain";
    return "not_applicable";
  }
  return std::nullopt;
}

std::string_view delivery_status(const RecipientResult& r) {
  if (r.failure && (*r.failure == Failure::expired || *r.failure == Failure::expired_by_admin)) return "expired";
  return to_string(r.status);
}

std::optional<std::string_view> connection_trust(const ConnectionReport& c) {
  using K = smtp::HostFailure::Kind;
  if (c.failure) {
    switch (*c.failure) {
      case K::tls_authentication:
      case K::tls_handshake:
      case K::tls_injection:
      case K::tls_not_offered:
      case K::starttls_rejected: return "failed";
      default: break;
    }
  }
  if (c.tls_established) {
    if (c.trust == "Verified") return "verified";
    if (c.trust == "Trusted") return "trusted";
    return "untrusted";
  }
  if (c.tls_attempted) return "failed";
  if (!c.failure) return "plaintext";
  return std::nullopt;
}

std::string_view dns_result(const dns::Answer& a) {
  switch (a.verdict) {
    case dns::Verdict::secure: return "secure";
    case dns::Verdict::insecure: return "insecure";
    case dns::Verdict::bogus: return "bogus";
    case dns::Verdict::error: return a.failure == dns::Failure::timeout ? "timeout" : "servfail";
  }
  return "servfail";
}

RelayMetrics::RelayMetrics(std::string version)
    : received_(registry_.counter("danerelay_messages_received_total", "Messages accepted (250 queued) per listener.",
                                  {"listener"})),
      sessions_(registry_.counter("danerelay_smtpd_sessions_total", "Inbound SMTP sessions admitted per listener.",
                                  {"listener"})),
      rejections_(registry_.counter("danerelay_smtpd_rejections_total",
                                    "Inbound refusals (reject: lines and connections refused at admission) by reply code.",
                                    {"code"})),
      auth_failures_(registry_.counter("danerelay_smtpd_auth_failures_total", "Failed SMTP AUTH attempts.")),
      deliveries_(registry_.counter("danerelay_deliveries_total",
                                    "Recipient delivery results by status and configured TLS level.", {"status", "tls"})),
      plaintext_(registry_.counter("danerelay_plaintext_deliveries_total",
                                   "Recipients delivered over a connection without TLS.")),
      dane_(registry_.counter("danerelay_dane_result_total", "Recipient results of DANE levels by DANE result.", {"result"})),
      delay_(registry_.histogram("danerelay_smtp_delivery_delay_seconds",
                                 "Postfix's delays=a/b/c/d per recipient result, by stage.", kDelayBuckets, {"stage"})),
      tls_(registry_.counter("danerelay_tls_connections_total", "New outbound connections by TLS result.", {"trust"})),
      handshake_(registry_.histogram("danerelay_tls_handshake_duration_seconds",
                                     "Outbound TLS handshakes (successful or not).", kHandshakeBuckets)),
      dns_(registry_.counter("danerelay_dns_queries_total", "DNS answers by record type and DNSSEC result.",
                             {"rrtype", "result"})),
      flush_(registry_.histogram("danerelay_spool_flush_operations",
                                 "Commits, state saves and removals made durable per spool group commit.", kFlushBuckets)),
      queue_(registry_.gauge("danerelay_queue_messages", "Messages in the queue by state.", {"queue"})),
      oldest_(registry_.gauge("danerelay_queue_oldest_message_age_seconds", "Age of the oldest queued message (0: empty).")),
      validating_(registry_.gauge("danerelay_dnssec_validating", "1 once the DNSSEC self-test (root DNSKEY secure) passed.")) {
  registry_.gauge("danerelay_build_info", "Build information; always 1.", {"version"}).set({std::move(version)}, 1);
  for (const char* r : {"ok", "unusable", "not_applicable", "insecure_chain", "tempfail", "auth_failed"}) dane_.touch({r});
  for (const char* t : {"verified", "trusted", "untrusted", "plaintext", "failed"}) tls_.touch({t});
  for (const char* q : {"active", "deferred", "hold"}) queue_.touch({q});
}

void RelayMetrics::result(const Envelope& envelope, const RecipientResult& r) {
  (void)envelope;
  const std::string_view status = delivery_status(r);
  deliveries_.add({std::string(status), r.tls.level.empty() ? std::string("none") : r.tls.level});
  if (r.status == DeliveryStatus::sent && !r.relay_host.empty() && r.tls.trust.empty()) plaintext_.add({});
  if (auto d = dane_result(r)) dane_.add({std::string(*d)});
  if (status == "expired") return;  // no attempt: no delays
  delay_.observe({"before_queue_manager"}, seconds(r.delays.before_queue));
  delay_.observe({"queue_manager"}, seconds(r.delays.in_queue));
  delay_.observe({"connection_setup"}, seconds(r.delays.connection_setup));
  delay_.observe({"transmission"}, seconds(r.delays.transmission));
}

void RelayMetrics::connection(const ConnectionReport& c) {
  if (auto t = connection_trust(c)) tls_.add({std::string(*t)});
  if (c.handshake) handshake_.observe({}, seconds(*c.handshake));
}

void RelayMetrics::dns_answer(const dns::Answer& a) {
  dns_.add({std::string(dns::to_string(a.query.type)), std::string(dns_result(a))});
}

void RelayMetrics::flush(std::size_t operations) { flush_.observe({}, static_cast<double>(operations)); }

smtp::ServerObserver RelayMetrics::server_observer() {
  smtp::ServerObserver o;
  o.session = [this](std::string_view listener) { sessions_.add({std::string(listener)}); };
  o.message = [this](std::string_view listener) { received_.add({std::string(listener)}); };
  o.rejection = [this](int code) { rejections_.add({std::to_string(code)}); };
  o.auth_failure = [this] { auth_failures_.add({}); };
  return o;
}

std::string RelayMetrics::scrape() {
  if (probe_) {
    const Probe p = probe_();
    queue_.set({"active"}, static_cast<double>(p.active));
    queue_.set({"deferred"}, static_cast<double>(p.deferred));
    queue_.set({"hold"}, static_cast<double>(p.hold));
    oldest_.set({}, static_cast<double>(p.oldest_age.count()));
    validating_.set({}, p.dnssec_validating ? 1 : 0);
  }
  return registry_.render();
}

}  // namespace danerelay::relay::metrics
