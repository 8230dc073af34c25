// Rate limits and client discipline: a well-behaved and a badly behaved
// client side by side against sluice's [rate_limits] buckets, and the
// thresholds tell them apart (docs/rate-limits.md).
//
//   sluice mock --config config/examples/rate-limits.toml --admin-listen 127.0.0.1:9090 &
//   k6 run tests/performance/rate-limits.k6.js
//
// Each VU is one client with its own API key, so its own bucket and its own
// verdict. On a 429 the patient client waits the `retry-after-ms` it was
// given (what the official SDKs do); the hasty one retries at once. sluice
// marks every request that came too early with `x-sluice-client-verdict`,
// and `teardown()` reads the verdict of every client from `GET /rate-limits`.
//
// MODE=ramp instead ramps one client's request rate through its limit and
// reports the rate at which the first 429 came (the min of
// requests_per_minute_at_429): the app's breaking point.
//
// Environment: BASE_URL (default http://localhost:3456), ADMIN_URL (default
// http://localhost:9090), DURATION (default 10s), MODE (discipline | ramp),
// RPM (the limit the ramp crosses, default 120).
import http from "k6/http";
import crypto from "k6/crypto";
import exec from "k6/execution";
import { check, sleep } from "k6";
import { Counter, Rate, Trend } from "k6/metrics";

const BASE_URL = __ENV.BASE_URL || "http://localhost:3456";
const ADMIN_URL = __ENV.ADMIN_URL || "http://localhost:9090";
const DURATION = __ENV.DURATION || "10s";
const MODE = __ENV.MODE || "discipline";
const RPM = Number(__ENV.RPM || 120);
const VUS = 2;

// What sluice said about each request, by scenario (k6 tags each sample).
const earlyRetries = new Counter("sluice_early_retries");
const rateLimited = new Counter("rate_limited");
const answered = new Rate("answered");
const remaining = new Trend("requests_remaining");
const refusedAtRate = new Trend("requests_per_minute_at_429");
const RAMP_FROM = Math.max(1, Math.round(RPM / 120)); // requests a second
const RAMP_TO = Math.round((2 * RPM) / 60);

const discipline = {
  scenarios: {
    patient: { executor: "constant-vus", vus: VUS, duration: DURATION, exec: "patient" },
    hasty: { executor: "constant-vus", vus: VUS, duration: DURATION, exec: "hasty" },
  },
  thresholds: {
    // Both clients met the limit...
    "rate_limited{scenario:patient}": ["count>0"],
    "rate_limited{scenario:hasty}": ["count>0"],
    // ...and sluice tells them apart: the patient one never retried early.
    "sluice_early_retries{scenario:patient}": ["count==0"],
    "sluice_early_retries{scenario:hasty}": ["count>0"],
    // Waiting as told gets every request answered in the end.
    "answered{scenario:patient}": ["rate==1"],
    // teardown()'s checks of sluice's own report.
    checks: ["rate==1"],
  },
};

const ramp = {
  scenarios: {
    ramp: {
      executor: "ramping-arrival-rate",
      exec: "rampClient",
      startRate: RAMP_FROM,
      timeUnit: "1s",
      preAllocatedVUs: 20,
      stages: [{ target: RAMP_TO, duration: DURATION }],
    },
  },
  thresholds: { rate_limited: ["count>0"] },
};

export const options = MODE === "ramp" ? ramp : discipline;

const body = JSON.stringify({
  model: "claude-mock",
  max_tokens: 64,
  messages: [{ role: "user", content: "hi" }],
});

function ask(key) {
  return http.post(`${BASE_URL}/v1/messages`, body, {
    headers: { "content-type": "application/json", "x-api-key": key, "anthropic-version": "2023-06-01" },
    responseCallback: http.expectedStatuses(200, 429),
  });
}

function record(response) {
  if (response.status === 429) rateLimited.add(1);
  if ((response.headers["X-Sluice-Client-Verdict"] || "").includes("early_retry")) earlyRetries.add(1);
  const left = response.headers["Anthropic-Ratelimit-Requests-Remaining"];
  if (left !== undefined) remaining.add(Number(left));
}

/** Sends until answered; on a 429, `pause(response)` seconds first. */
function untilAnswered(key, pause, tries) {
  for (let attempt = 0; attempt < tries; attempt++) {
    const response = ask(key);
    record(response);
    if (response.status !== 429) return response.status === 200;
    sleep(pause(response));
  }
  return false;
}

export function patient() {
  // The wait sluice gave, as the SDKs read it: retry-after-ms, else retry-after.
  const wait = (r) =>
    Number(r.headers["Retry-After-Ms"] || 0) / 1000 || Number(r.headers["Retry-After"] || 1);
  answered.add(untilAnswered(`sk-patient-${__VU}`, wait, 20));
}

export function hasty() {
  answered.add(untilAnswered(`sk-hasty-${__VU}`, () => 0.01, 20));
}

export function rampClient() {
  const response = ask("sk-ramp");
  record(response);
  if (response.status === 429) {
    // The arrival rate now, a minute (the ramp is linear over the scenario):
    // the trend's min is the rate at which the first 429 came.
    const perSecond = RAMP_FROM + exec.scenario.progress * (RAMP_TO - RAMP_FROM);
    refusedAtRate.add(60 * perSecond);
  }
}

/** How sluice names a client in its report: 12 hex digits of its key's SHA-256. */
const label = (key) => "key:" + crypto.sha256(key, "hex").slice(0, 12);

export function teardown() {
  if (MODE === "ramp") return;
  const report = http.get(`${ADMIN_URL}/rate-limits`).json();
  const verdictOf = (key) => report.clients.find((c) => c.client === label(key)) || {};
  for (let vu = 1; vu <= 2 * VUS; vu++) {
    // VU numbers are shared between scenarios: each key is one or the other.
    const patientVerdict = verdictOf(`sk-patient-${vu}`);
    const hastyVerdict = verdictOf(`sk-hasty-${vu}`);
    if (patientVerdict.client) {
      check(patientVerdict, {
        "sluice: a patient client never retried early": (v) => v.early_retries === 0,
        "sluice: a patient client retried after each wait": (v) => v.patient_retries > 0,
      });
    }
    if (hastyVerdict.client) {
      check(hastyVerdict, {
        "sluice: a hasty client retried early": (v) => v.early_retries > 0,
        "sluice: a hasty client retried with no pause": (v) => v.immediate_retries > 0,
        "sluice: a hasty client stormed": (v) => v.retry_storms > 0,
      });
    }
  }
  console.log(`sluice verdict totals: ${JSON.stringify(report.totals)}`);
}
