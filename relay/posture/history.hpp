// relay/posture/history.hpp — the posture history: how delivered mail left (DANE-verified,
// trusted, TLS-unauthenticated, plaintext) plus deferrals and bounces, counted per time bucket in
// two series: the last 24 hours in 5-minute buckets and the last 30 days in UTC days.
//
// What this is: pure values and pure functions. classify() is the one mapping from a delivery
// result's TLS summary to a class (table-tested); Series keeps at most `capacity` buckets by
// construction; encode()/decode() are the versioned file format, and decode() refuses anything
// it cannot fully check (a corrupt or truncated file is an error value, never a crash).
// What this is not: the file I/O (relay/posture/recorder.cpp) or the page (page.cpp).
//
// Classes (RFC 7672 §2.2.1, checklist D-18: a DANE match under an insecure MX RRset is "Trusted"
// and never reported as secure delivery; D-34: insecure TLSA is never counted as authenticated):
//   verified          trust "Verified" and a DANE record matched (tls.matched not empty)
//   trusted           trust "Trusted" (DANE under an insecure MX, or a CA-valid chain whose name was
//                     not checked), or "Verified" by PKIX only (no DANE match: verify/secure)
//   unauthenticated   trust "Untrusted" or "Anonymous": encrypted, nobody authenticated
//   plaintext         no TLS (trust empty)
// Only `sent` results are delivered mail; `deferred` and `bounced` results (bounced includes an
// expired lifetime) count as deferrals and bounces, one per recipient result.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "relay/core/envelope.hpp"

namespace danerelay::relay::posture {

using WallClock = std::chrono::system_clock;
using Seconds = std::chrono::seconds;

enum class Outcome { verified, trusted, unauthenticated, plaintext, deferred, bounced };
inline constexpr std::size_t kOutcomes = 6;
// "verified", "trusted", "unauthenticated", "plaintext", "deferred", "bounced" (report columns,
// page data attributes).
[[nodiscard]] std::string_view to_string(Outcome outcome) noexcept;

// The class of a delivered recipient from its TLS summary (see the table above).
[[nodiscard]] Outcome classify_tls(const TlsSummary& tls) noexcept;
// The class of any recipient result: classify_tls for `sent`, else deferred / bounced.
[[nodiscard]] Outcome classify(const RecipientResult& result) noexcept;

struct Counts {
  std::uint64_t n[kOutcomes] = {};
  [[nodiscard]] std::uint64_t& operator[](Outcome o) noexcept { return n[static_cast<std::size_t>(o)]; }
  [[nodiscard]] std::uint64_t operator[](Outcome o) const noexcept { return n[static_cast<std::size_t>(o)]; }
  [[nodiscard]] std::uint64_t delivered() const noexcept;  // verified + trusted + unauthenticated + plaintext
  [[nodiscard]] std::uint64_t total() const noexcept;      // delivered + deferred + bounced
  Counts& operator+=(const Counts& other) noexcept;
  friend bool operator==(const Counts&, const Counts&) = default;
};

struct Bucket {
  std::int64_t start = 0;  // unix seconds, a multiple of the series width (UTC)
  Counts counts;
  friend bool operator==(const Bucket&, const Bucket&) = default;
};

// One series: buckets of `width` seconds, at most `capacity` of them, the newest ending the
// window. Buckets are kept sparse (only those with counts); dense() fills in the empty ones.
class Series {
 public:
  Series(Seconds width, std::size_t capacity) : width_(width), capacity_(capacity) {}

  [[nodiscard]] Seconds width() const noexcept { return width_; }
  [[nodiscard]] std::size_t capacity() const noexcept { return capacity_; }
  // The start of the bucket that holds `t` (floor to a multiple of the width since the epoch:
  // daily buckets start at 00:00 UTC).
  [[nodiscard]] std::int64_t bucket_start(WallClock::time_point t) const noexcept;

  // Counts one result at time t, then drops what fell out of the window.
  void add(WallClock::time_point t, Outcome outcome, std::uint64_t n = 1);
  // Drops buckets older than the window that ends with the bucket of `now` (or with the newest
  // bucket, should the clock have stepped back behind it), and never keeps more than capacity.
  void expire(WallClock::time_point now);

