// relay/queue/inbound_store.cpp — see inbound_store.hpp.
#include "relay/queue/inbound_store.hpp"

#include <spdlog/spdlog.h>

#include "relay/core/logging.hpp"

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"  // false positive on coroutine frames (g++ 12)
#endif

namespace danerelay::relay {

namespace asio = boost::asio;

Envelope envelope_from(const smtp::InboundEnvelope& inbound, const QueueId& id) {
  Envelope e;
  e.id = id;
  e.sender = inbound.sender;
  for (const auto& r : inbound.recipients) e.recipients.push_back(Recipient{r.address, r.orcpt, r.notify});
  e.ret = inbound.ret == "FULL" ? Ret::full : inbound.ret == "HDRS" ? Ret::headers : Ret::unspecified;
  e.envid = inbound.envid;
  e.eightbit = inbound.eightbit;
  e.smtputf8 = inbound.smtputf8;
  e.arrival = Clock::now();
  return e;
}

class SpoolSink final : public smtp::MessageSink {
 public:
  SpoolSink(InboundStore& store, std::unique_ptr<Spool::Writer> writer)
      : store_(store), writer_(std::move(writer)), id_(writer_->id().str()) {}

  [[nodiscard]] const std::string& queue_id() const noexcept override { return id_; }
  void write(std::string_view bytes) override {
    if (writer_) writer_->write(bytes);
  }

  asio::awaitable<smtp::CommitResult> commit(smtp::InboundEnvelope envelope) override {
    if (!writer_) co_return smtp::CommitResult{false, "message already committed"};
    const QueueId id = writer_->id();
    Envelope env = envelope_from(envelope, id);
    const SpoolResult r = co_await store_.spool_.commit(std::move(writer_), env);
    if (!r.ok()) co_return smtp::CommitResult{false, r.error};
    ++store_.accepted_;
    MessageState state;
    state.recipients.resize(env.recipients.size());
    QueuedMessage message{std::move(env), std::move(state)};
    store_.queue_.enqueue(std::move(message));
    co_return smtp::CommitResult{true, {}};
  }

 private:
  InboundStore& store_;
  std::unique_ptr<Spool::Writer> writer_;
  std::string id_;
};

InboundStore::InboundStore(Spool& spool, QueueManager& queue) : spool_(spool), queue_(queue), log_(logger("cleanup")) {}

bool InboundStore::has_space(std::uint64_t size) { return spool_.has_space(size); }

std::unique_ptr<smtp::MessageSink> InboundStore::begin() { return std::make_unique<SpoolSink>(*this, spool_.begin()); }

}  // namespace danerelay::relay
