// tests/relay/outcome_test.cpp — the one delivery-outcome policy (relay/delivery/outcome.hpp) as a table:
// every failure kind has one row, the rows keep the invariants the issue (10, item 9) and RFC 3463
// ask for, and the layers' typed values land on their rows.
#include "relay/delivery/outcome.hpp"

#include <gtest/gtest.h>

#include <regex>
#include <set>
#include <string>

namespace danerelay::relay {
namespace {

smtp::Reply reply(int code, std::string text) {
  smtp::ReplyParser p;
  (void)p.feed(std::to_string(code) + " " + text);
  return p.take();
}

TEST(OutcomePolicy, EveryFailureHasOneRowWithAValidStatusAndAUniqueName) {
  std::set<std::string_view> names;
  for (const Rule& r : outcome_rules()) {
    SCOPED_TRACE(std::string(r.name));
    EXPECT_TRUE(names.insert(r.name).second) << "names are metrics labels: unique";
    EXPECT_EQ(&rule_for(r.failure), &r);
    EXPECT_TRUE(std::regex_match(std::string(r.status), std::regex(R"([245]\.[0-9]{1,3}\.[0-9]{1,3})"))) << r.status;
    EXPECT_TRUE(r.status[0] == '4' || r.status[0] == '5') << r.status;
    EXPECT_NE(r.action, Action::delivered) << "a failure never delivers";
    EXPECT_FALSE(r.text.empty());
  }
}

TEST(OutcomePolicy, ActionsAgreeWithTheStatusClass) {
  for (const Rule& r : outcome_rules()) {
    SCOPED_TRACE(std::string(r.name));
    if (r.action == Action::defer) {
      EXPECT_EQ(r.status[0], '4') << "a deferral carries 4.x.x";
    }
    // A bounce carries 5.x.x, except an expiry: the last status stays 4.x.x (RFC 3463 §3.1, Postfix).
    if (r.action == Action::bounce && r.failure != Failure::expired && r.failure != Failure::expired_by_admin) {
      EXPECT_EQ(r.status[0], '5');
    }
    // Only a definitive absence of the host is permanent among the host-level rows.
    if (r.action == Action::next_host && r.failure != Failure::host_not_found) {
      EXPECT_EQ(r.status[0], '4');
    }
  }
}

struct Golden {
  Failure failure;
  Action action;
  const char* status;
};

// The rows other code and the operators rely on (RFC 7672 checklist ids where one applies).
TEST(OutcomePolicy, GoldenRows) {
  for (const Golden& g : {
           Golden{Failure::mx_lookup_failed, Action::defer, "4.4.3"},      // D-05
           Golden{Failure::mx_no_valid_names, Action::defer, "4.4.3"},     // item 9: not null MX
           Golden{Failure::null_mx, Action::bounce, "5.1.10"},             // N-01
           Golden{Failure::domain_not_found, Action::bounce, "5.4.4"},
           Golden{Failure::tlsa_lookup_failed, Action::next_host, "4.7.5"},  // D-07, D-13
           Golden{Failure::tls_policy, Action::next_host, "4.7.5"},        // D-14, D-20, P-02
           Golden{Failure::tls_not_offered, Action::next_host, "4.7.4"},   // D-10, D-11
           Golden{Failure::tls_authentication, Action::next_host, "4.7.5"},  // D-39, D-45
           Golden{Failure::greeting_rejected, Action::next_host, "4.0.0"},
           Golden{Failure::helo_rejected, Action::next_host, "4.0.0"},
           Golden{Failure::connect, Action::next_host, "4.4.1"},
           Golden{Failure::smtputf8_not_offered, Action::bounce, "5.6.7"},
           Golden{Failure::expired, Action::bounce, "4.4.7"},
           Golden{Failure::loops_back, Action::bounce, "5.4.6"},        // L-01: Postfix smtp_addr.c
           Golden{Failure::route_loops_back, Action::defer, "4.3.5"},   // L-01: Postfix's relayhost rule
       }) {
    const Rule& r = rule_for(g.failure);
    SCOPED_TRACE(std::string(r.name));
    EXPECT_EQ(r.action, g.action);
    EXPECT_EQ(r.status, g.status);
  }
}

TEST(OutcomePolicy, ARefusalBeforeMailKeepsTheServersDetailWithClassFour) {
  struct Row {
    smtp::HostFailure::Kind kind;
    int code;
    const char* text;
    const char* want;
  };
  using K = smtp::HostFailure::Kind;
  for (const Row& row : {Row{K::greeting_rejected, 554, "5.7.1 blocked", "4.7.1"}, Row{K::greeting_rejected, 421, "4.3.2 busy", "4.3.2"},
                         Row{K::greeting_rejected, 554, "no", "4.0.0"}, Row{K::helo_rejected, 550, "5.5.1 who?", "4.5.1"},
                         Row{K::starttls_rejected, 454, "4.7.0 TLS not available", "4.7.0"},
                         Row{K::starttls_rejected, 554, "5.7.3 no TLS for you", "4.7.3"},
                         Row{K::starttls_rejected, 500, "what", "4.7.4"},
                         // A reply that caused no refusal of its own keeps the row's status.
                         Row{K::tls_not_offered, 502, "5.5.1 EHLO not implemented", "4.7.4"}}) {
    SCOPED_TRACE(row.text);
    smtp::HostFailure f;
    f.kind = row.kind;
    f.reply = reply(row.code, row.text);
    f.text = "host said so";
    const Outcome o = outcome_of(f);
    EXPECT_EQ(o.action, Action::next_host);
    EXPECT_EQ(o.status, row.want);
    EXPECT_EQ(o.text, "host said so");
  }
}

TEST(OutcomePolicy, TransactionRepliesDecideWithTheServersCodeInTheRightClass) {
  struct Row {
    int code;
    const char* text;
    Action action;
    const char* want;
  };
  for (const Row& row : {Row{250, "2.0.0 Ok", Action::delivered, "2.0.0"}, Row{250, "Ok", Action::delivered, "2.0.0"},
                         Row{450, "4.2.1 busy", Action::defer, "4.2.1"}, Row{451, "try later", Action::defer, "4.0.0"},
                         Row{550, "5.1.1 no such user", Action::bounce, "5.1.1"},
                         Row{550, "4.1.1 mixed up", Action::bounce, "5.0.0"},  // a code of the wrong class is not taken
                         Row{354, "go ahead", Action::defer, "4.5.0"}}) {
    SCOPED_TRACE(row.text);
    const Outcome o = reply_outcome(reply(row.code, row.text), "words");
    EXPECT_TRUE(o.reply_decided);
    EXPECT_EQ(o.action, row.action);
    EXPECT_EQ(o.status, row.want);
  }
}

TEST(OutcomePolicy, ARecipientLeftByABrokenTransactionIsDeferred) {
  smtp::RecipientOutcome r;
  r.disposition = smtp::Disposition::deferred;
  r.broken = smtp::HostFailure::Kind::lost_connection;
  r.text = "lost connection";
  const Outcome o = outcome_of(r);
  EXPECT_EQ(o.action, Action::defer);
  EXPECT_EQ(o.status, "4.4.2");
  EXPECT_EQ(o.failure, Failure::lost_connection);
}

TEST(OutcomePolicy, APlanFailingOnAHostProblemDefersUnlessEveryHostIsAbsent) {
  dns::DeliveryPlan plan;
  plan.domain = "d.test";
  plan.status = dns::PlanStatus::failed;
  plan.problem = dns::Problem::tlsa_lookup_failed;
  EXPECT_EQ(outcome_of(plan).action, Action::defer);
  plan.problem = dns::Problem::host_lookup_failed;
  EXPECT_EQ(outcome_of(plan).action, Action::defer);
  plan.problem = dns::Problem::host_not_found;
  EXPECT_EQ(outcome_of(plan).action, Action::bounce);
  EXPECT_EQ(outcome_of(plan).status, "5.4.4");
}

}  // namespace
}  // namespace danerelay::relay
