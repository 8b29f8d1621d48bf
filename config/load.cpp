// config/load.cpp — danerelay.toml (toml++) → config::Config, every error as FILE:LINE:COL.
//
// How it works: toml++ parses the text (a syntax error ends the load with its one diagnostic).
// Then one reader per section walks the tree. A Section names every key it understands, reads
// those present, and at the end reports every other key as unknown: a mistyped key such as
// "levle" in a policy table would otherwise silently leave the weaker default in force
// (ecosystem.md §9.6). Readers never stop at the first problem; all diagnostics are collected and
// sorted by position. Cross-field checks run only when the fields involved were read cleanly, so
// one typo does not cascade into misleading follow-up errors.
//
// toml++ is used with exceptions enabled: Debian's shared libtomlplusplus exports only the
// exception ABI (toml::v3::ex), and toml::parse_error is caught right here, at the boundary.
// Minimums that come from RFCs cite them at the line that enforces them.
#include "config/load.hpp"

#include <toml++/toml.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <limits>
#include <map>
#include <memory>
#include <system_error>
#include <tuple>
#include <type_traits>
#include <utility>

#include "config/unbound.hpp"
#include "config/values.hpp"
#include "smtp/syntax.hpp"

namespace danerelay::config {

namespace {

namespace fs = std::filesystem;

// ── Key paths ────────────────────────────────────────────────────────────────────────────────

bool is_bare_key(std::string_view key) noexcept {
  return !key.empty() && std::all_of(key.begin(), key.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
  });
}

std::string in_quotes(std::string_view text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\u00";
      out += kHex[(static_cast<unsigned char>(c) >> 4) & 0xf];
      out += kHex[static_cast<unsigned char>(c) & 0xf];
    } else {
      out += c;
    }
  }
  out += '"';
  return out;
}

// "dns" + "trust_anchor" → "dns.trust_anchor"; keys that are not bare TOML keys are quoted, so
// the result is itself a valid TOML dotted key: policy.destination."bank.example".level
std::string child_key(std::string_view parent, std::string_view key) {
  std::string out(parent);
  if (!out.empty()) out += '.';
  out += is_bare_key(key) ? std::string(key) : in_quotes(key);
  return out;
}

std::string element_key(std::string_view parent, std::size_t index) {
  return std::string(parent) + "[" + std::to_string(index) + "]";
}

// ── Values as written, for messages ──────────────────────────────────────────────────────────

std::string written(const toml::node& node) {
  if (const auto* s = node.as_string()) return in_quotes(s->get());
  if (const auto* i = node.as_integer()) return std::to_string(i->get());
  if (const auto* b = node.as_boolean()) return b->get() ? "true" : "false";
  switch (node.type()) {
    case toml::node_type::table: return "a table";
    case toml::node_type::array: return "an array";
    case toml::node_type::floating_point: return "a floating-point number";
    case toml::node_type::date: return "a date";
    case toml::node_type::time: return "a time";
    case toml::node_type::date_time: return "a date-time";
    default: return "a value";
  }
}

bool before(const toml::source_region& a, const toml::source_region& b) noexcept {
  return std::pair{a.begin.line, a.begin.column} < std::pair{b.begin.line, b.begin.column};
}

// "[::]:25", "0.0.0.0:25": an Endpoint as an operator writes it.
std::string endpoint_text(const Endpoint& e) {
  const bool v6 = e.host.find(':') != std::string::npos;
  return (v6 ? "[" + e.host + "]" : e.host) + ":" + std::to_string(e.port);
}

template <class T, class U>
void assign(T& out, std::optional<U>&& value) {
  if (value) out = std::move(*value);
}

template <class T>
struct Choice {
  std::string_view name;
  T value;
};

template <class T, std::size_t N>
std::string choice_list(const std::array<Choice<T>, N>& choices) {
  std::string out;
  for (const auto& c : choices) {
    if (!out.empty()) out += ", ";
    out += c.name;
  }
  return out;
}

constexpr std::array<Choice<TlsLevel>, 7> kPolicyLevels{{
    {"none", TlsLevel::none},
    {"may", TlsLevel::may},
    {"encrypt", TlsLevel::encrypt},
    {"dane", TlsLevel::dane},
    {"dane-only", TlsLevel::dane_only},
    {"verify", TlsLevel::verify},
    {"secure", TlsLevel::secure},
}};
constexpr std::array<Choice<Listener::Tls>, 3> kListenerTls{{
    {"none", Listener::Tls::none},
    {"starttls", Listener::Tls::starttls},
    {"implicit", Listener::Tls::implicit},
}};
constexpr std::array<Choice<Listener::Auth>, 3> kListenerAuth{{
    {"none", Listener::Auth::none},
    {"optional", Listener::Auth::optional},
    {"required", Listener::Auth::required},
}};
// The SASL mechanisms the inbound server implements (RFC 4616 PLAIN, and LOGIN for old clients).
constexpr std::array<Choice<std::string_view>, 2> kSaslMechanisms{{
    {"PLAIN", "PLAIN"},
    {"LOGIN", "LOGIN"},
}};
// RFC 7671 §9 digest agility: the digests OpenSSL's DANE code can rank.
constexpr std::array<Choice<std::string_view>, 2> kDigests{{
    {"sha512", "sha512"},
    {"sha256", "sha256"},
}};
constexpr std::array<Choice<std::string_view>, 2> kTlsProtocols{{
    {"TLSv1.2", "TLSv1.2"},
    {"TLSv1.3", "TLSv1.3"},
}};
constexpr std::array<Choice<LogSettings::Format>, 2> kLogFormats{{
    {"postfix", LogSettings::Format::postfix},
    {"json", LogSettings::Format::json},
}};
constexpr std::array<Choice<LogSettings::Target>, 4> kLogTargets{{
    {"auto", LogSettings::Target::automatic},
    {"journal", LogSettings::Target::journal},
    {"syslog", LogSettings::Target::syslog},
    {"stderr", LogSettings::Target::stderr_},
}};
// spdlog's level names.
constexpr std::array<Choice<std::string_view>, 7> kLogLevels{{
    {"trace", "trace"},
    {"debug", "debug"},
    {"info", "info"},
    {"warn", "warn"},
    {"error", "error"},
    {"critical", "critical"},
    {"off", "off"},
}};

