#!/usr/bin/env bash
# Side-by-side with the reference Monte Carlo model (TUMFTM race-simulation) on the 2019 US Grand
# Prix: builds a scenario with every car's exact TUMFTM plan from ../shared (never copied into the
# repo), runs `pitwall strategy --scenario ... --all-cars --json` and prints per driver our mean
# finishing position, TUMFTM's and the difference, with mean/max |diff|, Spearman, mean total
# variation distance and races/s per core.
# Usage: scripts/reference-race.sh
# Env:   PITWALL_SHARED  the shared directory (default ../shared; exits 0 when absent)
#        PITWALL_BIN     the binary (default target/release/pitwall, built when missing)
#        ITERATIONS      races (default 20000), SEED (default 7)
#        TUMFTM_MCS_INI  optional: TUMFTM's racesim/input/parameters/pars_mcs.ini for per-team
#                        standstill, per-driver start spread, accident/failure split, VSC lengths
#        KEEP_SCENARIO   optional: also write the generated scenario to this path
set -euo pipefail
cd "$(dirname "$0")/.."
export PITWALL_SHARED=${PITWALL_SHARED:-../shared}
if [ ! -d "$PITWALL_SHARED/data/strategy-reference" ]; then
  echo "no reference race under $PITWALL_SHARED/data/strategy-reference (set PITWALL_SHARED): skipped"
  exit 0
fi
export PITWALL_BIN=${PITWALL_BIN:-target/release/pitwall}
[ -x "$PITWALL_BIN" ] || cargo build --release -p pitwall --locked
exec python3 scripts/reference_race.py
