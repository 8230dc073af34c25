"""Thinking and reasoning through the official Python SDKs: their stream
helpers expose the thinking the mock sends, and an agent loop that sends the
signed thinking blocks back goes on to its end (docs/mock.md, "Thinking and
reasoning"). Timing is checked in Rust on a paused clock (tests/thinking.rs).
"""

import anthropic
import openai
import pytest

FAST = (
    'error_rate = 0\nfirst_token_delay = "5ms"\ntoken_interval = "1ms"\ntool_call_delay = "5ms"\n'
    "tokens_per_response = 8\n[thinking]\ntokens = 24\n"
)

THINK = {"type": "enabled", "budget_tokens": 1024}

WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Current weather for a city",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}


def anthropic_client(url: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=url, api_key="sk-test", max_retries=0)


def test_the_stream_helper_yields_thinking_and_the_final_message_has_it_signed(sluice):
    url = sluice(FAST)
    with anthropic_client(url).messages.stream(
        model="claude-mock-1",
        max_tokens=2048,
        thinking=THINK,
        messages=[{"role": "user", "content": "Why is the sky blue?"}],
    ) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_message()
    assert kinds.count("thinking") == 24, "one thinking event per thinking_delta"
    assert kinds.count("signature") == 1
    assert [block.type for block in final.content] == ["thinking", "text"]
    thinking = final.content[0]
    assert len(thinking.thinking) > 0
    assert len(thinking.signature) == 44, "a base64 SHA-256"
    assert final.usage.output_tokens == 24 + 8


def test_a_non_streamed_message_has_the_same_blocks(sluice):
    url = sluice(FAST)
    message = anthropic_client(url).messages.create(
        model="claude-mock-1",
        max_tokens=2048,
        thinking={"type": "adaptive"},
        messages=[{"role": "user", "content": "hi"}],
    )
    assert [block.type for block in message.content] == ["thinking", "text"]
    assert message.content[0].signature


def test_an_agent_loop_sends_thinking_back_and_a_changed_block_is_refused(sluice):
    url = sluice(FAST)
    client = anthropic_client(url)
    asked = [{"role": "user", "content": "Weather in Paris?"}]
    first = client.messages.create(
        model="claude-mock-1", max_tokens=2048, thinking=THINK, tools=[WEATHER_TOOL], messages=asked
    )
    assert [block.type for block in first.content] == ["thinking", "tool_use"]
    call = first.content[1]
    result = {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "18C"}]}
    history = asked + [{"role": "assistant", "content": first.content}, result]
    second = client.messages.create(
        model="claude-mock-1", max_tokens=2048, thinking=THINK, tools=[WEATHER_TOOL], messages=history
    )
    assert second.stop_reason == "end_turn"
    assert [block.type for block in second.content] == ["text"], "no new thinking without interleaving"

    tampered = first.content[0].model_dump()
    tampered["thinking"] += " (edited)"
    bad = asked + [{"role": "assistant", "content": [tampered, first.content[1]]}, result]
    with pytest.raises(anthropic.BadRequestError) as refused:
        client.messages.create(
            model="claude-mock-1", max_tokens=2048, thinking=THINK, tools=[WEATHER_TOOL], messages=bad
        )
    assert "Invalid `signature` in `thinking` block" in str(refused.value)

    dropped = asked + [{"role": "assistant", "content": [first.content[1]]}, result]
    with pytest.raises(anthropic.BadRequestError) as refused:
        client.messages.create(
            model="claude-mock-1", max_tokens=2048, thinking=THINK, tools=[WEATHER_TOOL], messages=dropped
        )
    assert "Expected `thinking` or `redacted_thinking`" in str(refused.value)


def test_the_api_constraints_are_refused_as_the_api_refuses_them(sluice):
    url = sluice(FAST)
    client = anthropic_client(url)
    with pytest.raises(anthropic.BadRequestError) as refused:
        client.messages.create(
            model="claude-mock-1",
            max_tokens=1024,
            thinking=THINK,
            messages=[{"role": "user", "content": "hi"}],
        )
    assert "`max_tokens` must be greater than `thinking.budget_tokens`" in str(refused.value)
    with pytest.raises(anthropic.BadRequestError) as refused:
        client.messages.create(
            model="claude-mock-1",
            max_tokens=2048,
            thinking=THINK,
            tools=[WEATHER_TOOL],
            tool_choice={"type": "any"},
            messages=[{"role": "user", "content": "hi"}],
        )
    assert "Thinking may not be enabled when tool_choice forces tool use." in str(refused.value)


def test_the_responses_stream_helper_yields_the_reasoning_summary(sluice):
    url = sluice(FAST)
    client = openai.OpenAI(base_url=f"{url}/v1", api_key="sk-test", max_retries=0)
    with client.responses.stream(
        model="gpt-mock",
        input="Why is the sky blue?",
        reasoning={"effort": "high", "summary": "auto"},
        include=["reasoning.encrypted_content"],
    ) as stream:
        summary = "".join(
            event.delta for event in stream if event.type == "response.reasoning_summary_text.delta"
        )
        final = stream.get_final_response()
    reasoning = final.output[0]
    assert reasoning.type == "reasoning"
    assert reasoning.summary[0].text == summary and summary
    assert reasoning.encrypted_content
    assert final.output[1].type == "message"
    assert final.output_text
    assert final.usage.output_tokens_details.reasoning_tokens == 24


def test_chat_reasoning_tokens_are_counted(sluice):
    url = sluice(FAST)
    client = openai.OpenAI(base_url=f"{url}/v1", api_key="sk-test", max_retries=0)
    completion = client.chat.completions.create(
        model="gpt-mock",
        reasoning_effort="low",
        messages=[{"role": "user", "content": "hi"}],
    )
    assert completion.usage.completion_tokens_details.reasoning_tokens == 6
    assert completion.usage.completion_tokens == 6 + 8
    assert completion.choices[0].message.content
