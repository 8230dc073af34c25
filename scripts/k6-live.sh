#!/usr/bin/env bash
# Runs tests/performance/live-control.k6.js against a fresh `sluice mock`:
# the script degrades sluice through the admin API mid-run, then recovers it,
# and its thresholds check that k6's own metrics saw both.
set -euo pipefail
cd "$(dirname "$0")/.."

binary="${SLUICE_BIN:-target/release/sluice}"
k6="${K6:-.venv-test/bin/k6}"
work="$(mktemp -d)"
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT

env -u PORT -u SLUICE_CONFIG -u ERROR_RATE "$binary" mock --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 \
  --error-rate 0 >"$work/banner" 2>"$work/log" &
pid=$!
for _ in $(seq 100); do
  grep -q "Admin: http" "$work/banner" 2>/dev/null && break
  kill -0 "$pid" 2>/dev/null || { cat "$work/log"; echo "sluice exited"; exit 1; }
  sleep 0.1
done
url="$(grep -o 'running on http://127\.0\.0\.1:[0-9]*' "$work/banner" | grep -o 'http.*' || true)"
admin="$(grep -o 'Admin: http://127\.0\.0\.1:[0-9]*' "$work/banner" | grep -o 'http.*' || true)"
[ -n "$url" ] && [ -n "$admin" ] || { cat "$work/banner" "$work/log"; echo "no addresses in the banner"; exit 1; }

"$k6" run --quiet --no-color --env BASE_URL="$url" --env ADMIN_URL="$admin" \
  --env PHASE="${K6_PHASE:-5s}" tests/performance/live-control.k6.js
grep -c "config applied" "$work/log" | xargs -I{} echo "sluice applied {} config changes during the run"
echo "k6 live control: 1 passed, 0 failed"
