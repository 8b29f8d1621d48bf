#!/usr/bin/env bash
# scripts/build.sh — configure and build (warnings are errors).
#   scripts/build.sh              → ./build, RelWithDebInfo
#   scripts/build.sh --sanitize   → ./build-asan, Debug with AddressSanitizer + UBSan
# Further arguments go to cmake's configure step.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=build
args=(-DCMAKE_BUILD_TYPE=RelWithDebInfo)
if [ "${1:-}" = "--sanitize" ]; then
  shift
  dir=build-asan
  args=(-DCMAKE_BUILD_TYPE=Debug -DDANERELAY_SANITIZE=ON)
fi
cmake -S . -B "$dir" -G Ninja -DDANERELAY_WERROR=ON "${args[@]}" "$@" >/dev/null
cmake --build "$dir"
