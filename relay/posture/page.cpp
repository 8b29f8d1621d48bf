// relay/posture/page.cpp — the posture page as one HTML string: tables, two inline SVG plots, one
// hashed stylesheet (see page.hpp). Pure: the snapshot in, the page out.
#include "relay/posture/page.hpp"

#include <openssl/evp.h>
#include <openssl/sha.h>

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <ctime>
#include <map>

namespace danerelay::relay::posture {

namespace {

struct ClassInfo {
  Outcome outcome;
  const char* label;
  const char* colour;  // SVG fill; the same colours are in the stylesheet for the table keys
};

constexpr std::array<ClassInfo, kOutcomes> kClasses = {{
    {Outcome::verified, "DANE-verified", "#1b7837"},
    {Outcome::trusted, "trusted (DANE, MX insecure / PKIX)", "#5aae61"},
    {Outcome::unauthenticated, "TLS, unauthenticated", "#e6a400"},
    {Outcome::plaintext, "plaintext", "#c51b1b"},
    {Outcome::deferred, "deferred", "#8a8a8a"},
    {Outcome::bounced, "bounced", "#5b2a86"},
}};

constexpr std::string_view kStyle =
    "body{font-family:system-ui,-apple-system,'DejaVu Sans',sans-serif;margin:1.5rem auto;max-width:1000px;"
    "padding:0 1rem;color:#1d1d1d;background:#fff}"
    "h1{font-size:1.5rem;margin-bottom:.2rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #ddd}"
    "p.when{color:#555;margin-top:0}"
    "table{border-collapse:collapse;margin:.5rem 0;font-size:.9rem}"
    "th,td{border-bottom:1px solid #e3e3e3;padding:.25rem .6rem;text-align:left;vertical-align:top}"
    "td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}"
    "svg.plot{width:100%;height:auto;display:block;margin:.5rem 0}"
    "svg text{font-size:12px;fill:#333}svg text.t{font-size:13px;font-weight:bold}"
    "svg line.grid{stroke:#e0e0e0}svg line.axis{stroke:#555}"
    ".key{display:inline-block;width:.8em;height:.8em;margin-right:.4em;vertical-align:baseline}"
    ".k-verified{background:#1b7837}.k-trusted{background:#5aae61}.k-unauthenticated{background:#e6a400}"
    ".k-plaintext{background:#c51b1b}.k-deferred{background:#8a8a8a}.k-bounced{background:#5b2a86}"
    ".ok{color:#1b7837;font-weight:bold}.bad{color:#c51b1b;font-weight:bold}.muted{color:#777}"
    "pre{background:#f6f6f6;padding:.5rem;overflow-x:auto;font-size:.8rem}"
    "td.nw{white-space:nowrap}#domains{font-size:.82rem}#domains th,#domains td{padding:.25rem .4rem}";

// Appends one code point as UTF-8.
void put_utf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

std::string esc(std::string_view s) { return html_escape(s); }

std::string base64(const unsigned char* data, std::size_t n) {
  std::string out(4 * ((n + 2) / 3) + 1, '\0');
  const int len = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), data, static_cast<int>(n));
  out.resize(static_cast<std::size_t>(len));
  return out;
}

enum class Utc { date, month_day, hour_minute, minutes, month_day_time };

