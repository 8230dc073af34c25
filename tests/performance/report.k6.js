// A well-behaved client, and sluice's report of it (docs/report.md): setup()
// starts a run, each virtual user streams Messages and waits as long as a
// 429's retry-after says (1 s for a 529) before it tries again, teardown()
// ends the run and turns the report's verdict on early retries into a
// metric with a threshold, and handleSummary() writes sluice's report (JSON
// and the page) beside k6's own summary, with both sides' counts.
//
//   sluice mock --config tests/performance/report.toml --admin-listen 127.0.0.1:9090
//   k6 run tests/performance/report.k6.js --env BASE_URL=http://localhost:3456 \
//     --env ADMIN_URL=http://127.0.0.1:9090 --env OUT_DIR=.
//
// Environment: BASE_URL, ADMIN_URL, OUT_DIR (default .), DURATION (default 10s), VUS (default 5).
import http from "k6/http";
import { check, sleep } from "k6";
import exec from "k6/execution";
import { Counter } from "k6/metrics";

const BASE_URL = __ENV.BASE_URL || "http://localhost:3456";
const ADMIN_URL = __ENV.ADMIN_URL || "http://127.0.0.1:9090";
const OUT_DIR = __ENV.OUT_DIR || ".";
const apiRequests = new Counter("api_requests");
const apiRefused = new Counter("api_refused");
const earlyRetries = new Counter("report_early_retries");

export const options = {
  scenarios: {
    chat: { executor: "constant-vus", vus: Number(__ENV.VUS || 5), duration: __ENV.DURATION || "10s" },
  },
  thresholds: {
    // sluice's verdict: this client never came back before its retry-after.
    report_early_retries: ["count==0"],
    checks: ["rate==1"],
  },
};

export function setup() {
  const started = http.post(`${ADMIN_URL}/runs`, JSON.stringify({ name: "k6 report example" }));
  check(started, { "run started": (r) => r.status === 201 });
  return { run: started.json("id") };
}

export default function () {
  const body = JSON.stringify({
    model: "claude-sonnet-4-5",
    max_tokens: 256,
    stream: true,
    messages: [{ role: "user", content: "Summarise the report." }],
  });
  const params = {
    // Each virtual user is a client of its own, with its own verdict.
    headers: {
      "content-type": "application/json",
      "anthropic-version": "2023-06-01",
      "x-api-key": `vu-${exec.vu.idInTest}`,
    },
  };
  for (let attempt = 0; attempt < 3; attempt++) {
    const response = http.post(`${BASE_URL}/v1/messages`, body, params);
    apiRequests.add(1);
    check(response, {
      "sluice says what it planned": (r) => /sluice-first-token;dur=\d/.test(r.headers["Server-Timing"] || ""),
    });
    if (response.status === 200) return;
    apiRefused.add(1);
    // As the SDKs do: wait what retry-after says, else a second.
    const wait = Number(response.headers["Retry-After"] || "1");
    sleep(wait + 0.05);
  }
}

export function teardown(data) {
  const ended = http.post(`${ADMIN_URL}/runs/${data.run}/end`);
  check(ended, { "run ended": (r) => r.status === 200 });
  const early = ended.json("report.verdicts").find((v) => v.rule === "no_early_retries");
  earlyRetries.add(early.count);
}

export function handleSummary(data) {
  const run = data.setup_data.run;
  const report = http.get(`${ADMIN_URL}/runs/${run}/report`);
  const page = http.get(`${ADMIN_URL}/runs/${run}/report.html`);
  const counted = (name) => (data.metrics[name] ? data.metrics[name].values.count : 0);
  const k6Side = { requests: counted("api_requests"), refused: counted("api_refused") };
  return {
    [`${OUT_DIR}/k6-summary.json`]: JSON.stringify(data, null, 2),
    [`${OUT_DIR}/k6-counts.json`]: JSON.stringify(k6Side),
    [`${OUT_DIR}/sluice-report.json`]: report.body,
    [`${OUT_DIR}/sluice-report.html`]: page.body,
    stdout: `k6 counted ${k6Side.requests} requests, ${k6Side.refused} refused\n`,
  };
}
