// The baseline's three scenarios and SLO thresholds (baseline.k6.js) against
// OpenAI Chat Completions: `sluice mock`, or anything that speaks
// `POST /v1/chat/completions` (vLLM, Ollama, LiteLLM, a gateway, sluice proxy
// in front of one).
//
//   k6 run tests/performance/openai.k6.js
//   k6 run tests/performance/openai.k6.js --env SCENARIO=tool_call
//   k6 run tests/performance/openai.k6.js --env BASE_URL=http://localhost:8080
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
// (100 ms by default): the role chunk goes out with the first token. A tool
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
  authorization: `Bearer ${__ENV.OPENAI_API_KEY || "test-key"}`,
};
const MODEL = __ENV.MODEL || "gpt-4o-mini";

const WEATHER_TOOL = {
  type: "function",
  function: {
    name: "get_weather",
    description: "Get the current weather for a city",
    parameters: {
      type: "object",
      properties: {
        city: { type: "string", description: "City name" },
        unit: { type: "string", enum: ["celsius", "fahrenheit"] },
      },
      required: ["city"],
    },
  },
};

export function setup() {
  const models = http.get(`${BASE_URL}/v1/models`, { headers: HEADERS });
  if (models.status !== 200) {
    throw new Error(`Mock server not reachable at ${BASE_URL}`);
  }
}

function ask(body) {
  // The scenario's name lets a sluice config route each scenario to its own
  // profile (config/examples/k6-scenarios.toml); other servers ignore it.
  const headers = { ...HEADERS, "x-k6-scenario": exec.scenario.name };
  return http.post(`${BASE_URL}/v1/chat/completions`, JSON.stringify(body), { headers });
}

/** Records the outcome; a request succeeds when it is a 200 whose stream completed. */
function record(response, expectations) {
  return recordOutcome(response, (body) => body.includes("data: [DONE]"), expectations);
}

export function simpleQuery() {
  const response = ask({
    model: MODEL,
    max_completion_tokens: 1024,
    stream: true,
    messages: [{ role: "user", content: "Summarise today's priorities in one paragraph." }],
  });
  if (record(response)) firstTokenLatency.add(response.timings.waiting);
  sleep(THINK_TIME);
}

export function toolCall() {
  const response = ask({
    model: MODEL,
    max_completion_tokens: 1024,
    stream: true,
    tools: [WEATHER_TOOL],
    messages: [{ role: "user", content: "What is the weather in Paris?" }],
  });
  const called = { "tool call streamed": (r) => typeof r.body === "string" && r.body.includes('"tool_calls":[{"index":0,"id":') };
  if (record(response, called)) toolInvocation.add(response.timings.waiting);
  sleep(THINK_TIME);
}

export function errorInjection() {
  const response = ask({
    model: MODEL,
    max_completion_tokens: 256,
    stream: true,
    messages: [{ role: "user", content: "Hello" }],
  });
  record(response);
  sleep(THINK_TIME);
}
