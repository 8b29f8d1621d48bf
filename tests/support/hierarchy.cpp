// tests/support/hierarchy.cpp — Hierarchy::build(): zone files, ldns-keygen / ldns-signzone runs, DS
// records into parents, the trust anchor and the libunbound configuration.
// Tools run through posix_spawnp (no shell), stdout/stderr captured in files under log/, several at once.
// Spec: RFC 4033–4035 (DNSSEC), RFC 4509 (DS SHA-256), RFC 6605 (ECDSA P-256), RFC 6761 §6.2 ("test.").
#include "tests/support/hierarchy.hpp"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <set>
#include <sstream>
#include <stdexcept>
#include <system_error>

extern char** environ;

namespace danerelay::testsupport {
namespace {

// ── Names ────────────────────────────────────────────────────────────────────────────────────────────

// Absolute, lower case; "." is the root. Rejects what would break a zone file or a file name.
std::string normalise_name(std::string_view name) {
  if (name.empty()) throw std::invalid_argument("empty DNS name");
  std::string out;
  for (const char c : name) {
    const auto u = static_cast<unsigned char>(c);
    if (std::isspace(u) != 0 || c == '/' || c == '"' || c == ';' || c == '\\' || c == '(' || c == ')') {
      throw std::invalid_argument("unsupported character in DNS name '" + std::string(name) + "'");
    }
    out += static_cast<char>(std::tolower(u));
  }
  if (out == ".") return out;
  if (out.back() != '.') out += '.';
  if (out.front() == '.' || out.find("..") != std::string::npos) {
    throw std::invalid_argument("empty label in DNS name '" + std::string(name) + "'");
  }
  return out;
}

// "a.b.c." → "b.c."; "c." → "."
std::string parent_name(const std::string& name) {
  const auto dot = name.find('.');
  return dot + 1 >= name.size() ? std::string(".") : name.substr(dot + 1);
}

bool is_strictly_below(const std::string& name, const std::string& zone) {
  if (name == zone) return false;
  if (zone == ".") return true;
  return name.size() > zone.size() && name.ends_with(zone) && name[name.size() - zone.size() - 1] == '.';
}

bool is_at_or_below(const std::string& name, const std::string& zone) {
  return name == zone || is_strictly_below(name, zone);
}

// Zone-file rule: a name without the final dot is relative to the origin.
std::string absolute_name(std::string_view name, const std::string& origin) {
  if (name == "@") return origin;
  if (!name.empty() && name.back() == '.') return normalise_name(name);
  return normalise_name(std::string(name) + (origin == "." ? "." : "." + origin));
}

std::string ns_name(const std::string& zone) { return zone == "." ? "ns1." : "ns1." + zone; }

std::string file_stem(const std::string& zone) {
  return zone == "." ? std::string("root") : zone.substr(0, zone.size() - 1);
}

// ── Files and time ───────────────────────────────────────────────────────────────────────────────────

void write_file(const std::filesystem::path& path, const std::string& contents) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << contents;
  out.close();
  if (!out) throw std::runtime_error("cannot write " + path.string());
}

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path.string());
  std::ostringstream contents;
  contents << in.rdbuf();
  return contents.str();
}

std::string trim(std::string text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back())) != 0) text.pop_back();
  const auto first = std::find_if(text.begin(), text.end(), [](char c) {
    return std::isspace(static_cast<unsigned char>(c)) == 0;
  });
  return {first, text.end()};
}

// ldns-signzone's date form, UTC.
std::string signature_time(std::chrono::system_clock::time_point when) {
  const std::time_t t = std::chrono::system_clock::to_time_t(when);
  std::tm utc{};
  gmtime_r(&t, &utc);
  char buffer[32];
  std::strftime(buffer, sizeof buffer, "%Y%m%d%H%M%S", &utc);
  return buffer;
}

// ── Running the ldns tools ───────────────────────────────────────────────────────────────────────────

struct Job {
  std::vector<std::string> argv;
  std::filesystem::path cwd;
  std::filesystem::path out_file;
  std::filesystem::path err_file;
  std::string out;  // filled in by run_jobs
};

using FileActionsPtr = std::unique_ptr<posix_spawn_file_actions_t, void (*)(posix_spawn_file_actions_t*)>;

