// relay/queue/spool_format.cpp — see spool_format.hpp.
#include "relay/queue/spool_format.hpp"

#include <nlohmann/json.hpp>
#include <zlib.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <stdexcept>

namespace danerelay::relay::spool_format {

namespace {

using json = nlohmann::json;

constexpr std::array<char, 8> kMagic = {'D', 'R', 'S', 'P', 'O', 'O', 'L', '\n'};
constexpr std::uint32_t kFormatVersion = 1;
constexpr std::array<char, 8> kSegmentMagic = {'D', 'R', 'S', 'E', 'G', 'v', '1', '\n'};

void put_le(char* out, std::uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i, v >>= 8) out[i] = static_cast<char>(v & 0xFFU);
}
std::uint64_t get_le(const char* in, int bytes) {
  std::uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(in[i]);
  return v;
}

std::string_view ret_name(Ret r) {
  switch (r) {
    case Ret::full: return "full";
    case Ret::headers: return "headers";
    case Ret::unspecified: break;
  }
  return "";
}

std::int64_t unix_micros(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count();
}

}  // namespace

// CRC-32/IEEE, continuable: crc32(b, crc32(a)) == crc32(a+b). zlib's, which is the same CRC
// (same polynomial, pre- and post-inversion) computed several bytes at a time: the bytewise table
// loop it replaced was 2.6 % of the relay's samples under load.
std::uint32_t crc32(std::string_view data, std::uint32_t crc) {
  if (data.empty()) return crc;  // zlib answers a null buffer with 0, its initial value, not `crc`
  return static_cast<std::uint32_t>(
      ::crc32_z(crc, reinterpret_cast<const Bytef*>(data.data()), data.size()));
}

std::string make_trailer(std::uint64_t message_length, std::string_view record) {
  std::string t(kTrailerSize, '\0');
  std::copy(kMagic.begin(), kMagic.end(), t.begin());
  put_le(t.data() + 8, kFormatVersion, 4);
  put_le(t.data() + 16, message_length, 8);
  put_le(t.data() + 24, record.size(), 8);
  put_le(t.data() + 12, crc32(t, crc32(record)), 4);  // computed with the field still zero
  return t;
}

std::optional<Trailer> parse_trailer(std::string_view trailer, std::uint64_t file_size, std::string* why) {
  if (trailer.size() != kTrailerSize || !std::equal(kMagic.begin(), kMagic.end(), trailer.begin())) {
    *why = "no trailer (incomplete or not a spool file)";
    return std::nullopt;
  }
  if (const auto v = get_le(trailer.data() + 8, 4); v != kFormatVersion) {
    *why = "unknown format version " + std::to_string(v);
    return std::nullopt;
  }
  Trailer t;
  t.message_length = get_le(trailer.data() + 16, 8);
  t.record_length = get_le(trailer.data() + 24, 8);
  const std::uint64_t payload = file_size - kTrailerSize;
  if (file_size < kTrailerSize || t.record_length > kMaxEnvelopeRecord || t.record_length > payload ||
      payload - t.record_length != t.message_length) {
    *why = "trailer lengths do not match the file size";
    return std::nullopt;
  }
  return t;
}

bool checksum_matches(std::string_view trailer, std::string_view record) {
  if (trailer.size() != kTrailerSize) return false;
  const auto stored = static_cast<std::uint32_t>(get_le(trailer.data() + 12, 4));
  std::string zeroed(trailer);
  std::fill(zeroed.begin() + 12, zeroed.begin() + 16, '\0');
  return crc32(zeroed, crc32(record)) == stored;
}

std::string segment_name(std::uint64_t seq) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string n(16, '0');
  for (int i = 15; i >= 0; --i, seq >>= 4) n[static_cast<std::size_t>(i)] = kHex[seq & 0xFU];
  return n;
}

std::optional<std::uint64_t> parse_segment_name(std::string_view name) {
  if (name.size() != 16) return std::nullopt;
  std::uint64_t v = 0;
  for (char c : name) {
    int d = c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
    if (d < 0) return std::nullopt;
    v = (v << 4) | static_cast<std::uint64_t>(d);
  }
  return v;
}

std::string segment_header(SegmentRecord type, std::string_view a, std::string_view b) {
  std::string h(kSegmentHeaderSize, '\0');
  std::copy(kSegmentMagic.begin(), kSegmentMagic.end(), h.begin());
  put_le(h.data() + 8, static_cast<std::uint32_t>(type), 4);
  put_le(h.data() + 16, a.size(), 8);
  put_le(h.data() + 24, b.size(), 8);
  put_le(h.data() + 12, crc32(b, crc32(a, crc32(h))), 4);  // computed with the field still zero
  return h;
}

