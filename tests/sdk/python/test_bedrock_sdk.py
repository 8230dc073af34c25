"""boto3's `bedrock-runtime` client against `sluice mock`'s Converse API
(ConverseStream and Converse, AWS event-stream framing): streamed text, a
tool loop run to its end, thinking, an ARN model id, and every fault kind as
boto3 reports it (docs/clients.md, "Bedrock: boto3")."""

import boto3
import botocore.exceptions
import pytest
import urllib3.exceptions
from botocore.config import Config

FAST = (
    'error_rate = 0\nfirst_token_delay = "5ms"\ntoken_interval = "1ms"\ntool_call_delay = "5ms"\n'
    "tokens_per_response = 8\n"
)
MODEL = "anthropic.claude-sonnet-4-5-20250929-v1:0"
WEATHER = {
    "tools": [
        {
            "toolSpec": {
                "name": "get_weather",
                "inputSchema": {
                    "json": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
                },
            }
        }
    ]
}


def client(url: str):
    # Signed with made-up keys: sluice accepts any signature and checks none.
    return boto3.client(
        "bedrock-runtime",
        region_name="us-east-1",
        endpoint_url=url,
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="not-a-secret",
        config=Config(retries={"max_attempts": 1}, read_timeout=1),
    )


def ask(text: str):
    return [{"role": "user", "content": [{"text": text}]}]


def test_converse_stream_sends_each_event_as_boto3_parses_it(sluice):
    bedrock = client(sluice(FAST))
    events = list(bedrock.converse_stream(modelId=MODEL, messages=ask("hi"))["stream"])
    names = [next(iter(event)) for event in events]
    assert names == ["messageStart"] + ["contentBlockDelta"] * 8 + ["contentBlockStop", "messageStop", "metadata"]
    assert events[0]["messageStart"] == {"role": "assistant"}
    text = "".join(e["contentBlockDelta"]["delta"]["text"] for e in events if "contentBlockDelta" in e)
    assert len(text.split()) == 8
    assert events[-2]["messageStop"]["stopReason"] == "end_turn"
    usage = events[-1]["metadata"]["usage"]
    assert usage["outputTokens"] == 8 and usage["totalTokens"] == usage["inputTokens"] + 8
    whole = bedrock.converse(modelId=MODEL, messages=ask("hi"))
    assert whole["stopReason"] == "end_turn"
    assert len(whole["output"]["message"]["content"][0]["text"].split()) == 8


def test_a_tool_loop_runs_to_its_text_answer(sluice):
    bedrock = client(sluice(FAST))
    messages = ask("Weather in Paris?")
    streamed = list(bedrock.converse_stream(modelId=MODEL, messages=messages, toolConfig=WEATHER)["stream"])
    start = streamed[1]["contentBlockStart"]["start"]["toolUse"]
    assert start["name"] == "get_weather" and start["toolUseId"].startswith("tooluse_")
    first = bedrock.converse(modelId=MODEL, messages=messages, toolConfig=WEATHER)
    assert first["stopReason"] == "tool_use"
    [call] = [block["toolUse"] for block in first["output"]["message"]["content"]]
    assert isinstance(call["input"]["city"], str)
    messages.append(first["output"]["message"])
    result = {"toolResult": {"toolUseId": call["toolUseId"], "content": [{"json": {"temp": "18C"}}]}}
    messages.append({"role": "user", "content": [result]})
    second = bedrock.converse(modelId=MODEL, messages=messages, toolConfig=WEATHER)
    assert second["stopReason"] == "end_turn"
    assert len(second["output"]["message"]["content"][0]["text"].split()) == 8


def test_thinking_streams_as_reasoning_content_first(sluice):
    bedrock = client(sluice(FAST + "[thinking]\ntokens = 5\n"))
    thinking = {"thinking": {"type": "enabled", "budget_tokens": 1024}}
    events = list(
        bedrock.converse_stream(modelId=MODEL, messages=ask("hi"), additionalModelRequestFields=thinking)["stream"]
    )
    deltas = [e["contentBlockDelta"] for e in events if "contentBlockDelta" in e]
    reasoning = [d["delta"]["reasoningContent"] for d in deltas if "reasoningContent" in d["delta"]]
    assert [r.get("text") is not None for r in reasoning] == [True] * 5 + [False]
    assert reasoning[-1]["signature"]
    assert all(d["contentBlockIndex"] == 1 for d in deltas if "text" in d["delta"]), "text after the reasoning block"


