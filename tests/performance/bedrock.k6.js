// The baseline's three scenarios and SLO thresholds (baseline.k6.js) against
// Amazon Bedrock's ConverseStream: `sluice mock`, or sluice proxy in front of
// a Bedrock endpoint that needs no SigV4 signature from k6 (k6 does not sign
// AWS requests; see docs/proxy.md, "Bedrock"). The response is AWS's binary
// event stream: the script reads it as bytes and decodes its frames itself.
//
//   k6 run tests/performance/bedrock.k6.js
//   k6 run tests/performance/bedrock.k6.js --env SCENARIO=tool_call
//
// Environment:
//   BASE_URL           default http://localhost:3456
//   AWS_BEARER_TOKEN_BEDROCK  a Bedrock API key, sent as a bearer token when set
//   MODEL              the model id, default anthropic.claude-sonnet-4-5-20250929-v1:0
//   SCENARIO           run only simple_query, tool_call or error_injection
//   SCENARIO_DURATION  length of each scenario, default 30s (CI uses less)
//   THINK_TIME         seconds each virtual user waits between requests, default 1
//
// What k6 can measure: k6 reads a response whole, so the first token is seen
// as time to first byte (`timings.waiting`). sluice holds the response head
// until the first token is released, so that figure is the first-token delay
// (100 ms by default); `tool_invocation` is first_token_delay +
// tool_call_delay (600 ms by default).
import http from "k6/http";
import exec from "k6/execution";
import { sleep } from "k6";
import { firstTokenLatency, options as scenarioOptions, record as recordOutcome, toolInvocation } from "./scenarios.js";

const BASE_URL = __ENV.BASE_URL || "http://localhost:3456";
const THINK_TIME = Number(__ENV.THINK_TIME ?? 1);
const MODEL = encodeURIComponent(__ENV.MODEL || "anthropic.claude-sonnet-4-5-20250929-v1:0");

export const options = scenarioOptions(__ENV.SCENARIO_DURATION || "30s", __ENV.SCENARIO);

const WEATHER_TOOL = {
  tools: [
    {
      toolSpec: {
        name: "get_weather",
        description: "Get the current weather for a city",
        inputSchema: {
          json: {
            type: "object",
            properties: { city: { type: "string" }, unit: { type: "string", enum: ["celsius", "fahrenheit"] } },
            required: ["city"],
          },
        },
      },
    },
  ],
};

/**
 * The `:event-type` (or `:exception-type`) of each frame of an event stream:
 * a 12-byte prelude (total and headers length, big-endian, and a CRC), the
 * headers (name length, name, value type, and for a string, 7, its length
 * and value), the payload and a CRC. The CRCs are not checked here.
 */
export function frameTypes(buffer) {
  const view = new DataView(buffer);
  const bytes = new Uint8Array(buffer);
  const text = (from, length) => String.fromCharCode(...bytes.subarray(from, from + length));
  const types = [];
  for (let at = 0; at + 12 <= bytes.length; ) {
    const total = view.getUint32(at);
    const headersEnd = at + 12 + view.getUint32(at + 4);
    if (total < 16 || at + total > bytes.length) break;
    for (let h = at + 12; h < headersEnd; ) {
      const nameLength = bytes[h];
      const name = text(h + 1, nameLength);
      const type = bytes[h + 1 + nameLength];
      if (type !== 7) break; // Bedrock's headers are all strings
      const valueLength = view.getUint16(h + 2 + nameLength);
      const value = text(h + 4 + nameLength, valueLength);
      if (name === ":event-type" || name === ":exception-type") types.push(value);
      h += 4 + nameLength + valueLength;
    }
    at += total;
  }
  return types;
}

function ask(body, scenario = exec.scenario.name) {
  // The scenario's name lets a sluice config route each scenario to its own
  // profile (config/examples/k6-scenarios.toml); other servers ignore it.
  const headers = { "content-type": "application/json", "x-k6-scenario": scenario };
  // A Bedrock API key (a bearer token) when the target needs one: k6 cannot sign SigV4.
  if (__ENV.AWS_BEARER_TOKEN_BEDROCK) headers.authorization = `Bearer ${__ENV.AWS_BEARER_TOKEN_BEDROCK}`;
  return http.post(`${BASE_URL}/model/${MODEL}/converse-stream`, JSON.stringify(body), {
    headers,
    responseType: "binary",
  });
}

/** Records the outcome; a request succeeds when it is a 200 whose stream reached `messageStop`. */
function record(response, expectations) {
  return recordOutcome(response, (body) => frameTypes(body).includes("messageStop"), expectations);
}

export function setup() {
  const probe = ask({ messages: [{ role: "user", content: [{ text: "ping" }] }] }, "setup");
  if (probe.status === 0) {
    throw new Error(`Mock server not reachable at ${BASE_URL}`);
  }
}

export function simpleQuery() {
  const response = ask({
    messages: [{ role: "user", content: [{ text: "Summarise today's priorities in one paragraph." }] }],
    inferenceConfig: { maxTokens: 1024 },
  });
  if (record(response)) firstTokenLatency.add(response.timings.waiting);
  sleep(THINK_TIME);
}

export function toolCall() {
  const response = ask({
    messages: [{ role: "user", content: [{ text: "What is the weather in Paris?" }] }],
    toolConfig: WEATHER_TOOL,
    inferenceConfig: { maxTokens: 1024 },
  });
  const called = { "tool call streamed": (r) => r.body != null && frameTypes(r.body).includes("contentBlockStart") };
  if (record(response, called)) toolInvocation.add(response.timings.waiting);
  sleep(THINK_TIME);
}

export function errorInjection() {
  const response = ask({
    messages: [{ role: "user", content: [{ text: "Hello" }] }],
    inferenceConfig: { maxTokens: 256 },
  });
  record(response);
  sleep(THINK_TIME);
}
