// relay/delivery/delivery_log.cpp — see delivery_log.hpp.
#include "relay/delivery/delivery_log.hpp"

#include "tls/peer_report.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <fmt/chrono.h>

#include <cstdio>

#include <strings.h>

namespace danerelay::relay {

std::string_view to_string(DeliveryStatus status) noexcept {
  switch (status) {
    case DeliveryStatus::sent: return "sent";
    case DeliveryStatus::deferred: return "deferred";
    case DeliveryStatus::bounced: return "bounced";
  }
  return "deferred";
}

std::string format_delay(std::chrono::microseconds d) {
  // Postfix's rules: at most two significant digits; never finer than 0.01 s; values of 10 s and
  // more in whole seconds; rounded half up; no trailing zeros.
  constexpr long kMillion = 1'000'000;
  long long total = d.count() < 0 ? 0 : d.count();
  long long sec = total / kMillion;
  long long usec = total % kMillion;
  long long resolution = 10'000;                    // 0.01 s
  if (sec >= 10) {
    resolution = kMillion;                          // whole seconds
  } else if (sec >= 1) {
    resolution = 100'000;                           // one decimal
  }
  usec += resolution / 2;
  if (usec >= kMillion) {
    sec += 1;
    usec -= kMillion;
  }
  std::string out = std::to_string(sec);
  if (usec >= resolution) {
    out += '.';
    for (long long rem = usec, n = kMillion / 10; rem >= resolution && n > 0; n /= 10) {
      out += static_cast<char>('0' + rem / n);
      rem %= n;
    }
  }
  return out;
}

std::string delivery_line(const Envelope& env, const RecipientResult& r, bool tls_feature_status) {
  std::string line = fmt::format("{}: to=<{}>", env.id.str(), r.recipient.address);
  // orig_to: the ORCPT address when it differs (RFC 3461 "rfc822;" prefix removed).
  std::string orig = r.recipient.orcpt;
  if (orig.size() > 7 && strncasecmp(orig.c_str(), "rfc822;", 7) == 0) orig = orig.substr(7);
  if (!orig.empty() && strcasecmp(orig.c_str(), r.recipient.address.c_str()) != 0) line += fmt::format(", orig_to=<{}>", orig);
  if (r.relay_host.empty()) {
    line += ", relay=none";
  } else {
    line += ", relay=" + tls::format_namaddr(r.relay_host, r.relay_address, r.relay_port);
  }
  if (r.connection_use > 1) line += fmt::format(", conn_use={}", r.connection_use);
  const auto total = std::chrono::duration_cast<std::chrono::microseconds>(r.done - env.arrival);
  const auto& s = r.delays;
  line += fmt::format(", delay={}, delays={}/{}/{}/{}", format_delay(total), format_delay(s.before_queue),
                      format_delay(s.in_queue), format_delay(s.connection_setup), format_delay(s.transmission));
  if (tls_feature_status && !r.tls.feature.empty()) line += ", tls=" + r.tls.feature;
  line += fmt::format(", dsn={}, status={} ({})", r.dsn, to_string(r.status), r.reason);
  return line;
}

std::string delivery_json(const Envelope& env, const RecipientResult& r) {
  using nlohmann::json;
  const auto at = std::chrono::time_point_cast<std::chrono::microseconds>(r.done);
  const auto epoch = std::chrono::duration<double>(at.time_since_epoch()).count();
  json j;
  j["type"] = r.status == DeliveryStatus::sent ? "Delivery" : r.status == DeliveryStatus::bounced ? "Bounce" : "TransientFailure";
  j["id"] = env.id.str();
  j["sender"] = env.sender;
  j["recipient"] = r.recipient.address;
  const auto at_sign = r.recipient.address.rfind('@');
  j["site"] = at_sign == std::string::npos ? std::string() : r.recipient.address.substr(at_sign + 1);
  j["size"] = env.size;
  json response{{"code", r.reply_code}, {"content", r.reason}, {"command", r.command}};
  unsigned klass = 0, subject = 0, detail = 0;
  if (std::sscanf(r.dsn.c_str(), "%u.%u.%u", &klass, &subject, &detail) == 3) {
    response["enhanced_code"] = {{"class", klass}, {"subject", subject}, {"detail", detail}};
  } else {
    response["enhanced_code"] = nullptr;
  }
  j["response"] = std::move(response);
  if (r.relay_host.empty()) {
    j["peer_address"] = nullptr;
  } else {
    j["peer_address"] = {{"name", r.relay_host}, {"addr", r.relay_address}, {"port", r.relay_port}};
  }
  j["timestamp"] = epoch;
  j["event_time"] = fmt::format("{:%Y-%m-%dT%H:%M:%S}Z", fmt::gmtime(std::chrono::system_clock::to_time_t(r.done)));
  j["num_attempts"] = r.attempt;
  j["tls_protocol_version"] = r.tls.protocol.empty() ? json(nullptr) : json(r.tls.protocol);
  j["tls_cipher"] = r.tls.cipher.empty() ? json(nullptr) : json(r.tls.cipher);
  j["tls_level"] = r.tls.level;
  j["tls_feature"] = r.tls.feature;
  j["tls_trust"] = r.tls.trust.empty() ? json(nullptr) : json(r.tls.trust);
  j["dane"] = r.tls.matched.empty() ? json(nullptr) : json{{"matched", r.tls.matched}, {"depth", r.tls.depth}};
  j["dnssec"] = {{"mx", r.dnssec_mx}, {"host", r.dnssec_host}};
  j["dsn"] = r.dsn;
  j["status"] = to_string(r.status);
  return j.dump();
}

}  // namespace danerelay::relay
