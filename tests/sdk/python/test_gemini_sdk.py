"""The official Python `google-genai` SDK against `sluice mock`'s Gemini API
and Vertex AI paths: streamed and whole text, a function-calling loop,
structured output, thinking, count tokens, embeddings, the model list, and
every fault kind as the SDK reports it (docs/clients.md, "Gemini: the Google
SDKs")."""

import datetime

import httpx2
import pytest
from google import genai
from google.genai import errors, types
from google.oauth2.credentials import Credentials

FAST = (
    'error_rate = 0\nfirst_token_delay = "5ms"\ntoken_interval = "1ms"\ntool_call_delay = "5ms"\n'
    'tokens_per_response = 8\nmodels = ["gemini-2.5-flash"]\n'
)

WEATHER = types.FunctionDeclaration(
    name="get_weather",
    description="The weather in a city",
    parameters=types.Schema(
        type=types.Type.OBJECT,
        properties={"city": types.Schema(type=types.Type.STRING)},
        required=["city"],
    ),
)


BOTH = pytest.mark.parametrize("vertex", [False, True], ids=["gemini-api", "vertex-ai"])


def client(url: str, vertex: bool = False, timeout_ms: int | None = None) -> genai.Client:
    options = types.HttpOptions(base_url=url, timeout=timeout_ms)
    if not vertex:
        return genai.Client(api_key="test-key", http_options=options)
    # A bearer token that never expires, so google-auth never refreshes it:
    # sluice accepts any and verifies none.
    expiry = datetime.datetime.now(datetime.UTC).replace(tzinfo=None) + datetime.timedelta(hours=1)
    token = Credentials(token="ya29.test", expiry=expiry)
    return genai.Client(
        vertexai=True, project="test-project", location="us-central1", credentials=token, http_options=options
    )


@BOTH
def test_streams_text_and_answers_whole(sluice, vertex):
    gemini = client(sluice(FAST), vertex)
    chunks = list(gemini.models.generate_content_stream(model="gemini-2.5-flash", contents="hi"))
    assert len(chunks) == 8
    text = "".join(chunk.text for chunk in chunks)
    assert len(text.split()) == 8
    assert chunks[-1].candidates[0].finish_reason == types.FinishReason.STOP
    assert chunks[-1].usage_metadata.candidates_token_count == 8
    whole = gemini.models.generate_content(model="gemini-2.5-flash", contents="hi")
    assert len(whole.text.split()) == 8
    assert whole.model_version == "gemini-2.5-flash"


@BOTH
def test_a_function_calling_loop_ends_in_text(sluice, vertex):
    gemini = client(sluice(FAST), vertex)
    config = types.GenerateContentConfig(
        tools=[types.Tool(function_declarations=[WEATHER])],
        automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
    )
    contents = [types.Content(role="user", parts=[types.Part(text="Weather in Paris?")])]
    first = gemini.models.generate_content(model="gemini-2.5-flash", contents=contents, config=config)
    [call] = first.function_calls
    assert call.name == "get_weather" and isinstance(call.args["city"], str)
    contents.append(first.candidates[0].content)
    contents.append(
        types.Content(
            role="user",
            parts=[types.Part.from_function_response(name="get_weather", response={"temp": "18C"})],
        )
    )
    second = gemini.models.generate_content(model="gemini-2.5-flash", contents=contents, config=config)
    assert not second.function_calls
    assert len(second.text.split()) == 8


@BOTH
def test_structured_output_parses(sluice, vertex):
    from pydantic import BaseModel

    class Forecast(BaseModel):
        city: str
        days: int

    gemini = client(sluice(FAST), vertex)
    response = gemini.models.generate_content(
        model="gemini-2.5-flash",
        contents="forecast?",
        config=types.GenerateContentConfig(response_mime_type="application/json", response_schema=Forecast),
    )
    assert isinstance(response.parsed, Forecast)


