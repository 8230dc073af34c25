// What the per-API copies of the baseline (openai.k6.js, gemini.k6.js)
// share with it: the three scenarios run one after another, their SLO
// thresholds, and the metrics they record. baseline.k6.js keeps its own copy:
// it is the script users bring from the Node mock's setup, and stays whole.
import { check } from "k6";
import { Rate, Trend } from "k6/metrics";

export const firstTokenLatency = new Trend("first_token_latency", true);
export const toolInvocation = new Trend("tool_invocation", true);
export const responseTime = new Trend("response_time", true);
export const errors = new Rate("errors");

function seconds(duration) {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m)$/.exec(duration);
  if (!match) throw new Error(`SCENARIO_DURATION must look like 30s, 500ms or 2m (got ${duration})`);
  return Number(match[1]) * { ms: 0.001, s: 1, m: 60 }[match[2]];
}

/** k6 `options`: the scenarios `chosen` (or all three), each `duration` long. */
export function options(duration, chosen) {
  const all = {
    // NFR-1.1: first token latency.
    simple_query: { executor: "constant-vus", vus: 10, duration, exec: "simpleQuery" },
    // NFR-1.3: tool invocation latency.
    tool_call: { executor: "constant-vus", vus: 5, duration, exec: "toolCall" },
    // NFR-2.4: error rate.
    error_injection: { executor: "constant-vus", vus: 5, duration, exec: "errorInjection" },
  };
  const thresholds = {
    simple_query: { first_token_latency: ["p(95)<500"] },
    tool_call: { tool_invocation: ["p(95)<2000"] },
    error_injection: {},
  };
  const names = chosen ? [chosen] : Object.keys(all);
  for (const name of names) {
    if (!all[name]) throw new Error(`unknown SCENARIO ${name}; use ${Object.keys(all).join(", ")}`);
  }
  return {
    // Scenarios run one after another, as in the original setup.
    scenarios: Object.fromEntries(
      names.map((name, index) => [name, { ...all[name], startTime: `${index * seconds(duration)}s` }]),
    ),
    thresholds: Object.assign({ errors: ["rate<0.01"] }, ...names.map((name) => thresholds[name])),
  };
}

/** Records the outcome; a request succeeds when it is a 200 whose stream `completed`. */
export function record(response, completed, expectations) {
  const ok = check(response, {
    "status is 200": (r) => r.status === 200,
    "stream completed": (r) => r.body != null && completed(r.body),
    ...expectations,
  });
  errors.add(!ok);
  responseTime.add(response.timings.duration);
  return ok;
}
