#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs what the tests need (promtool from
# Debian's prometheus package, Chromium, Node and redis-server from Debian (the Redis bus
# tests start their own on free ports), schemathesis and the F1 game
# codec from PyPI, playwright-core from npm, cargo-deny from crates.io), then checks the
# dependencies' licences, runs rustfmt, clippy, every Rust test, schemathesis against a live
# server, the dashboard in a real browser, the deployment files (hadolint, podman-compose,
# kubernetes-validate, checkov) and the container image (podman, buildah, runc, debootstrap
# from Debian).
#
# Usage: scripts/test.sh            (from the repository root; ../shared must be beside it)
# Env:   PITWALL_SHARED  where shared/ is (default ../shared)
#        PITWALL_PY      the Python virtualenv for test tools (default ~/.cache/pitwall-py)
set -euo pipefail
cd "$(dirname "$0")/.."
export PITWALL_SHARED=${PITWALL_SHARED:-$(cd .. && pwd)/shared}
PY=${PITWALL_PY:-$HOME/.cache/pitwall-py}
step() { printf '\n==> %s\n' "$*"; }

step "tools"
NEED=""
command -v promtool >/dev/null 2>&1 || NEED="$NEED prometheus"
[ -x /usr/bin/chromium ] || NEED="$NEED chromium"
command -v node >/dev/null 2>&1 || NEED="$NEED nodejs npm"
command -v redis-server >/dev/null 2>&1 || NEED="$NEED redis-server"
for t in podman buildah runc debootstrap; do command -v $t >/dev/null 2>&1 || NEED="$NEED $t"; done
command -v newuidmap >/dev/null 2>&1 || NEED="$NEED uidmap"
[ -e /usr/lib/cni/portmap ] || NEED="$NEED containernetworking-plugins"
command -v iptables >/dev/null 2>&1 || NEED="$NEED iptables"
if [ -n "$NEED" ]; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $NEED >/dev/null
fi
promtool --version | head -1
/usr/bin/chromium --version
redis-server --version
if [ ! -x "$PY/bin/schemathesis" ]; then
  python3 -m venv "$PY"
  "$PY/bin/pip" install --quiet --disable-pip-version-check schemathesis==4.32.5
fi
"$PY/bin/schemathesis" --version
# PostgreSQL: the store's tests use the machine's server at 127.0.0.1:5432 (database `test`);
# start the cluster if it is installed but down.
if command -v pg_isready >/dev/null 2>&1 && ! pg_isready -q -h 127.0.0.1 -p 5432; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  for c in /etc/postgresql/*/main; do
    [ -d "$c" ] && $SUDO pg_ctlcluster "$(basename "$(dirname "$c")")" main start || true
  done
fi
if [ -d "$PITWALL_SHARED/tools/f1-game" ]; then
  bash "$PITWALL_SHARED/tools/f1-game/install.sh"
else
  echo "warning: $PITWALL_SHARED not found: tests that need shared/ will fail" >&2
fi

# cargo-deny (licences and bans of the dependencies): built from crates.io when missing
# (5 min 36 s on a 2-core machine shared with a workspace build, 2026-12-07).
command -v cargo-deny >/dev/null 2>&1 || cargo install --locked cargo-deny
cargo deny --version

step "dependency licences and bans (cargo deny, deny.toml)"
# cargo-deny reads `cargo metadata` for every platform: fetch those crates' sources first.
cargo fetch --locked --quiet
cargo deny --offline --locked check licenses bans
scripts/licenses.sh --check

step "rustfmt"
cargo fmt --all --check

step "clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cargo test"
# CI=true makes tests that need an external tool (promtool, python) fail instead of skipping.
CI=${CI:-true} cargo test --workspace --locked

step "schemathesis against a live server"
scripts/schemathesis.sh

step "dashboard in headless Chromium (playwright-core)"
PITWALL_BIN=${PITWALL_BIN:-target/debug/pitwall} PITWALL_EXPECT_INSIGHTS=1 scripts/browser-test.sh

step "deployment files: hadolint, podman-compose config, kubernetes-validate, checkov"
PITWALL_BIN=${PITWALL_BIN:-target/debug/pitwall} scripts/deploy-check.sh

step "container image: build, pitwall demo in podman, checked from the host"
# The image is built around the debug binary the tests above built (build argument BINARY):
# compiling the workspace in the image's build stage would add 5 to 30 minutes to CI.
# PITWALL_CONTAINER_SELF_CONTAINED=1 runs the default, self-contained build instead.
if [ "${PITWALL_CONTAINER_SELF_CONTAINED:-0}" = 1 ]; then
  scripts/container-test.sh
else
  scripts/container-test.sh --binary "${PITWALL_BIN:-target/debug/pitwall}"
fi

echo
echo "all tests passed"
