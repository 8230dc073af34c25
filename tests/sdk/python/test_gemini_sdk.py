"""The official Python `google-genai` SDK against `sluice mock`'s Gemini API:
streamed and whole text, a function-calling loop, structured output,
thinking, count tokens, the model list, and injected errors as the SDK's own
`APIError` (docs/mock.md, "The Gemini mock")."""

import pytest
from google import genai
from google.genai import errors, types

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


def client(url: str) -> genai.Client:
    return genai.Client(api_key="test-key", http_options=types.HttpOptions(base_url=url))


def test_streams_text_and_answers_whole(sluice):
    gemini = client(sluice(FAST))
    chunks = list(gemini.models.generate_content_stream(model="gemini-2.5-flash", contents="hi"))
    assert len(chunks) == 8
    text = "".join(chunk.text for chunk in chunks)
    assert len(text.split()) == 8
    assert chunks[-1].candidates[0].finish_reason == types.FinishReason.STOP
    assert chunks[-1].usage_metadata.candidates_token_count == 8
    whole = gemini.models.generate_content(model="gemini-2.5-flash", contents="hi")
    assert len(whole.text.split()) == 8
    assert whole.model_version == "gemini-2.5-flash"


def test_a_function_calling_loop_ends_in_text(sluice):
    gemini = client(sluice(FAST))
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


def test_structured_output_parses(sluice):
    from pydantic import BaseModel

    class Forecast(BaseModel):
        city: str
        days: int

    gemini = client(sluice(FAST))
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


def test_count_tokens_and_the_model_list(sluice):
    gemini = client(sluice(FAST))
    counted = gemini.models.count_tokens(model="gemini-2.5-flash", contents="hello there")
    assert counted.total_tokens >= 1
    names = [model.name for model in gemini.models.list()]
    assert names == ["models/gemini-2.5-flash"]


@pytest.mark.parametrize(
    ("fault", "code", "status"),
    [
        ('kind = "http"\nstatus = 529', 503, "UNAVAILABLE"),
        ('kind = "http"\nstatus = 429\nretry_after = "2s"', 429, "RESOURCE_EXHAUSTED"),
        ('kind = "http"\nstatus = 500', 500, "INTERNAL"),
    ],
)
def test_injected_errors_are_the_sdks_api_errors(sluice, fault, code, status):
    url = sluice(FAST.replace("error_rate = 0", "error_rate = 1.0") + f"[[faults]]\n{fault}\n")
    gemini = client(url)  # held: the SDK closes its connections when the client goes
    with pytest.raises(errors.APIError) as raised:
        gemini.models.generate_content(model="gemini-2.5-flash", contents="hi")
    assert raised.value.code == code
    assert raised.value.status == status


def test_a_mid_stream_error_raises_after_the_tokens_before_it(sluice):
    url = sluice(
        FAST.replace("error_rate = 0", "error_rate = 1.0")
        + '[[faults]]\nkind = "stream_error"\nafter_tokens = 3\n'
    )
    received = []
    gemini = client(url)
    with pytest.raises(errors.APIError) as raised:
        for chunk in gemini.models.generate_content_stream(model="gemini-2.5-flash", contents="hi"):
            received.append(chunk.text)
    assert len(received) == 3
    assert raised.value.code == 503


def test_embeddings_are_the_same_vector_for_the_same_text(sluice):
    gemini = client(sluice(FAST))
    config = types.EmbedContentConfig(output_dimensionality=8)
    result = gemini.models.embed_content(
        model="gemini-embedding-001", contents=["a cat", "a dog", "a cat"], config=config
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
