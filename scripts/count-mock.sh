#!/usr/bin/env bash
# Instructions per paced event, counted by valgrind's callgrind: sluice's
# mock (the Node mock's defaults: 100 ms to the first token, then 20 ms a
# token, 50 tokens) and hyper alone pacing the same reply
# (examples/paced_hyper.rs, which sends sluice's own captured stream on
# hyper, tokio and sluice's precise timer), each at 50 paced streams for
# 10 s after a 3 s warm-up. User space only; within about 2 % from run to
# run, where the CPU rows of scripts/bench.sh move by 10 % on a shared VM:
# the measure for a change to the mock's own work. Prints each total and
# sluice's functions by inclusive instructions per event (per-request work
# included, spread over the stream's 56 events).
# Needs valgrind (apt-get install valgrind); about a minute.
#
#   scripts/count-mock.sh                      # this tree's release build
#   scripts/count-mock.sh path/to/other/sluice # another build, for a before/after
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/callgrind-count.sh
. scripts/callgrind-count.sh
setup_counting paced_hyper
mock_bin=${1:-target/release/sluice}

# The reply hyper alone sends, captured once from this tree's mock.
target/release/sluice --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 --error-rate 0 >"$work/capture.out" 2>/dev/null &
pids+=($!)
capture=$(wait_for "$work/capture.out" 'running on http://127\.0\.0\.1:[0-9]*')
capture=${capture#running on }

paced="--concurrency 50 --expect-first-token 100ms --expect-gap 20ms"
count sluice-mock events "$paced" "$mock_bin" --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 --error-rate 0
# paced_hyper reads the capture at start, under valgrind: the capture stays up until it listens.
count hyper-alone events "$paced" target/release/examples/paced_hyper --capture "$capture" --listen 127.0.0.1:0
