// tests/support/daemon.hpp — runs `danerelay run -c CONFIG` (or another server, e.g. haproxy) as a
// child process for end-to-end and crash tests: start, wait until a listener accepts connections, signal (SIGTERM for a clean
// stop, SIGKILL for a crash), reap, and read what it logged (stderr goes to a file).
//
// Waits are bounded (a number of 20 ms connect attempts); nothing here sleeps for correctness.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace danerelay::testsupport {

class Daemon {
 public:
  // Starts `binary run -c config`, stderr (and stdout) appended to `log_file`. With `prefix`,
  // runs `prefix... binary …` instead (e.g. {"strace", "-f", "-o", FILE}).
  Daemon(std::filesystem::path binary, std::filesystem::path config, std::filesystem::path log_file,
         std::vector<std::string> prefix = {});
  // Starts `argv` as it is (argv[0] looked up in PATH), e.g. {"haproxy", "-db", "-f", FILE}: another
  // program a test runs next to the relay, with the same bounded waits and the same clean-up.
  Daemon(std::vector<std::string> argv, std::filesystem::path log_file);
  ~Daemon();  // SIGKILL + reap if still running
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  // True once a TCP connection to address:port succeeds (the connection is closed at once; the
  // relay logs a connect/disconnect) or false after `timeout` / when the child exited.
  bool wait_listening(const std::string& address, std::uint16_t port, std::chrono::milliseconds timeout);
  // True once `path` exists (e.g. the control socket), false after `timeout` or child exit.
  bool wait_file(const std::filesystem::path& path, std::chrono::milliseconds timeout);
  // True once the log contains `text`, false after `timeout`.
  bool wait_log(const std::string& text, std::chrono::milliseconds timeout) const;

  void signal(int signo);
  // Reaps the child (waiting at most `timeout`, then SIGKILL); its exit code, or 128+signal.
  int wait(std::chrono::milliseconds timeout = std::chrono::seconds(30));
  [[nodiscard]] bool running();
  [[nodiscard]] pid_t pid() const noexcept { return pid_; }
  [[nodiscard]] std::string log() const;

 private:
  pid_t pid_ = -1;
  std::optional<int> status_;
  std::filesystem::path log_file_;
};

// An unused TCP port on 127.0.0.1 (bound then released; good enough for tests on loopback).
[[nodiscard]] std::uint16_t free_port();

}  // namespace danerelay::testsupport
