// tests/smtp/data_reader_test.cpp — smtp/data_reader.hpp: end of data only at CRLF.CRLF, bare CR
// and LF rejected (SMTP smuggling), dot-unstuffing, limits, Message-ID; every case is also fed
// one byte at a time.
#include "smtp/data_reader.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace danerelay::smtp {
namespace {

struct Result {
  DataReader::Status status = DataReader::Status::need_more;
  std::string message;
  std::size_t consumed = 0;
  bool too_big = false;
  bool too_long = false;
  std::string message_id;
  std::uint64_t received = 0;
};

Result run(std::string_view in, bool bytewise, std::uint64_t max_size = 1000000, std::size_t max_line = 1000) {
  DataReader r(max_size, max_line);
  Result res;
  if (!bytewise) {
    res.status = r.feed(in, res.message, res.consumed);
  } else {
    for (std::size_t i = 0; i < in.size(); ++i) {
      std::size_t c = 0;
      res.status = r.feed(in.substr(i, 1), res.message, c);
      res.consumed += c;
      if (res.status != DataReader::Status::need_more) break;
    }
  }
  res.too_big = r.too_big();
  res.too_long = r.line_too_long();
  res.message_id = r.message_id();
  res.received = r.received_count();
  return res;
}

class DataReaderTest : public ::testing::TestWithParam<bool> {};

TEST_P(DataReaderTest, PlainMessageEndsAtCrLfDotCrLf) {
  const std::string in = "Subject: x\r\n\r\nHello\r\n.\r\nQUIT\r\n";
  const auto r = run(in, GetParam());
  EXPECT_EQ(r.status, DataReader::Status::done);
  EXPECT_EQ(r.message, "Subject: x\r\n\r\nHello\r\n");
  EXPECT_EQ(r.consumed, in.size() - 6);  // "QUIT\r\n" stays for the command loop
}

TEST_P(DataReaderTest, EmptyMessageRightAfter354) {
  const auto r = run(".\r\n", GetParam());
  EXPECT_EQ(r.status, DataReader::Status::done);
  EXPECT_EQ(r.message, "");
}

TEST_P(DataReaderTest, DotUnstuffing) {
  const auto r = run("..hidden\r\n...\r\n.x\r\n.\r\n", GetParam());
  EXPECT_EQ(r.status, DataReader::Status::done);
  EXPECT_EQ(r.message, ".hidden\r\n..\r\nx\r\n");
}

TEST_P(DataReaderTest, SmugglingSequencesAreErrorsNotEnds) {
  struct Row {
    std::string in;
    DataReader::Status want;
  };
  const std::vector<Row> rows{
      {"a\r\n\n.\n", DataReader::Status::bare_lf},
      {"a\n.\nMAIL FROM:<x@y>\r\n", DataReader::Status::bare_lf},
      {"a\r\n\r.\n", DataReader::Status::bare_cr},
      {"a\r.\r\n", DataReader::Status::bare_cr},
      {"a\r\n\n.\r\n", DataReader::Status::bare_lf},
      {"a\n.\r\n", DataReader::Status::bare_lf},
      {"a\r\n.\n", DataReader::Status::bare_lf},
      {"a\r\n.\r\r\n", DataReader::Status::bare_cr},
      {"abc\rdef\r\n.\r\n", DataReader::Status::bare_cr},
      {"\n.\r\n", DataReader::Status::bare_lf},
      {".\n", DataReader::Status::bare_lf},
  };
  for (const auto& row : rows) {
    const auto r = run(row.in, GetParam());
    EXPECT_EQ(r.status, row.want) << testing::PrintToString(row.in);
  }
}

TEST_P(DataReaderTest, CrAtChunkEndWaitsForLf) {
  DataReader r(1000, 1000);
  std::string out;
  std::size_t c = 0;
  EXPECT_EQ(r.feed("line\r", out, c), DataReader::Status::need_more);
  EXPECT_EQ(r.feed("\n.\r", out, c), DataReader::Status::need_more);
  EXPECT_EQ(r.feed("\n", out, c), DataReader::Status::done);
  EXPECT_EQ(out, "line\r\n");
}

TEST_P(DataReaderTest, TooBigReadsToTheEnd) {
  const std::string in = std::string(50, 'x') + "\r\n" + std::string(50, 'y') + "\r\n.\r\n";
  const auto r = run(in, GetParam(), 60);
  EXPECT_EQ(r.status, DataReader::Status::done);
  EXPECT_TRUE(r.too_big);
  EXPECT_EQ(r.consumed, in.size());
}

TEST_P(DataReaderTest, LineLengthCountsCrLf) {
  const std::string ok = std::string(998, 'a') + "\r\n.\r\n";
  EXPECT_FALSE(run(ok, GetParam()).too_long);
  const std::string bad = std::string(999, 'a') + "\r\n.\r\n";
  const auto r = run(bad, GetParam());
  EXPECT_EQ(r.status, DataReader::Status::done);
  EXPECT_TRUE(r.too_long);
}

TEST_P(DataReaderTest, MessageIdFromHeadersOnly) {
  const auto r = run("From: a\r\nMessage-ID:\r\n <abc@example.org>\r\nSubject: s\r\n\r\nMessage-ID: <body@x>\r\n.\r\n", GetParam());
  EXPECT_EQ(r.message_id, "<abc@example.org>");
  const auto r2 = run("message-id: <x@y>\r\n\r\n.\r\n", GetParam());
  EXPECT_EQ(r2.message_id, "<x@y>");
  const auto r3 = run("Subject: s\r\n\r\nMessage-ID: <body@x>\r\n.\r\n", GetParam());
  EXPECT_EQ(r3.message_id, "");
}

// Checklist L-01: the hop count is the number of Received: fields in the header section, in any
// case, folded or not; the body, and anything after a line that is no header field, is not
// looked at.
TEST_P(DataReaderTest, L01_ReceivedFieldsAreCountedInTheHeaderSectionOnly) {
  struct Row {
    std::string in;
    std::uint64_t want;
  };
  const std::vector<Row> rows{
      {"Received: a\r\nreceived: b\r\nRECEIVED:c\r\nReceived : obsolete space\r\n\r\nReceived: body\r\n.\r\n", 4},
      {"Received: from a\r\n\tby b; folded\r\n Received: not a field\r\nSubject: s\r\n\r\n.\r\n", 1},
      {"Subject: s\r\n\r\nReceived: x\r\nReceived: y\r\n.\r\n", 0},
      {"Received: a\r\nthis line is body\r\nReceived: b\r\n.\r\n", 1},        // no empty line before the body
      {" Received: leading space\r\nReceived: b\r\n.\r\n", 0},              // a continuation of nothing
      {"X-Received: a\r\nReceived-SPF: pass\r\nReceivedx: c\r\n\r\n.\r\n", 0},
      {"..Received: stuffed dot\r\n.Received: unstuffed\r\n\r\n.\r\n", 1},  // ".Received" is no field name; "Received" is
      {"Received: only headers\r\n.\r\n", 1},
  };
  for (const auto& row : rows) {
    const auto r = run(row.in, GetParam());
    EXPECT_EQ(r.status, DataReader::Status::done) << testing::PrintToString(row.in);
    EXPECT_EQ(r.received, row.want) << testing::PrintToString(row.in);
  }
}

// The memchr fast path (issue 12): whatever the chunking, the reader decides as it does on the
// whole input. Every input below is cut into two feeds at every offset, and into three at every
// pair of offsets, and must give the same status, message, consumed count, flags, Message-ID and
// hop count. The inputs hold each special case of the scan: CRLF.CRLF (the end), stuffed dots,
// a lone "." line inside the message, a CR at a line start, bare CR and bare LF, an over-long line.
Result run_split(std::string_view in, std::vector<std::size_t> cuts, std::uint64_t max_size = 1000000,
                 std::size_t max_line = 40) {
  DataReader r(max_size, max_line);
  Result res;
  cuts.push_back(in.size());
  std::size_t from = 0;
  for (const std::size_t to : cuts) {
    std::size_t c = 0;
    res.status = r.feed(in.substr(from, to - from), res.message, c);
    res.consumed += c;
    if (res.status != DataReader::Status::need_more) break;
    EXPECT_EQ(c, to - from);  // need_more: the whole chunk was used
    from = to;
  }
  res.too_big = r.too_big();
  res.too_long = r.line_too_long();
  res.message_id = r.message_id();
  res.received = r.received_count();
  return res;
}

void expect_same(const Result& a, const Result& b, const std::string& what) {
  EXPECT_EQ(a.status, b.status) << what;
  // After bare CR/LF or a limit the message is rejected, and what was produced before is not
  // defined (the reader stops producing); a message that is accepted must be exactly the same.
  if (a.status == DataReader::Status::done && !a.too_big && !a.too_long) {
    EXPECT_EQ(a.message, b.message) << what;
  }
  EXPECT_EQ(a.consumed, b.consumed) << what;
  EXPECT_EQ(a.too_big, b.too_big) << what;
  EXPECT_EQ(a.too_long, b.too_long) << what;
  EXPECT_EQ(a.message_id, b.message_id) << what;
  EXPECT_EQ(a.received, b.received) << what;
}

TEST(DataReaderSplit, EndOfDataSplitAtEveryOffset) {
  const std::string in = "Received: a\r\nMessage-ID: <m@x>\r\n\r\nbody\r\n..dot\r\n.\r\nQUIT\r\n";
  const Result whole = run_split(in, {});
  ASSERT_EQ(whole.status, DataReader::Status::done);
  EXPECT_EQ(whole.message, "Received: a\r\nMessage-ID: <m@x>\r\n\r\nbody\r\n.dot\r\n");
  EXPECT_EQ(whole.consumed, in.size() - 6);
  EXPECT_EQ(whole.message_id, "<m@x>");
  EXPECT_EQ(whole.received, 1U);
  for (std::size_t a = 0; a <= in.size(); ++a) {
    expect_same(run_split(in, {a}), whole, "cut at " + std::to_string(a));
    for (std::size_t b = a; b <= in.size(); ++b) {
      expect_same(run_split(in, {a, b}), whole, "cuts at " + std::to_string(a) + "," + std::to_string(b));
    }
  }
}

TEST(DataReaderSplit, HostileInputsSplitAtEveryOffset) {
  const std::vector<std::string> inputs{
      ".\r\n",
      "\r\n.\r\n",
      "a\r\n.\r\n",
      "..\r\n.\r\n",
      ".x\r\n..\r\n...\r\n.\r\n",
      "a\r\n\r.\n",               // bare CR
      "a\r.\r\n",                 // bare CR before a dot
      "abc\rdef\r\n.\r\n",        // bare CR inside a line
      "a\n.\nMAIL FROM:<x@y>\r\n",  // bare LF (smuggling)
      "a\r\n.\n",                 // ".LF" is no end
      "a\r\n.\r\r\n",             // ".CRCRLF" is no end
      "Subject: s\r\n" + std::string(60, 'x') + "\r\nafter\r\n.\r\n",  // a line over max_line
      std::string(100, 'y') + "\r\n.\r\n",                              // over max_size too
  };
  for (const auto& in : inputs) {
    const Result whole = run_split(in, {}, 80);
    const Result bytewise = run(in, true, 80, 40);
    expect_same(bytewise, whole, "bytewise " + testing::PrintToString(in));
    for (std::size_t a = 0; a <= in.size(); ++a) {
      expect_same(run_split(in, {a}, 80), whole, testing::PrintToString(in) + " cut at " + std::to_string(a));
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Chunking, DataReaderTest, ::testing::Values(false, true),
                         [](const ::testing::TestParamInfo<bool>& p) { return p.param ? "ByteByByte" : "OneChunk"; });

}  // namespace
}  // namespace danerelay::smtp
