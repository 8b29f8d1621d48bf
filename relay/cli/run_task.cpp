// relay/cli/run_task.cpp — see run_task.hpp.
#include "relay/cli/run_task.hpp"

#include <boost/asio/co_spawn.hpp>

#include <exception>
#include <iostream>
#include <utility>

#include "relay/core/exit_codes.hpp"

namespace danerelay::relay {

void run_task(boost::asio::io_context& io, std::string what, std::function<boost::asio::awaitable<void>()> task, int& rc) {
  boost::asio::co_spawn(io, std::move(task), [&rc, what = std::move(what)](std::exception_ptr e) {
    if (!e) return;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& x) {
      std::cerr << "danerelay: " << what << " failed: " << x.what() << '\n';
      rc = kExitFailure;
    }
  });
  io.run();
}

}  // namespace danerelay::relay
