"""The AI Gateway emulator as a subprocess, for the tests of the emulator itself
(tests/test_emulator*.py): its configuration, a running instance per module, and helpers."""

from __future__ import annotations

import json
import re
import select
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
WORKER_DIR = REPO_ROOT / "worker"
EMULATOR = WORKER_DIR / "local" / "emulator.ts"
READY_TIMEOUT_S = 10.0

ACCOUNT = "0123456789abcdef0123456789abcdef"
GATEWAY = "llm-gateway-dev"
OPEN_GATEWAY = "open-gw"  # authentication off, OpenAI key stored on the gateway (BYOK)
TOKEN = "local-aig-token"
OPENAI_KEY = "sk-local-openai"
ANTHROPIC_KEY = "sk-ant-local"
WORKERS_AI_KEY = "cf-local-workers-ai"
# Not in the anthropic SDK's deprecation table: the SDK warns (an error here) on old names.
CLAUDE = "claude-opus-4-6"
CROCKFORD_ULID = re.compile(r"^[0-9A-HJKMNP-TV-Z]{26}$")
WORD = re.compile(r"^[a-z]+$")

CONFIG: dict[str, Any] = {
    "accountId": ACCOUNT,
    "gateways": {
        GATEWAY: {
            "authentication": True,
            "token": TOKEN,
            "cacheTtl": 0,
            "collectLogs": True,
            "rateLimit": {"limit": 0, "interval": 0, "technique": "fixed"},
            "byokProviders": [],
        },
        OPEN_GATEWAY: {"authentication": False, "byokProviders": ["openai"]},
    },
    "providerKeys": {
        "openai": OPENAI_KEY,
        "anthropic": ANTHROPIC_KEY,
        "workers-ai": WORKERS_AI_KEY,
    },
}


def _start(config_path: Path) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        # As provision/local/runtime.py runs the runtime: tsx's ESM loader, resolved from worker/node_modules.
        ["node", "--import", "tsx/esm", str(EMULATOR), "--config", str(config_path), "--port", "0"],
        cwd=WORKER_DIR,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], READY_TIMEOUT_S)
    if not ready:
        proc.kill()
        raise RuntimeError(f"emulator did not print its URL within {READY_TIMEOUT_S}s")
    line = proc.stdout.readline()
    if not line:
        stderr = proc.stderr.read() if proc.stderr else ""
        raise RuntimeError(f"emulator exited early: {stderr}")
    return proc, line


@contextmanager
def running_emulator(config: dict[str, Any], directory: Path) -> Iterator[str]:
    """An emulator subprocess serving `config`; yields its URL (the other test_emulator_* use it)."""
    config_path = directory / "config.json"
    config_path.write_text(json.dumps(config))
    proc, line = _start(config_path)
    try:
        yield json.loads(line)["emulatorUrl"]
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def sse_data(text: str) -> list[str]:
    return [line[len("data: ") :] for line in text.split("\n") if line.startswith("data: ")]


def add_fault(http: httpx.Client, **spec: Any) -> str:
    response = http.post("/__emulator/faults", json=spec)
    response.raise_for_status()
    return response.json()["id"]


def emulator_fixtures(
    config: dict[str, Any], name: str
) -> tuple[Callable[..., Any], Callable[..., Any]]:
    """A module's `emulator_url` (one emulator serving `config`) and `http` (a client of it,
    the emulator's state reset before each test): `emulator_url, http = emulator_fixtures(...)`."""

    @pytest.fixture(scope="module")
    def emulator_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
        with running_emulator(config, tmp_path_factory.mktemp(name)) as url:
            yield url

    @pytest.fixture()
    def http(emulator_url: str) -> Iterator[httpx.Client]:
        with httpx.Client(base_url=emulator_url, timeout=10) as client:
            client.post("/__emulator/reset").raise_for_status()
            yield client

    return emulator_url, http