pid_t spawn(const Job& job) {
  posix_spawn_file_actions_t actions;
  if (posix_spawn_file_actions_init(&actions) != 0) throw std::runtime_error("posix_spawn_file_actions_init failed");
  const FileActionsPtr guard(&actions, [](posix_spawn_file_actions_t* a) { posix_spawn_file_actions_destroy(a); });
  // Absolute paths first, then the chdir: ldns-keygen writes its key files into the working directory.
  if (posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0) != 0 ||
      posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, job.out_file.c_str(),
                                       O_WRONLY | O_CREAT | O_TRUNC, 0644) != 0 ||
      posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, job.err_file.c_str(),
                                       O_WRONLY | O_CREAT | O_TRUNC, 0644) != 0 ||
      posix_spawn_file_actions_addchdir_np(&actions, job.cwd.c_str()) != 0) {
    throw std::runtime_error("posix_spawn_file_actions_add* failed");
  }
  std::vector<char*> argv;
  argv.reserve(job.argv.size() + 1);
  for (const std::string& arg : job.argv) argv.push_back(const_cast<char*>(arg.c_str()));  // POSIX: char* const[]
  argv.push_back(nullptr);
  pid_t pid = 0;
  if (const int error = posix_spawnp(&pid, argv[0], &actions, nullptr, argv.data(), environ); error != 0) {
    throw std::runtime_error("cannot run " + job.argv[0] + ": " + std::strerror(error));
  }
  return pid;
}

std::string describe(const Job& job) {
  std::string text;
  for (const std::string& arg : job.argv) text += (text.empty() ? "" : " ") + arg;
  return text;
}

// Runs the jobs, up to max_parallel at a time. Throws on the first failed job (after reaping the others),
// with its command line and stderr.
void run_jobs(std::vector<Job>& jobs, std::size_t max_parallel = 8) {
  std::string failure;
  for (std::size_t begin = 0; begin < jobs.size(); begin += max_parallel) {
    const std::size_t end = std::min(jobs.size(), begin + max_parallel);
    std::vector<pid_t> pids;
    for (std::size_t i = begin; i < end; ++i) {
      try {
        pids.push_back(spawn(jobs[i]));
      } catch (const std::exception& e) {
        if (failure.empty()) failure = e.what();
        pids.push_back(-1);
      }
    }
    for (std::size_t i = begin; i < end; ++i) {
      const pid_t pid = pids[i - begin];
      if (pid < 0) continue;
      int status = 0;
      while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) throw std::system_error(errno, std::generic_category(), "waitpid");
      }
      Job& job = jobs[i];
      if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        if (failure.empty()) {
          failure = describe(job) + " failed (" +
                    (WIFEXITED(status) ? "exit " + std::to_string(WEXITSTATUS(status))
                                       : "signal " + std::to_string(WTERMSIG(status))) +
                    "): " + trim(read_file(job.err_file));
        }
        continue;
      }
      job.out = read_file(job.out_file);
    }
  }
  if (!failure.empty()) throw std::runtime_error(failure);
}

// ── The unbound configuration ────────────────────────────────────────────────────────────────────────

// unbound's built-in local zones (RFC 6761 and friends) that would answer NXDOMAIN for our names.
// "local-zone: … nodefault" lifts one; it works in a config file, not through ub_ctx_set_option.
// 127.in-addr.arpa. and the ::1 reverse zone too (unbound answers "localhost" for 127.0.0.1 and ::1
// itself): the world's reverse zones for inbound client names are served only with them lifted.
constexpr std::string_view kDefaultLocalZones[] = {
    "test.", "invalid.", "onion.", "home.arpa.", "localhost.", "127.in-addr.arpa.",
    "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa."};

std::string quote(const std::string& text) { return "\"" + text + "\""; }

}  // namespace

// ── Zone ─────────────────────────────────────────────────────────────────────────────────────────────

Zone& Zone::add(std::string_view owner, std::string_view type, std::string_view rdata) {
  if (owner.empty()) throw std::invalid_argument("empty owner name in zone " + name_);
  std::string line(owner);
  line += " IN ";
  line += type;
  line += ' ';
  line += rdata;
  return record(line);
}

Zone& Zone::a(std::string_view owner, std::string_view ipv4) { return add(owner, "A", ipv4); }
Zone& Zone::aaaa(std::string_view owner, std::string_view ipv6) { return add(owner, "AAAA", ipv6); }
Zone& Zone::mx(std::string_view owner, int preference, std::string_view target) {
  return add(owner, "MX", std::to_string(preference) + " " + std::string(target));
}
Zone& Zone::cname(std::string_view owner, std::string_view target) { return add(owner, "CNAME", target); }
Zone& Zone::tlsa(std::string_view owner, std::string_view rdata) { return add(owner, "TLSA", rdata); }

