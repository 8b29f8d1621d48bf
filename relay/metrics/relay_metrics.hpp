// relay/metrics/relay_metrics.hpp — what danerelay counts, with the names and label values of
// ecosystem.md §9.4, fed by the rooms' observer hooks (the daemon connects them):
//
//   danerelay_messages_received_total{listener}      smtp::ServerObserver::message
//   danerelay_smtpd_sessions_total{listener}         smtp::ServerObserver::session
//   danerelay_smtpd_rejections_total{code}           smtp::ServerObserver::rejection
//   danerelay_smtpd_auth_failures_total              smtp::ServerObserver::auth_failure
//   danerelay_deliveries_total{status,tls}           ResultObserver (relay/core/observer.hpp)
//   danerelay_plaintext_deliveries_total             ResultObserver: sent over a connection without TLS
//   danerelay_dane_result_total{result}              ResultObserver, through dane_result()
//   danerelay_smtp_delivery_delay_seconds{stage}     ResultObserver: Postfix's delays=a/b/c/d
//   danerelay_tls_connections_total{trust}           ConnectionObserver, through connection_trust()
//   danerelay_tls_handshake_duration_seconds         ConnectionObserver
//   danerelay_dns_queries_total{rrtype,result}       dns::ObservedResolver, through dns_result()
//   danerelay_spool_flush_operations                 SpoolOptions::on_flush (the disk thread)
//   danerelay_queue_messages{queue}, danerelay_queue_oldest_message_age_seconds,
//   danerelay_dnssec_validating                      computed at scrape time (set_probe)
//   danerelay_build_info{version}                    constant 1
//
// The mapping functions are pure and table-tested (tests/metrics/relay_metrics_test.cpp).
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "dns/types.hpp"
#include "relay/core/envelope.hpp"
#include "relay/delivery/smtp_connector.hpp"
#include "relay/metrics/registry.hpp"
#include "smtp/server_observer.hpp"

namespace danerelay::relay::metrics {

// danerelay_dane_result_total's `result` for one recipient result of a DANE level (dane,
// dane-only); nullopt when the result says nothing about DANE (another level, a connection that
// failed before TLS, a domain that does not exist, an expiry). In this order:
//   auth_failed     the failure that decided it is tls_authentication (no TLSA record matched)
//   tempfail        the MX, address or TLSA lookup failed (SERVFAIL, timeout, bogus): deferred
//   ok              a TLSA record matched (tls.matched set)
//   unusable        TLSA records exist, none usable: TLS without authentication ("dane:encrypt"),
//                   or dane-only deferred for it ("TLSA records unusable")
//   insecure_chain  the MX RRset or the host's addresses are not signed: DANE cannot apply
//                   ("dane:may" with an insecure MX/address, or dane-only deferred as
//                   "non DNSSEC destination")
//   not_applicable  the chain is secure and TLSA is securely absent ("dane:may" otherwise, or
//                   dane-only deferred as "no TLSA records found")
[[nodiscard]] std::optional<std::string_view> dane_result(const RecipientResult& r);

// danerelay_deliveries_total's `status`: sent, deferred, bounced, or expired (a bounce by the
// queue lifetime or `queue expire`: failure expired / expired_by_admin).
[[nodiscard]] std::string_view delivery_status(const RecipientResult& r);

// danerelay_tls_connections_total's `trust` for one new connection, nullopt when TLS was never
// in question (the connection failed before STARTTLS for another reason):
//   failed     the handshake failed, the peer was not authenticated where that was required,
//              bytes were injected before the handshake, or STARTTLS was required and missing
//              or refused
//   verified / trusted / untrusted   the TLS trust Postfix logs (Anonymous counts as untrusted)
//   plaintext  the session went on without TLS
[[nodiscard]] std::optional<std::string_view> connection_trust(const ConnectionReport& c);

// danerelay_dns_queries_total's `result`: secure, insecure, bogus, timeout, or servfail (every
// other error: SERVFAIL, refused, malformed).
[[nodiscard]] std::string_view dns_result(const dns::Answer& a);

// The queue and the resolver at scrape time.
struct Probe {
  std::size_t active = 0;
  std::size_t deferred = 0;
  std::size_t hold = 0;
  std::chrono::seconds oldest_age{0};  // 0 when the queue is empty
  bool dnssec_validating = false;      // the DNSSEC self-test passed
};

class RelayMetrics {
 public:
  explicit RelayMetrics(std::string version);
  RelayMetrics(const RelayMetrics&) = delete;
  RelayMetrics& operator=(const RelayMetrics&) = delete;

  // The hooks, bound to this (which must outlive them).
  void result(const Envelope& envelope, const RecipientResult& r);
  void connection(const ConnectionReport& c);
  void dns_answer(const dns::Answer& a);
  void flush(std::size_t operations);  // any thread
  [[nodiscard]] smtp::ServerObserver server_observer();

  void set_probe(std::function<Probe()> probe) { probe_ = std::move(probe); }

  // Runs the probe, then the exposition text (relay/metrics/registry.hpp).
  [[nodiscard]] std::string scrape();

  [[nodiscard]] Registry& registry() noexcept { return registry_; }

 private:
  Registry registry_;
  std::function<Probe()> probe_;
  Family& received_;
  Family& sessions_;
  Family& rejections_;
  Family& auth_failures_;
  Family& deliveries_;
  Family& plaintext_;
  Family& dane_;
  Family& delay_;
  Family& tls_;
  Family& handshake_;
  Family& dns_;
  Family& flush_;
  Family& queue_;
  Family& oldest_;
  Family& validating_;
};

}  // namespace danerelay::relay::metrics
