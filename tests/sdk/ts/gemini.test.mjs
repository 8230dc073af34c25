// The official TypeScript Gemini SDK (@google/genai) against sluice mock's
// Gemini API: streamed text, a function call, and an injected error as the
// SDK's ApiError (docs/mock.md, "The Gemini mock").
import { test } from "node:test";
import assert from "node:assert/strict";
import { ApiError, GoogleGenAI, Type } from "@google/genai";
import { startSluice } from "../../support/sluice.mjs";

const FAST =
  'error_rate = 0\nfirst_token_delay = "5ms"\ntoken_interval = "1ms"\ntool_call_delay = "5ms"\n' +
  "tokens_per_response = 8\n";

function client(url) {
  return new GoogleGenAI({ apiKey: "test-key", httpOptions: { baseUrl: url } });
}

test("streams text, one chunk a token, the last with the finish reason", async () => {
  const ai = client(await startSluice(FAST));
  const chunks = [];
  for await (const chunk of await ai.models.generateContentStream({ model: "gemini-2.5-flash", contents: "hi" })) {
    chunks.push(chunk);
  }
  assert.equal(chunks.length, 8);
  assert.equal(chunks.map((c) => c.text).join("").split(" ").filter(Boolean).length, 8);
  assert.equal(chunks.at(-1).candidates[0].finishReason, "STOP");
});

test("a function call comes whole", async () => {
  const ai = client(await startSluice(FAST));
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

test("an injected 529 is Gemini's 503 UNAVAILABLE, raised as ApiError", async () => {
  const url = await startSluice(FAST.replace("error_rate = 0", "error_rate = 1.0") + '[[faults]]\nkind = "http"\nstatus = 529\n');
  const ai = client(url);
  await assert.rejects(
    ai.models.generateContent({ model: "gemini-2.5-flash", contents: "hi" }),
    (error) => error instanceof ApiError && error.status === 503 && /UNAVAILABLE/.test(error.message),
  );
});
