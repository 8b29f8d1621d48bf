// tests/dns/fake_answers.hpp — declarative DNS answers for driving the pure planner from tables.
//
// Answers are given with their verdicts as data; the planner is then run to completion against
// them. A query the table does not answer fails the test (the planner asked for something the
// scenario did not expect). The same scenarios also run through libunbound against the real
// signed hierarchy in destination_integration_test.cpp.
#pragma once

#include <gtest/gtest.h>

#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

#include "dns/plan.hpp"

namespace danerelay::dns::testing {

inline std::vector<std::uint8_t> wire_name(const std::string& name) {
  std::vector<std::uint8_t> out;
  if (name != ".") {
    std::size_t start = 0;
    while (start <= name.size()) {
      auto dot = name.find('.', start);
      if (dot == std::string::npos) dot = name.size();
      out.push_back(static_cast<std::uint8_t>(dot - start));
      out.insert(out.end(), name.begin() + static_cast<std::ptrdiff_t>(start), name.begin() + static_cast<std::ptrdiff_t>(dot));
      start = dot + 1;
    }
  }
  out.push_back(0);
  return out;
}

class FakeAnswers {
 public:
  // A definitive answer (secure or insecure) with these RDATAs.
  FakeAnswers& answer(const std::string& name, RRType type, Verdict verdict, std::vector<std::vector<std::uint8_t>> rdata,
                      std::string canonical = {}) {
    Answer a;
    a.query = {name, type};
    a.verdict = verdict;
    a.failure = (verdict == Verdict::error) ? Failure::servfail : Failure::none;
    a.rcode = (verdict == Verdict::error) ? 2 : 0;
    a.canonical_name = canonical.empty() ? name : canonical;
    a.rdata = std::move(rdata);
    map_.insert_or_assign(a.query, a);
    return *this;
  }
  FakeAnswers& mx(const std::string& name, Verdict v, std::initializer_list<std::pair<int, std::string>> hosts,
                  std::string canonical = {}) {
    std::vector<std::vector<std::uint8_t>> rd;
    for (const auto& [pref, host] : hosts) {
      std::vector<std::uint8_t> r{static_cast<std::uint8_t>(pref >> 8), static_cast<std::uint8_t>(pref & 0xff)};
      auto n = wire_name(host);
      r.insert(r.end(), n.begin(), n.end());
      rd.push_back(std::move(r));
    }
    return answer(name, RRType::MX, v, std::move(rd), std::move(canonical));
  }
  // A and AAAA for a host: the addresses given (v4 and v6 sorted by family), NODATA for a family
  // without any, both with the same verdict and canonical name.
  FakeAnswers& host(const std::string& name, Verdict v, std::initializer_list<std::string> addresses,
                    std::string canonical = {}) {
    std::vector<std::vector<std::uint8_t>> v4, v6;
    for (const auto& text : addresses) {
      auto ip = IpAddress::parse(text);
      EXPECT_TRUE(ip.has_value()) << text;
      if (!ip) continue;
      if (ip->v6) {
        v6.emplace_back(ip->bytes.begin(), ip->bytes.end());
      } else {
        v4.emplace_back(ip->bytes.begin(), ip->bytes.begin() + 4);
      }
    }
    answer(name, RRType::A, v, std::move(v4), canonical);
    return answer(name, RRType::AAAA, v, std::move(v6), std::move(canonical));
  }
  FakeAnswers& tlsa(const std::string& qname, Verdict v, std::initializer_list<std::vector<std::uint8_t>> records,
                    std::string canonical = {}) {
    return answer(qname, RRType::TLSA, v, std::vector<std::vector<std::uint8_t>>(records), std::move(canonical));
  }
  FakeAnswers& cname(const std::string& name, Verdict v, const std::string& target) {
    return answer(name, RRType::CNAME, v, {wire_name(target)});
  }
  FakeAnswers& nodata(const std::string& name, RRType type, Verdict v) { return answer(name, type, v, {}); }
  FakeAnswers& nxdomain(const std::string& name, RRType type, Verdict v) {
    answer(name, type, v, {});
    map_.at(Query{name, type}).nxdomain = true;
    map_.at(Query{name, type}).rcode = 3;
    return *this;
  }
  // A failed lookup: bogus, or error with the given failure (SERVFAIL, timeout, ...).
  FakeAnswers& fail(const std::string& name, RRType type, Verdict v = Verdict::error, Failure f = Failure::servfail) {
    Answer a;
    a.query = {name, type};
    a.verdict = v;
    a.failure = v == Verdict::error ? f : Failure::none;
    a.rcode = 2;
    a.canonical_name = name;
    a.why = v == Verdict::bogus ? "signature expired" : std::string(to_string(f));
    map_.insert_or_assign(a.query, a);
    return *this;
  }

  // Runs the planner to completion. Records every query asked, in order.
  DeliveryPlan plan(const PlanRequest& request, std::vector<Query>* asked = nullptr) const {
    AnswerMap seen;
    for (int round = 0; round < 12; ++round) {
      PlanStep step = advance_plan(request, seen);
      if (step.plan) return *step.plan;
      EXPECT_FALSE(step.queries.empty()) << "planner neither finished nor asked anything";
      for (const Query& q : step.queries) {
        if (asked != nullptr) asked->push_back(q);
        auto it = map_.find(q);
        if (it == map_.end()) {
          ADD_FAILURE() << "unexpected query " << q.name << " " << to_string(q.type);
          seen.insert_or_assign(q, Answer{q, Verdict::error, Failure::other, 2, false, q.name, {}, 0, "not in table"});
        } else {
          seen.insert_or_assign(q, it->second);
        }
      }
    }
    ADD_FAILURE() << "planner did not finish in 12 rounds";
    return {};
  }

 private:
  AnswerMap map_;
};

inline std::vector<std::uint8_t> tlsa_rdata(int usage, int selector, int mtype, std::size_t length, std::uint8_t fill = 0xab) {
  std::vector<std::uint8_t> r{static_cast<std::uint8_t>(usage), static_cast<std::uint8_t>(selector),
                              static_cast<std::uint8_t>(mtype)};
  r.insert(r.end(), length, fill);
  return r;
}

inline bool was_asked(const std::vector<Query>& asked, const std::string& name, RRType type) {
  for (const auto& q : asked) {
    if (q.name == name && q.type == type) return true;
  }
  return false;
}

}  // namespace danerelay::dns::testing
