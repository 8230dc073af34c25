"""Agent CLIs against sluice, run non-interactively as a user would: Claude
Code (`claude -p`) and the Codex CLI (`codex exec`), each against the mock,
then recorded through `sluice proxy` in front of the mock and replayed by
`sluice mock --replay`.

Each run must end with exit 0 within a bounded number of model requests, and
every request of a replayed session must find its cassette (none answered
`x-sluice-replay: unmatched`). The CLIs come from tests/clients/agents
(package.json, pinned; installed by scripts/test.sh); neither reaches the
network: their telemetry and update checks are switched off and their base
URLs point at sluice on 127.0.0.1.
"""

from __future__ import annotations

import os
import pathlib
import re
import subprocess
import tempfile
import urllib.request

import pytest

HERE = pathlib.Path(__file__).resolve().parent
BIN = HERE / "node_modules" / ".bin"

# Fast timing, so a session of a dozen model calls takes seconds.
FAST = (
    'error_rate = 0\nfirst_token_delay = "5ms"\ntoken_interval = "1ms"\n'
    'tool_call_delay = "5ms"\ntokens_per_response = 8\n'
)
# The proxy adds nothing of its own while it records.
PASS_THROUGH = 'error_rate = 0\nfirst_token_delay = "0ms"\ntoken_interval = "0ms"\ntool_call_delay = "0ms"\n'


def metrics(admin: str) -> dict[str, float]:
    """The admin endpoint's Prometheus samples, by series."""
    with urllib.request.urlopen(f"{admin}/metrics", timeout=10) as response:
        text = response.read().decode()
    samples = {}
    for line in text.splitlines():
        match = re.match(r"^([a-z_]+(?:\{[^}]*\})?) ([0-9.e+-]+)$", line)
        if match:
            samples[match.group(1)] = float(match.group(2))
    return samples


def total(samples: dict[str, float], prefix: str) -> float:
    return sum(value for series, value in samples.items() if series.startswith(prefix))


def model_requests(admin: str) -> float:
    """Requests sluice answered on a known route (Claude Code's `HEAD /`
    probe goes to route "none")."""
    return total(metrics(admin), 'sluice_requests_total{route="default"')


def unmatched(admin: str) -> float:
    return metrics(admin).get('sluice_replays_total{result="not_found"}', 0.0)


def posted(tapes: str) -> int:
    """Cassettes of model requests (POST) in `tapes`: what a replay can serve
    (Claude Code's `HEAD /` probe is recorded too, and is no model request)."""
    heads = (path.read_text().split("\n", 1)[0] for path in pathlib.Path(tapes).glob("*.jsonl"))
    return sum(1 for head in heads if '"method":"POST"' in head)


def wait_for_cassettes(proxy_admin: str) -> None:
    """The recorder writes on a thread of its own: wait (at most 10 s) until
    every exchange the proxy answered has its outcome counted (written, or
    dropped as incomplete when a client left early)."""
    for _ in range(500):
        samples = metrics(proxy_admin)
        if total(samples, "sluice_cassettes_recorded_total") >= model_requests(proxy_admin):
            return
        subprocess.run(["sleep", "0.02"], check=True)
    raise AssertionError(f"not every exchange was recorded after 10 s: {metrics(proxy_admin)}")


def replayed(admin: str) -> float:
    samples = metrics(admin)
    return samples.get('sluice_replays_total{result="replayed"}', 0.0) + samples.get(
        'sluice_replays_total{result="replayed_by_position"}', 0.0
    )


@pytest.fixture
def workdir():
    """A folder the agent works in (with two files to list), and a HOME of its own."""
    with tempfile.TemporaryDirectory() as root:
        work = pathlib.Path(root) / "work"
        home = pathlib.Path(root) / "home"
        work.mkdir()
        home.mkdir()
        (work / "notes.txt").write_text("a\n")
        (work / "plan.md").write_text("b\n")
        yield work, home


def claude(
    base_url: str, prompt: str, work: pathlib.Path, home: pathlib.Path, **extra_env: str
) -> subprocess.CompletedProcess:
    env = extra_env | {
        "PATH": os.environ["PATH"],
        "HOME": str(home),
        "ANTHROPIC_BASE_URL": base_url,
        "ANTHROPIC_API_KEY": "sk-ant-test",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_TELEMETRY": "1",
        "DISABLE_AUTOUPDATER": "1",
        "DISABLE_ERROR_REPORTING": "1",
    }
    return subprocess.run(
        [str(BIN / "claude"), "-p", prompt], cwd=work, env=env, capture_output=True, text=True, timeout=300
    )