def test_thoughts_stream_first_when_asked(sluice):
    gemini = client(sluice(FAST + "[thinking]\ntokens = 6\n"))
    config = types.GenerateContentConfig(
        thinking_config=types.ThinkingConfig(thinking_budget=1024, include_thoughts=True)
    )
    chunks = list(gemini.models.generate_content_stream(model="gemini-2.5-flash", contents="hi", config=config))
    thoughts = [c for c in chunks if c.candidates[0].content.parts[0].thought]
    assert len(thoughts) == 6 and chunks[:6] == thoughts
    assert chunks[-1].usage_metadata.thoughts_token_count == 6


@BOTH
def test_count_tokens(sluice, vertex):
    gemini = client(sluice(FAST), vertex)
    counted = gemini.models.count_tokens(model="gemini-2.5-flash", contents="hello there")
    assert counted.total_tokens >= 1


def test_the_model_list(sluice):
    gemini = client(sluice(FAST))
    names = [model.name for model in gemini.models.list()]
    assert names == ["models/gemini-2.5-flash"]


@BOTH
@pytest.mark.parametrize(
    ("fault", "code", "status"),
    [
        ('kind = "http"\nstatus = 529', 503, "UNAVAILABLE"),
        ('kind = "http"\nstatus = 429\nretry_after = "2s"', 429, "RESOURCE_EXHAUSTED"),
        ('kind = "http"\nstatus = 500', 500, "INTERNAL"),
    ],
)
def test_injected_errors_are_the_sdks_api_errors(sluice, vertex, fault, code, status):
    """On Vertex AI the stream's errors come as a one-element array, which
    the SDK unwraps: the same error either way."""
    url = sluice(FAST.replace("error_rate = 0", "error_rate = 1.0") + f"[[faults]]\n{fault}\n")
    gemini = client(url, vertex)  # held: the SDK closes its connections when the client goes
    for call in (gemini.models.generate_content, gemini.models.generate_content_stream):
        with pytest.raises(errors.APIError) as raised:
            list(call(model="gemini-2.5-flash", contents="hi") or [])
        assert (raised.value.code, raised.value.status) == (code, status)
    if code == 429:
        details = raised.value.details["error"]["details"]
        retry = [d for d in details if d["@type"] == "type.googleapis.com/google.rpc.RetryInfo"]
        assert retry == [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "2s"}]


def stream_through(url: str, vertex: bool = False, timeout_ms: int | None = None):
    """Streams a reply; returns the chunks received and what was raised."""
    received, raised = [], None
    gemini = client(url, vertex, timeout_ms)
    try:
        for chunk in gemini.models.generate_content_stream(model="gemini-2.5-flash", contents="hi"):
            received.append(chunk)
    except Exception as error:  # noqa: BLE001: which error is what the test is about
        raised = error
    return received, raised


FAULTY = FAST.replace("error_rate = 0", "error_rate = 1.0") + "[[faults]]\n"


@BOTH
@pytest.mark.parametrize(
    ("fault", "chunks", "error"),
    [
        # The chunks before it, then the error chunk raised as ServerError 503.
        ('kind = "stream_error"\nafter_tokens = 3', 3, errors.ServerError),
        # Unnoticed: three chunks and the end, no finish reason on the last.
        ('kind = "truncate"\nafter_tokens = 3', 3, None),
        ('kind = "reset"\nafter_tokens = 3', 3, httpx2.ReadError),
        # The cut chunk is not JSON: the SDK stops there.
        ('kind = "malformed"\nafter_tokens = 3', 3, errors.UnknownApiResponseError),
        # No duration: open until the client's 1 s read timeout gives up.
        ('kind = "stall"\nafter_tokens = 3', 3, httpx2.ReadTimeout),
        ('kind = "slow_head"\nduration = "30s"', 0, httpx2.ReadTimeout),
        # A clean end: the last chunk says SAFETY (or MAX_TOKENS) and nothing is raised.
        ('kind = "stop"\nafter_tokens = 3', 4, None),
        ('kind = "stop"\nafter_tokens = 3\nstop_reason = "max_tokens"', 4, None),
        ('kind = "stop"\nafter_tokens = 3\nstop_reason = "recitation"', 4, None),
        ('kind = "stop"\nafter_tokens = 3\nstop_reason = "malformed_function_call"', 4, None),
    ],
    ids=[
        "stream_error", "truncate", "reset", "malformed", "stall", "slow_head",
        "stop", "stop-max_tokens", "stop-recitation", "stop-malformed_function_call",
    ],
)
def test_each_stream_fault_as_the_sdk_reports_it(sluice, vertex, fault, chunks, error):
    received, raised = stream_through(sluice(FAULTY + fault + "\n"), vertex, timeout_ms=1000)
    assert len(received) == chunks
    assert type(raised) is error if error else raised is None, repr(raised)
    assert all(chunk.text for chunk in received[:3])
    finish = received[-1].candidates[0].finish_reason if received else None
    if "stop" in fault:
        reason = fault.split('stop_reason = "')[1].rstrip('"') if "stop_reason" in fault else "safety"
        expected = {"max_tokens": "MAX_TOKENS", "safety": "SAFETY"}.get(reason, reason.upper())
        assert finish == types.FinishReason(expected)
    elif received:
        assert finish is None


