// The AWS SDK for JavaScript's Bedrock runtime client against sluice mock's
// Bedrock API (Converse and Invoke, AWS event-stream framing): streamed
// events, a whole answer, Invoke's chunks, and every fault kind as the SDK
// reports it (docs/clients.md, "Bedrock: boto3").
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  BedrockRuntimeClient,
  ConverseCommand,
  ConverseStreamCommand,
  InvokeModelWithResponseStreamCommand,
} from "@aws-sdk/client-bedrock-runtime";
import { startSluice } from "../../support/sluice.mjs";

const FAST =
  'error_rate = 0\nfirst_token_delay = "5ms"\ntoken_interval = "1ms"\ntool_call_delay = "5ms"\n' +
  "tokens_per_response = 8\n";
const FAULTY = FAST.replace("error_rate = 0", "error_rate = 1.0") + "[[faults]]\n";
const MODEL = "anthropic.claude-sonnet-4-5-20250929-v1:0";
const HI = [{ role: "user", content: [{ text: "hi" }] }];

// Signed with made-up keys: sluice checks no signature.
function client(url) {
  return new BedrockRuntimeClient({
    region: "us-east-1",
    endpoint: url,
    credentials: { accessKeyId: "AKIDEXAMPLE", secretAccessKey: "not-a-secret" },
    maxAttempts: 1,
  });
}

/** The event names of a ConverseStream, and what was thrown. */
async function streamThrough(url) {
  const names = [];
  try {
    const response = await client(url).send(new ConverseStreamCommand({ modelId: MODEL, messages: HI }));
    for await (const event of response.stream) names.push(Object.keys(event)[0]);
    return { names, error: undefined };
  } catch (error) {
    return { names, error };
  }
}

test("ConverseStream: a delta a token, then the stop and the usage; Converse whole", async () => {
  const url = await startSluice(FAST);
  const { names, error } = await streamThrough(url);
  assert.equal(error, undefined);
  assert.deepEqual(names, [
    "messageStart",
    ...Array(8).fill("contentBlockDelta"),
    "contentBlockStop",
    "messageStop",
    "metadata",
  ]);
  const whole = await client(url).send(new ConverseCommand({ modelId: MODEL, messages: HI }));
  assert.equal(whole.stopReason, "end_turn");
  assert.equal(whole.output.message.content[0].text.split(" ").filter(Boolean).length, 8);
});

test("InvokeModelWithResponseStream: the Messages events in chunks", async () => {
  const url = await startSluice(FAST);
  const body = JSON.stringify({
    anthropic_version: "bedrock-2023-05-31",
    max_tokens: 64,
    messages: [{ role: "user", content: "hi" }],
  });
  const response = await client(url).send(new InvokeModelWithResponseStreamCommand({ modelId: MODEL, body }));
  const events = [];
  for await (const event of response.body) events.push(JSON.parse(new TextDecoder().decode(event.chunk.bytes)));
  assert.equal(events[0].type, "message_start");
  assert.equal(events.at(-1).type, "message_stop");
  assert.equal(events.at(-1)["amazon-bedrock-invocationMetrics"].outputTokenCount, 8);
});

// What each fault does to ConverseStream: [fault, events received, what is thrown].
const FAULTS = [
  ['kind = "http"\nstatus = 429', 0, (e) => e.name === "ThrottlingException" && e.$metadata.httpStatusCode === 429],
  ['kind = "http"\nstatus = 529', 0, (e) => e.name === "ServiceUnavailableException" && e.$metadata.httpStatusCode === 503],
  // The exception frame, as the SDK's modelled exception.
  ['kind = "stream_error"\nafter_tokens = 3', 4, (e) => e.name === "ServiceUnavailableException"],
  // Unnoticed: the deltas before it, no messageStop.
  ['kind = "truncate"\nafter_tokens = 3', 4, undefined],
  // A whole frame with its JSON cut: the SDK's parser throws.
  ['kind = "malformed"\nafter_tokens = 3', 4, (e) => e instanceof SyntaxError],
  // Over HTTP/2 (the SDK's transport for event streams): the stream's reset.
  ['kind = "reset"\nafter_tokens = 3', 4, (e) => /NGHTTP2_INTERNAL_ERROR/.test(e.message)],
  ['kind = "stop"\nafter_tokens = 3', 7, undefined],
];

for (const [fault, received, thrown] of FAULTS) {
  test(`ConverseStream: ${fault.replaceAll("\n", "; ")}`, async () => {
    const { names, error } = await streamThrough(await startSluice(FAULTY + fault + "\n"));
    assert.equal(names.length, received, names.join(", "));
    if (thrown) {
      assert.ok(error && thrown(error), `thrown: ${error}`);
    } else {
      assert.equal(error, undefined);
    }
    if (fault.includes("stop")) assert.deepEqual(names.slice(-3), ["contentBlockStop", "messageStop", "metadata"]);
  });
}
