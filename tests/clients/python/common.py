"""What the framework tests share: a fast mock config, the faults each test
injects, and the models used for tool inputs and structured output (with the
constraints that used to break: exclusive bounds, patterns, tuples, sets)."""

from __future__ import annotations

from typing import Literal, Optional

import jsonschema
from pydantic import BaseModel, Field

FAST = (
    'first_token_delay = "5ms"\ntoken_interval = "1ms"\ntool_call_delay = "5ms"\n'
    "tokens_per_response = 8\nerror_rate = 0\n"
)

# Each injected fault, on every request of the test's sluice (so retries,
# where a framework makes them, meet it too).
FAULTS = {
    "http_529": 'kind = "http"\nstatus = 529',
    "http_429": 'kind = "http"\nstatus = 429\nretry_after = "100ms"',
    "stream_error": 'kind = "stream_error"\nafter_tokens = 3',
    "truncate": 'kind = "truncate"\nafter_tokens = 3',
    "reset": 'kind = "reset"\nafter_tokens = 3',
    "malformed": 'kind = "malformed"\nafter_tokens = 3',
    "stall": 'kind = "stall"\nafter_tokens = 3\nduration = "5s"',
}


def config(fault: str = "", tool_use: str = "") -> str:
    """FAST, with `fault` (a key of FAULTS) on every request and `tool_use`
    keys in a [tool_use] table."""
    text = FAST
    if tool_use:
        text += "[tool_use]\n" + tool_use + "\n"
    if fault:
        text += "[[faults]]\n" + FAULTS[fault] + "\nevery = 1\n"
    return text


class Forecast(BaseModel):
    """Structured output: pydantic's gt/lt, a pattern, a Literal, a tuple and a set."""

    city: str = Field(min_length=1)
    confidence: float = Field(gt=0, lt=1)
    zip_code: str = Field(pattern=r"^[0-9]{5}$")
    unit: Literal["celsius", "fahrenheit"]
    range_c: tuple[int, int]
    tags: set[str]
    note: Optional[str] = None


class StreamedForecast(BaseModel):
    """For streamed partial objects, which instructor validates strictly from
    parsed JSON, where a list is not a tuple or a set."""

    city: str = Field(min_length=1)
    confidence: float = Field(gt=0, lt=1)
    zip_code: str = Field(pattern=r"^[0-9]{5}$")
    days: list[int] = Field(min_length=1, max_length=3)


class WeatherQuery(BaseModel):
    """A tool's input."""

    city: str = Field(pattern=r"^[A-Z][a-z]{2,11}$")
    days: int = Field(ge=1, le=7)
    threshold: float = Field(gt=0, lt=1)


def validate(schema: dict, value) -> None:
    """Raises when `value` does not validate against `schema` (formats too)."""
    validator = jsonschema.validators.validator_for(schema)(
        schema, format_checker=jsonschema.FormatChecker()
    )
    validator.validate(value)


def tool_names(count: int) -> list[str]:
    """`count` tool names, the first two `search_*`."""
    return [f"search_{i}" if i < 2 else f"tool_{i}" for i in range(count)]