constexpr auto kU32Max = static_cast<std::int64_t>(std::numeric_limits<std::uint32_t>::max());
constexpr std::string_view kDurationHint =
    "expected an integer number of seconds or a number with unit ms, s, m, h, d, w, e.g. \"30s\", \"1h30m\"";
constexpr std::string_view kSizeHint =
    "expected an integer number of bytes or a number with unit k, M, G, T (x1000) or KiB, MiB, GiB, TiB (x1024), "
    "e.g. \"50MB\"";

// One TOML value and the full dotted key it was found under.
struct Field {
  const toml::node& node;
  std::string key;
};

// ── The loader: diagnostics and typed readers ────────────────────────────────────────────────

class Loader {
 public:
  Loader(std::string file, fs::path base_dir) : file_(std::move(file)), base_dir_(std::move(base_dir)) {}

  std::vector<Diagnostic> take_errors() {
    // This file's diagnostics first, then those in files it names, each by position.
    std::stable_sort(errors_.begin(), errors_.end(), [this](const Diagnostic& a, const Diagnostic& b) {
      return std::tuple{a.file != file_, a.line, a.column} < std::tuple{b.file != file_, b.line, b.column};
    });
    return std::move(errors_);
  }
  [[nodiscard]] std::size_t error_count() const noexcept { return errors_.size(); }
  [[nodiscard]] const std::string& file() const noexcept { return file_; }

  void error_at(const toml::source_region& where, std::string message) {
    errors_.push_back(Diagnostic{file_, where.begin.line, where.begin.column, std::move(message)});
  }
  // An error in another file the configuration names (dns.unbound_config).
  void error_in(std::string file, std::uint32_t line, std::uint32_t column, std::string message) {
    errors_.push_back(Diagnostic{std::move(file), line, column, std::move(message)});
  }
  // "<problem> for key "<key>"", at the value.
  void fail(const Field& field, std::string_view problem) {
    error_at(field.node.source(), std::string(problem) + " for key " + in_quotes(field.key));
  }

  [[nodiscard]] SourceLocation location(const toml::node& node) const {
    return SourceLocation{file_, node.source().begin.line, node.source().begin.column};
  }

  const toml::table* table(const Field& f) {
    if (const auto* t = f.node.as_table()) return t;
    fail(f, "expected a table");
    return nullptr;
  }

  std::optional<std::string> string(const Field& f) {
    if (const auto* s = f.node.as_string()) return s->get();
    fail(f, "expected a string");
    return std::nullopt;
  }

  std::optional<bool> boolean(const Field& f) {
    if (const auto* b = f.node.as_boolean()) return b->get();
    fail(f, "expected a boolean (true or false)");
    return std::nullopt;
  }

  // An integer in [min, max]; `why` explains a minimum that comes from a standard.
  std::optional<std::int64_t> integer(const Field& f, std::int64_t min, std::int64_t max, std::string_view why = {}) {
    const auto* i = f.node.as_integer();
    if (i == nullptr) {
      fail(f, "expected an integer");
      return std::nullopt;
    }
    const std::int64_t v = i->get();
    if (v < min || v > max) {
      // "1..65535" for a bounded range; for counts only the bound that was crossed.
      std::string range = max != kU32Max ? std::to_string(min) + ".." + std::to_string(max)
                          : v < min      ? "at least " + std::to_string(min)
                                         : "at most " + std::to_string(max);
      if (!why.empty() && v < min) range += ", " + std::string(why);
      fail(f, "value " + std::to_string(v) + " is out of range (expected " + range + ")");
      return std::nullopt;
    }
    return v;
  }

  std::optional<std::uint32_t> u32(const Field& f, std::uint32_t min, std::string_view why = {}) {
    auto v = integer(f, min, kU32Max, why);
    if (!v) return std::nullopt;
    return static_cast<std::uint32_t>(*v);
  }

  // A duration string, or an integer number of seconds; at least `min`.
  std::optional<Duration> duration(const Field& f, Duration min) {
    std::optional<Duration> d;
    if (const auto* s = f.node.as_string()) {
      d = parse_duration(s->get());
      if (!d) {
        fail(f, "invalid duration " + written(f.node) + " (" + std::string(kDurationHint) + ")");
        return std::nullopt;
      }
    } else if (const auto* i = f.node.as_integer()) {
      constexpr std::int64_t kMaxSeconds = std::numeric_limits<std::int64_t>::max() / 1000;
      if (i->get() < 0 || i->get() > kMaxSeconds) {
        fail(f, "invalid duration " + written(f.node) + " (" + std::string(kDurationHint) + ")");
        return std::nullopt;
      }
      d = Duration{i->get() * 1000};
    } else {
      fail(f, "expected a duration (a string such as \"30s\" or an integer number of seconds)");
      return std::nullopt;
    }
    if (*d < min) {
      fail(f, "duration " + written(f.node) + " is too short (minimum " + format_duration(min) + ")");
      return std::nullopt;
    }
    return d;
  }

  // A size string, or an integer number of bytes; at least `min`.
  std::optional<std::uint64_t> size(const Field& f, std::uint64_t min) {
    std::optional<std::uint64_t> bytes;
    if (const auto* s = f.node.as_string()) {
      bytes = parse_size(s->get());
    } else if (const auto* i = f.node.as_integer()) {
      if (i->get() >= 0) bytes = static_cast<std::uint64_t>(i->get());
    } else {
      fail(f, "expected a size (a string such as \"50MB\" or an integer number of bytes)");
      return std::nullopt;
    }
    if (!bytes) {
      fail(f, "invalid size " + written(f.node) + " (" + std::string(kSizeHint) + ")");
      return std::nullopt;
    }
    if (*bytes < min) {
      fail(f, "size " + written(f.node) + " is too small (minimum " + std::to_string(min) + " bytes)");
      return std::nullopt;
    }
    return bytes;
  }

  // A file or directory name; relative names resolve against the config file's directory.
  std::optional<fs::path> path(const Field& f, bool allow_empty) {
    auto s = string(f);
    if (!s) return std::nullopt;
    if (s->empty()) {
      if (allow_empty) return fs::path{};
      fail(f, "empty path");
      return std::nullopt;
    }
    if (s->find('\0') != std::string::npos) {
      fail(f, "path contains a NUL character");
      return std::nullopt;
    }
    fs::path p(*s);
    if (p.is_relative() && !base_dir_.empty()) p = (base_dir_ / p).lexically_normal();
    return p;
  }

