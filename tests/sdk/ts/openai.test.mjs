// The official TypeScript SDK (openai) accepts sluice mock's OpenAI streams:
// its ChatCompletionStream and ResponseStream accumulators are strict (one
// role, a call's type in its first fragment, exactly one finish_reason).
// Run with `node --test` from this folder.
import { test } from "node:test";
import assert from "node:assert/strict";
import OpenAI from "openai";
import { startSluice } from "../../support/sluice.mjs";

const FAST =
  'error_rate = 0\nfirst_token_delay = "5ms"\ntoken_interval = "1ms"\ntool_call_delay = "5ms"\ntokens_per_response = 12\n';

const client = async (config = FAST, maxRetries = 2) =>
  new OpenAI({ baseURL: `${await startSluice(config)}/v1`, apiKey: "sk-test", maxRetries });

const weather = {
  type: "function",
  function: {
    name: "get_weather",
    parameters: {
      type: "object",
      properties: { city: { type: "string" }, days: { type: "integer", minimum: 1, maximum: 7 } },
      required: ["city", "days"],
      additionalProperties: false,
    },
  },
};

test("the chat stream helper accumulates text and usage", async () => {
  const openai = await client();
  let text = "";
  const stream = openai.chat.completions
    .stream({
      model: "gpt-mock",
      messages: [{ role: "user", content: "Hi" }],
      stream_options: { include_usage: true },
    })
    .on("content.delta", ({ delta }) => {
      text += delta;
    });
  const completion = await stream.finalChatCompletion();
  assert.equal(completion.choices[0].finish_reason, "stop");
  assert.equal(completion.choices[0].message.content, text);
  assert.equal(completion.usage.completion_tokens, 12);
});

test("the chat stream helper accumulates a tool call whose arguments parse", async () => {
  const openai = await client();
  const stream = openai.chat.completions.stream({
    model: "gpt-mock",
    messages: [{ role: "user", content: "Weather?" }],
    tools: [weather],
    tool_choice: "required",
  });
  const completion = await stream.finalChatCompletion();
  const call = completion.choices[0].message.tool_calls[0];
  assert.equal(completion.choices[0].finish_reason, "tool_calls");
  assert.equal(call.type, "function");
  assert.equal(call.function.name, "get_weather");
  const args = JSON.parse(call.function.arguments);
  assert.ok(args.days >= 1 && args.days <= 7);
});

test("the responses stream helper gives the final response", async () => {
  const openai = await client();
  const stream = openai.responses.stream({ model: "gpt-mock", input: "Hi" });
  const response = await stream.finalResponse();
  assert.equal(response.status, "completed");
  assert.ok(response.output_text.length > 0);
  const withTool = await openai.responses
    .stream({
      model: "gpt-mock",
      input: "Weather?",
      tools: [{ type: "function", ...weather.function }],
      tool_choice: "required",
    })
    .finalResponse();
  assert.equal(withTool.output[0].type, "function_call");
  assert.ok(JSON.parse(withTool.output[0].arguments).city !== undefined);
});

test("embeddings decode from the SDK's default base64", async () => {
  const openai = await client();
  const first = await openai.embeddings.create({ model: "e", input: "a cat", dimensions: 16 });
  const again = await openai.embeddings.create({ model: "e", input: "a cat", dimensions: 16, encoding_format: "float" });
  assert.equal(first.data[0].embedding.length, 16);
  first.data[0].embedding.forEach((x, i) => assert.ok(Math.abs(x - again.data[0].embedding[i]) < 1e-6));
});

test("an injected 429 is a RateLimitError and a mid-stream error an APIError", async () => {
  const limited = await client(FAST + '[[faults]]\nkind = "http"\nstatus = 429\nfirst_requests = 5\n', 0);
  await assert.rejects(
    limited.chat.completions.create({ model: "gpt-mock", messages: [{ role: "user", content: "Hi" }] }),
    (error) => error instanceof OpenAI.RateLimitError && error.status === 429,
  );
  const broken = await client(FAST + '[[faults]]\nkind = "stream_error"\nafter_tokens = 2\nfirst_requests = 1\n');
  const stream = await broken.chat.completions.create({
    model: "gpt-mock",
    messages: [{ role: "user", content: "Hi" }],
    stream: true,
  });
  await assert.rejects(
    (async () => {
      for await (const _ of stream) {
        // drain
      }
    })(),
    (error) => error instanceof OpenAI.APIError && error.status === undefined,
  );
});

test("a failed Responses stream rejects, raw and through the stream helper", async () => {
  // As the live API fails a response: `error` with its fields under `error`,
  // then `response.failed` (docs/protocols.md §3.3).
  const broken = await client(FAST + '[[faults]]\nkind = "stream_error"\nafter_tokens = 2\nfirst_requests = 2\n');
  const deltas = [];
  const raw = await broken.responses.create({ model: "gpt-mock", input: "Hi", stream: true });
  await assert.rejects(
    (async () => {
      for await (const event of raw) {
        if (event.type === "response.output_text.delta") deltas.push(event.delta);
      }
    })(),
    (error) =>
      error instanceof OpenAI.APIError &&
      error.status === undefined &&
      error.message === "The server had an error while processing your request.",
  );
  assert.equal(deltas.length, 2);
  const helper = broken.responses.stream({ model: "gpt-mock", input: "Hi" });
  await assert.rejects(helper.finalResponse(), (error) => error instanceof OpenAI.APIError);
});
