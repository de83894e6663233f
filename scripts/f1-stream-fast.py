#!/usr/bin/env python3
"""Runs ../shared/tools/f1-game/stream.py faster than real time, unchanged: its clock
(time.monotonic) and its sleeps are scaled by --warp, so a race of several 90-second laps
streams in seconds with the same packets, frame by frame.

usage: f1-stream-fast.py --warp 30 PATH/TO/stream.py [stream.py's own arguments...]
"""
import os
import runpy
import sys
import time

args = sys.argv[1:]
if len(args) < 3 or args[0] != "--warp":
    raise SystemExit(__doc__)
warp = float(args[1])
if not warp > 0:
    raise SystemExit("--warp must be > 0")
script = args[2]
real_monotonic, real_sleep = time.monotonic, time.sleep
start = real_monotonic()
time.monotonic = lambda: start + (real_monotonic() - start) * warp
time.sleep = lambda s: real_sleep(max(0.0, s) / warp)
sys.argv = [script] + args[3:]
sys.path.insert(0, os.path.dirname(os.path.abspath(script)))
runpy.run_path(script, run_name="__main__")
