// tests/metrics/relay_metrics_test.cpp — what the relay counts: the DANE result of a recipient
// result (KumoMTA's vocabulary, ecosystem.md §4/§9.4), the TLS result of a connection, the DNS
// result of an answer, the delivery status; and the counters a result, a connection, an answer
// and the inbound hooks move.
#include "relay/metrics/relay_metrics.hpp"

#include <gtest/gtest.h>

// The table rows name only the fields that differ from R's defaults (designated initializers).
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

namespace danerelay::relay::metrics {
namespace {

struct R {
  std::string level = "dane";
  std::string feature;
  std::string trust;
  std::string matched;
  std::optional<Failure> failure;
  std::string reason;
  std::string mx = "secure";
  std::string host = "secure";
  DeliveryStatus status = DeliveryStatus::sent;
};
RecipientResult make(const R& r) {
  RecipientResult x;
  x.tls.level = r.level;
  x.tls.feature = r.feature;
  x.tls.trust = r.trust;
  x.tls.matched = r.matched;
  x.failure = r.failure;
  x.reason = r.reason;
  x.dnssec_mx = r.mx;
  x.dnssec_host = r.host;
  x.status = r.status;
  return x;
}

struct DaneCase {
  std::string_view name;
  R r;
  std::optional<std::string_view> want;
};
const DaneCase kDane[] = {
    {"D10_MatchedTlsaIsOk", {.feature = "dane", .trust = "Verified", .matched = "3 1 1 ab"}, "ok"},
    {"D18_MatchedUnderInsecureMxIsOk", {.feature = "dane:halfdane", .trust = "Trusted", .matched = "3 1 1 ab", .mx = "insecure"}, "ok"},
    {"DaneOnlyMatchedIsOk", {.level = "dane-only", .feature = "dane-only", .trust = "Verified", .matched = "2 0 1 cd"}, "ok"},
    {"D39_NoMatchingTlsaIsAuthFailed",
     {.feature = "dane", .failure = Failure::tls_authentication, .status = DeliveryStatus::deferred}, "auth_failed"},
    {"D11_AllTlsaUnusableIsUnusable", {.feature = "dane:encrypt", .trust = "Untrusted"}, "unusable"},
    {"D14_DaneOnlyUnusableDeferIsUnusable",
     {.level = "dane-only", .failure = Failure::tls_policy, .reason = "TLSA records unusable for mx.example:25 (dane-only)",
      .status = DeliveryStatus::deferred}, "unusable"},
    {"D12_SecureDenialIsNotApplicable", {.feature = "dane:may", .trust = "Untrusted"}, "not_applicable"},
    {"D12_SecureDenialPlaintextIsNotApplicable", {.feature = "dane:may:none"}, "not_applicable"},
    {"D14_DaneOnlyNoTlsaIsNotApplicable",
     {.level = "dane-only", .failure = Failure::tls_policy, .reason = "no TLSA records found for mx.example:25 (dane-only)",
      .status = DeliveryStatus::deferred}, "not_applicable"},
    {"D24_InsecureAddressIsInsecureChain", {.feature = "dane:may", .mx = "secure", .host = "insecure"}, "insecure_chain"},
    {"InsecureMxPlaintextIsInsecureChain", {.feature = "dane:may:none", .mx = "insecure", .host = "insecure"}, "insecure_chain"},
    {"D20_DaneOnlyInsecureMxIsInsecureChain",
     {.level = "dane-only", .failure = Failure::tls_policy, .reason = "non DNSSEC destination: insecure MX lookup for x (dane-only)",
      .mx = "insecure", .status = DeliveryStatus::deferred}, "insecure_chain"},
    {"D05_BogusMxIsTempfail", {.failure = Failure::mx_lookup_failed, .mx = "bogus", .status = DeliveryStatus::deferred}, "tempfail"},
    {"D13_TlsaServfailIsTempfail", {.failure = Failure::tlsa_lookup_failed, .status = DeliveryStatus::deferred}, "tempfail"},
    {"D07_AddressLookupFailedIsTempfail", {.failure = Failure::host_lookup_failed, .status = DeliveryStatus::deferred}, "tempfail"},
    {"ConnectFailureSaysNothing", {.feature = "dane", .failure = Failure::connect, .status = DeliveryStatus::deferred}, std::nullopt},
    {"NullMxSaysNothing", {.failure = Failure::null_mx, .status = DeliveryStatus::bounced}, std::nullopt},
    {"OtherLevelsSayNothing", {.level = "may", .feature = "may", .trust = "Untrusted"}, std::nullopt},
    {"VerifyLevelSaysNothing", {.level = "verify", .feature = "verify", .trust = "Verified"}, std::nullopt},
    {"ExpirySaysNothing", {.level = "", .failure = Failure::expired, .status = DeliveryStatus::bounced}, std::nullopt},
};
class DaneResult : public testing::TestWithParam<DaneCase> {};
TEST_P(DaneResult, Maps) { EXPECT_EQ(dane_result(make(GetParam().r)), GetParam().want); }
INSTANTIATE_TEST_SUITE_P(Metrics, DaneResult, testing::ValuesIn(kDane), [](const auto& i) { return std::string(i.param.name); });

struct TrustCase {
  std::string_view name;
  ConnectionReport c;
  std::optional<std::string_view> want;
};
using K = smtp::HostFailure::Kind;
const TrustCase kTrust[] = {
    {"Verified", {true, true, "Verified", std::nullopt, std::nullopt}, "verified"},
    {"Trusted", {true, true, "Trusted", std::nullopt, std::nullopt}, "trusted"},
    {"Untrusted", {true, true, "Untrusted", std::nullopt, std::nullopt}, "untrusted"},
    {"AnonymousIsUntrusted", {true, true, "Anonymous", std::nullopt, std::nullopt}, "untrusted"},
    {"NoTlsIsPlaintext", {false, false, "", std::nullopt, std::nullopt}, "plaintext"},
    {"HandshakeFailed", {true, false, "", K::tls_handshake, std::nullopt}, "failed"},
    {"D39_AuthenticationFailedAfterHandshake", {true, true, "Untrusted", K::tls_authentication, std::nullopt}, "failed"},
    {"D39_AuthenticationFailedInHandshake", {true, false, "", K::tls_authentication, std::nullopt}, "failed"},
    {"D10_StarttlsRequiredButMissing", {false, false, "", K::tls_not_offered, std::nullopt}, "failed"},
    {"StarttlsRefused", {false, false, "", K::starttls_rejected, std::nullopt}, "failed"},
    {"Injection", {false, false, "", K::tls_injection, std::nullopt}, "failed"},
    {"ConnectFailedSaysNothing", {false, false, "", K::connect, std::nullopt}, std::nullopt},
    {"GreetingRejectedSaysNothing", {false, false, "", K::greeting_rejected, std::nullopt}, std::nullopt},
    {"EhloAfterTlsLostIsStillVerified", {true, true, "Verified", K::lost_connection, std::nullopt}, "verified"},
};
class ConnectionTrust : public testing::TestWithParam<TrustCase> {};
TEST_P(ConnectionTrust, Maps) { EXPECT_EQ(connection_trust(GetParam().c), GetParam().want); }
INSTANTIATE_TEST_SUITE_P(Metrics, ConnectionTrust, testing::ValuesIn(kTrust), [](const auto& i) { return std::string(i.param.name); });

TEST(DnsResult, EveryVerdictAndFailure) {
  dns::Answer a;
  const std::pair<dns::Verdict, dns::Failure> in[] = {
      {dns::Verdict::secure, dns::Failure::none},    {dns::Verdict::insecure, dns::Failure::none},
      {dns::Verdict::bogus, dns::Failure::none},     {dns::Verdict::error, dns::Failure::timeout},
      {dns::Verdict::error, dns::Failure::servfail}, {dns::Verdict::error, dns::Failure::refused},
      {dns::Verdict::error, dns::Failure::malformed}, {dns::Verdict::error, dns::Failure::other}};
  const std::string_view want[] = {"secure", "insecure", "bogus", "timeout", "servfail", "servfail", "servfail", "servfail"};
  for (std::size_t i = 0; i < std::size(in); ++i) {
    a.verdict = in[i].first;
    a.failure = in[i].second;
    EXPECT_EQ(dns_result(a), want[i]) << i;
  }
}

TEST(DeliveryStatus, ExpiryIsItsOwnStatus) {
  EXPECT_EQ(delivery_status(make({.status = DeliveryStatus::sent})), "sent");
  EXPECT_EQ(delivery_status(make({.status = DeliveryStatus::deferred})), "deferred");
  EXPECT_EQ(delivery_status(make({.status = DeliveryStatus::bounced})), "bounced");
  EXPECT_EQ(delivery_status(make({.failure = Failure::expired, .status = DeliveryStatus::bounced})), "expired");
  EXPECT_EQ(delivery_status(make({.failure = Failure::expired_by_admin, .status = DeliveryStatus::bounced})), "expired");
}

TEST(RelayMetrics, HooksMoveTheirCounters) {
  RelayMetrics m("9.9.9");
  RecipientResult sent = make({.feature = "dane:may:none", .mx = "insecure", .host = "insecure"});
  sent.relay_host = "mx.insecure.test";
  sent.delays.transmission = std::chrono::microseconds(1500);
  m.result(Envelope{}, sent);
  m.result(Envelope{}, make({.level = "", .failure = Failure::expired, .status = DeliveryStatus::bounced}));
  m.connection({true, true, "Verified", std::nullopt, std::chrono::microseconds(20000)});
  dns::Answer a;
  a.query.type = dns::RRType::TLSA;
  a.verdict = dns::Verdict::secure;
  m.dns_answer(a);
  m.flush(3);
  auto o = m.server_observer();
  o.session("relay");
  o.message("relay");
  o.rejection(554);
  o.auth_failure();
  m.set_probe([] { return Probe{1, 2, 3, std::chrono::seconds(77), true}; });
  const std::string text = m.scrape();
  for (const char* line : {
           "danerelay_deliveries_total{status=\"sent\",tls=\"dane\"} 1\n",
           "danerelay_deliveries_total{status=\"expired\",tls=\"none\"} 1\n",
           "danerelay_plaintext_deliveries_total 1\n",
           "danerelay_dane_result_total{result=\"insecure_chain\"} 1\n",
           "danerelay_dane_result_total{result=\"ok\"} 0\n",
           "danerelay_smtp_delivery_delay_seconds_bucket{stage=\"transmission\",le=\"0.01\"} 1\n",
           "danerelay_smtp_delivery_delay_seconds_count{stage=\"transmission\"} 1\n",
           "danerelay_smtp_delivery_delay_seconds_sum{stage=\"transmission\"} 0.0015\n",
           "danerelay_tls_connections_total{trust=\"verified\"} 1\n",
           "danerelay_tls_connections_total{trust=\"failed\"} 0\n",
           "danerelay_tls_handshake_duration_seconds_bucket{le=\"0.025\"} 1\n",
           "danerelay_tls_handshake_duration_seconds_bucket{le=\"0.01\"} 0\n",
           "danerelay_dns_queries_total{rrtype=\"TLSA\",result=\"secure\"} 1\n",
           "danerelay_spool_flush_operations_bucket{le=\"4\"} 1\n",
           "danerelay_spool_flush_operations_bucket{le=\"2\"} 0\n",
           "danerelay_smtpd_sessions_total{listener=\"relay\"} 1\n",
           "danerelay_messages_received_total{listener=\"relay\"} 1\n",
           "danerelay_smtpd_rejections_total{code=\"554\"} 1\n",
           "danerelay_smtpd_auth_failures_total 1\n",
           "danerelay_queue_messages{queue=\"active\"} 1\n",
           "danerelay_queue_messages{queue=\"deferred\"} 2\n",
           "danerelay_queue_messages{queue=\"hold\"} 3\n",
           "danerelay_queue_oldest_message_age_seconds 77\n",
           "danerelay_dnssec_validating 1\n",
           "danerelay_build_info{version=\"9.9.9\"} 1\n",
       }) {
    EXPECT_NE(text.find(line), std::string::npos) << line << "\n" << text;
  }
  // The expiry has no delays: one observation per stage, from the sent result only.
  EXPECT_NE(text.find("danerelay_smtp_delivery_delay_seconds_count{stage=\"before_queue_manager\"} 1\n"), std::string::npos);
}

}  // namespace
}  // namespace danerelay::relay::metrics
