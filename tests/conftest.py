"""Shared by the Python tests (tests/sdk/python, tests/clients/python): starts the real sluice binary on a free port with a given config.

The binary is $SLUICE_BIN, else target/release/sluice, else target/debug/sluice.
sluice writes the bound addresses to the file its --ready-file flag names.
"""

import json
import os
import pathlib
import shutil
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
    """The binary, started on free ports; `url` and `admin` come from the file
    its `--ready-file` flag writes once both ports are bound (docs/testing.md,
    "Starting sluice from a script")."""

    def __init__(self, config: str, mode: str = "mock"):
        self.work = tempfile.mkdtemp(prefix="sluice-")
        config_path = os.path.join(self.work, "sluice.toml")
        ready_path = os.path.join(self.work, "ready.json")
        with open(config_path, "w") as file:
            file.write(config)
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("PORT", "ERROR_RATE", "SLUICE_CONFIG", "SLUICE_UPSTREAM", "SLUICE_READY_FILE")
        }
        self.process = subprocess.Popen(
            [
                sluice_binary(), mode, "--config", config_path, "--listen", "127.0.0.1:0",
                "--admin-listen", "127.0.0.1:0", "--ready-file", ready_path,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        deadline = time.monotonic() + 10
        while not os.path.exists(ready_path):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("sluice exited or was not ready within 10 s")
            time.sleep(0.01)
        with open(ready_path) as file:
            ready = json.load(file)
        self.url = ready["api"]
        self.admin = ready["admin"]

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        shutil.rmtree(self.work, ignore_errors=True)


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
