"""The official Python `anthropic` SDK accepts every reply of `sluice mock`.

Delays are shortened so the suite runs in seconds; timing exactness is
checked by the Rust tests on a paused clock.
"""

import anthropic
import pytest

FAST = 'error_rate = 0\nfirst_token_delay = "5ms"\ntoken_interval = "1ms"\ntool_call_delay = "5ms"\n'

WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Current weather for a city",
    "input_schema": {
        "type": "object",
        "properties": {
            "city": {"type": "string"},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            "days": {"type": "integer", "minimum": 1, "maximum": 7},
        },
        "required": ["city", "unit", "days"],
    },
}


def client(url: str, **kwargs) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=url, api_key="sk-test", **kwargs)


def test_streams_text(sluice):
    url = sluice(FAST)
    with client(url).messages.stream(
        model="claude-mock-1", max_tokens=1024, messages=[{"role": "user", "content": "Hello"}]
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert final.role == "assistant"
    assert final.model == "claude-mock-1"
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens == 50
    assert len(final.content) == 1 and final.content[0].type == "text"
    assert final.content[0].text == text
    assert text.endswith(".")
    assert final.id.startswith("msg_")
    assert stream.request_id.startswith("req_")


def test_streams_a_tool_call_and_parses_its_input(sluice):
    url = sluice(FAST)
    with client(url).messages.stream(
        model="claude-mock-1",
        max_tokens=1024,
        tools=[WEATHER_TOOL],
        messages=[{"role": "user", "content": "Weather in Paris?"}],
    ) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_message()
    assert "input_json" in kinds
    assert final.stop_reason == "tool_use"
    [call] = final.content
    assert call.type == "tool_use"
    assert call.name == "get_weather"
    assert call.id.startswith("toolu_")
    assert set(call.input) == {"city", "unit", "days"}
    assert isinstance(call.input["city"], str)
    assert call.input["unit"] in ("celsius", "fahrenheit")
    assert 1 <= call.input["days"] <= 7


def test_a_forced_tool_is_called_and_a_tool_result_is_answered_in_text(sluice):
    url = sluice(FAST)
    other = {"name": "get_time", "input_schema": {"type": "object", "properties": {"zone": {"type": "string"}}}}
    forced = client(url).messages.create(
        model="claude-mock-1",
        max_tokens=256,
        tools=[WEATHER_TOOL, other],
        tool_choice={"type": "tool", "name": "get_time"},
        messages=[{"role": "user", "content": "What time is it?"}],
    )
    [call] = forced.content
    assert call.name == "get_time"
    answer = client(url).messages.create(
        model="claude-mock-1",
        max_tokens=256,
        tools=[WEATHER_TOOL, other],
        messages=[
            {"role": "user", "content": "What time is it?"},
            {"role": "assistant", "content": [c.model_dump() for c in forced.content]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "10:15"}]},
        ],
    )
    assert answer.stop_reason == "end_turn"
    assert answer.content[0].type == "text"


def test_non_streaming_call(sluice):
    url = sluice(FAST)
    message = client(url).messages.create(
        model="claude-mock-1", max_tokens=10, messages=[{"role": "user", "content": "Hello"}]
    )
    assert message.type == "message"
    assert message.stop_reason == "max_tokens"
    assert message.usage.output_tokens == 10
    assert message.content[0].type == "text"
    assert message._request_id.startswith("req_")


def test_count_tokens(sluice):
    url = sluice(FAST)
    counted = client(url).messages.count_tokens(
        model="claude-mock-1", messages=[{"role": "user", "content": "Hello"}]
    )
    assert counted.input_tokens > 0


@pytest.mark.parametrize(
    "status, exception, error_type",
    [
        (529, anthropic.OverloadedError, "overloaded_error"),
        (500, anthropic.InternalServerError, "api_error"),
        (429, anthropic.RateLimitError, "rate_limit_error"),
        (503, anthropic.ServiceUnavailableError, "api_error"),
        (400, anthropic.BadRequestError, "invalid_request_error"),
    ],
)
@pytest.mark.parametrize("stream", [True, False])
def test_each_injected_status_raises_the_sdks_exception(sluice, status, exception, error_type, stream):
    url = sluice(f'error_rate = 1.0\n[[faults]]\nkind = "http"\nstatus = {status}\nretry_after = "1ms"\n')
    with pytest.raises(exception) as raised:
        if stream:
            with client(url, max_retries=0).messages.stream(
                model="claude-mock-1", max_tokens=64, messages=[{"role": "user", "content": "Hi"}]
            ) as events:
                events.get_final_message()
        else:
            client(url, max_retries=0).messages.create(
                model="claude-mock-1", max_tokens=64, messages=[{"role": "user", "content": "Hi"}]
            )
    assert type(raised.value) is exception
    assert raised.value.status_code == status
    assert raised.value.body["error"]["type"] == error_type
    assert raised.value.response.headers["x-sluice-fault"] == f"http; status={status}; retry_after=1ms"
    assert raised.value.request_id.startswith("req_")


def test_invalid_requests_raise_bad_request_naming_the_field(sluice):
    url = sluice(FAST)
    with pytest.raises(anthropic.BadRequestError) as raised:
        client(url, max_retries=0).messages.create(model="claude-mock-1", max_tokens=64, messages=[])
    assert raised.value.body["error"]["message"] == "messages: at least one message is required"


def test_structured_output_parses_into_the_model_with_its_constraints(sluice):
    """`messages.parse(output_format=Model)` sends the model's strict schema in
    output_config.format, with the bounds strict schemas lack moved into
    descriptions; the mock honours them, so the reply parses and validates."""
    from typing import Literal

    from pydantic import BaseModel, Field

    class Forecast(BaseModel):
        city: str
        days: int = Field(ge=1, le=7)
        confidence: float = Field(gt=0, lt=1)
        unit: Literal["celsius", "fahrenheit"]

    c = client(sluice(FAST))
    for seed in range(20):
        message = c.messages.parse(
            model="claude-mock-1",
            max_tokens=512,
            messages=[{"role": "user", "content": f"forecast {seed}?"}],
            output_format=Forecast,
        )
        assert message.stop_reason == "end_turn"
        forecast = message.parsed_output
        assert isinstance(forecast, Forecast)
        assert 1 <= forecast.days <= 7 and 0 < forecast.confidence < 1


def test_a_web_search_streams_its_call_results_and_cited_text(sluice):
    url = sluice(FAST + "[tool_use]\nweb_search = 1.0\n")
    with client(url).messages.stream(
        model="claude-mock-1",
        max_tokens=1024,
        tools=[{"type": "web_search_20250305", "name": "web_search", "max_uses": 3}],
        messages=[{"role": "user", "content": "What happened today?"}],
    ) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_message()
    assert "citation" in kinds, kinds
    assert [block.type for block in final.content] == ["server_tool_use", "web_search_tool_result", "text"]
    call, results, text = final.content
    assert call.id.startswith("srvtoolu_") and call.input["query"]
    assert results.tool_use_id == call.id and len(results.content) == 3
    assert text.citations[0].url == results.content[0].url
    assert final.usage.server_tool_use.web_search_requests == 1
    assert final.stop_reason == "end_turn"
