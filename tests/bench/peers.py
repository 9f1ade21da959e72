"""`make bench-peers`: the gateway against two other LLM gateways, Portkey's (npm
@portkey-ai/gateway, on node) and LiteLLM's proxy (PyPI litellm[proxy], two workers), and against
the emulator itself and the pass-through floor Worker, in one run, in front of the same AI Gateway
emulator (its OpenAI chat completions endpoint), with the same load generator and request body.

The peers are installed by the Makefile outside the source tree, under .tools/peers/ (pinned
there). Each peer sends the emulator what the gateway sends it (the provider key and the
cf-aig-* headers), so the emulator does the same work on every path: they all share the cores.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, ExitStack, closing, contextmanager
from pathlib import Path
from typing import Any

import httpx
import yaml

from provision.local.runtime import LocalGateway
from tests.bench import cpu
from tests.bench.run import (
    C1_REQUESTS,
    CONCURRENCY,
    REQUESTS,
    ROOT,
    aig_headers,
    bench_stack,
    floor_worker,
    load,
)
from tests.support import Emulator

PEERS = ROOT / ".tools" / "peers"
PORTKEY = PEERS / "portkey" / "node_modules" / "@portkey-ai" / "gateway"
LITELLM = PEERS / "litellm"
LITELLM_WORKERS = 2
TARGETS = ("direct", "floor", "gateway", "portkey", "litellm")
PROMPT = "benchmark emulate:tokens=16"
# the targets: the gateway's throughput over each peer's, c=32, non-streaming
GOALS = {"portkey": 2.0, "litellm": 10.0}
# nothing of either peer calls home: LiteLLM's cost map, beta headers and the rest from its
# package, no .env read (DEV mode loads one), quiet logs
LITELLM_ENV = {
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    "LITELLM_LOCAL_ANTHROPIC_BETA_HEADERS": "True",
    "LITELLM_LOCAL_POLICY_TEMPLATES": "True",
    "LITELLM_LOCAL_BLOG_POSTS": "True",
    "LITELLM_LOCAL_AUTOROUTER_PRESETS": "True",
    "LITELLM_MODE": "PRODUCTION",
    "LITELLM_LOG": "ERROR",
    "DISABLE_ADMIN_UI": "True",
    "LITELLM_DONT_SHOW_FEEDBACK_BOX": "True",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def server(argv: list[str], url: str, probe: str, log: Path, env: dict[str, str]) -> Iterator[str]:
    """Start `argv` in a session of its own (LiteLLM forks workers), wait until GET url+probe
    answers 200, yield url; stop the whole session after."""
    with log.open("w") as out:
        process = subprocess.Popen(
            argv,
            cwd=log.parent,
            env={**os.environ, **env},
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 180
        while True:
            if process.poll() is not None:
                raise RuntimeError(
                    f"{argv[0]} exited ({process.returncode}):\n{log.read_text()[-4000:]}"
                )
            try:
                if httpx.get(url + probe, timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{argv[0]} not ready after 180 s:\n{log.read_text()[-4000:]}")
            time.sleep(0.25)
        cpu.register_tree(url, process.pid)  # the server and its workers
        yield url
    finally:
        cpu.forget(url)
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=30)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def portkey(directory: Path) -> AbstractContextManager[str]:
    """Portkey's gateway, its node server (build/start-server.js), no UI (--headless)."""
    port = free_port()
    argv = ["node", str(PORTKEY / "build" / "start-server.js"), f"--port={port}", "--headless"]
    return server(
        argv, f"http://127.0.0.1:{port}", "/", directory / "portkey.log", {"NODE_ENV": "production"}
    )


def litellm(
    directory: Path, upstream: str, key: str, headers: dict[str, str], master_key: str
) -> AbstractContextManager[str]:
    """LiteLLM's proxy, no database, a master key (1.106 refuses to start without one; without a
    database it is the one key it checks): one model, the emulator's OpenAI endpoint, sent the
    emulator's headers with each call."""
    config = {
        "model_list": [
            {
                "model_name": "gpt-4o-mini",
                "litellm_params": {
                    "model": "openai/gpt-4o-mini",
                    "api_base": upstream,
                    "api_key": key,
                    "extra_headers": headers,
                },
            }
        ],
        "general_settings": {"master_key": master_key},
        "litellm_settings": {"telemetry": False},
    }
    path = directory / "litellm.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    port = free_port()
    argv = [
        str(LITELLM / "bin" / "litellm"),
        "--config",
        str(path),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--num_workers",
        str(LITELLM_WORKERS),
    ]
    url = f"http://127.0.0.1:{port}"
    return server(argv, url, "/health/liveliness", directory / "litellm.log", LITELLM_ENV)


