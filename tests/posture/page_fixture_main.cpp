// tests/posture/page_fixture_main.cpp — `posture_page_fixture DIR`: the posture page for the
// browser test (tests/browser). Records a known mix of results at virtual times spanning many
// 5-minute buckets and several days, renders the page, and writes DIR/page.html, DIR/headers.json
// (content type and the headers render_page() returns, which the test's server sends) and
// DIR/expected.json (what was recorded, tallied here independently of the history code).
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <string>

#include "relay/posture/page.hpp"
#include "tests/posture/fixture.hpp"

int main(int argc, char** argv) {
  using namespace danerelay;
  using namespace danerelay::relay::posture;
  using std::chrono::days;
  using std::chrono::hours;
  using std::chrono::minutes;
  if (argc != 2) {
    std::cerr << "usage: posture_page_fixture DIR\n";
    return 64;
  }
  const std::filesystem::path dir = argv[1];
  std::filesystem::create_directories(dir);

  Snapshot snap;
  snap.now = testsupport::kPostureEpoch + days(14) + hours(14) + minutes(37);  // 2030-01-15 14:37 UTC
  snap.hostname = "relay.example.org";
  std::map<std::string, std::map<std::string, int>> expected;  // window → outcome → count
  auto put = [&](WallClock::time_point t, const relay::RecipientResult& r, const char* outcome) {
    record(snap.history, t, r);
    const auto age = snap.now - t;
    if (age < hours(20)) ++expected["24h"][outcome];  // the fixture keeps the 24-hour mail within 20 hours
    ++expected["30d"][outcome];
  };
  // Days 2 to 12 ago: a daily mix, growing in DANE share.
  for (int d = 12; d >= 2; --d) {
    const auto t = snap.now - days(d);
    for (int i = 0; i < 20 - d; ++i) put(t, testsupport::verified("u@secure.test"), "verified");
    for (int i = 0; i < d; ++i) put(t, testsupport::plaintext("u@insecure.test"), "plaintext");
    for (int i = 0; i < 3; ++i) put(t, testsupport::untrusted("u@unusable.test"), "unauthenticated");
    put(t, testsupport::trusted("u@mxinsecure.test"), "trusted");
    if (d % 3 == 0) put(t, testsupport::deferred("u@bogus-ds.test"), "deferred");
  }
  // The last 20 hours: every 10 minutes a verified delivery, with trusted, unauthenticated,
  // plaintext, deferrals and bounces mixed in at their own rhythms.
  for (int m = 20 * 60 - 10; m >= 0; m -= 10) {  // in time order, as results arrive
    const auto t = snap.now - minutes(m);
    put(t, testsupport::verified("u@secure.test"), "verified");
    if (m % 30 == 0) put(t, testsupport::verified("u@danetta.test"), "verified");
    if (m % 40 == 0) put(t, testsupport::trusted("u@mxinsecure.test"), "trusted");
    if (m % 60 == 0) put(t, testsupport::pkix("u@partner.test"), "trusted");
    if (m % 50 == 0) put(t, testsupport::untrusted("u@unusable.test"), "unauthenticated");
    if (m % 70 == 0) put(t, testsupport::plaintext("u@insecure.test"), "plaintext");
    if (m % 90 == 0) put(t, testsupport::deferred("u@twomx.test"), "deferred");
    if (m % 300 == 0) put(t, testsupport::bounced("u@nullmx.test"), "bounced");
  }
  snap.queue.messages = 3;
  snap.queue.deferred = {{"bogus-ds.test",
                          "Host or domain name not found. Name service error for name=bogus-ds.test type=MX: Host not "
                          "found, try again",
                          std::chrono::seconds(3 * 86400 + 7200), 2, 2},
                         {"twomx.test", "Server certificate not verified", std::chrono::seconds(600), 1, 1}};
  snap.dnssec = {true, true, "validation works", "RFC 5011 managed: /var/lib/danerelay/root.key",
                 ". 172800 IN DNSKEY 257 3 8 AwEAAa… ;{id = 20326 (ksk), size = 2048b}"};

  const auto page = render_page(snap);
  std::ofstream(dir / "page.html", std::ios::binary) << page.body;
  nlohmann::json headers{{"Content-Type", page.content_type}};
  for (const auto& [k, v] : page.headers) headers[k] = v;
  std::ofstream(dir / "headers.json") << headers.dump(2) << '\n';
  nlohmann::json exp = nlohmann::json::object();
  for (const char* window : {"24h", "30d"}) {
    nlohmann::json w = nlohmann::json::object();
    for (const char* o : {"verified", "trusted", "unauthenticated", "plaintext", "deferred", "bounced"}) w[o] = expected[window][o];
    exp[window] = w;
  }
  std::ofstream(dir / "expected.json") << exp.dump(2) << '\n';
  std::cout << "posture_page_fixture: wrote " << (dir / "page.html").string() << " (" << page.body.size() << " bytes)\n";
  return 0;
}
