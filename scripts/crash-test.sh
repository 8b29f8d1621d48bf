#!/usr/bin/env bash
# scripts/crash-test.sh — the crash test with more kills and messages than the default test run:
# kill -9 the daemon at random moments during injection, delivery and state updates, restart it,
# and check that every acknowledged message is delivered (duplicates are counted and reported).
#   scripts/crash-test.sh [KILLS] [MESSAGES]      (defaults: 20 kills, 5000 messages)
# Needs root (sinks on port 25) and runs inside a network namespace with only loopback.
set -euo pipefail
cd "$(dirname "$0")/.."
kills=${1:-20}
messages=${2:-5000}
scripts/install-deps.sh
scripts/build.sh
export DANERELAY_CRASH_KILLS=$kills DANERELAY_CRASH_MESSAGES=$messages
if [ "$(id -u)" -eq 0 ]; then
  exec unshare -n sh -c 'ip link set lo up && exec ./build/tests/relay/relay_crash_tests'
fi
exec ./build/tests/relay/relay_crash_tests
