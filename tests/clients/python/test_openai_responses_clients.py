"""OpenAI Responses API clients against sluice mock: LangChain
(`langchain-openai`'s ChatOpenAI with `use_responses_api=True`) and the
OpenAI Agents SDK (`openai-agents`, a streamed run). Each streams a reply,
and each injected fault surfaces as documented (docs/clients.md); above
all a `stream_error` is an error, not a short success: sluice fails a
Responses stream as the live API does, with the `error` event nested under
`error` and then `response.failed` (docs/protocols.md §3.3)."""

import asyncio
import json

import openai
import pytest
from agents import Agent, OpenAIResponsesModel, Runner, set_tracing_disabled
from agents.exceptions import ModelBehaviorError
from langchain_openai import ChatOpenAI
from langchain_openai.chat_models.base import OpenAIAPIError, OpenAIRateLimitError

from common import config

# The Agents SDK would export traces to OpenAI; the suite reaches nothing but sluice.
set_tracing_disabled(True)


def langchain_text(url: str) -> str:
    llm = ChatOpenAI(
        model="gpt-mock",
        base_url=f"{url}/v1",
        api_key="sk-test",
        use_responses_api=True,
        streaming=True,
        max_retries=0,
        timeout=1.0,
    )
    return "".join(chunk.text for chunk in llm.stream("hi"))


def agents_output(url: str) -> str:
    client = openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="sk-test", max_retries=0, timeout=1.0)
    agent = Agent(name="brief", instructions="Be brief.", model=OpenAIResponsesModel(model="gpt-mock", openai_client=client))

    async def run() -> str:
        result = Runner.run_streamed(agent, "hi")
        async for _ in result.stream_events():
            pass
        return str(result.final_output)

    return asyncio.run(run())


def test_both_stream_a_reply(sluice):
    url = sluice(config())
    assert len(langchain_text(url).split()) == 8
    assert len(agents_output(url).split()) == 8


def raises(kind, message=None):
    return lambda e: isinstance(e, kind) and (message is None or message in str(e))


STREAM_FAILED = "The server had an error while processing your request."

LANGCHAIN = {
    # OpenAI's own overload answer: a 529 fault reaches an OpenAI path as a 503.
    "http_529": raises(OpenAIAPIError, "Error code: 503"),
    "http_429": raises(OpenAIRateLimitError),
    "stream_error": lambda e: type(e) is openai.APIError and e.message == STREAM_FAILED,
    # Swallowed: three tokens of text and no error.
    "truncate": lambda outcome: isinstance(outcome, str) and len(outcome.split()) == 3,
    "reset": lambda e: type(e).__name__ == "ReadError",
    "malformed": raises(json.JSONDecodeError),
    "stall": lambda e: type(e).__name__ == "ReadTimeout",
}

AGENTS = {
    "http_529": lambda e: isinstance(e, openai.InternalServerError) and e.status_code == 503,
    "http_429": raises(openai.RateLimitError),
    "stream_error": lambda e: type(e) is openai.APIError and e.message == STREAM_FAILED,
    "truncate": raises(ModelBehaviorError, "did not produce a final response"),
    "reset": lambda e: type(e).__name__ == "ReadError",
    "malformed": raises(json.JSONDecodeError),
    "stall": lambda e: type(e).__name__ == "ReadTimeout",
}


def outcome_of(call, url):
    try:
        return call(url)
    except Exception as error:  # the outcome under test
        return error


@pytest.mark.parametrize("fault", sorted(LANGCHAIN))
def test_each_fault_surfaces_in_langchain_as_documented(sluice, fault):
    outcome = outcome_of(langchain_text, sluice(config(fault)))
    assert LANGCHAIN[fault](outcome), repr(outcome)


@pytest.mark.parametrize("fault", sorted(AGENTS))
def test_each_fault_surfaces_in_the_agents_sdk_as_documented(sluice, fault):
    outcome = outcome_of(agents_output, sluice(config(fault)))
    assert AGENTS[fault](outcome), repr(outcome)
