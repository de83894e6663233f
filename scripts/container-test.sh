#!/usr/bin/env bash
# The container image end to end: builds Containerfile with buildah, runs `pitwall demo` in it
# with podman (ports published on 127.0.0.1), and checks from the host: /health, /ready, a
# WebSocket telemetry_update, the dashboard and one of its assets, a UDP datagram counted on
# /metrics, the image's own HEALTHCHECK, that it runs as uid 10001, that `pitwall --version`
# names the commit, and that SIGTERM stops it cleanly (exit 0). Exits non-zero on any failure.
# Prints image size, build time and start-to-ready time (also in target/container/results.json).
#
# Usage: scripts/container-test.sh [--binary PATH]
#   --binary PATH   put this host-built binary in the image (build argument BINARY) instead of
#                   compiling in the build stage (the default, self-contained path)
# Env:   PITWALL_IMAGE          tag to build [localhost/pitwall:0.1.0]
#        PITWALL_RUST_IMAGE     build-stage base [docker.io/library/rust:1-bookworm if it can be
#                               pulled, else localhost/rust:1-bookworm, made here]
#        PITWALL_RUNTIME_IMAGE  runtime base [docker.io/library/debian:bookworm-slim, else
#                               localhost/debian:bookworm-slim, made here with debootstrap]
#        PITWALL_CONTAINER_CACHE  where the local base's rootfs is kept [~/.cache/pitwall-container]
#
# Needs podman, buildah, runc (Debian packages; installed with apt-get when missing, sudo when
# not root). Without a registry the bases are made locally: `debootstrap --variant=minbase
# bookworm` imported as localhost/debian:bookworm-slim (about a minute), and that plus gcc and
# the host's Rust toolchain as localhost/rust:1-bookworm (about a minute). Where podman cannot
# be installed the test says so and skips, except with CI=true, where it fails.
set -euo pipefail
cd "$(dirname "$0")/.."
BINARY=""
while [ $# -gt 0 ]; do
  case "$1" in
    --binary) BINARY=${2:?--binary needs a path}; shift 2 ;;
    *) echo "usage: $0 [--binary PATH]" >&2; exit 2 ;;
  esac
done
IMAGE=${PITWALL_IMAGE:-localhost/pitwall:0.1.0}
CACHE=${PITWALL_CONTAINER_CACHE:-$HOME/.cache/pitwall-container}
OUT=target/container
mkdir -p "$OUT" "$CACHE"
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
say() { printf '[container-test] %s\n' "$*"; }
fail() { printf '[container-test] FAIL: %s\n' "$*" >&2; exit 1; }
now_ms() { date +%s%3N; }

# --- tools --------------------------------------------------------------------------------
NEED=""
for t in podman buildah runc debootstrap; do command -v "$t" >/dev/null 2>&1 || NEED="$NEED $t"; done
command -v newuidmap >/dev/null 2>&1 || NEED="$NEED uidmap"
[ -e /usr/lib/cni/portmap ] || [ -e /usr/libexec/podman/netavark ] || NEED="$NEED containernetworking-plugins"
command -v iptables >/dev/null 2>&1 || NEED="$NEED iptables"
if [ -n "$NEED" ]; then
  say "installing$NEED"
  if ! { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq \
      --no-install-recommends $NEED fuse-overlayfs slirp4netns >/dev/null; }; then
    if [ "${CI:-}" = true ]; then fail "could not install$NEED (apt-get)"; fi
    say "SKIP: podman/buildah could not be installed here (apt-get failed); nothing was tested"
    exit 0
  fi
fi
# Debian's runc; explicit ulimits: the default ones are refused in unprivileged sandboxes.
RUN_OPTS=(--runtime runc --ulimit nofile=1024:1024 --ulimit nproc=1024:1024)
# The one-off runs below skip the health check; the demo runs it on demand (podman's timer for
# it needs systemd, which containers and CI machines often lack).
ONE_OFF=(--rm --no-healthcheck "${RUN_OPTS[@]}")
BUILD_OPTS=(--isolation chroot --network host --format docker --layers)
say "$(podman --version), $(buildah --version | cut -d' ' -f1-3), $(runc --version | head -1)"