@pytest.mark.parametrize(
    ("vertex", "model"),
    # Vertex AI answers text-embedding models on :predict, Gemini ones on :embedContent.
    [(False, "gemini-embedding-001"), (True, "gemini-embedding-001"), (True, "text-embedding-005")],
)
def test_embeddings_are_the_same_vector_for_the_same_text(sluice, vertex, model):
    gemini = client(sluice(FAST), vertex)
    config = types.EmbedContentConfig(output_dimensionality=8)
    result = gemini.models.embed_content(
        model=model, contents=["a cat", "a dog", "a cat"], config=config
    )
    vectors = [embedding.values for embedding in result.embeddings]
    assert [len(v) for v in vectors] == [8, 8, 8]
    assert vectors[0] == vectors[2] and vectors[0] != vectors[1]
    assert abs(sum(x * x for x in vectors[0]) - 1.0) < 1e-4, "unit length"


def test_a_rate_limited_request_gets_googles_429_with_retry_info(sluice):
    gemini = client(sluice(FAST + "[rate_limits]\nrequests_per_minute = 60\nburst = 1\n"))
    gemini.models.generate_content(model="gemini-2.5-flash", contents="hi")
    with pytest.raises(errors.ClientError) as raised:
        gemini.models.generate_content(model="gemini-2.5-flash", contents="hi")
    assert raised.value.code == 429 and raised.value.status == "RESOURCE_EXHAUSTED"
    details = raised.value.details["error"]["details"]
    retry = [d for d in details if d["@type"] == "type.googleapis.com/google.rpc.RetryInfo"]
    assert retry == [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "1s"}]
    assert "Please retry in 1.0s." in raised.value.message


def test_quota_is_per_key_and_model_with_google_keys_read(sluice):
    """`key = "api_key_and_model"`: each model its own buckets, as Google
    counts quota; the key is read from x-goog-api-key (the SDK's) and ?key=."""
    import urllib.error
    import urllib.request

    # One request a minute: nothing refills while the test runs, however slow the machine.
    url = sluice(FAST + '[rate_limits]\nrequests_per_minute = 1\nburst = 1\nkey = "api_key_and_model"\n')
    gemini = client(url)
    gemini.models.generate_content(model="gemini-2.5-flash", contents="hi")
    gemini.models.generate_content(model="gemini-2.5-pro", contents="hi")  # another model: admitted
    with pytest.raises(errors.ClientError) as raised:
        gemini.models.generate_content(model="gemini-2.5-flash", contents="hi")
    assert raised.value.code == 429
    # The same key in the query is the same client: refused too.
    body = b'{"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}'
    asked = urllib.request.Request(f"{url}/v1beta/models/gemini-2.5-pro:generateContent?key=test-key", data=body)
    with pytest.raises(urllib.error.HTTPError) as by_query:
        urllib.request.urlopen(asked, timeout=10)
    assert by_query.value.code == 429
    # Another key is another client.
    other = urllib.request.Request(f"{url}/v1beta/models/gemini-2.5-pro:generateContent?key=other", data=body)
    with urllib.request.urlopen(other, timeout=10) as answered:
        assert answered.status == 200
