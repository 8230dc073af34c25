#!/usr/bin/env bash
# The soak test (not part of the test command; about 31 minutes):
# SOAK_STREAMS (1,000) concurrent paced streams for SOAK_DURATION (30m), with
# a mix of every fault kind at 10 %, 5 % of clients hanging up at a random
# moment, and the config file rewritten every 10 s (first_token_delay
# alternating 100 ms and 120 ms). Prints sluice's RSS every minute, and at
# the end:
# - failed streams no fault explains (a failure is explained when its head
#   carries x-sluice-fault): must be 0;
# - reloads applied against rewrites made: must be equal;
# - the RSS trend over the last two thirds of the run: must be flat.
#
# With SOAK_HOSTILE=1, a hostile mix runs beside the paced streams for the
# whole run (scripts/soak-hostile.py): 31 MiB bodies of numbers four at a
# time, 50 open structured-output streams of 250,000 characters, HTTP/2
# clients that grant a 2^31 window and never read, 8 admin pollers, and live
# control (PUT and DELETE /faults every 5 s) over a replay library of 1,000
# cassettes (200 MB) that no request matches. It adds the peak RSS, and a
# canary stream every half second (on a fault-free route, first token due at
# 100 ms) whose first-token error it reports.
#
#   scripts/soak.sh
#   SOAK_DURATION=2m scripts/soak.sh      # a quick look
#   SOAK_HOSTILE=1 SOAK_DURATION=10m scripts/soak.sh
set -euo pipefail
cd "$(dirname "$0")/.."

duration="${SOAK_DURATION:-30m}"
streams="${SOAK_STREAMS:-1000}"
hostile="${SOAK_HOSTILE:-0}"
cargo build --release --locked --quiet --bin sluice --example loadgen
work="${SOAK_DIR:-$(mktemp -d)}"
mkdir -p "$work"
pids=()
# The logs stay in $work (printed at the end) for a look at anything unexplained.
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

if [ "$hostile" = 1 ]; then
  mkdir -p "$work/library"
  python3 - "$work/library" <<'PY'
import json, sys
head = {"sluice_cassette": 1, "request": {"method": "POST", "path": "/v1/messages", "body": {
    "model": "m", "stream": True, "messages": [{"role": "user", "content": "no request asks this"}]}},
    "response": {"status": 200, "head_ms": 1.0, "headers": {"content-type": "text/event-stream"}}}
event = 'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"%s"}}\n\n'
lines = [json.dumps(head)] + [json.dumps({"at_ms": 1.0 + i, "sse": event % ("x" * 100)}) for i in range(1000)]
text = "\n".join(lines) + "\n"
for n in range(1000):
    open(f"{sys.argv[1]}/{n:04}.jsonl", "w").write(text)
PY
fi

config() {
  replay=""
  if [ "$hostile" = 1 ]; then
    printf -v replay '[replay]\ndir = "%s"\nfallback = "generate"\n\n[profiles.canary]\nerror_rate = 0\nfirst_token_delay = "100ms"\n\n[[routes]]\nname = "canary"\nprofile = "canary"\nheaders = { "x-canary" = "1" }\n' "$work/library"
  fi
  cat <<TOML
error_rate = 0.1
first_token_delay = "$1"
token_interval = "20ms"
tokens_per_response = 50

[[faults]]
kind = "http"
status = 429
retry_after = "1s"
[[faults]]
kind = "http"
status = 529
[[faults]]
kind = "stream_error"
after_tokens = 5
[[faults]]
kind = "reset"
after_tokens = 3
[[faults]]
kind = "truncate"
after_tokens = 10
[[faults]]
kind = "stall"
after_tokens = 2
duration = "2s"
[[faults]]
kind = "malformed"
after_tokens = 4
[[faults]]
kind = "slow_head"
duration = "500ms"

$replay
TOML
}

config_file="$work/sluice.toml"
config 100ms >"$config_file"
env -u PORT -u FIRST_TOKEN_DELAY -u ERROR_RATE -u SLUICE_UPSTREAM \
  target/release/sluice mock --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 --config "$config_file" \
  >"$work/sluice.out" 2>"$work/sluice.err" &
pid=$!
pids+=("$pid")
for _ in $(seq 100); do
  url="$(grep -o 'running on http://127\.0\.0\.1:[0-9]*' "$work/sluice.out" | grep -o 'http.*' || true)"
  admin="$(grep -o 'Admin: http://127\.0\.0\.1:[0-9]*' "$work/sluice.out" | grep -o 'http.*' || true)"
  [ -n "$url" ] && [ -n "$admin" ] && break
  sleep 0.1