def test_an_arn_model_id_is_read_from_its_encoded_path(sluice):
    arn = "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-sonnet-4-5"
    whole = client(sluice(FAST)).converse(modelId=arn, messages=ask("hi"))
    assert whole["stopReason"] == "end_turn"


FAULTY = FAST.replace("error_rate = 0", "error_rate = 1.0") + "[[faults]]\n"


@pytest.mark.parametrize(
    ("fault", "exception"),
    [
        ('kind = "http"\nstatus = 429', "ThrottlingException"),
        ('kind = "http"\nstatus = 529', "ServiceUnavailableException"),
        ('kind = "http"\nstatus = 500', "InternalServerException"),
        ('kind = "http"\nstatus = 400', "ValidationException"),
    ],
)
def test_injected_errors_are_boto3s_modelled_exceptions(sluice, fault, exception):
    bedrock = client(sluice(FAULTY + fault + "\n"))
    with pytest.raises(getattr(bedrock.exceptions, exception)):
        bedrock.converse_stream(modelId=MODEL, messages=ask("hi"))
    with pytest.raises(getattr(bedrock.exceptions, exception)):
        bedrock.converse(modelId=MODEL, messages=ask("hi"))


def stream_through(url: str):
    """The event names received, and what was raised."""
    received, raised = [], None
    try:
        for event in client(url).converse_stream(modelId=MODEL, messages=ask("hi"))["stream"]:
            received.append(next(iter(event)))
    except Exception as error:  # noqa: BLE001: which error is what the test is about
        raised = error
    return received, raised


def test_a_stream_error_is_an_exception_frame_raised_as_event_stream_error(sluice):
    received, raised = stream_through(sluice(FAULTY + 'kind = "stream_error"\nafter_tokens = 3\n'))
    assert received == ["messageStart"] + ["contentBlockDelta"] * 3
    assert isinstance(raised, botocore.exceptions.EventStreamError)
    assert raised.response["Error"]["Code"] == "serviceUnavailableException"


@pytest.mark.parametrize(
    ("fault", "received", "error"),
    [
        # Unnoticed: three deltas and the end, no messageStop.
        ('kind = "truncate"\nafter_tokens = 3', 4, None),
        ('kind = "reset"\nafter_tokens = 3', 4, urllib3.exceptions.ProtocolError),
        # The frame is whole and its CRCs right, its JSON cut: boto3 yields an
        # empty contentBlockDelta and goes on.
        ('kind = "malformed"\nafter_tokens = 3', 12, None),
        ('kind = "stall"\nafter_tokens = 3', 4, urllib3.exceptions.ReadTimeoutError),
        # Before the head, botocore's own timeout error.
        ('kind = "slow_head"\nduration = "30s"', 0, botocore.exceptions.ReadTimeoutError),
        # A clean end: contentBlockStop, messageStop (content_filtered), metadata.
        ('kind = "stop"\nafter_tokens = 3', 7, None),
    ],
    ids=["truncate", "reset", "malformed", "stall", "slow_head", "stop"],
)
def test_each_stream_fault_as_boto3_reports_it(sluice, fault, received, error):
    names, raised = stream_through(sluice(FAULTY + fault + "\n"))
    assert len(names) == received, names
    if error is None:
        assert raised is None, repr(raised)
    else:
        assert type(raised) is error, repr(raised)
    if "truncate" in fault:
        assert "messageStop" not in names
    if "stop" in fault and "after" in fault:
        assert names[-3:] == ["contentBlockStop", "messageStop", "metadata"]


# A Messages request's messages (Invoke's body is the Messages API's).
HI = [{"role": "user", "content": "hi"}]
INVOKE_BODY = {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 64, "messages": HI}


