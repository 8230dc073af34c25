#!/usr/bin/env bash
# Instructions per proxied stream, counted by valgrind's callgrind: sluice's
# proxy and hyper alone (examples/bare_proxy.rs), each in front of the same
# zero-delay `sluice mock`, 4 connections back to back for 10 s after a 3 s
# warm-up (the counters are zeroed between). User space only, and
# deterministic to within a few instructions a stream from run to run, where
# the CPU-time rows of scripts/bench.sh move by 10 % on a shared VM: the
# measure for a change to sluice's own per-request work. Prints each total
# and sluice's functions by inclusive instructions per stream.
# Needs valgrind (apt-get install valgrind); about a minute.
#
#   scripts/count-proxy.sh                      # this tree's release build
#   scripts/count-proxy.sh path/to/other/sluice # another build, for a before/after
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/callgrind-count.sh
. scripts/callgrind-count.sh
setup_counting bare_proxy
proxy_bin=${1:-target/release/sluice}

env -u PORT -u SLUICE_CONFIG target/release/sluice --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 \
  --error-rate 0 --first-token-delay 0 --token-interval 0 --tool-call-delay 0 >"$work/upstream.out" 2>/dev/null &
pids+=($!)
upstream=$(wait_for "$work/upstream.out" 'running on http://127\.0\.0\.1:[0-9]*')
upstream=${upstream#running on }

count sluice streams "--concurrency 4" "$proxy_bin" --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 \
  --error-rate 0 --first-token-delay 0 --token-interval 0 --tool-call-delay 0 --upstream "$upstream"
count hyper-alone streams "--concurrency 4" target/release/examples/bare_proxy --upstream "$upstream" --listen 127.0.0.1:0
