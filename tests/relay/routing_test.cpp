// tests/relay/routing_test.cpp — destination domains as DNS sees them (SMTPUTF8 → A-labels) and
// the policy a domain gets.
#include "relay/delivery/routing.hpp"

#include <gtest/gtest.h>

namespace danerelay::relay {
namespace {

TEST(DnsDomain, AsciiDomainsPassUnchanged) {
  EXPECT_EQ(dns_domain("secure.test"), "secure.test");
  EXPECT_EQ(dns_domain("xn--bcher-kva.example"), "xn--bcher-kva.example");
}

TEST(DnsDomain, Utf8DomainsBecomeALabels) {
  EXPECT_EQ(dns_domain("bücher.example"), "xn--bcher-kva.example");
  EXPECT_EQ(dns_domain("BÜCHER.example"), "xn--bcher-kva.example") << "UTS #46 maps case";
  EXPECT_EQ(dns_domain("例え.テスト"), "xn--r8jz45g.xn--zckzah");
}

TEST(DnsDomain, InvalidInternationalizedNamesAreRefused) {
  EXPECT_FALSE(dns_domain("\xff\xfe.example")) << "not UTF-8";
  EXPECT_FALSE(dns_domain("\xcc\x81" "bc.example")) << "a label may not start with a combining mark (RFC 5891 §4.2.3.2)";
}

TEST(RouteFor, ALabelDomainsMatchTheirPolicyTable) {
  config::Config cfg;
  config::DestinationPolicy p;
  p.pattern = "xn--bcher-kva.example";
  p.level = config::TlsLevel::dane_only;
  cfg.policy.destinations.push_back(p);
  const auto r = route_for(cfg, *dns_domain("bücher.example"), 1);
  EXPECT_EQ(r.level, config::TlsLevel::dane_only);
  EXPECT_TRUE(r.request.lookup_tlsa);
}

}  // namespace
}  // namespace danerelay::relay
