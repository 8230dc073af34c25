// Writes tests/schemas/zod.json: the JSON Schemas that zod 4 emits (draft
// 2020-12 and draft 7), that the Vercel AI SDK sends as a tool's
// input_schema, and that it sends for structured output
// (output_config.format: unsupported keywords moved into descriptions, the
// input validated against the original: `validate_against`), as the corpus
// of the mock's schema property test (src/mock/schema/tests.rs,
// `corpus_inputs_validate`).
//
//   (cd tests/clients/ts && node export-schemas.mjs)
import { writeFileSync } from "node:fs";
import { z } from "zod";
import { generateObject, zodSchema } from "ai";
import { createAnthropic } from "@ai-sdk/anthropic";

globalThis.AI_SDK_LOG_WARNINGS = false;

/** The schema the AI SDK sends in output_config.format for `schema`. */
async function structuredOutputSchema(schema) {
  let sent;
  const fetch = async (_url, init) => {
    sent = JSON.parse(init.body).output_config.format.schema;
    throw new Error("captured");
  };
  const model = createAnthropic({ baseURL: "http://127.0.0.1:9/v1", apiKey: "x", fetch })("claude-mock-1");
  await generateObject({ model, schema, prompt: "x", maxRetries: 0 }).catch(() => {});
  return sent;
}

const Address = z.object({
  street: z.string().min(3).max(40),
  zip: z.string().regex(/^[0-9]{5}$/),
  country: z.enum(["US", "CA", "MX"]),
});

const schemas = {
  Weather: z.object({
    city: z.string(),
    days: z.number().int().min(1).max(7),
    confidence: z.number().gt(0).lt(1),
    unit: z.enum(["celsius", "fahrenheit"]).default("celsius"),
  }),
  Contact: z.object({
    name: z.string().min(1),
    email: z.email(),
    id: z.uuid(),
    site: z.url().optional(),
    when: z.iso.datetime(),
    day: z.iso.date(),
    home: Address,
    nickname: z.string().nullable(),
    tags: z.array(z.string()).min(1).max(3),
  }),
  Shapes: z.object({
    shape: z.discriminatedUnion("kind", [
      z.object({ kind: z.literal("circle"), radius: z.number().positive() }),
      z.object({ kind: z.literal("square"), side: z.number().multipleOf(0.5).min(1).max(4) }),
    ]),
    pair: z.tuple([z.string(), z.number().int()]),
    counts: z.record(z.string(), z.number().int().nonnegative()),
    flags: z.array(z.boolean()).length(2),
    mixed: z.union([z.string().length(4), z.number().int().negative()]),
    level: z.literal(3),
  }),
  Strict: z.strictObject({
    code: z.string().regex(/^[A-Z]{2}-\d{4}$/),
    amount: z.number().int().multipleOf(25).min(100).max(1000),
  }),
  Search: z.object({
    query: z.string().min(1).describe("What to search for"),
    max_results: z.number().int().min(1).max(50).optional(),
    filters: z
      .object({ after: z.iso.date().optional(), site: z.string().optional() })
      .optional(),
  }),
};

const corpus = [];
for (const [name, schema] of Object.entries(schemas)) {
  corpus.push({ name: `zod ${name} (2020-12)`, schema: z.toJSONSchema(schema) });
  corpus.push({ name: `zod ${name} (draft-7)`, schema: z.toJSONSchema(schema, { target: "draft-7" }) });
  const original = await zodSchema(schema).jsonSchema;
  corpus.push({ name: `ai-sdk ${name}`, schema: original });
  // Some schemas (a discriminated union, say) are sent as a forced tool
  // instead, already in the corpus above.
  const strict = await structuredOutputSchema(schema);
  if (strict) corpus.push({ name: `ai-sdk structured output ${name}`, schema: strict, validate_against: original });
}
const out = new URL("../../schemas/zod.json", import.meta.url);
writeFileSync(out, JSON.stringify(corpus, null, 1) + "\n");
console.log(`wrote ${corpus.length} schemas to ${out.pathname}`);
