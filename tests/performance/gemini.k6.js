// The baseline's three scenarios and SLO thresholds (baseline.k6.js) against
// the Gemini API: `sluice mock`, the real API (set GEMINI_API_KEY and
// BASE_URL=https://generativelanguage.googleapis.com), or sluice proxy in
// front of it. Streams with `:streamGenerateContent?alt=sse`, as Google's
// SDKs do.
//
//   k6 run tests/performance/gemini.k6.js
//   k6 run tests/performance/gemini.k6.js --env SCENARIO=tool_call
//
// Environment:
//   BASE_URL           default http://localhost:3456
//   SCENARIO           run only simple_query, tool_call or error_injection
//   SCENARIO_DURATION  length of each scenario, default 30s (CI uses less)
//   THINK_TIME         seconds each virtual user waits between requests, default 1
//
// What k6 can measure: k6 reads a response whole, so the first token is seen
// as time to first byte (`timings.waiting`). sluice holds the response head
// until the first token is released, so that figure is the first-token delay
// (100 ms by default). A tool
// call is the first output of a tool reply, so `tool_invocation` is
// first_token_delay + tool_call_delay (600 ms by default).
import http from "k6/http";
import exec from "k6/execution";
import { check, sleep } from "k6";
import { Rate, Trend } from "k6/metrics";

const BASE_URL = __ENV.BASE_URL || "http://localhost:3456";
const DURATION = __ENV.SCENARIO_DURATION || "30s";
const THINK_TIME = Number(__ENV.THINK_TIME ?? 1);

const firstTokenLatency = new Trend("first_token_latency", true);
const toolInvocation = new Trend("tool_invocation", true);
const responseTime = new Trend("response_time", true);
const errors = new Rate("errors");

function seconds(duration) {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m)$/.exec(duration);
  if (!match) throw new Error(`SCENARIO_DURATION must look like 30s, 500ms or 2m (got ${duration})`);
  return Number(match[1]) * { ms: 0.001, s: 1, m: 60 }[match[2]];
}

const allScenarios = {
  // NFR-1.1: first token latency.
  simple_query: { executor: "constant-vus", vus: 10, duration: DURATION, exec: "simpleQuery", offset: 0 },
  // NFR-1.3: tool invocation latency.
  tool_call: { executor: "constant-vus", vus: 5, duration: DURATION, exec: "toolCall", offset: 1 },
  // NFR-2.4: error rate.
  error_injection: { executor: "constant-vus", vus: 5, duration: DURATION, exec: "errorInjection", offset: 2 },
};

const thresholdsByScenario = {
  simple_query: { first_token_latency: ["p(95)<500"] },
  tool_call: { tool_invocation: ["p(95)<2000"] },
  error_injection: {},
};

const chosen = __ENV.SCENARIO ? [__ENV.SCENARIO] : Object.keys(allScenarios);
for (const name of chosen) {
  if (!allScenarios[name]) throw new Error(`unknown SCENARIO ${name}; use ${Object.keys(allScenarios).join(", ")}`);
}

export const options = {
  scenarios: Object.fromEntries(
    chosen.map((name, index) => {
      const { offset, ...scenario } = allScenarios[name];
      // Scenarios run one after another, as in the original setup.
      return [name, { ...scenario, startTime: `${index * seconds(DURATION)}s` }];
    }),
  ),
  thresholds: Object.assign({ errors: ["rate<0.01"] }, ...chosen.map((name) => thresholdsByScenario[name])),
};

const HEADERS = {
  "content-type": "application/json",
  "x-goog-api-key": __ENV.GEMINI_API_KEY || "test-key",
};
const MODEL = __ENV.MODEL || "gemini-2.5-flash";

const WEATHER_TOOL = {
  functionDeclarations: [
    {
      name: "get_weather",
      description: "Get the current weather for a city",
      parameters: {
        type: "OBJECT",
        properties: {
          city: { type: "STRING", description: "City name" },
          unit: { type: "STRING", enum: ["celsius", "fahrenheit"] },
        },
        required: ["city"],
      },
    },
  ],
};

export function setup() {
  const models = http.get(`${BASE_URL}/v1beta/models`, { headers: HEADERS });
  if (models.status !== 200) {
    throw new Error(`Mock server not reachable at ${BASE_URL}`);
  }
}

function ask(body) {
  // The scenario's name lets a sluice config route each scenario to its own
  // profile (config/examples/k6-scenarios.toml); other servers ignore it.
  const headers = { ...HEADERS, "x-k6-scenario": exec.scenario.name };
  return http.post(`${BASE_URL}/v1beta/models/${MODEL}:streamGenerateContent?alt=sse`, JSON.stringify(body), {
    headers,
  });
}

/** Records the outcome; a request succeeds when it is a 200 whose stream completed. */
function record(response, expectations) {
  const ok = check(response, {
    "status is 200": (r) => r.status === 200,
    "stream completed": (r) => typeof r.body === "string" && r.body.includes('"finishReason"'),
    ...expectations,
  });
  errors.add(!ok);
  responseTime.add(response.timings.duration);
  return ok;
}

export function simpleQuery() {
  const response = ask({
    contents: [{ role: "user", parts: [{ text: "Summarise today's priorities in one paragraph." }] }],
    generationConfig: { maxOutputTokens: 1024 },
  });
  if (record(response)) firstTokenLatency.add(response.timings.waiting);
  sleep(THINK_TIME);
}

export function toolCall() {
  const response = ask({
    contents: [{ role: "user", parts: [{ text: "What is the weather in Paris?" }] }],
    tools: [WEATHER_TOOL],
    generationConfig: { maxOutputTokens: 1024 },
  });
  const called = { "tool call streamed": (r) => typeof r.body === "string" && r.body.includes('"functionCall"') };
  if (record(response, called)) toolInvocation.add(response.timings.waiting);
  sleep(THINK_TIME);
}

export function errorInjection() {
  const response = ask({
    contents: [{ role: "user", parts: [{ text: "Hello" }] }],
    generationConfig: { maxOutputTokens: 256 },
  });
  record(response);
  sleep(THINK_TIME);
}