  // An array; each element comes back as a Field keyed "key[i]".
  std::optional<std::vector<Field>> array(const Field& f) {
    const auto* a = f.node.as_array();
    if (a == nullptr) {
      fail(f, "expected an array");
      return std::nullopt;
    }
    std::vector<Field> out;
    out.reserve(a->size());
    for (std::size_t i = 0; i < a->size(); ++i) out.push_back(Field{*a->get(i), element_key(f.key, i)});
    return out;
  }

  // One of a fixed set of names: unknown <what> "x" (expected one of a, b, c)
  template <class T, std::size_t N>
  std::optional<T> choice(const Field& f, std::string_view what, const std::array<Choice<T>, N>& choices) {
    auto s = string(f);
    if (!s) return std::nullopt;
    for (const auto& c : choices) {
      if (c.name == *s) return c.value;
    }
    fail(f, "unknown " + std::string(what) + " " + in_quotes(*s) + " (expected one of " + choice_list(choices) + ")");
    return std::nullopt;
  }

  // A host name, returned lower-case without a trailing dot; empty allowed when `allow_empty`.
  std::optional<std::string> host_name(const Field& f, bool allow_empty) {
    auto s = string(f);
    if (!s) return std::nullopt;
    if (s->empty() && allow_empty) return std::string{};
    if (auto name = normalize_host_name(*s)) return name;
    fail(f, "invalid host name " + in_quotes(*s) +
                " (expected letters, digits and '-' in dot-separated labels; internationalized names as "
                "A-labels \"xn--...\")");
    return std::nullopt;
  }

 private:
  std::string file_;
  fs::path base_dir_;
  std::vector<Diagnostic> errors_;
};

// ── Section: the keys one table may contain ──────────────────────────────────────────────────

class Section {
 public:
  Section(Loader& loader, const toml::table& table, std::string key)
      : loader_(loader), table_(table), key_(std::move(key)) {}

  // Runs `read(field)` when `key` is present; `key` counts as known either way.
  template <class Reader>
  void read(std::string_view key, Reader&& reader) {
    known_.push_back(key);
    if (const toml::node* n = table_.get(key)) reader(Field{*n, child_key(key_, key)});
  }

  [[nodiscard]] const toml::node* node(std::string_view key) const { return table_.get(key); }
  [[nodiscard]] const std::string& key() const noexcept { return key_; }

  // Every key of the table that no read() named is an error, reported at the key itself.
  void finish() {
    for (const auto& [k, v] : table_) {
      if (std::find(known_.begin(), known_.end(), k.str()) == known_.end()) {
        loader_.error_at(k.source(), "unknown key " + in_quotes(child_key(key_, k.str())));
      }
    }
  }

 private:
  Loader& loader_;
  const toml::table& table_;
  std::string key_;
  std::vector<std::string_view> known_;
};

// ── Section readers ──────────────────────────────────────────────────────────────────────────

class ConfigReader {
 public:
  ConfigReader(Loader& loader, Config& config) : ld_(loader), cfg_(config) {}

  void read(const toml::table& root) {
    Section top(ld_, root, "");
    // Order matters only for cross-section checks: [tls] before [[listener]].
    top.read("server", [&](const Field& f) { with_table(f, [&](Section& s) { read_server(s); }); });
    top.read("tls", [&](const Field& f) { with_table(f, [&](Section& s) { read_tls(s); }); });
    top.read("limits", [&](const Field& f) { with_table(f, [&](Section& s) { read_limits(s); }); });
    top.read("dns", [&](const Field& f) { with_table(f, [&](Section& s) { read_dns(s); }); });
    top.read("delivery", [&](const Field& f) { with_table(f, [&](Section& s) { read_delivery(s); }); });
    top.read("policy", [&](const Field& f) { with_table(f, [&](Section& s) { read_policy(s); }); });
    top.read("queue", [&](const Field& f) { with_table(f, [&](Section& s) { read_queue(s); }); });
    top.read("log", [&](const Field& f) { with_table(f, [&](Section& s) { read_log(s); }); });
    top.read("metrics", [&](const Field& f) { with_table(f, [&](Section& s) { read_metrics(s); }); });
    top.read("listener", [&](const Field& f) { read_listeners(f); });
    top.finish();
    if (root.get("listener") == nullptr) cfg_.listeners.emplace_back();  // the documented default
  }

 private:
  template <class Body>
  void with_table(const Field& f, Body&& body) {
    if (const auto* t = ld_.table(f)) {
      Section s(ld_, *t, f.key);
      body(s);
      s.finish();
    }
  }

  void read_server(Section& s) {
    auto& server = cfg_.server;
    // Empty → gethostname(); otherwise the EHLO name, which must be a host name (RFC 5321 §4.1.1.1).
    s.read("hostname", [&](const Field& f) { assign(server.hostname, ld_.host_name(f, true)); });
    s.read("state_dir", [&](const Field& f) { assign(server.state_dir, ld_.path(f, false)); });
    s.read("control_socket", [&](const Field& f) { assign(server.control_socket, ld_.path(f, true)); });
    s.read("credentials_file", [&](const Field& f) { assign(server.credentials_file, ld_.path(f, true)); });
    s.read("reverse_lookup", [&](const Field& f) { assign(server.reverse_lookup, ld_.boolean(f)); });
    s.read("reverse_lookup_timeout", [&](const Field& f) { assign(server.reverse_lookup_timeout, ld_.duration(f, Duration{1})); });
  }