def codex(base_url: str, prompt: str, work: pathlib.Path, home: pathlib.Path) -> subprocess.CompletedProcess:
    # The Codex CLI's provider block: the Responses API at sluice.
    (home / "config.toml").write_text(
        'model = "gpt-mock"\nmodel_provider = "sluice"\n\n[model_providers.sluice]\n'
        f'name = "sluice"\nbase_url = "{base_url}/v1"\nenv_key = "SLUICE_API_KEY"\nwire_api = "responses"\n'
    )
    env = {"PATH": os.environ["PATH"], "HOME": str(home), "CODEX_HOME": str(home), "SLUICE_API_KEY": "sk-test"}
    return subprocess.run(
        [str(BIN / "codex"), "exec", "--skip-git-repo-check", prompt],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def outcome(run: subprocess.CompletedProcess) -> str:
    return f"exit {run.returncode}\nstdout: {run.stdout[-2000:]}\nstderr: {run.stderr[-2000:]}"


def test_claude_code_says_hi_against_the_mock(sluice_with_admin, workdir):
    work, home = workdir
    mock = sluice_with_admin(FAST)
    run = claude(mock.url, "say hi", work, home)
    assert run.returncode == 0, outcome(run)
    assert run.stdout.strip(), "an answer was printed"
    # With the default tool_use.choice = "first", Claude Code's first tool
    # (Agent) is called on every turn: sub-agents nest before the answer.
    calls = model_requests(mock.admin)
    assert 2 <= calls <= 15, calls


def test_claude_code_makes_two_calls_when_the_mock_picks_bash(sluice_with_admin, workdir):
    work, home = workdir
    mock = sluice_with_admin(FAST + '[tool_use]\nchoice = "Bash"\n')
    run = claude(mock.url, "say hi", work, home)
    assert run.returncode == 0, outcome(run)
    # One tool call (a shell command the headless CLI refuses), then the answer.
    assert model_requests(mock.admin) == 2


def test_claude_code_thinks_calls_a_tool_and_sends_its_thinking_back(sluice_with_admin, workdir):
    """With extended thinking on (MAX_THINKING_TOKENS), each reply starts with
    a signed thinking block; the turn after the tool result sends it back,
    and the mock checks its signature as the API does."""
    work, home = workdir
    mock = sluice_with_admin(FAST + '[tool_use]\nchoice = "Bash"\n[thinking]\ntokens = 12\n')
    run = claude(mock.url, "say hi", work, home, MAX_THINKING_TOKENS="2048")
    assert run.returncode == 0, outcome(run)
    assert model_requests(mock.admin) == 2
    samples = metrics(mock.admin)
    refused = total(samples, 'sluice_requests_total{route="default",mode="mock",outcome="client_error"')
    assert refused == 0, samples
    # Thinking streamed before the first text: the first token came earlier.
    first_token = samples["sluice_first_token_delay_seconds_sum"]
    first_text = samples["sluice_time_to_first_text_seconds_sum"]
    assert first_text > first_token, samples


def test_claude_code_sessions_recorded_through_the_proxy_replay_whole(sluice_with_admin, workdir):
    work, home = workdir
    with tempfile.TemporaryDirectory() as tapes:
        mock = sluice_with_admin(FAST)
        proxy = sluice_with_admin(f'{PASS_THROUGH}[record]\ndir = "{tapes}"\n[upstream]\nurl = "{mock.url}"\n', mode="proxy")
        prompts = ["say hi", "list the files in this folder"]
        for prompt in prompts:
            run = claude(proxy.url, prompt, work, home)
            assert run.returncode == 0, outcome(run)
        wait_for_cassettes(proxy.admin)
        recorded = posted(tapes)
        replay = sluice_with_admin(f'{FAST}[replay]\ndir = "{tapes}"\n')
        # Twice each: the volatile spans (sub-agent ids, durations, dates) differ every run.
        for prompt in prompts * 2:
            run = claude(replay.url, prompt, work, home)
            assert run.returncode == 0, outcome(run)
        assert unmatched(replay.admin) == 0
        assert replayed(replay.admin) == 2 * recorded


def test_codex_says_hi_against_the_mock_and_a_recorded_session_replays(sluice_with_admin, workdir):
    work, home = workdir
    mock = sluice_with_admin(FAST)
    run = codex(mock.url, "say hi", work, home)
    assert run.returncode == 0, outcome(run)
    assert 1 <= model_requests(mock.admin) <= 3
    with tempfile.TemporaryDirectory() as tapes:
        proxy = sluice_with_admin(f'{PASS_THROUGH}[record]\ndir = "{tapes}"\n[upstream]\nurl = "{mock.url}"\n', mode="proxy")
        run = codex(proxy.url, "say hi", work, home)
        assert run.returncode == 0, outcome(run)
        wait_for_cassettes(proxy.admin)
        recorded = posted(tapes)
        replay = sluice_with_admin(f'{FAST}[replay]\ndir = "{tapes}"\n')
        for _ in range(2):
            run = codex(replay.url, "say hi", work, home)
            assert run.returncode == 0, outcome(run)
        assert unmatched(replay.admin) == 0
        assert replayed(replay.admin) == 2 * recorded
