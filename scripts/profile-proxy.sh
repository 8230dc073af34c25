#!/usr/bin/env bash
# Where the proxy's CPU per event goes, against nginx's: both in front of the
# same zero-delay `sluice mock` upstream, under examples/loadgen with 32
# connections back to back (the bench's pass-through rows), each sampled with
# `perf record` (cpu-clock, 997 Hz, 5 s mid-run), the samples grouped as
# scripts/profile.sh groups them. Prints µs per event by group and the
# hottest symbols of each. Needs perf and nginx; about 30 seconds.
#
#   scripts/profile-proxy.sh
set -euo pipefail
cd "$(dirname "$0")/.."
command -v perf >/dev/null || { echo "perf is not installed (apt-get install linux-perf)"; exit 1; }
command -v nginx >/dev/null || { echo "nginx is not installed (apt-get install nginx-light)"; exit 1; }
cargo build --release --locked --quiet --bin sluice --example loadgen
work="$(mktemp -d)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

# start NAME ARGS...: a sluice; sets $url and $pid.
start() {
  local name=$1; shift
  env -u PORT -u SLUICE_CONFIG -u ERROR_RATE -u SLUICE_UPSTREAM target/release/sluice \
    --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 --error-rate 0 \
    --first-token-delay 0 --token-interval 0 --tool-call-delay 0 "$@" >"$work/$name.out" 2>/dev/null &
  pid=$!
  pids+=("$pid")
  url=""
  for _ in $(seq 100); do
    url=$(grep -o 'running on http://127\.0\.0\.1:[0-9]*' "$work/$name.out" | grep -o 'http.*' || true)
    [ -n "$url" ] && return 0
    sleep 0.1
  done
  echo "sluice ($name) did not start"; exit 1
}
start upstream
upstream_url=$url
start proxy --upstream "$upstream_url"
proxy_url=$url proxy_pid=$pid

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$work/nginx"
cat >"$work/nginx/nginx.conf" <<CONF
worker_processes 2;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log warn;
events { worker_connections 16384; }
http {
  access_log off;
  client_body_temp_path $work/nginx/body;
  proxy_temp_path $work/nginx/proxy;
  upstream sluice_mock { server ${upstream_url#http://}; keepalive 256; }
  server {
    listen 127.0.0.1:$port;
    location / {
      proxy_pass http://sluice_mock;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
      proxy_request_buffering off;
    }
  }
}
CONF
nginx -p "$work/nginx" -c "$work/nginx/nginx.conf" -g 'daemon off;' &
pids+=("$!")
for _ in $(seq 50); do [ -s "$work/nginx/nginx.pid" ] && break; sleep 0.1; done
sleep 0.3

# run NAME URL PID...: loadgen for 10 s, perf on the PIDs from 3 s to 8 s.
run() {
  local name=$1 url=$2; shift 2
  local targets=()
  for p in "$@"; do targets+=(--pid "$p"); done
  target/release/examples/loadgen --label "$name" --json "$work/$name.json" --url "$url" "${targets[@]}" \
    --concurrency 32 --duration 10s >/dev/null 2>&1 &
  local load=$!
  sleep 3
  perf record -q -F 997 -p "$(IFS=,; echo "$*")" -o "$work/$name.perf" -- sleep 5 >/dev/null 2>&1
  wait "$load"
  perf report -i "$work/$name.perf" --no-children --sort dso,sym --stdio 2>/dev/null >"$work/$name.txt"
}
run sluice "$proxy_url" "$proxy_pid"
# shellcheck disable=SC2046
run nginx "http://127.0.0.1:$port" $(pgrep -d ' ' -f "nginx: (master|worker) process")

python3 - "$work" <<'PY'
import json, re, sys
work = sys.argv[1]
GROUPS = [
    ("kernel", lambda dso, sym: dso == "[kernel.kallsyms]"),
    ("clock", lambda dso, sym: "clock_gettime" in sym or dso == "[vdso]"),
    ("allocator", lambda dso, sym: sym.startswith(("_rjem", "do_rallocx", "malloc", "free", "realloc", "cfree", "_int_"))
        or "alloc::raw_vec" in sym),
    ("copies", lambda dso, sym: "memmove" in sym or "memcpy" in sym or "memset" in sym),
    ("hyper (server and client)", lambda dso, sym: re.search(r"\b(hyper|hyper_util|http|h2|httparse)::", sym) is not None),
    ("tokio, futures, mio", lambda dso, sym: re.search(r"\b(tokio|futures_\w+|mio)::", sym) is not None),
    ("own code (sluice; nginx)", lambda dso, sym: "sluice::" in sym or dso.startswith("nginx")),
    ("other (memchr, std, bytes, libc, ...)", lambda dso, sym: True),
]
def load(name):
    per = {g: 0.0 for g, _ in GROUPS}
    top = []
    for line in open(f"{work}/{name}.txt"):
        m = re.match(r"\s*([\d.]+)%\s+(\S+)\s+\[[.k]\]\s+(.*)$", line)
        if not m:
            continue
        share, dso, sym = float(m[1]), m[2], m[3].strip()
        for group, test in GROUPS:
            if test(dso, sym):
                per[group] += share
                break
        top.append((share, dso, sym))
    data = json.load(open(f"{work}/{name}.json"))
    us = data["target"]["cpu_percent_per_1k_events_per_s"] * 10
    total = sum(per.values()) or 1
    return {g: s / total * us for g, s in per.items()}, us, top, data["streams_per_s"]
sluice, sluice_us, sluice_top, sluice_rate = load("sluice")
nginx, nginx_us, nginx_top, nginx_rate = load("nginx")
print(f"CPU per pass-through event, in µs ({sluice_rate:.0f} streams/s through sluice, {nginx_rate:.0f} through nginx)")
print()
print("| group | sluice proxy | nginx | difference |")
print("|---|---:|---:|---:|")
for group, _ in GROUPS:
    print(f"| {group} | {sluice[group]:.2f} | {nginx[group]:.2f} | {sluice[group] - nginx[group]:+.2f} |")
print(f"| **total** | **{sluice_us:.2f}** | **{nginx_us:.2f}** | **x{sluice_us / nginx_us:.2f}** |")
for name, top in (("sluice", sluice_top), ("nginx", nginx_top)):
    print()
    print(f"{name}'s hottest symbols (share of its samples):")
    for share, dso, sym in top[:20]:
        print(f"  {share:5.2f}%  {dso}  {sym[:110]}")
PY
