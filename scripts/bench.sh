#!/usr/bin/env bash
# The benchmark matrix, in one go, on this machine; writes bench/results.md
# (the table for the README) and bench/*.json (every figure).
#
#   scripts/bench.sh                  # about 2 minutes
#   BENCH_DURATION=20s scripts/bench.sh
#
# Each run holds N concurrent streams for BENCH_DURATION with examples/loadgen
# (one thread; the other core is sluice's) and reads sluice's CPU time and
# peak RSS from /proc. nginx (Debian's package; installed if missing) is the
# pass-through anchor.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/nginx-anchor.sh
. scripts/nginx-anchor.sh

duration="${BENCH_DURATION:-10s}"
out=bench
mkdir -p "$out"
rm -f "$out"/*.json
cargo build --release --locked --quiet --bin sluice --example loadgen --example floor --example bare_proxy --example paced_hyper
sluice=target/release/sluice
loadgen=target/release/examples/loadgen
floor=target/release/examples/floor
bare_proxy=target/release/examples/bare_proxy
paced_hyper=target/release/examples/paced_hyper

work="$(mktemp -d)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

# start NAME ARGS...: starts sluice; sets $url, $admin and $pid.
start() {
  local name=$1; shift
  env -u PORT -u SLUICE_CONFIG -u ERROR_RATE -u SLUICE_UPSTREAM \
    "$sluice" --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 --error-rate 0 "$@" >"$work/$name.out" 2>"$work/$name.err" &
  pid=$!
  pids+=("$pid")
  for _ in $(seq 100); do
    url="$(grep -o 'running on https\?://127\.0\.0\.1:[0-9]*' "$work/$name.out" | grep -o 'http.*' || true)"
    admin="$(grep -o 'Admin: http://127\.0\.0\.1:[0-9]*' "$work/$name.out" | grep -o 'http.*' || true)"
    [ -n "$url" ] && [ -n "$admin" ] && return 0
    sleep 0.1
  done
  cat "$work/$name.err"; echo "sluice ($name) did not start"; exit 1
}
stop() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }
# recorded ADMIN DIR: what [record] did, as JSON (its counter by result, and the files).
recorded() {
  python3 - "$1" "$2" <<'PY'
import json, os, re, sys, urllib.request
text = urllib.request.urlopen(sys.argv[1] + "/metrics").read().decode()
counts = {m[0]: float(m[1]) for m in re.findall(r'sluice_cassettes_recorded_total\{result="(\w+)"\} (\S+)', text)}
files = [f for f in os.listdir(sys.argv[2]) if f.endswith(".jsonl")]
size = sum(os.path.getsize(os.path.join(sys.argv[2], f)) for f in files)
print(json.dumps({"counts": counts, "files": len(files), "bytes": size}))
PY
}
load() { local label=$1; shift; "$loadgen" --label "$label" --json "$out/$label.json" --duration "$duration" "$@" >/dev/null; }

echo "== mock, the Node mock's defaults (100ms / 20ms / 50 tokens)"
for n in 100 1000 2000 4000; do
  start mock
  load "mock-paced-$n" --url "$url" --pid "$pid" --metrics "$admin" --concurrency "$n" --ramp 2s \
    --expect-first-token 100ms --expect-gap 20ms
  stop "$pid"
  if [ "$n" = 1000 ]; then
    # The same load in OpenAI's dialect: its figures should match the row above.
    start mock
    load mock-openai-paced-1000 --api openai --url "$url" --pid "$pid" --metrics "$admin" --concurrency 1000 \
      --ramp 2s --expect-first-token 100ms --expect-gap 20ms
    stop "$pid"
    # And in Gemini's (streamGenerateContent?alt=sse, one whole response a chunk).
    start mock
    load mock-gemini-paced-1000 --api gemini --url "$url" --pid "$pid" --metrics "$admin" --concurrency 1000 \
      --ramp 2s --expect-first-token 100ms --expect-gap 20ms
    stop "$pid"
    # And in Bedrock's (ConverseStream, AWS's binary event stream).
    start mock
    load mock-bedrock-paced-1000 --api bedrock --url "$url" --pid "$pid" --metrics "$admin" --concurrency 1000 \
      --ramp 2s --expect-first-token 100ms --expect-gap 20ms
    stop "$pid"
    # And with [capacity] on (docs/capacity.md): every stream takes one of
    # 1,000 places, and its slowdown factor is read before every token (at
    # 1.001 the delays barely move). Its cost is this row against the first.
    printf 'error_rate = 0\n[capacity]\nmax_concurrent = 1000\nfactor_at_capacity = 1.001\n' \
      >"$work/capacity.toml"
    start mock --config "$work/capacity.toml"
    load mock-capacity-paced-1000 --url "$url" --pid "$pid" --metrics "$admin" --concurrency 1000 \
      --ramp 2s --expect-first-token 100ms --expect-gap 20ms
    stop "$pid"
    # And with [fleet] (docs/fleet.md): rate limits leased from a Redis, an
    # `every` schedule numbered by it, places under max_concurrent taken
    # from it; the same config without [fleet] beside it. Redis's own CPU
    # is not in sluice's figure.
    if command -v redis-server >/dev/null 2>&1; then
      redis_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
      redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no --dir "$work" >/dev/null 2>&1 &
      pids+=($!)
      sleep 0.5
      fleet_knobs='error_rate = 0
[rate_limits]
requests_per_minute = 1000000
[capacity]
max_concurrent = 2000
[[faults]]
kind = "http"
status = 500
every = 100000000'
      printf '%s\n' "$fleet_knobs" >"$work/fleet-off.toml"
      printf '%s\n[fleet]\nstore = "redis://127.0.0.1:%s"\n' "$fleet_knobs" "$redis_port" >"$work/fleet.toml"
      for config in fleet-off fleet; do
        start mock --config "$work/$config.toml"
        load "mock-$config-paced-1000" --url "$url" --pid "$pid" --metrics "$admin" --concurrency 1000 \
          --ramp 2s --expect-first-token 100ms --expect-gap 20ms
        stop "$pid"
      done
    fi
  fi
done

echo "== the floor: 1,000 and 2,000 paced streams, the floor pacer (examples/floor.rs), hyper alone (examples/paced_hyper.rs) and sluice interleaved"
# anchor NAME BINARY ARGS...: starts a paced anchor; sets $anchor_url and $anchor_pid.
anchor() {
  local name=$1 binary=$2; shift 2
  "$binary" "$@" >"$work/$name.out" 2>"$work/$name.err" &
  anchor_pid=$!
  pids+=("$anchor_pid")
  for _ in $(seq 50); do grep -q listening "$work/$name.out" && break; sleep 0.1; done
  anchor_url=$(grep -o 'http://[0-9.:]*' "$work/$name.out")
}
for n in 1000 2000; do
  for round in 1 2; do
    start mock
    mock_url=$url mock_pid=$pid mock_admin=$admin
    anchor floor "$floor" --capture "$mock_url" --listen 127.0.0.1:0
    load "floor-paced-$n-$round" --url "$anchor_url" --pid "$anchor_pid" --concurrency "$n" --ramp 2s \
      --expect-first-token 100ms --expect-gap 20ms
    stop "$anchor_pid"
    anchor paced-hyper "$paced_hyper" --capture "$mock_url" --listen 127.0.0.1:0
    load "hyper-paced-$n-$round" --url "$anchor_url" --pid "$anchor_pid" --concurrency "$n" --ramp 2s \
      --expect-first-token 100ms --expect-gap 20ms
    stop "$anchor_pid"
    load "sluice-floor-paced-$n-$round" --url "$mock_url" --pid "$mock_pid" --metrics "$mock_admin" \
      --concurrency "$n" --ramp 2s --expect-first-token 100ms --expect-gap 20ms
    stop "$mock_pid"
  done
done

echo "== mock, zero delays: the ceiling"
start mock --first-token-delay 0 --token-interval 0 --tool-call-delay 0
load mock-ceiling --url "$url" --pid "$pid" --concurrency 64
stop "$pid"

echo "== the same, each request with one of 10,000 API keys, under [rate_limits] (none refused)"
cat >"$work/limits.toml" <<'TOML'
error_rate = 0
first_token_delay = "0ms"
token_interval = "0ms"
tool_call_delay = "0ms"
[rate_limits]
requests_per_minute = 1000000000
input_tokens_per_minute = 1000000000
output_tokens_per_minute = 1000000000
TOML
start limited --config "$work/limits.toml"
load mock-ceiling-rate-limited-10k --url "$url" --pid "$pid" --concurrency 64 --keys 10000
stop "$pid"
cargo run --release --locked --quiet --example limiter_cost >"$out/limiter-cost.md"

echo "== TLS: 1,000 paced streams over TLS (HTTP/1.1, then HTTP/2), and handshakes per second"
printf '[tls]\nself_signed = true\nca_out = "%s/ca.pem"\n' "$work" >"$work/tls.toml"
start tls --config "$work/tls.toml"
for _ in $(seq 50); do [ -s "$work/ca.pem" ] && break; sleep 0.1; done
load mock-tls-paced-1000 --url "$url" --tls-ca "$work/ca.pem" --pid "$pid" --metrics "$admin" \
  --concurrency 1000 --ramp 2s --expect-first-token 100ms --expect-gap 20ms
load mock-tls-h2-paced-1000 --h2 --url "$url" --tls-ca "$work/ca.pem" --pid "$pid" --metrics "$admin" \
  --concurrency 1000 --ramp 2s --expect-first-token 100ms --expect-gap 20ms
for mode in full resumed; do
  "$loadgen" --label "tls-handshakes-$mode" --json "$out/tls-handshakes-$mode.json" --url "$url" \
    --tls-ca "$work/ca.pem" --pid "$pid" --concurrency 16 --duration 5s --handshakes "$mode" >/dev/null
done
stop "$pid"

echo "== memory per idle open stream (streams stalled after their first token; HTTP/1.1 and HTTP/2)"
cat >"$work/stall.toml" <<'TOML'
error_rate = 0
first_token_delay = "0ms"
[limits]
max_connections = 15000
[[faults]]
kind = "stall"
after_tokens = 1
first_requests = 1000000000
TOML
start idle --config "$work/stall.toml"
"$loadgen" --idle --label mock-idle --json "$out/mock-idle.json" --url "$url" --pid "$pid" --concurrency 2000 >/dev/null
stop "$pid"
# 10,000 streams on as many HTTP/1.1 connections (when the open-file limit
# allows), and 10,000 and 50,000 over HTTP/2, 100 streams a connection; each
# on a fresh sluice.
for spec in h1:10000 h2:10000 h2:50000; do
  proto=${spec%%:*} n=${spec##*:}
  if [ "$proto" = h1 ] && [ "$(ulimit -n)" -lt $((n + 1000)) ]; then
    echo "open-file limit $(ulimit -n): the $n-connection HTTP/1.1 row is left out"
    continue
  fi
  start "idle-$proto-$n" --config "$work/stall.toml"
  flags=()
  [ "$proto" = h2 ] && flags=(--h2 --streams-per-connection 100)
  "$loadgen" --idle "${flags[@]}" --label "mock-idle-$proto-$n" --json "$out/mock-idle-$proto-$n.json" \
    --url "$url" --pid "$pid" --concurrency "$n" >/dev/null
  stop "$pid"
done
# The proxy's share: 2,000 proxied streams whose upstream stalls after the
# first token (the proxy adds no delay).
start idle-upstream --config "$work/stall.toml"
upstream_url=$url upstream_pid=$pid
start idle-proxy --upstream "$upstream_url" --first-token-delay 0 --token-interval 0 --tool-call-delay 0
"$loadgen" --idle --label proxy-idle --json "$out/proxy-idle.json" --url "$url" --pid "$pid" --concurrency 2000 >/dev/null
stop "$pid"; stop "$upstream_pid"

echo "== pass-through: direct, sluice proxy (no faults, no delays), hyper alone, nginx"
start upstream --first-token-delay 0 --token-interval 0 --tool-call-delay 0
upstream_url=$url upstream_pid=$pid
load direct --url "$upstream_url" --pid "$upstream_pid" --concurrency 32
start proxy --upstream "$upstream_url" --first-token-delay 0 --token-interval 0 --tool-call-delay 0
load via-sluice --url "$url" --pid "$pid" --concurrency 32
stop "$pid"
# The same with [record]: every exchange written as a cassette (docs/record-replay.md).
start proxy-recording --upstream "$upstream_url" --first-token-delay 0 --token-interval 0 --tool-call-delay 0 \
  --record "$work/cassettes"
load via-sluice-recording --url "$url" --pid "$pid" --concurrency 32
sleep 1 # let the writer drain its queue before counting
recorded "$admin" "$work/cassettes" >"$out/recording-pass-through.json"
stop "$pid"
rm -rf "$work/cassettes"
# The hyper floor: hyper's server and pooled client on the same per-core
# runtimes, forwarding and nothing else (examples/bare_proxy.rs), so that the
# table can say how much of the proxy's CPU is sluice's own.
"$bare_proxy" --upstream "$upstream_url" --listen 127.0.0.1:0 >"$work/bare.out" 2>"$work/bare.err" &
bare_pid=$!
pids+=("$bare_pid")
for _ in $(seq 50); do grep -q listening "$work/bare.out" && break; sleep 0.1; done
load via-bare-hyper --url "$(grep -o 'http://[0-9.:]*' "$work/bare.out")" --pid "$bare_pid" --concurrency 32
stop "$bare_pid"
if ! command -v nginx >/dev/null 2>&1; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light >/dev/null 2>&1) \
    || (DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx >/dev/null 2>&1) || true
fi
if command -v nginx >/dev/null 2>&1; then
  nginx_anchor "$work/nginx" "$upstream_url"
  pids+=("$nginx_master")
  nginx_pids=$(pgrep -d ' ' -f "nginx: (master|worker) process" | tr ' ' '\n' | awk '{printf "--pid %s ", $1}')
  # shellcheck disable=SC2086
  load via-nginx --url "http://127.0.0.1:$nginx_port" $nginx_pids --concurrency 32
  stop "$nginx_master"
else
  echo "nginx unavailable: the anchor row is left out"
fi
stop "$upstream_pid"

echo "== proxy pacing a fast upstream (100ms / 20ms added to a zero-delay mock)"
for n in 1000 4000; do
  start upstream --first-token-delay 0 --token-interval 0 --tool-call-delay 0
  upstream_url=$url upstream_pid=$pid
  start proxy --upstream "$upstream_url"
  load "proxy-paced-$n" --url "$url" --pid "$pid" --metrics "$admin" --concurrency "$n" --ramp 2s \
    --expect-first-token 100ms --expect-gap 20ms
  stop "$pid"
  if [ "$n" = 1000 ]; then
    start proxy-recording --upstream "$upstream_url" --record "$work/cassettes"
    load proxy-paced-1000-recording --url "$url" --pid "$pid" --metrics "$admin" --concurrency 1000 --ramp 2s \
      --expect-first-token 100ms --expect-gap 20ms
    sleep 1
    recorded "$admin" "$work/cassettes" >"$out/recording-paced.json"
    stop "$pid"
    rm -rf "$work/cassettes"
  fi
  stop "$upstream_pid"
done

python3 scripts/bench-table.py "$out" >"$out/results.md"
cat "$out/results.md"
