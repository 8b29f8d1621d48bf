// tests/dns/client_name_test.cpp — the inbound client-name decision (dns/client_name.hpp) from
// tables: every PTR verdict × every forward outcome, then the edges (several PTRs, IPv6, malformed
// records, the reverse names and the warning texts). The same cases run through libunbound against
// the signed test world in client_name_integration_test.cpp.
#include "dns/client_name.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/dns/fake_answers.hpp"

namespace danerelay::dns {
namespace {

using testing::wire_name;

const IpAddress kClient = *IpAddress::parse("10.1.2.3");
const std::string kPtrName = "3.2.1.10.in-addr.arpa";

Answer answer(Query q, Verdict v, std::vector<std::vector<std::uint8_t>> rdata = {}) {
  Answer a;
  a.query = std::move(q);
  a.canonical_name = a.query.name;
  a.verdict = v;
  a.failure = Failure::none;
  a.rdata = std::move(rdata);
  if (v == Verdict::bogus) a.why = "signature expired";
  return a;
}

Answer failed(Query q, Failure f) {
  Answer a;
  a.query = std::move(q);
  a.canonical_name = a.query.name;
  a.verdict = Verdict::error;
  a.failure = f;
  a.rcode = f == Failure::servfail ? 2 : 0;
  a.why = f == Failure::servfail ? "rcode 2" : "no answer within 5000 ms";
  return a;
}

Answer ptr(Verdict v, std::vector<std::string> names) {
  std::vector<std::vector<std::uint8_t>> rd;
  for (const auto& n : names) rd.push_back(wire_name(n));
  return answer(Query{kPtrName, RRType::PTR}, v, std::move(rd));
}

std::vector<std::uint8_t> v4(const std::string& text) {
  const auto ip = IpAddress::parse(text);
  return {ip->bytes.begin(), ip->bytes.begin() + 4};
}

std::vector<std::uint8_t> v6(const std::string& text) {
  const auto ip = IpAddress::parse(text);
  return {ip->bytes.begin(), ip->bytes.end()};
}

// ── The table: PTR state × forward state ─────────────────────────────────────────────────────

enum class PtrState { secure, insecure, bogus, servfail, timeout, nxdomain, nodata };
enum class ForwardState { match, no_match, invalid_name, no_address, bogus, servfail };

const char* name_of(PtrState p) {
  switch (p) {
    case PtrState::secure: return "PtrSecure";
    case PtrState::insecure: return "PtrInsecure";
    case PtrState::bogus: return "PtrBogus";
    case PtrState::servfail: return "PtrServfail";
    case PtrState::timeout: return "PtrTimeout";
    case PtrState::nxdomain: return "PtrNxdomain";
    case PtrState::nodata: return "PtrNodata";
  }
  return "?";
}

const char* name_of(ForwardState f) {
  switch (f) {
    case ForwardState::match: return "ForwardMatch";
    case ForwardState::no_match: return "ForwardNoMatch";
    case ForwardState::invalid_name: return "InvalidName";
    case ForwardState::no_address: return "ForwardNodata";
    case ForwardState::bogus: return "ForwardBogus";
    case ForwardState::servfail: return "ForwardServfail";
  }
  return "?";
}

struct Case {
  PtrState ptr;
  ForwardState forward;
};

// What Postfix-style FCrDNS must conclude, written out rather than computed like the code does.
ClientNameStatus expected(const Case& c) {
  switch (c.ptr) {
    case PtrState::bogus: return ClientNameStatus::ptr_bogus;  // D-03: bogus is never used
    case PtrState::servfail:
    case PtrState::timeout: return ClientNameStatus::ptr_failed;
    case PtrState::nxdomain:
    case PtrState::nodata: return ClientNameStatus::no_ptr;
    case PtrState::secure:
    case PtrState::insecure: break;  // unsigned reverse zones are the rule: the PTR counts
  }
  switch (c.forward) {
    case ForwardState::match: return ClientNameStatus::confirmed;
    case ForwardState::no_match:
    case ForwardState::no_address: return ClientNameStatus::not_confirmed;
    case ForwardState::invalid_name: return ClientNameStatus::invalid_name;
    case ForwardState::bogus:
    case ForwardState::servfail: return ClientNameStatus::forward_failed;
  }
  return ClientNameStatus::confirmed;
}

std::vector<Case> all_cases() {
  std::vector<Case> out;
  for (auto p : {PtrState::secure, PtrState::insecure, PtrState::bogus, PtrState::servfail, PtrState::timeout,
                 PtrState::nxdomain, PtrState::nodata}) {
    for (auto f : {ForwardState::match, ForwardState::no_match, ForwardState::invalid_name, ForwardState::no_address,
                   ForwardState::bogus, ForwardState::servfail}) {
      out.push_back({p, f});
    }
  }
  return out;
}

class ClientNameTable : public ::testing::TestWithParam<Case> {};

TEST_P(ClientNameTable, NamesTheClientOnlyWhenForwardConfirmed) {
  const Case c = GetParam();
  const std::string host = c.forward == ForwardState::invalid_name ? "exchange_1.org.example" : "exchange.org.example";
  // The PTR answer. A bogus one carries the name (libunbound hands out bogus data): it must not be used.
  Answer p;
  switch (c.ptr) {
    case PtrState::secure: p = ptr(Verdict::secure, {host}); break;
    case PtrState::insecure: p = ptr(Verdict::insecure, {host}); break;
    case PtrState::bogus: p = ptr(Verdict::bogus, {host}); break;
    case PtrState::servfail: p = failed(Query{kPtrName, RRType::PTR}, Failure::servfail); break;
    case PtrState::timeout: p = failed(Query{kPtrName, RRType::PTR}, Failure::timeout); break;
    case PtrState::nxdomain:
      p = ptr(Verdict::secure, {});
      p.nxdomain = true;
      p.rcode = 3;
      break;
    case PtrState::nodata: p = ptr(Verdict::insecure, {}); break;
  }
  // The forward answer for the name (whether or not it is asked for). A bogus one holds the address.
  const Query fq{host, RRType::A};
  Answer f;
  switch (c.forward) {
    case ForwardState::match:
    case ForwardState::invalid_name: f = answer(fq, Verdict::secure, {v4("192.0.2.9"), v4("10.1.2.3")}); break;
    case ForwardState::no_match: f = answer(fq, Verdict::secure, {v4("10.1.2.4")}); break;
    case ForwardState::no_address: f = answer(fq, Verdict::insecure, {}); break;
    case ForwardState::bogus: f = answer(fq, Verdict::bogus, {v4("10.1.2.3")}); break;
    case ForwardState::servfail: f = failed(fq, Failure::servfail); break;
  }
  const std::vector<Answer> forward{f};

  const ClientName got = decide_client_name(kClient, p, forward);
  const ClientNameStatus want = expected(c);
  EXPECT_EQ(got.status, want) << to_string(got.status) << " vs " << to_string(want);
  EXPECT_EQ(got.name, want == ClientNameStatus::confirmed ? "exchange.org.example" : "unknown");
  EXPECT_EQ(got.confirmed(), want == ClientNameStatus::confirmed);

  // The forward query is asked exactly when the PTR answer is usable and names a valid host.
  const auto queries = forward_queries(kClient, p);
  const bool usable = (c.ptr == PtrState::secure || c.ptr == PtrState::insecure) && c.forward != ForwardState::invalid_name;
  EXPECT_EQ(queries, usable ? std::vector<Query>{fq} : std::vector<Query>{});
}

INSTANTIATE_TEST_SUITE_P(Fcrdns, ClientNameTable, ::testing::ValuesIn(all_cases()), [](const auto& i) {
  return std::string(name_of(i.param.ptr)) + "_" + name_of(i.param.forward);
});

// ── The edges ─────────────────────────────────────────────────────────────────────────────────

TEST(ClientName, ReverseNamesFollowInAddrAndIp6Arpa) {
  EXPECT_EQ(reverse_name(*IpAddress::parse("10.1.2.3")), "3.2.1.10.in-addr.arpa");
  EXPECT_EQ(reverse_name(*IpAddress::parse("127.0.0.161")), "161.0.0.127.in-addr.arpa");
  EXPECT_EQ(reverse_name(*IpAddress::parse("::1")),
            "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa");
  // RFC 3596 §2.5 example form: nibbles low first, lower-case hex.
  EXPECT_EQ(reverse_name(*IpAddress::parse("2001:db8::abcd")),
            "d.c.b.a.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa");
  EXPECT_EQ(ptr_query(kClient), (Query{"3.2.1.10.in-addr.arpa", RRType::PTR}));
  EXPECT_EQ(to_string(RRType::PTR), "PTR");
}

TEST(ClientName, SeveralPtrNamesAreTriedSortedAndTheConfirmedOneWins) {
  const Answer p = ptr(Verdict::insecure, {"b.example", "a.example", "b.example", "c.example"});
  const auto queries = forward_queries(kClient, p);
  EXPECT_EQ(queries, (std::vector<Query>{{"a.example", RRType::A}, {"b.example", RRType::A}, {"c.example", RRType::A}}));
  const std::vector<Answer> forward{answer({"a.example", RRType::A}, Verdict::secure, {v4("10.9.9.9")}),
                                    answer({"b.example", RRType::A}, Verdict::insecure, {v4("10.1.2.3")}),
                                    answer({"c.example", RRType::A}, Verdict::secure, {v4("10.1.2.3")})};
  const ClientName got = decide_client_name(kClient, p, forward);
  EXPECT_EQ(got.name, "b.example");  // the first confirmed in sorted order: the same name every time
}

TEST(ClientName, AtMostFourPtrNamesAreLookedUp) {
  const Answer p = ptr(Verdict::secure, {"e.example", "d.example", "c.example", "b.example", "a.example", "f.example"});
  const auto queries = forward_queries(kClient, p);
  ASSERT_EQ(queries.size(), kMaxClientNameCandidates);
  EXPECT_EQ(queries.front().name, "a.example");
  EXPECT_EQ(queries.back().name, "d.example");
  // A name beyond the four is never confirmed, even when its answer is there.
  const std::vector<Answer> forward{answer({"f.example", RRType::A}, Verdict::secure, {v4("10.1.2.3")})};
  EXPECT_EQ(decide_client_name(kClient, p, forward).name, "unknown");
}

TEST(ClientName, InvalidNamesAreSkippedAndAValidOneStillCounts) {
  const Answer p = ptr(Verdict::secure, {"under_score.example", "ok.example"});
  EXPECT_EQ(forward_queries(kClient, p), (std::vector<Query>{{"ok.example", RRType::A}}));
  const std::vector<Answer> forward{answer({"ok.example", RRType::A}, Verdict::secure, {v4("10.1.2.3")})};
  EXPECT_EQ(decide_client_name(kClient, p, forward).name, "ok.example");

  // Only invalid ones: a numeric top-level label, a leading hyphen, the root, malformed RDATA.
  Answer bad = ptr(Verdict::secure, {"10.1.2.3", "-bad.example", "."});
  bad.rdata.push_back({3, 'a', 'b'});  // a label running past the end
  const ClientName got = decide_client_name(kClient, bad, {});
  EXPECT_EQ(got.status, ClientNameStatus::invalid_name);
  EXPECT_EQ(got.ptr_name, "10.1.2.3");
  EXPECT_TRUE(forward_queries(kClient, bad).empty());
}

TEST(ClientName, IpV6ClientsAreConfirmedByAaaaOnly) {
  const IpAddress client = *IpAddress::parse("2001:db8::25");
  Answer p = answer(Query{reverse_name(client), RRType::PTR}, Verdict::secure, {wire_name("mx.org.example")});
  EXPECT_EQ(forward_queries(client, p), (std::vector<Query>{{"mx.org.example", RRType::AAAA}}));
  const std::vector<Answer> ok{answer({"mx.org.example", RRType::AAAA}, Verdict::secure, {v6("2001:db8::25")})};
  EXPECT_EQ(decide_client_name(client, p, ok).name, "mx.org.example");
  // An A answer, even one whose bytes happened to match, is not the question asked.
  const std::vector<Answer> wrong_type{answer({"mx.org.example", RRType::A}, Verdict::secure, {v4("32.1.13.184")})};
  EXPECT_EQ(decide_client_name(client, p, wrong_type).status, ClientNameStatus::forward_failed);
  // An IPv4 client whose name has only an AAAA: not confirmed.
  const Answer p4 = ptr(Verdict::secure, {"v6only.example"});
  const std::vector<Answer> nodata{answer({"v6only.example", RRType::A}, Verdict::secure, {})};
  EXPECT_EQ(decide_client_name(kClient, p4, nodata).status, ClientNameStatus::not_confirmed);
}

TEST(ClientName, ForwardThroughACnameConfirms) {
  const Answer p = ptr(Verdict::secure, {"alias.example"});
  Answer f = answer({"alias.example", RRType::A}, Verdict::secure, {v4("10.1.2.3")});
  f.canonical_name = "real.example";
  const std::vector<Answer> forward{f};
  EXPECT_EQ(decide_client_name(kClient, p, forward).name, "alias.example");  // the PTR name, as Postfix logs it
}

TEST(ClientName, AMismatchOutranksAFailureInTheReason) {
  const Answer p = ptr(Verdict::secure, {"a.example", "b.example"});
  const std::vector<Answer> forward{failed({"a.example", RRType::A}, Failure::servfail),
                                    answer({"b.example", RRType::A}, Verdict::secure, {v4("10.0.0.1")})};
  const ClientName got = decide_client_name(kClient, p, forward);
  EXPECT_EQ(got.status, ClientNameStatus::not_confirmed);
  EXPECT_EQ(got.ptr_name, "b.example");
  // A missing answer counts as failed, never as confirmed.
  const ClientName missing = decide_client_name(kClient, ptr(Verdict::secure, {"a.example"}), {});
  EXPECT_EQ(missing.status, ClientNameStatus::forward_failed);
  EXPECT_EQ(missing.name, "unknown");
}

TEST(ClientName, WarningsUsePostfixWordsWhereItHasThem) {
  const std::string addr = "10.1.2.3";
  auto warning_for = [&](const Answer& p, std::vector<Answer> forward) {
    return client_name_warning(decide_client_name(kClient, p, forward), addr);
  };
  EXPECT_EQ(warning_for(ptr(Verdict::secure, {"forged.example"}),
                        {answer({"forged.example", RRType::A}, Verdict::secure, {v4("10.0.0.1")})}),
            "hostname forged.example does not resolve to address 10.1.2.3");
  EXPECT_EQ(warning_for(ptr(Verdict::secure, {"x.example"}), {answer({"x.example", RRType::A}, Verdict::bogus, {v4("10.1.2.3")})}),
            "hostname x.example does not resolve to address 10.1.2.3: bogus (signature expired)");
  EXPECT_EQ(warning_for(ptr(Verdict::bogus, {"x.example"}), {}),
            "10.1.2.3: reverse lookup failed: bogus (signature expired); the answer is not used");
  EXPECT_EQ(warning_for(failed(Query{kPtrName, RRType::PTR}, Failure::servfail), {}),
            "10.1.2.3: reverse lookup failed: servfail (rcode 2)");
  EXPECT_EQ(warning_for(ptr(Verdict::secure, {"under_score.example"}), {}),
            "10.1.2.3: PTR record names an invalid host name: under_score.example");
  // Nothing to warn about: a name, or simply no PTR (most clients on the Internet).
  EXPECT_EQ(warning_for(ptr(Verdict::secure, {"ok.example"}), {answer({"ok.example", RRType::A}, Verdict::secure, {v4("10.1.2.3")})}), "");
  EXPECT_EQ(warning_for(ptr(Verdict::secure, {}), {}), "");
  EXPECT_EQ(client_name_warning(ClientName{}, addr), "");  // disabled
  const ClientName late{"unknown", ClientNameStatus::timeout, {}, "timeout (no answer within 5000 ms)"};
  EXPECT_EQ(client_name_warning(late, addr), "10.1.2.3: reverse lookup failed: timeout (no answer within 5000 ms)");
}

}  // namespace
}  // namespace danerelay::dns
