"""Helpers shared by the end-to-end tests: emulator control and client factories."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from openai import OpenAI

from provision.local.runtime import LocalGateway
from provision.stack.keys import demo_key

ROOT = Path(__file__).resolve().parent.parent
E2E_STACK = ROOT / "tests" / "fixtures" / "Pulumi.e2e.yaml"


T = TypeVar("T")


def eventually(probe: Callable[[], T], timeout: float = 10.0, interval: float = 0.05) -> T:
    """The first truthy result of `probe`, polled until `timeout` (then its last result).

    For what lands after the response: settlements run in ctx.waitUntil, processes exit."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


def stack_gateway(stack: Path) -> Any:
    """A module's own local runtime of `stack`, test hooks on: `gateway = stack_gateway(PATH)`
    (conftest's `ledger` and `upstream` then use it)."""

    @pytest.fixture(scope="module")
    def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalGateway]:
        log = tmp_path_factory.mktemp("worker-log") / "worker.log"  # gateway.logs() reads it
        with LocalGateway(stack, test_hooks=True, log_path=log) as running:
            yield running

    return gateway


def admin_metrics(gateway: LocalGateway, **params: str) -> dict[str, Any]:
    """GET /admin/metrics of a local gateway with its admin key."""
    response = httpx.get(
        f"{gateway.worker_url}/admin/metrics",
        params=params,
        headers={"authorization": f"Bearer {gateway.secrets.admin_api_key}"},
        timeout=30,
    )
    response.raise_for_status()
    result: dict[str, Any] = response.json()
    return result


def key(key_id: str) -> str:
    """The plain key of a demo key id declared in a test stack."""
    return demo_key(key_id)


class Emulator:
    """The AI Gateway emulator's test controls (faults, request log, config)."""

    def __init__(self, url: str):
        self.url = url
        self.http = httpx.Client(base_url=f"{url}/__emulator", timeout=10)

    def requests(self, **filters: str) -> list[dict[str, Any]]:
        params = {f"metadata.{k}": v for k, v in filters.items()}
        response = self.http.get("/requests", params=params)
        response.raise_for_status()
        return response.json()["requests"]

    def request_for(self, request_id: str) -> dict[str, Any]:
        found = self.requests(requestId=request_id)
        assert len(found) == 1, f"expected one upstream request for {request_id}, got {len(found)}"
        return found[0]

    def answer(self, log_id: str) -> dict[str, Any]:
        """The answer `log_id` as the emulator sent it: {status, body} or {status, chunks}."""
        response = self.http.get(f"/answers/{log_id}")
        response.raise_for_status()
        answer: dict[str, Any] = response.json()
        return answer

    def stream(self, log_id: str) -> list[tuple[float, str]]:
        """(wall-clock ms, chunk) of each chunk the emulator streamed in its answer `log_id`."""
        return [(chunk["at"], chunk["data"]) for chunk in self.answer(log_id)["chunks"]]

    def sent_chunks(self, request_id: str) -> list[tuple[float, str]]:
        """The chunks of the stream the emulator sent for the gateway's request `request_id`."""
        return self.stream(self.request_for(request_id)["logId"])

    def fault(self, **fault: Any) -> None:
        self.http.post("/faults", json=fault).raise_for_status()

    def clear_faults(self) -> None:
        self.http.delete("/faults").raise_for_status()

    def configure(self, gateways: dict[str, Any]) -> None:
        self.http.post("/config", json={"gateways": gateways}).raise_for_status()

    def close(self) -> None:
        self.http.close()


def openai_client(base_url: str, key_id: str, **kwargs: Any) -> OpenAI:
    return OpenAI(base_url=base_url, api_key=key(key_id), max_retries=0, timeout=30, **kwargs)


