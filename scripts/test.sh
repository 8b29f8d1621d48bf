#!/usr/bin/env bash
# scripts/test.sh — the test command (README, .ci/run): installs what is missing, builds, and runs
# every test. As root it runs the suite inside a fresh network namespace that has only a loopback
# interface, so no test can reach anything but this machine.
#   scripts/test.sh              the normal build (./build)
#   scripts/test.sh --sanitize   the same suite built with AddressSanitizer + UBSan (./build-asan)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
# playwright-core for the posture page's browser test, from the npm registry (before the suite's
# loopback-only network namespace)
tests/browser/install.sh
dir=build
if [ "${1:-}" = "--sanitize" ]; then
  dir=build-asan
  scripts/build.sh --sanitize
else
  scripts/build.sh
fi
run_tests="ctest --test-dir $dir --output-on-failure --timeout 300 -j2"
if [ "$(id -u)" -eq 0 ] && unshare -n true 2>/dev/null; then
  echo "test: running the suite in a network namespace with loopback only"
  exec unshare -n sh -c "ip link set lo up && $run_tests"
fi
echo "test: not root or no network namespaces: running the suite in the host network namespace"
exec $run_tests
