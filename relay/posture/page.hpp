// relay/posture/page.hpp — the posture page: one self-contained HTML document drawn from a
// snapshot, for the metrics listener's "/" (the HTTP server is not here; it sends what
// render_page() returns: body, content type and headers).
//
// What this is: pure functions. The page has no scripts and makes no requests: the plots are
// inline SVG drawn here, the one <style> element is allowed by its SHA-256 in the returned
// Content-Security-Policy (`default-src 'none'`, nothing else), and every string that came from
// mail or DNS (domains, reasons, TLSA records, trust-anchor text) is HTML-escaped.
// It shows: the shares of delivered mail by class (history.hpp) over the last 24 hours and the
// last 30 days as stacked plots with the deferrals and bounces below them, the same shares as
// numbers (data-outcome / data-count attributes, so tests compare them with /metrics), the top
// destination domains, the deferred domains of the queue and the DNSSEC self-test and trust
// anchor.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "relay/control/queue_control.hpp"
#include "relay/posture/history.hpp"

namespace danerelay::relay::posture {

// One domain with deferred mail in the queue.
struct DeferredDomain {
  std::string domain;
  std::string reason;        // the last deferral reason of its oldest message
  Seconds age{0};            // age of its oldest message
  std::size_t messages = 0;
  std::size_t recipients = 0;
};

struct QueueState {
  std::size_t messages = 0;             // messages in the queue
  std::vector<DeferredDomain> deferred; // oldest first
};

// From the queue listing (QueueControl::list(), or Spool::scan through queue_entry()): pending
// recipients with a deferral reason, grouped by domain, oldest first.
[[nodiscard]] QueueState queue_state(const std::vector<QueueEntry>& entries, WallClock::time_point now);

struct DnssecState {
  bool self_test_done = false;  // the start-up self-test finished (passed or failed)
  bool self_test_ok = false;
  std::string self_test_text;   // e.g. "validation works" or why it failed
  std::string trust_anchor;     // e.g. "RFC 5011 managed: /var/lib/danerelay/root.key"
  std::string trust_anchor_text;  // the anchor records, shown verbatim (escaped)
};

struct Snapshot {
  WallClock::time_point now;
  std::string hostname;         // server.hostname
  History history;
  QueueState queue;
  DnssecState dnssec;
  std::size_t top_domains = 20; // rows in the domain table
};

struct Page {
  std::string body;
  std::string content_type = "text/html; charset=utf-8";
  std::vector<std::pair<std::string, std::string>> headers;  // Content-Security-Policy and friends
};

[[nodiscard]] Page render_page(const Snapshot& snapshot);

// The page's one stylesheet (what the CSP hash covers).
[[nodiscard]] std::string_view page_style() noexcept;
// "default-src 'none'; style-src 'sha256-<base64 of SHA-256(style)>'; img-src data:; …"
[[nodiscard]] std::string content_security_policy(std::string_view style);

// &, <, >, ", ' escaped; bytes that are not valid UTF-8 and control characters become U+FFFD.
[[nodiscard]] std::string html_escape(std::string_view text);
// A share of delivered mail in percent with one decimal ("12.5"); "0.0" when nothing was delivered.
[[nodiscard]] std::string format_share(std::uint64_t count, std::uint64_t delivered);
// The DANE state of a domain in a few words, from its last Postfix tls= feature value.
[[nodiscard]] std::string dane_state(std::string_view tls_feature);
// "2026-12-03 13:40 UTC" (minutes) for the page.
[[nodiscard]] std::string format_utc_minutes(std::int64_t unix_seconds);
// "3d 4h", "2h 5m", "45s": the two largest units.
[[nodiscard]] std::string format_age(Seconds age);

}  // namespace danerelay::relay::posture