  void read_tls(Section& tls) {
    const auto before_errors = ld_.error_count();
    tls.read("server", [&](const Field& f) {
      with_table(f, [&](Section& s) {
        auto& server = cfg_.tls.server;
        s.read("cert_file", [&](const Field& v) { assign(server.cert_file, ld_.path(v, true)); });
        s.read("key_file", [&](const Field& v) { assign(server.key_file, ld_.path(v, true)); });
        if (server.cert_file.empty() != server.key_file.empty()) {
          const bool has_cert = !server.cert_file.empty();
          const toml::node* set = s.node(has_cert ? "cert_file" : "key_file");
          ld_.fail(Field{*set, child_key(s.key(), has_cert ? "cert_file" : "key_file")},
                   has_cert ? "cert_file without key_file (set both or neither)"
                            : "key_file without cert_file (set both or neither)");
        }
      });
    });
    tls.read("client", [&](const Field& f) {
      with_table(f, [&](Section& s) {
        auto& client = cfg_.tls.client;
        s.read("digest_order", [&](const Field& v) { assign(client.digest_order, unique_choices(v, "digest", kDigests, ", strongest first")); });
        s.read("min_protocol", [&](const Field& v) {
          assign(client.min_protocol, ld_.choice(v, "TLS protocol version", kTlsProtocols));
        });
        s.read("ca_file", [&](const Field& v) { assign(client.ca_file, ld_.path(v, true)); });
        s.read("ca_path", [&](const Field& v) { assign(client.ca_path, ld_.path(v, true)); });
      });
    });
    tls_clean_ = ld_.error_count() == before_errors;
  }

  // A non-empty, duplicate-free list of known words, in the order written (digest preference
  // for RFC 7671 §9, SASL mechanisms as advertised).
  template <std::size_t N>
  std::optional<std::vector<std::string>> unique_choices(const Field& f, std::string_view what,
                                                         const std::array<Choice<std::string_view>, N>& choices,
                                                         std::string_view hint = {}) {
    auto elements = ld_.array(f);
    if (!elements) return std::nullopt;
    if (elements->empty()) {
      ld_.fail(f, "empty list (expected one or more of " + choice_list(choices) + std::string(hint) + ")");
      return std::nullopt;
    }
    std::vector<std::string> out;
    bool ok = true;
    for (const auto& e : *elements) {
      auto c = ld_.choice(e, what, choices);
      if (!c) {
        ok = false;
      } else if (std::find(out.begin(), out.end(), *c) != out.end()) {
        ld_.fail(e, "duplicate " + std::string(what) + " " + in_quotes(*c));
        ok = false;
      } else {
        out.emplace_back(*c);
      }
    }
    if (!ok) return std::nullopt;
    return out;
  }

  void read_limits(Section& s) {
    auto& l = cfg_.limits;
    const auto before_errors = ld_.error_count();
    s.read("max_message_size", [&](const Field& f) { assign(l.max_message_size, ld_.size(f, 1)); });
    s.read("max_recipients", [&](const Field& f) {
      assign(l.max_recipients, ld_.u32(f, 100, "RFC 5321 \u00a74.5.3.1.8"));
    });
    s.read("max_line_length", [&](const Field& f) {
      assign(l.max_line_length, ld_.u32(f, 1000, "RFC 5321 \u00a74.5.3.1.6"));
    });
    s.read("max_command_length", [&](const Field& f) {
      assign(l.max_command_length, ld_.u32(f, 512, "RFC 5321 \u00a74.5.3.1.4"));
    });
    s.read("max_connections", [&](const Field& f) { assign(l.max_connections, ld_.u32(f, 1)); });
    s.read("max_connections_per_client", [&](const Field& f) { assign(l.max_connections_per_client, ld_.u32(f, 1)); });
    s.read("max_errors", [&](const Field& f) { assign(l.max_errors, ld_.u32(f, 1)); });
    // 1 would reject every message: danerelay's own Received: field counts (as in Postfix).
    s.read("max_hops", [&](const Field& f) { assign(l.max_hops, ld_.u32(f, 2, "danerelay's own Received: counts")); });
    s.read("command_timeout", [&](const Field& f) { assign(l.command_timeout, ld_.duration(f, Duration{1})); });
    s.read("data_timeout", [&](const Field& f) { assign(l.data_timeout, ld_.duration(f, Duration{1})); });
    s.read("min_data_rate", [&](const Field& f) { assign(l.min_data_rate, ld_.u32(f, 1)); });
    s.read("client_ipv6_prefix", [&](const Field& f) {
      if (auto v = ld_.integer(f, 1, 128)) l.client_ipv6_prefix = static_cast<std::uint32_t>(*v);
    });
    s.read("max_auth_failures_per_client", [&](const Field& f) { assign(l.max_auth_failures_per_client, ld_.u32(f, 1)); });
    if (ld_.error_count() == before_errors && l.max_connections_per_client > l.max_connections) {
      report_exceeds(s, "max_connections_per_client", "max_connections", l.max_connections_per_client,
                     l.max_connections);
    }
  }

  // `key` must not exceed `limit`, and one of them was written (the defaults agree): reported
  // at `key` when it was written, else at `limit`.
  void report_exceeds(const Section& s, std::string_view key, std::string_view limit, std::uint32_t key_value,
                      std::uint32_t limit_value) {
    if (const auto* n = s.node(key)) {
      ld_.fail(Field{*n, child_key(s.key(), key)}, "value " + written(*n) + " exceeds " + std::string(limit) + " (" +
                                                       std::to_string(limit_value) + ")");
    } else if (const auto* o = s.node(limit)) {
      ld_.fail(Field{*o, child_key(s.key(), limit)}, "value " + written(*o) + " is below " + std::string(key) +
                                                         " (" + std::to_string(key_value) + ", the default)");
    }
  }

  void read_dns(Section& s) {
    auto& dns = cfg_.dns;
    s.read("trust_anchor", [&](const Field& f) { assign(dns.trust_anchor, ld_.path(f, true)); });
    s.read("trust_anchor_seed", [&](const Field& f) { assign(dns.trust_anchor_seed, ld_.path(f, true)); });
    s.read("trust_anchor_auto_update", [&](const Field& f) { assign(dns.trust_anchor_auto_update, ld_.boolean(f)); });
    s.read("forwarders", [&](const Field& f) { assign(dns.forwarders, forwarders(f)); });
    s.read("unbound_config", [&](const Field& f) {
      const auto errors = ld_.error_count();
      assign(dns.unbound_config, ld_.path(f, true));
      if (ld_.error_count() == errors && !dns.unbound_config.empty()) check_unbound_config(f, dns.unbound_config);
    });
    s.read("unbound_options", [&](const Field& f) { assign(dns.unbound_options, unbound_options(f)); });
    s.read("query_timeout", [&](const Field& f) { assign(dns.query_timeout, ld_.duration(f, Duration{1})); });
    s.read("self_test_name", [&](const Field& f) { assign(dns.self_test_name, self_test_name(f)); });
  }

