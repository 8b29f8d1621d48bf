// relay/delivery/delivery.hpp — one delivery attempt of one message to one destination: walk the plan's
// hosts in order, decide each host's TLS policy, connect through an injected connector, and turn
// what happened into per-recipient results, through the one outcome policy (relay/delivery/outcome.hpp,
// like Postfix's smtp_trouble.c) that turns failures into actions and DSN codes.
//
// Rules (RFC 7672 §2.2, RFC 5321 §5.1): an unusable host (TLSA or address lookup failure) gets
// no connection and the next host is tried (D-07, D-13); a host whose TLS requirement fails
// (STARTTLS missing, handshake failure, authentication failure) is skipped for the next (D-10,
// D-11, D-39, D-45) and never retried in plaintext; only where TLS was opportunistic may a failed
// handshake be retried in plaintext on a new connection (D-12), and the log says so. A 4xx
// greeting/EHLO tries the next host; once a transaction ran, 2xx/4xx/5xx replies decide each
// recipient (sent/deferred/bounced), and a 5xx to MAIL or DATA bounces every recipient of it.
//
// What this is not: the SMTP conversation itself (smtp/ client session, behind the connector),
// retries over time (the queue), or the DNS lookups (done before, the plan is an input).
#pragma once

#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "dns/plan.hpp"
#include "relay/core/envelope.hpp"
#include "smtp/client_session.hpp"
#include "tls/policy.hpp"

namespace danerelay::relay {

// What the connector is asked to do: one connection to one address of one host, one transaction
// for `recipients` (indices into the envelope's recipients).
struct HostAttempt {
  const Envelope* envelope = nullptr;
  const dns::DeliveryPlan* plan = nullptr;
  const dns::Host* host = nullptr;
  dns::IpAddress address;
  std::uint16_t port = 25;
  tls::HostPolicy policy;
  bool plaintext_retry = false;       // D-12: the retry after a failed opportunistic handshake
  std::vector<std::size_t> recipients;
};

// L-01: the connector refused an attempt because the plan leads back to this relay: `host` has an
// address that is one of the relay's own listener endpoints, at a preference no better than the
// attempted host's (relay/delivery/loop_detection.hpp). No connection was made.
struct LoopBack {
  std::string host;              // the plan's host that is ourselves
  std::string address;           // its address that is an own endpoint
  std::uint16_t port = 25;
  std::uint16_t preference = 0;
  bool best = false;             // no host is preferred to it: nothing is left to try
};

// What one connection did: either a host-level failure (nothing was delivered: try the next
// address or host), or a transaction whose per-recipient outcomes the SMTP client decided from
// the replies (smtp::RecipientOutcome: disposition, reply, command, DSN, Postfix text).
struct SessionResult {
  bool transaction = false;                        // recipients below are decided
  std::optional<LoopBack> loop;                    // L-01: refused before connecting (no failure then)
  std::optional<smtp::HostFailure> failure;        // when !transaction (or a broken transaction)
  std::vector<smtp::RecipientOutcome> recipients;  // per attempted recipient, in order
  TlsSummary tls;
  int connection_use = 1;
  std::chrono::microseconds connection_setup{0};
  std::chrono::microseconds transmission{0};
};

using Connector = std::function<boost::asio::awaitable<SessionResult>(HostAttempt)>;

// Receives every log line of the attempt in order (TLS lines, plaintext-retry notices, the
// per-recipient delivery lines).
using LogSink = std::function<void(const std::string&)>;

struct DeliverySettings {
  config::TlsLevel level = config::TlsLevel::dane;
  std::vector<std::string> digest_order{"sha512", "sha256"};
  std::vector<std::string> match_names;
  std::size_t max_addresses = 5;               // addresses tried per delivery (Postfix smtp_mx_address_limit)
  bool tls_feature_status = false;             // log.tls_feature_status
  int attempt = 1;                             // which delivery attempt of the message this is (JSON num_attempts)
  bool json_log = false;                       // log.format = "json": delivery_json() records instead of lines
  std::chrono::microseconds before_queue{0};   // delays "a": arrival → this attempt entered the queue manager (deferred time included)
  std::chrono::microseconds in_queue{0};       // delays "b": in the queue manager (waiting for a concurrency slot)
  std::chrono::microseconds dns_lookup{0};     // resolving the plan: part of delays "c", as in Postfix
};

// One attempt for every recipient of `envelope` whose domain `plan` describes. Arguments by
// value: the coroutine frame owns them (pass named variables: g++ 12 mis-copies prvalue class
// temporaries handed to a coroutine inside co_await).
[[nodiscard]] boost::asio::awaitable<std::vector<RecipientResult>> deliver(Envelope envelope, dns::DeliveryPlan plan,
                                                                          DeliverySettings settings, Connector connector,
                                                                          LogSink log);

}  // namespace danerelay::relay
