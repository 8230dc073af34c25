"""LangChain on Bedrock (`langchain-aws`'s ChatBedrockConverse, on boto3)
against sluice mock's Bedrock Converse API: a streamed reply, a tool call,
and what each injected fault does to a stream (docs/clients.md, "Bedrock:
boto3")."""

import functools
import operator

import boto3
import pytest
from botocore.config import Config
from langchain_aws import ChatBedrockConverse
from langchain_core.tools import StructuredTool
from pydantic import BaseModel

from common import config

# A model id langchain-aws knows to stream: for one it does not know (say
# `anthropic.claude-x-v1:0`) it warns and falls back to the non-streaming
# Converse API, which the stream faults never reach.
MODEL = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"


def chat(url: str) -> ChatBedrockConverse:
    client = boto3.client(
        "bedrock-runtime",
        region_name="us-east-1",
        endpoint_url=url,
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="not-a-secret",
        config=Config(retries={"max_attempts": 1}, read_timeout=1),
    )
    return ChatBedrockConverse(model=MODEL, client=client, region_name="us-east-1")


class TripQuery(BaseModel):
    city: str
    days: int


def test_a_streamed_reply_and_a_tool_call(sluice):
    url = sluice(config())
    chunks = list(chat(url).stream("hi"))
    whole = functools.reduce(operator.add, chunks)
    assert len(whole.text.split()) == 8
    assert whole.response_metadata["stopReason"] == "end_turn"
    tool = StructuredTool.from_function(
        func=lambda city, days: f"sunny in {city}", name="get_weather", description="Weather", args_schema=TripQuery
    )
    [call] = chat(url).bind_tools([tool]).invoke("weather in Paris?").tool_calls
    assert call["name"] == "get_weather" and call["id"].startswith("tooluse_")
    TripQuery.model_validate(call["args"])


# What each fault does to ChatBedrockConverse.stream(), retries off, read timeout 1 s.
EXPECTED = {
    "http_529": "ServiceUnavailableException",
    "http_429": "ThrottlingException",
    "stream_error": "EventStreamError",
    # Noticed: langchain-aws checks for messageStop.
    "truncate": "ConnectionError",
    "reset": "ProtocolError",
    # The empty delta boto3 yields for the cut frame.
    "malformed": "KeyError",
    "stall": "ReadTimeoutError",
}


@pytest.mark.parametrize("fault", sorted(EXPECTED))
def test_each_fault_surfaces_as_documented(sluice, fault):
    with pytest.raises(Exception) as raised:  # noqa: PT011: which error is what the test is about
        list(chat(sluice(config(fault))).stream("hi"))
    assert type(raised.value).__name__ == EXPECTED[fault], repr(raised.value)