  // dns.unbound_config goes through the same refusals as [dns.unbound_options] (config/unbound.hpp),
  // each reported at its line in that file. A file that cannot be read here is left to the
  // resolver, which reads it again (and refuses the same options) before libunbound does.
  void check_unbound_config(const Field& f, const fs::path& file) {
    std::ifstream in(file, std::ios::binary);
    if (!in) return;
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const SourceLocation at = ld_.location(f.node);
    const std::string where = " (in the file of key " + in_quotes(f.key) + ", " + at.file + ":" + std::to_string(at.line) +
                              ":" + std::to_string(at.column) + ")";
    for (const RefusedUnboundOption& r : scan_unbound_conf(text)) {
      ld_.error_in(file.string(), r.line, r.column, unbound_refusal(r.name, r.why) + where);
    }
  }

  // A list of strings, each converted by `convert` (std::nullopt: invalid, with `hint` saying
  // what was expected). Every bad element is reported; any makes the whole list invalid.
  template <class Convert>
  auto string_list(const Field& f, std::string_view what, std::string_view hint, Convert convert)
      -> std::optional<std::vector<typename std::invoke_result_t<Convert, const std::string&>::value_type>> {
    using T = typename std::invoke_result_t<Convert, const std::string&>::value_type;
    auto elements = ld_.array(f);
    if (!elements) return std::nullopt;
    std::vector<T> out;
    bool ok = true;
    for (const auto& e : *elements) {
      auto text = ld_.string(e);
      if (!text) {
        ok = false;
      } else if (auto value = convert(*text)) {
        out.push_back(std::move(*value));
      } else {
        ld_.fail(e, "invalid " + std::string(what) + " " + in_quotes(*text) + " (" + std::string(hint) + ")");
        ok = false;
      }
    }
    if (!ok) return std::nullopt;
    return out;
  }

  // unbound's forward-addr syntax: "IP" or "IP@port".
  std::optional<std::vector<std::string>> forwarders(const Field& f) {
    return string_list(f, "forwarder",
                       "expected an IP address, optionally with @port, e.g. \"192.0.2.53\" or \"2001:db8::53@5353\"",
                       [](const std::string& text) -> std::optional<std::string> {
                         const auto at = text.find('@');
                         const std::string_view address = std::string_view(text).substr(0, at);
                         const bool valid = (syntax::is_ipv4_address(address) || syntax::is_ipv6_address(address)) &&
                                            (at == std::string::npos || parse_port(std::string_view(text).substr(at + 1)));
                         if (!valid) return std::nullopt;
                         return text;
                       });
  }

