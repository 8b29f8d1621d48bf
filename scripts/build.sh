#!/usr/bin/env bash
# scripts/build.sh — configure and build into ./build (warnings are errors). Extra arguments go to
# cmake's configure step, e.g. scripts/build.sh -DDANERELAY_SANITIZE=ON.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDANERELAY_WERROR=ON "$@" >/dev/null
cmake --build build
