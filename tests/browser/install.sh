#!/usr/bin/env bash
# tests/browser/install.sh — installs the browser test's npm dependencies (playwright-core only,
# exactly as pinned in package-lock.json) into tests/browser/node_modules with `npm ci`. No
# browser is downloaded: the test drives Debian's chromium (scripts/install-deps.sh). A no-op
# when the installed version is the locked one. Needs the npm registry, so scripts/test.sh runs
# it before the suite's loopback-only network namespace.
set -euo pipefail
cd "$(dirname "$0")"
locked=$(node -p "require('./package-lock.json').packages['node_modules/playwright-core'].version")
installed=$(node -p "require('./node_modules/playwright-core/package.json').version" 2>/dev/null || true)
if [ "$locked" = "$installed" ]; then
  echo "browser: playwright-core $installed installed"
  exit 0
fi
PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error
echo "browser: playwright-core $locked installed"
