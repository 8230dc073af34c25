// What the client suite's Node tests share: a fast mock config, the faults
// each test injects on every request (as tests/clients/python/common.py does
// for the Python ones), and how a fault's outcome on streamText is read.
import { streamText } from "ai";

export const FAST =
  'first_token_delay = "5ms"\ntoken_interval = "1ms"\ntool_call_delay = "5ms"\ntokens_per_response = 8\nerror_rate = 0\n';

export const FAULTS = {
  http_529: 'kind = "http"\nstatus = 529',
  http_429: 'kind = "http"\nstatus = 429\nretry_after = "100ms"',
  stream_error: 'kind = "stream_error"\nafter_tokens = 3',
  truncate: 'kind = "truncate"\nafter_tokens = 3',
  reset: 'kind = "reset"\nafter_tokens = 3',
  malformed: 'kind = "malformed"\nafter_tokens = 3',
  stall: 'kind = "stall"\nafter_tokens = 3\nduration = "5s"',
};

/// FAST, with `[tool_use]` keys and `fault` (a key of FAULTS, or the text of
/// a fault) on every request.
export function config({ fault, toolUse } = {}) {
  let text = FAST;
  if (toolUse) text += `[tool_use]\n${toolUse}\n`;
  if (fault) text += `[[faults]]\n${FAULTS[fault] ?? fault}\nevery = 1\n`;
  return text;
}

/**
 * What streamText makes of a stream from `model` (retries off, a 1 s abort
 * signal): it does not throw for most faults; errors reach onError, and the
 * words of text and the finishReason are what a user's code sees.
 */
export async function streamOutcome(model, common) {
  const errors = [];
  const result = streamText({
    model,
    prompt: "hi",
    abortSignal: AbortSignal.timeout(1000),
    onError: ({ error }) => errors.push(error),
    ...common,
  });
  let text = "";
  try {
    for await (const delta of result.textStream) text += delta;
  } catch (error) {
    return { thrown: error.name, errors };
  }
  const finish = await result.finishReason.catch((error) => `rejected: ${error.name}`);
  return { words: text.trim() ? text.trim().split(/\s+/).length : 0, finish, errors };
}
