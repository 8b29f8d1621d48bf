// tests/smtp/dot_stuffer_test.cpp — RFC 5321 §4.5.2 transparency, fed whole and byte by byte.
#include "smtp/dot_stuffer.hpp"

#include <gtest/gtest.h>

namespace danerelay::smtp {
namespace {

struct Case {
  const char* name;
  std::string in;
  std::string out;
};

class Stuff : public ::testing::TestWithParam<Case> {};

TEST_P(Stuff, WholeAndByteByByteAgree) {
  std::string whole;
  DotStuffer a;
  a.feed(GetParam().in, whole);
  a.finish(whole);
  EXPECT_EQ(whole, GetParam().out);

  std::string bytes;
  DotStuffer b;
  for (char c : GetParam().in) b.feed(std::string_view(&c, 1), bytes);
  b.finish(bytes);
  EXPECT_EQ(bytes, GetParam().out);
}

// The memchr fast path (issue 12): every case cut into two chunks at every offset encodes as
// the whole does.
TEST_P(Stuff, SplitAtEveryOffsetAgrees) {
  const std::string& in = GetParam().in;
  for (std::size_t cut = 0; cut <= in.size(); ++cut) {
    std::string out;
    DotStuffer d;
    d.feed(std::string_view(in).substr(0, cut), out);
    d.feed(std::string_view(in).substr(cut), out);
    d.finish(out);
    EXPECT_EQ(out, GetParam().out) << "cut at " << cut;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Rfc5321, Stuff,
    ::testing::Values(Case{"Empty", "", ".\r\n"}, Case{"PlainLine", "hello\r\n", "hello\r\n.\r\n"},
                      Case{"MissingFinalCrlfIsAdded", "hello", "hello\r\n.\r\n"},
                      Case{"LeadingDotIsDoubled", ".hidden\r\n..two\r\n", "..hidden\r\n...two\r\n.\r\n"},
                      Case{"LoneDotLineCannotEndTheData", "a\r\n.\r\nb\r\n", "a\r\n..\r\nb\r\n.\r\n"},
                      Case{"BareLfBecomesCrlf", "a\nb\n", "a\r\nb\r\n.\r\n"},
                      Case{"BareLfDotLfCannotSmuggleAnEnd", "a\n.\nMAIL FROM:<x>\n", "a\r\n..\r\nMAIL FROM:<x>\r\n.\r\n"},
                      Case{"TrailingCrGetsItsLf", "a\r", "a\r\n.\r\n"},
                      Case{"DotInsideALineStays", "a.b\r\n", "a.b\r\n.\r\n"},
                      Case{"MixedLinesAndDots", ".a\r\nb\n\n.\r\r\n..\nc", "..a\r\nb\r\n\r\n..\r\r\n...\r\nc\r\n.\r\n"},
                      Case{"LfAtStartAndCrLfAcrossLines", "\n\r\n.\r\n", "\r\n\r\n..\r\n.\r\n"}),
    [](const auto& p) { return std::string(p.param.name); });

}  // namespace
}  // namespace danerelay::smtp