// UTC renderings with literal strftime formats (-Wformat-nonliteral).
std::string utc(std::int64_t t, Utc form) {
  const std::time_t tt = static_cast<std::time_t>(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[64];
  switch (form) {
    case Utc::date: std::strftime(buf, sizeof buf, "%Y-%m-%d", &tm); break;
    case Utc::month_day: std::strftime(buf, sizeof buf, "%m-%d", &tm); break;
    case Utc::hour_minute: std::strftime(buf, sizeof buf, "%H:%M", &tm); break;
    case Utc::minutes: std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M UTC", &tm); break;
    case Utc::month_day_time: std::strftime(buf, sizeof buf, "%m-%d %H:%M", &tm); break;
  }
  return buf;
}

std::string num(double v) { return fmt::format("{:.2f}", v); }

// A round upper bound for a count axis: 1, 2, 5, 10, 20, 50, …
std::uint64_t nice_ceiling(std::uint64_t v) {
  std::uint64_t m = 1;
  while (true) {
    for (std::uint64_t f : {1, 2, 5})
      if (f * m >= v) return f * m;
    m *= 10;
  }
}

// One plot: stacked shares of delivered mail per bucket (top panel, 0–100 %), deferrals and
// bounces as counts per bucket (bottom panel), axes with labels, a legend.
std::string plot(const std::vector<Bucket>& buckets, bool daily, std::string_view id, std::string_view title) {
  constexpr double W = 960, left = 64, right = 16, top0 = 44, top1 = 224, bot0 = 256, bot1 = 316, H = 350;
  const double plot_w = W - left - right;
  const double bw = plot_w / static_cast<double>(std::max<std::size_t>(buckets.size(), 1));
  std::string s = fmt::format(
      "<svg class=\"plot\" id=\"{}\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {} {}\" width=\"{}\" height=\"{}\" "
      "role=\"img\" aria-label=\"{}\">\n<title>{}</title>\n",
      id, W, H, W, H, esc(title), esc(title));
  // Legend.
  double lx = left;
  for (const auto& c : kClasses) {
    s += fmt::format("<rect x=\"{}\" y=\"8\" width=\"11\" height=\"11\" fill=\"{}\"/><text x=\"{}\" y=\"18\">{}</text>\n",
                     num(lx), c.colour, num(lx + 15), esc(c.label));
    lx += c.outcome == Outcome::trusted ? 250 : (c.outcome == Outcome::unauthenticated ? 160 : (c.outcome == Outcome::verified ? 125 : 95));
  }
  // Top panel: grid and y axis in percent.
  for (int pct = 0; pct <= 100; pct += 25) {
    const double y = top1 - (top1 - top0) * pct / 100.0;
    s += fmt::format("<line class=\"grid\" x1=\"{}\" x2=\"{}\" y1=\"{}\" y2=\"{}\"/>"
                     "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{} %</text>\n",
                     num(left), num(W - right), num(y), num(y), num(left - 6), num(y + 4), pct);
  }
  s += fmt::format("<text x=\"14\" y=\"{}\" transform=\"rotate(-90 14 {})\" text-anchor=\"middle\">share of delivered</text>\n",
                   num((top0 + top1) / 2), num((top0 + top1) / 2));
  // Bottom panel scale.
  std::uint64_t max_fail = 0;
  std::uint64_t delivered_all = 0;
  for (const auto& b : buckets) {
    max_fail = std::max(max_fail, b.counts[Outcome::deferred] + b.counts[Outcome::bounced]);
    delivered_all += b.counts.delivered();
  }
  const std::uint64_t fail_top = nice_ceiling(std::max<std::uint64_t>(max_fail, 1));
  s += fmt::format("<line class=\"grid\" x1=\"{0}\" x2=\"{1}\" y1=\"{2}\" y2=\"{2}\"/>"
                   "<text x=\"{3}\" y=\"{4}\" text-anchor=\"end\">{5}</text>"
                   "<text x=\"{3}\" y=\"{6}\" text-anchor=\"end\">0</text>\n",
                   num(left), num(W - right), num(bot0), num(left - 6), num(bot0 + 4), fail_top, num(bot1 + 4));
  s += fmt::format("<text x=\"14\" y=\"{0}\" transform=\"rotate(-90 14 {0})\" text-anchor=\"middle\">not delivered</text>\n",
                   num((bot0 + bot1) / 2));

  // Bars, one group per bucket with a tooltip.
  for (std::size_t i = 0; i < buckets.size(); ++i) {
    const auto& b = buckets[i];
    if (b.counts.total() == 0) continue;
    const double x = left + bw * static_cast<double>(i);
    const std::string from = daily ? utc(b.start, Utc::date) : utc(b.start, Utc::hour_minute);
    std::string tip = from + (daily ? " UTC" : "–" + utc(b.start + 300, Utc::hour_minute) + " UTC") + ":";
    for (const auto& c : kClasses) tip += fmt::format(" {} {},", b.counts[c.outcome], c.label);
    tip.pop_back();
    s += fmt::format("<g data-start=\"{}\"><title>{}</title>", b.start, esc(tip));
    const std::uint64_t delivered = b.counts.delivered();
    double y = top1;
    for (const auto& c : kClasses) {
      if (c.outcome == Outcome::deferred) break;
      if (delivered == 0 || b.counts[c.outcome] == 0) continue;
      const double h = (top1 - top0) * static_cast<double>(b.counts[c.outcome]) / static_cast<double>(delivered);
      y -= h;
      s += fmt::format("<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{}\"/>", num(x), num(y), num(bw), num(h),
                       c.colour);
    }
    double fy = bot1;
    for (Outcome o : {Outcome::deferred, Outcome::bounced}) {
      if (b.counts[o] == 0) continue;
      const double h = (bot1 - bot0) * static_cast<double>(b.counts[o]) / static_cast<double>(fail_top);
      fy -= h;
      s += fmt::format("<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{}\"/>", num(x), num(fy), num(bw), num(h),
                       kClasses[static_cast<std::size_t>(o)].colour);
    }
    s += "</g>\n";
  }
  if (delivered_all == 0) {
    s += fmt::format("<text class=\"t\" x=\"{}\" y=\"{}\" text-anchor=\"middle\">no mail delivered in this period yet</text>\n",
                     num(left + plot_w / 2), num((top0 + top1) / 2));
  }
  // Axes and the time labels: every 3 hours for the 24-hour plot, every 5 days for the 30-day one.
  s += fmt::format("<line class=\"axis\" x1=\"{0}\" x2=\"{0}\" y1=\"{1}\" y2=\"{2}\"/>"
                   "<line class=\"axis\" x1=\"{0}\" x2=\"{3}\" y1=\"{2}\" y2=\"{2}\"/>"
                   "<line class=\"axis\" x1=\"{0}\" x2=\"{0}\" y1=\"{4}\" y2=\"{5}\"/>"
                   "<line class=\"axis\" x1=\"{0}\" x2=\"{3}\" y1=\"{5}\" y2=\"{5}\"/>\n",
                   num(left), num(top0), num(top1), num(W - right), num(bot0), num(bot1));
  for (std::size_t i = 0; i < buckets.size(); ++i) {
    const auto start = buckets[i].start;
    const bool tick = daily ? (i % 5 == 4 || i + 1 == buckets.size()) : start % 10800 == 0;
    if (!tick) continue;
    const double x = left + bw * static_cast<double>(i) + (daily ? bw / 2 : 0);
    s += fmt::format("<line class=\"axis\" x1=\"{0}\" x2=\"{0}\" y1=\"{1}\" y2=\"{2}\"/>"
                     "<text x=\"{0}\" y=\"{3}\" text-anchor=\"middle\">{4}</text>\n",
                     num(x), num(bot1), num(bot1 + 5), num(bot1 + 20), daily ? utc(start, Utc::month_day) : utc(start, Utc::hour_minute));
  }
  s += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"end\" class=\"muted\">{}</text>\n", num(W - right), num(H - 2),
                   daily ? "UTC days" : "UTC, 5-minute buckets");
  s += "</svg>\n";
  return s;
}

