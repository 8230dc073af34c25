// Thinking through the official TypeScript SDKs: the stream helpers expose
// the thinking sluice mock sends, and a signed thinking block sent back in an
// agent loop is accepted (docs/mock.md, "Thinking and reasoning").
import { test } from "node:test";
import assert from "node:assert/strict";
import Anthropic from "@anthropic-ai/sdk";
import OpenAI from "openai";
import { startSluice } from "../../support/sluice.mjs";

const FAST =
  'error_rate = 0\nfirst_token_delay = "5ms"\ntoken_interval = "1ms"\ntool_call_delay = "5ms"\n' +
  "tokens_per_response = 8\n[thinking]\ntokens = 24\n";
const THINK = { type: "enabled", budget_tokens: 1024 };
const WEATHER = {
  name: "get_weather",
  input_schema: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
};

test("the message stream yields thinking and a signature; finalMessage has the block", async () => {
  const client = new Anthropic({ baseURL: await startSluice(FAST), apiKey: "sk-test", maxRetries: 0 });
  let thinking = "";
  let signature = "";
  const stream = client.messages
    .stream({ model: "claude-mock-1", max_tokens: 2048, thinking: THINK, messages: [{ role: "user", content: "hi" }] })
    .on("thinking", (delta) => {
      thinking += delta;
    })
    .on("signature", (sig) => {
      signature = sig;
    });
  const message = await stream.finalMessage();
  assert.deepEqual(
    message.content.map((block) => block.type),
    ["thinking", "text"],
  );
  assert.equal(message.content[0].thinking, thinking);
  assert.equal(message.content[0].signature, signature);
  assert.equal(signature.length, 44);
  assert.equal(message.usage.output_tokens, 24 + 8);
});

test("an agent loop sends the signed thinking back", async () => {
  const client = new Anthropic({ baseURL: await startSluice(FAST), apiKey: "sk-test", maxRetries: 0 });
  const asked = [{ role: "user", content: "Weather in Paris?" }];
  const first = await client.messages
    .stream({ model: "claude-mock-1", max_tokens: 2048, thinking: THINK, tools: [WEATHER], messages: asked })
    .finalMessage();
  assert.deepEqual(
    first.content.map((block) => block.type),
    ["thinking", "tool_use"],
  );
  const result = { role: "user", content: [{ type: "tool_result", tool_use_id: first.content[1].id, content: "18C" }] };
  const second = await client.messages.create({
    model: "claude-mock-1",
    max_tokens: 2048,
    thinking: THINK,
    tools: [WEATHER],
    messages: [...asked, { role: "assistant", content: first.content }, result],
  });
  assert.equal(second.stop_reason, "end_turn");
  const tampered = { ...first.content[0], thinking: `${first.content[0].thinking}!` };
  await assert.rejects(
    client.messages.create({
      model: "claude-mock-1",
      max_tokens: 2048,
      thinking: THINK,
      tools: [WEATHER],
      messages: [...asked, { role: "assistant", content: [tampered, first.content[1]] }, result],
    }),
    (error) => error instanceof Anthropic.BadRequestError && /Invalid `signature`/.test(error.message),
  );
});

test("the Responses stream yields the reasoning summary", async () => {
  const url = await startSluice(FAST);
  const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: "sk-test", maxRetries: 0 });
  const stream = client.responses.stream({
    model: "gpt-mock",
    input: "Why is the sky blue?",
    reasoning: { effort: "high", summary: "auto" },
  });
  let summary = "";
  for await (const event of stream) {
    if (event.type === "response.reasoning_summary_text.delta") summary += event.delta;
  }
  const response = await stream.finalResponse();
  assert.equal(response.output[0].type, "reasoning");
  assert.equal(response.output[0].summary[0].text, summary);
  assert.ok(summary.length > 0);
  assert.equal(response.output[1].type, "message");
  assert.equal(response.usage.output_tokens_details.reasoning_tokens, 24);
});
