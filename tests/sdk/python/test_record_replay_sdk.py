"""Record and replay with the official SDKs in an agent loop: a two-turn
tool loop recorded through `sluice proxy --record` in front of `sluice mock`,
then run again against `sluice mock --replay`. The SDKs must accept every
replayed stream, and the loop must see the same tool calls (ids included)
and the same final text, without the upstream."""

import pathlib
import time

import openai

from test_anthropic_sdk import WEATHER_TOOL, client

MOCK = 'error_rate = 0\nfirst_token_delay = "20ms"\ntoken_interval = "2ms"\ntool_call_delay = "10ms"\ntokens_per_response = 20\n'
NO_DELAYS = 'error_rate = 0\nfirst_token_delay = "0ms"\ntoken_interval = "0ms"\ntool_call_delay = "0ms"\n'
CHAT_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


def anthropic_loop(url: str) -> tuple[list, str]:
    """Ask, run the tool the model calls, answer with its result; returns the calls and the final text."""
    sdk = client(url, max_retries=0)
    messages = [{"role": "user", "content": "What is the weather in Paris?"}]
    with sdk.messages.stream(model="claude-mock-1", max_tokens=256, tools=[WEATHER_TOOL], messages=messages) as stream:
        first = stream.get_final_message()
    calls = [(block.id, block.name, block.input) for block in first.content if block.type == "tool_use"]
    assert calls, first
    messages.append({"role": "assistant", "content": first.content})
    results = [{"type": "tool_result", "tool_use_id": call_id, "content": "18 C, clear"} for call_id, _, _ in calls]
    messages.append({"role": "user", "content": results})
    with sdk.messages.stream(model="claude-mock-1", max_tokens=256, tools=[WEATHER_TOOL], messages=messages) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert final.stop_reason == "end_turn"
    return calls, text


def openai_loop(url: str) -> tuple[list, str]:
    sdk = openai.OpenAI(base_url=f"{url}/v1", api_key="sk-test", max_retries=0)
    messages = [{"role": "user", "content": "Weather in Paris?"}]
    with sdk.chat.completions.stream(model="gpt-mock", tools=[CHAT_TOOL], messages=messages) as stream:
        first = stream.get_final_completion()
    calls = [(c.id, c.function.name, c.function.arguments) for c in first.choices[0].message.tool_calls or []]
    assert calls, first
    messages.append(first.choices[0].message.model_dump(exclude_none=True))
    for call_id, _, _ in calls:
        messages.append({"role": "tool", "tool_call_id": call_id, "content": "18 C, clear"})
    with sdk.chat.completions.stream(model="gpt-mock", tools=[CHAT_TOOL], messages=messages) as stream:
        final = stream.get_final_completion()
    assert final.choices[0].finish_reason == "stop"
    return calls, final.choices[0].message.content


def test_an_agent_loop_replays_as_recorded_with_both_sdks(sluice, tmp_path: pathlib.Path):
    upstream = sluice(MOCK)
    proxy = sluice(NO_DELAYS + f'[record]\ndir = "{tmp_path}"\n[upstream]\nurl = "{upstream}"\n', mode="proxy")
    recorded = anthropic_loop(proxy), openai_loop(proxy)
    # Four exchanges; the writer renames each when it is whole.
    deadline = time.monotonic() + 10
    while len(list(tmp_path.glob("*.jsonl"))) < 4 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(list(tmp_path.glob("*.jsonl"))) == 4
    for cassette in tmp_path.glob("*.jsonl"):
        assert "sk-test" not in cassette.read_text()

    replay = sluice(NO_DELAYS + f'[replay]\ndir = "{tmp_path}"\nmatch = "last_user_message"\n')
    assert (anthropic_loop(replay), openai_loop(replay)) == recorded
