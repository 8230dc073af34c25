#!/usr/bin/env bash
# Fuzzes every target in fuzz/ for SECONDS each (default 600), one after the
# other, and prints executions and crashes per target. Not part of the test
# command: CI replays the corpora (tests/fuzz_corpora.rs) instead.
#
#   scripts/fuzz.sh              all targets, 10 minutes each
#   SECONDS_EACH=60 scripts/fuzz.sh sse_split request
#
# Needs a nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`).
# New inputs go to a scratch corpus (fuzz/scratch/, ignored by git); copy a
# finding worth keeping into fuzz/corpus/<target>/.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
each=${SECONDS_EACH:-600}
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(sse_split request schema_sample config_toml control values cassette)
cargo +nightly fuzz build
for target in "${targets[@]}"; do
  mkdir -p "scratch/$target" "logs"
  log="logs/$target.log"
  status=0
  cargo +nightly fuzz run "$target" "scratch/$target" "corpus/$target" -- \
    -max_total_time="$each" -timeout=5 -rss_limit_mb=2048 -print_final_stats=1 >"$log" 2>&1 || status=$?
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo '?')
  crashes=$(ls artifacts/"$target" 2>/dev/null | wc -l)
  echo "$target: ${each}s, $runs executions, exit $status, $crashes crash artifacts"
done
