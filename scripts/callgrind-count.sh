# Shared by scripts/count-proxy.sh and scripts/count-mock.sh (sourced, not
# run, from the repository's root): a server under valgrind's callgrind,
# driven by examples/loadgen, its user-space instructions divided by the
# streams or events served.

# setup_counting EXAMPLE: checks for valgrind, builds sluice, loadgen and
# EXAMPLE (the hyper-alone anchor), and sets $work and the array pids, which
# are cleaned up on exit.
setup_counting() {
  command -v valgrind >/dev/null || { echo "valgrind is not installed (apt-get install valgrind)"; exit 1; }
  cargo build --release --locked --quiet --bin sluice --example loadgen --example "$1"
  # sluice reads these; valgrind must start the binary itself, not `env`.
  unset PORT SLUICE_CONFIG ERROR_RATE SLUICE_UPSTREAM
  work="$(mktemp -d)"
  pids=()
  trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"' EXIT
}

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

# count NAME UNIT "LOADGEN ARGS" COMMAND...: COMMAND (a server that prints
# `on http://ADDR`) under callgrind; loadgen with LOADGEN ARGS for 3 s of
# warm-up, the counters zeroed, then 10 s counted. Prints instructions per
# UNIT (streams or events), and for a NAME starting with `sluice`, sluice's
# functions by inclusive instructions per UNIT.
count() {
  local name=$1 unit=$2 load_args=$3; shift 3
  valgrind --tool=callgrind --callgrind-out-file="$work/$name.cg" "$@" >"$work/$name.out" 2>"$work/$name.err" &
  local pid=$!
  pids+=("$pid")
  local url
  url=$(wait_for "$work/$name.out" 'on http://127\.0\.0\.1:[0-9]*')
  url=${url#on }
  # shellcheck disable=SC2086 # the load's arguments are words
  target/release/examples/loadgen --url "$url" $load_args --duration 3s >/dev/null 2>&1
  callgrind_control -z "$pid" >/dev/null 2>&1
  # shellcheck disable=SC2086
  target/release/examples/loadgen --url "$url" $load_args --duration 10s --json "$work/$name.json" >/dev/null 2>&1
  callgrind_control -d "$pid" >/dev/null 2>&1
  kill "$pid"
  python3 - "$work" "$name" "$unit" <<'PY'
import json, subprocess, sys
work, name, unit = sys.argv[1:4]
run = json.load(open(f"{work}/{name}.json"))
served = run["streams"] if unit == "streams" else round(run["events_per_s"] * run["wall_s"])
report = subprocess.run(["callgrind_annotate", "--inclusive=yes", f"{work}/{name}.cg.1"],
                        capture_output=True, text=True).stdout.splitlines()
total = next(int(l.split()[0].replace(",", "")) for l in report if "PROGRAM TOTALS" in l)
print(f"{name}: {total / served:,.0f} instructions per {unit[:-1]} ({served} {unit})")
if name.startswith("sluice"):
    seen = set()
    floor = 500 if unit == "streams" else 50
    for line in report:
        if "/src/" not in line or "sluice::" not in line or "=>" in line:
            continue
        per = int(line.split()[0].replace(",", "")) / served
        where = line[line.index(")") + 1:].strip().split(" [")[0].split("/src/", 1)[-1]
        if per < floor or where in seen:
            continue
        seen.add(where)
        print(f"  {per:8,.0f}  {where[:120]}")
PY
}
