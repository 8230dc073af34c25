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
# shellcheck source=scripts/nginx-anchor.sh
. scripts/nginx-anchor.sh
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

nginx_anchor "$work/nginx" "$upstream_url"
pids+=("$nginx_master")

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
run nginx "http://127.0.0.1:$nginx_port" $(pgrep -d ' ' -f "nginx: (master|worker) process")

python3 - "$work" <<'PY'
import sys
sys.dont_write_bytecode = True
sys.path.insert(0, "scripts")
from perfgroups import groups, load
work = sys.argv[1]
GROUPS = groups("own code (sluice; nginx)", lambda dso: dso.startswith("nginx"))
sluice, sluice_us, sluice_top, _, sluice_data = load(f"{work}/sluice.txt", f"{work}/sluice.json", GROUPS)
nginx, nginx_us, nginx_top, _, nginx_data = load(f"{work}/nginx.txt", f"{work}/nginx.json", GROUPS)
sluice_rate, nginx_rate = sluice_data["streams_per_s"], nginx_data["streams_per_s"]
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
