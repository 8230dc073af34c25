"""The official Python `anthropic` SDK against sluice's faults: it retries an
injected 529 and 429 and honours `retry-after`, surfaces a mid-stream
`stream_error` as its error, and sees a `truncate` as docs/protocols.md §2.6 says
(a partial message, no error)."""

import time

import anthropic
import pytest

from test_anthropic_sdk import client

FAST = 'first_token_delay = "5ms"\ntoken_interval = "1ms"\ntool_call_delay = "5ms"\ntokens_per_response = 8\n'


def config(fault: str) -> str:
    return f"{FAST}error_rate = 0\n[[faults]]\n{fault}\n"


def create(c: anthropic.Anthropic):
    return c.messages.with_raw_response.create(
        model="claude-mock-1", max_tokens=64, messages=[{"role": "user", "content": "Hi"}]
    )


def test_retries_an_injected_529_until_it_succeeds(sluice):
    url = sluice(config('kind = "http"\nstatus = 529\nfirst_requests = 2'))
    started = time.monotonic()
    raw = create(client(url))  # default max_retries = 2
    elapsed = time.monotonic() - started
    assert raw.retries_taken == 2
    assert raw.parse().stop_reason == "end_turn"
    # Two backoffs without retry-after: 0.5 s and 1 s, each times a jitter in [0.75, 1].
    assert elapsed >= 0.375 + 0.75, elapsed


def test_honours_retry_after_on_an_injected_429(sluice):
    url = sluice(config('kind = "http"\nstatus = 429\nretry_after = "700ms"\nfirst_requests = 1'))
    started = time.monotonic()
    raw = create(client(url))
    elapsed = time.monotonic() - started
    assert raw.retries_taken == 1
    # retry-after-ms (700) beats the SDK's own first backoff (at most 0.5 s).
    assert 0.7 <= elapsed < 2.0, elapsed


def test_gives_up_after_max_retries(sluice):
    url = sluice(config('kind = "http"\nstatus = 529\nfirst_requests = 10'))
    with pytest.raises(anthropic.OverloadedError):
        create(client(url, max_retries=1))


def test_x_should_retry_false_stops_retries(sluice):
    url = sluice(config('kind = "http"\nstatus = 529\nshould_retry = false\nfirst_requests = 1'))
    started = time.monotonic()
    with pytest.raises(anthropic.OverloadedError):
        create(client(url))
    assert time.monotonic() - started < 0.3


def test_a_mid_stream_error_surfaces_as_the_sdks_error_and_is_not_retried(sluice):
    url = sluice(config('kind = "stream_error"\nafter_tokens = 3\nfirst_requests = 1'))
    text = []
    with pytest.raises(anthropic.APIStatusError) as raised:
        with client(url).messages.stream(
            model="claude-mock-1", max_tokens=64, messages=[{"role": "user", "content": "Hi"}]
        ) as stream:
            for delta in stream.text_stream:
                text.append(delta)
    assert len(text) == 3
    assert raised.value.status_code == 200
    assert raised.value.body["error"]["type"] == "overloaded_error"
    assert "Overloaded" in str(raised.value)


def test_a_truncated_stream_gives_a_partial_message_without_error(sluice):
    url = sluice(config('kind = "truncate"\nafter_tokens = 3\nfirst_requests = 1'))
    with client(url).messages.stream(
        model="claude-mock-1", max_tokens=64, messages=[{"role": "user", "content": "Hi"}]
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert final.stop_reason is None
    assert final.content[0].text == text
    assert len(text.split()) == 3


def test_a_reset_surfaces_as_a_transport_error(sluice):
    url = sluice(config('kind = "reset"\nafter_tokens = 2\nfirst_requests = 1'))
    with pytest.raises(Exception) as raised:
        with client(url, max_retries=0).messages.stream(
            model="claude-mock-1", max_tokens=64, messages=[{"role": "user", "content": "Hi"}]
        ) as stream:
            "".join(stream.text_stream)
    assert not isinstance(raised.value, anthropic.APIStatusError)
    print("reset raised", type(raised.value).__module__, type(raised.value).__name__)