def versions() -> dict[str, str]:
    def package(path: Path) -> str:
        version: str = json.loads((path / "package.json").read_text())["version"]
        return version

    def output(*argv: str) -> str:
        return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True).stdout.strip()

    litellm_python = str(LITELLM / "bin" / "python")
    return {
        "gateway": output("git", "describe", "--always", "--dirty") or "?",
        "portkey": package(PORTKEY),
        "hono": package(PORTKEY.parent.parent / "@hono" / "node-server"),
        "node": output("node", "--version"),
        "litellm": output(
            litellm_python, "-c", "import importlib.metadata as m; print(m.version('litellm'))"
        ),
        "python": output(litellm_python, "-c", "import platform; print(platform.python_version())"),
    }


def answer_text(
    label: str, url: str, headers: dict[str, str], body: dict[str, Any], stream: bool
) -> str:
    """One request, checked: a 200 with choices; the answer's text (a stream's deltas joined)."""
    response = httpx.post(url, headers=headers, json={**body, "stream": stream}, timeout=60)
    if response.status_code != 200:
        raise RuntimeError(f"{label} {url}: {response.status_code} {response.text[:1000]}")
    if not stream:
        choices = response.json()["choices"]
        assert choices, f"{label}: no choices in {response.text[:1000]}"
        content: str = choices[0]["message"]["content"]
        return content
    events = [
        line.removeprefix("data:").strip()
        for line in response.text.splitlines()
        if line.startswith("data:")
    ]
    assert events and events[-1] == "[DONE]", (
        f"{label}: stream without [DONE]: {response.text[-500:]}"
    )
    parts: list[str] = []
    for event in events[:-1]:
        for choice in json.loads(event).get("choices") or []:
            parts.append((choice.get("delta") or {}).get("content") or "")
    return "".join(parts)


def main() -> int:
    if not (PORTKEY / "build").is_dir() or not (LITELLM / "bin" / "litellm").exists():
        print(f"the peers are not installed under {PEERS}: run `make bench-peers`", file=sys.stderr)
        return 2
    directory = Path(tempfile.mkdtemp(prefix="llm-gateway-peers-"))
    log = directory / "worker.log"
    got: dict[tuple[bool, int], dict[str, dict[str, Any]]] = {}
    with ExitStack() as stack:
        gateway = stack.enter_context(LocalGateway(bench_stack(directory), log_path=log))
        assert gateway.config is not None and gateway.emulator_url
        if gateway.runtime_pid is not None:
            cpu.register(gateway.worker_url, gateway.runtime_pid)
        base = f"{gateway.emulator_url}/v1/{gateway.config.accountId}/{gateway.config.gatewayId}"
        key = gateway.secrets.provider_api_keys["openai"]
        aig = aig_headers(gateway)
        master_key = f"sk-{secrets.token_hex(32)}"
        body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": PROMPT}]}
        upstream = {"content-type": "application/json", "authorization": f"Bearer {key}", **aig}
        floor_url = stack.enter_context(floor_worker(base))
        portkey_url = stack.enter_context(portkey(directory))
        litellm_url = stack.enter_context(
            litellm(directory, f"{base}/openai", key, aig, master_key)
        )
        runs: dict[str, tuple[str, dict[str, str], dict[str, Any]]] = {
            "direct": (f"{base}/openai/chat/completions", upstream, body),
            "floor": (f"{floor_url}/openai/chat/completions", upstream, body),
            # as tests/bench/run.py measures it: alice's demo key, the dev stack's full path
            "gateway": (
                f"{gateway.worker_url}/v1/chat/completions",
                {
                    "content-type": "application/json",
                    "authorization": f"Bearer {gateway.demo_keys()['alice']}",
                    "anthropic-version": "2023-06-01",
                },
                {**body, "model": "openai/gpt-4o-mini"},
            ),
            # OpenAI with the emulator as its custom host; the cf-aig-* headers forwarded
            "portkey": (
                f"{portkey_url}/v1/chat/completions",
                {
                    **upstream,
                    "x-portkey-provider": "openai",
                    "x-portkey-custom-host": f"{base}/openai",
                    "x-portkey-forward-headers": ",".join(aig),
                },
                body,
            ),
            # the provider key and cf-aig-* headers are in the model's litellm_params
            "litellm": (
                f"{litellm_url}/v1/chat/completions",
                {"content-type": "application/json", "authorization": f"Bearer {master_key}"},
                body,
            ),
        }
        emulator = stack.enter_context(closing(Emulator(gateway.emulator_url)))
        for stream in (False, True):
            expected = answer_text("direct", *runs["direct"], stream=stream)
            assert expected, "the emulator answered no text"
            for label, run in runs.items():
                text = answer_text(label, *run, stream=stream)
                assert text == expected, (
                    f"{label} (stream={stream}): {text!r} is not the emulator's {expected!r}"
                )
                # what reached the emulator: the provider key and every cf-aig-* header
                sent = emulator.requests()[-1]["headers"]
                assert sent.get("authorization") == f"Bearer {key}", f"{label}: {sent}"
                assert sent.get("cf-aig-authorization") == aig["cf-aig-authorization"], sent
                assert all(name in sent for name in aig), (
                    f"{label} sent the emulator {sorted(sent)}"
                )
        info = versions()
        c1 = C1_REQUESTS
        print(
            f"Gateways against the same emulator (OpenAI chat completions, '{PROMPT}') and load "
            f"generator — gateway {info['gateway']} (dev stack, alice, full policy path), Portkey "
            f"@portkey-ai/gateway {info['portkey']} (node {info['node']}, @hono/node-server {info['hono']}), "
            f"LiteLLM litellm[proxy] "
            f"{info['litellm']} ({LITELLM_WORKERS} workers, Python {info['python']}, no database, a master key); "
            f"{os.cpu_count()} cores; {REQUESTS} requests per run at c=32, {c1} at c=1 (plus warmup)",
            flush=True,
        )
        for stream in (False, True):
            for concurrency in CONCURRENCY:
                results: dict[str, dict[str, Any]] = {}
                for label, (url, headers, run_body) in runs.items():
                    results[label] = load(url, headers, {**run_body, "stream": stream}, concurrency)
                errors = {label: r["errorKinds"] for label, r in results.items() if r["errors"]}
                if errors:
                    # a peer's failures are a finding (printed with its row); ours end the run
                    print(f"errors (stream={stream}, c={concurrency}): {errors}", file=sys.stderr)
                    if set(errors) & {"direct", "floor", "gateway"}:
                        return 1
                got[stream, concurrency] = results
        report(got)
        print(f"(peers' logs: {directory})")
    return 0


