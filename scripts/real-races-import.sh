#!/usr/bin/env bash
# Imports the Race 1 files of every GR Cup event found in the given git mirrors
# (e.g. /work/.mirror/edimaudo+grcup-analytics/repo) and prints, per event: files, rows
# read, cars, laps, rejections by reason, and whether each car's timing laps equal the
# results' LAPS. Prints the session ids it created ("session <event> <id>").
#
# An event's files are gathered from every mirror given (one mirror may hold an official
# results file another lacks); a file of the same name and content is taken once (a provisional
# and an official results file with the same rows are both kept: the name says which is which).
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
  cargo build -q --release -p pitwall --manifest-path "$ROOT/Cargo.toml"
  BIN="$ROOT/target/release/pitwall"
fi
[ -n "$DATA_DIR" ] || DATA_DIR="$(mktemp -d)"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
# The event a "Race 1" folder belongs to, from the folder above it.
event_of() {
  case "$(echo "$1" | tr 'A-Z _' 'a-z--')" in
    cota|circuit-of-the-americas) echo cota ;;
    road-america) echo road-america ;;
    sebring) echo sebring ;;
    sonoma) echo sonoma ;;
    vir|virginia-international-raceway) echo vir ;;
    barber) echo barber ;;
    indianapolis|indy) echo indianapolis ;;
    *) echo "$1" | tr 'A-Z ' 'a-z-' ;;
  esac
}
found=0
mkdir -p "$TMP/events"
for m in "${MIRRORS[@]}"; do
  if ! git --git-dir "$m" rev-parse -q --verify HEAD >/dev/null 2>&1; then
    echo "mirror $m: absent, skipped"
    continue
  fi
  found=1
  # Race 1 paths only; telemetry samples never.
  git --git-dir "$m" ls-tree -r --name-only HEAD \
    | grep -E '/Race 1/[^/]+\.(csv|CSV)$' | grep -vi telemetry > "$TMP/paths" || true
  [ -s "$TMP/paths" ] || { echo "mirror $m: no Race 1 files"; continue; }
  while IFS= read -r p; do
    ev="$(event_of "$(basename "$(dirname "$(dirname "$p")")")")"
    dir="$TMP/events/$ev"
    mkdir -p "$dir"
    f="$dir/$(basename "$p")"
    git --git-dir "$m" show "HEAD:$p" > "$TMP/file"
    sum=$(sha256sum < "$TMP/file" | cut -c1-16)
    key="$sum $(basename "$p")"
    if grep -qxF "$key" "$dir/.sums" 2>/dev/null; then
      continue
    fi
    echo "$key" >> "$dir/.sums"
    [ -e "$f" ] && f="$dir/${sum}_$(basename "$p")"
    mv "$TMP/file" "$f"
  done < "$TMP/paths"
done
if [ "$found" = 0 ]; then
  echo "no mirror present: nothing imported"
  exit 0
fi
for dir in "$TMP"/events/*/; do
  ev="$(basename "$dir")"
  echo "== $ev: $(ls "$dir" | wc -l) files"
  if out=$("$BIN" import "$dir"* --track "$ev" --session "R1-$ev" --data-dir "$DATA_DIR" --quiet 2>"$TMP/err"); then
    sed -n '/^import report/,$p' "$TMP/err"
    echo "session $ev $out"
  else
    echo "import FAILED:"; tail -5 "$TMP/err"
  fi
done
echo "data dir: $DATA_DIR"
