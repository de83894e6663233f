#!/usr/bin/env bash
# Back-tests the strategy model on simulated races: for each track and seed, simulate a 20-car
# race, then predict every car's finishing position from lap N and compare with the result,
# beside the baseline "positions at lap N hold". Prints a markdown table.
# Usage: scripts/backtest-sim.sh [laps] [at-laps...]   (PITWALL_BIN to use a built binary)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${PITWALL_BIN:-target/release/pitwall}
[ -x "$BIN" ] || cargo build --release -p pitwall --locked
LAPS=${1:-24}
shift || true
AT=${*:-8 12 16 20}
DIR=$(mktemp -d)
trap 'rm -rf "$DIR"' EXIT
echo "| track | seed | at lap | cars | model MAE (positions) | baseline MAE | model 80% coverage |"
echo "|---|---|---|---|---|---|---|"
for track in Austin Spa Suzuka Monza Budapest; do
  for seed in 1 2; do
    id=$("$BIN" sim --track "$track" --cars 20 --laps "$LAPS" --seed "$seed" --hz 20 --data-dir "$DIR" 2>/dev/null)
    for at in $AT; do
      "$BIN" strategy --backtest --session "$id" --lap "$at" --iterations 4000 --seed 7 --json --data-dir "$DIR" 2>/dev/null |
        python3 -c "
import json,sys
r=json.load(sys.stdin)
print(f\"| $track | $seed | {r['at_lap']} | {r['cars']} | {r['mae_positions']:.2f} | {r['baseline_mae_positions']:.2f} | {100*r['coverage80']:.0f}% |\")"
    done
  done
done