# --- base images --------------------------------------------------------------------------
pullable() { timeout 600 podman pull -q "$1" >/dev/null 2>&1; }
RUNTIME_IMAGE=${PITWALL_RUNTIME_IMAGE:-}
RUST_IMAGE=${PITWALL_RUST_IMAGE:-}
if [ -z "$RUNTIME_IMAGE" ]; then
  if podman image exists docker.io/library/debian:bookworm-slim || pullable docker.io/library/debian:bookworm-slim; then
    RUNTIME_IMAGE=docker.io/library/debian:bookworm-slim
  else
    RUNTIME_IMAGE=localhost/debian:bookworm-slim
    if ! podman image exists "$RUNTIME_IMAGE"; then
      say "no registry: making $RUNTIME_IMAGE with debootstrap --variant=minbase bookworm"
      t0=$(now_ms)
      root="$CACHE/bookworm-rootfs"
      $SUDO rm -rf "$root"
      $SUDO debootstrap --variant=minbase bookworm "$root" http://deb.debian.org/debian >"$OUT/debootstrap.log" 2>&1 \
        || fail "debootstrap failed (see $OUT/debootstrap.log)"
      # Slim as debian:bookworm-slim: no package cache, lists, manuals, locales or docs.
      $SUDO rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/cache/apt/*.bin \
        "$root"/var/lib/apt/lists/* "$root"/usr/share/man/* "$root"/usr/share/locale/*
      $SUDO find "$root/usr/share/doc" -mindepth 1 ! -name copyright ! -type d -delete
      $SUDO tar -C "$root" -c . | podman import --change 'CMD ["bash"]' - "$RUNTIME_IMAGE" >/dev/null
      $SUDO rm -rf "$root"
      say "made $RUNTIME_IMAGE in $(( ($(now_ms) - t0) / 1000 )) s"
    fi
  fi
fi
if [ -z "$RUST_IMAGE" ] && [ -z "$BINARY" ]; then
  if podman image exists docker.io/library/rust:1-bookworm || pullable docker.io/library/rust:1-bookworm; then
    RUST_IMAGE=docker.io/library/rust:1-bookworm
  else
    RUST_IMAGE=localhost/rust:1-bookworm
    rustc_v=$(rustc --version)
    have=$(podman image inspect --format '{{ index .Labels "pitwall.rustc" }}' "$RUST_IMAGE" 2>/dev/null || true)
    if [ "$have" != "$rustc_v" ]; then
      say "no registry: making $RUST_IMAGE from $RUNTIME_IMAGE, gcc and the host's $rustc_v"
      t0=$(now_ms)
      ctx=$(mktemp -d); trap 'rm -rf "$ctx"' EXIT
      sysroot=$(rustc --print sysroot)
      mkdir -p "$ctx/rust"
      cp -a "$sysroot/bin" "$sysroot/lib" "$ctx/rust/"
      [ -d "$sysroot/libexec" ] && cp -a "$sysroot/libexec" "$ctx/rust/"
      cp "${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}" "$ctx/ca-certificates.crt"
      buildah build "${BUILD_OPTS[@]}" -f deploy/container/rust-local.Containerfile \
        --build-arg BASE="$RUNTIME_IMAGE" --label "pitwall.rustc=$rustc_v" -t "$RUST_IMAGE" "$ctx" \
        >"$OUT/rust-base-build.log" 2>&1 || fail "building $RUST_IMAGE failed (see $OUT/rust-base-build.log)"
      rm -rf "$ctx"; trap - EXIT
      say "made $RUST_IMAGE in $(( ($(now_ms) - t0) / 1000 )) s"
    fi
  fi
fi
# With a host-built binary the build stage compiles nothing: the runtime base serves.
[ -n "$BINARY" ] && RUST_IMAGE=${RUST_IMAGE:-$RUNTIME_IMAGE}

# --- build --------------------------------------------------------------------------------
COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
ARGS=(--build-arg "RUST_IMAGE=$RUST_IMAGE" --build-arg "RUNTIME_IMAGE=$RUNTIME_IMAGE"
      --build-arg "GIT_COMMIT=$COMMIT")
MODE="self-contained (cargo build --profile dist in the build stage)"
if [ -n "$BINARY" ]; then
  [ -x "$BINARY" ] || fail "--binary $BINARY is not an executable"
  mkdir -p deploy/container/bin
  cp "$BINARY" deploy/container/bin/pitwall
  strip deploy/container/bin/pitwall 2>/dev/null || true
  ARGS+=(--build-arg BINARY=deploy/container/bin/pitwall)
  MODE="host-built binary ($BINARY, stripped)"
fi
say "building $IMAGE: $MODE, on $RUST_IMAGE and $RUNTIME_IMAGE"
t0=$(now_ms)
buildah build "${BUILD_OPTS[@]}" -f Containerfile "${ARGS[@]}" -t "$IMAGE" . >"$OUT/build.log" 2>&1 \
  || { tail -30 "$OUT/build.log" >&2; fail "image build failed (see $OUT/build.log)"; }
BUILD_S=$(( ($(now_ms) - t0) / 1000 ))
rm -rf deploy/container/bin
SIZE_B=$(podman image inspect --format '{{.Size}}' "$IMAGE")
BASE_B=$(podman image inspect --format '{{.Size}}' "$RUNTIME_IMAGE")
say "built in ${BUILD_S} s; image $((SIZE_B / 1000000)) MB (base $((BASE_B / 1000000)) MB)"

# --- static checks on the image -----------------------------------------------------------
VERSION=$(podman run "${ONE_OFF[@]}" "$IMAGE" --version)
say "pitwall --version in the image: $VERSION"
if [ -n "$BINARY" ]; then
  # A host-built binary names the commit it was built from: the same in the image.
  WANT=$("$BINARY" --version)
  [ "$VERSION" = "$WANT" ] || fail "--version in the image is $VERSION, the host binary's $WANT"
else
  case "$VERSION" in *"($COMMIT)"*) ;; *) fail "--version does not name commit $COMMIT: $VERSION" ;; esac
fi
UID_IN=$(podman run "${ONE_OFF[@]}" --entrypoint id "$IMAGE" -u)
[ "$UID_IN" = 10001 ] || fail "the image runs as uid $UID_IN, not 10001"
podman run "${ONE_OFF[@]}" --entrypoint test "$IMAGE" -s /usr/share/pitwall/models/tires-default.json \
  || fail "the default model is not in the image"
podman run "${ONE_OFF[@]}" --entrypoint test "$IMAGE" -s /usr/share/pitwall/tracks/LICENSE \
  || fail "the tracks are not in the image"
HC=$(podman image inspect --format '{{json .Config.Healthcheck}}' "$IMAGE")
case "$HC" in *"/health"*) ;; *) fail "the image has no HEALTHCHECK on /health: $HC" ;; esac
EXPOSED=$(podman image inspect --format '{{json .Config.ExposedPorts}}' "$IMAGE")
case "$EXPOSED" in *'8081/tcp'*'20777/udp'*|*'20777/udp'*'8081/tcp'*) ;; *) fail "exposed ports: $EXPOSED" ;; esac

# --- run the demo -------------------------------------------------------------------------
free_port() { python3 -c 'import socket,sys; s=socket.socket(socket.AF_INET, getattr(socket, sys.argv[1])); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' "$1"; }
HTTP_PORT=$(free_port SOCK_STREAM)
UDP_PORT=$(free_port SOCK_DGRAM)
NAME="pitwall-ctest-$$"
cleanup() { podman rm -f -v "$NAME" >/dev/null 2>&1 || true; }
: >"$OUT/podman.log"  # podman's complaints about the systemd timer of health checks go here
trap cleanup EXIT
t0=$(now_ms)
podman run -d --name "$NAME" "${RUN_OPTS[@]}" --health-interval disable \
  -p "127.0.0.1:$HTTP_PORT:8081/tcp" -p "127.0.0.1:$UDP_PORT:20777/udp" "$IMAGE" demo --insecure \
  >/dev/null 2>>"$OUT/podman.log" \
  || fail "podman run failed"
BASE="http://127.0.0.1:$HTTP_PORT"
READY_MS=""
for _ in $(seq 1 600); do
  if curl -fsS -m 2 "$BASE/ready" >/dev/null 2>&1; then READY_MS=$(( $(now_ms) - t0 )); break; fi
  [ "$(podman inspect --format '{{.State.Running}}' "$NAME")" = true ] || break
  sleep 0.1
done
[ -n "$READY_MS" ] || { podman logs "$NAME" 2>&1 | tail -30 >&2; fail "/ready never answered 200 on $BASE"; }
say "ready ${READY_MS} ms after podman run (http 127.0.0.1:$HTTP_PORT, udp 127.0.0.1:$UDP_PORT)"

# Whole bodies first: `curl | grep -q` fails under pipefail when grep stops reading early.
get() { curl -fsS -m 5 "$BASE$1"; }
case "$(get /health)" in *'"ok":true'*) ;; *) fail "/health is not ok" ;; esac
case "$(get /ready)" in *'"ready":true'*) ;; *) fail "/ready is not ready" ;; esac
python3 scripts/ws_probe.py 127.0.0.1 "$HTTP_PORT" --type telemetry_update --timeout 30 >"$OUT/ws.txt" \
  || fail "no telemetry_update on the WebSocket"
say "WebSocket: $(cut -c1-90 "$OUT/ws.txt")..."
PAGE=$(get /) || fail "the dashboard page is not served"
case "$PAGE" in *'<html'*|*'<HTML'*) ;; *) fail "/ is not the dashboard page" ;; esac
get /assets/app.js >/dev/null || fail "the dashboard's app.js is not served"
# One JSON point over UDP, counted as accepted on /metrics.
udp_accepted() { get /metrics | awk '/^pitwall_points_accepted_total\{source="udp"\}/ {print $2}'; }
before=$(udp_accepted); before=${before:-0}
python3 - "$UDP_PORT" <<'PY'
import json, socket, sys
p = {"meta_time": "2025-06-01T14:02:11.210Z", "track": "barber", "chassis": "GR86-CT-1", "lap": 2,
     "lapdist_m": 100.0, "speed_kmh": 120.0}
socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(json.dumps(p).encode(), ("127.0.0.1", int(sys.argv[1])))
PY
after=$before
for _ in $(seq 1 50); do
  after=$(udp_accepted); after=${after:-0}
  [ "${after%.*}" -gt "${before%.*}" ] && break
  sleep 0.1
done
[ "${after%.*}" -gt "${before%.*}" ] || fail "the UDP datagram was not counted (udp accepted $before -> $after)"
podman healthcheck run "$NAME" >/dev/null 2>&1 || fail "the image's HEALTHCHECK fails in the running demo"
say "health, ready, WebSocket, dashboard, UDP and HEALTHCHECK ok"

# --- stop ---------------------------------------------------------------------------------
t1=$(now_ms)
podman stop -t 20 "$NAME" >/dev/null 2>>"$OUT/podman.log"
STOP_MS=$(( $(now_ms) - t1 ))
CODE=$(podman inspect --format '{{.State.ExitCode}}' "$NAME")
[ "$CODE" = 0 ] || { podman logs "$NAME" 2>&1 | tail -20 >&2; fail "pitwall exited $CODE on SIGTERM"; }
say "stopped by SIGTERM in ${STOP_MS} ms, exit 0"

cat >"$OUT/results.json" <<EOF
{"image": "$IMAGE", "mode": "$MODE", "rust_image": "$RUST_IMAGE", "runtime_image": "$RUNTIME_IMAGE",
 "build_s": $BUILD_S, "image_bytes": $SIZE_B, "runtime_base_bytes": $BASE_B,
 "start_to_ready_ms": $READY_MS, "stop_ms": $STOP_MS, "version": "$VERSION"}
EOF
say "passed: image $((SIZE_B / 1000000)) MB, build ${BUILD_S} s, start-to-ready ${READY_MS} ms"
