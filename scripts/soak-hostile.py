#!/usr/bin/env python3
"""The hostile mix `scripts/soak.sh` runs beside its paced streams when
SOAK_HOSTILE=1 (docs/reliability.md, "Summary and the soak"): each kind of load a hardening
review found to cost memory or block live control, at once, for the whole
run. It prints what it did and what failed; the soak's own figures (RSS,
the paced streams' first-token error, unexplained failures) say what it cost.

- large bodies: 4 requests of 31 MiB of numbers at once, every 10 s;
- structured output: 50 streams open at all times, each a 250,000-character
  string that streams for the rest of the run;
- HTTP/2 clients that grant a 2^31 window, open 200 streams and never read:
  2 connections, re-opened every 30 s;
- admin polling: 8 pollers of GET /rate-limits and GET /metrics;
- live control over a replay library: PUT /faults and DELETE /faults
  alternately every 5 s (the library is in the config: `[replay]`);
- a canary: a stream every half second on the fault-free route `canary`
  (header `x-canary: 1`, first token due at 100 ms), whose first-token error
  (how much later than 100 ms its first token came) it reports.

Usage: soak-hostile.py URL ADMIN_URL SECONDS [WORKERS]

WORKERS (say `large_bodies,canary`) runs only those, to measure one kind of
load in isolation; HOSTILE_BODY_PAUSE (seconds, default 10) is the pause
between rounds of large bodies (0: back to back).
"""

import json
import os
import socket
import sys
import threading
import time
import urllib.request
from urllib.parse import urlparse

URL, ADMIN, SECONDS = sys.argv[1], sys.argv[2], float(sys.argv[3])
ONLY = sys.argv[4].split(",") if len(sys.argv) > 4 else None
BODY_PAUSE = float(os.environ.get("HOSTILE_BODY_PAUSE", "10"))
STOP = time.monotonic() + SECONDS
ADDR = (urlparse(URL).hostname, urlparse(URL).port)
COUNTS = {}
LOCK = threading.Lock()


def count(what: str) -> None:
    with LOCK:
        COUNTS[what] = COUNTS.get(what, 0) + 1


def running() -> bool:
    return time.monotonic() < STOP


def post(path: str, body: bytes, read_all: bool = True) -> socket.socket:
    """A raw HTTP/1.1 POST; reads the whole answer unless asked not to."""
    sock = socket.create_connection(ADDR, timeout=30)
    head = (
        f"POST {path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    ).encode()
    sock.sendall(head + body)
    if read_all:
        while sock.recv(65536):
            pass
        sock.close()
    return sock


def large_bodies() -> None:
    body = ('{"model":"m","max_tokens":8,"messages":[{"role":"user","content":"hi"}],"x":['
            + "0," * 15_999_999 + "0]}").encode()
    while running():
        threads = [threading.Thread(target=lambda: post("/v1/messages", body)) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        count("large bodies sent")
        time.sleep(BODY_PAUSE)


def structured_output() -> None:
    body = json.dumps({
        "model": "m", "max_tokens": 100000, "stream": True,
        "messages": [{"role": "user", "content": "hi"}],
        "output_config": {"format": {"type": "json_schema", "schema": {
            "type": "object", "properties": {"a": {"type": "string", "minLength": 250000}},
            "required": ["a"], "additionalProperties": False}}},
    }).encode()
    open_streams = []
    while running():
        open_streams = [s for s in open_streams if s.fileno() != -1]
        while len(open_streams) < 50:
            sock = post("/v1/messages", body, read_all=False)
            sock.setblocking(False)
            open_streams.append(sock)
            count("structured-output streams opened")
        for sock in list(open_streams):
            try:
                if sock.recv(1 << 20) == b"":
                    sock.close()
            except BlockingIOError:
                pass
            except OSError:
                sock.close()
        time.sleep(0.5)
    for sock in open_streams:
        sock.close()


def non_reading_h2() -> None:
    import h2.config
    import h2.connection
    import h2.settings

    body = json.dumps({"model": "m", "max_tokens": 100000, "stream": True,
                       "messages": [{"role": "user", "content": "hi"}]}).encode()
    while running():
        socks = []
        for _ in range(2):
            sock = socket.create_connection(ADDR, timeout=30)
            conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
            conn.initiate_connection()
            conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 2**31 - 1})
            conn.increment_flow_control_window(2**31 - 1 - 65535)
            for _ in range(200):
                stream = conn.get_next_available_stream_id()
                conn.send_headers(stream, [(":method", "POST"), (":path", "/v1/messages"),
                                           (":scheme", "http"), (":authority", "x"),
                                           ("content-type", "application/json")])
                conn.send_data(stream, body, end_stream=True)
            sock.sendall(conn.data_to_send())
            socks.append(sock)  # never read
            count("non-reading HTTP/2 connections")
        deadline = time.monotonic() + 30
        while running() and time.monotonic() < deadline:
            time.sleep(1)
        for sock in socks:
            sock.close()


def admin_poller() -> None:
    while running():
        for path in ("/rate-limits", "/metrics"):
            try:
                with urllib.request.urlopen(ADMIN + path, timeout=10) as answer:
                    answer.read()
                count(f"admin GET {path}")
            except OSError:
                count(f"admin GET {path} failed")
        time.sleep(0.05)


def live_control() -> None:
    on = True
    while running():
        if on:
            request = urllib.request.Request(ADMIN + "/faults", method="PUT",
                                             data=b'{"error_rate": 0.1}')
        else:
            request = urllib.request.Request(ADMIN + "/faults", method="DELETE")
        started = time.monotonic()
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                answer.read()
            took = time.monotonic() - started
            count("live control calls")
            with LOCK:
                COUNTS["live control slowest (ms)"] = max(COUNTS.get("live control slowest (ms)", 0),
                                                          round(took * 1000))
        except OSError:
            count("live control failed")
        on = not on
        time.sleep(5)


CANARY = []


def canary() -> None:
    body = json.dumps({"model": "m", "max_tokens": 64, "stream": True,
                       "messages": [{"role": "user", "content": "canary"}]}).encode()
    head = (f"POST /v1/messages HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
            f"x-canary: 1\r\ncontent-length: {len(body)}\r\nconnection: close\r\n\r\n").encode()
    while running():
        try:
            sock = socket.create_connection(ADDR, timeout=30)
            sent = time.monotonic()
            sock.sendall(head + body)
            seen = b""
            while b"content_block_delta" not in seen:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                seen += chunk
            if b"content_block_delta" in seen:
                CANARY.append((time.monotonic() - sent) * 1000 - 100)
            else:
                count("canary without a token")
            sock.close()
        except OSError:
            count("canary failed")
        time.sleep(0.5)


def main() -> None:
    workers = [large_bodies, structured_output, non_reading_h2, live_control, canary]
    workers += [admin_poller] * 8
    if ONLY:
        workers = [work for work in workers if work.__name__ in ONLY]
    threads = [threading.Thread(target=work, daemon=True) for work in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=max(0.0, STOP - time.monotonic()) + 60)
    print("hostile mix:", json.dumps(COUNTS, sort_keys=True))
    if CANARY:
        errors = sorted(CANARY)
        at = lambda q: errors[min(len(errors) - 1, int(q * len(errors)))]  # noqa: E731
        print(f"canary first-token error (ms), {len(errors)} streams: p50 {at(0.5):.1f}, "
              f"p99 {at(0.99):.1f}, max {errors[-1]:.1f}")


if __name__ == "__main__":
    main()
