// What the client suite's Node tests share: a fast mock config and the
// faults each test injects on every request (as tests/clients/python/common.py
// does for the Python ones).

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