def test_invoke_streams_the_messages_events_in_chunks(sluice):
    import json

    bedrock = client(sluice(FAST))
    body = json.dumps(INVOKE_BODY)
    streamed = bedrock.invoke_model_with_response_stream(modelId=MODEL, body=body)
    events = [json.loads(event["chunk"]["bytes"]) for event in streamed["body"]]
    assert events[0]["type"] == "message_start" and events[-1]["type"] == "message_stop"
    text = "".join(e["delta"]["text"] for e in events if e["type"] == "content_block_delta")
    assert len(text.split()) == 8
    assert events[-1]["amazon-bedrock-invocationMetrics"]["outputTokenCount"] == 8
    whole = json.loads(bedrock.invoke_model(modelId=MODEL, body=body)["body"].read())
    assert whole["type"] == "message" and whole["stop_reason"] == "end_turn"


def anthropic_bedrock(url: str):
    from anthropic import AnthropicBedrock

    return AnthropicBedrock(
        aws_access_key="AKIDEXAMPLE",
        aws_secret_key="not-a-secret",
        aws_region="us-east-1",
        base_url=url,
        max_retries=0,
        timeout=1,
    )


def test_the_anthropic_sdks_bedrock_client_streams_through_invoke(sluice):
    claude = anthropic_bedrock(sluice(FAST))
    with claude.messages.stream(model=MODEL, max_tokens=64, messages=HI) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert len(text.split()) == 8
    assert final.stop_reason == "end_turn" and final.usage.output_tokens == 8
    whole = claude.messages.create(model=MODEL, max_tokens=64, messages=HI)
    assert len(whole.content[0].text.split()) == 8


@pytest.mark.parametrize(
    ("fault", "words", "outcome"),
    [
        ('kind = "http"\nstatus = 529', 0, "ServiceUnavailableError"),
        ('kind = "http"\nstatus = 429', 0, "RateLimitError"),
        # The exception frame, raised as the SDK's APIStatusError.
        ('kind = "stream_error"\nafter_tokens = 3', 3, "APIStatusError"),
        # Unnoticed: the text so far, no stop reason.
        ('kind = "truncate"\nafter_tokens = 3', 3, None),
        # The cut chunk is skipped: one word fewer, and the turn ends as usual.
        ('kind = "malformed"\nafter_tokens = 3', 7, "end_turn"),
        ('kind = "stop"\nafter_tokens = 3', 3, "refusal"),
    ],
    ids=["http_529", "http_429", "stream_error", "truncate", "malformed", "stop"],
)
def test_each_fault_through_anthropic_bedrock(sluice, fault, words, outcome):
    claude = anthropic_bedrock(sluice(FAULTY + fault + "\n"))
    pieces = []
    try:
        with claude.messages.stream(model=MODEL, max_tokens=64, messages=HI) as stream:
            for piece in stream.text_stream:
                pieces.append(piece)
            result = stream.get_final_message().stop_reason
    except Exception as error:  # noqa: BLE001: which error is what the test is about
        result = type(error).__name__
    assert len("".join(pieces).split()) == words
    assert result == outcome


def test_rate_limits_are_per_access_key_and_model(sluice):
    """`[rate_limits] key = "api_key_and_model"`: the SigV4 access key id is
    the client, and each model has its own buckets, as Bedrock's quotas are
    per account and model; the 429 is boto3's ThrottlingException."""
    # One request a minute: nothing refills while the test runs, however slow the machine.
    url = sluice(FAST + '[rate_limits]\nrequests_per_minute = 1\nburst = 1\nkey = "api_key_and_model"\n')
    bedrock = client(url)
    bedrock.converse(modelId=MODEL, messages=ask("hi"))
    bedrock.converse(modelId="amazon.nova-pro-v1:0", messages=ask("hi"))  # another model
    with pytest.raises(bedrock.exceptions.ThrottlingException):
        bedrock.converse(modelId=MODEL, messages=ask("hi"))
    other = boto3.client(
        "bedrock-runtime",
        region_name="us-east-1",
        endpoint_url=url,
        aws_access_key_id="AKIDOTHERCLIENT",
        aws_secret_access_key="not-a-secret",
        config=Config(retries={"max_attempts": 1}),
    )
    assert other.converse(modelId=MODEL, messages=ask("hi"))["stopReason"] == "end_turn"
