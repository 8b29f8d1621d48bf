// tests/posture/fixture.hpp — recipient results as delivery reports them, for the posture tests
// and the browser fixture: one builder per class, with the TLS summary the delivery code writes.
#pragma once

#include <chrono>
#include <string>

#include "relay/core/envelope.hpp"

namespace danerelay::testsupport {

// 2030-01-01T00:00:00Z, as the queue tests use.
inline const std::chrono::system_clock::time_point kPostureEpoch{std::chrono::seconds(1893456000)};

inline relay::RecipientResult result_for(const std::string& address, relay::DeliveryStatus status, const std::string& trust,
                                         const std::string& matched = {}, const std::string& feature = "dane") {
  relay::RecipientResult r;
  r.recipient.address = address;
  r.status = status;
  r.dsn = status == relay::DeliveryStatus::sent ? "2.0.0" : (status == relay::DeliveryStatus::deferred ? "4.7.5" : "5.1.1");
  r.tls.trust = trust;
  r.tls.matched = matched;
  r.tls.feature = feature;
  r.tls.protocol = trust.empty() ? "" : "TLSv1.3";
  r.dnssec_mx = "secure";
  return r;
}
inline relay::RecipientResult verified(const std::string& a) {
  return result_for(a, relay::DeliveryStatus::sent, "Verified", "3 1 1 EF97B4F3A1B2C3D4E5F60718293A4B5C6D7E8F90");
}
inline relay::RecipientResult trusted(const std::string& a) {
  auto r = result_for(a, relay::DeliveryStatus::sent, "Trusted", "3 1 1 EF97B4F3", "dane:halfdane");
  r.dnssec_mx = "insecure";
  return r;
}
inline relay::RecipientResult pkix(const std::string& a) { return result_for(a, relay::DeliveryStatus::sent, "Verified", "", "verify"); }
inline relay::RecipientResult untrusted(const std::string& a) {
  return result_for(a, relay::DeliveryStatus::sent, "Untrusted", "", "dane:encrypt");
}
inline relay::RecipientResult plaintext(const std::string& a) {
  auto r = result_for(a, relay::DeliveryStatus::sent, "", "", "dane:may");
  r.dnssec_mx = "insecure";
  return r;
}
// Deferred by DNS before any connection: no TLS feature (the plan never reached the TLS policy).
inline relay::RecipientResult deferred(const std::string& a) { return result_for(a, relay::DeliveryStatus::deferred, "", "", ""); }
inline relay::RecipientResult bounced(const std::string& a) { return result_for(a, relay::DeliveryStatus::bounced, "", "", ""); }

}  // namespace danerelay::testsupport
