// tests/smtp/command_test.cpp — smtp/command.hpp: verbs, EHLO/HELO arguments, MAIL/RCPT paths and
// their ESMTP parameters, RFC 3461 xtext. Table-driven; each row names the reply Postfix gives.
#include "smtp/command.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "smtp/inbound.hpp"

namespace danerelay::smtp {
namespace {

std::string rejection(const auto& parsed) {
  if (const auto* r = std::get_if<Rejection>(&parsed)) return r->reply;
  return "";
}

TEST(CommandVerb, CaseInsensitiveWithArgument) {
  auto c = parse_verb("mail FROM:<a@b.example>");
  EXPECT_EQ(c.verb, Verb::mail);
  EXPECT_EQ(c.name, "MAIL");
  EXPECT_EQ(c.argument, "FROM:<a@b.example>");
  EXPECT_EQ(parse_verb("StartTLS").verb, Verb::starttls);
  EXPECT_EQ(parse_verb("QUIT").argument, "");
  EXPECT_EQ(parse_verb("XYZZY foo").verb, Verb::unknown);
  EXPECT_EQ(parse_verb("").name, "");
  EXPECT_EQ(parse_verb("EHLO   client.example  ").argument, "client.example");
}

TEST(CommandHelo, DomainsAndLiterals) {
  struct Row {
    std::string arg;
    std::string want;  // "" = accepted
  };
  const std::vector<Row> rows{
      {"client.example", ""},
      {"CLIENT_01", ""},
      {"[192.0.2.1]", ""},
      {"[IPv6:2001:db8::1]", ""},
      {"client.example trailing words", ""},
      {"", "501 5.5.4 Syntax: EHLO hostname"},
      {"[192.0.2.300]", "501 5.5.2 <[192.0.2.300]>: Helo command rejected: invalid ip address"},
      {"[2001:db8::1]", "501 5.5.2 <[2001:db8::1]>: Helo command rejected: invalid ip address"},
      {"bad<name>", "501 5.5.2 <bad<name>>: Helo command rejected: Invalid name"},
      {"a..b", "501 5.5.2 <a..b>: Helo command rejected: Invalid name"},
  };
  for (const auto& r : rows) {
    auto p = parse_helo(r.arg, Verb::ehlo);
    EXPECT_EQ(rejection(p), r.want) << r.arg;
  }
  EXPECT_EQ(rejection(parse_helo("", Verb::helo)), "501 5.5.4 Syntax: HELO hostname");
}

TEST(CommandMail, PathsAndParameters) {
  struct Row {
    std::string arg;
    std::string want;  // "" = accepted
  };
  const std::vector<Row> rows{
      {"FROM:<a@b.example>", ""},
      {"from:<a@b.example>", ""},
      {"FROM: <a@b.example>", ""},
      {"FROM:a@b.example", ""},
      {"FROM:<>", ""},
      {"FROM:<@relay.example,@r2.example:a@b.example>", ""},
      {"FROM:<\"john doe\"@b.example>", ""},
      {"FROM:<a@[192.0.2.1]>", ""},
      {"FROM:<a@b.example> SIZE=1000 BODY=8BITMIME RET=HDRS ENVID=QQ+2Bx AUTH=<>", ""},
      {"FROM:<a@b.example>  body=7bit  ", ""},
      {"FROM:<üser@b.example> SMTPUTF8", ""},
      {"FROM", "501 5.5.4 Syntax: MAIL FROM:<address>"},
      {"TO:<a@b.example>", "501 5.5.4 Syntax: MAIL FROM:<address>"},
      {"FROM:", "501 5.5.4 Syntax: MAIL FROM:<address>"},
      {"FROM:<a@b.example", "501 5.1.7 Bad sender address syntax"},
      {"FROM:<a@b.example>SIZE=1", "501 5.1.7 Bad sender address syntax"},
      {"FROM:<a b@b.example>", "501 5.1.7 Bad sender address syntax"},
      {"FROM:<a@-b.example>", "501 5.1.7 Bad sender address syntax"},
      {"FROM:<a..b@b.example>", "501 5.1.7 Bad sender address syntax"},
      {"FROM:<a@b..example>", "501 5.1.7 Bad sender address syntax"},
      {"FROM:<a@[192.0.2.999]>", "501 5.1.7 Bad sender address syntax"},
      {"FROM:<a\x01@b.example>", "501 5.1.7 Bad sender address syntax"},
      {"FROM:<user>", "504 5.5.2 <user>: Sender address rejected: need fully-qualified address"},
      {"FROM:<üser@b.example>", "553 5.6.7 Must declare SMTPUTF8 to send unicode address"},
      {"FROM:<a@b.example> SIZE=abc", "501 5.5.4 Bad message size syntax"},
      {"FROM:<a@b.example> SIZE=99999999999999999999999", "501 5.5.4 Bad message size syntax"},
      {"FROM:<a@b.example> SIZE", "501 5.5.4 Bad message size syntax"},
      {"FROM:<a@b.example> SIZE=1 SIZE=2", "501 5.5.4 Error: duplicate SIZE parameter"},
      {"FROM:<a@b.example> BODY=BINARYMIME", "555 5.5.4 Unsupported option: BODY=BINARYMIME"},
      {"FROM:<a@b.example> RET=ALL", "501 5.5.4 Bad RET parameter syntax"},
      {"FROM:<a@b.example> RET=FULL RET=HDRS", "501 5.5.4 Bad RET parameter syntax"},
      {"FROM:<a@b.example> ENVID=a+2b", "501 5.5.4 Bad ENVID parameter syntax"},
      {"FROM:<a@b.example> ENVID=a+0D+0A", "501 5.5.4 Bad ENVID parameter syntax"},
      {"FROM:<a@b.example> SMTPUTF8=yes", "555 5.5.4 Unsupported option: SMTPUTF8=yes"},
      {"FROM:<a@b.example> SMTPUTF8 SMTPUTF8", "501 5.5.4 Error: duplicate SMTPUTF8 parameter"},
      {"FROM:<a@b.example> AUTH=a AUTH=b", "503 5.5.4 Error: multiple AUTH= options"},
      {"FROM:<a@b.example> XFOO=bar", "555 5.5.4 Unsupported option: XFOO=bar"},
      {"FROM:<a@b.example> NOTIFY=NEVER", "555 5.5.4 Unsupported option: NOTIFY=NEVER"},
      {"FROM:<a@b.example> =x", "555 5.5.4 Unsupported option: =x"},
  };
  for (const auto& r : rows) {
    auto p = parse_mail(r.arg);
    EXPECT_EQ(rejection(p), r.want) << r.arg;
  }
  auto p = parse_mail("FROM:<a@b.example> SIZE=1000 BODY=8BITMIME RET=hdrs ENVID=QQ+2Bx SMTPUTF8");
  ASSERT_TRUE(std::holds_alternative<MailCommand>(p));
  const auto& m = std::get<MailCommand>(p);
  EXPECT_EQ(m.sender, "a@b.example");
  EXPECT_EQ(m.size, 1000u);
  EXPECT_TRUE(m.eightbit);
  EXPECT_TRUE(m.smtputf8);
  EXPECT_EQ(m.ret, "HDRS");
  EXPECT_EQ(m.envid, "QQ+x");
  EXPECT_EQ(std::get<MailCommand>(parse_mail("FROM:<>")).sender, "");
  EXPECT_EQ(std::get<MailCommand>(parse_mail("FROM:<@r.example:a@b.example>")).sender, "a@b.example");
}

TEST(CommandRcpt, PathsAndDsnParameters) {
  struct Row {
    std::string arg;
    bool utf8;
    std::string want;
  };
  const std::vector<Row> rows{
      {"TO:<c@d.example>", false, ""},
      {"TO:<postmaster>", false, ""},
      {"TO:<Postmaster>", false, ""},
      {"TO:<c@d.example> NOTIFY=NEVER", false, ""},
      {"TO:<c@d.example> NOTIFY=success,FAILURE,Delay", false, ""},
      {"TO:<c@d.example> ORCPT=rfc822;c+40d.example", false, ""},
      {"TO:<ü@d.example>", true, ""},
      {"TO:<>", false, "501 5.1.3 Bad recipient address syntax"},
      {"TO:c", false, "504 5.5.2 <c>: Recipient address rejected: need fully-qualified address"},
      {"FROM:<c@d.example>", false, "501 5.5.4 Syntax: RCPT TO:<address>"},
      {"TO:<c@d.example", false, "501 5.1.3 Bad recipient address syntax"},
      {"TO:<ü@d.example>", false, "553 5.6.7 Must declare SMTPUTF8 to send unicode address"},
      {"TO:<c@d.example> NOTIFY=NEVER,SUCCESS", false, "501 5.5.4 Error: Bad NOTIFY parameter syntax"},
      {"TO:<c@d.example> NOTIFY=SUCCESS,SUCCESS", false, "501 5.5.4 Error: Bad NOTIFY parameter syntax"},
      {"TO:<c@d.example> NOTIFY=SOMETIMES", false, "501 5.5.4 Error: Bad NOTIFY parameter syntax"},
      {"TO:<c@d.example> NOTIFY=SUCCESS NOTIFY=DELAY", false, "501 5.5.4 Error: Bad NOTIFY parameter syntax"},
      {"TO:<c@d.example> ORCPT=c@d.example", false, "501 5.5.4 Error: Bad ORCPT parameter syntax"},
      {"TO:<c@d.example> ORCPT=rfc822;c+4", false, "501 5.5.4 Error: Bad ORCPT parameter syntax"},
      {"TO:<c@d.example> ORCPT=rfc822;c+ZZd", false, "501 5.5.4 Error: Bad ORCPT parameter syntax"},
      {"TO:<c@d.example> SIZE=10", false, "555 5.5.4 Unsupported option: SIZE=10"},
  };
  for (const auto& r : rows) {
    auto p = parse_rcpt(r.arg, r.utf8);
    EXPECT_EQ(rejection(p), r.want) << r.arg;
  }
  auto p = parse_rcpt("TO:<c@d.example> NOTIFY=SUCCESS,DELAY ORCPT=rfc822;c+2Bx@d.example", false);
  ASSERT_TRUE(std::holds_alternative<RcptCommand>(p));
  const auto& rc = std::get<RcptCommand>(p);
  EXPECT_EQ(rc.address, "c@d.example");
  EXPECT_EQ(rc.notify, kNotifySuccess | kNotifyDelay);
  EXPECT_EQ(rc.orcpt, "rfc822;c+x@d.example");
  EXPECT_EQ(std::get<RcptCommand>(parse_rcpt("TO:<c@d.example> NOTIFY=never", false)).notify, kNotifyNever);
  const auto pm = std::get<RcptCommand>(parse_rcpt("TO:<postmaster>", false));
  EXPECT_TRUE(pm.postmaster);
  EXPECT_EQ(pm.address, "postmaster");
}

}  // namespace
}  // namespace danerelay::smtp
