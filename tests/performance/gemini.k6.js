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
import { sleep } from "k6";
import { firstTokenLatency, options as scenarioOptions, record as recordOutcome, toolInvocation } from "./scenarios.js";

const BASE_URL = __ENV.BASE_URL || "http://localhost:3456";
const THINK_TIME = Number(__ENV.THINK_TIME ?? 1);

export const options = scenarioOptions(__ENV.SCENARIO_DURATION || "30s", __ENV.SCENARIO);

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
  return recordOutcome(response, (body) => body.includes('"finishReason"'), expectations);
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
