"""The official Python SDKs over sluice's TLS listener (docs/tls.md), with
verification on and only the generated CA trusted: HTTP/2 and HTTP/1.1,
streamed and not, and faults over HTTP/2. The CA reaches the SDK either as
the SDK's httpx client's `verify`, or as `SSL_CERT_FILE` for a client built with
defaults (the way a stand-in for the real host is trusted)."""

import os
import pathlib
import ssl
import subprocess
import sys
import tempfile
import time

import anthropic
import httpx
import openai
import pytest

FAST = 'first_token_delay = "5ms"\ntoken_interval = "1ms"\ntool_call_delay = "5ms"\ntokens_per_response = 8\nerror_rate = 0\n'


@pytest.fixture
def tls_sluice(sluice):
    """Starts sluice with a self-signed certificate; returns (url, CA path)."""
    folder = pathlib.Path(tempfile.mkdtemp())
    ca = folder / "ca.pem"

    def start(extra: str = ""):
        url = sluice(f'{FAST}{extra}\n[tls]\nself_signed = true\nca_out = "{ca}"\n')
        deadline = time.monotonic() + 5
        while not ca.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        return url, str(ca)

    return start


def client(url: str, ca: str, http2: bool, max_retries: int = 2) -> anthropic.Anthropic:
    context = ssl.create_default_context(cafile=ca)
    return anthropic.Anthropic(
        base_url=url, api_key="sk-test", max_retries=max_retries,
        # anthropic 2.x brings its own httpx (httpx2): its client type, configured.
        http_client=anthropic.DefaultHttpxClient(verify=context, http2=http2),
    )


@pytest.mark.parametrize("http2", [True, False])
def test_streams_and_whole_messages_over_tls(tls_sluice, http2):
    url, ca = tls_sluice()
    assert url.startswith("https://")
    c = client(url, ca, http2)
    with c.messages.stream(model="m", max_tokens=64, messages=[{"role": "user", "content": "Hi"}]) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert len(text) > 0 and final.stop_reason == "end_turn"
    raw = c.messages.with_raw_response.create(model="m", max_tokens=64, messages=[{"role": "user", "content": "Hi"}])
    assert raw.http_response.http_version == ("HTTP/2" if http2 else "HTTP/1.1")
    assert raw.parse().usage.output_tokens == 8
    # A sync HTTP/2 client never reads an idle connection, so it would not see
    # sluice's GOAWAY at shutdown: closing it lets sluice stop at once.
    c.close()


def test_faults_over_http2(tls_sluice):
    url, ca = tls_sluice('[[faults]]\nkind = "http"\nstatus = 529\nfirst_requests = 1\n'
                         '[[faults]]\nkind = "stream_error"\nafter_tokens = 3\nevery = 3\n')
    c = client(url, ca, http2=True)
    # The 529 is retried (request 0), then request 1 streams cleanly.
    raw = c.messages.with_raw_response.create(model="m", max_tokens=64, messages=[{"role": "user", "content": "Hi"}])
    assert raw.retries_taken == 1
    # Request 2: a stream_error after 3 tokens, surfaced as the SDK's error.
    with pytest.raises(anthropic.APIStatusError) as raised:
        with c.messages.stream(model="m", max_tokens=64, messages=[{"role": "user", "content": "Hi"}]) as stream:
            for _ in stream.text_stream:
                pass
    assert raised.value.body["error"]["type"] == "overloaded_error"
    c.close()


def test_the_openai_sdk_over_http2(tls_sluice):
    url, ca = tls_sluice()
    context = ssl.create_default_context(cafile=ca)
    c = openai.OpenAI(base_url=f"{url}/v1", api_key="sk-test", http_client=httpx.Client(verify=context, http2=True))
    chunks = list(c.chat.completions.create(model="gpt-mock", messages=[{"role": "user", "content": "Hi"}], stream=True))
    assert [ch.choices[0].finish_reason for ch in chunks if ch.choices and ch.choices[0].finish_reason] == ["stop"]
    c.close()


def test_ssl_cert_file_is_enough_for_a_default_client(tls_sluice):
    """A stand-in for the real host: the app builds its client with defaults."""
    url, ca = tls_sluice()
    script = (
        "import anthropic, sys\n"
        "c = anthropic.Anthropic(base_url=sys.argv[1], api_key='sk-test')\n"
        "m = c.messages.create(model='m', max_tokens=8, messages=[{'role': 'user', 'content': 'Hi'}])\n"
        "print(m.stop_reason)\n"
    )
    env = {**os.environ, "SSL_CERT_FILE": ca}
    done = subprocess.run([sys.executable, "-c", script, url], env=env, capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "end_turn", done.stderr
    # Without the CA, verification fails: it is on.
    env.pop("SSL_CERT_FILE")
    failed = subprocess.run([sys.executable, "-c", script, url], env=env, capture_output=True, text=True, timeout=60)
    assert failed.returncode != 0 and "CERTIFICATE_VERIFY_FAILED" in failed.stderr, failed.stderr[-500:]
