"""Shared by the Python tests (tests/sdk/python, tests/clients/python): starts the real sluice binary on a free port with a given config.

The binary is $SLUICE_BIN, else target/release/sluice, else target/debug/sluice.
sluice prints its banner, which names the bound address, on stdout.
"""

import os
import pathlib
import re
import subprocess
import tempfile
import time

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


def sluice_binary() -> str:
    explicit = os.environ.get("SLUICE_BIN")
    if explicit:
        return explicit
    for profile in ("release", "debug"):
        candidate = ROOT / "target" / profile / "sluice"
        if candidate.exists():
            return str(candidate)
    raise RuntimeError("no sluice binary: run `cargo build --release` or set SLUICE_BIN")


class Sluice:
    def __init__(self, config: str, mode: str = "mock"):
        self.config_file = tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False)
        self.config_file.write(config)
        self.config_file.close()
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("PORT", "ERROR_RATE", "SLUICE_CONFIG", "SLUICE_UPSTREAM")
        }
        self.process = subprocess.Popen(
            [sluice_binary(), mode, "--config", self.config_file.name, "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=env,
        )
        deadline = time.monotonic() + 10
        self.url = None
        self.admin = None
        assert self.process.stdout is not None
        while (self.url is None or self.admin is None) and time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line:
                break
            match = re.search(r"running on (https?://127\.0\.0\.1:\d+)", line)
            if match:
                self.url = match.group(1)
            admin = re.search(r"Admin: (http://127\.0\.0\.1:\d+)", line)
            if admin:
                self.admin = admin.group(1)
        if self.url is None or self.admin is None:
            self.stop()
            raise RuntimeError("sluice did not print its address within 10 s")

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        os.unlink(self.config_file.name)


@pytest.fixture
def sluice():
    """Call with a TOML config (and mode "mock" or "proxy"); returns the base
    URL. Every server started is stopped."""
    started = []

    def start(config: str = "", mode: str = "mock") -> str:
        server = Sluice(config, mode)
        started.append(server)
        return server.url

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def sluice_with_admin():
    """Like `sluice`, but returns the server: its `url` and `admin` URLs."""
    started = []

    def start(config: str = "", mode: str = "mock") -> Sluice:
        server = Sluice(config, mode)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
