#!/usr/bin/env bash
# The dashboard in a real browser: `pitwall demo` + headless Chromium (Debian package `chromium`)
# driven by playwright-core (pinned in tests/browser/package-lock.json; no browser download).
# Writes screenshots and results.json (frame times, first render, asset sizes) to target/browser/.
#
# Usage: scripts/browser-test.sh            (from anywhere; builds nothing)
# Env:   PITWALL_BIN       the binary to test (default target/release/pitwall)
#        PITWALL_CHROMIUM  the browser (default /usr/bin/chromium)
#        PITWALL_EXPECT_INSIGHTS=1  also require insight_update messages
set -euo pipefail
cd "$(dirname "$0")/.."
export PITWALL_BIN=${PITWALL_BIN:-target/release/pitwall}
CHROMIUM=${PITWALL_CHROMIUM:-/usr/bin/chromium}
if [ ! -x "$PITWALL_BIN" ]; then
  echo "error: $PITWALL_BIN not found: build it first (cargo build --release -p pitwall) or set PITWALL_BIN" >&2
  exit 1
fi
if [ ! -x "$CHROMIUM" ]; then
  echo "error: $CHROMIUM not found: apt-get install chromium (or set PITWALL_CHROMIUM)" >&2
  exit 1
fi
command -v node >/dev/null || { echo "error: node (20 or later) is needed" >&2; exit 1; }
# Never download a browser: playwright-core has no install hook, and this makes sure of it.
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
(cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)
exec timeout 300 node tests/browser/dashboard.test.mjs
