// The Vercel AI SDK's Google provider (`@ai-sdk/google`) against sluice
// mock's Gemini API: streamed text, a tool call, structured output, an agent
// loop that ends in text, and what each injected fault does to streamText
// (docs/clients.md, "Gemini: the Google SDKs").
import { test } from "node:test";
import assert from "node:assert/strict";
import { createGoogleGenerativeAI } from "@ai-sdk/google";
import { generateObject, generateText, stepCountIs, streamText, tool } from "ai";
import { z } from "zod";
import { startSluice } from "../../support/sluice.mjs";
import { config, streamOutcome } from "./faults.mjs";

globalThis.AI_SDK_LOG_WARNINGS = false;

/** The model, and the bodies of the requests it sends. */
async function mockModel(options) {
  const url = await startSluice(config(options));
  const sent = [];
  const recording = (input, init) => {
    sent.push(JSON.parse(init.body));
    return fetch(input, init);
  };
  const model = createGoogleGenerativeAI({ baseURL: `${url}/v1beta`, apiKey: "test-key", fetch: recording })(
    "gemini-2.5-flash",
  );
  return { model, sent };
}

const common = { maxRetries: 0, maxOutputTokens: 512 };

// What the provider passes on to Gemini: types, required fields, enums,
// minLength and formats. It drops `pattern`, `minimum`, `maximum` and the
// exclusive bounds (see the last test), so schemas here have none.
const Forecast = z.object({
  city: z.string().min(1),
  unit: z.enum(["celsius", "fahrenheit"]),
  days: z.number().int(),
  contact: z.email(),
});

const TripQuery = z.object({ city: z.string(), days: z.number().int() });

function weatherTool(calls) {
  return tool({
    description: "The weather for a city.",
    inputSchema: TripQuery,
    execute: async (input) => {
      calls.push(input);
      return `sunny in ${input.city}`;
    },
  });
}

test("a streamed text reply", async () => {
  const { model } = await mockModel();
  const result = streamText({ model, prompt: "hi", ...common });
  let text = "";
  for await (const delta of result.textStream) text += delta;
  assert.equal(text.trim().split(/\s+/).length, 8, text);
  assert.equal(await result.finishReason, "stop");
});

test("structured output validates on the first request", async () => {
  const { model, sent } = await mockModel();
  const { object } = await generateObject({ model, schema: Forecast, prompt: "forecast?", ...common });
  assert.deepEqual(Forecast.parse(object), object);
  assert.equal(sent.length, 1);
  assert.equal(sent[0].generationConfig.responseMimeType, "application/json");
});

test("a two-round agent loop ends in text", async () => {
  const calls = [];
  const { model } = await mockModel({ toolUse: "max_rounds = 2" });
  const result = await generateText({
    model,
    prompt: "weather twice?",
    tools: { get_weather: weatherTool(calls) },
    stopWhen: stepCountIs(10),
    ...common,
  });
  assert.deepEqual(
    result.steps.map((s) => s.finishReason),
    ["tool-calls", "tool-calls", "stop"],
  );
  assert.equal(calls.length, 2);
  assert.deepEqual(TripQuery.parse(calls[0]), calls[0]);
  assert.ok(result.text.length > 0);
});

test("constraints the provider drops are not met: the tool input is marked invalid", async () => {
  const Strict = z.object({ city: z.string().regex(/^[A-Z][a-z]{2,11}$/), days: z.number().int().min(1).max(7) });
  const { model, sent } = await mockModel({ toolUse: "max_rounds = 1" });
  const result = await generateText({
    model,
    prompt: "weather?",
    tools: { get_weather: tool({ inputSchema: Strict, execute: async () => "sunny" }) },
    ...common,
  });
  const parameters = sent[0].tools[0].functionDeclarations[0].parameters;
  assert.deepEqual(parameters.properties, { city: { type: "string" }, days: { type: "integer" } });
  const [call] = result.steps[0].content.filter((part) => part.type === "tool-call");
  assert.equal(call.invalid, true);
  assert.equal(call.error.name, "AI_InvalidToolInputError");
});

// What each fault does to streamText (retries off, a 1 s abort signal).
const faultOutcome = async (fault) => streamOutcome((await mockModel({ fault })).model, common);

const EXPECTED = {
  http_529: (o) => o.words === 0 && o.finish === "rejected: AI_NoOutputGeneratedError" && o.errors[0].statusCode === 503,
  http_429: (o) => o.words === 0 && o.finish === "rejected: AI_NoOutputGeneratedError" && o.errors[0].statusCode === 429,
  // The error chunk reaches onError as an APICallError; the text so far stays.
  stream_error: (o) => o.words === 3 && o.finish === "error" && o.errors[0].statusCode === 503,
  // Swallowed: three tokens, finishReason "other", no error.
  truncate: (o) => o.words === 3 && o.finish === "other" && o.errors.length === 0,
  reset: (o) => o.thrown === "AI_APICallError",
  // The bad chunk is skipped (onError gets a JSON parse error): the text
  // lacks that token and finishReason is "stop".
  malformed: (o) => o.words === 7 && o.finish === "stop" && o.errors[0].name === "AI_JSONParseError",
  stall: (o) => o.words === 3 && o.finish === "rejected: TimeoutError",
};

for (const fault of Object.keys(EXPECTED)) {
  test(`the ${fault} fault surfaces as documented`, async () => {
    const outcome = await faultOutcome(fault);
    assert.ok(EXPECTED[fault](outcome), JSON.stringify({ ...outcome, errors: outcome.errors.map(String) }));
  });
}
