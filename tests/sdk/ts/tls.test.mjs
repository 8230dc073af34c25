// The official TypeScript SDKs over sluice's TLS listener (docs/tls.md),
// verification on, the generated CA trusted through NODE_EXTRA_CA_CERTS, as
// an app in front of a stand-in host is. Node reads that variable at start,
// so each check runs in a child process given it. Run with `node --test`.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { startSluice } from "../../support/sluice.mjs";

const run = promisify(execFile);
const FAST = 'error_rate = 0\nfirst_token_delay = "5ms"\ntoken_interval = "1ms"\ntokens_per_response = 8\n';

async function tlsSluice() {
  const ca = join(mkdtempSync(join(tmpdir(), "sluice-ca-")), "ca.pem");
  const url = await startSluice(`${FAST}[tls]\nself_signed = true\nca_out = "${ca}"\n`);
  for (let i = 0; i < 100 && !existsSync(ca); i++) await new Promise((r) => setTimeout(r, 20));
  return { url, ca };
}

/** Runs `script` (an ES module) in a child Node with `env`; resolves to its stdout. */
async function child(script, env) {
  const { stdout } = await run(process.execPath, ["--input-type=module", "-e", script], {
    cwd: import.meta.dirname,
    env: { ...process.env, ...env },
    timeout: 30_000,
  });
  return stdout.trim();
}

const anthropicStream = `
import Anthropic from "@anthropic-ai/sdk";
const client = new Anthropic({ baseURL: process.env.URL, apiKey: "sk-test", maxRetries: 0 });
const stream = client.messages.stream({ model: "m", max_tokens: 64, messages: [{ role: "user", content: "Hi" }] });
let text = "";
stream.on("text", (t) => (text += t));
const final = await stream.finalMessage();
console.log(final.stop_reason, text.length > 0);
`;

test("the Anthropic SDK streams over TLS with the CA from NODE_EXTRA_CA_CERTS", async () => {
  const { url, ca } = await tlsSluice();
  assert.ok(url.startsWith("https://"));
  assert.equal(await child(anthropicStream, { URL: url, NODE_EXTRA_CA_CERTS: ca }), "end_turn true");
  // Verification is on: without the CA the connection is refused.
  await assert.rejects(child(anthropicStream, { URL: url, NODE_EXTRA_CA_CERTS: "" }));
});

test("the OpenAI SDK streams over TLS with the CA from NODE_EXTRA_CA_CERTS", async () => {
  const { url, ca } = await tlsSluice();
  const script = `
import OpenAI from "openai";
const client = new OpenAI({ baseURL: process.env.URL + "/v1", apiKey: "sk-test", maxRetries: 0 });
const stream = await client.chat.completions.create({ model: "gpt-mock", stream: true, messages: [{ role: "user", content: "Hi" }] });
let finish;
for await (const chunk of stream) finish = chunk.choices[0]?.finish_reason ?? finish;
console.log(finish);
`;
  assert.equal(await child(script, { URL: url, NODE_EXTRA_CA_CERTS: ca }), "stop");
});
