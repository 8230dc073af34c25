// The official TypeScript SDK (@anthropic-ai/sdk) accepts sluice mock's streams.
// Run with `node --test` from this folder; the binary is $SLUICE_BIN, else
// target/release/sluice, else target/debug/sluice.
import { test } from "node:test";
import assert from "node:assert/strict";
import Anthropic from "@anthropic-ai/sdk";
import { startSluice } from "../../support/sluice.mjs";

const FAST = 'error_rate = 0\nfirst_token_delay = "5ms"\ntoken_interval = "1ms"\ntool_call_delay = "5ms"\n';

test("streams text", async () => {
  const client = new Anthropic({ baseURL: await startSluice(FAST), apiKey: "sk-test" });
  let text = "";
  const stream = client.messages
    .stream({ model: "claude-mock-1", max_tokens: 1024, messages: [{ role: "user", content: "Hello" }] })
    .on("text", (delta) => {
      text += delta;
    });
  const message = await stream.finalMessage();
  assert.equal(message.stop_reason, "end_turn");
  assert.equal(message.usage.output_tokens, 50);
  assert.equal(message.content.length, 1);
  assert.equal(message.content[0].type, "text");
  assert.equal(message.content[0].text, text);
  assert.match(text, /\.$/);
});

test("streams a tool call whose input parses", async () => {
  const client = new Anthropic({ baseURL: await startSluice(FAST), apiKey: "sk-test" });
  const partials = [];
  const stream = client.messages
    .stream({
      model: "claude-mock-1",
      max_tokens: 1024,
      tools: [
        {
          name: "get_weather",
          input_schema: {
            type: "object",
            properties: {
              city: { type: "string" },
              unit: { type: "string", enum: ["celsius", "fahrenheit"] },
              stops: { type: "array", items: { type: "object", properties: { n: { type: "integer" } }, required: ["n"] } },
            },
            required: ["city", "unit", "stops"],
          },
        },
      ],
      messages: [{ role: "user", content: "Weather in Paris?" }],
    })
    .on("inputJson", (partial) => partials.push(partial));
  const message = await stream.finalMessage();
  assert.equal(message.stop_reason, "tool_use");
  const [call] = message.content;
  assert.equal(call.type, "tool_use");
  assert.equal(call.name, "get_weather");
  assert.equal(typeof call.input.city, "string");
  assert.ok(["celsius", "fahrenheit"].includes(call.input.unit));
  assert.ok(call.input.stops.every((stop) => Number.isInteger(stop.n)));
  assert.ok(partials.length > 1, "the input arrived in fragments");
});

test("an injected 529 raises OverloadedError", async () => {
  const url = await startSluice('error_rate = 1.0\n[[faults]]\nkind = "http"\nstatus = 529\n');
  const client = new Anthropic({ baseURL: url, apiKey: "sk-test", maxRetries: 0 });
  await assert.rejects(
    client.messages.create({ model: "claude-mock-1", max_tokens: 64, messages: [{ role: "user", content: "Hi" }] }),
    (error) => {
      assert.equal(error.constructor.name, "OverloadedError");
      assert.equal(error.status, 529);
      assert.equal(error.headers.get("x-sluice-fault"), "http; status=529");
      return true;
    },
  );
});
