"""The official Python SDKs (anthropic, openai) against a sluice rate-limit
bucket (docs/rate-limits.md): they read the 429's `retry-after-ms`, wait that
long, retry once and succeed, and sluice's verdict reports no early retry for
them; a deliberately impatient client is reported with the right counts."""

import hashlib
import json
import time
import urllib.request

import anthropic
import openai

FAST = 'first_token_delay = "5ms"\ntoken_interval = "1ms"\ntool_call_delay = "5ms"\ntokens_per_response = 8\nerror_rate = 0\n'
# One request at once, then one a second.
BUCKET = FAST + "[rate_limits]\nrequests_per_minute = 60\nburst = 1\n"


def label(key: str) -> str:
    """How sluice names a client: 12 hex digits of its key's SHA-256."""
    return "key:" + hashlib.sha256(key.encode()).hexdigest()[:12]


def verdict(admin: str, key: str) -> dict:
    with urllib.request.urlopen(f"{admin}/rate-limits", timeout=5) as response:
        report = json.load(response)
    found = [c for c in report["clients"] if c["client"] == label(key)]
    assert found, report
    return found[0]


def test_the_anthropic_sdk_waits_the_retry_after_it_is_given(sluice_with_admin):
    server = sluice_with_admin(BUCKET)
    client = anthropic.Anthropic(base_url=server.url, api_key="sk-patient-anthropic", max_retries=2)
    ask = lambda: client.messages.with_raw_response.create(  # noqa: E731
        model="claude-mock-1", max_tokens=64, messages=[{"role": "user", "content": "Hi"}]
    )
    first = ask()
    assert first.retries_taken == 0
    assert first.headers["anthropic-ratelimit-requests-limit"] == "60"
    assert first.headers["anthropic-ratelimit-requests-remaining"] == "0"
    started = time.monotonic()
    second = ask()
    elapsed = time.monotonic() - started
    assert second.retries_taken == 1
    assert second.parse().stop_reason == "end_turn"
    # It waited retry-after-ms (just under a second), not its own 0.5 s backoff.
    assert 0.9 <= elapsed < 2.5, elapsed
    v = verdict(server.admin, "sk-patient-anthropic")
    assert (v["early_retries"], v["immediate_retries"], v["patient_retries"]) == (0, 0, 1), v


def test_the_anthropic_sdk_raises_rate_limit_error_when_out_of_retries(sluice_with_admin):
    server = sluice_with_admin(BUCKET)
    client = anthropic.Anthropic(base_url=server.url, api_key="sk-no-retries", max_retries=0)
    client.messages.create(model="m", max_tokens=8, messages=[{"role": "user", "content": "Hi"}])
    try:
        client.messages.create(model="m", max_tokens=8, messages=[{"role": "user", "content": "Hi"}])
        raise AssertionError("the second request within the second must be refused")
    except anthropic.RateLimitError as error:
        assert error.status_code == 429
        assert error.body["error"]["type"] == "rate_limit_error"
        assert error.response.headers["retry-after"] == "1"


def test_the_openai_sdk_waits_the_retry_after_it_is_given(sluice_with_admin):
    server = sluice_with_admin(BUCKET)
    client = openai.OpenAI(base_url=f"{server.url}/v1", api_key="sk-patient-openai", max_retries=2)
    ask = lambda: client.chat.completions.with_raw_response.create(  # noqa: E731
        model="gpt-mock", messages=[{"role": "user", "content": "Hi"}]
    )
    first = ask()
    assert first.headers["x-ratelimit-limit-requests"] == "60"
    assert first.headers["x-ratelimit-remaining-requests"] == "0"
    assert first.headers["x-ratelimit-reset-requests"].endswith("s")
    started = time.monotonic()
    second = ask()
    elapsed = time.monotonic() - started
    assert second.retries_taken == 1
    assert second.parse().choices[0].finish_reason == "stop"
    assert 0.9 <= elapsed < 2.5, elapsed
    v = verdict(server.admin, "sk-patient-openai")
    assert (v["early_retries"], v["immediate_retries"], v["patient_retries"]) == (0, 0, 1), v


def test_an_impatient_client_is_reported(sluice_with_admin):
    server = sluice_with_admin(BUCKET)
    body = json.dumps({"model": "m", "max_tokens": 8, "messages": [{"role": "user", "content": "Hi"}]}).encode()

    def post() -> tuple[int, str]:
        request = urllib.request.Request(
            f"{server.url}/v1/messages",
            data=body,
            headers={"content-type": "application/json", "x-api-key": "sk-hasty", "anthropic-version": "2023-06-01"},
        )
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return response.status, response.headers.get("x-sluice-client-verdict", "")
        except urllib.error.HTTPError as error:
            return error.code, error.headers.get("x-sluice-client-verdict", "")

    assert post() == (200, "")
    statuses = [post() for _ in range(6)]  # no pause at all
    assert [s for s, _ in statuses] == [429] * 6
    assert statuses[0][1] == ""  # the first 429 is no retry yet
    assert all("early_retry" in v for _, v in statuses[1:]), statuses
    v = verdict(server.admin, "sk-hasty")
    assert v["early_retries"] == 5, v
    assert v["retry_storms"] == 1, v
    assert v["patient_retries"] == 0, v
    assert v["immediate_retries"] >= 1, v
