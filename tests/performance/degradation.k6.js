// A provider that degrades on schedule: virtual users stream Messages while
// sluice's [timeline] (tests/performance/degradation.toml) moves from
// baseline to degraded (a 2 s ramp to 600 ms first tokens and 30 ms gaps),
// to an outage (half the requests get 529), and back. Each response names
// the phase it was served in (x-sluice-phase); the metrics are tagged with
// it, and the thresholds hold per phase (docs/timeline.md).
//
//   sluice mock --config tests/performance/degradation.toml --admin-listen 127.0.0.1:9090
//   k6 run tests/performance/degradation.k6.js --env BASE_URL=http://localhost:3456 \
//     --env ADMIN_URL=http://127.0.0.1:9090
//
// Environment: BASE_URL, ADMIN_URL, DURATION (default 18s), VUS (default 10).
import http from "k6/http";
import { check } from "k6";
import { Counter, Rate, Trend } from "k6/metrics";

const BASE_URL = __ENV.BASE_URL || "http://localhost:3456";
const ADMIN_URL = __ENV.ADMIN_URL || "http://127.0.0.1:9090";
const timeToFirstToken = new Trend("ttft", true);
const streamTime = new Trend("stream_time", true);
const failed = new Rate("failed");
const served = new Counter("served");
const PHASES = ["baseline", "degraded", "outage", "recovery"];

const perPhase = {};
for (const phase of PHASES) {
  perPhase[`served{phase:${phase}}`] = ["count>0"];
  perPhase[`ttft{phase:${phase}}`] = ["p(95)>0"];
  perPhase[`stream_time{phase:${phase}}`] = ["p(95)>0"];
  perPhase[`failed{phase:${phase}}`] = ["rate>=0"];
}

export const options = {
  scenarios: {
    chat: {
      executor: "constant-vus",
      vus: Number(__ENV.VUS || 10),
      duration: __ENV.DURATION || "18s",
    },
  },
  thresholds: Object.assign(perPhase, {
    // What the application would see of its provider, phase by phase.
    "ttft{phase:baseline}": ["p(95)<400", "min>=100"],
    // The ramp's first requests are still fast, and fast requests are many:
    // the slow tail shows the phase.
    "ttft{phase:degraded}": ["p(90)>=550"],
    "stream_time{phase:degraded}": ["p(90)>=1100"], // 600 ms + 19 gaps of 30 ms
    "failed{phase:baseline}": ["rate==0"],
    "failed{phase:degraded}": ["rate==0"],
    "failed{phase:outage}": ["rate>0.3", "rate<0.7"],
    // error_rate ramps from the outage's 0.5 back to 0 in the first 2 s.
    "failed{phase:recovery}": ["rate<0.3"],
    "ttft{phase:recovery}": ["p(95)<400"],
  }),
};

export function setup() {
  const started = http.post(`${ADMIN_URL}/timeline/start`);
  check(started, { "timeline started": (r) => r.status === 200 && r.json("phase") === "baseline" });
}

export default function () {
  const body = {
    model: "claude-sonnet-4-5",
    max_tokens: 256,
    stream: true,
    messages: [{ role: "user", content: "How is the weather?" }],
  };
  const response = http.post(`${BASE_URL}/v1/messages`, JSON.stringify(body), {
    headers: { "content-type": "application/json", "x-api-key": "test-key", "anthropic-version": "2023-06-01" },
  });
  const tags = { phase: response.headers["X-Sluice-Phase"] || "unknown" };
  const ok = check(response, {
    "status is 200": (r) => r.status === 200,
    "stream completed": (r) => typeof r.body === "string" && r.body.includes("event: message_stop"),
  });
  served.add(1, tags);
  failed.add(!ok, tags);
  if (ok) {
    // The head is held until the first token: waiting is the time to it.
    timeToFirstToken.add(response.timings.waiting, tags);
    streamTime.add(response.timings.duration, tags);
  }
}
