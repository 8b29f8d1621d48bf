#!/usr/bin/env bash
# tests/browser/run.sh FIXTURE OUTDIR — the posture_browser ctest: renders the fixture page into
# OUTDIR, then check.mjs loads it in headless chromium. Fails (never skips) when chromium or the
# npm dependencies are missing.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
fixture="$1"
out="$2"
if [ ! -d "$here/node_modules/playwright-core" ]; then
  echo "posture_browser: $here/node_modules is missing: run tests/browser/install.sh (scripts/test.sh does)" >&2
  exit 1
fi
chromium="${CHROMIUM:-/usr/bin/chromium}"
if [ ! -x "$chromium" ]; then
  echo "posture_browser: $chromium is missing: scripts/install-deps.sh installs Debian's chromium" >&2
  exit 1
fi
rm -rf "$out"
mkdir -p "$out"
"$fixture" "$out"
CHROMIUM="$chromium" exec node "$here/check.mjs" "$out"
