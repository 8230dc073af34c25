"""The official Python `openai` SDK against sluice mock: Chat Completions
(raw streams and the strict `chat.completions.stream` accumulator, tools,
`parse()` with a pydantic model), Responses (`responses.stream`, function
calls, `parse()`), embeddings, the model list, and each injected fault
surfacing as the SDK's documented exception (docs/protocols.md §3)."""

import json
import time

import openai
import pydantic
import pytest

FAST = 'first_token_delay = "5ms"\ntoken_interval = "1ms"\ntool_call_delay = "5ms"\ntokens_per_response = 12\nerror_rate = 0\n'

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "days": {"type": "integer", "minimum": 1, "maximum": 7}},
            "required": ["city", "days"],
            "additionalProperties": False,
        },
        "strict": True,
    },
}


def client(url: str, max_retries: int = 2) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key="sk-test", max_retries=max_retries)


class Forecast(pydantic.BaseModel):
    city: str
    days: int = pydantic.Field(ge=1, le=7)
    sunny: bool


def test_chat_streams_text_with_usage_last(sluice):
    c = client(sluice(FAST))
    chunks = list(
        c.chat.completions.create(
            model="gpt-mock",
            messages=[{"role": "user", "content": "Hi"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
    assert len(text) > 0
    assert [ch.choices[0].finish_reason for ch in chunks if ch.choices and ch.choices[0].finish_reason] == ["stop"]
    assert chunks[-1].choices == []
    assert chunks[-1].usage.completion_tokens == 12
    assert len({ch.id for ch in chunks}) == 1


def test_the_chat_stream_helper_accumulates_a_tool_call(sluice):
    c = client(sluice(FAST))
    with c.chat.completions.stream(
        model="gpt-mock",
        messages=[{"role": "user", "content": "Weather in Paris?"}],
        tools=[WEATHER],
        tool_choice="required",
    ) as stream:
        for _ in stream:
            pass
        final = stream.get_final_completion()
    choice = final.choices[0]
    assert choice.finish_reason == "tool_calls"
    call = choice.message.tool_calls[0]
    assert call.id.startswith("call_")
    assert call.function.name == "get_weather"
    arguments = json.loads(call.function.arguments)
    assert isinstance(arguments["city"], str) and 1 <= arguments["days"] <= 7


def test_chat_non_streaming_and_parse_into_a_model(sluice):
    c = client(sluice(FAST))
    plain = c.chat.completions.create(model="gpt-mock", messages=[{"role": "user", "content": "Hi"}])
    assert plain.object == "chat.completion"
    assert plain.choices[0].message.role == "assistant"
    assert plain.choices[0].message.content
    assert plain.usage.completion_tokens == 12
    parsed = c.chat.completions.parse(
        model="gpt-mock", messages=[{"role": "user", "content": "Forecast"}], response_format=Forecast
    )
    forecast = parsed.choices[0].message.parsed
    assert isinstance(forecast, Forecast) and 1 <= forecast.days <= 7


def test_responses_stream_text_and_a_function_call(sluice):
    c = client(sluice(FAST))
    with c.responses.stream(model="gpt-mock", input="Hi") as stream:
        for _ in stream:
            pass
        final = stream.get_final_response()
    assert final.status == "completed"
    assert final.output_text
    assert final.usage.output_tokens == 12
    tool = {"type": "function", **WEATHER["function"]}
    with c.responses.stream(model="gpt-mock", input="Weather?", tools=[tool], tool_choice="required") as stream:
        for _ in stream:
            pass
        final = stream.get_final_response()
    call = final.output[0]
    assert call.type == "function_call" and call.name == "get_weather"
    assert 1 <= json.loads(call.arguments)["days"] <= 7


def test_responses_non_streaming_and_parse(sluice):
    c = client(sluice(FAST))
    response = c.responses.create(model="gpt-mock", input=[{"role": "user", "content": "Hi"}])
    assert response.object == "response" and response.output_text
    parsed = c.responses.parse(model="gpt-mock", input="Forecast", text_format=Forecast)
    assert isinstance(parsed.output_parsed, Forecast)


def test_embeddings_are_deterministic_in_both_encodings(sluice):
    c = client(sluice(FAST))
    first = c.embeddings.create(model="text-embedding-3-small", input=["a cat", "a dog"], dimensions=64)
    again = c.embeddings.create(model="text-embedding-3-small", input="a cat", dimensions=64, encoding_format="float")
    assert len(first.data) == 2 and len(first.data[0].embedding) == 64
    assert first.data[0].embedding == pytest.approx(again.data[0].embedding, abs=1e-6)
    assert first.data[0].embedding != first.data[1].embedding
    assert sum(x * x for x in first.data[0].embedding) == pytest.approx(1.0, abs=1e-4)


def test_the_model_list_names_the_configured_models(sluice):
    c = client(sluice(FAST + 'models = ["gpt-mock", "gpt-mock-mini"]\n'))
    assert [m.id for m in c.models.list()] == ["gpt-mock", "gpt-mock-mini"]
    assert c.models.retrieve("gpt-mock-mini").id == "gpt-mock-mini"
    with pytest.raises(openai.NotFoundError):
        c.models.retrieve("nope")


@pytest.mark.parametrize(
    "status, exception",
    [
        (400, openai.BadRequestError),
        (401, openai.AuthenticationError),
        (429, openai.RateLimitError),
        (500, openai.InternalServerError),
        (503, openai.InternalServerError),
        # Anthropic's overload status reaches an OpenAI client as OpenAI's own 503.
        (529, openai.InternalServerError),
    ],
)
@pytest.mark.parametrize("stream", [False, True])
def test_each_injected_status_raises_the_sdks_exception(sluice, status, exception, stream):
    c = client(sluice(FAST + f'[[faults]]\nkind = "http"\nstatus = {status}\nfirst_requests = 5\n'), max_retries=0)
    with pytest.raises(exception) as raised:
        c.chat.completions.create(model="gpt-mock", messages=[{"role": "user", "content": "Hi"}], stream=stream)
    assert raised.value.status_code == (503 if status == 529 else status)
    assert raised.value.request_id.startswith("req_")


def test_retries_honour_retry_after_ms(sluice):
    url = sluice(FAST + '[[faults]]\nkind = "http"\nstatus = 429\nretry_after = "700ms"\nfirst_requests = 1\n')
    started = time.monotonic()
    raw = client(url).chat.completions.with_raw_response.create(
        model="gpt-mock", messages=[{"role": "user", "content": "Hi"}]
    )
    elapsed = time.monotonic() - started
    assert raw.retries_taken == 1
    assert 0.7 <= elapsed < 2.0, elapsed


def test_a_mid_stream_error_is_an_api_error_and_not_retried(sluice):
    url = sluice(FAST + '[[faults]]\nkind = "stream_error"\nafter_tokens = 3\nfirst_requests = 1\n')
    c = client(url)
    seen = []
    with pytest.raises(openai.APIError) as raised:
        for chunk in c.chat.completions.create(
            model="gpt-mock", messages=[{"role": "user", "content": "Hi"}], stream=True
        ):
            if chunk.choices and chunk.choices[0].delta.content:
                seen.append(chunk.choices[0].delta.content)
    assert not isinstance(raised.value, openai.APIStatusError)
    assert len(seen) == 3
    # Responses: as the live API fails a response, an `error` event with its
    # fields under `error` (the SDK raises on that key), then `response.failed`.
    url = sluice(FAST + '[[faults]]\nkind = "stream_error"\nafter_tokens = 2\nfirst_requests = 2\n')
    deltas = []
    with pytest.raises(openai.APIError) as raised:
        with client(url).responses.stream(model="gpt-mock", input="Hi") as stream:
            for event in stream:
                if event.type == "response.output_text.delta":
                    deltas.append(event.delta)
    assert not isinstance(raised.value, openai.APIStatusError)
    assert raised.value.message == "The server had an error while processing your request."
    assert raised.value.code == "server_error"
    assert len(deltas) == 2
    # The raw stream raises too.
    with pytest.raises(openai.APIError):
        for _ in client(url).responses.create(model="gpt-mock", input="Hi", stream=True):
            pass


def test_a_truncated_chat_stream_ends_without_finish_or_error(sluice):
    url = sluice(FAST + '[[faults]]\nkind = "truncate"\nafter_tokens = 4\nfirst_requests = 1\n')
    chunks = list(
        client(url).chat.completions.create(
            model="gpt-mock", messages=[{"role": "user", "content": "Hi"}], stream=True
        )
    )
    assert sum(1 for ch in chunks if ch.choices and ch.choices[0].delta.content) == 4
    assert all(ch.choices[0].finish_reason is None for ch in chunks if ch.choices)


def test_a_reset_surfaces_as_a_transport_error(sluice):
    url = sluice(FAST + '[[faults]]\nkind = "reset"\nafter_tokens = 2\nfirst_requests = 5\n')
    with pytest.raises(Exception) as raised:
        for _ in client(url, max_retries=0).chat.completions.create(
            model="gpt-mock", messages=[{"role": "user", "content": "Hi"}], stream=True
        ):
            pass
    assert not isinstance(raised.value, openai.APIStatusError)


def test_insufficient_quota_is_a_rate_limit_error_that_is_not_retried(sluice):
    url = sluice(
        FAST
        + '[[faults]]\nkind = "http"\nstatus = 429\nerror_type = "insufficient_quota"\n'
        + 'message = "You exceeded your current quota."\nshould_retry = false\nfirst_requests = 1\n'
    )
    started = time.monotonic()
    with pytest.raises(openai.RateLimitError) as raised:
        client(url).chat.completions.create(model="gpt-mock", messages=[{"role": "user", "content": "Hi"}])
    assert raised.value.code == "insufficient_quota"
    assert raised.value.type == "insufficient_quota"
    assert time.monotonic() - started < 0.3, "x-should-retry: false stops the retries"
    # Without a message of its own, OpenAI's quota wording, not its rate limit's.
    url = sluice(FAST + '[[faults]]\nkind = "http"\nstatus = 429\nerror_type = "insufficient_quota"\nfirst_requests = 1\n')
    with pytest.raises(openai.RateLimitError) as raised:
        client(url, max_retries=0).chat.completions.create(model="gpt-mock", messages=[{"role": "user", "content": "Hi"}])
    assert raised.value.body["message"].startswith("You exceeded your current quota, please check your plan and billing details.")