std::string shares_table(const Counts& c, std::string_view id, std::string_view period) {
  const auto delivered = c.delivered();
  std::string s = fmt::format(
      "<table class=\"shares\" id=\"{}\" data-period=\"{}\" data-delivered=\"{}\">\n"
      "<tr><th>{}</th><th class=\"n\">messages</th><th class=\"n\">share of delivered</th></tr>\n",
      id, period, delivered, esc(period));
  for (const auto& k : kClasses) {
    const auto n = c[k.outcome];
    const bool part_of_delivered = k.outcome != Outcome::deferred && k.outcome != Outcome::bounced;
    if (k.outcome == Outcome::deferred) {
      s += fmt::format("<tr data-outcome=\"delivered\"><th>delivered</th><td class=\"n\" data-count=\"{0}\">{0}</td>"
                       "<td class=\"n\">{1}</td></tr>\n",
                       delivered, delivered == 0 ? "—" : "100.0 %");
    }
    const std::string share = part_of_delivered ? format_share(n, delivered) : "";
    s += fmt::format("<tr data-outcome=\"{}\"><td><span class=\"key k-{}\"></span>{}</td><td class=\"n\" data-count=\"{}\">{}</td>",
                     to_string(k.outcome), to_string(k.outcome), esc(k.label), n, n);
    if (part_of_delivered && delivered > 0)
      s += fmt::format("<td class=\"n\" data-share=\"{0}\">{0} %</td></tr>\n", share);
    else
      s += "<td class=\"n muted\">—</td></tr>\n";
  }
  s += "</table>\n";
  return s;
}

