// The fleet test's load (scripts/fleet-test.sh): requests through the
// balancer in front of three sluice replicas, each response recorded as a
// point of `fleet_responses` tagged with what the checks need: the status,
// the replica that answered (the balancer's x-sluice-upstream), the config
// version (x-sluice-config), whether a fault was injected and how the body
// ended. k6 writes the points with their times (--out json).
//
// Environment: BASE_URL; PHASE = "steady" (RATE requests/s of short streams
// for DURATION) or "drain" (VUS users of long streams for DURATION).
import http from "k6/http";
import { Counter } from "k6/metrics";

const responses = new Counter("fleet_responses");
const phase = __ENV.PHASE || "steady";
const duration = __ENV.DURATION || "20s";

export const options = {
  discardResponseBodies: false,
  scenarios:
    phase === "steady"
      ? {
          steady: {
            executor: "constant-arrival-rate",
            rate: Number(__ENV.RATE || 150),
            timeUnit: "1s",
            duration,
            preAllocatedVUs: 60,
            maxVUs: 200,
          },
        }
      : { drain: { executor: "constant-vus", vus: Number(__ENV.VUS || 30), duration } },
};

const body = JSON.stringify({
  model: "fleet",
  max_tokens: 1024,
  stream: true,
  messages: [{ role: "user", content: "hi" }],
});
const params = {
  headers: { "content-type": "application/json", "x-api-key": "fleet", "anthropic-version": "2023-06-01" },
  timeout: "30s",
};

export default function () {
  const response = http.post(`${__ENV.BASE_URL}/v1/messages`, body, params);
  const text = response.body || "";
  let ended = "none";
  if (text.includes("event: message_stop")) ended = "complete";
  else if (text.includes("shutting down")) ended = "farewell";
  else if (text.length > 0) ended = "other";
  responses.add(1, {
    status: String(response.status),
    replica: response.headers["X-Sluice-Upstream"] || "none",
    version: response.headers["X-Sluice-Config"] || "none",
    fault: response.headers["X-Sluice-Fault"] ? "yes" : "no",
    duration: String(Math.round(response.timings.duration)),
    ended,
  });
}
