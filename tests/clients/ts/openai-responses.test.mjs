// OpenAI Responses API clients against sluice mock: LangChain.js
// (`@langchain/openai`'s ChatOpenAI with `useResponsesApi`) and the OpenAI
// Agents SDK (`@openai/agents`, a streamed run). Each streams a reply, and
// each injected fault surfaces as documented (docs/clients.md); above
// all a `stream_error` rejects instead of returning the partial text: sluice
// fails a Responses stream as the live API does, with the `error` event
// nested under `error` and then `response.failed` (docs/protocols.md §3.3).
// Run with `node --test` from this folder.
import { test } from "node:test";
import assert from "node:assert/strict";
import { ChatOpenAI } from "@langchain/openai";
import { Agent, OpenAIResponsesModel, run, setTracingDisabled } from "@openai/agents";
import OpenAI from "openai";
import { startSluice } from "../../support/sluice.mjs";
import { FAULTS, config as sharedConfig } from "./faults.mjs";

// The Agents SDK would export traces to OpenAI; the suite reaches nothing but sluice.
setTracingDisabled(true);

// A shorter stall than the other suites': the TypeScript SDK's timeout covers
// the head only, so these clients wait the stall out.
const STALL = 'kind = "stall"\nafter_tokens = 3\nduration = "2s"';
const config = (fault) =>
  fault ? sharedConfig({ fault: fault === "stall" ? STALL : fault }) : sharedConfig();
const words = (text) => text.split(/\s+/).filter(Boolean).length;

async function langchainText(url) {
  const llm = new ChatOpenAI({
    model: "gpt-mock",
    apiKey: "sk-test",
    configuration: { baseURL: `${url}/v1` },
    useResponsesApi: true,
    streaming: true,
    maxRetries: 0,
    timeout: 1000,
  });
  let text = "";
  for await (const chunk of await llm.stream("hi")) text += typeof chunk.content === "string" ? chunk.content : chunk.text;
  return text;
}

async function agentsOutput(url) {
  const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: "sk-test", maxRetries: 0, timeout: 1000 });
  const agent = new Agent({ name: "brief", instructions: "Be brief.", model: new OpenAIResponsesModel(client, "gpt-mock") });
  const result = await run(agent, "hi", { stream: true });
  for await (const _ of result) {
    // drain
  }
  await result.completed;
  return String(result.finalOutput);
}

async function outcome(call, fault) {
  try {
    return await call(await startSluice(config(fault)));
  } catch (error) {
    return error;
  }
}

const STREAM_FAILED = "The server had an error while processing your request.";
const status = (code) => (e) => e instanceof OpenAI.APIError && e.status === code;
const midStream = (e) => e instanceof OpenAI.APIError && e.status === undefined && e.message === STREAM_FAILED;
const terminated = (e) => e instanceof TypeError && e.message === "terminated";
const badJson = (e) => e instanceof SyntaxError && /malformed server-sent event JSON/.test(e.message);
const noFinal = (e) => e?.constructor?.name === "ModelBehaviorError" && /did not produce a final response/.test(e.message);

const LANGCHAIN = {
  // OpenAI's own overload answer: a 529 fault reaches an OpenAI path as a 503.
  http_529: status(503),
  http_429: status(429),
  stream_error: midStream,
  // Swallowed: three tokens of text and no error.
  truncate: (o) => typeof o === "string" && words(o) === 3,
  reset: terminated,
  malformed: badJson,
  // The TypeScript SDK's timeout covers the head only: the stall ends cleanly after 2 s.
  stall: (o) => typeof o === "string" && words(o) === 3,
};

const AGENTS = {
  http_529: status(503),
  http_429: status(429),
  stream_error: midStream,
  truncate: noFinal,
  reset: terminated,
  malformed: badJson,
  stall: noFinal,
};

test("both stream a reply", async () => {
  assert.equal(words(await outcome(langchainText)), 8);
  assert.equal(words(await outcome(agentsOutput)), 8);
});

for (const fault of Object.keys(FAULTS)) {
  test(`LangChain.js: ${fault} surfaces as documented`, async () => {
    const o = await outcome(langchainText, fault);
    assert.ok(LANGCHAIN[fault](o), String(o?.stack ?? o));
  });
  test(`OpenAI Agents SDK (JS): ${fault} surfaces as documented`, async () => {
    const o = await outcome(agentsOutput, fault);
    assert.ok(AGENTS[fault](o), String(o?.stack ?? o));
  });
}
