#!/usr/bin/env bash
# scripts/demo.sh — the quick start: installs what is missing, builds, generates the signed test
# world (tests/support/world.cpp: secure, insecure, bogus, dead, null-MX, CNAME'd, ... zones with
# TLSA records from fresh certificates) and runs `danerelay resolve` over every domain in it.
# Nothing leaves this machine: libunbound serves the signed zones itself.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
world=$(mktemp -d /tmp/danerelay-demo.XXXXXX)
./build/tests/support/danerelay-testzones "$world" > "$world/world.txt"
config=$(awk '/^config /{print $2}' "$world/world.txt")
echo "== test world in $world (config: $config)"
grep '^domain' "$world/world.txt" | sed 's/^domain /   /'
echo
./build/relay/danerelay check-config -c "$config"
echo
mapfile -t domains < <(awk '/^domain /{print $2}' "$world/world.txt")
./build/relay/danerelay resolve -c "$config" "${domains[@]}"
