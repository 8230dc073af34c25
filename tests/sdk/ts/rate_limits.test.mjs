// The official TypeScript SDKs (@anthropic-ai/sdk, openai) against a sluice
// rate-limit bucket (docs/rate-limits.md): each reads the 429's
// retry-after-ms, waits that long, retries and succeeds, and sluice's verdict
// reports no early retry for it. Run with `node --test` from this folder.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import Anthropic from "@anthropic-ai/sdk";
import OpenAI from "openai";
import { startSluiceWithAdmin } from "../../support/sluice.mjs";

const BUCKET =
  'error_rate = 0\nfirst_token_delay = "5ms"\ntoken_interval = "1ms"\ntokens_per_response = 8\n' +
  "[rate_limits]\nrequests_per_minute = 60\nburst = 1\n";

/** sluice's verdict on the client whose key is `key`. */
async function verdict(admin, key) {
  const label = "key:" + createHash("sha256").update(key).digest("hex").slice(0, 12);
  const report = await (await fetch(`${admin}/rate-limits`)).json();
  const found = report.clients.find((c) => c.client === label);
  assert.ok(found, JSON.stringify(report));
  return found;
}

test("the Anthropic SDK waits the retry-after it is given, then succeeds", async () => {
  const { url, admin } = await startSluiceWithAdmin(BUCKET);
  const key = "sk-ts-anthropic";
  const client = new Anthropic({ baseURL: url, apiKey: key, maxRetries: 2 });
  const ask = () =>
    client.messages
      .create({ model: "claude-mock-1", max_tokens: 64, messages: [{ role: "user", content: "Hi" }] })
      .withResponse();
  const first = await ask();
  assert.equal(first.response.headers.get("anthropic-ratelimit-requests-remaining"), "0");
  const started = performance.now();
  const second = await ask();
  const elapsed = (performance.now() - started) / 1000;
  assert.equal(second.data.stop_reason, "end_turn");
  assert.ok(elapsed >= 0.9 && elapsed < 2.5, `waited ${elapsed} s`);
  const v = await verdict(admin, key);
  assert.deepEqual([v.early_retries, v.immediate_retries, v.patient_retries], [0, 0, 1]);
});

test("the OpenAI SDK waits the retry-after it is given, then succeeds", async () => {
  const { url, admin } = await startSluiceWithAdmin(BUCKET);
  const key = "sk-ts-openai";
  const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: key, maxRetries: 2 });
  const ask = () =>
    client.chat.completions
      .create({ model: "gpt-mock", messages: [{ role: "user", content: "Hi" }] })
      .withResponse();
  const first = await ask();
  assert.equal(first.response.headers.get("x-ratelimit-limit-requests"), "60");
  const started = performance.now();
  const second = await ask();
  const elapsed = (performance.now() - started) / 1000;
  assert.equal(second.data.choices[0].finish_reason, "stop");
  assert.ok(elapsed >= 0.9 && elapsed < 2.5, `waited ${elapsed} s`);
  const v = await verdict(admin, key);
  assert.deepEqual([v.early_retries, v.immediate_retries, v.patient_retries], [0, 0, 1]);
});
