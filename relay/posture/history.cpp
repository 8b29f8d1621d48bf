// relay/posture/history.cpp — the posture classes, the two bounded series, the domain table and
// the versioned file format (see history.hpp). Pure: no clock, no files.
#include "relay/posture/history.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <ctime>

namespace danerelay::relay::posture {

namespace {

using json = nlohmann::json;

constexpr std::string_view kFormatName = "danerelay-posture-history";
constexpr int kFormatVersion = 1;

std::int64_t unix_seconds(WallClock::time_point t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

// floor division that rounds towards minus infinity (times before 1970 stay aligned)
std::int64_t floor_to(std::int64_t t, std::int64_t width) {
  std::int64_t q = t / width;
  if (t % width != 0 && t < 0) --q;
  return q * width;
}

// The status word of the delivery line (relay/delivery's to_string; that room is not linked here).
const char* status_word(DeliveryStatus s) {
  switch (s) {
    case DeliveryStatus::sent: return "sent";
    case DeliveryStatus::deferred: return "deferred";
    case DeliveryStatus::bounced: return "bounced";
  }
  return "deferred";
}

std::string cut(std::string_view s) { return std::string(s.substr(0, kMaxDomainLength)); }

json encode_series(const Series& s) {
  json buckets = json::array();
  for (const auto& [start, c] : s.buckets()) {
    json row = json::array({start});
    for (auto v : c.n) row.push_back(v);
    buckets.push_back(std::move(row));
  }
  return json{{"width", s.width().count()}, {"buckets", std::move(buckets)}};
}

bool decode_series(const json& j, Series& s, const char* name, std::string* error) {
  auto fail = [&](const std::string& why) {
    if (error) *error = std::string(name) + ": " + why;
    return false;
  };
  if (!j.is_object() || !j.contains("width") || !j.contains("buckets")) return fail("missing width or buckets");
  if (!j["width"].is_number_integer() || j["width"].get<std::int64_t>() != s.width().count()) return fail("unexpected width");
  if (!j["buckets"].is_array()) return fail("buckets is not an array");
  std::int64_t previous = 0;
  bool first = true;
  for (const auto& row : j["buckets"]) {
    if (!row.is_array() || row.size() != kOutcomes + 1) return fail("a bucket is not [start, 6 counts]");
    if (!row[0].is_number_integer()) return fail("a bucket start is not an integer");
    Counts c;
    for (std::size_t i = 0; i < kOutcomes; ++i) {
      if (!row[i + 1].is_number_unsigned()) return fail("a count is not a non-negative integer");
      c.n[i] = row[i + 1].get<std::uint64_t>();
    }
    const auto start = row[0].get<std::int64_t>();
    if (!first && start <= previous) return fail("buckets are not in ascending order");
    if (!s.put(start, c)) return fail("a bucket start is not aligned to the width");
    previous = start;
    first = false;
  }
  s.expire(WallClock::time_point(std::chrono::seconds(first ? 0 : previous)));
  return true;
}

bool get_string(const json& j, const char* key, std::string& out) {
  if (!j.contains(key)) return true;  // optional: empty
  if (!j[key].is_string()) return false;
  out = j[key].get<std::string>();
  return true;
}

}  // namespace

std::string_view to_string(Outcome outcome) noexcept {
  switch (outcome) {
    case Outcome::verified: return "verified";
    case Outcome::trusted: return "trusted";
    case Outcome::unauthenticated: return "unauthenticated";
    case Outcome::plaintext: return "plaintext";
    case Outcome::deferred: return "deferred";
    case Outcome::bounced: return "bounced";
  }
  return "plaintext";
}

Outcome classify_tls(const TlsSummary& tls) noexcept {
  if (tls.trust.empty()) return Outcome::plaintext;
  // D-18: only "Verified" with a DANE match is DANE-verified; "Trusted" (DANE under an insecure MX
  // RRset) never is. PKIX-verified mail (no DANE record matched) is authenticated, not DANE.
  if (tls.trust == "Verified") return tls.matched.empty() ? Outcome::trusted : Outcome::verified;
  if (tls.trust == "Trusted") return Outcome::trusted;
  // "Untrusted", "Anonymous", and anything unknown: never counted as authenticated.
  return Outcome::unauthenticated;
}

Outcome classify(const RecipientResult& result) noexcept {
  switch (result.status) {
    case DeliveryStatus::sent: return classify_tls(result.tls);
    case DeliveryStatus::deferred: return Outcome::deferred;
    case DeliveryStatus::bounced: return Outcome::bounced;
  }
  return Outcome::deferred;
}

std::uint64_t Counts::delivered() const noexcept {
  return (*this)[Outcome::verified] + (*this)[Outcome::trusted] + (*this)[Outcome::unauthenticated] +
         (*this)[Outcome::plaintext];
}

std::uint64_t Counts::total() const noexcept {
  return delivered() + (*this)[Outcome::deferred] + (*this)[Outcome::bounced];
}

Counts& Counts::operator+=(const Counts& other) noexcept {
  for (std::size_t i = 0; i < kOutcomes; ++i) n[i] += other.n[i];
  return *this;
}

std::int64_t Series::bucket_start(WallClock::time_point t) const noexcept {
  return floor_to(unix_seconds(t), width_.count());
}

void Series::add(WallClock::time_point t, Outcome outcome, std::uint64_t n) {
  buckets_[bucket_start(t)][outcome] += n;
  expire(t);
}

void Series::expire(WallClock::time_point now) {
  std::int64_t newest = bucket_start(now);
  if (!buckets_.empty()) newest = std::max(newest, buckets_.rbegin()->first);
  trim(newest);
}

void Series::trim(std::int64_t newest_start) {
  const std::int64_t oldest_kept = newest_start - static_cast<std::int64_t>(capacity_ - 1) * width_.count();
  buckets_.erase(buckets_.begin(), buckets_.lower_bound(oldest_kept));
  while (buckets_.size() > capacity_) buckets_.erase(buckets_.begin());  // cannot happen; bounded anyway
}

std::vector<Bucket> Series::dense(WallClock::time_point now) const {
  std::vector<Bucket> out;
  out.reserve(capacity_);
  const std::int64_t last = bucket_start(now);
  const std::int64_t w = width_.count();
  for (std::size_t i = 0; i < capacity_; ++i) {
    const std::int64_t start = last - static_cast<std::int64_t>(capacity_ - 1 - i) * w;
    Bucket b{start, {}};
    if (auto it = buckets_.find(start); it != buckets_.end()) b.counts = it->second;
    out.push_back(b);
  }
  return out;
}

Counts Series::total() const noexcept {
  Counts sum;
  for (const auto& [start, c] : buckets_) sum += c;
  return sum;
}

bool Series::put(std::int64_t start, const Counts& counts) {
  if (floor_to(start, width_.count()) != start) return false;
  buckets_[start] = counts;
  return true;
}

std::string iso8601_utc(std::int64_t unix_seconds) {
  const std::time_t t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string recipient_domain(std::string_view address) {
  const auto at = address.rfind('@');
  if (at == std::string_view::npos) return {};
  std::string d(address.substr(at + 1));
  for (auto& ch : d) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return d;
}

void record(History& history, WallClock::time_point now, const RecipientResult& result) {
  const Outcome outcome = classify(result);
  history.fine.add(now, outcome);
  history.daily.add(now, outcome);

  const std::string domain = cut(recipient_domain(result.recipient.address));
  auto it = std::find_if(history.domains.begin(), history.domains.end(),
                         [&](const DomainState& d) { return d.domain == domain; });
  if (it == history.domains.end()) {
    if (history.domains.size() >= kMaxDomains) {
      // Replace the least busy domain (the one seen longest ago among equals).
      auto victim = std::min_element(history.domains.begin(), history.domains.end(), [](const auto& a, const auto& b) {
        return a.results != b.results ? a.results < b.results : a.last_seen < b.last_seen;
      });
      *victim = DomainState{};
      it = victim;
    } else {
      history.domains.emplace_back();
      it = std::prev(history.domains.end());
    }
    it->domain = domain;
  }
  DomainState& d = *it;
  ++d.results;
  ++d.counts[outcome];
  d.dnssec_mx = cut(result.dnssec_mx);
  d.tls_feature = cut(result.tls.feature);
  d.last_trust = cut(result.tls.trust);
  d.last_protocol = cut(result.tls.protocol);
  d.last_matched = cut(result.tls.matched);
  d.last_status = status_word(result.status);
  d.last_dsn = cut(result.dsn);
  d.last_seen = unix_seconds(now);
}

std::vector<DomainState> top_domains(const History& history, std::size_t n) {
  std::vector<DomainState> out = history.domains;
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
    if (a.results != b.results) return a.results > b.results;
    if (a.last_seen != b.last_seen) return a.last_seen > b.last_seen;
    return a.domain < b.domain;
  });
  if (out.size() > n) out.resize(n);
  return out;
}

std::string encode(const History& history, WallClock::time_point saved) {
  json domains = json::array();
  for (const auto& d : history.domains) {
    json counts = json::array();
    for (auto v : d.counts.n) counts.push_back(v);
    domains.push_back(json{{"domain", d.domain},
                           {"results", d.results},
                           {"counts", std::move(counts)},
                           {"dnssec_mx", d.dnssec_mx},
                           {"tls_feature", d.tls_feature},
                           {"trust", d.last_trust},
                           {"protocol", d.last_protocol},
                           {"matched", d.last_matched},
                           {"status", d.last_status},
                           {"dsn", d.last_dsn},
                           {"last_seen", d.last_seen}});
  }
  json j{{"format", kFormatName},
         {"version", kFormatVersion},
         {"saved", unix_seconds(saved)},
         {"fine", encode_series(history.fine)},
         {"daily", encode_series(history.daily)},
         {"domains", std::move(domains)}};
  // Replacement instead of an exception for invalid UTF-8 from mail or DNS.
  return j.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
}

std::optional<History> decode(std::string_view text, std::string* error) {
  auto fail = [&](const std::string& why) -> std::optional<History> {
    if (error) *error = why;
    return std::nullopt;
  };
  const json j = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return fail("not valid JSON (truncated or corrupt)");
  if (!j.is_object()) return fail("not a JSON object");
  if (!j.contains("format") || j["format"] != std::string(kFormatName)) return fail("not a danerelay posture history");
  if (!j.contains("version") || !j["version"].is_number_integer()) return fail("no format version");
  if (j["version"].get<int>() != kFormatVersion)
    return fail("format version " + j["version"].dump() + " is not supported (this build reads version 1)");
  History h;
  std::string why;
  if (!j.contains("fine") || !decode_series(j["fine"], h.fine, "fine", &why)) return fail(why.empty() ? "no fine series" : why);
  if (!j.contains("daily") || !decode_series(j["daily"], h.daily, "daily", &why)) return fail(why.empty() ? "no daily series" : why);
  if (!j.contains("domains") || !j["domains"].is_array()) return fail("no domains array");
  if (j["domains"].size() > kMaxDomains) return fail("more domains than " + std::to_string(kMaxDomains));
  for (const auto& e : j["domains"]) {
    if (!e.is_object()) return fail("a domain entry is not an object");
    DomainState d;
    bool ok = get_string(e, "domain", d.domain) && get_string(e, "dnssec_mx", d.dnssec_mx) &&
              get_string(e, "tls_feature", d.tls_feature) && get_string(e, "trust", d.last_trust) &&
              get_string(e, "protocol", d.last_protocol) && get_string(e, "matched", d.last_matched) &&
              get_string(e, "status", d.last_status) && get_string(e, "dsn", d.last_dsn);
    if (!ok) return fail("a domain entry has a field of the wrong type");
    if (!e.contains("results") || !e["results"].is_number_unsigned()) return fail("a domain entry has no result count");
    d.results = e["results"].get<std::uint64_t>();
    if (!e.contains("counts") || !e["counts"].is_array() || e["counts"].size() != kOutcomes)
      return fail("a domain entry has no 6 counts");
    for (std::size_t i = 0; i < kOutcomes; ++i) {
      if (!e["counts"][i].is_number_unsigned()) return fail("a domain count is not a non-negative integer");
      d.counts.n[i] = e["counts"][i].get<std::uint64_t>();
    }
    if (e.contains("last_seen")) {
      if (!e["last_seen"].is_number_integer()) return fail("a domain's last_seen is not an integer");
      d.last_seen = e["last_seen"].get<std::int64_t>();
    }
    d.domain = cut(d.domain);
    h.domains.push_back(std::move(d));
  }
  return h;
}

}  // namespace danerelay::relay::posture
