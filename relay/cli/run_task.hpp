// relay/cli/run_task.hpp — how the one-shot subcommands (resolve, check, probe) run their work:
// one coroutine on a fresh io_context, to its end.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>

#include <functional>
#include <string>

namespace danerelay::relay {

// Spawns `task` on `io` and runs `io` until it is done. The task sets `rc` itself; an exception
// that escapes it prints "danerelay: WHAT failed: …" and sets rc to kExitFailure. `task` is kept
// (not only its coroutine) until it ends, so its captures stay valid across its awaits.
void run_task(boost::asio::io_context& io, std::string what, std::function<boost::asio::awaitable<void>()> task, int& rc);

}  // namespace danerelay::relay
