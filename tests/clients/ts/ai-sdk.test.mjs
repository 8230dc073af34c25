// The Vercel AI SDK (`ai` + `@ai-sdk/anthropic`) against sluice mock:
// streamed text, a tool call whose input validates, structured output (the
// native output_config.format and the forced "json" tool) streaming and not,
// agent loops that end in text, and what each injected fault does to
// streamText (docs/clients.md). Run with `node --test` from this folder.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createAnthropic } from "@ai-sdk/anthropic";
import { generateObject, generateText, stepCountIs, streamObject, streamText, tool } from "ai";
import { z } from "zod";
import { startSluice } from "../../support/sluice.mjs";
import { config, streamOutcome } from "./faults.mjs";

globalThis.AI_SDK_LOG_WARNINGS = false;

async function mockModel(options) {
  const url = await startSluice(config(options));
  return createAnthropic({ baseURL: `${url}/v1`, apiKey: "test-key" })("claude-mock-1");
}

const common = { maxRetries: 0, maxOutputTokens: 512 };

const Forecast = z.object({
  city: z.string().min(1),
  confidence: z.number().gt(0).lt(1),
  zip: z.string().regex(/^[0-9]{5}$/),
  unit: z.enum(["celsius", "fahrenheit"]),
  range: z.tuple([z.number().int(), z.number().int()]),
  contact: z.email(),
});

const WeatherQuery = z.object({
  city: z.string().regex(/^[A-Z][a-z]{2,11}$/),
  days: z.number().int().min(1).max(7),
  threshold: z.number().gt(0).lt(1),
});

function weatherTool(calls, name = "get_weather") {
  return tool({
    description: "The weather for a city.",
    inputSchema: WeatherQuery,
    execute: async (input) => {
      calls.push({ name, input });
      return `sunny in ${input.city}`;
    },
  });
}

test("a streamed text reply", async () => {
  const result = streamText({ model: await mockModel(), prompt: "hi", ...common });
  let text = "";
  for await (const delta of result.textStream) text += delta;
  assert.equal(text.trim().split(/\s+/).length, 8, text);
  assert.equal(await result.finishReason, "stop");
});

test("a tool call whose input validates", async () => {
  const calls = [];
  const result = await generateText({
    model: await mockModel(),
    prompt: "weather in Paris?",
    tools: { get_weather: weatherTool(calls) },
    ...common,
  });
  const [call] = result.toolCalls;
  assert.equal(call.toolName, "get_weather");
  assert.deepEqual(WeatherQuery.parse(call.input), call.input);
  assert.equal(calls.length, 1);
});

for (const mode of ["outputFormat", "jsonTool"]) {
  test(`structured output validates on the first request (${mode})`, async () => {
    const providerOptions = { anthropic: { structuredOutputMode: mode } };
    const model = await mockModel();
    const whole = await generateObject({ model, schema: Forecast, prompt: "forecast?", providerOptions, ...common });
    assert.deepEqual(Forecast.parse(whole.object), whole.object);
    const streamed = streamObject({ model, schema: Forecast, prompt: "forecast?", providerOptions, ...common });
    let partials = 0;
    for await (const _ of streamed.partialObjectStream) partials += 1;
    const object = await streamed.object;
    assert.deepEqual(Forecast.parse(object), object);
    assert.ok(partials > 1, `${partials} partial objects`);
  });
}

test("a two-round agent loop ends in text", async () => {
  const calls = [];
  const result = await generateText({
    model: await mockModel({ toolUse: "max_rounds = 2" }),
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
  assert.ok(result.text.length > 0);
});

test("a twenty-tool agent loop ends in text within max_rounds", async () => {
  const calls = [];
  const names = Array.from({ length: 20 }, (_, i) => (i < 2 ? `search_${i}` : `tool_${i}`));
  const tools = Object.fromEntries(names.map((name) => [name, weatherTool(calls, name)]));
  const result = await generateText({
    model: await mockModel({ toolUse: 'choice = "uniform"\nmax_rounds = 3\nparallel_calls = 2' }),
    prompt: "plan a trip",
    tools,
    stopWhen: stepCountIs(10),
    ...common,
  });
  assert.equal(result.steps.length, 4);
  assert.equal(calls.length, 6);
  assert.equal(result.finishReason, "stop");
});

// What each fault does to streamText (retries off, a 1 s abort signal):
// streamText does not throw for most of them; errors reach onError, and the
// text and finishReason are what a user's code sees.
const faultOutcome = async (fault) => streamOutcome(await mockModel({ fault }), common);

const EXPECTED = {
  http_529: (o) => o.words === 0 && o.finish === "rejected: AI_NoOutputGeneratedError" && o.errors[0].statusCode === 529,
  http_429: (o) => o.words === 0 && o.finish === "rejected: AI_NoOutputGeneratedError" && o.errors[0].statusCode === 429,
  // The error event reaches onError as its raw payload; the text so far stays.
  stream_error: (o) => o.words === 3 && o.finish === "error" && o.errors[0].type === "overloaded_error",
  // Swallowed: three tokens, finishReason "other", no error.
  truncate: (o) => o.words === 3 && o.finish === "other" && o.errors.length === 0,
  reset: (o) => o.thrown === "AI_APICallError",
  // The bad event is skipped (onError gets a JSON parse error): the text
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
