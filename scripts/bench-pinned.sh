#!/usr/bin/env bash
# sluice and the floor pacer (examples/floor.rs) at 2,000 paced streams with
# the target pinned to core 0 and the load generator to core 1 (taskset), and
# sluice unpinned between the two pinned rounds; writes bench/pinned-*.json
# and prints one line per run. Issue 18's pinned figures; about 1.5 minutes.
#
#   scripts/bench-pinned.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked --quiet --bin sluice --example loadgen --example floor
loadgen=target/release/examples/loadgen
out=bench
mkdir -p "$out"
work="$(mktemp -d)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
paced=(--concurrency 2000 --ramp 2s --duration 10s --expect-first-token 100ms --expect-gap 20ms)

# round LABEL PINNED: sluice (and, pinned, the floor) against loadgen.
round() {
  local label=$1 pinned=$2 target=() client=()
  if [ "$pinned" = yes ]; then target=(taskset -c 0); client=(taskset -c 1); fi
  env -u PORT -u SLUICE_CONFIG -u ERROR_RATE -u SLUICE_UPSTREAM "${target[@]}" target/release/sluice \
    --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 --error-rate 0 >"$work/sluice.out" 2>/dev/null &
  local sluice_pid=$!
  pids+=("$sluice_pid")
  local url="" admin=""
  for _ in $(seq 100); do
    url=$(grep -o 'running on http://127\.0\.0\.1:[0-9]*' "$work/sluice.out" | grep -o 'http.*' || true)
    admin=$(grep -o 'Admin: http://127\.0\.0\.1:[0-9]*' "$work/sluice.out" | grep -o 'http.*' || true)
    [ -n "$url" ] && [ -n "$admin" ] && break
    sleep 0.1
  done
  "${client[@]}" "$loadgen" --label "sluice-$label" --json "$out/pinned-sluice-$label.json" --url "$url" \
    --pid "$sluice_pid" --metrics "$admin" "${paced[@]}" >/dev/null
  if [ "$pinned" = yes ]; then
    "${target[@]}" target/release/examples/floor --capture "$url" >"$work/floor.out" 2>&1 &
    local floor_pid=$!
    pids+=("$floor_pid")
    for _ in $(seq 50); do grep -q listening "$work/floor.out" && break; sleep 0.1; done
    local floor_url
    floor_url=$(grep -o 'http://[0-9.:]*' "$work/floor.out")
    "${client[@]}" "$loadgen" --label "floor-$label" --json "$out/pinned-floor-$label.json" --url "$floor_url" \
      --pid "$floor_pid" "${paced[@]}" >/dev/null
    kill "$floor_pid" 2>/dev/null || true
  fi
  kill "$sluice_pid" 2>/dev/null || true
  wait "$sluice_pid" 2>/dev/null || true
}
round pinned-1 yes
round unpinned no
round pinned-2 yes
