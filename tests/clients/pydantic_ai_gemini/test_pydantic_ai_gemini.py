"""pydantic-ai's Google model (on google-genai 2.x, which pydantic-ai 2.68
requires) against sluice mock's Gemini API: streamed text, a tool call whose
input validates, structured output, an agent loop that ends in text, and what
each injected fault does to a stream (docs/clients.md, "Gemini: the Google
SDKs"). Run in its own venv by scripts/test.sh."""

import asyncio
from typing import Literal

import pytest
from google import genai
from google.genai import types
from pydantic import BaseModel, Field
from pydantic_ai import Agent, Tool
from pydantic_ai.exceptions import (
    ModelAPIError,
    ModelOverloadedError,
    ModelRateLimitError,
    UnexpectedModelBehavior,
)
from pydantic_ai.models.google import GoogleModel
from pydantic_ai.providers.google import GoogleProvider

FAST = (
    'first_token_delay = "5ms"\ntoken_interval = "1ms"\ntool_call_delay = "5ms"\n'
    "tokens_per_response = 8\nerror_rate = 0\n"
)

FAULTS = {
    "http_529": 'kind = "http"\nstatus = 529',
    "http_429": 'kind = "http"\nstatus = 429\nretry_after = "100ms"',
    "stream_error": 'kind = "stream_error"\nafter_tokens = 3',
    "truncate": 'kind = "truncate"\nafter_tokens = 3',
    "reset": 'kind = "reset"\nafter_tokens = 3',
    "malformed": 'kind = "malformed"\nafter_tokens = 3',
    "stall": 'kind = "stall"\nafter_tokens = 3',
}


def config(fault: str = "", tool_use: str = "") -> str:
    text = FAST + (f"[tool_use]\n{tool_use}\n" if tool_use else "")
    return text + (f"[[faults]]\n{FAULTS[fault]}\nevery = 1\n" if fault else "")


class WeatherQuery(BaseModel):
    city: str = Field(pattern=r"^[A-Z][a-z]{2,11}$")
    days: int = Field(ge=1, le=7)


class Forecast(BaseModel):
    """Constraints pydantic-ai passes on to Gemini (not gt/lt: see below)."""

    city: str = Field(min_length=1)
    confidence: float = Field(ge=0, le=1)
    unit: Literal["celsius", "fahrenheit"]
    zip_code: str = Field(pattern=r"^[0-9]{5}$")
    days: list[int] = Field(min_length=1, max_length=3)


class StrictForecast(BaseModel):
    confidence: float = Field(gt=0, lt=1)


async def run(url: str, work):
    """`work(model)` with a client made and closed on this event loop."""
    client = genai.Client(api_key="test-key", http_options=types.HttpOptions(base_url=url, timeout=1000))
    try:
        return await work(GoogleModel("gemini-2.5-flash", provider=GoogleProvider(client=client)))
    finally:
        await client.aio.aclose()


async def streamed_text(model) -> str:
    async with Agent(model).run_stream("hi") as streamed:
        return "".join([piece async for piece in streamed.stream_text(delta=True)])


def test_a_streamed_text_reply(sluice):
    text = asyncio.run(run(sluice(config()), streamed_text))
    assert len(text.split()) == 8, text


def test_a_tool_call_whose_input_validates(sluice):
    calls = []

    def get_weather(query: WeatherQuery) -> str:
        calls.append(query)
        return f"sunny in {query.city}"

    async def work(model):
        return await Agent(model, tools=[Tool(get_weather)]).run("weather in Paris?")

    result = asyncio.run(run(sluice(config()), work))
    assert len(calls) == 1 and 1 <= calls[0].days <= 7, "validated before the call"
    assert result.usage.requests == 2 and result.usage.tool_calls == 1


def test_structured_output_validates_on_the_first_request(sluice):
    async def work(model):
        return await Agent(model, output_type=Forecast).run("forecast?")

    result = asyncio.run(run(sluice(config()), work))
    assert isinstance(result.output, Forecast)
    assert result.usage.requests == 1, "no retry was needed"


def test_exclusive_bounds_are_not_sent_to_gemini_so_output_can_miss_them(sluice):
    """pydantic-ai's Gemini schema drops `exclusiveMinimum`/`exclusiveMaximum`
    (pydantic's gt/lt): the model is never told `0 < confidence < 1`. The
    mock draws numbers over a wide range, so the output fails validation and
    the retry does too: a model told only "number" can do the same."""

    async def work(model):
        return await Agent(model, output_type=StrictForecast).run("forecast?")

    with pytest.raises(UnexpectedModelBehavior, match="Exceeded maximum output retries"):
        asyncio.run(run(sluice(config() + "seed = 1\n"), work))


def test_an_agent_loop_ends_in_text_within_max_rounds(sluice):
    rounds = []

    def get_weather(query: WeatherQuery) -> str:
        rounds.append(query)
        return "sunny"

    async def work(model):
        return await Agent(model, tools=[Tool(get_weather)]).run("weather twice?")

    result = asyncio.run(run(sluice(config(tool_use="max_rounds = 2")), work))
    assert len(rounds) == 2 and isinstance(result.output, str) and result.output


def raises(kind):
    return lambda outcome: isinstance(outcome, kind)


# What each fault does to Agent.run_stream, retries off (client timeout 1 s).
EXPECTED = {
    "http_529": raises(ModelOverloadedError),
    "http_429": raises(ModelRateLimitError),
    "stream_error": raises(ModelOverloadedError),
    # Swallowed: the three tokens before the cut, as if the reply ended.
    "truncate": lambda outcome: outcome == 3,
    "reset": lambda e: type(e).__name__ == "ReadError",
    "malformed": lambda e: isinstance(e, ModelAPIError) and "Failed to decode" in str(e),
    "stall": lambda e: type(e).__name__ == "ReadTimeout",
}


@pytest.mark.parametrize("fault", sorted(EXPECTED))
def test_each_fault_surfaces_as_documented(sluice, fault):
    try:
        outcome = len(asyncio.run(run(sluice(config(fault)), streamed_text)).split())
    except Exception as error:  # noqa: BLE001: the outcome under test
        outcome = error
    assert EXPECTED[fault](outcome), repr(outcome)