done
echo "sluice $pid on $url (admin $admin); $streams streams for $duration"

metric() { curl -s "$admin/metrics" | awk -v s="$1" '$1 == s { print $2 }'; }
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status"; }

target/release/examples/loadgen --url "$url" --pid "$pid" --concurrency "$streams" \
  --duration "$duration" --ramp 5s --leave-rate 0.05 --label soak --json "$work/soak.json" \
  >"$work/loadgen.out" 2>&1 &
loadgen=$!
pids+=("$loadgen")
if [ "$hostile" = 1 ]; then
  seconds=$(python3 -c "import sys; d=sys.argv[1]; print(int(d[:-1]) * (60 if d.endswith('m') else 1))" "$duration")
  python=python3
  [ -x .venv-test/bin/python ] && python=.venv-test/bin/python # h2, for the HTTP/2 clients
  "$python" scripts/soak-hostile.py "$url" "$admin" "$seconds" >"$work/hostile.out" 2>&1 &
  pids+=("$!")
fi

rewrites=0
started=$(date +%s)
next_minute=$((started + 60))
rss_series=()
while kill -0 "$loadgen" 2>/dev/null; do
  sleep 10
  kill -0 "$loadgen" 2>/dev/null || break
  if [ $((rewrites % 2)) = 0 ]; then config 120ms >"$config_file"; else config 100ms >"$config_file"; fi
  rewrites=$((rewrites + 1))
  now=$(date +%s)
  if [ "$now" -ge "$next_minute" ]; then
    rss=$(rss_kib)
    rss_series+=("$rss")
    printf 'minute %2d: RSS %s KiB, open streams %s, reloads applied %s (rewrites %s)\n' \
      "$(((now - started) / 60))" "$rss" "$(metric sluice_open_streams)" \
      "$(metric 'sluice_config_reloads_total{result="applied"}')" "$rewrites"
    next_minute=$((next_minute + 60))
  fi
done
wait "$loadgen" || true
peak=$(awk '/^VmHWM:/ { print $2 }' "/proc/$pid/status")
echo "sluice's peak RSS: $peak KiB"
if [ "$hostile" = 1 ]; then
  sleep 5
  cat "$work/hostile.out"
fi
sleep 2 # the last rewrite's debounce
applied=$(metric 'sluice_config_reloads_total{result="applied"}')
unchanged=$(metric 'sluice_config_reloads_total{result="unchanged"}')
rejected=$(metric 'sluice_config_reloads_total{result="rejected"}')
echo "logs in $work: sluice's warnings:"
grep -c WARN "$work/sluice.err" || true
grep WARN "$work/sluice.err" | sed 's/\x1b\[[0-9;]*m//g' | cut -c1-200 | sort | uniq -c | sort -rn | head -5 || true
echo "loadgen's unexplained errors:"
grep -c "without x-sluice-fault" "$work/loadgen.out" || true
grep "without x-sluice-fault" "$work/loadgen.out" | head -5 || true
python3 - "$work/soak.json" "$hostile" "$rewrites" "${applied:-0}" "${unchanged:-0}" "${rejected:-0}" "${rss_series[@]}" <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))
hostile = sys.argv[2] == "1"
rewrites, applied, unchanged, rejected = (float(x) for x in sys.argv[3:7])
rss = [int(x) for x in sys.argv[7:]]
ends = report.get("ends", {})
failed = {k: v for k, v in ends.items() if k not in ("Complete", "Left") and not k.endswith("+fault")}
explained = sum(v for k, v in ends.items() if k.endswith("+fault"))
print("streams:", report.get("streams"), "ends:", json.dumps(ends))
print(f"failed streams no fault explains: {sum(failed.values())} {failed if failed else ''}")
print(f"faulted streams (explained): {explained}")
print(f"reloads: {applied:.0f} applied, {unchanged:.0f} unchanged, {rejected:.0f} rejected; rewrites made: {rewrites:.0f}")
if rss:
    tail = rss[len(rss) // 3:]
    print(f"RSS per minute (KiB): {rss}")
    print(f"RSS over the last {len(tail)} minutes: min {min(tail)}, max {max(tail)}, first {tail[0]}, last {tail[-1]}")
# The hostile mix's PUT and DELETE /faults are applied changes too.
reloads_ok = applied >= rewrites if hostile else applied == rewrites
ok = not failed and reloads_ok and unchanged == 0 and rejected == 0
print("SOAK", "PASS" if ok else "FAIL")
sys.exit(0 if ok else 1)
PY
