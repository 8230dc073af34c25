#!/usr/bin/env python3
"""Memory held by streams whose clients leave (docs/reliability.md): opens
2,000 streams against a sluice whose first token is far away, hangs up on
them after 1.5 s, and prints sluice's RSS and open streams after each round.
Flat RSS means a client that leaves releases its stream at once.

  sluice mock --listen 127.0.0.1:4900 --admin-listen 127.0.0.1:4901 \\
      --error-rate 0 --first-token-delay 40s &
  scripts/abandoned-streams.py $! 5

sluice returns freed pages about 10 s after they are freed (jemalloc's
background thread; docs/reliability.md). To see what is really held at once,
rather than what jemalloc keeps for those seconds, run sluice with
_RJEM_MALLOC_CONF=dirty_decay_ms:0.
"""
import json
import socket
import sys
import time

API, ADMIN = ("127.0.0.1", 4900), ("127.0.0.1", 4901)
pid, rounds = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 5
body = json.dumps({"model": "m", "max_tokens": 64, "stream": True,
                   "messages": [{"role": "user", "content": "hi"}]}).encode()
request = (b"POST /v1/messages HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
           b"content-length: %d\r\n\r\n%s" % (len(body), body))


def rss_kib():
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS"))


def metric(name):
    with socket.create_connection(ADMIN) as admin:
        admin.sendall(b"GET /metrics HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        data = b""
        while chunk := admin.recv(65536):
            data += chunk
    return next((l.split()[1] for l in data.decode().splitlines() if l.startswith(name + " ")), "0")


print("start: RSS", rss_kib(), "KiB")
for number in range(1, rounds + 1):
    clients = []
    for _ in range(2000):
        client = socket.create_connection(API)
        client.sendall(request)
        clients.append(client)
    time.sleep(1.5)
    held = metric("sluice_open_streams")
    for client in clients:
        client.close()
    time.sleep(1.5)
    print(f"round {number}: open while held {held}, after leaving "
          f"{metric('sluice_open_streams')}, RSS {rss_kib()} KiB")
