#!/usr/bin/env bash
# Regenerates the golden files from the independent oracle (decode.py, PyPI f1-packets).
# usage: bash regen.sh   (run from anywhere; needs python3 and install.sh having been run)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
tools=${F1_TOOLS:-$here/../../../../../shared/tools/f1-game}
data=${F1_DATA:-$here/../../../../../shared/data/f1-udp}
for fmt in 2023 2024 2025; do
  files=$(ls "$data/$fmt"/*.bin | sort)
  {
    python3 "$tools/decode.py" $files
    for car in $(seq 0 21); do python3 "$tools/decode.py" --car "$car" $files; done
  } | python3 -c '
import json, os, sys
rows = [json.loads(l) for l in sys.stdin if l.strip()]
for r in rows:
    r["file"] = os.path.basename(r["file"])
json.dump(rows, sys.stdout, indent=0, sort_keys=True)
print()
' > "$here/$fmt.json"
done
