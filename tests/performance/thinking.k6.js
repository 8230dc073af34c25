// A reasoning model under load: virtual users ask with extended thinking and
// threshold on time to first text, the number a reasoning app's SLO is about.
// Run against a sluice that holds the head until the first text
// (config/examples/reasoning.toml: 100 ms, then 40 thinking tokens at 10 ms,
// so the first text is due at 500 ms), or against the real API.
//
//   k6 run tests/performance/thinking.k6.js --env BASE_URL=http://localhost:3456
//
// Environment: BASE_URL, DURATION (default 10s), VUS (default 10).
import http from "k6/http";
import { check } from "k6";
import { Rate, Trend } from "k6/metrics";

const BASE_URL = __ENV.BASE_URL || "http://localhost:3456";
const timeToFirstText = new Trend("time_to_first_text", true);
const errors = new Rate("errors");

export const options = {
  scenarios: {
    reasoning_query: {
      executor: "constant-vus",
      vus: Number(__ENV.VUS || 10),
      duration: __ENV.DURATION || "10s",
    },
  },
  thresholds: {
    errors: ["rate<0.01"],
    // The configured 500 ms, and never less: thinking was not skipped.
    time_to_first_text: ["p(95)<600", "min>=500"],
  },
};

export default function () {
  const body = {
    model: "claude-sonnet-4-5",
    max_tokens: 2048,
    stream: true,
    thinking: { type: "enabled", budget_tokens: 1024 },
    messages: [{ role: "user", content: "Plan the migration in three steps." }],
  };
  const response = http.post(`${BASE_URL}/v1/messages`, JSON.stringify(body), {
    headers: { "content-type": "application/json", "x-api-key": "test-key", "anthropic-version": "2023-06-01" },
  });
  const ok = check(response, {
    "status is 200": (r) => r.status === 200,
    "thought first": (r) => typeof r.body === "string" && r.body.indexOf("thinking_delta") < r.body.indexOf("text_delta"),
    "signed": (r) => typeof r.body === "string" && r.body.includes("signature_delta"),
    "stream completed": (r) => typeof r.body === "string" && r.body.includes("event: message_stop"),
  });
  errors.add(!ok);
  if (ok) timeToFirstText.add(response.timings.waiting);
}