  // [dns.unbound_options]: option name (as in unbound.conf, colon optional) → string, integer,
  // boolean ("yes"/"no"), or an array of those for options unbound accepts more than once.
  std::optional<std::vector<std::pair<std::string, std::string>>> unbound_options(const Field& f) {
    const auto* t = ld_.table(f);
    if (t == nullptr) return std::nullopt;
    struct Entry {
      toml::source_region where;
      std::string name, value;
    };
    std::vector<Entry> entries;
    bool ok = true;
    const auto scalar = [&](const Field& v, const std::string& name) {
      std::optional<std::string> text;
      if (const auto* str = v.node.as_string()) text = str->get();
      if (const auto* i = v.node.as_integer()) text = std::to_string(i->get());
      if (const auto* b = v.node.as_boolean()) text = b->get() ? "yes" : "no";
      if (!text) {
        ld_.fail(v, "expected a string, integer or boolean");
        ok = false;
        return;
      }
      entries.push_back(Entry{v.node.source(), name, std::move(*text)});
    };
    for (const auto& [k, v] : *t) {
      std::string name(k.str());
      if (name.ends_with(':')) name.pop_back();
      const bool valid_name = !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
      });
      const Field field{v, child_key(f.key, k.str())};
      if (!valid_name) {
        ld_.error_at(k.source(), "invalid unbound option name " + in_quotes(k.str()) +
                                     " (expected lower-case letters, digits and '-', as in unbound.conf) for key " +
                                     in_quotes(field.key));
        ok = false;
        continue;
      }
      if (const std::string_view why = refused_unbound_option(name); !why.empty()) {
        ld_.error_at(k.source(), unbound_refusal(name, why) + " for key " + in_quotes(field.key));
        ok = false;
        continue;
      }
      if (v.is_array()) {
        if (auto elements = ld_.array(field)) {
          for (const auto& e : *elements) scalar(e, name);
        }
      } else {
        scalar(field, name);
      }
    }
    if (!ok) return std::nullopt;
    // File order: toml++ tables iterate in key order, and option order can matter to unbound.
    std::stable_sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) { return before(a.where, b.where); });
    std::vector<std::pair<std::string, std::string>> out;
    out.reserve(entries.size());
    for (auto& e : entries) out.emplace_back(std::move(e.name), std::move(e.value));
    return out;
  }

  // "." (the root, the default) or a domain name; stored lower-case without the trailing dot.
  std::optional<std::string> self_test_name(const Field& f) {
    auto s = ld_.string(f);
    if (!s) return std::nullopt;
    if (*s == ".") return s;
    if (auto name = normalize_host_name(*s)) return name;
    ld_.fail(f, "invalid domain name " + in_quotes(*s) + " (expected \".\" or a name such as \"example.org\")");
    return std::nullopt;
  }

  void read_delivery(Section& s) {
    auto& d = cfg_.delivery;
    const auto before_errors = ld_.error_count();
    s.read("port", [&](const Field& f) {
      if (auto p = ld_.integer(f, 1, 65535)) d.port = static_cast<std::uint16_t>(*p);
    });
    s.read("source_address_v4", [&](const Field& f) {
      auto a = ld_.string(f);
      if (!a) return;
      if (!a->empty() && !syntax::is_ipv4_address(*a)) {
        ld_.fail(f, "invalid IPv4 address " + in_quotes(*a) + " (expected e.g. \"192.0.2.10\", or \"\" for the kernel's choice)");
        return;
      }
      d.source_address_v4 = std::move(*a);
    });
    s.read("source_address_v6", [&](const Field& f) {
      auto a = ld_.string(f);
      if (!a) return;
      if (!a->empty() && !syntax::is_ipv6_address(*a)) {
        ld_.fail(f, "invalid IPv6 address " + in_quotes(*a) +
                        " (expected e.g. \"2001:db8::10\" without brackets, or \"\" for the kernel's choice)");
        return;
      }
      d.source_address_v6 = std::move(*a);
    });
    s.read("connect_timeout", [&](const Field& f) { assign(d.connect_timeout, ld_.duration(f, Duration{1})); });
    for (auto [key, member] : {std::pair{"greeting_timeout", &DeliverySettings::greeting_timeout},
                               std::pair{"helo_timeout", &DeliverySettings::helo_timeout},
                               std::pair{"starttls_timeout", &DeliverySettings::starttls_timeout},
                               std::pair{"mail_timeout", &DeliverySettings::mail_timeout},
                               std::pair{"rcpt_timeout", &DeliverySettings::rcpt_timeout},
                               std::pair{"data_init_timeout", &DeliverySettings::data_init_timeout},
                               std::pair{"data_block_timeout", &DeliverySettings::data_block_timeout},
                               std::pair{"data_done_timeout", &DeliverySettings::data_done_timeout},
                               std::pair{"quit_timeout", &DeliverySettings::quit_timeout}}) {
      s.read(key, [&, member = member](const Field& f) { assign(d.*member, ld_.duration(f, Duration{1})); });
    }
    s.read("connection_cache_time", [&](const Field& f) { assign(d.connection_cache_time, ld_.duration(f, Duration{0})); });
    s.read("connection_reuse_limit", [&](const Field& f) { assign(d.connection_reuse_limit, ld_.u32(f, 1)); });
    s.read("max_concurrency", [&](const Field& f) { assign(d.max_concurrency, ld_.u32(f, 1)); });
    s.read("max_concurrency_per_destination", [&](const Field& f) {
      assign(d.max_concurrency_per_destination, ld_.u32(f, 1));
    });
    if (ld_.error_count() == before_errors && d.max_concurrency_per_destination > d.max_concurrency) {
      report_exceeds(s, "max_concurrency_per_destination", "max_concurrency", d.max_concurrency_per_destination,
                     d.max_concurrency);
    }
  }

  void read_policy(Section& s) {
    auto& policy = cfg_.policy;
    const auto before_errors = ld_.error_count();
    s.read("default", [&](const Field& f) {
      policy.default_where = ld_.location(f.node);
      assign(policy.default_level, ld_.choice(f, "policy level", kPolicyLevels));
    });
    const bool default_clean = ld_.error_count() == before_errors;
    s.read("destination", [&](const Field& f) {
      const auto* t = ld_.table(f);
      if (t == nullptr) return;
      // File order, so that diagnostics about duplicates point at the later table.
      std::vector<std::pair<const toml::key*, const toml::node*>> tables;
      for (const auto& [k, v] : *t) tables.emplace_back(&k, &v);
      std::stable_sort(tables.begin(), tables.end(),
                       [](const auto& a, const auto& b) { return before(a.first->source(), b.first->source()); });
      std::map<std::string, std::uint32_t> seen;  // normalized pattern → line of its table
      for (const auto& [k, v] : tables) {
        const Field field{*v, child_key(f.key, k->str())};
        auto pattern = normalize_destination_pattern(k->str());
        if (!pattern) {
          ld_.error_at(k->source(), "invalid destination " + in_quotes(k->str()) +
                                        " (expected a domain such as \"example.org\", or \".example.org\" for its "
                                        "subdomains) for key " +
                                        in_quotes(field.key));
        } else if (const auto it = seen.find(*pattern); it != seen.end()) {
          ld_.error_at(k->source(), "duplicate destination " + in_quotes(*pattern) + " (first defined at line " +
                                        std::to_string(it->second) + ") for key " + in_quotes(field.key));
          pattern.reset();
        } else {
          seen.emplace(*pattern, k->source().begin.line);
        }
        if (auto dest = destination(field, default_clean)) {
          if (pattern) {
            dest->pattern = std::move(*pattern);
            policy.destinations.push_back(std::move(*dest));
          }
        }
      }
    });
  }

  // One [policy.destination."NAME"] table. An empty table is meaningful: it pins NAME to the
  // default level even when a ".parent" table would otherwise apply.
  std::optional<DestinationPolicy> destination(const Field& f, bool default_clean) {
    const auto* t = ld_.table(f);
    if (t == nullptr) return std::nullopt;
    const auto before_errors = ld_.error_count();
    DestinationPolicy dest;
    dest.where = ld_.location(f.node);
    Section s(ld_, *t, f.key);
    s.read("level", [&](const Field& v) {
      if (auto level = ld_.choice(v, "policy level", kPolicyLevels)) dest.level = *level;
    });
    s.read("nexthop", [&](const Field& v) {
      auto text = ld_.string(v);
      if (!text) return;
      if (auto hop = NextHop::parse(*text)) {
        dest.nexthop = std::move(*hop);
        return;
      }
      ld_.fail(v, "invalid nexthop " + in_quotes(*text) +
                      " (expected \"host\", \"host:port\", \"[host]:port\", \"[192.0.2.1]:25\" or "
                      "\"[IPv6:2001:db8::1]:25\")");
    });
    s.read("match", [&](const Field& v) { assign(dest.match, match_list(v)); });
    s.finish();
    if (ld_.error_count() != before_errors) return std::nullopt;

    if (default_clean || dest.level) {
      const TlsLevel level = dest.level.value_or(cfg_.policy.default_level);
      // match= names extra certificate identities; only the PKIX levels check names against it.
      if (!dest.match.empty() && level != TlsLevel::verify && level != TlsLevel::secure) {
        ld_.fail(Field{*s.node("match"), child_key(f.key, "match")},
                 "\"match\" has no effect at level " + in_quotes(to_string(level)) + " (only verify and secure use it)");
        return std::nullopt;
      }
      // P-02: an address literal is never matched against certificate names, so verify/secure
      // need a literal name in match=, or no mail could ever be delivered.
      if (dest.nexthop && dest.nexthop->address_literal && (level == TlsLevel::verify || level == TlsLevel::secure) &&
          std::none_of(dest.match.begin(), dest.match.end(), [](const std::string& m) {
            return m != "hostname" && m != "nexthop" && m != "dot-nexthop";
          })) {
        const auto* n = s.node("nexthop");
        ld_.fail(Field{*n, child_key(f.key, "nexthop")},
                 "address-literal nexthop " + written(*n) + " at level " + in_quotes(to_string(level)) +
                     " leaves no certificate name to check (address literals are never names): add match = "
                     "[\"the.server.name\"]");
        return std::nullopt;
      }
      // DANE does not apply to address literals (RFC 7672 §2.2, D-15): dane-only could never deliver.
      if (dest.nexthop && dest.nexthop->address_literal && level == TlsLevel::dane_only) {
        const auto* n = s.node("nexthop");
        ld_.fail(Field{*n, child_key(f.key, "nexthop")},
                 "address-literal nexthop " + written(*n) +
                     " cannot satisfy level \"dane-only\" (DANE does not apply to address literals, RFC 7672 "
                     "\u00a72.2)");
        return std::nullopt;
      }
    }
    return dest;
  }

  // Postfix match= strategies: "hostname", "nexthop", "dot-nexthop", or a name (".name" matches
  // its subdomains).
  std::optional<std::vector<std::string>> match_list(const Field& f) {
    return string_list(f, "match",
                       "expected hostname, nexthop, dot-nexthop, a domain name, or .domain for its subdomains",
                       [](const std::string& text) -> std::optional<std::string> {
                         if (text == "hostname" || text == "nexthop" || text == "dot-nexthop") return text;
                         return normalize_destination_pattern(text);
                       });
  }


  void read_queue(Section& s) {
    auto& q = cfg_.queue;
    const auto before_errors = ld_.error_count();
    s.read("directory", [&](const Field& f) { assign(q.directory, ld_.path(f, true)); });
    s.read("min_backoff", [&](const Field& f) { assign(q.min_backoff, ld_.duration(f, Duration{1})); });
    s.read("max_backoff", [&](const Field& f) { assign(q.max_backoff, ld_.duration(f, Duration{1})); });
    s.read("max_lifetime", [&](const Field& f) { assign(q.max_lifetime, ld_.duration(f, Duration{1})); });
    s.read("delay_warning", [&](const Field& f) { assign(q.delay_warning, ld_.duration(f, Duration{0})); });
    s.read("min_free_space", [&](const Field& f) { assign(q.min_free_space, ld_.size(f, 0)); });
    if (ld_.error_count() == before_errors && q.max_backoff < q.min_backoff) {
      if (const auto* n = s.node("max_backoff")) {
        ld_.fail(Field{*n, child_key(s.key(), "max_backoff")},
                 "duration " + written(*n) + " is shorter than min_backoff (" + format_duration(q.min_backoff) + ")");
      } else {
        const auto* m = s.node("min_backoff");
        ld_.fail(Field{*m, child_key(s.key(), "min_backoff")},
                 "duration " + written(*m) + " is longer than max_backoff (" + format_duration(q.max_backoff) + ")");
      }
    }
  }

  void read_log(Section& s) {
    auto& log = cfg_.log;
    s.read("format", [&](const Field& f) { assign(log.format, ld_.choice(f, "log format", kLogFormats)); });
    s.read("target", [&](const Field& f) { assign(log.target, ld_.choice(f, "log target", kLogTargets)); });
    s.read("syslog_name", [&](const Field& f) {
      auto name = ld_.string(f);
      if (!name) return;
      // Postfix's syslog_name alphabet, so the name survives log pipelines unchanged.
      const bool valid = !name->empty() && std::all_of(name->begin(), name->end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
               c == '-' || c == '/';
      });
      if (!valid) {
        ld_.fail(f, "invalid syslog name " + in_quotes(*name) + " (expected letters, digits, '.', '_', '-' and '/')");
        return;
      }
      log.syslog_name = std::move(*name);
    });
    s.read("level", [&](const Field& f) { assign(log.level, ld_.choice(f, "log level", kLogLevels)); });
    s.read("tls_feature_status", [&](const Field& f) { assign(log.tls_feature_status, ld_.boolean(f)); });
  }

  void read_metrics(Section& s) {
    auto& m = cfg_.metrics;
    s.read("enabled", [&](const Field& f) { assign(m.enabled, ld_.boolean(f)); });
    s.read("address", [&](const Field& f) { assign(m.address, listen_address(f, "\"127.0.0.1:9425\"")); });
    s.read("allow_networks", [&](const Field& f) { assign(m.allow_networks, networks(f)); });
  }

  // A local address to bind: an IP literal and an explicit port.
  std::optional<Endpoint> listen_address(const Field& f, std::string_view example) {
    auto text = ld_.string(f);
    if (!text) return std::nullopt;
    auto endpoint = Endpoint::parse(*text, 0);
    if (endpoint && (syntax::is_ipv4_address(endpoint->host) || syntax::is_ipv6_address(endpoint->host))) return endpoint;
    ld_.fail(f, "invalid listen address " + in_quotes(*text) + " (expected an IP address and port, e.g. " +
                    std::string(example) + "; IPv6 in brackets)");
    return std::nullopt;
  }

  void read_listeners(const Field& f) {
    if (f.node.is_table()) {
      ld_.fail(f, "expected an array of tables (write [[listener]], not [listener])");
      return;
    }
    auto elements = ld_.array(f);
    if (!elements) return;
    if (elements->empty()) {
      ld_.fail(f, "empty array (define at least one [[listener]], or leave the key out for the default listener)");
      return;
    }
    struct Seen {
      std::string name;
      Endpoint address;
      std::uint32_t line;
    };
    std::vector<Seen> seen;
    for (const auto& e : *elements) {
      const auto* t = ld_.table(e);
      if (t == nullptr) continue;
      const auto before_errors = ld_.error_count();
      Listener l;
      l.where = ld_.location(e.node);
      Section s(ld_, *t, e.key);
      s.read("name", [&](const Field& v) {
        auto name = ld_.string(v);
        if (!name) return;
        const bool valid = !name->empty() && std::all_of(name->begin(), name->end(), [](char c) {
          return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                 c == '_' || c == '-';
        });
        if (!valid) {
          ld_.fail(v, "invalid listener name " + in_quotes(*name) + " (expected letters, digits, '.', '_' and '-')");
          return;
        }
        l.name = std::move(*name);
      });
      s.read("address", [&](const Field& v) {
        assign(l.address, listen_address(v, "\"[::]:25\", \"0.0.0.0:25\" or \"127.0.0.1:2525\""));
      });
      s.read("tls", [&](const Field& v) { assign(l.tls, ld_.choice(v, "listener TLS mode", kListenerTls)); });
      s.read("require_tls", [&](const Field& v) { assign(l.require_tls, ld_.boolean(v)); });
      s.read("auth", [&](const Field& v) { assign(l.auth, ld_.choice(v, "auth mode", kListenerAuth)); });
      s.read("auth_mechanisms", [&](const Field& v) { assign(l.auth_mechanisms, unique_choices(v, "SASL mechanism", kSaslMechanisms)); });
      s.read("allow_networks", [&](const Field& v) { assign(l.allow_networks, networks(v)); });
      s.read("auth_header", [&](const Field& v) { assign(l.auth_header, ld_.boolean(v)); });
      s.read("proxy_protocol", [&](const Field& v) { assign(l.proxy_protocol, ld_.boolean(v)); });
      s.read("proxy_from", [&](const Field& v) { assign(l.proxy_from, networks(v)); });
      s.finish();
      if (ld_.error_count() != before_errors) continue;

      check_listener(s, l);
      check_proxy(s, l);
      const auto where_of = [&](std::string_view key) {
        const toml::node* n = s.node(key);
        return n != nullptr ? Field{*n, child_key(e.key, key)} : Field{e.node, e.key};
      };
      for (const auto& other : seen) {
        if (other.name == l.name) {
          ld_.fail(where_of("name"), "duplicate listener name " + in_quotes(l.name) + " (also used by the listener at line " +
                                         std::to_string(other.line) + ")");
        }
        if (other.address == l.address) {
          ld_.fail(where_of("address"), "duplicate listener address " + in_quotes(endpoint_text(l.address)) +
                                            " (also used by the listener at line " + std::to_string(other.line) + ")");
        }
      }
      seen.push_back(Seen{l.name, l.address, l.where.line});
      cfg_.listeners.push_back(std::move(l));
    }
  }

  // Inbound TLS needs a certificate; RFC 3207 §4: a server that requires STARTTLS must offer it.
  void check_listener(const Section& s, const Listener& l) {
    if (!tls_clean_) return;
    const bool have_cert = !cfg_.tls.server.cert_file.empty();
    if (l.tls == Listener::Tls::implicit && !have_cert) {
      ld_.fail(Field{*s.node("tls"), child_key(s.key(), "tls")},
               "implicit TLS needs tls.server.cert_file and tls.server.key_file");
    }
    if (l.require_tls) {
      const Field field{*s.node("require_tls"), child_key(s.key(), "require_tls")};
      if (l.tls == Listener::Tls::none) {
        ld_.fail(field, "require_tls = true contradicts tls = \"none\"");
      } else if (!have_cert) {
        ld_.fail(field, "require_tls = true needs tls.server.cert_file and tls.server.key_file");
      }
    }
  }

  // PROXY protocol: a header is believed only from a configured balancer, so proxy_protocol needs
  // proxy_from; and proxy_from alone would be a setting that does nothing.
  void check_proxy(const Section& s, const Listener& l) {
    if (l.proxy_protocol && l.proxy_from.empty()) {
      const toml::node* from = s.node("proxy_from");
      ld_.fail(from != nullptr ? Field{*from, child_key(s.key(), "proxy_from")}
                               : Field{*s.node("proxy_protocol"), child_key(s.key(), "proxy_protocol")},
               "proxy_protocol = true needs proxy_from (the load balancers' addresses, e.g. [\"10.0.0.5/32\"]); "
               "without it no connection could be accepted");
    }
    if (!l.proxy_protocol && s.node("proxy_from") != nullptr) {
      ld_.fail(Field{*s.node("proxy_from"), child_key(s.key(), "proxy_from")},
               "proxy_from is set but proxy_protocol is not true (set proxy_protocol = true, or remove proxy_from)");
    }
  }

  std::optional<std::vector<Cidr>> networks(const Field& f) {
    return string_list(f, "network", "expected an address or CIDR such as \"10.0.0.0/8\", \"192.0.2.7\" or \"2001:db8::/32\"",
                       [](const std::string& text) { return Cidr::parse(text); });
  }


  Loader& ld_;
  Config& cfg_;
  bool tls_clean_ = true;
};

