#!/usr/bin/env bash
# End-to-end throughput through Redis Streams: a redis-server of its own, `pitwall serve --bus
# redis://... --workers`, N analysis workers, one strategy and one store worker (SQLite), all on
# this machine; `pitwall bench ingest` posts as fast as the server answers for --duration
# seconds with WebSocket clients measuring ingest-to-WebSocket latency; then the script waits
# for the store worker to have written every accepted point and reports points/s end to end
# (accepted points / time until the last one is stored) and what each worker processed.
#
# usage: scripts/bench-scale.sh [--analysis N] [--duration S] [--senders K] [--cars C] [--rate PPS]
#        (--rate 0, the default: as fast as the server answers)
# env:   PITWALL_BIN (default target/release/pitwall, built if missing)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
N=2; DUR=20; SENDERS=4; CARS=10; RATE=0
while [ $# -gt 0 ]; do
  case "$1" in
    --analysis) N="$2"; shift 2 ;;
    --duration) DUR="$2"; shift 2 ;;
    --senders) SENDERS="$2"; shift 2 ;;
    --cars) CARS="$2"; shift 2 ;;
    --rate) RATE="$2"; shift 2 ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
BIN="${PITWALL_BIN:-$ROOT/target/release/pitwall}"
[ -x "$BIN" ] || cargo build -q --release -p pitwall --manifest-path "$ROOT/Cargo.toml"
command -v redis-server >/dev/null || { echo "needs redis-server (apt-get install redis-server)" >&2; exit 2; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
DIR="$(mktemp -d)"; PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$DIR"; }
trap cleanup EXIT
RP=$(free_port); HP=$(free_port); UP=$(free_port)
redis-server --port "$RP" --bind 127.0.0.1 --save "" --appendonly no >/dev/null 2>&1 & PIDS+=($!)
for _ in $(seq 50); do redis-cli -p "$RP" ping >/dev/null 2>&1 && break; sleep 0.1; done
BUS="redis://127.0.0.1:$RP"
export PITWALL_LOG=warn
"$BIN" worker --role store --bus "$BUS" --id store-1 --data-dir "$DIR/store" >"$DIR/store.log" 2>&1 & PIDS+=($!)
"$BIN" worker --role strategy --bus "$BUS" --id strategy-1 >"$DIR/strategy.log" 2>&1 & PIDS+=($!)
for i in $(seq "$N"); do
  "$BIN" worker --role analysis --bus "$BUS" --id "analysis-$i" >"$DIR/analysis-$i.log" 2>&1 & PIDS+=($!)
done
"$BIN" serve --bus "$BUS" --workers --http "127.0.0.1:$HP" --udp "127.0.0.1:$UP" \
  --data-dir "$DIR/store" --rate-limit-rest-per-min 0 --rate-limit-points-per-s 0 \
  >"$DIR/serve.log" 2>&1 & PIDS+=($!)
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$HP/health" >/dev/null && break; sleep 0.1; done
sleep 2
T0=$(date +%s.%N)
"$BIN" bench ingest --target "http://127.0.0.1:$HP" --duration "$DUR" --senders "$SENDERS" --rate "$RATE" \
  --cars "$CARS" --ws-clients 2 --ws-measuring 2 --json > "$DIR/ingest.json"
T1=$(date +%s.%N)
ACCEPTED=$(python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); print(int(j.get("accepted") or j.get("points_accepted") or 0))' "$DIR/ingest.json")
# Wait until the store worker has written everything that reached Redis (the count stops
# growing for 3 s; a full ring refuses HTTP bodies with 503: the sender counts them as not accepted).
stored() { curl -sf "http://127.0.0.1:$HP/api/sessions" | python3 -c 'import json,sys; print(sum(c["samples"] for s in json.load(sys.stdin) for c in s["cars"]))' 2>/dev/null || echo 0; }
S=0; LAST=-1; T2=$(date +%s.%N); SAME=0
while [ "$SAME" -lt 15 ]; do
  S=$(stored)
  if [ "$S" -ne "$LAST" ]; then LAST=$S; SAME=0; T2=$(date +%s.%N); else SAME=$((SAME+1)); fi
  sleep 0.2
done
echo "analysis workers: $N, duration ${DUR}s, senders $SENDERS x $CARS cars"
python3 - "$DIR/ingest.json" "$ACCEPTED" "$S" "$T0" "$T1" "$T2" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
acc, stored, t0, t1, t2 = int(sys.argv[2]), int(sys.argv[3]), *map(float, sys.argv[4:7])
print(f"accepted {acc} points in {t1 - t0:.1f} s: {acc / (t1 - t0):,.0f} points/s at ingest")
print(f"stored {stored} points, the last {t2 - t1:.1f} s after the senders stopped: "
      f"{stored / (t2 - t0):,.0f} points/s end to end ({acc - stored} accepted and not stored)")
for k, name in [("latency_ms", "ingest to WebSocket (points)"),
                ("insight_latency_ms", "lap's closing point to insight"),
                ("pit_window_latency_ms", "lap's closing point to pit window")]:
    v = j.get(k) or {}
    print(f"{name:<36} p50 {v.get('p50')} ms  p95 {v.get('p95')} ms  p99 {v.get('p99')} ms"
          f"  max {v.get('max')} ms  (n = {v.get('samples')})")
PY
"$BIN" agents --bus "$BUS" || true
curl -sf "http://127.0.0.1:$HP/metrics" | grep -E "^pitwall_(redis_bus_(published|trimmed|pending_lost|backpressure_waits|errors|reconnects)_total|ring_(dropped|refused)|points_(accepted|dropped)|ingest_rejected)" || true
