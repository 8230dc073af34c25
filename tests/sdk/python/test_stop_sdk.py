"""The `stop` fault (a turn that ends early with a stop reason) through the
official Python SDKs: no exception, the partial output, and the reason in
each API's words (docs/faults.md)."""

import anthropic
import openai
import pytest

FAST = 'error_rate = 1.0\nfirst_token_delay = "5ms"\ntoken_interval = "1ms"\ntool_call_delay = "5ms"\n'


def stop(reason: str = "refusal") -> str:
    return FAST + f'[[faults]]\nkind = "stop"\nafter_tokens = 3\nstop_reason = "{reason}"\n'


def test_anthropic_sees_a_refusal_with_what_came_before_it(sluice):
    client = anthropic.Anthropic(base_url=sluice(stop()), api_key="sk-test", max_retries=0)
    with client.messages.stream(
        model="claude-mock-1", max_tokens=256, messages=[{"role": "user", "content": "hi"}]
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert final.stop_reason == "refusal"
    assert final.usage.output_tokens == 3
    assert final.content[0].text == text and len(text.split()) == 3
    paused = anthropic.Anthropic(base_url=sluice(stop("pause_turn")), api_key="sk-test", max_retries=0)
    with paused.messages.stream(
        model="claude-mock-1", max_tokens=256, messages=[{"role": "user", "content": "hi"}]
    ) as stream:
        assert stream.get_final_message().stop_reason == "pause_turn"


def test_openai_chat_and_responses_see_a_content_filter(sluice):
    url = sluice(stop())
    client = openai.OpenAI(base_url=f"{url}/v1", api_key="sk-test", max_retries=0)
    # The raw stream ends with finish_reason "content_filter" after the text...
    chunks = list(
        client.chat.completions.create(
            model="gpt-mock", stream=True, messages=[{"role": "user", "content": "hi"}]
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert len(text.split()) == 3
    assert chunks[-1].choices[0].finish_reason == "content_filter"
    assert chunks[-1].id == chunks[0].id, "the last chunk belongs to the stream"
    # ... which the stream helper raises as its own error.
    with pytest.raises(openai.ContentFilterFinishReasonError):
        with client.chat.completions.stream(
            model="gpt-mock", messages=[{"role": "user", "content": "hi"}]
        ) as stream:
            stream.get_final_completion()
    events = list(client.responses.create(model="gpt-mock", input="hi", stream=True))
    last = events[-1]
    assert last.type == "response.incomplete"
    assert last.response.status == "incomplete"
    assert last.response.incomplete_details.reason == "content_filter"
    assert last.sequence_number == events[-2].sequence_number + 1
    # The stream helper waits for response.completed, as it does against the API.
    with pytest.raises(RuntimeError, match="response.completed"):
        with client.responses.stream(model="gpt-mock", input="hi") as stream:
            stream.get_final_response()