Zone& Zone::txt(std::string_view owner, std::string_view text) {
  // RFC 1035 §3.3.14: one or more <character-string>s of at most 255 octets each.
  std::string rdata;
  std::size_t in_chunk = 0;
  rdata += '"';
  for (const char c : text) {
    if (in_chunk == 255) {
      rdata += "\" \"";
      in_chunk = 0;
    }
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      rdata += '\\';
      rdata += c;
    } else if (u < 0x20 || u > 0x7e) {
      char escaped[8];
      std::snprintf(escaped, sizeof escaped, "\\%03u", static_cast<unsigned>(u));
      rdata += escaped;
    } else {
      rdata += c;
    }
    ++in_chunk;
  }
  rdata += '"';
  return add(owner, "TXT", rdata);
}

Zone& Zone::record(std::string_view line) {
  if (kind_ == ZoneKind::dead) {
    throw std::logic_error("zone " + name_ + " is dead: its records would never be served");
  }
  if (line.find('\n') != std::string_view::npos) throw std::invalid_argument("record() takes one line");
  lines_.emplace_back(line);
  return *this;
}

Zone& Zone::delegate_dead(std::string_view child_name, bool with_ds) {
  if (kind_ == ZoneKind::dead) throw std::logic_error("zone " + name_ + " is dead: it delegates nothing");
  std::string child = absolute_name(child_name, name_);
  if (!is_strictly_below(child, name_)) {
    throw std::invalid_argument(child + " is not below zone " + name_);
  }
  dead_children_.push_back({std::move(child), with_ds});
  return *this;
}

// ── Hierarchy ────────────────────────────────────────────────────────────────────────────────────────

Hierarchy::Hierarchy(std::filesystem::path dir, std::string dead_server_address)
    : dir_(std::filesystem::absolute(dir)), dead_server_address_(std::move(dead_server_address)) {
  zone(".", ZoneKind::secure);
  zone("test.", ZoneKind::secure);
  implicit_ = {".", "test."};
}

Zone& Hierarchy::zone(std::string_view name) {
  if (const auto found = zones_.find(normalise_name(name)); found != zones_.end()) return *found->second;
  return zone(name, ZoneKind::secure);
}

Zone& Hierarchy::zone(std::string_view name, ZoneKind kind) {
  std::string absolute = normalise_name(name);
  if (absolute == "." && kind != ZoneKind::secure && kind != ZoneKind::expired && kind != ZoneKind::bogus_ds) {
    throw std::invalid_argument("the root must be signed (secure, expired or bogus_ds)");
  }
  const bool was_implicit = implicit_.erase(absolute) != 0;
  if (const auto found = zones_.find(absolute); found != zones_.end()) {
    Zone& existing = *found->second;
    if (existing.kind_ != kind) {
      if (!was_implicit) throw std::invalid_argument("zone " + absolute + " is already declared with another kind");
      if (kind == ZoneKind::dead && !existing.lines_.empty()) {
        throw std::logic_error("zone " + absolute + " has records: it cannot become dead");
      }
      existing.kind_ = kind;
    }
    return existing;
  }
  // Zone's constructor is private to keep names normalised; hence no make_unique.
  auto [it, inserted] = zones_.emplace(absolute, std::unique_ptr<Zone>(new Zone(absolute, kind)));
  return *it->second;
}