std::string describe_tls(const DomainState& d) {
  if (d.last_trust.empty()) return d.last_status == "sent" ? "plaintext" : "no TLS session";
  std::string s = d.last_trust;
  if (!d.last_protocol.empty()) s += ", " + d.last_protocol;
  if (!d.last_matched.empty()) {
    std::string rec = d.last_matched;
    if (rec.size() > 14) rec = rec.substr(0, 14) + "…";
    s += ", matched " + rec;
  }
  return s;
}

}  // namespace

std::string html_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size() + 16);
  std::size_t i = 0;
  const auto n = text.size();
  auto byte = [&](std::size_t k) { return static_cast<unsigned char>(text[k]); };
  while (i < n) {
    const unsigned char c = byte(i);
    if (c < 0x80) {
      switch (c) {
        case '&': out += "&amp;"; break;
        case '<': out += "&lt;"; break;
        case '>': out += "&gt;"; break;
        case '"': out += "&quot;"; break;
        case '\'': out += "&#39;"; break;
        case '\n':
        case '\t': out += static_cast<char>(c); break;
        default:
          if (c < 0x20 || c == 0x7F) put_utf8(out, 0xFFFD);
          else out += static_cast<char>(c);
      }
      ++i;
      continue;
    }
    // A well-formed UTF-8 sequence (no overlongs, no surrogates, ≤ U+10FFFF) is kept as it is.
    std::size_t len = 0;
    char32_t cp = 0;
    if (c >= 0xC2 && c <= 0xDF) { len = 2; cp = c & 0x1F; }
    else if (c >= 0xE0 && c <= 0xEF) { len = 3; cp = c & 0x0F; }
    else if (c >= 0xF0 && c <= 0xF4) { len = 4; cp = c & 0x07; }
    bool ok = len != 0 && i + len <= n;
    for (std::size_t k = 1; ok && k < len; ++k) {
      if ((byte(i + k) & 0xC0) != 0x80) ok = false;
      else cp = (cp << 6) | (byte(i + k) & 0x3F);
    }
    if (ok && ((len == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF))))
      ok = false;
    if (!ok) {
      put_utf8(out, 0xFFFD);
      ++i;
      continue;
    }
    out.append(text.substr(i, len));
    i += len;
  }
  return out;
}

std::string format_share(std::uint64_t count, std::uint64_t delivered) {
  if (delivered == 0) return "0.0";
  return fmt::format("{:.1f}", 100.0 * static_cast<double>(count) / static_cast<double>(delivered));
}

std::string dane_state(std::string_view feature) {
  std::string_view base = feature;
  const bool fallback = base.ends_with(":none");
  if (fallback) base.remove_suffix(5);
  std::string s;
  if (base.empty()) s = "not resolved";
  else if (base == "dane") s = "DANE";
  else if (base == "dane-only") s = "DANE (mandatory)";
  else if (base == "dane:halfdane") s = "TLSA, MX insecure";
  else if (base == "dane:encrypt") s = "TLSA unusable";
  else if (base == "dane:may") s = "no secure TLSA";
  else s = "off (policy " + std::string(base) + ")";
  if (fallback) s += "; plaintext retry";
  return s;
}

std::string format_utc_minutes(std::int64_t unix_seconds) { return utc(unix_seconds, Utc::minutes); }

std::string format_age(Seconds age) {
  auto s = std::max<std::int64_t>(age.count(), 0);
  const std::int64_t d = s / 86400, h = s % 86400 / 3600, m = s % 3600 / 60, sec = s % 60;
  if (d > 0) return h > 0 ? fmt::format("{}d {}h", d, h) : fmt::format("{}d", d);
  if (h > 0) return m > 0 ? fmt::format("{}h {}m", h, m) : fmt::format("{}h", h);
  if (m > 0) return sec > 0 ? fmt::format("{}m {}s", m, sec) : fmt::format("{}m", m);
  return fmt::format("{}s", sec);
}