def report(got: dict[tuple[bool, int], dict[str, dict[str, Any]]]) -> None:
    header = (
        f"{'mode':<11}{'conc':>5}  {'path':<9}{'p50 ms':>9}{'p99 ms':>9}{'rps':>8}"
        f"{'added p50':>11}{'x direct':>10}{'cpu us':>8}  {'errors':<6}"
    )
    print(header)
    print("-" * len(header))
    for (stream, concurrency), results in got.items():
        mode = "streaming" if stream else "non-stream"
        direct = results["direct"]
        for label in TARGETS:
            r = results[label]
            added = "" if label == "direct" else f"{r['p50'] - direct['p50']:>+11.2f}"
            failed = ", ".join(f"{n} {kind}" for kind, n in r["errorKinds"].items())
            spent = "-" if r.get("cpuUs") is None else f"{r['cpuUs']:.0f}"
            print(
                f"{mode:<11}{concurrency:>5}  {label:<9}{r['p50']:>9.2f}{r['p99']:>9.2f}{r['rps']:>8.0f}"
                f"{added:>11}{r['rps'] / direct['rps']:>10.2f}{spent:>8}  {failed}"
            )
        ours = results["gateway"]["rps"]
        ratios = []
        for peer, goal in GOALS.items():
            ratio = ours / results[peer]["rps"]
            verdict = ""
            if not stream and concurrency == 32:
                verdict = f" (target ≥ {goal:g}×: {'met' if ratio >= goal else 'NOT MET'})"
            ratios.append(f"gateway/{peer} {ratio:.2f}×{verdict}")
        print(f"{'':<18}throughput " + ", ".join(ratios))
        if all(results[p].get("cpuUs") for p in ("gateway", *GOALS)):
            shares = ", ".join(
                f"gateway/{peer} {results['gateway']['cpuUs'] / results[peer]['cpuUs']:.2f}×"
                for peer in GOALS
            )
            print(f"{'':<18}CPU per request {shares}")
    print(
        "added p50 = the path's p50 over direct's; x direct = its throughput over direct's. At c=32 "
        "every path runs at its throughput limit (the cores are shared by the client, the emulator "
        "and the path), so latency there is mostly queueing; the rps ratio is the figure. cpu us = "
        "the CPU time per request of the processes serving the path (the floor's and the gateway's "
        "workerd, Portkey's node server, LiteLLM's server and workers; the emulator's is in none), "
        "warm-up included: what each path costs, apart from how the cores were shared."
    )


if __name__ == "__main__":
    sys.exit(main())
