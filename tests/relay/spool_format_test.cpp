// tests/relay/spool_format_test.cpp — the spool's bytes pinned by golden values
// (relay/queue/spool_format.hpp). A spool written by one version is read by the next, so a change
// to any of these strings is a format change: it needs a new format version and a reader for the
// old one, not an updated expectation.
#include "relay/queue/spool_format.hpp"

#include <gtest/gtest.h>

#include <string>

namespace danerelay::relay::spool_format {
namespace {

std::string hex(std::string_view bytes) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out += digits[c >> 4];
    out += digits[c & 0x0f];
  }
  return out;
}

Envelope golden_envelope() {
  Envelope e;
  e.id = *QueueId::parse("0123456789AB");
  e.sender = "app@example.org";
  e.recipients = {Recipient{"a@example.net", "rfc822;a@example.net", notify_failure | notify_delay},
                  Recipient{"b@example.net", "", notify_unset}};
  e.ret = Ret::headers;
  e.envid = "QQ314159";
  e.size = 1234;
  e.eightbit = true;
  e.smtputf8 = false;
  e.arrival = Clock::time_point(std::chrono::duration_cast<Clock::duration>(std::chrono::microseconds(1796294755123456)));
  return e;
}

TEST(SpoolFormat, Crc32IsIeeeAndContinuable) {
  EXPECT_EQ(crc32("123456789"), 0xCBF43926u);  // the CRC-32/IEEE check value
  EXPECT_EQ(crc32("6789", crc32("12345")), crc32("123456789"));
}

TEST(SpoolFormat, EnvelopeRecordGolden) {
  EXPECT_EQ(envelope_record(golden_envelope()),
            R"({"arrival":1796294755123456,"eightbit":true,"envid":"QQ314159","id":"0123456789AB",)"
            R"("recipients":[{"address":"a@example.net","notify":12,"orcpt":"rfc822;a@example.net"},)"
            R"({"address":"b@example.net","notify":0,"orcpt":""}],"ret":"headers","sender":"app@example.org",)"
            R"("size":1234,"smtputf8":false})");
}

TEST(SpoolFormat, TrailerGolden) {
  const std::string record = envelope_record(golden_envelope());
  const std::string t = make_trailer(1234, record);
  ASSERT_EQ(t.size(), kTrailerSize);
  // magic "DRSPOOL\n", version 1, CRC, message length 1234, record length.
  EXPECT_EQ(hex(t.substr(0, 12)), "445253504f4f4c0a01000000");
  EXPECT_EQ(hex(t.substr(16, 8)), "d204000000000000");
  ASSERT_EQ(record.size(), 0x123u);
  EXPECT_EQ(hex(t.substr(24, 8)), "2301000000000000");
  // The CRC (bytes 12..15) as every spool written so far carries it.
  EXPECT_EQ(hex(t), "445253504f4f4c0a010000002ef8e3b5d2040000000000002301000000000000");
}

TEST(SpoolFormat, StateRecordGolden) {
  MessageState s;
  s.recipients.resize(2);
  s.recipients[0].status = RecipientStatus::sent;
  s.recipients[0].dsn = "2.0.0";
  s.recipients[0].remote_mta = "mx.example.net";
  s.recipients[0].last_attempt = 1796294755;
  s.recipients[1].status = RecipientStatus::pending;
  s.recipients[1].dsn = "4.7.5";
  s.recipients[1].reason = "TLSA records do not match";
  s.recipients[1].diagnostic = "smtp; 421 bad \xff byte";
  s.recipients[1].delay_notified = true;
  s.recipients[1].notice_owed = true;  // added after format 1 shipped: readers treat it as absent = false
  s.attempts = 3;
  s.next_attempt = 1796295000;
  s.hold = false;
  s.forced_expire = true;
  // The byte that is not UTF-8 is stored as U+FFFD, never failing the save.
  EXPECT_EQ(state_record(s),
            R"({"attempts":3,"forced_expire":true,"hold":false,"next_attempt":1796295000,"recipients":[)"
            R"({"delay_notified":false,"diagnostic":"","dsn":"2.0.0","last_attempt":1796294755,"notice_owed":false,)"
            R"("reason":"","remote_mta":"mx.example.net","status":"sent"},{"delay_notified":true,)"
            "\"diagnostic\":\"smtp; 421 bad \xEF\xBF\xBD byte\","
            R"("dsn":"4.7.5","last_attempt":0,"notice_owed":true,"reason":"TLSA records do not match","remote_mta":"",)"
            R"("status":"pending"}],"version":1})");
}

TEST(SpoolFormat, RecordsRoundTrip) {
  const Envelope e = golden_envelope();
  const Envelope back = parse_envelope_record(envelope_record(e));
  EXPECT_EQ(back.id, e.id);
  EXPECT_EQ(back.sender, e.sender);
  ASSERT_EQ(back.recipients.size(), 2u);
  EXPECT_EQ(back.recipients[0].orcpt, "rfc822;a@example.net");
  EXPECT_EQ(back.recipients[0].notify, notify_failure | notify_delay);
  EXPECT_EQ(back.ret, Ret::headers);
  EXPECT_EQ(back.envid, "QQ314159");
  EXPECT_EQ(back.size, 1234u);
  EXPECT_TRUE(back.eightbit);
  EXPECT_EQ(back.arrival, e.arrival);

  MessageState s = initial_state(e);
  ASSERT_EQ(s.recipients.size(), 2u);
  s.recipients[1].status = RecipientStatus::bounced;
  s.attempts = 7;
  const MessageState sb = parse_state_record(state_record(s));
  EXPECT_EQ(sb.recipients[1].status, RecipientStatus::bounced);
  EXPECT_EQ(sb.attempts, 7u);
}

TEST(SpoolFormat, TrailerIsCheckedBeforeAnythingIsBelieved) {
  const std::string record = envelope_record(golden_envelope());
  const std::string t = make_trailer(1234, record);
  const std::uint64_t file_size = 1234 + record.size() + kTrailerSize;
  std::string why;
  const auto ok = parse_trailer(t, file_size, &why);
  ASSERT_TRUE(ok) << why;
  EXPECT_EQ(ok->message_length, 1234u);
  EXPECT_EQ(ok->record_length, record.size());
  EXPECT_TRUE(checksum_matches(t, record));

  EXPECT_FALSE(parse_trailer(t, file_size + 1, &why));
  EXPECT_EQ(why, "trailer lengths do not match the file size");
  EXPECT_FALSE(parse_trailer(t, kTrailerSize - 1, &why));
  std::string bad_magic = t;
  bad_magic[0] = 'X';
  EXPECT_FALSE(parse_trailer(bad_magic, file_size, &why));
  EXPECT_EQ(why, "no trailer (incomplete or not a spool file)");
  std::string v2 = t;
  v2[8] = 2;
  EXPECT_FALSE(parse_trailer(v2, file_size, &why));
  EXPECT_EQ(why, "unknown format version 2");

  std::string flipped = record;
  flipped[5] ^= 0x01;
  EXPECT_FALSE(checksum_matches(t, flipped));
  std::string bad_crc = t;
  bad_crc[12] ^= 0x01;
  EXPECT_FALSE(checksum_matches(bad_crc, record));
}

}  // namespace
}  // namespace danerelay::relay::spool_format