Hierarchy::Built Hierarchy::build() {
  namespace fs = std::filesystem;
  const fs::path keys_dir = dir_ / "keys";
  const fs::path other_keys_dir = keys_dir / "other";  // the wrong keys of bogus_ds zones
  const fs::path dead_keys_dir = keys_dir / "dead";    // keys of dead delegations: only their DS is used
  const fs::path zones_dir = dir_ / "zones";
  const fs::path log_dir = dir_ / "log";
  for (const fs::path& d : {keys_dir, zones_dir, log_dir}) fs::remove_all(d);
  for (const fs::path& d : {other_keys_dir, dead_keys_dir, zones_dir, log_dir}) fs::create_directories(d);

  // 1. The tree: each zone's parent is its closest enclosing declared zone.
  std::map<std::string, std::vector<const Zone*>> children;  // parent → declared child zones
  std::set<std::string> dead_names;
  for (const auto& [name, zone] : zones_) {
    if (name == ".") continue;
    std::string parent = parent_name(name);
    while (!zones_.contains(parent)) parent = parent_name(parent);
    if (zones_.at(parent)->kind() == ZoneKind::dead) {
      throw std::invalid_argument("zone " + name + " is below the dead zone " + parent);
    }
    children[parent].push_back(zone.get());
  }
  for (const auto& [name, zone] : zones_) {
    for (const Zone::DeadChild& dead : zone->dead_children_) {
      for (const auto& [other, unused] : zones_) {
        if (is_at_or_below(other, dead.name)) {
          throw std::invalid_argument("zone " + other + " is at or below the dead delegation " + dead.name);
        }
      }
      if (!dead_names.insert(dead.name).second) throw std::invalid_argument("duplicate delegation " + dead.name);
    }
  }

  // 2. Keys. ldns-keygen prints the base name (K<zone>+013+<tag>) and writes .key/.private/.ds into cwd.
  std::vector<Job> key_jobs;
  auto add_key_job = [&](const std::string& name, const fs::path& cwd) {
    const std::string tag = std::to_string(key_jobs.size());
    key_jobs.push_back({{"ldns-keygen", "-a", "ECDSAP256SHA256", "-k", name}, cwd, log_dir / ("keygen-" + tag + ".out"),
                        log_dir / ("keygen-" + tag + ".err"), {}});
  };
  std::map<std::string, std::size_t> key_job_of;        // zone or dead child → its signing key's job
  std::map<std::string, std::size_t> wrong_key_job_of;  // bogus_ds zone → the key its parent's DS is made from
  for (const auto& [name, zone] : zones_) {
    if (zone->kind() == ZoneKind::insecure) continue;
    key_job_of[name] = key_jobs.size();
    add_key_job(name, keys_dir);
    if (zone->kind() == ZoneKind::bogus_ds) {
      wrong_key_job_of[name] = key_jobs.size();
      add_key_job(name, other_keys_dir);
    }
  }
  for (const auto& [name, zone] : zones_) {
    for (const Zone::DeadChild& dead : zone->dead_children_) {
      if (!dead.with_ds) continue;
      key_job_of[dead.name] = key_jobs.size();
      add_key_job(dead.name, dead_keys_dir);
    }
  }
  run_jobs(key_jobs);
  auto key_base = [&](std::size_t job) { return key_jobs[job].cwd / trim(key_jobs[job].out); };
  auto ds_record = [&](std::size_t job) { return trim(read_file(key_base(job).string() + ".ds")); };
  // The DS a parent publishes for a zone / dead child (none for insecure ones).
  auto parent_ds = [&](const std::string& name) -> std::string {
    if (const auto wrong = wrong_key_job_of.find(name); wrong != wrong_key_job_of.end()) return ds_record(wrong->second);
    if (const auto own = key_job_of.find(name); own != key_job_of.end()) return ds_record(own->second);
    return {};
  };

  // 3. Zone files: apex SOA/NS/glue, the caller's records, then delegations with their DS.
  Built built;
  built.dir = dir_;
  built.dead_server_address = dead_server_address_;
  std::vector<Job> sign_jobs;
  std::vector<Job> check_jobs;
  const auto now = std::chrono::system_clock::now();
  const std::string inception = signature_time(now - std::chrono::hours(24));
  const std::string expiration = signature_time(now + std::chrono::hours(24 * 30));
  for (const auto& [name, zone] : zones_) {
    if (zone->kind() == ZoneKind::dead) continue;
    std::ostringstream text;
    text << "; generated by danerelay::testsupport::Hierarchy\n"
         << "$ORIGIN " << name << "\n$TTL 3600\n"
         << name << " IN SOA " << ns_name(name) << " hostmaster." << (name == "." ? "" : name)
         << " 1 3600 600 86400 300\n"
         << name << " IN NS " << ns_name(name) << "\n"
         << ns_name(name) << " IN A " << dead_server_address_ << "\n";
    for (const std::string& line : zone->lines_) text << line << "\n";
    auto delegate = [&](const std::string& child) {
      text << "; delegation\n"
           << child << " IN NS " << ns_name(child) << "\n"
           << ns_name(child) << " IN A " << dead_server_address_ << "\n";
      if (const std::string ds = parent_ds(child); !ds.empty()) text << ds << "\n";
    };
    if (const auto kids = children.find(name); kids != children.end()) {
      for (const Zone* child : kids->second) delegate(child->name());
    }
    for (const Zone::DeadChild& dead : zone->dead_children_) delegate(dead.name);

    const fs::path zone_file = zones_dir / (file_stem(name) + ".zone");
    write_file(zone_file, text.str());
    const std::string tag = std::to_string(sign_jobs.size() + check_jobs.size());
    if (zone->kind() == ZoneKind::insecure) {
      // Not signed, so nothing has parsed it yet: let ldns-read-zone report a bad record() here rather
      // than libunbound at the first query.
      check_jobs.push_back({{"ldns-read-zone", "-E", "SOA", zone_file.string()}, zones_dir,
                            log_dir / ("check-" + tag + ".out"), log_dir / ("check-" + tag + ".err"), {}});
      built.zone_files[name] = zone_file;
      continue;
    }
    const fs::path signed_file = zone_file.string() + ".signed";
    const bool expired = zone->kind() == ZoneKind::expired;
    sign_jobs.push_back({{"ldns-signzone", "-i", expired ? "20200101000000" : inception, "-e",
                          expired ? "20200201000000" : expiration, "-o", name, "-f", signed_file.string(),
                          zone_file.string(), key_base(key_job_of.at(name)).string()},
                         zones_dir, log_dir / ("sign-" + tag + ".out"), log_dir / ("sign-" + tag + ".err"), {}});
    built.zone_files[name] = signed_file;
  }
  sign_jobs.insert(sign_jobs.end(), check_jobs.begin(), check_jobs.end());
  run_jobs(sign_jobs);

  // 4. The trust anchor: the root's DS as a parent would publish it (the wrong one for a bogus_ds root).
  built.trust_anchor = dir_ / "root.ta";
  write_file(built.trust_anchor, parent_ds(".") + "\n");

  // 5. libunbound: serve every zone from its file, never leave the machine, fail fast on the dead server.
  std::ostringstream conf;
  conf << "# generated by danerelay::testsupport::Hierarchy; load with ub_ctx_config, then add the trust anchor\n"
       << "server:\n"
       << "    verbosity: 0\n"
       << "    use-syslog: no\n"
       << "    chroot: \"\"\n"
       // Glue and the dead server are 127.x: unbound refuses to query loopback unless told otherwise.
       << "    do-not-query-localhost: no\n"
       // Only IPv4 glue exists; no IPv6 transport attempts.
       << "    do-ip6: no\n"
       // An unreachable server costs ~17 s with the defaults; with a 300 ms RTT ceiling well under a second.
       << "    infra-cache-max-rtt: 300\n";
  std::set<std::string_view> lifted;
  for (const std::string_view local : kDefaultLocalZones) {
    for (const auto& [name, zone] : zones_) {
      if (is_at_or_below(name, std::string(local)) && lifted.insert(local).second) {
        conf << "    local-zone: " << quote(std::string(local)) << " nodefault\n";
      }
    }
  }
  for (const auto& [name, file] : built.zone_files) {
    conf << "auth-zone:\n"
         << "    name: " << quote(name) << "\n"
         << "    zonefile: " << quote(fs::absolute(file).string()) << "\n"
         << "    for-upstream: yes\n"
         << "    for-downstream: no\n"
         << "    fallback-enabled: no\n";
  }
  built.unbound_conf = dir_ / "unbound.conf";
  write_file(built.unbound_conf, conf.str());
  return built;
}

UnboundContextPtr make_unbound_context(const Hierarchy::Built& built) {
  UnboundContextPtr ctx(ub_ctx_create(), ub_ctx_delete);
  if (!ctx) throw std::runtime_error("ub_ctx_create failed");
  if (const int error = ub_ctx_config(ctx.get(), built.unbound_conf.c_str()); error != 0) {
    throw std::runtime_error("ub_ctx_config(" + built.unbound_conf.string() + "): " + ub_strerror(error));
  }
  if (const int error = ub_ctx_add_ta_file(ctx.get(), built.trust_anchor.c_str()); error != 0) {
    throw std::runtime_error("ub_ctx_add_ta_file(" + built.trust_anchor.string() + "): " + ub_strerror(error));
  }
  for (const auto& [option, value] : built.unbound_options) {
    if (const int error = ub_ctx_set_option(ctx.get(), option.c_str(), value.c_str()); error != 0) {
      throw std::runtime_error("ub_ctx_set_option(" + option + " " + value + "): " + ub_strerror(error));
    }
  }
  return ctx;
}

}  // namespace danerelay::testsupport
