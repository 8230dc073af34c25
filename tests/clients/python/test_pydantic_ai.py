"""pydantic-ai against sluice mock: streamed text, a tool call whose input
validates, structured output (pydantic-ai's output tool) streaming and not,
agent loops that end in text, and what each injected fault does to it
(docs/clients.md)."""

import asyncio

import anthropic
import pytest
from pydantic_ai import Agent, Tool
from pydantic_ai.exceptions import (
    ModelAPIError,
    ModelConnectionError,
    ModelOverloadedError,
    ModelRateLimitError,
    ModelTimeoutError,
)
from pydantic_ai.models.anthropic import AnthropicModel
from pydantic_ai.providers.anthropic import AnthropicProvider

from common import Forecast, WeatherQuery, config, tool_names, validate


def model(url: str) -> AnthropicModel:
    # A client per call: an async client belongs to the event loop it ran on.
    client = anthropic.AsyncAnthropic(base_url=url, api_key="test-key", max_retries=0, timeout=1.0)
    return AnthropicModel("claude-mock-1", provider=AnthropicProvider(anthropic_client=client))


def weather_tool(name: str, calls: list) -> Tool:
    def get_weather(query: WeatherQuery) -> str:
        calls.append((name, query))
        return f"sunny in {query.city}"

    return Tool(get_weather, name=name, description="The weather for a city.")


async def streamed_text(url: str) -> str:
    async with Agent(model(url)).run_stream("hi") as run:
        return "".join([piece async for piece in run.stream_text(delta=True)])


def test_a_streamed_text_reply(sluice):
    text = asyncio.run(streamed_text(sluice(config())))
    assert len(text.split()) == 8, text


def test_a_tool_call_whose_input_validates(sluice):
    calls = []
    agent = Agent(model(sluice(config())), tools=[weather_tool("get_weather", calls)])
    result = agent.run_sync("weather in Paris?")
    [(name, query)] = calls  # pydantic-ai validated the input before calling
    assert name == "get_weather"
    tool_call = next(
        part
        for message in result.all_messages()
        for part in message.parts
        if part.part_kind == "tool-call"
    )
    # A single model parameter is sent as the tool's whole input schema.
    validate(WeatherQuery.model_json_schema(), tool_call.args_as_dict())
    assert tool_call.args_as_dict() == query.model_dump()


def test_structured_output_validates_on_the_first_request(sluice):
    result = Agent(model(sluice(config())), output_type=Forecast).run_sync("forecast?")
    assert isinstance(result.output, Forecast)
    assert result.usage.requests == 1, "no retry was needed"


def test_streamed_structured_output_validates_on_the_first_request(sluice):
    async def run(url):
        async with Agent(model(url), output_type=Forecast).run_stream("forecast?") as streamed:
            output = await streamed.get_output()
            return output, streamed.usage.requests

    output, requests = asyncio.run(run(sluice(config())))
    assert isinstance(output, Forecast) and requests == 1


def test_a_two_round_agent_loop_ends_in_text(sluice):
    calls = []
    url = sluice(config(tool_use="max_rounds = 2"))
    result = Agent(model(url), tools=[weather_tool("get_weather", calls)]).run_sync("weather twice?")
    assert len(calls) == 2
    assert result.usage.requests == 3 and isinstance(result.output, str) and result.output


def test_a_twenty_tool_agent_loop_ends_in_text_within_max_rounds(sluice):
    calls = []
    url = sluice(config(tool_use='choice = "uniform"\nmax_rounds = 3\nparallel_calls = 2'))
    tools = [weather_tool(name, calls) for name in tool_names(20)]
    result = Agent(model(url), tools=tools).run_sync("plan a trip")
    assert result.usage.requests == 4 and len(calls) == 6
    assert isinstance(result.output, str)


# What each fault does to a streamed run (retries off). A non-streamed
# run_sync meets only the HTTP faults; the stream faults pass it by.
EXPECTED = {
    "http_529": lambda e: isinstance(e, ModelOverloadedError),
    "http_429": lambda e: isinstance(e, ModelRateLimitError),
    "stream_error": lambda e: isinstance(e, ModelOverloadedError)
    and isinstance(e.__cause__, anthropic.APIStatusError),
    # Swallowed: the run ends with three tokens of text and no error.
    "truncate": lambda outcome: outcome == 3,
    "reset": lambda e: isinstance(e, ModelConnectionError),
    "malformed": lambda e: isinstance(e, ModelAPIError) and "decode" in str(e),
    "stall": lambda e: isinstance(e, ModelTimeoutError),
}


@pytest.mark.parametrize("fault", sorted(EXPECTED))
def test_each_fault_surfaces_as_documented(sluice, fault):
    try:
        outcome = len(asyncio.run(streamed_text(sluice(config(fault)))).split())
    except Exception as error:  # the outcome under test
        outcome = error
    assert EXPECTED[fault](outcome), repr(outcome)


THINKING = "[thinking]\ntokens = 12\n"


def test_an_agent_loop_with_thinking_sends_the_signed_blocks_back(sluice):
    """The model thinks, calls the tool, and answers after the result:
    pydantic-ai keeps the thinking part (with its signature) in the history
    it sends back, which the mock checks as the API does."""
    from pydantic_ai.models.anthropic import AnthropicModelSettings

    calls = []
    settings = AnthropicModelSettings(
        max_tokens=2048, anthropic_thinking={"type": "enabled", "budget_tokens": 1024}
    )
    agent = Agent(
        model(sluice(config() + THINKING)),
        tools=[weather_tool("get_weather", calls)],
        model_settings=settings,
    )
    result = agent.run_sync("weather in Paris?")
    assert len(calls) == 1
    kinds = [part.part_kind for message in result.all_messages() for part in message.parts]
    assert kinds.count("thinking") == 1, kinds
    thinking = next(
        part
        for message in result.all_messages()
        for part in message.parts
        if part.part_kind == "thinking"
    )
    assert thinking.signature and thinking.content
    assert result.usage.requests == 2
    assert len(result.output.split()) == 8
