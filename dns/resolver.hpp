// dns/resolver.hpp — the asynchronous lookup interface (the one seam a test may replace) and
// the libunbound implementation behind it.
//
// UnboundResolver runs libunbound in threaded async mode (ub_ctx_async(ctx, 1)) and drives it
// from the Asio event loop: ub_fd() is watched with a posix::stream_descriptor and ub_process()
// runs when it is readable, so no thread blocks per query. Every answer comes back as a
// dns::Answer carrying its DNSSEC verdict — secure, insecure, bogus or error — from libunbound's
// own validator and trust anchor. An upstream AD bit is never trusted (libunbound ignores it).
// Definitive answers (secure or insecure) are kept in front of libunbound for their TTL (at most
// 10,000), so a repeated query skips the hand-off to libunbound's thread; bogus answers and
// errors are asked again every time.
//
// Spec: RFC 4033–4035 (validation), RFC 5011 (managed trust anchor), RFC 7672 §2.1.
#pragma once

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "dns/types.hpp"

namespace danerelay::dns {

namespace asio = boost::asio;

// A resolver setting that cannot work (missing trust anchor, bad unbound option, ...). The CLI
// reports it as a configuration error (exit 2).
class SetupError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class Resolver {
 public:
  using Handler = asio::any_completion_handler<void(Answer)>;
  virtual ~Resolver() = default;
  // Starts one lookup; `handler` runs exactly once, never from inside this call.
  virtual void async_lookup(Query query, Handler handler) = 0;
};

// Coroutine helpers over any Resolver.
[[nodiscard]] asio::awaitable<Answer> lookup(Resolver& resolver, Query query);
// All queries at once; answers in the order of `queries`.
[[nodiscard]] asio::awaitable<std::vector<Answer>> lookup_all(Resolver& resolver, std::vector<Query> queries);

// Where the trust anchor comes from and what happened to it at start-up.
struct TrustAnchor {
  std::filesystem::path file;
  bool managed = false;              // RFC 5011 (ub_ctx_add_ta_autr): the file is kept current
  std::vector<std::string> notes;    // seeding / fallback messages for the log
};

// Chooses and prepares the trust anchor (ecosystem §9.7): an explicit dns.trust_anchor as given;
// otherwise <state_dir>/root.key, copied atomically from dns.trust_anchor_seed when missing or
// older, or — without dns-root-data — written from the compiled-in root DS records. When the
// state directory cannot be written, the seed file is used read-only (static, not managed).
// Throws SetupError when no anchor can be had.
[[nodiscard]] TrustAnchor prepare_trust_anchor(const config::DnsSettings& settings, const std::filesystem::path& state_dir);

class UnboundResolver final : public Resolver {
 public:
  // Builds the libunbound context from the settings. Throws SetupError.
  UnboundResolver(asio::any_io_executor executor, const config::DnsSettings& settings, const TrustAnchor& anchor);
  ~UnboundResolver() override;
  UnboundResolver(const UnboundResolver&) = delete;
  UnboundResolver& operator=(const UnboundResolver&) = delete;

  void async_lookup(Query query, Handler handler) override;

  [[nodiscard]] std::size_t pending() const noexcept;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

// The start-up check that validation really works: a DNSKEY lookup at `name` (the root by
// default) must come back secure. Behind a resolver that strips DNSSEC, or with a wrong trust
// anchor, it fails and says why (D-01).
struct SelfTest {
  bool ok = false;
  Answer answer;
  [[nodiscard]] std::string summary() const;
};
[[nodiscard]] asio::awaitable<SelfTest> self_test(Resolver& resolver, std::string name);

}  // namespace danerelay::dns
