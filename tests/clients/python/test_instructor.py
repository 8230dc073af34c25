"""instructor against sluice mock: structured output through a forced tool
(instructor's ANTHROPIC_TOOLS mode), whole and as streamed partial objects,
validated on the first request, and what each injected fault does to it
(docs/clients.md). instructor is a structured-output library with no
agent loop of its own, so the loop tests live with LangChain and pydantic-ai."""

import anthropic
import instructor
import pytest
from instructor.core.exceptions import InstructorRetryException

from common import Forecast, StreamedForecast, WeatherQuery, config, validate


def client(url: str):
    return instructor.from_anthropic(
        anthropic.Anthropic(base_url=url, api_key="test-key", max_retries=0, timeout=1.0)
    )


def ask(**options):
    return dict(
        model="claude-mock-1",
        max_tokens=512,
        messages=[{"role": "user", "content": "forecast?"}],
        max_retries=0,  # instructor's own re-asks: the first answer must validate
        **options,
    )


def test_structured_output_validates_on_the_first_request(sluice):
    forecast, completion = client(sluice(config())).messages.create_with_completion(
        **ask(response_model=Forecast)
    )
    assert isinstance(forecast, Forecast)
    [block] = completion.content
    assert block.type == "tool_use" and block.name == "Forecast"
    validate(Forecast.model_json_schema(), block.input)


def test_a_tool_call_whose_input_validates(sluice):
    query = client(sluice(config())).messages.create(**ask(response_model=WeatherQuery))
    assert 1 <= query.days <= 7 and 0 < query.threshold < 1
    validate(WeatherQuery.model_json_schema(), query.model_dump())


def test_streamed_partial_objects_end_in_a_valid_one(sluice):
    partials = list(
        client(sluice(config())).messages.create_partial(**ask(response_model=StreamedForecast))
    )
    assert len(partials) > 1
    StreamedForecast.model_validate(partials[-1].model_dump())


def test_a_streamed_text_reply(sluice):
    # instructor passes plain calls through to the SDK (response_model=None).
    c = client(sluice(config()))
    stream = c.messages.create(**ask(response_model=None, stream=True))
    text = "".join(e.delta.text for e in stream if e.type == "content_block_delta")
    assert len(text.split()) == 8, text


# What each fault does to create_partial (streamed, retries off). The
# non-streamed create meets only the HTTP faults.
def retry_error_from(kind):
    return lambda e: isinstance(e, InstructorRetryException) and isinstance(e.__cause__, kind)


EXPECTED = {
    "http_529": retry_error_from(anthropic.OverloadedError),
    "http_429": retry_error_from(anthropic.RateLimitError),
    "stream_error": retry_error_from(anthropic.APIStatusError),
    # Swallowed: the last partial object is returned as the result, with
    # required fields missing (None) and no error.
    "truncate": lambda outcome: isinstance(outcome, StreamedForecast) and outcome.zip_code is None,
    "reset": lambda e: isinstance(e, InstructorRetryException)
    and type(e.__cause__).__name__ == "ReadError",
    "malformed": lambda e: isinstance(e, InstructorRetryException)
    and type(e.__cause__).__name__ == "JSONDecodeError",
    "stall": lambda e: isinstance(e, InstructorRetryException)
    and type(e.__cause__).__name__ in ("ReadTimeout", "APITimeoutError"),
}


@pytest.mark.parametrize("fault", sorted(EXPECTED))
def test_each_fault_surfaces_as_documented(sluice, fault):
    try:
        partials = client(sluice(config(fault))).messages.create_partial(
            **ask(response_model=StreamedForecast)
        )
        outcome = list(partials)[-1]
    except Exception as error:  # the outcome under test
        outcome = error
    assert EXPECTED[fault](outcome), f"{outcome!r} caused by {getattr(outcome, '__cause__', None)!r}"
