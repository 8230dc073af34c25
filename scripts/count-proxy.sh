#!/usr/bin/env bash
# Instructions per proxied stream, counted by valgrind's callgrind: sluice's
# proxy and hyper alone (examples/bare_proxy.rs), each in front of the same
# zero-delay `sluice mock`, 4 connections back to back for 10 s after a 3 s
# warm-up (the counters are zeroed between). User space only, and
# deterministic to within a few instructions a stream from run to run, where
# the CPU-time rows of scripts/bench.sh move by 10 % on a shared VM: the
# measure for a change to sluice's own per-request work. Prints each total
# and sluice's functions by inclusive instructions per stream.
# Needs valgrind (apt-get install valgrind); about a minute.
#
#   scripts/count-proxy.sh                      # this tree's release build
#   scripts/count-proxy.sh path/to/other/sluice # another build, for a before/after
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { echo "valgrind is not installed (apt-get install valgrind)"; exit 1; }
cargo build --release --locked --quiet --bin sluice --example loadgen --example bare_proxy
proxy_bin=${1:-target/release/sluice}
# sluice reads these; valgrind must start the binary itself, not `env`.
unset PORT SLUICE_CONFIG ERROR_RATE SLUICE_UPSTREAM
work="$(mktemp -d)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

# wait_for FILE PATTERN: the first match of PATTERN in FILE, within 60 s.
wait_for() {
  local found=""
  for _ in $(seq 300); do
    found=$(grep -o "$2" "$1" | head -1 || true)
    [ -n "$found" ] && { echo "$found"; return 0; }
    sleep 0.2
  done
  echo "nothing matched $2 in $1" >&2
  exit 1
}

env -u PORT -u SLUICE_CONFIG target/release/sluice --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 \
  --error-rate 0 --first-token-delay 0 --token-interval 0 --tool-call-delay 0 >"$work/upstream.out" 2>/dev/null &
pids+=($!)
upstream=$(wait_for "$work/upstream.out" 'running on http://127\.0\.0\.1:[0-9]*')
upstream=${upstream#running on }

# count NAME COMMAND...: COMMAND under callgrind; prints instructions per stream.
count() {
  local name=$1; shift
  valgrind --tool=callgrind --callgrind-out-file="$work/$name.cg" "$@" >"$work/$name.out" 2>"$work/$name.err" &
  local pid=$!
  pids+=("$pid")
  local url
  url=$(wait_for "$work/$name.out" 'on http://127\.0\.0\.1:[0-9]*')
  url=${url#on }
  target/release/examples/loadgen --url "$url" --concurrency 4 --duration 3s >/dev/null 2>&1
  callgrind_control -z "$pid" >/dev/null 2>&1
  target/release/examples/loadgen --url "$url" --concurrency 4 --duration 10s --json "$work/$name.json" >/dev/null 2>&1
  callgrind_control -d "$pid" >/dev/null 2>&1
  kill "$pid"
  python3 - "$work" "$name" <<'PY'
import json, subprocess, sys
work, name = sys.argv[1], sys.argv[2]
streams = json.load(open(f"{work}/{name}.json"))["streams"]
report = subprocess.run(["callgrind_annotate", "--inclusive=yes", f"{work}/{name}.cg.1"],
                        capture_output=True, text=True).stdout.splitlines()
total = next(int(l.split()[0].replace(",", "")) for l in report if "PROGRAM TOTALS" in l)
print(f"{name}: {total / streams:,.0f} instructions per stream ({streams} streams)")
if name == "sluice":
    seen = set()
    for line in report:
        if "/src/" not in line or "sluice::" not in line or "=>" in line:
            continue
        count = int(line.split()[0].replace(",", "")) / streams
        where = line[line.index(")") + 1:].strip().split(" [")[0].split("/src/", 1)[-1]
        if count < 500 or where in seen:
            continue
        seen.add(where)
        print(f"  {count:8,.0f}  {where[:120]}")
PY
}
count sluice "$proxy_bin" --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 \
  --error-rate 0 --first-token-delay 0 --token-interval 0 --tool-call-delay 0 --upstream "$upstream"
count hyper-alone target/release/examples/bare_proxy --upstream "$upstream" --listen 127.0.0.1:0
