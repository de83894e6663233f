#!/usr/bin/env bash
# Imports the Race 1 files of every GR Cup event found in the given git mirrors
# (e.g. /work/.mirror/edimaudo+grcup-analytics/repo) and prints, per event: files, rows
# read, cars, laps, rejections by reason, and whether each car's timing laps equal the
# results' LAPS. Prints the session ids it created ("session <event> <id>").
#
# Only paths containing "/Race 1/" are read (the pattern cannot match Race 2), and never a
# telemetry sample file. Mirrors that are absent are reported and skipped; exit 0.
#
# usage: scripts/real-races-import.sh [--data-dir DIR] [--bin PITWALL] MIRROR_GIT_DIR...
set -euo pipefail
DATA_DIR=""
BIN="${PITWALL_BIN:-}"
MIRRORS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --data-dir) DATA_DIR="$2"; shift 2 ;;
    --bin) BIN="$2"; shift 2 ;;
    *) MIRRORS+=("$1"); shift ;;
  esac
done
if [ -z "$BIN" ]; then
  ROOT="$(cd "$(dirname "$0")/.." && pwd)"
  cargo build -q -p pitwall --manifest-path "$ROOT/Cargo.toml"
  BIN="$ROOT/target/debug/pitwall"
fi
[ -n "$DATA_DIR" ] || DATA_DIR="$(mktemp -d)"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
track_of() {
  case "$(echo "$1" | tr 'A-Z ' 'a-z-')" in
    cota) echo cota ;; road-america) echo road-america ;; sebring) echo sebring ;;
    sonoma) echo sonoma ;; vir) echo vir ;; barber) echo barber ;; indianapolis) echo indianapolis ;;
    *) echo "$1" ;;
  esac
}
found=0
for m in "${MIRRORS[@]}"; do
  if ! git --git-dir "$m" rev-parse -q --verify HEAD >/dev/null 2>&1; then
    echo "mirror $m: absent, skipped"
    continue
  fi
  found=1
  # Race 1 paths only; telemetry samples never.
  git --git-dir "$m" ls-tree -r --name-only HEAD \
    | grep -E '/Race 1/[^/]+\.(csv|CSV)$' | grep -vi telemetry > "$TMP/paths" || true
  events=$(sed -E 's#^(.*)/Race 1/[^/]+$#\1#' "$TMP/paths" | sort -u)
  [ -n "$events" ] || { echo "mirror $m: no Race 1 files"; continue; }
  while IFS= read -r evdir; do
    ev="$(basename "$evdir")"
    dir="$TMP/$(echo "$m$evdir" | tr '/ ' '__')"
    mkdir -p "$dir"
    grep -F "$evdir/Race 1/" "$TMP/paths" | while IFS= read -r p; do
      git --git-dir "$m" show "HEAD:$p" > "$dir/$(basename "$p")"
    done
    echo "== $ev ($(basename "$(dirname "$m")")): $(ls "$dir" | wc -l) files"
    if out=$("$BIN" import "$dir"/* --track "$(track_of "$ev")" --data-dir "$DATA_DIR" --quiet 2>"$TMP/err"); then
      sed -n '/^import report/,$p' "$TMP/err"
      echo "session $ev $out"
    else
      echo "import FAILED:"; tail -5 "$TMP/err"
    fi
  done <<< "$events"
done
[ "$found" = 1 ] || echo "no mirror present: nothing imported"
echo "data dir: $DATA_DIR"
