// tests/smtp/reply_test.cpp — the sans-I/O reply parser from tables of lines.
#include "smtp/reply.hpp"

#include <gtest/gtest.h>

#include <vector>

namespace danerelay::smtp {
namespace {

struct Case {
  const char* name;
  std::vector<std::string> lines;
  ReplyParser::Status want;
  int code;
  const char* enhanced;
  const char* one_line;
};

class ParseReply : public ::testing::TestWithParam<Case> {};

TEST_P(ParseReply, FromLines) {
  const Case& c = GetParam();
  ReplyParser p;
  ReplyParser::Status st = ReplyParser::Status::need_more;
  for (const auto& l : c.lines) {
    st = p.feed(l);
    if (st != ReplyParser::Status::need_more) break;
  }
  ASSERT_EQ(st, c.want) << p.error();
  if (st != ReplyParser::Status::complete) {
    EXPECT_EQ(p.error().empty(), st == ReplyParser::Status::need_more) << p.error();
    return;
  }
  Reply r = p.take();
  EXPECT_EQ(r.code, c.code);
  EXPECT_EQ(r.enhanced, c.enhanced);
  EXPECT_EQ(r.one_line(), c.one_line);
}

using S = ReplyParser::Status;
INSTANTIATE_TEST_SUITE_P(
    Rfc5321, ParseReply,
    ::testing::Values(
        Case{"SingleLine", {"250 2.0.0 Ok: queued as 3F2A"}, S::complete, 250, "2.0.0", "250 2.0.0 Ok: queued as 3F2A"},
        Case{"MultiLine", {"250-mx.example Hello", "250-PIPELINING", "250 STARTTLS"}, S::complete, 250, "",
             "250 mx.example Hello PIPELINING STARTTLS"},
        Case{"CodeOnly", {"354"}, S::complete, 354, "", "354"},
        Case{"NoEnhancedCodeWhenClassDiffers", {"550 4.1.1 odd"}, S::complete, 550, "", "550 4.1.1 odd"},
        Case{"EnhancedCodeWithThreeDigitParts", {"451 4.7.650 rate limited"}, S::complete, 451, "4.7.650",
             "451 4.7.650 rate limited"},
        Case{"IncompleteMultiLine", {"220-first"}, S::need_more, 0, "", ""},
        Case{"CodeChangesMidReply", {"250-a", "251 b"}, S::malformed, 0, "", ""},
        Case{"NotDigits", {"2x0 hello"}, S::malformed, 0, "", ""},
        Case{"ClassOutOfRange", {"650 nope"}, S::malformed, 0, "", ""},
        Case{"NoSeparator", {"250hello"}, S::malformed, 0, "", ""},
        Case{"TooShort", {"25"}, S::malformed, 0, "", ""},
        Case{"LineTooLong", {"250 " + std::string(5000, 'a')}, S::malformed, 0, "", ""}),
    [](const auto& p) { return std::string(p.param.name); });

TEST(ReplyParser, TooManyLinesIsMalformed) {
  ReplyParser p(ReplyParser::Limits{4096, 3});
  EXPECT_EQ(p.feed("250-a"), ReplyParser::Status::need_more);
  EXPECT_EQ(p.feed("250-b"), ReplyParser::Status::need_more);
  EXPECT_EQ(p.feed("250-c"), ReplyParser::Status::need_more);
  EXPECT_EQ(p.feed("250 d"), ReplyParser::Status::malformed);
}

TEST(ReplyParser, ParsesConsecutiveRepliesAfterTake) {
  ReplyParser p;
  ASSERT_EQ(p.feed("250 2.1.0 Ok"), ReplyParser::Status::complete);
  EXPECT_EQ(p.take().code, 250);
  ASSERT_EQ(p.feed("550 5.1.1 <x@y>: unknown"), ReplyParser::Status::complete);
  Reply r = p.take();
  EXPECT_TRUE(r.permanent());
  EXPECT_EQ(r.dsn(), "5.1.1");
}

TEST(Reply, DsnFallsBackToTheCodeClass) {
  Reply r;
  r.code = 421;
  EXPECT_EQ(r.dsn(), "4.0.0");
  EXPECT_TRUE(r.transient());
}

}  // namespace
}  // namespace danerelay::smtp
