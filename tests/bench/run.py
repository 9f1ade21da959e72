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
import time
from pathlib import Path

from provision.config import resolve_stack
from provision.local import LocalGateway
from tests.support import E2E_STACK, WorkerTestHooks, burst

HERE = Path(__file__).resolve().parent
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


def paths(gateway: LocalGateway) -> list[tuple[str, str, dict[str, str], dict, dict]]:
    """(name, direct URL, direct headers, direct body, Worker body) per provider path: the
    same answer asked of the emulator's native endpoint directly and through the Worker."""
    assert gateway.config is not None and gateway.emulator_url
    config = gateway.config
    base = f"{gateway.emulator_url}/v1/{config.accountId}/{config.gatewayId}"
    keys = gateway.secrets.provider_api_keys
    aig = {"cf-aig-authorization": f"Bearer {gateway.secrets.ai_gateway_token}"}
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
            {"model": "openai/gpt-4o-mini", "messages": messages},
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
            {"model": "anthropic/claude-sonnet-4-5", "messages": messages},
        ),
    ]


def latency() -> int:
    with LocalGateway(resolve_stack("dev")) as gateway:
        user_key = gateway.demo_keys()["alice"]
        worker_url = f"{gateway.openai_base_url}/chat/completions"
        worker_headers = {"content-type": "application/json", "authorization": f"Bearer {user_key}"}

        print(
            f"Latency added by the Worker per provider path — {REQUESTS} requests per run at c=32 "
            f"(fewer at c=1), dev stack, {os.cpu_count()} cores; direct = the same request to the "
            "emulator's native endpoint"
        )
        header = (
            f"{'path':<10}{'mode':<11}{'conc':>5}  {'direct p50/p99 ms':>18}  "
            f"{'worker p50/p99 ms':>18}  {'added p50/p99 ms':>17}  {'ledger p50/p99':>15}  "
            f"{'direct rps':>10}  {'worker rps':>10}  {'ratio':>6}"
        )
        print(header)
        print("-" * len(header))
        for stream in (False, True):
            for name, direct_url, direct_headers, direct_body, worker_body in paths(gateway):
                for concurrency in CONCURRENCY:
                    direct = load(
                        direct_url, direct_headers, {**direct_body, "stream": stream}, concurrency
                    )
                    via = load(
                        worker_url, worker_headers, {**worker_body, "stream": stream}, concurrency
                    )
                    if direct["errors"] or via["errors"]:
                        print(
                            f"errors ({name}): direct {direct['errors']}, worker {via['errors']}",
                            file=sys.stderr,
                        )
                        return 1
                    mode = "streaming" if stream else "non-stream"
                    print(
                        f"{name:<10}{mode:<11}{concurrency:>5}  "
                        f"{direct['p50']:>8.2f} /{direct['p99']:>7.2f}  "
                        f"{via['p50']:>8.2f} /{via['p99']:>7.2f}  "
                        f"{via['p50'] - direct['p50']:>7.2f} /{via['p99'] - direct['p99']:>7.2f}  "
                        f"{via['ledgerP50']:>6.2f} /{via['ledgerP99']:>6.2f}  "
                        f"{direct['rps']:>10.0f}  {via['rps']:>10.0f}  {via['rps'] / direct['rps']:>6.2f}"
                    )
        print(
            "ledger = time of the one admission call to the org's UsageLedger (server-timing, 1 ms"
            " resolution); settlement rides along with a later admission, after the response."
        )
        print(
            "At c=32 both paths run at their throughput limit (2 cores shared by client, emulator"
            " and workerd), so the added latency there is mostly queueing; the rps ratio is the figure."
            " The anthropic rows minus the openai rows are the translation's cost."
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
    with LocalGateway(E2E_STACK, test_hooks=True) as gateway:
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
