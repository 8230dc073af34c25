// The official TypeScript Gemini SDK (@google/genai) against sluice mock's
// Gemini API and Vertex AI paths: streamed text, a function call,
// embeddings, and every fault kind as the SDK reports it (docs/clients.md,
// "Gemini: the Google SDKs").
import { test } from "node:test";
import assert from "node:assert/strict";
import { ApiError, GoogleGenAI, Type } from "@google/genai";
import { OAuth2Client } from "google-auth-library";
import { startSluice } from "../../support/sluice.mjs";

const FAST =
  'error_rate = 0\nfirst_token_delay = "5ms"\ntoken_interval = "1ms"\ntool_call_delay = "5ms"\n' +
  "tokens_per_response = 8\n";
const FAULTY = FAST.replace("error_rate = 0", "error_rate = 1.0") + "[[faults]]\n";

function client(url, { vertex = false, timeout } = {}) {
  const httpOptions = { baseUrl: url, timeout };
  if (!vertex) {
    return new GoogleGenAI({ apiKey: "test-key", httpOptions });
  }
  // A bearer token that does not expire, so google-auth never refreshes it:
  // sluice accepts any and verifies none.
  const authClient = new OAuth2Client();
  authClient.setCredentials({ access_token: "ya29.test", expiry_date: Date.now() + 3_600_000 });
  return new GoogleGenAI({
    vertexai: true,
    project: "test-project",
    location: "us-central1",
    googleAuthOptions: { authClient },
    httpOptions,
  });
}

/** Streams a reply; resolves to the chunks received and what was thrown. */
async function streamThrough(ai) {
  const chunks = [];
  try {
    for await (const chunk of await ai.models.generateContentStream({ model: "gemini-2.5-flash", contents: "hi" })) {
      chunks.push(chunk);
    }
    return { chunks, error: undefined };
  } catch (error) {
    return { chunks, error };
  }
}

for (const vertex of [false, true]) {
  const api = vertex ? "Vertex AI" : "the Gemini API";

  test(`${api}: streams text, one chunk a token, the last with the finish reason`, async () => {
    const { chunks, error } = await streamThrough(client(await startSluice(FAST), { vertex }));
    assert.equal(error, undefined);
    assert.equal(chunks.length, 8);
    assert.equal(chunks.map((c) => c.text).join("").split(" ").filter(Boolean).length, 8);
    assert.equal(chunks.at(-1).candidates[0].finishReason, "STOP");
  });

  test(`${api}: a function call comes whole`, async () => {
    const ai = client(await startSluice(FAST), { vertex });
    const response = await ai.models.generateContent({
      model: "gemini-2.5-flash",
      contents: "Weather in Paris?",
      config: {
        tools: [
          {
            functionDeclarations: [
              {
                name: "get_weather",
                parameters: { type: Type.OBJECT, properties: { city: { type: Type.STRING } }, required: ["city"] },
              },
            ],
          },
        ],
      },
    });
    const [call] = response.functionCalls;
    assert.equal(call.name, "get_weather");
    assert.equal(typeof call.args.city, "string");
  });

  test(`${api}: embeddings are one vector per text`, async () => {
    const ai = client(await startSluice(FAST), { vertex });
    const model = vertex ? "text-embedding-005" : "gemini-embedding-001";
    const result = await ai.models.embedContent({ model, contents: ["a cat", "a dog", "a cat"], config: { outputDimensionality: 8 } });
    const vectors = result.embeddings.map((e) => e.values);
    assert.deepEqual(vectors.map((v) => v.length), [8, 8, 8]);
    assert.deepEqual(vectors[0], vectors[2]);
    assert.notDeepEqual(vectors[0], vectors[1]);
  });

  for (const [fault, status, name] of [
    ['kind = "http"\nstatus = 529', 503, "UNAVAILABLE"],
    ['kind = "http"\nstatus = 429\nretry_after = "2s"', 429, "RESOURCE_EXHAUSTED"],
    ['kind = "http"\nstatus = 500', 500, "INTERNAL"],
  ]) {
    test(`${api}: an injected ${fault.split("\n")[1]} is ApiError ${status} ${name}`, async () => {
      const ai = client(await startSluice(FAULTY + fault + "\n"), { vertex });
      const { chunks, error } = await streamThrough(ai);
      assert.equal(chunks.length, 0);
      assert.ok(error instanceof ApiError, String(error));
      assert.equal(error.status, status);
      assert.match(error.message, new RegExp(name));
      if (status === 429) assert.match(error.message, /"retryDelay":"2s"/);
    });
  }

  // What each stream fault does: [fault, chunks received, what is thrown].
  const streamFaults = [
    ['kind = "stream_error"\nafter_tokens = 3', 3, (e) => e instanceof ApiError && e.status === 503],
    // Unnoticed: three chunks, then the end, no finish reason on the last.
    ['kind = "truncate"\nafter_tokens = 3', 3, undefined],
    ['kind = "reset"\nafter_tokens = 3', 3, (e) => e instanceof TypeError && e.message === "terminated"],
    ['kind = "malformed"\nafter_tokens = 3', 3, (e) => e instanceof SyntaxError],
    // No duration: open until the client's 1 s timeout aborts it.
    ['kind = "stall"\nafter_tokens = 3', 3, (e) => e.name === "AbortError"],
    ['kind = "slow_head"\nduration = "30s"', 0, (e) => e.name === "AbortError"],
    ['kind = "stop"\nafter_tokens = 3', 4, undefined],
  ];
  for (const [fault, received, thrown] of streamFaults) {
    test(`${api}: ${fault.replaceAll("\n", "; ")}`, async () => {
      const ai = client(await startSluice(FAULTY + fault + "\n"), { vertex, timeout: 1000 });
      const { chunks, error } = await streamThrough(ai);
      assert.equal(chunks.length, received);
      if (thrown) {
        assert.ok(error && thrown(error), `thrown: ${error}`);
      } else {
        assert.equal(error, undefined);
      }
      const finish = chunks.at(-1)?.candidates[0].finishReason;
      assert.equal(finish, fault.includes("stop") ? "SAFETY" : undefined);
    });
  }
}
