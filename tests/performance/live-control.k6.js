// Change faults during a test: baseline, degrade, recover, driven from the
// k6 script itself through sluice's admin API (PUT/DELETE /faults), and
// visible in k6's own metrics.
//
//   sluice --admin-listen 127.0.0.1:9090 --error-rate 0 &
//   k6 run tests/performance/live-control.k6.js
//
// Each response names the config that served it (`x-sluice-config: N-hash`),
// so the script counts every request in the phase that really served it.
//
// Environment: BASE_URL (default http://localhost:3456), ADMIN_URL (default
// http://localhost:9090), PHASE (length of each phase, default 10s),
// ADMIN_TOKEN (if [admin] token is set).
import http from "k6/http";
import { check, sleep } from "k6";
import { Counter, Rate, Trend } from "k6/metrics";

const BASE_URL = __ENV.BASE_URL || "http://localhost:3456";
const ADMIN_URL = __ENV.ADMIN_URL || "http://localhost:9090";
const PHASE = Number((__ENV.PHASE || "10s").replace(/s$/, ""));

const firstToken = new Trend("first_token_latency", true);
const injected = new Counter("injected_faults");
const failedBaseline = new Rate("failed_baseline");
const failedDegraded = new Rate("failed_degraded");
const failedRecovered = new Rate("failed_recovered");

export const options = {
  scenarios: {
    traffic: { executor: "constant-vus", vus: 5, duration: `${3 * PHASE}s`, exec: "traffic" },
    control: { executor: "per-vu-iterations", vus: 1, iterations: 1, maxDuration: `${3 * PHASE + 10}s`, exec: "control" },
  },
  thresholds: {
    // The degrade phase shows in k6's own metrics...
    injected_faults: ["count>0"],
    failed_degraded: ["rate>0.25"],
    first_token_latency: ["max>=300"],
    // ...and nothing fails outside it.
    failed_baseline: ["rate==0"],
    failed_recovered: ["rate==0"],
  },
};

const adminHeaders = {
  "content-type": "application/json",
  ...(__ENV.ADMIN_TOKEN ? { authorization: `Bearer ${__ENV.ADMIN_TOKEN}` } : {}),
};

export function setup() {
  const ready = http.get(`${ADMIN_URL}/ready`, { headers: adminHeaders });
  if (ready.status !== 200) throw new Error(`sluice admin not reachable at ${ADMIN_URL}`);
  // The config number in force now; the degrade and the recovery each add one.
  return { baseline: Number(ready.json("version").split("-")[0]) };
}

/** Which phase served a response: its `x-sluice-config` names the config. */
function phase(response, data) {
  const served = Number((response.headers["X-Sluice-Config"] || "0-").split("-")[0]);
  return ["baseline", "degraded", "recovered"][served - data.baseline];
}

export function traffic(data) {
  const response = http.post(
    `${BASE_URL}/v1/messages`,
    JSON.stringify({ model: "m", max_tokens: 64, stream: true, messages: [{ role: "user", content: "hi" }] }),
    { headers: { "content-type": "application/json", "x-api-key": "test-key", "anthropic-version": "2023-06-01" } },
  );
  const ok = check(response, { "status is 200": (r) => r.status === 200 });
  if (ok) firstToken.add(response.timings.waiting);
  if (response.headers["X-Sluice-Fault"]) injected.add(1);
  const rates = { baseline: failedBaseline, degraded: failedDegraded, recovered: failedRecovered };
  rates[phase(response, data)].add(!ok);
  sleep(0.1);
}

export function control() {
  sleep(PHASE);
  const degrade = http.put(
    `${ADMIN_URL}/faults`,
    // Every third request fails: a schedule, so the run is the same every time
    // (route counters start afresh with each config). A random share works
    // too: { error_rate: 0.3, faults: [{ kind: "http", status: 529 }] }.
    JSON.stringify({
      first_token_delay: "300ms",
      faults: [{ kind: "http", status: 529, every: 3 }],
    }),
    { headers: adminHeaders },
  );
  check(degrade, { "degrade applied": (r) => r.status === 200 && r.json("result") === "applied" });
  sleep(PHASE);
  const recover = http.del(`${ADMIN_URL}/faults`, null, { headers: adminHeaders });
  check(recover, { "recovery applied": (r) => r.status === 200 && r.json("result") === "applied" });
}
