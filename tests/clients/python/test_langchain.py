"""LangChain (`langchain-anthropic`'s ChatAnthropic) against sluice mock:
streamed text, a tool call whose input validates, structured output
(`with_structured_output`, a forced tool) streaming and not, agent loops that
end in text, and what each injected fault does to it (docs/clients.md)."""

import json

import anthropic
import pytest
from langchain_anthropic import ChatAnthropic
from langchain_anthropic.chat_models import (
    AnthropicOverloadedError,
    AnthropicRateLimitError,
    convert_to_anthropic_tool,
)
from langchain_core.messages import HumanMessage, ToolMessage
from langchain_core.tools import StructuredTool

from common import Forecast, WeatherQuery, config, tool_names, validate


def chat(url: str, **options) -> ChatAnthropic:
    return ChatAnthropic(
        model="claude-mock-1",
        base_url=url,
        api_key="test-key",
        max_tokens=512,
        max_retries=0,
        default_request_timeout=1.0,
        **options,
    )


def weather_tool(name: str = "get_weather") -> StructuredTool:
    return StructuredTool.from_function(
        func=lambda city, days, threshold: f"sunny in {city} for {days} days",
        name=name,
        description="The weather for a city.",
        args_schema=WeatherQuery,
    )


def test_a_streamed_text_reply(sluice):
    chunks = list(chat(sluice(config()), streaming=True).stream("hi"))
    text = "".join(c.content for c in chunks if isinstance(c.content, str))
    assert len(text.split()) == 8, text
    assert chunks[-1].response_metadata["stop_reason"] == "end_turn"


def test_a_tool_call_whose_input_validates(sluice):
    tool = weather_tool()
    message = chat(sluice(config())).bind_tools([tool]).invoke("weather in Paris?")
    [call] = message.tool_calls
    assert call["name"] == "get_weather"
    validate(convert_to_anthropic_tool(tool)["input_schema"], call["args"])
    WeatherQuery.model_validate(call["args"])


@pytest.mark.parametrize("streaming", [False, True])
def test_structured_output_validates_on_the_first_request(sluice, streaming):
    structured = chat(sluice(config()), streaming=streaming).with_structured_output(Forecast)
    forecast = list(structured.stream("forecast?"))[-1] if streaming else structured.invoke("forecast?")
    assert isinstance(forecast, Forecast)
    assert 0 < forecast.confidence < 1 and len(forecast.zip_code) == 5


def run_loop(model, tools, question: str, limit: int = 10) -> tuple[int, str]:
    """A plain agent loop: call the model, run the tools it asks for, send
    the results back, until it answers in text. Returns (tool rounds, text)."""
    by_name = {t.name: t for t in tools}
    messages = [HumanMessage(question)]
    for rounds in range(limit):
        reply = model.invoke(messages)
        messages.append(reply)
        if not reply.tool_calls:
            assert reply.response_metadata["stop_reason"] == "end_turn"
            return rounds, reply.content
        for call in reply.tool_calls:
            output = by_name[call["name"]].invoke(call["args"])
            messages.append(ToolMessage(output, tool_call_id=call["id"]))
    raise AssertionError(f"no text answer after {limit} rounds")


def test_a_two_round_agent_loop_ends_in_text(sluice):
    url = sluice(config(tool_use="max_rounds = 2"))
    tools = [weather_tool()]
    rounds, text = run_loop(chat(url).bind_tools(tools), tools, "weather twice?")
    assert rounds == 2 and isinstance(text, str) and text


def test_a_twenty_tool_agent_loop_ends_in_text_within_max_rounds(sluice):
    url = sluice(config(tool_use='choice = "uniform"\nmax_rounds = 3\nparallel_calls = 2'))
    tools = [weather_tool(name) for name in tool_names(20)]
    rounds, _ = run_loop(chat(url).bind_tools(tools), tools, "plan a trip")
    assert rounds == 3


# What each fault does to ChatAnthropic with streaming=True and retries off.
# With streaming=False, `.stream()` makes one non-streaming request, so the
# stream faults never reach it.
def raises(kind):
    return lambda outcome: isinstance(outcome, kind)


EXPECTED = {
    "http_529": raises(AnthropicOverloadedError),
    "http_429": raises(AnthropicRateLimitError),
    "stream_error": lambda e: isinstance(e, anthropic.APIStatusError)
    and e.body["error"]["type"] == "overloaded_error",
    # Swallowed: three tokens of text, stop_reason None, no error.
    "truncate": lambda outcome: outcome == (3, None),
    "reset": lambda e: type(e).__name__ == "ReadError",
    "malformed": raises(json.JSONDecodeError),
    "stall": lambda e: type(e).__name__ == "ReadTimeout",
}


@pytest.mark.parametrize("fault", sorted(EXPECTED))
def test_each_fault_surfaces_as_documented(sluice, fault):
    try:
        chunks = list(chat(sluice(config(fault)), streaming=True).stream("hi"))
        text = "".join(c.content for c in chunks if isinstance(c.content, str))
        outcome = (len(text.split()), chunks[-1].response_metadata.get("stop_reason"))
    except Exception as error:  # the outcome under test
        outcome = error
    assert EXPECTED[fault](outcome), repr(outcome)