  // Sparse, ascending by start.
  [[nodiscard]] const std::map<std::int64_t, Counts>& buckets() const noexcept { return buckets_; }
  // Every bucket of the window ending with the bucket of `now`, oldest first, empty ones as zero:
  // exactly capacity() buckets.
  [[nodiscard]] std::vector<Bucket> dense(WallClock::time_point now) const;
  [[nodiscard]] Counts total() const noexcept;

  // For decode(): puts a bucket as read (start must be aligned; returns false otherwise).
  bool put(std::int64_t start, const Counts& counts);

  friend bool operator==(const Series& a, const Series& b) {
    return a.width_ == b.width_ && a.capacity_ == b.capacity_ && a.buckets_ == b.buckets_;
  }

 private:
  void trim(std::int64_t newest_start);
  Seconds width_;
  std::size_t capacity_;
  std::map<std::int64_t, Counts> buckets_;
};

// What the page shows about one destination domain (kept by the recorder, bounded in count).
struct DomainState {
  std::string domain;             // recipient domain, lower case as given (escaped when shown)
  std::uint64_t results = 0;      // recipient results seen (the volume the table is sorted by)
  Counts counts;
  std::string dnssec_mx;          // last MX RRset verdict: "secure", "insecure", "" (unknown / no lookup)
  std::string tls_feature;        // last Postfix tls= feature ("dane", "dane:encrypt", "!dane", ...)
  std::string last_trust;         // last TLS trust ("Verified", ..., "" plaintext or no connection)
  std::string last_protocol;      // "TLSv1.3"
  std::string last_matched;       // DANE record that matched last, "3 1 1 <hex>"
  std::string last_status;        // "sent", "deferred", "bounced"
  std::string last_dsn;
  std::int64_t last_seen = 0;     // unix seconds
  friend bool operator==(const DomainState&, const DomainState&) = default;
};

inline constexpr Seconds kFineWidth{300};       // 5 minutes
inline constexpr std::size_t kFineBuckets = 288;  // 24 hours
inline constexpr Seconds kDailyWidth{86400};
inline constexpr std::size_t kDailyBuckets = 30;
inline constexpr std::size_t kMaxDomains = 100;        // kept; the page shows the top ones
inline constexpr std::size_t kMaxDomainLength = 255;   // longer names are cut (a DNS name has ≤ 253)

struct History {
  Series fine{kFineWidth, kFineBuckets};
  Series daily{kDailyWidth, kDailyBuckets};
  std::vector<DomainState> domains;  // at most kMaxDomains, unordered
  friend bool operator==(const History&, const History&) = default;
};

// Counts one recipient result at `now` into both series and the domain table. When the table is
// full, a new domain replaces the one with the least volume (the oldest among equals), so the
// table stays bounded and busy domains stay.
void record(History& history, WallClock::time_point now, const RecipientResult& result);
// "2026-12-03T13:40:00Z"
[[nodiscard]] std::string iso8601_utc(std::int64_t unix_seconds);
// The recipient's domain, lower-cased ("" when the address has no '@').
[[nodiscard]] std::string recipient_domain(std::string_view address);
// The top `n` domains by volume (ties: most recently seen first).
[[nodiscard]] std::vector<DomainState> top_domains(const History& history, std::size_t n);

// The file format, version 1: one JSON object
//   {"format":"danerelay-posture-history","version":1,"saved":<unix s>,
//    "fine":{"width":300,"buckets":[[start,v,t,u,p,d,b],…]},"daily":{…},"domains":[{…},…]}
// decode() checks everything (names, version, widths, alignment, counts, bounds) and returns
// nullopt with the reason in *error for anything else; series are trimmed to their capacity.
[[nodiscard]] std::string encode(const History& history, WallClock::time_point saved);
[[nodiscard]] std::optional<History> decode(std::string_view text, std::string* error);

}  // namespace danerelay::relay::posture
