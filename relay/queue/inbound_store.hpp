// relay/queue/inbound_store.hpp — the SMTP server's MessageStore (smtp/inbound.hpp) over the spool and
// the queue manager: space checks against queue.min_free_space, DATA streamed into a spool
// writer, and on commit the message made durable (group-committed with others) and handed to the
// queue manager for its immediate first attempt. The server replies 250 only after that.
#pragma once

#include <memory>

#include "relay/queue/queue_manager.hpp"
#include "relay/queue/spool.hpp"
#include "smtp/inbound.hpp"

namespace spdlog {
class logger;
}

namespace danerelay::relay {

// Envelope fields from what the server collected (RET, NOTIFY bits, ENVID, BODY, SMTPUTF8).
[[nodiscard]] Envelope envelope_from(const smtp::InboundEnvelope& inbound, const QueueId& id);

class InboundStore final : public smtp::MessageStore {
 public:
  // Both must outlive the store and every sink it made.
  InboundStore(Spool& spool, QueueManager& queue);
  [[nodiscard]] bool has_space(std::uint64_t size) override;
  [[nodiscard]] std::unique_ptr<smtp::MessageSink> begin() override;
  [[nodiscard]] std::uint64_t accepted() const noexcept { return accepted_; }

 private:
  friend class SpoolSink;
  Spool& spool_;
  QueueManager& queue_;
  std::shared_ptr<spdlog::logger> log_;   // "cleanup"
  std::uint64_t accepted_ = 0;
};

}  // namespace danerelay::relay
