#!/usr/bin/env bash
# Where the CPU of a paced event goes: sluice and the floor pacer
# (examples/floor.rs) each under N paced streams from examples/loadgen, the
# target sampled with `perf record` (cpu-clock, 997 Hz, 6 s mid-run), and the
# samples grouped by what they are in (kernel, sluice's own code, hyper,
# tokio, the allocator, the clock, copies). Prints µs per event by group for
# both, and sluice's hottest symbols. Needs perf (apt-get install
# linux-perf); about 40 seconds.
#
#   scripts/profile.sh          # 2,000 streams
#   scripts/profile.sh 1000
#
# Inlined code is counted in the function it was inlined into, so the
# groups are approximate at their edges (hyper's body polling inlines
# sluice's body; tokio's task poll inlines the connection's future).
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-2000}"
command -v perf >/dev/null || { echo "perf is not installed (apt-get install linux-perf)"; exit 1; }
cargo build --release --locked --quiet --bin sluice --example loadgen --example floor
work="$(mktemp -d)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

env -u PORT -u SLUICE_CONFIG -u ERROR_RATE -u SLUICE_UPSTREAM target/release/sluice \
  --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 --error-rate 0 >"$work/sluice.out" 2>/dev/null &
sluice_pid=$!
pids+=("$sluice_pid")
sluice_url=""
for _ in $(seq 100); do
  sluice_url=$(grep -o 'running on http://127\.0\.0\.1:[0-9]*' "$work/sluice.out" | grep -o 'http.*' || true)
  [ -n "$sluice_url" ] && break
  sleep 0.1
done
target/release/examples/floor --capture "$sluice_url" >"$work/floor.out" 2>&1 &
floor_pid=$!
pids+=("$floor_pid")
for _ in $(seq 50); do grep -q listening "$work/floor.out" && break; sleep 0.1; done
floor_url=$(grep -o 'http://[0-9.:]*' "$work/floor.out")

# run NAME URL PID: loadgen for 12 s, perf on PID from 4 s to 10 s.
run() {
  target/release/examples/loadgen --label "$1" --json "$work/$1.json" --url "$2" --pid "$3" \
    --concurrency "$n" --ramp 2s --duration 12s --expect-first-token 100ms --expect-gap 20ms \
    >/dev/null 2>&1 &
  local load=$!
  sleep 4
  perf record -q -F 997 -p "$3" -o "$work/$1.perf" -- sleep 6 >/dev/null 2>&1
  wait "$load"
  perf report -i "$work/$1.perf" --no-children --sort dso,sym --stdio 2>/dev/null >"$work/$1.txt"
}
run sluice "$sluice_url" "$sluice_pid"
run floor "$floor_url" "$floor_pid"

python3 - "$work" "$n" <<'PY'
import sys
sys.dont_write_bytecode = True
sys.path.insert(0, "scripts")
from perfgroups import groups, load
work, n = sys.argv[1], sys.argv[2]
GROUPS = groups("own code (sluice; the floor)", lambda dso: dso == "floor")
sluice, sluice_us, top, sluice_kernel, _ = load(f"{work}/sluice.txt", f"{work}/sluice.json", GROUPS)
floor, floor_us, _, floor_kernel, _ = load(f"{work}/floor.txt", f"{work}/floor.json", GROUPS)
print(f"CPU per paced event at {n} streams, in µs (perf samples by group x the run's CPU per event)")
print()
print("| group | sluice | floor | difference |")
print("|---|---:|---:|---:|")
for group, _ in GROUPS:
    print(f"| {group} | {sluice[group]:.2f} | {floor[group]:.2f} | {sluice[group] - floor[group]:+.2f} |")
print(f"| **total** | **{sluice_us:.2f}** | **{floor_us:.2f}** | **{sluice_us - floor_us:+.2f}** (x{sluice_us / floor_us:.2f}) |")
print()
print("kernel functions where sluice spends the most more than the floor (µs per event):")
diff = {k: sluice_kernel.get(k, 0) - floor_kernel.get(k, 0) for k in set(sluice_kernel) | set(floor_kernel)}
for sym, more in sorted(diff.items(), key=lambda kv: -kv[1])[:12]:
    print(f"  {more:+.3f}  {sym} ({sluice_kernel.get(sym, 0):.3f} against {floor_kernel.get(sym, 0):.3f})")
print()
print("sluice's hottest user-space symbols (share of its samples):")
for share, dso, sym in [t for t in top if t[1] != "[kernel.kallsyms]"][:25]:
    print(f"  {share:5.2f}%  {sym[:120]}")
PY