LoadResult load_text(std::string_view text, const std::string& display_name, fs::path source, fs::path base_dir) {
  LoadResult result;
  toml::table root;
  try {
    root = toml::parse(text, std::string_view{display_name});
  } catch (const toml::parse_error& e) {
    result.errors.push_back(
        Diagnostic{display_name, e.source().begin.line, e.source().begin.column, std::string(e.description())});
    return result;
  }
  Loader loader(display_name, std::move(base_dir));
  Config config;
  config.source = std::move(source);
  ConfigReader(loader, config).read(root);
  result.errors = loader.take_errors();
  if (result.errors.empty()) result.config = std::move(config);
  return result;
}

}  // namespace

std::string Diagnostic::str() const {
  std::string out = file;
  if (line != 0) out += ":" + std::to_string(line) + ":" + std::to_string(column);
  out += ": error: ";
  out += message;
  return out;
}

LoadResult load_file(const std::filesystem::path& file) {
  const std::string display = file.string();
  const auto unreadable = [&](int err) {
    LoadResult r;
    r.errors.push_back(Diagnostic{display, 0, 0,
                                  "cannot read configuration file: " + std::generic_category().message(err)});
    return r;
  };
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> stream(std::fopen(file.c_str(), "rb"), &std::fclose);
  if (!stream) return unreadable(errno);
  std::string text;
  char buffer[8192];
  std::size_t n = 0;
  while ((n = std::fread(buffer, 1, sizeof buffer, stream.get())) > 0) text.append(buffer, n);
  if (std::ferror(stream.get())) return unreadable(errno != 0 ? errno : EIO);

  std::error_code ec;
  fs::path absolute = fs::absolute(file, ec);
  if (ec) absolute = file;
  absolute = absolute.lexically_normal();
  fs::path base_dir = absolute.parent_path();
  return load_text(text, display, std::move(absolute), std::move(base_dir));
}

LoadResult load_string(std::string_view toml_text, std::string_view source_name) {
  const fs::path source(source_name);
  return load_text(toml_text, std::string(source_name), source, source.parent_path());
}

}  // namespace danerelay::config
