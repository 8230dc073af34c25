"""LangChain on Gemini (`langchain-google-genai`'s ChatGoogleGenerativeAI, on
the google-genai SDK) against sluice mock's Gemini API: a streamed reply, a
tool call whose input validates, structured output, an agent loop that ends
in text, and what each injected fault does to a stream (docs/clients.md,
"Gemini: the Google SDKs")."""

import functools
import operator

import pytest
from google.genai import errors
from langchain_core.messages import HumanMessage, ToolMessage
from langchain_core.tools import StructuredTool
from langchain_google_genai import ChatGoogleGenerativeAI
from langchain_google_genai._function_utils import convert_to_genai_function_declarations
from langchain_google_genai.chat_models import GoogleRateLimitError
from pydantic import BaseModel

from common import Forecast, WeatherQuery, config, tool_names


def chat(url: str) -> ChatGoogleGenerativeAI:
    return ChatGoogleGenerativeAI(
        model="gemini-2.5-flash", google_api_key="test-key", base_url=url, max_retries=0, timeout=1.0
    )


class TripQuery(BaseModel):
    """A tool's input with types only (what LangChain sends Gemini of any schema)."""

    city: str
    days: int


def weather_tool(name: str = "get_weather", schema=TripQuery) -> StructuredTool:
    return StructuredTool.from_function(
        func=lambda **query: f"sunny in {query['city']} for {query['days']} days",
        name=name,
        description="The weather for a city.",
        args_schema=schema,
    )


def streamed(url: str):
    """The chunks of a streamed reply, and their sum."""
    chunks = list(chat(url).stream("hi"))
    return chunks, functools.reduce(operator.add, chunks)


def test_a_streamed_text_reply(sluice):
    chunks, whole = streamed(sluice(config()))
    # A chunk a token, then LangChain's closing chunk with the metadata.
    assert len(chunks) == 9
    assert len(whole.text.split()) == 8
    assert whole.response_metadata["finish_reason"] == "STOP"
    assert whole.usage_metadata["output_tokens"] == 8


def test_a_tool_call_whose_input_validates_against_what_langchain_sent(sluice):
    """langchain-google-genai sends Gemini a tool's types and required fields
    but drops pydantic's constraints (pattern, ge, le, gt, lt): the model is
    not told them, so the mock's input (like a model's) need not meet them."""
    tool = weather_tool(schema=WeatherQuery)
    [declarations] = convert_to_genai_function_declarations([tool])
    sent = declarations.function_declarations[0].parameters
    assert sent.properties["city"].pattern is None and sent.properties["days"].maximum is None
    message = chat(sluice(config())).bind_tools([tool]).invoke("weather in Paris?")
    [call] = message.tool_calls
    assert call["name"] == "get_weather"
    assert sorted(call["args"]) == ["city", "days", "threshold"]
    assert isinstance(call["args"]["city"], str) and isinstance(call["args"]["days"], int)
    assert isinstance(call["args"]["threshold"], float)
    TripQuery.model_validate(call["args"])


def test_structured_output_validates_on_the_first_request(sluice):
    forecast = chat(sluice(config())).with_structured_output(Forecast).invoke("forecast?")
    assert isinstance(forecast, Forecast)
    assert 0 < forecast.confidence < 1 and len(forecast.zip_code) == 5


def test_a_twenty_tool_agent_loop_ends_in_text_within_max_rounds(sluice):
    url = sluice(config(tool_use='choice = "uniform"\nmax_rounds = 3\nparallel_calls = 2'))
    tools = [weather_tool(name) for name in tool_names(20)]
    by_name = {tool.name: tool for tool in tools}
    model = chat(url).bind_tools(tools)
    messages = [HumanMessage("plan a trip")]
    for rounds in range(10):
        reply = model.invoke(messages)
        messages.append(reply)
        if not reply.tool_calls:
            break
        assert len(reply.tool_calls) == 2
        for call in reply.tool_calls:
            messages.append(ToolMessage(by_name[call["name"]].invoke(call["args"]), tool_call_id=call["id"]))
    assert rounds == 3 and reply.text


def raises(kind):
    return lambda outcome: type(outcome) is kind


# What each fault does to a stream, retries off (client timeout 1 s).
EXPECTED = {
    "http_529": lambda e: type(e).__name__ == "GoogleAPIError" and "503 UNAVAILABLE" in str(e),
    "http_429": raises(GoogleRateLimitError),
    "stream_error": lambda e: type(e).__name__ == "GoogleAPIError" and "503 UNAVAILABLE" in str(e),
    # Swallowed: three tokens, no finish reason, no error.
    "truncate": lambda outcome: outcome == (3, None),
    "reset": lambda e: type(e).__name__ == "ReadError",
    # The SDK's own error, not wrapped by LangChain.
    "malformed": raises(errors.UnknownApiResponseError),
    "stall": lambda e: type(e).__name__ == "ReadTimeout",
}


@pytest.mark.parametrize("fault", sorted(EXPECTED))
def test_each_fault_surfaces_as_documented(sluice, fault):
    try:
        _, whole = streamed(sluice(config(fault)))
        outcome = (len(whole.text.split()), whole.response_metadata.get("finish_reason"))
    except Exception as error:  # noqa: BLE001: the outcome under test
        outcome = error
    assert EXPECTED[fault](outcome), repr(outcome)
