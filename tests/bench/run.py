"""`make bench`: what the Worker adds over calling the AI Gateway (emulator) directly, and how
exact the usage ledger stays under concurrency.

Both paths run in the same session on the same machine, with the same request bodies and
the same load generator, so the latency figures are ratios against a baseline measured in
the same run, not absolute claims.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from provision.config import resolve_stack
from provision.local import LocalGateway
from tests.support import E2E_STACK, WorkerTestHooks, burst

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
LOADGEN = HERE / "loadgen.mjs"
REQUESTS = int(os.environ.get("BENCH_REQUESTS", "2000"))
CONCURRENCY = (1, 32)


def load(url: str, headers: dict[str, str], body: dict, concurrency: int) -> dict:
    requests = REQUESTS if concurrency > 1 else max(200, REQUESTS // 5)
    spec = {
        "url": url,
        "headers": headers,
        "body": body,
        "requests": requests,
        "concurrency": concurrency,
        "warmup": min(200, requests // 5),
    }
    out = subprocess.run(
        ["node", str(LOADGEN), json.dumps(spec)],
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    return json.loads(out.stdout)


def paths(gateway: LocalGateway) -> list[tuple[str, str, dict[str, str], dict, str, dict, bool]]:
    """(name, direct URL, direct headers, direct body, Worker path, Worker body, streams only)
    per provider path: the same answer asked of the emulator's native endpoint directly and
    through the Worker."""
    assert gateway.config is not None and gateway.emulator_url
    config = gateway.config
    base = f"{gateway.emulator_url}/v1/{config.accountId}/{config.gatewayId}"
    keys = gateway.secrets.provider_api_keys
    # What the gateway sends AI Gateway besides the provider's key, sent on the direct and floor
    # paths too, so the emulator does the same work per request on every path (it shares the
    # cores): the ratios then measure the Worker alone.
    aig = {
        "cf-aig-authorization": f"Bearer {gateway.secrets.ai_gateway_token}",
        "cf-aig-metadata": json.dumps(
            {
                "requestId": "req_0123456789abcdef01234567",
                "userId": "alice",
                "orgId": "demo-corp",
                "keyId": "key_alice_laptop",
            }
        ),
        "cf-aig-custom-cost": json.dumps({"per_token_in": 1.5e-7, "per_token_out": 6e-7}),
        "cf-aig-skip-cache": "true",
    }
    messages = [{"role": "user", "content": "benchmark emulate:tokens=16"}]
    return [
        (
            "openai",  # pass-through
            f"{base}/openai/chat/completions",
            {
                "content-type": "application/json",
                "authorization": f"Bearer {keys['openai']}",
                **aig,
            },
            {"model": "gpt-4o-mini", "messages": messages},
            "/v1/chat/completions",
            {"model": "openai/gpt-4o-mini", "messages": messages},
            False,
        ),
        (
            "anthropic",  # OpenAI chat <-> Anthropic Messages, both ways
            f"{base}/anthropic/v1/messages",
            {
                "content-type": "application/json",
                "x-api-key": keys["anthropic"],
                "anthropic-version": "2023-06-01",
                **aig,
            },
            {"model": "claude-sonnet-4-5", "max_tokens": 4096, "messages": messages},
            "/v1/chat/completions",
            {"model": "anthropic/claude-sonnet-4-5", "messages": messages},
            False,
        ),
        (
            "openai+u",  # the client asks for usage: its stream is upstream's own bytes
            f"{base}/openai/chat/completions",
            {
                "content-type": "application/json",
                "authorization": f"Bearer {keys['openai']}",
                **aig,
            },
            {
                "model": "gpt-4o-mini",
                "messages": messages,
                "stream_options": {"include_usage": True},
            },
            "/v1/chat/completions",
            {
                "model": "openai/gpt-4o-mini",
                "messages": messages,
                "stream_options": {"include_usage": True},
            },
            True,
        ),
        (
            "messages",  # Anthropic Messages as Claude Code sends it: passed through
            f"{base}/anthropic/v1/messages",
            {
                "content-type": "application/json",
                "x-api-key": keys["anthropic"],
                "anthropic-version": "2023-06-01",
                **aig,
            },
            {"model": "claude-sonnet-4-5", "max_tokens": 4096, "messages": messages},
            "/v1/messages",
            {"model": "claude-sonnet-4-5", "max_tokens": 4096, "messages": messages},
            True,
        ),
    ]


@contextmanager
def floor_worker(upstream: str, mode: str = "pass") -> Iterator[str]:
    """worker/bench/floor.mjs: a pass-through Worker in miniflare in front of `upstream`
    ("pass": bodies streamed untouched; "read": both bodies read as a meter must)."""
    process = subprocess.Popen(
        ["node", str(ROOT / "worker" / "bench" / "floor.mjs"), upstream, mode],
        cwd=ROOT / "worker",
        stdin=subprocess.PIPE,  # its end tells the floor its parent is gone
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        yield json.loads(process.stdout.readline())["url"]
    finally:
        process.terminate()
        process.wait(timeout=30)


def latency() -> int:
    # the Worker's request log lines (one per request) go to a file, not between the figures
    log = Path(tempfile.mkdtemp(prefix="llm-gateway-bench-")) / "worker.log"
    with LocalGateway(resolve_stack("dev"), log_path=log) as gateway:
        assert gateway.config is not None and gateway.emulator_url
        user_key = gateway.demo_keys()["alice"]
        worker_url = gateway.worker_url
        worker_headers = {
            "content-type": "application/json",
            "authorization": f"Bearer {user_key}",
            "anthropic-version": "2023-06-01",
        }
        base = f"{gateway.emulator_url}/v1/{gateway.config.accountId}/{gateway.config.gatewayId}"
        with floor_worker(base) as floor_url, floor_worker(base, "read") as read_url:
            return measure(gateway, worker_url, worker_headers, base, floor_url, read_url)


def measure(
    gateway: LocalGateway,
    worker_url: str,
    worker_headers: dict,
    base: str,
    floor_url: str,
    read_url: str,
) -> int:
    print(
        f"The gateway against its floor — {REQUESTS} requests per run at c=32 (fewer at c=1), dev "
        f"stack, {os.cpu_count()} cores. direct = the emulator's native endpoint; floor = a "
        "pass-through Worker in the same runtime in front of it (worker/bench/floor.mjs); "
        "read = the same Worker reading both bodies as a meter must (JSON parsed, every stream "
        "chunk seen in JavaScript); gateway = the full path"
    )
    header = (
        f"{'path':<10}{'mode':<11}{'conc':>5}  {'p50 direct/floor/gateway ms':>28}  "
        f"{'added p50':>9}  {'ttfb +':>7}  {'rps floor/read/gateway':>23}  {'x floor':>7}  "
        f"{'x read':>6}  {'x direct':>8}  {'ledger':>6}"
    )
    print(header)
    print("-" * len(header))
    for stream in (False, True):
        for name, direct_url, direct_headers, direct_body, path, worker_body, streams_only in paths(
            gateway
        ):
            if streams_only and not stream:
                continue
            floor_path = direct_url.removeprefix(base)
            for concurrency in CONCURRENCY:
                runs = {
                    "direct": (direct_url, direct_headers, direct_body),
                    "floor": (f"{floor_url}{floor_path}", direct_headers, direct_body),
                    "read": (f"{read_url}{floor_path}", direct_headers, direct_body),
                    "gateway": (f"{worker_url}{path}", worker_headers, worker_body),
                }
                got = {
                    label: load(url, headers, {**body, "stream": stream}, concurrency)
                    for label, (url, headers, body) in runs.items()
                }
                if any(r["errors"] for r in got.values()):
                    errors = {label: r["errors"] for label, r in got.items()}
                    print(f"errors ({name}): {errors}", file=sys.stderr)
                    return 1
                d, f, r, g = got["direct"], got["floor"], got["read"], got["gateway"]
                mode = "streaming" if stream else "non-stream"
                share = g["ledgerShare"]
                print(
                    f"{name:<10}{mode:<11}{concurrency:>5}  "
                    f"{d['p50']:>8.2f} /{f['p50']:>7.2f} /{g['p50']:>7.2f}  "
                    f"{g['p50'] - f['p50']:>9.2f}  {g['ttfbP50'] - f['ttfbP50']:>7.2f}  "
                    f"{f['rps']:>7.0f} /{r['rps']:>6.0f} /{g['rps']:>7.0f}  "
                    f"{g['rps'] / f['rps']:>7.2f}  {g['rps'] / r['rps']:>6.2f}  "
                    f"{g['rps'] / d['rps']:>8.2f}  "
                    f"{'-' if share is None else f'{share:.1%}':>6}"
                )
    print(
        "added p50 and ttfb + are the gateway's over the floor's; x floor / x read / x direct "
        "are throughput ratios; ledger = the share of requests whose admission awaited a ledger "
        "call (the rest were admitted on this isolate's budget lease)."
    )
    print(
        "At c=32 every path runs at its throughput limit (2 cores shared by client, emulator and "
        "workerd), so latency there is mostly queueing; the rps ratio is the figure."
    )
    return 0


def settled(hooks: WorkerTestHooks, org: str, requests: int) -> dict:
    deadline = time.monotonic() + 30
    while True:
        usage = hooks.usage(org)
        if usage["org"]["requests"] >= requests and usage["openReservations"] == 0:
            return usage
        if time.monotonic() > deadline:
            return usage
        time.sleep(0.1)


def exactness() -> int:
    """The e2e stack's load tenants: 200 concurrent requests, then a budget that admits part."""
    prompt = lambda text: 3 + 4 + math.ceil(len(text.encode()) / 4)  # noqa: E731 (emulator rule)
    cost = lambda p, c: math.ceil((p * 150_000 + c * 600_000) / 1_000_000)  # noqa: E731 (gpt-4o-mini)
    log = Path(tempfile.mkdtemp(prefix="llm-gateway-bench-")) / "worker.log"
    with LocalGateway(E2E_STACK, test_hooks=True, log_path=log) as gateway:
        hooks = WorkerTestHooks(gateway.worker_url)
        url = f"{gateway.openai_base_url}/chat/completions"
        text = "bench exactness emulate:tokens=20"
        statuses = asyncio.run(
            burst(url, "key_loady_main", 200, {"messages": [{"role": "user", "content": text}]})
        )
        usage = settled(hooks, "loadorg", 200)
        expected = 200 * cost(prompt(text), 20)
        print("\nLedger exactness under concurrency (e2e stack)")
        print(
            f"  200 concurrent requests, one user: {statuses.count(200)} served, "
            f"{usage['org']['requests']} recorded; cost recorded {usage['org']['usedMicros']} µUSD, "
            f"sent {expected} µUSD -> {'EXACT' if usage['org']['usedMicros'] == expected else 'MISMATCH'}"
        )

        text = "bench squeeze emulate:tokens=30"
        statuses = asyncio.run(
            burst(
                url,
                "key_cappy_main",
                200,
                {"max_tokens": 40, "messages": [{"role": "user", "content": text}]},
            )
        )
        served = statuses.count(200)
        usage = settled(hooks, "capped", served)
        budget = 2_000
        print(
            f"  budget $0.002000 (2000 µUSD), 200 concurrent requests: {served} served, "
            f"{statuses.count(429)} refused (429); recorded {usage['org']['usedMicros']} µUSD "
            f"-> {'within budget' if usage['org']['usedMicros'] <= budget else 'OVER BUDGET'}"
        )
        hooks.close()
        ok = usage["org"]["usedMicros"] <= budget
    return 0 if ok else 1


def main() -> int:
    return latency() or exactness()


if __name__ == "__main__":
    sys.exit(main())
