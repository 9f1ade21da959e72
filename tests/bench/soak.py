"""`make soak` (issue 13): mixed traffic for SOAK_SECONDS (default 600) against the local
runtime, not part of `make test`. Two users send what a client can price itself (answers with
their cost header, streams with their usage chunk); a third sends the rest: clients that leave
mid-stream, streams the upstream cuts, upstream 5xx, bad bodies, OpenAI and Anthropic routes.

Every minute it prints workerd's resident memory, the ledger's open reservations and leases, and
the settlements queued in lease batches; at the end, once the batches are in, it checks that
the ledger holds exactly what the exact users were charged, that the others' requests were all
recorded, that nothing is left open, and that memory did not keep growing.

    .venv/bin/python -m tests.bench.soak          (SOAK_SECONDS=60 for a short run)
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import random
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

import httpx

from provision.local.runtime import LocalGateway
from tests.support import ROOT, Emulator, WorkerTestHooks, current_month, key

STACK = ROOT / "tests" / "fixtures" / "Pulumi.soak.yaml"
SECONDS = int(os.environ.get("SOAK_SECONDS", "600"))
CONCURRENCY = 16
PRICE = (150_000, 600_000)  # gpt-4o-mini, µUSD per million tokens (the stack's)


def rss_kb(root_pid: int) -> int:
    """Resident memory of the workerd processes under the local runtime (kB)."""
    total, stack = 0, [root_pid]
    while stack:
        pid = stack.pop()
        try:
            for task in Path(f"/proc/{pid}/task").iterdir():
                stack += [int(c) for c in (task / "children").read_text().split()]
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
            if b"workerd" in cmd:
                status = Path(f"/proc/{pid}/status").read_text()
                total += int(
                    next(line for line in status.splitlines() if line.startswith("VmRSS")).split()[
                        1
                    ]
                )
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


class Tally:
    def __init__(self) -> None:
        self.exact_cost = 0
        self.exact_requests = 0
        self.rough_served = 0
        self.kinds: dict[str, int] = {}
        self.memory: list[int] = []  # workerd's RSS at each report

    def count(self, kind: str) -> None:
        self.kinds[kind] = self.kinds.get(kind, 0) + 1


async def exact(client: httpx.AsyncClient, tally: Tally, user: str) -> None:
    auth = {"authorization": f"Bearer {key(f'key_{user}_main')}"}
    words = random.randint(1, 40)
    body = {
        "model": "openai/gpt-4o-mini",
        "max_tokens": 60,
        "messages": [{"role": "user", "content": f"soak emulate:tokens={words}"}],
    }
    if random.random() < 0.5:
        response = await client.post("/v1/chat/completions", json=body, headers=auth)
        assert response.status_code == 200, response.text
        tally.exact_cost += int(Decimal(response.headers["x-gateway-cost-usd"]) * 1_000_000)
        tally.count("exact answer")
    else:
        body = {**body, "stream": True, "stream_options": {"include_usage": True}}
        async with client.stream(
            "POST", "/v1/chat/completions", json=body, headers=auth
        ) as response:
            assert response.status_code == 200
            usage = None
            async for line in response.aiter_lines():
                if line.startswith("data: {") and '"usage":{' in line:
                    usage = json.loads(line[6:])["usage"]
        assert usage is not None
        tally.exact_cost += math.ceil(
            (usage["prompt_tokens"] * PRICE[0] + usage["completion_tokens"] * PRICE[1]) / 1_000_000
        )
        tally.count("exact stream")
    tally.exact_requests += 1


async def rough(client: httpx.AsyncClient, emulator: Emulator, tally: Tally, user: str) -> None:
    """One of the rest, as `user` (each rough client its own: a fault is for its next request)."""
    auth = {"authorization": f"Bearer {key(f'key_{user}_main')}", "anthropic-version": "2023-06-01"}
    chat = {
        "model": "openai/gpt-4o-mini",
        "stream": True,
        "messages": [{"role": "user", "content": "rough emulate:tokens=30"}],
    }
    kind = random.choice(["leave", "cut", "5xx", "bad body", "anthropic", "chunked slow"])
    tally.count(kind)
    match = {"metadata": {"userId": user}}
    if kind == "leave":  # the client goes away after two chunks
        async with client.stream(
            "POST", "/v1/chat/completions", json=chat, headers=auth
        ) as response:
            seen = 0
            async for _ in response.aiter_lines():
                seen += 1
                if seen >= 4:
                    break
        tally.rough_served += 1
    elif kind == "cut":
        await asyncio.to_thread(
            emulator.fault, match=match, times=1, cutAfterChunks=random.randint(0, 6)
        )
        async with client.stream(
            "POST", "/v1/chat/completions", json=chat, headers=auth
        ) as response:
            try:
                async for _ in response.aiter_lines():
                    pass
            except httpx.HTTPError:
                pass
        tally.rough_served += 1
    elif kind == "5xx":
        await asyncio.to_thread(
            emulator.fault, match=match, times=1, status=random.choice([500, 503])
        )
        response = await client.post(
            "/v1/chat/completions", json={**chat, "stream": False}, headers=auth
        )
        assert response.status_code == 502, response.text
    elif kind == "bad body":
        response = await client.post(
            "/v1/chat/completions", content=b'{"messages": [{"role": "wizard"}]}', headers=auth
        )
        assert response.status_code == 400
    elif kind == "anthropic":
        body = {
            "model": "claude-sonnet-4-6",
            "max_tokens": 40,
            "messages": [{"role": "user", "content": "hi"}],
        }
        response = await client.post("/v1/messages", json=body, headers=auth)
        assert response.status_code == 200, response.text
        tally.rough_served += 1
    else:
        await asyncio.to_thread(emulator.fault, match=match, times=1, chunkDelayMs=20)
        async with client.stream(
            "POST", "/v1/chat/completions", json=chat, headers=auth
        ) as response:
            async for _ in response.aiter_lines():
                pass
        tally.rough_served += 1


def snapshot(gateway: LocalGateway, hooks: WorkerTestHooks, pid: int) -> dict[str, int]:
    usage = hooks._post("/__test/ledger/usage", {"orgId": "soak", "month": current_month()})
    leases = hooks._post("/__test/leases", {})
    return {
        "workerd_rss_kb": rss_kb(pid),
        "open_reservations": usage["openReservations"],
        "leases": usage["leases"],
        "queued_settlements": leases["unacknowledged"],
    }


async def traffic(
    gateway: LocalGateway, hooks: WorkerTestHooks, emulator: Emulator, pid: int
) -> Tally:
    tally = Tally()
    deadline = time.monotonic() + SECONDS
    async with httpx.AsyncClient(base_url=gateway.worker_url, timeout=60) as client:

        async def worker(i: int) -> None:
            while time.monotonic() < deadline:
                if i % 4 == 3:
                    await rough(client, emulator, tally, f"rough{i // 4 + 1}")
                else:
                    await exact(client, tally, "exact1" if i % 2 else "exact2")

        async def report() -> None:
            while time.monotonic() < deadline:
                await asyncio.sleep(min(60, max(1, SECONDS / 10)))
                state = snapshot(gateway, hooks, pid)
                tally.memory.append(state["workerd_rss_kb"])
                kinds = dict(sorted(tally.kinds.items()))
                print(f"  {time.strftime('%H:%M:%S')} {state} {kinds}", flush=True)

        await asyncio.gather(report(), *[worker(i) for i in range(CONCURRENCY)])
    return tally


def main() -> int:
    log = Path(tempfile.mkdtemp(prefix="llm-gateway-soak-")) / "worker.log"  # one line per request
    with LocalGateway(STACK, test_hooks=True, log_path=log) as gateway:
        assert gateway.emulator_url and gateway._process
        pid = gateway._process.pid
        hooks = WorkerTestHooks(gateway.worker_url)
        emulator = Emulator(gateway.emulator_url)
        start = snapshot(gateway, hooks, pid)
        print(f"soak: {SECONDS} s, {CONCURRENCY} clients; at the start {start}", flush=True)
        tally = asyncio.run(traffic(gateway, hooks, emulator, pid))
        hooks.quiesce(timeout=30)
        time.sleep(2)
        end = snapshot(gateway, hooks, pid)
        usage = hooks.usage("soak")
        users = usage["users"]
        recorded = users["exact1"]["usedMicros"] + users["exact2"]["usedMicros"]
        recorded_requests = users["exact1"]["requests"] + users["exact2"]["requests"]
        rough_recorded = sum(
            users.get(f"rough{n}", {"requests": 0})["requests"] for n in range(1, 5)
        )
        print(f"at the end {end}")
        print(f"requests by kind: {dict(sorted(tally.kinds.items()))}")
        checks = {
            "exact users: recorded µUSD == charged": (recorded, tally.exact_cost),
            "exact users: recorded requests == sent": (recorded_requests, tally.exact_requests),
            "rough user: recorded requests == served": (rough_recorded, tally.rough_served),
            "open reservations at the end": (end["open_reservations"], 0),
            "queued settlements at the end": (end["queued_settlements"], 0),
        }
        ok = True
        for name, (got, want) in checks.items():
            good = got == want
            ok &= good
            print(f"  {'ok  ' if good else 'FAIL'} {name}: {got} (expected {want})")
        # Warm-up fills V8's heap and the runtime's caches; unbounded growth would go on in the
        # second half of the run. Bounded: the end within 25 % of the run's midpoint.
        series = tally.memory or [start["workerd_rss_kb"]]
        middle = series[len(series) // 2]
        grew = end["workerd_rss_kb"] / max(1, middle)
        bounded = grew <= 1.25
        ok &= bounded
        memory = (
            f"{start['workerd_rss_kb']} kB cold, {middle} kB at half time, "
            f"{end['workerd_rss_kb']} kB at the end ({grew:.2f}x the half-time figure)"
        )
        print(f"  {'ok  ' if bounded else 'FAIL'} workerd memory: {memory}")
        hooks.close()
        emulator.close()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
