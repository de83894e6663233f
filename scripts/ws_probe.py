#!/usr/bin/env python3
"""Waits for one WebSocket message of a given type from a PitWall server, with the standard
library only (no client package): connects to ws://HOST:PORT/ws/realtime, sends a subscribe
frame, reads text frames until one is JSON with "type" == TYPE, prints it (shortened), exits 0.
Exits 1 on a handshake failure, a close, or no such message within the timeout.

Usage: ws_probe.py HOST PORT [--type telemetry_update] [--timeout 30]
"""
import argparse
import base64
import json
import os
import socket
import struct
import sys
import time


def send_text(sock, text):
    """A masked text frame (clients must mask)."""
    payload = text.encode()
    mask = os.urandom(4)
    head = bytes([0x81])
    n = len(payload)
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 65536:
        head += bytes([0x80 | 126]) + struct.pack("!H", n)
    else:
        head += bytes([0x80 | 127]) + struct.pack("!Q", n)
    sock.sendall(head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))


def read_exact(f, n):
    data = f.read(n)
    if data is None or len(data) < n:
        raise ConnectionError("connection closed")
    return data


def read_frame(f):
    """(opcode, payload) of one frame; server frames are unmasked; fragments joined."""
    message, opcode = b"", None
    while True:
        b0, b1 = read_exact(f, 2)
        op = b0 & 0x0F
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack("!H", read_exact(f, 2))[0]
        elif n == 127:
            n = struct.unpack("!Q", read_exact(f, 8))[0]
        mask = read_exact(f, 4) if b1 & 0x80 else None
        data = read_exact(f, n)
        if mask:
            data = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
        if op >= 0x8:  # control frames come whole, between fragments
            return op, data
        opcode = op if opcode is None else opcode
        message += data
        if b0 & 0x80:
            return opcode, message


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("host")
    ap.add_argument("port", type=int)
    ap.add_argument("--type", default="telemetry_update")
    ap.add_argument("--timeout", type=float, default=30.0)
    a = ap.parse_args()
    deadline = time.monotonic() + a.timeout
    sock = socket.create_connection((a.host, a.port), timeout=a.timeout)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            f"GET /ws/realtime HTTP/1.1\r\nHost: {a.host}:{a.port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    f = sock.makefile("rb")
    status = f.readline().decode(errors="replace").strip()
    if " 101 " not in status + " ":
        print(f"ws_probe: handshake refused: {status!r}", file=sys.stderr)
        return 1
    while f.readline() not in (b"\r\n", b"\n", b""):
        pass
    send_text(sock, json.dumps({"type": "subscribe"}))
    seen = []
    while time.monotonic() < deadline:
        sock.settimeout(max(0.1, deadline - time.monotonic()))
        try:
            op, data = read_frame(f)
        except (socket.timeout, ConnectionError) as e:
            print(f"ws_probe: {e}; types seen: {seen}", file=sys.stderr)
            return 1
        if op == 0x8:
            print(f"ws_probe: server closed; types seen: {seen}", file=sys.stderr)
            return 1
        if op != 0x1:
            continue
        try:
            msg = json.loads(data)
        except ValueError:
            continue
        kind = msg.get("type") if isinstance(msg, dict) else None
        seen.append(kind)
        if kind == a.type:
            print(data.decode()[:200])
            return 0
    print(f"ws_probe: no {a.type} within {a.timeout} s; types seen: {seen}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
