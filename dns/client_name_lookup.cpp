// dns/client_name_lookup.cpp — see client_name_lookup.hpp.
#include "dns/client_name_lookup.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <optional>
#include <string>

// g++ 12 false positive on Asio coroutine frames (see smtp/client_session.cpp).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

namespace danerelay::dns {

struct ClientNameLookup::State {
  explicit State(asio::any_io_executor ex) : timer(std::move(ex)) {}
  asio::steady_timer timer;         // expires at the bound; cancelled when the result is known
  std::optional<ClientName> result;
  bool abandoned = false;           // nobody waits any more: ask no further query
  std::chrono::milliseconds limit{0};

  void finish(ClientName c) {
    if (result) return;
    result = std::move(c);
    timer.cancel();
  }
};

namespace {

// The lookup coroutine of a ClientNameLookup: parameters by value (g++ 12).
asio::awaitable<void> run_lookup(std::shared_ptr<ClientNameLookup::State> state, Resolver* resolver, IpAddress address) {
  Query ptr_q = ptr_query(address);
  Answer ptr = co_await lookup(*resolver, std::move(ptr_q));
  if (state->abandoned || state->result) co_return;
  std::vector<Query> forward_q = forward_queries(address, ptr);
  std::vector<Answer> forward;
  if (!forward_q.empty()) forward = co_await lookup_all(*resolver, std::move(forward_q));
  state->finish(decide_client_name(address, ptr, forward));
}

}  // namespace

asio::awaitable<ClientName> lookup_client_name(Resolver& resolver, IpAddress address) {
  Query ptr_q = ptr_query(address);
  Answer ptr = co_await lookup(resolver, std::move(ptr_q));
  std::vector<Query> forward_q = forward_queries(address, ptr);
  std::vector<Answer> forward;
  if (!forward_q.empty()) forward = co_await lookup_all(resolver, std::move(forward_q));
  co_return decide_client_name(address, ptr, forward);
}

ClientNameLookup::ClientNameLookup(asio::any_io_executor executor, Resolver* resolver, IpAddress address,
                                   std::chrono::milliseconds limit)
    : state_(std::make_shared<State>(executor)) {
  state_->limit = limit;
  if (resolver == nullptr) {
    state_->result = ClientName{};  // status disabled, "unknown"
    return;
  }
  state_->timer.expires_after(limit);
  asio::co_spawn(executor, run_lookup(state_, resolver, address), [state = state_](std::exception_ptr e) {
    // Not expected (the resolver reports failures as answers); a lookup that threw names nobody.
    if (e) state->finish(ClientName{std::string(kUnknownClient), ClientNameStatus::ptr_failed, {}, "lookup aborted"});
  });
}

ClientNameLookup::~ClientNameLookup() {
  state_->abandoned = true;
  state_->timer.cancel();
}

asio::awaitable<ClientName> ClientNameLookup::result() {
  // A shared_ptr copy in the frame: the State outlives this wait whatever happens to *this.
  std::shared_ptr<State> state = state_;
  if (!state->result) {
    (void)co_await state->timer.async_wait(asio::as_tuple(asio::use_awaitable));
    if (!state->result) {
      // The bound passed (or cancel()): the client stays unknown; a late answer changes nothing.
      state->abandoned = true;
      state->finish(ClientName{std::string(kUnknownClient), ClientNameStatus::timeout, {},
                               "timeout (no answer within " + std::to_string(state->limit.count()) + " ms)"});
    }
  }
  co_return *state->result;
}

void ClientNameLookup::cancel() {
  state_->abandoned = true;
  if (!state_->result) state_->finish(ClientName{std::string(kUnknownClient), ClientNameStatus::cancelled, {}, {}});
}

}  // namespace danerelay::dns
