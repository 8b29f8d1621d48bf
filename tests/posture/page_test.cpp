// tests/posture/page_test.cpp — the posture page as a string: self-contained (no script, no
// outside reference, no inline style attribute), its CSP hash equal to the SHA-256 of the one
// stylesheet, the shares as numbers equal to the counts, the empty state, every mail/DNS string
// escaped (a hostile domain, reason and trust-anchor text), and the small pure helpers.
#include "relay/posture/page.hpp"

#include <gtest/gtest.h>

#include <openssl/evp.h>

#include <regex>
#include <string>

#include "tests/posture/fixture.hpp"

namespace {

using namespace danerelay::relay;
using namespace danerelay::relay::posture;
using danerelay::testsupport::kPostureEpoch;
using std::chrono::hours;
using std::chrono::minutes;

bool has(const std::string& s, const std::string& what) { return s.find(what) != std::string::npos; }

std::string header(const Page& p, const std::string& name) {
  for (const auto& [k, v] : p.headers)
    if (k == name) return v;
  return {};
}

Snapshot snapshot_with_mail() {
  using namespace danerelay::testsupport;
  Snapshot s;
  s.now = kPostureEpoch + hours(12);
  s.hostname = "relay.example.org";
  auto at = [&](std::chrono::minutes ago, const RecipientResult& r) { record(s.history, s.now - ago, r); };
  for (int i = 0; i < 6; ++i) at(minutes(5 * i), verified("u@secure.test"));
  at(minutes(30), trusted("u@mxinsecure.test"));
  at(minutes(30), pkix("u@partner.test"));
  at(minutes(60), untrusted("u@unusable.test"));
  at(minutes(90), plaintext("u@insecure.test"));
  at(minutes(90), deferred("u@bogus-ds.test"));
  at(minutes(95), bounced("u@nullmx.test"));
  return s;
}

// data-outcome="X" … data-count="N" in the table with the given id.
std::uint64_t shown_count(const std::string& body, const std::string& table, const std::string& outcome) {
  const auto start = body.find("id=\"" + table + "\"");
  const auto end = body.find("</table>", start);
  const std::string t = body.substr(start, end - start);
  std::smatch m;
  const std::regex re("data-outcome=\"" + outcome + "\"[^\\n]*?data-count=\"([0-9]+)\"");
  if (!std::regex_search(t, m, re)) return ~0ull;
  return std::stoull(m[1]);
}

std::string shown_share(const std::string& body, const std::string& table, const std::string& outcome) {
  const auto start = body.find("id=\"" + table + "\"");
  const auto end = body.find("</table>", start);
  const std::string t = body.substr(start, end - start);
  std::smatch m;
  const std::regex re("data-outcome=\"" + outcome + "\"[^\\n]*?data-share=\"([0-9.]+)\"");
  if (!std::regex_search(t, m, re)) return "none";
  return m[1];
}

TEST(PosturePage, ShowsTheSharesAsNumbersEqualToTheCounts) {
  const auto page = render_page(snapshot_with_mail());
  for (const char* table : {"shares-24h", "shares-30d"}) {
    EXPECT_EQ(shown_count(page.body, table, "verified"), 6u) << table;
    EXPECT_EQ(shown_count(page.body, table, "trusted"), 2u) << table;
    EXPECT_EQ(shown_count(page.body, table, "unauthenticated"), 1u) << table;
    EXPECT_EQ(shown_count(page.body, table, "plaintext"), 1u) << table;
    EXPECT_EQ(shown_count(page.body, table, "delivered"), 10u) << table;
    EXPECT_EQ(shown_count(page.body, table, "deferred"), 1u) << table;
    EXPECT_EQ(shown_count(page.body, table, "bounced"), 1u) << table;
    EXPECT_EQ(shown_share(page.body, table, "verified"), "60.0") << table;
    EXPECT_EQ(shown_share(page.body, table, "trusted"), "20.0") << table;
    EXPECT_EQ(shown_share(page.body, table, "plaintext"), "10.0") << table;
  }
  EXPECT_TRUE(has(page.body, "10 delivered (60.0 % DANE-verified), 1 deferral, 1 bounced.")) << page.body;
  EXPECT_TRUE(has(page.body, "Outbound mail posture of relay.example.org"));
  EXPECT_TRUE(has(page.body, "as of 2030-01-01 12:00 UTC"));
  EXPECT_EQ(page.content_type, "text/html; charset=utf-8");
}

TEST(PosturePage, DrawsBothPlotsWithAxesLegendAndOneBarGroupPerBusyBucket) {
  const auto page = render_page(snapshot_with_mail());
  EXPECT_TRUE(has(page.body, "<svg class=\"plot\" id=\"plot-24h\""));
  EXPECT_TRUE(has(page.body, "<svg class=\"plot\" id=\"plot-30d\""));
  EXPECT_TRUE(has(page.body, ">100 %</text>"));
  EXPECT_TRUE(has(page.body, ">share of delivered</text>"));
  EXPECT_TRUE(has(page.body, ">DANE-verified</text>")) << "legend";
  EXPECT_TRUE(has(page.body, ">12:00</text>")) << "a 3-hourly time label";
  const auto p24 = page.body.substr(page.body.find("id=\"plot-24h\""), page.body.find("id=\"plot-30d\"") - page.body.find("id=\"plot-24h\""));
  std::size_t groups = 0;
  for (auto at = p24.find("<g data-start="); at != std::string::npos; at = p24.find("<g data-start=", at + 1)) ++groups;
  EXPECT_EQ(groups, 10u) << "buckets at 0,5,10,15,20,25,30,60,90,95 minutes ago";
}

TEST(PosturePage, IsSelfContainedUnderAStrictPolicy) {
  auto snap = snapshot_with_mail();
  snap.queue.deferred.push_back({"bogus-ds.test", "4.4.3 Host or domain name not found", std::chrono::seconds(7200), 1, 1});
  snap.dnssec = {true, true, "validation works", "RFC 5011 managed: /var/lib/danerelay/root.key", ". IN DS 20326 8 2 E06D…"};
  const auto page = render_page(snap);
  EXPECT_FALSE(has(page.body, "<script"));
  EXPECT_FALSE(has(page.body, " style=")) << "inline style attributes would need 'unsafe-inline'";
  EXPECT_FALSE(has(page.body, " src="));
  EXPECT_FALSE(has(page.body, " href="));
  EXPECT_FALSE(has(page.body, "url("));
  std::string rest = page.body;
  for (auto at = rest.find("xmlns=\"http://www.w3.org/2000/svg\""); at != std::string::npos;
       at = rest.find("xmlns=\"http://www.w3.org/2000/svg\""))
    rest.erase(at, 34);
  EXPECT_FALSE(has(rest, "http:"));
  EXPECT_FALSE(has(rest, "https:"));

  const auto csp = header(page, "Content-Security-Policy");
  EXPECT_EQ(csp.rfind("default-src 'none'; ", 0), 0u) << csp;
  EXPECT_FALSE(has(csp, "unsafe")) << csp;
  EXPECT_FALSE(has(csp, "script-src")) << csp;
  EXPECT_EQ(header(page, "X-Content-Type-Options"), "nosniff");

  // The hash covers exactly the text of the one <style> element, computed here independently.
  const auto open = page.body.find("<style>");
  const auto close = page.body.find("</style>");
  ASSERT_NE(open, std::string::npos);
  EXPECT_EQ(page.body.find("<style", open + 1), std::string::npos) << "one stylesheet";
  const std::string style = page.body.substr(open + 7, close - open - 7);
  unsigned char md[32];
  unsigned int len = 0;
  EVP_Digest(style.data(), style.size(), md, &len, EVP_sha256(), nullptr);
  unsigned char b64[64];
  EVP_EncodeBlock(b64, md, 32);
  EXPECT_TRUE(has(csp, "style-src 'sha256-" + std::string(reinterpret_cast<char*>(b64)) + "'")) << csp;
}

TEST(PosturePage, WithNoMailYetSaysSoAndStillDrawsTheAxes) {
  Snapshot s;
  s.now = kPostureEpoch;
  const auto page = render_page(s);
  EXPECT_TRUE(has(page.body, "id=\"empty-24h\""));
  EXPECT_TRUE(has(page.body, "id=\"empty-30d\""));
  EXPECT_TRUE(has(page.body, "No destination seen yet."));
  EXPECT_TRUE(has(page.body, "No deferred destination."));
  EXPECT_TRUE(has(page.body, "0 messages in the queue."));
  EXPECT_TRUE(has(page.body, "no mail delivered in this period yet"));
  EXPECT_TRUE(has(page.body, "not finished yet")) << "self-test state before it ran";
  EXPECT_EQ(shown_count(page.body, "shares-24h", "verified"), 0u);
  EXPECT_FALSE(has(page.body, "data-share=")) << "no share of nothing";
  EXPECT_FALSE(has(page.body, "nan"));
}

TEST(PosturePage, EscapesEveryStringFromMailAndDns) {
  const std::string evil = "<script>alert(1)</script>\"'&.evil.test";
  Snapshot s;
  s.now = kPostureEpoch;
  auto r = danerelay::testsupport::verified("x@" + evil);
  r.tls.matched = "3 1 1 <b>";
  r.tls.feature = "<i>feature";
  r.dnssec_mx = "<u>secure";
  record(s.history, s.now, r);
  s.queue.deferred.push_back({evil, "4.7.5 <img src=x onerror=alert(1)> \"quoted\"", std::chrono::seconds(60), 1, 1});
  s.dnssec = {true, false, "<svg onload=alert(1)>", "</td><script>x</script>", "</pre><script>alert(2)</script>"};
  s.hostname = "<h1>relay";
  const auto page = render_page(s);
  EXPECT_FALSE(has(page.body, "<script"));
  EXPECT_FALSE(has(page.body, "<img"));
  EXPECT_FALSE(has(page.body, "<b>"));
  EXPECT_FALSE(has(page.body, "<i>"));
  EXPECT_FALSE(has(page.body, "<u>"));
  EXPECT_FALSE(has(page.body, "<svg onload"));
  EXPECT_FALSE(has(page.body, "<h1>relay"));
  EXPECT_FALSE(has(page.body, "</pre><"));
  EXPECT_TRUE(has(page.body, "&lt;script&gt;alert(1)&lt;/script&gt;&quot;&#39;&amp;.evil.test"));
  EXPECT_TRUE(has(page.body, "&lt;img src=x onerror=alert(1)&gt; &quot;quoted&quot;"));
  EXPECT_TRUE(has(page.body, "<span class=\"bad\">FAILED</span>"));
}

TEST(PosturePage, HtmlEscapeReplacesControlsAndInvalidUtf8) {
  EXPECT_EQ(html_escape("a&b<c>d\"e'f"), "a&amp;b&lt;c&gt;d&quot;e&#39;f");
  EXPECT_EQ(html_escape("bücher.test"), "bücher.test");
  EXPECT_EQ(html_escape("\xF0\x9F\x93\xA7"), "\xF0\x9F\x93\xA7");
  EXPECT_EQ(html_escape("a\x01" "b"), "a\xEF\xBF\xBD" "b");
  EXPECT_EQ(html_escape("a\xFF" "b"), "a\xEF\xBF\xBD" "b");
  EXPECT_EQ(html_escape("\xC3"), "\xEF\xBF\xBD") << "truncated sequence";
  EXPECT_EQ(html_escape("\xC0\xBC"), "\xEF\xBF\xBD\xEF\xBF\xBD") << "overlong '<'";
  EXPECT_EQ(html_escape("\xED\xA0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD") << "surrogate";
  EXPECT_EQ(html_escape("line\nnext\ttab"), "line\nnext\ttab");
}

TEST(PosturePage, DaneStateInWords) {
  const std::pair<const char*, const char*> table[] = {
      {"dane", "DANE"},
      {"dane-only", "DANE (mandatory)"},
      {"dane:halfdane", "TLSA, MX insecure"},
      {"dane:encrypt", "TLSA unusable"},
      {"dane:may", "no secure TLSA"},
      {"dane:may:none", "no secure TLSA; plaintext retry"},
      {"verify", "off (policy verify)"},
      {"", "not resolved"},
  };
  for (const auto& [feature, want] : table) EXPECT_EQ(dane_state(feature), want) << feature;
}

TEST(PosturePage, AgesAndShares) {
  EXPECT_EQ(format_age(std::chrono::seconds(45)), "45s");
  EXPECT_EQ(format_age(std::chrono::seconds(125)), "2m 5s");
  EXPECT_EQ(format_age(std::chrono::seconds(7200)), "2h");
  EXPECT_EQ(format_age(std::chrono::seconds(93784)), "1d 2h");
  EXPECT_EQ(format_age(std::chrono::seconds(-5)), "0s");
  EXPECT_EQ(format_share(1, 3), "33.3");
  EXPECT_EQ(format_share(2, 3), "66.7");
  EXPECT_EQ(format_share(0, 0), "0.0");
}

TEST(PosturePage, QueueStateGroupsDeferredRecipientsByDomainOldestFirst) {
  const auto now = kPostureEpoch + hours(10);
  const auto at = [&](std::chrono::hours ago) {
    return std::chrono::duration_cast<std::chrono::seconds>((now - ago).time_since_epoch()).count();
  };
  std::vector<QueueEntry> entries(3);
  entries[0].arrival_time = at(hours(1));
  entries[0].recipients = {{"a@twomx.test", "", "4.7.5 newer reason"}, {"b@twomx.test", "", "4.7.5 newer reason"}};
  entries[1].arrival_time = at(hours(5));
  entries[1].recipients = {{"c@TwoMX.test", "", "4.7.5 older reason"}, {"d@bogus-ds.test", "", "4.4.3 dns"}};
  entries[2].arrival_time = at(hours(0));
  entries[2].recipients = {{"e@new.test", "", ""}};  // not tried yet: no reason, not deferred
  const auto q = queue_state(entries, now);
  EXPECT_EQ(q.messages, 3u);
  ASSERT_EQ(q.deferred.size(), 2u);
  EXPECT_EQ(q.deferred[0].domain, "bogus-ds.test");
  EXPECT_EQ(q.deferred[0].age, std::chrono::seconds(5 * 3600));
  EXPECT_EQ(q.deferred[1].domain, "twomx.test");
  EXPECT_EQ(q.deferred[1].reason, "4.7.5 older reason");
  EXPECT_EQ(q.deferred[1].messages, 2u);
  EXPECT_EQ(q.deferred[1].recipients, 3u);
}

}  // namespace