def error_of(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"}, f"not an OpenAI error body: {json.dumps(body)[:300]}"
    assert set(body["error"]) == {"message", "type", "param", "code"}
    return body["error"]


async def burst(url: str, key_id: str, count: int, body: dict[str, Any]) -> list[int]:
    """`count` identical requests at once; their status codes."""
    import asyncio

    headers = {"authorization": f"Bearer {key(key_id)}"}
    async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=count)) as client:
        responses = await asyncio.gather(
            *[client.post(url, json=body, headers=headers) for _ in range(count)]
        )
    return [r.status_code for r in responses]


def current_month() -> str:
    import datetime as dt

    return dt.datetime.now(dt.UTC).strftime("%Y-%m")


class WorkerTestHooks:
    """The test-only routes of a `test_hooks=True` render (absent from production renders)."""

    def __init__(self, worker_url: str):
        self.http = httpx.Client(base_url=worker_url, timeout=30)

    def _post(self, path: str, body: dict[str, Any]) -> Any:
        response = self.http.post(path, json=body)
        response.raise_for_status()
        return response.json()

    def usage(self, org_id: str, month: str | None = None) -> dict[str, Any]:
        """The ledger's rows, once settlements already made have reached it (lease batches
        leave the Worker up to a second after their requests)."""
        self.quiesce()
        return self._post(
            "/__test/ledger/usage", {"orgId": org_id, "month": month or current_month()}
        )

    def quiesce(self, timeout: float = 10.0) -> None:
        """Wait until no settlement (or pool report) is queued in a lease batch."""
        deadline = time.monotonic() + timeout
        while self._post("/__test/leases", {})["unacknowledged"] and time.monotonic() < deadline:
            time.sleep(0.02)

    def user_row(self, org_id: str, user_id: str, month: str | None = None) -> dict[str, Any]:
        empty = {
            "usedMicros": 0,
            "requests": 0,
            "tokensIn": 0,
            "tokensOut": 0,
            "estimated": 0,
            "cached": 0,
            "fallbacks": 0,
            "standIns": 0,
            "implausible": 0,
        }
        return self.usage(org_id, month)["users"].get(user_id, empty)

    def record(self, org_id: str, **settle: Any) -> Any:
        return self._post("/__test/ledger/settle", {"orgId": org_id, **settle})

    def reserve(self, org_id: str, **admit: Any) -> Any:
        return self._post("/__test/ledger/admit", {"orgId": org_id, **admit})

    def kv(self, prefix: str) -> dict[str, Any]:
        return self._post("/__test/kv", {"prefix": prefix})

    def close(self) -> None:
        self.http.close()


def git(repo: Path, *args: str) -> str:
    env = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
    result = subprocess.run(
        [
            "git",
            "-c",
            "user.name=Test",
            "-c",
            "user.email=test@example.com",
            "-c",
            "commit.gpgsign=false",
            *args,
        ],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def run_cli(
    *args: Any, cwd: Path | None = None, env: dict[str, str] | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """`provision ARGS` in this process (no interpreter start-up), as a finished process.

    stdout, stderr and the exit code are what the command line would give; `env` replaces the
    environment and `cwd` the working directory while it runs.
    """
    import contextlib
    import io
    import sys
    from unittest import mock

    from provision.cli import main

    argv = [str(a) for a in args]
    out, err = io.StringIO(), io.StringIO()
    stack = contextlib.ExitStack()
    with stack:
        stack.enter_context(contextlib.redirect_stdout(out))
        stack.enter_context(contextlib.redirect_stderr(err))
        if cwd is not None:
            stack.enter_context(contextlib.chdir(cwd))
        if env is not None:
            stack.enter_context(mock.patch.dict(os.environ, env, clear=True))
        if stdin is not None:
            stack.enter_context(mock.patch.object(sys, "stdin", io.StringIO(stdin)))
        try:
            code = main(argv)
        except SystemExit as exit_:  # argparse errors and --help
            code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
    return subprocess.CompletedProcess(["provision", *argv], code, out.getvalue(), err.getvalue())
