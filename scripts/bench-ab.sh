#!/usr/bin/env bash
# Two builds of sluice, interleaved on the same machine: CPU per event of the
# mock at 1,000 paced streams, and of the proxy passing a zero-delay upstream
# through at 32 connections (both from examples/loadgen). For a change on the
# hot path, the figure its closing note reports. Writes bench/ab-*.json and
# prints one line per run; about 2 minutes with the defaults.
#
#   scripts/bench-ab.sh OLD_BINARY NEW_BINARY [ROUNDS]
#   BENCH_DURATION=15s scripts/bench-ab.sh /work/old/target/release/sluice target/release/sluice 3
#
# Each binary is started the same way and told its ports through the banner
# (old builds have no --ready-file).
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 2 ] || { sed -n 2,12p "$0"; exit 2; }
old=$1 new=$2 rounds=${3:-2}
duration="${BENCH_DURATION:-10s}"
cargo build --release --locked --quiet --example loadgen
loadgen=target/release/examples/loadgen
out=bench
mkdir -p "$out"
work="$(mktemp -d)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

# start NAME BINARY ARGS...: sets $url, $admin and $pid.
start() {
  local name=$1 binary=$2; shift 2
  env -u PORT -u SLUICE_CONFIG -u ERROR_RATE -u SLUICE_UPSTREAM -u SLUICE_READY_FILE \
    "$binary" --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 --error-rate 0 "$@" \
    >"$work/$name.out" 2>"$work/$name.err" &
  pid=$!
  pids+=("$pid")
  for _ in $(seq 100); do
    url="$(grep -o 'running on http://127\.0\.0\.1:[0-9]*' "$work/$name.out" | grep -o 'http.*' || true)"
    admin="$(grep -o 'Admin: http://127\.0\.0\.1:[0-9]*' "$work/$name.out" | grep -o 'http.*' || true)"
    [ -n "$url" ] && [ -n "$admin" ] && return 0
    sleep 0.1
  done
  cat "$work/$name.err"; echo "sluice ($name) did not start"; exit 1
}
stop() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }
# report LABEL: one line from the run's JSON.
report() {
  python3 - "$out/$1.json" "$1" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
t = r["target"]
first = r["error_ms"]["first_token"].get("p99") if r["error_ms"]["first_token"] else None
print(f"{sys.argv[2]:<28} {t['cpu_percent_per_1k_events_per_s']:.3f} % of a core per 1k events/s, "
      f"{r['events_per_s']:.0f} events/s, peak RSS {t['peak_rss_kib'] / 1024:.1f} MiB, "
      f"first-token error p99 {first} ms{' (SATURATED)' if r['machine_saturated'] else ''}")
PY
}

for round in $(seq "$rounds"); do
  for side in old new; do
    binary=$old
    [ "$side" = new ] && binary=$new
    start "mock-$side" "$binary" mock
    label="ab-mock-paced-1000-$side-$round"
    "$loadgen" --label "$label" --json "$out/$label.json" --duration "$duration" --url "$url" --pid "$pid" \
      --metrics "$admin" --concurrency 1000 --ramp 2s --expect-first-token 100ms --expect-gap 20ms >/dev/null 2>&1
    report "$label"
    stop "$pid"
    start "upstream-$side" "$binary" mock --first-token-delay 0 --token-interval 0 --tool-call-delay 0
    upstream_url=$url upstream_pid=$pid
    start "proxy-$side" "$binary" proxy --upstream "$upstream_url" --first-token-delay 0 --token-interval 0 \
      --tool-call-delay 0
    label="ab-pass-through-$side-$round"
    "$loadgen" --label "$label" --json "$out/$label.json" --duration "$duration" --url "$url" --pid "$pid" \
      --concurrency 32 >/dev/null 2>&1
    report "$label"
    stop "$pid"
    stop "$upstream_pid"
  done
done
