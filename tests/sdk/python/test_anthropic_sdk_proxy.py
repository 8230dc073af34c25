"""The official Python `anthropic` SDK through `sluice proxy` in front of
`sluice mock`: the proxied streams are the mock's, byte for byte, so the SDK
must accept them exactly as it does direct."""

import time

from test_anthropic_sdk import WEATHER_TOOL, client

MOCK = 'error_rate = 0\nfirst_token_delay = "5ms"\ntoken_interval = "1ms"\ntool_call_delay = "5ms"\n'


def proxy_config(upstream: str, first_token_delay: str = "0ms") -> str:
    return (
        f'error_rate = 0\nfirst_token_delay = "{first_token_delay}"\ntoken_interval = "0ms"\n'
        f'tool_call_delay = "0ms"\n[upstream]\nurl = "{upstream}"\n'
    )


def test_streams_text_through_the_proxy(sluice):
    url = sluice(proxy_config(sluice(MOCK)), mode="proxy")
    with client(url, max_retries=0).messages.stream(
        model="claude-mock-1", max_tokens=1024, messages=[{"role": "user", "content": "Hello"}]
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens == 50
    assert final.content[0].text == text


def test_streams_a_tool_call_through_the_proxy(sluice):
    url = sluice(proxy_config(sluice(MOCK)), mode="proxy")
    with client(url, max_retries=0).messages.stream(
        model="claude-mock-1",
        max_tokens=1024,
        tools=[WEATHER_TOOL],
        messages=[{"role": "user", "content": "Weather in Paris?"}],
    ) as stream:
        final = stream.get_final_message()
    [call] = final.content
    assert call.type == "tool_use" and call.name == "get_weather"
    assert set(call.input) == {"city", "unit", "days"}


def test_the_proxy_adds_its_first_token_delay(sluice):
    url = sluice(proxy_config(sluice(MOCK), first_token_delay="300ms"), mode="proxy")
    started = time.monotonic()
    with client(url, max_retries=0).messages.stream(
        model="claude-mock-1", max_tokens=1024, messages=[{"role": "user", "content": "Hello"}]
    ) as stream:
        first = next(iter(stream.text_stream))
        waited = time.monotonic() - started
        rest = "".join(stream.text_stream)
    assert first and rest
    # mock's 5 ms + proxy's 300 ms; generous upper bound for a loaded CI machine.
    assert 0.305 <= waited < 1.5, waited