QueueState queue_state(const std::vector<QueueEntry>& entries, WallClock::time_point now) {
  QueueState q;
  q.messages = entries.size();
  const auto now_s = std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
  struct Acc {
    std::int64_t oldest = 0;
    std::string reason;
    std::size_t messages = 0, recipients = 0;
  };
  std::map<std::string, Acc> by_domain;
  for (const auto& e : entries) {
    std::map<std::string, bool> seen_in_message;
    for (const auto& r : e.recipients) {
      if (r.delay_reason.empty()) continue;
      const auto domain = std::string(recipient_domain(r.address).substr(0, kMaxDomainLength));
      auto [it, fresh] = by_domain.try_emplace(domain);
      Acc& a = it->second;
      ++a.recipients;
      if (!seen_in_message[domain]) {
        seen_in_message[domain] = true;
        ++a.messages;
      }
      if (fresh || e.arrival_time < a.oldest) {
        a.oldest = e.arrival_time;
        a.reason = r.delay_reason;
      }
    }
  }
  for (auto& [domain, a] : by_domain)
    q.deferred.push_back({domain, std::move(a.reason), Seconds(now_s - a.oldest), a.messages, a.recipients});
  std::sort(q.deferred.begin(), q.deferred.end(), [](const auto& x, const auto& y) {
    return x.age != y.age ? x.age > y.age : x.domain < y.domain;
  });
  return q;
}

std::string_view page_style() noexcept { return kStyle; }

std::string content_security_policy(std::string_view style) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  unsigned int len = 0;
  EVP_Digest(style.data(), style.size(), digest, &len, EVP_sha256(), nullptr);
  return "default-src 'none'; style-src 'sha256-" + base64(digest, len) +
         "'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";
}

