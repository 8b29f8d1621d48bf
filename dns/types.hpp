// dns/types.hpp — DNS vocabulary shared by the resolver, the planner and the tests.
//
// What this is: value types only (no libunbound, no Asio). An Answer carries its DNSSEC verdict
// as data, never as an exception, in the way libunbound's ub_result does: `secure`, `insecure`,
// `bogus`, or `error` (SERVFAIL, timeout, malformed, ...). The three-way lookup result of
// RFC 7672 §2.1.1 — error ≠ secure absence ≠ records found — is kept apart everywhere:
// "no data" is only ever an NXDOMAIN/NODATA answer with a secure or insecure verdict (D-04).
//
// Names are in presentation form, lower case, without the trailing dot ("mx.example.org");
// the root is ".".
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace danerelay::dns {

enum class RRType : std::uint16_t { A = 1, NS = 2, CNAME = 5, SOA = 6, PTR = 12, MX = 15, TXT = 16, AAAA = 28, DS = 43, DNSKEY = 48, TLSA = 52 };

[[nodiscard]] std::string_view to_string(RRType type) noexcept;

// The DNSSEC verdict of one answer (RFC 4035 §4.3 states; "indeterminate" is reported by the
// validator as bogus and is treated as bogus, D-03).
enum class Verdict : std::uint8_t {
  secure,    // validated from our own trust anchor
  insecure,  // provably unsigned (or anchorless, which is the same thing, D-02)
  bogus,     // validation failed: treat as a lookup error (D-03, D-05, D-07)
  error,     // no usable answer: see Failure
};

// Why an answer with verdict `error` failed.
enum class Failure : std::uint8_t { none, servfail, timeout, malformed, refused, other };

[[nodiscard]] std::string_view to_string(Verdict verdict) noexcept;
[[nodiscard]] std::string_view to_string(Failure failure) noexcept;

struct Query {
  std::string name;  // normalized (see normalize_name)
  RRType type = RRType::A;
  auto operator<=>(const Query&) const = default;
};

struct Answer {
  Query query;
  Verdict verdict = Verdict::error;
  Failure failure = Failure::other;       // Failure::none unless verdict == error
  int rcode = 0;                          // DNS rcode (0 NOERROR, 2 SERVFAIL, 3 NXDOMAIN, ...)
  bool nxdomain = false;
  std::string canonical_name;             // owner after CNAME/DNAME expansion (== query.name if none)
  std::vector<std::vector<std::uint8_t>> rdata;  // wire-format rdata of the answer RRset
  std::uint32_t ttl = 0;
  std::string why;                        // validator's why_bogus, or the error detail

  // A definitive answer: secure or insecure, with or without data (D-04).
  [[nodiscard]] bool ok() const noexcept { return verdict == Verdict::secure || verdict == Verdict::insecure; }
  [[nodiscard]] bool has_data() const noexcept { return ok() && !rdata.empty(); }
  [[nodiscard]] bool no_data() const noexcept { return ok() && rdata.empty(); }  // NXDOMAIN or NODATA
  [[nodiscard]] bool secure() const noexcept { return verdict == Verdict::secure; }
  // "secure", "insecure NXDOMAIN", "bogus (signature expired)", "servfail", ...
  [[nodiscard]] std::string describe() const;
};

struct MxRecord {
  std::uint16_t preference = 0;
  std::string exchange;  // normalized; "." for a null MX (RFC 7505)
  auto operator<=>(const MxRecord&) const = default;
};

// RFC 6698 §2.1 TLSA RDATA. Values outside the known ranges are kept: whether a record is
// usable is the TLS policy's decision (RFC 7672 §3.1.3, RFC 7671 §9), not the resolver's.
struct TlsaRecord {
  std::uint8_t usage = 0;
  std::uint8_t selector = 0;
  std::uint8_t matching_type = 0;
  std::vector<std::uint8_t> data;
  auto operator<=>(const TlsaRecord&) const = default;
  [[nodiscard]] std::string to_string() const;  // "3 1 1 a9cd…" (lower-case hex)
};

// An IPv4 or IPv6 address in network byte order.
struct IpAddress {
  bool v6 = false;
  std::array<std::uint8_t, 16> bytes{};
  auto operator<=>(const IpAddress&) const = default;
  [[nodiscard]] std::string to_string() const;
  [[nodiscard]] static std::optional<IpAddress> parse(std::string_view text);
};

// Lower-case, strip one trailing dot (the root stays "."). Does not validate.
[[nodiscard]] std::string normalize_name(std::string_view name);


// Pure RDATA decoders (bounds-checked). std::nullopt means malformed.
[[nodiscard]] std::optional<std::string> decode_wire_name(std::span<const std::uint8_t> wire, std::size_t& offset);
[[nodiscard]] std::optional<MxRecord> decode_mx(std::span<const std::uint8_t> rdata);
[[nodiscard]] std::optional<TlsaRecord> decode_tlsa(std::span<const std::uint8_t> rdata);
[[nodiscard]] std::optional<IpAddress> decode_address(RRType type, std::span<const std::uint8_t> rdata);
[[nodiscard]] std::optional<std::string> decode_cname(std::span<const std::uint8_t> rdata);
// RFC 1035 §3.3.12: PTR RDATA is one domain name, as CNAME's is (normalized; not checked for host-name syntax).
[[nodiscard]] std::optional<std::string> decode_ptr(std::span<const std::uint8_t> rdata);

[[nodiscard]] std::string to_hex(std::span<const std::uint8_t> bytes);

}  // namespace danerelay::dns
