#!/usr/bin/env bash
# scripts/demo.sh — the quick start: installs what is missing, builds, and runs the whole smarthost
# in a private network namespace (only loopback; nothing leaves this machine):
#   - generates the signed DNSSEC test world (tests/support/world.cpp: secure, insecure, bogus, ...
#     zones with TLSA records from fresh certificates; libunbound serves and validates it itself)
#     and a danerelay.toml for it (relay listener on 127.0.0.1:2525, STARTTLS);
#   - starts in-process SMTP sinks playing the destination MX hosts on port 25 of loopback
#     addresses (one of them with a certificate its TLSA records do not match);
#   - runs `danerelay run`, submits mail to it as an organisation's mail server would, and shows
#     the daemon's Postfix-format log, `danerelay queue list` and what each MX host received.
# The program doing this is build/tests/support/danerelay-demo (tests/support/demo_main.cpp).
# Needs root: port 25 and `unshare -n`. The files (config, log, spool) stay in /tmp/danerelay-demo.*.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -ne 0 ]; then
  echo "demo.sh: the demo needs root (it listens on port 25 and runs in its own network namespace)" >&2
  exit 1
fi
scripts/install-deps.sh
scripts/build.sh
dir=$(mktemp -d /tmp/danerelay-demo.XXXXXX)
unshare -n sh -c 'ip link set lo up && exec ./build/tests/support/danerelay-demo "$1"' danerelay-demo "$dir"