Page render_page(const Snapshot& snap) {
  const auto now_s = std::chrono::duration_cast<std::chrono::seconds>(snap.now.time_since_epoch()).count();
  const auto fine = snap.history.fine.dense(snap.now);
  const auto daily = snap.history.daily.dense(snap.now);
  Counts fine_total, daily_total;
  for (const auto& b : fine) fine_total += b.counts;
  for (const auto& b : daily) daily_total += b.counts;

  std::string h;
  h.reserve(64 * 1024);
  const std::string host = snap.hostname.empty() ? std::string("danerelay") : snap.hostname;
  h += "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
       "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n";
  h += "<title>danerelay posture — " + esc(host) + "</title>\n";
  h += "<style>" + std::string(kStyle) + "</style>\n</head>\n<body>\n";
  h += "<h1>Outbound mail posture of " + esc(host) + "</h1>\n";
  h += "<p class=\"when\" id=\"now\" data-now=\"" + std::to_string(now_s) + "\">as of " + format_utc_minutes(now_s) +
       " · how delivered mail left: DANE-verified, trusted, TLS without authentication, or plaintext</p>\n";

  // Totals in words first, then the numbers behind the plots.
  h += "<h2>Last 24 hours</h2>\n";
  if (fine_total.total() == 0) {
    h += "<p id=\"empty-24h\" class=\"muted\">No mail yet: nothing was delivered, deferred or bounced in the last 24 hours.</p>\n";
  } else {
    h += fmt::format("<p>{} delivered ({} % DANE-verified), {} deferral{}, {} bounced.</p>\n", fine_total.delivered(),
                     format_share(fine_total[Outcome::verified], fine_total.delivered()), fine_total[Outcome::deferred],
                     fine_total[Outcome::deferred] == 1 ? "" : "s", fine_total[Outcome::bounced]);
  }
  h += plot(fine, false, "plot-24h", "Shares of delivered mail, last 24 hours (5-minute buckets); deferrals and bounces below");
  h += shares_table(fine_total, "shares-24h", "last 24 hours");

  h += "<h2>Last 30 days</h2>\n";
  if (daily_total.total() == 0) {
    h += "<p id=\"empty-30d\" class=\"muted\">No mail yet: nothing was delivered, deferred or bounced in the last 30 days.</p>\n";
  } else {
    h += fmt::format("<p>{} delivered ({} % DANE-verified), {} deferral{}, {} bounced.</p>\n", daily_total.delivered(),
                     format_share(daily_total[Outcome::verified], daily_total.delivered()), daily_total[Outcome::deferred],
                     daily_total[Outcome::deferred] == 1 ? "" : "s", daily_total[Outcome::bounced]);
  }
  h += plot(daily, true, "plot-30d", "Shares of delivered mail, last 30 days (UTC days); deferrals and bounces below");
  h += shares_table(daily_total, "shares-30d", "last 30 days");

  // Destinations.
  const auto top = top_domains(snap.history, snap.top_domains);
  h += "<h2>Top destination domains</h2>\n";
  if (top.empty()) {
    h += "<p id=\"empty-domains\" class=\"muted\">No destination seen yet.</p>\n";
  } else {
    h += "<table id=\"domains\">\n<tr><th>domain</th><th class=\"n\">results</th><th class=\"n\">delivered</th>"
         "<th class=\"n\">deferred</th><th class=\"n\">bounced</th><th>MX DNSSEC</th><th>DANE</th><th>last TLS</th>"
         "<th>last result</th><th>last seen (UTC)</th></tr>\n";
    for (const auto& d : top) {
      h += fmt::format(
          "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>"
          "<td>{}</td><td>{}</td><td>{}</td><td class=\"nw\">{}</td><td class=\"nw\">{}</td></tr>\n",
          d.domain.empty() ? std::string("(no domain)") : esc(d.domain), d.results, d.counts.delivered(),
          d.counts[Outcome::deferred], d.counts[Outcome::bounced], d.dnssec_mx.empty() ? "—" : esc(d.dnssec_mx),
          esc(dane_state(d.tls_feature)), esc(describe_tls(d)),
          esc(d.last_status + (d.last_dsn.empty() ? "" : " " + d.last_dsn)), utc(d.last_seen, Utc::month_day_time));
    }
    h += "</table>\n";
  }

  // The queue.
  h += fmt::format("<h2>Queue</h2>\n<p id=\"queue\" data-messages=\"{}\">{} message{} in the queue.</p>\n", snap.queue.messages,
                   snap.queue.messages, snap.queue.messages == 1 ? "" : "s");
  if (snap.queue.deferred.empty()) {
    h += "<p id=\"empty-deferred\" class=\"muted\">No deferred destination.</p>\n";
  } else {
    h += "<table id=\"deferred\">\n<tr><th>deferred domain</th><th class=\"n\">messages</th><th class=\"n\">recipients</th>"
         "<th class=\"n\">oldest</th><th>reason</th></tr>\n";
    for (const auto& d : snap.queue.deferred) {
      h += fmt::format("<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td>{}</td></tr>\n",
                       d.domain.empty() ? std::string("(no domain)") : esc(d.domain), d.messages, d.recipients,
                       format_age(d.age), esc(d.reason));
    }
    h += "</table>\n";
  }

  // DNSSEC.
  h += "<h2>DNSSEC</h2>\n<table id=\"dnssec\">\n<tr><th>self-test (. DNSKEY)</th><td>";
  if (!snap.dnssec.self_test_done) h += "<span class=\"muted\">not finished yet</span>";
  else if (snap.dnssec.self_test_ok) h += "<span class=\"ok\">passed</span>";
  else h += "<span class=\"bad\">FAILED</span>";
  if (!snap.dnssec.self_test_text.empty()) h += " " + esc(snap.dnssec.self_test_text);
  h += "</td></tr>\n<tr><th>trust anchor</th><td>" + (snap.dnssec.trust_anchor.empty() ? "—" : esc(snap.dnssec.trust_anchor)) +
       "</td></tr>\n</table>\n";
  if (!snap.dnssec.trust_anchor_text.empty()) h += "<pre id=\"trust-anchor\">" + esc(snap.dnssec.trust_anchor_text) + "</pre>\n";
  h += "</body>\n</html>\n";

  Page page;
  page.body = std::move(h);
  page.headers = {
      {"Content-Security-Policy", content_security_policy(kStyle)},
      {"X-Content-Type-Options", "nosniff"},
      {"Referrer-Policy", "no-referrer"},
      {"Cache-Control", "no-store"},
  };
  return page;
}

}  // namespace danerelay::relay::posture