std::optional<SegmentHeader> parse_segment_header(std::string_view header, std::uint64_t remaining, std::string* why) {
  if (header.size() != kSegmentHeaderSize || !std::equal(kSegmentMagic.begin(), kSegmentMagic.end(), header.begin())) {
    *why = "no record header";
    return std::nullopt;
  }
  SegmentHeader h;
  const auto type = get_le(header.data() + 8, 4);
  if (type != static_cast<std::uint32_t>(SegmentRecord::message) && type != static_cast<std::uint32_t>(SegmentRecord::done)) {
    *why = "unknown record type " + std::to_string(type);
    return std::nullopt;
  }
  h.type = static_cast<SegmentRecord>(type);
  h.a_length = get_le(header.data() + 16, 8);
  h.b_length = get_le(header.data() + 24, 8);
  if (h.a_length > kMaxEnvelopeRecord || h.b_length > remaining || h.a_length > remaining - h.b_length ||
      (h.type == SegmentRecord::done && h.b_length != 0)) {
    *why = "record lengths run past the end of the segment";
    return std::nullopt;
  }
  return h;
}

bool segment_checksum_matches(std::string_view header, std::string_view payload) {
  if (header.size() != kSegmentHeaderSize) return false;
  const auto stored = static_cast<std::uint32_t>(get_le(header.data() + 12, 4));
  std::string zeroed(header);
  std::fill(zeroed.begin() + 12, zeroed.begin() + 16, '\0');
  return crc32(payload, crc32(zeroed)) == stored;
}

// Strict UTF-8 (nlohmann's default): an address that is not valid UTF-8 makes commit() fail
// rather than be stored altered.
std::string envelope_record(const Envelope& e) {
  json j;
  j["id"] = e.id.str();
  j["sender"] = e.sender;
  json rcpts = json::array();
  for (const auto& r : e.recipients) rcpts.push_back({{"address", r.address}, {"orcpt", r.orcpt}, {"notify", r.notify}});
  j["recipients"] = std::move(rcpts);
  j["ret"] = ret_name(e.ret);
  j["envid"] = e.envid;
  j["size"] = e.size;
  j["eightbit"] = e.eightbit;
  j["smtputf8"] = e.smtputf8;
  j["arrival"] = unix_micros(e.arrival);
  return j.dump();
}

// Throws json::exception on a wrong shape; the caller turns that into a warning.
Envelope parse_envelope_record(std::string_view text) {
  const json j = json::parse(text);
  const auto id = QueueId::parse(j.at("id").get<std::string>());
  if (!id) throw std::runtime_error("bad queue id in envelope record");
  Envelope e;
  e.id = *id;
  e.sender = j.at("sender").get<std::string>();
  for (const auto& r : j.at("recipients")) {
    e.recipients.push_back(Recipient{r.at("address").get<std::string>(), r.at("orcpt").get<std::string>(), r.at("notify").get<std::uint8_t>()});
  }
  const auto ret = j.at("ret").get<std::string>();
  e.ret = ret == "full" ? Ret::full : ret == "headers" ? Ret::headers : Ret::unspecified;
  e.envid = j.at("envid").get<std::string>();
  e.size = j.at("size").get<std::uint64_t>();
  e.eightbit = j.at("eightbit").get<bool>();
  e.smtputf8 = j.at("smtputf8").get<bool>();
  e.arrival = Clock::time_point(std::chrono::duration_cast<Clock::duration>(std::chrono::microseconds(j.at("arrival").get<std::int64_t>())));
  return e;
}

// Remote replies may carry bytes that are not UTF-8; they are for humans, so replace them
// (U+FFFD) instead of failing the save.
std::string state_record(const MessageState& s) {
  json j;
  j["version"] = 1;
  json rcpts = json::array();
  for (const auto& r : s.recipients) {
    rcpts.push_back({{"status", to_string(r.status)},
                     {"dsn", r.dsn},
                     {"reason", r.reason},
                     {"remote_mta", r.remote_mta},
                     {"diagnostic", r.diagnostic},
                     {"last_attempt", r.last_attempt},
                     {"delay_notified", r.delay_notified},
                     {"notice_owed", r.notice_owed}});
  }
  j["recipients"] = std::move(rcpts);
  j["attempts"] = s.attempts;
  j["next_attempt"] = s.next_attempt;
  j["hold"] = s.hold;
  j["forced_expire"] = s.forced_expire;
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

MessageState parse_state_record(std::string_view text) {
  const json j = json::parse(text);
  MessageState s;
  for (const auto& r : j.at("recipients")) {
    RecipientState rs;
    const auto status = parse_recipient_status(r.at("status").get<std::string>());
    if (!status) throw std::runtime_error("unknown recipient status");
    rs.status = *status;
    rs.dsn = r.at("dsn").get<std::string>();
    rs.reason = r.at("reason").get<std::string>();
    rs.remote_mta = r.at("remote_mta").get<std::string>();
    rs.diagnostic = r.at("diagnostic").get<std::string>();
    rs.last_attempt = r.at("last_attempt").get<std::int64_t>();
    rs.delay_notified = r.at("delay_notified").get<bool>();
    rs.notice_owed = r.value("notice_owed", false);  // absent before the field existed
    s.recipients.push_back(std::move(rs));
  }
  s.attempts = j.at("attempts").get<std::uint32_t>();
  s.next_attempt = j.at("next_attempt").get<std::int64_t>();
  s.hold = j.at("hold").get<bool>();
  s.forced_expire = j.at("forced_expire").get<bool>();
  return s;
}

MessageState initial_state(const Envelope& e) {
  MessageState s;
  s.recipients.resize(e.recipients.size());
  return s;
}

}  // namespace danerelay::relay::spool_format
