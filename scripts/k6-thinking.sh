#!/usr/bin/env bash
# Runs tests/performance/thinking.k6.js against a fresh `sluice mock` with
# config/examples/reasoning.toml: requests with extended thinking, and k6's
# thresholds on time to first text (its exit status).
set -euo pipefail
cd "$(dirname "$0")/.."

k6="${K6:-.venv-test/bin/k6}"
. scripts/start-sluice.sh --config config/examples/reasoning.toml

"$k6" run --quiet --no-color --env BASE_URL="$url" --env DURATION="${K6_DURATION:-10s}" \
  --summary-export "$work/summary.json" tests/performance/thinking.k6.js
python3 - "$work/summary.json" <<'PY'
import json, sys
text = json.load(open(sys.argv[1]))["metrics"]["time_to_first_text"]
print(f"time_to_first_text: min={text['min']:.2f}ms med={text['med']:.2f}ms p(95)={text['p(95)']:.2f}ms max={text['max']:.2f}ms")
PY
echo "k6 thinking: 1 passed, 0 failed"
