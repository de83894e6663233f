#!/usr/bin/env bash
# The real-race evaluation: imports Race 1 of every GR Cup event found in the given git mirrors
# of the public 2025 season files, and prints
#   1. the import counts per event (rows, cars, laps, rejections by reason, laps = results),
#   2. the strategy back-test against the official classification at 1/4, 1/2 and 3/4 distance
#      (model, "positions hold", "order by pace", 80 % coverage), per race and pooled, with the
#      shipped GR Cup calibration (data/strategy/gr-cup.toml),
#   3. the same with each race held out of its own calibration (leave one race out),
#   4. the lap-time prediction table (next lap, next 5 laps) against "repeat the last lap" and
#      "a line through the stint so far", when `pitwall eval --laps` is available.
#
# Only "Race 1" files are read, never a telemetry sample (see real-races-import.sh). Nothing is
# written into the repository unless --write-calibration is given (then data/strategy/gr-cup.toml
# is re-fitted from these races). Without mirrors it says so and exits 0.
#
# usage: scripts/real-races.sh [--write-calibration] [--report FILE.html] MIRROR_GIT_DIR...
#   e.g. scripts/real-races.sh /work/.mirror/edimaudo+grcup-analytics/repo \
#                              /work/.mirror/rish2jain+ToyotaGR/repo
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
WRITE=0
REPORT=""
MIRRORS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --write-calibration) WRITE=1; shift ;;
    --report) REPORT="$2"; shift 2 ;;
    -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
    *) MIRRORS+=("$1"); shift ;;
  esac
done
present=()
for m in "${MIRRORS[@]}"; do
  if git --git-dir "$m" rev-parse -q --verify HEAD >/dev/null 2>&1; then
    present+=("$m")
  else
    echo "mirror $m: absent"
  fi
done
if [ ${#present[@]} -eq 0 ]; then
  echo "no GR Cup mirror present: nothing to evaluate (fetch github:edimaudo/grcup-analytics and"
  echo "github:rish2jain/ToyotaGR, then pass their git directories)"
  exit 0
fi
BIN="${PITWALL_BIN:-}"
if [ -z "$BIN" ]; then
  cargo build -q --release -p pitwall --manifest-path "$ROOT/Cargo.toml"
  BIN="$ROOT/target/release/pitwall"
fi
DATA="$(mktemp -d)"
trap 'rm -rf "$DATA"' EXIT

echo "### 1. Import (Race 1 of every event)"
bash "$ROOT/scripts/real-races-import.sh" --bin "$BIN" --data-dir "$DATA/store" "${present[@]}" \
  | tee "$DATA/import.log"
sessions=$(awk '/^session /{print $3}' "$DATA/import.log" | paste -sd, -)
if [ -z "$sessions" ]; then
  echo "no race imported"
  exit 1
fi
echo
echo "sessions: $sessions"

CAL="$ROOT/data/strategy/gr-cup.toml"
if [ "$WRITE" = 1 ]; then
  echo
  echo "### Calibration on these races -> $CAL"
  "$BIN" strategy --calibrate --sessions "$sessions" --out "$DATA/gr-cup.toml" --data-dir "$DATA/store"
  cp "$DATA/gr-cup.toml" "$CAL"
fi

echo
echo "### 2. Strategy back-test against the official classification (calibration: data/strategy/gr-cup.toml)"
args=(strategy --backtest --sessions "$sessions" --at 0.25,0.5,0.75 --iterations 4000
      --params "$CAL" --data-dir "$DATA/store")
[ -n "$REPORT" ] && args+=(--report "$REPORT")
"$BIN" "${args[@]}"

echo
echo "### 3. Leave one race out (each race back-tested with a calibration of the others)"
"$BIN" strategy --calibrate --leave-one-out --sessions "$sessions" --out "$DATA/loo.toml" \
  --data-dir "$DATA/store" | sed -n '/^Leave one race out/,$p'

if "$BIN" eval --help 2>/dev/null | grep -q -- '--laps'; then
  echo
  echo "### 4. Lap-time prediction on green laps (timing-only predictor)"
  "$BIN" eval --laps --sessions "$sessions" --data-dir "$DATA/store"
fi
