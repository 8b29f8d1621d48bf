// dns/client_name.cpp — see client_name.hpp. Pure: DNS answers in, a name or "unknown" out.
// Spec: RFC 1035 §3.5 (in-addr.arpa), RFC 3596 §2.5 (ip6.arpa); Postfix smtpd_peer.c (FCrDNS).
#include "dns/client_name.hpp"

#include <algorithm>

#include "smtp/syntax.hpp"

namespace danerelay::dns {

namespace {

RRType forward_type(const IpAddress& address) { return address.v6 ? RRType::AAAA : RRType::A; }

// The valid host names among the PTR records, sorted and deduplicated; `first_invalid` gets the
// first name that is not one (or "" when every record decoded to a valid name).
std::vector<std::string> candidates(const Answer& ptr, std::string* first_invalid = nullptr) {
  std::vector<std::string> names;
  if (!ptr.has_data()) return names;
  for (const auto& rdata : ptr.rdata) {
    auto name = decode_ptr(rdata);
    if (name && *name != "." && syntax::is_host_name(*name)) {
      names.push_back(std::move(*name));
    } else if (first_invalid != nullptr && first_invalid->empty()) {
      *first_invalid = name ? *name : std::string("(malformed PTR record)");
    }
  }
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  if (names.size() > kMaxClientNameCandidates) names.resize(kMaxClientNameCandidates);
  return names;
}

const Answer* find(std::span<const Answer> answers, const Query& q) {
  for (const Answer& a : answers) {
    if (a.query == q) return &a;
  }
  return nullptr;
}

bool holds(const Answer& forward, const IpAddress& address) {
  if (!forward.has_data()) return false;
  for (const auto& rdata : forward.rdata) {
    if (const auto ip = decode_address(forward.query.type, rdata); ip && *ip == address) return true;
  }
  return false;
}

ClientName unknown(ClientNameStatus status, std::string ptr_name = {}, std::string detail = {}) {
  ClientName c;
  c.status = status;
  c.ptr_name = std::move(ptr_name);
  c.detail = std::move(detail);
  return c;
}

}  // namespace

std::string reverse_name(const IpAddress& address) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  if (!address.v6) {
    for (int i = 3; i >= 0; --i) out += std::to_string(address.bytes[static_cast<std::size_t>(i)]) + ".";
    return out + "in-addr.arpa";
  }
  for (int i = 15; i >= 0; --i) {
    const std::uint8_t b = address.bytes[static_cast<std::size_t>(i)];
    out += digits[b & 0xf];
    out += '.';
    out += digits[b >> 4];
    out += '.';
  }
  return out + "ip6.arpa";
}

std::string_view to_string(ClientNameStatus status) noexcept {
  switch (status) {
    case ClientNameStatus::confirmed: return "confirmed";
    case ClientNameStatus::disabled: return "disabled";
    case ClientNameStatus::no_ptr: return "no PTR";
    case ClientNameStatus::ptr_failed: return "PTR lookup failed";
    case ClientNameStatus::ptr_bogus: return "PTR bogus";
    case ClientNameStatus::invalid_name: return "invalid host name";
    case ClientNameStatus::forward_failed: return "forward lookup failed";
    case ClientNameStatus::not_confirmed: return "not forward-confirmed";
    case ClientNameStatus::timeout: return "timeout";
    case ClientNameStatus::cancelled: return "cancelled";
  }
  return "?";
}

Query ptr_query(const IpAddress& address) { return Query{reverse_name(address), RRType::PTR}; }

std::vector<Query> forward_queries(const IpAddress& address, const Answer& ptr) {
  std::vector<Query> out;
  for (auto& name : candidates(ptr)) out.push_back(Query{std::move(name), forward_type(address)});
  return out;
}

ClientName decide_client_name(const IpAddress& address, const Answer& ptr, std::span<const Answer> forward) {
  // D-03: a bogus answer is a lookup error, whatever data came with it.
  if (ptr.verdict == Verdict::bogus) return unknown(ClientNameStatus::ptr_bogus, {}, ptr.describe());
  if (!ptr.ok()) return unknown(ClientNameStatus::ptr_failed, {}, ptr.describe());
  if (!ptr.has_data()) return unknown(ClientNameStatus::no_ptr, {}, ptr.describe());
  std::string invalid;
  const std::vector<std::string> names = candidates(ptr, &invalid);
  if (names.empty()) return unknown(ClientNameStatus::invalid_name, invalid);

  const Answer* first_failed = nullptr;
  std::string first_failed_name;
  std::string first_unconfirmed;
  for (const std::string& name : names) {
    const Query q{name, forward_type(address)};
    const Answer* a = find(forward, q);
    if (a != nullptr && a->ok()) {
      if (holds(*a, address)) {
        ClientName c;
        c.name = name;
        c.status = ClientNameStatus::confirmed;
        c.ptr_name = name;
        return c;
      }
      if (first_unconfirmed.empty()) first_unconfirmed = name;
    } else if (first_failed_name.empty()) {
      first_failed = a;
      first_failed_name = name;
    }
  }
  // A definitive "not this address" outranks a failure: it is what Postfix calls forged.
  if (!first_unconfirmed.empty()) return unknown(ClientNameStatus::not_confirmed, first_unconfirmed);
  return unknown(ClientNameStatus::forward_failed, first_failed_name,
                 first_failed != nullptr ? first_failed->describe() : std::string("not looked up"));
}

std::string client_name_warning(const ClientName& c, std::string_view address) {
  const std::string addr(address);
  switch (c.status) {
    case ClientNameStatus::confirmed:
    case ClientNameStatus::disabled:
    case ClientNameStatus::no_ptr:
    case ClientNameStatus::cancelled:
      return {};
    case ClientNameStatus::ptr_failed:
    case ClientNameStatus::timeout:
      return addr + ": reverse lookup failed: " + c.detail;
    case ClientNameStatus::ptr_bogus:
      return addr + ": reverse lookup failed: " + c.detail + "; the answer is not used";
    case ClientNameStatus::invalid_name:
      return addr + ": PTR record names an invalid host name: " + c.ptr_name;
    case ClientNameStatus::forward_failed:
      return "hostname " + c.ptr_name + " does not resolve to address " + addr + ": " + c.detail;
    case ClientNameStatus::not_confirmed:
      return "hostname " + c.ptr_name + " does not resolve to address " + addr;
  }
  return {};
}

}  // namespace danerelay::dns
