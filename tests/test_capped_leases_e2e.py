"""Open-request caps on the lease path (issue 26, decision 0038): an isolate holds a share of a
user's open-request slots beside its budget slice and admits locally while it has one, so a warm
request on a capped tier awaits no ledger call; slots come back with settlements and expire with
the lease, so a user's open requests never exceed the cap over several isolates. A cap too small
to share out is still counted per request by the ledger (tests/fixtures/Pulumi.capped.yaml)."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime

import httpx

from provision.local.runtime import LocalGateway
from tests.support import ROOT, Emulator, WorkerTestHooks, key, stack_gateway

gateway = stack_gateway(ROOT / "tests" / "fixtures" / "Pulumi.capped.yaml")

MINI = "openai/gpt-4o-mini"
ISOLATES = ["i0", "i1", "i2", "i3"]
HELD_MS = 600  # each upstream answer takes this long: requests overlap


async def at_once(gateway: LocalGateway, user: str, count: int) -> list[httpx.Response]:
    async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=count)) as client:
        return await asyncio.gather(
            *[
                client.post(
                    f"{gateway.worker_url}/v1/chat/completions",
                    headers={
                        "authorization": f"Bearer {key(f'key_{user}_main')}",
                        "x-test-isolate": ISOLATES[i % len(ISOLATES)],
                    },
                    json={
                        "model": MINI,
                        "max_tokens": 16,
                        "messages": [{"role": "user", "content": f"{user} {i} emulate:tokens=4"}],
                    },
                )
                for i in range(count)
            ]
        )


def most_at_once(upstream: Emulator, user: str) -> int:
    """The most upstream calls of `user` in flight at one moment: each lasts HELD_MS from its
    arrival (the gateway holds its slot from before it is sent until after it is answered)."""
    starts = sorted(
        datetime.fromisoformat(e["time"]).timestamp() * 1000 for e in upstream.requests(userId=user)
    )
    events = sorted([(t, 1) for t in starts] + [(t + HELD_MS, -1) for t in starts])
    most = now = 0
    for _, step in events:
        now += step
        most = max(most, now)
    return most


def admitted_by(response: httpx.Response) -> str:
    """ledger (an awaited ledger call) or lease (this isolate's slice), from server-timing."""
    return response.headers.get("server-timing", "").split(";")[0]


def test_open_requests_never_exceed_the_cap_over_several_isolates(
    gateway: LocalGateway, upstream: Emulator, ledger: WorkerTestHooks
):
    upstream.fault(match={"metadata": {"userId": "busy"}}, times=-1, delayMs=HELD_MS)
    for _ in range(3):  # warm leases, then cold-ish: the cap holds either way
        responses = asyncio.run(at_once(gateway, "busy", 120))
        served = [r for r in responses if r.status_code == 200]
        refused = [r for r in responses if r.status_code == 429]
        assert len(served) + len(refused) == 120, {r.status_code for r in responses}
        assert all(r.json()["error"]["code"] == "concurrency_limit_exceeded" for r in refused)
        assert served, "the cap admits some"
        time.sleep(0.3)
    assert most_at_once(upstream, "busy") <= 40
    ledger.quiesce()
    usage = ledger.usage("acme")
    assert usage["openReservations"] == 0


def test_a_warm_request_on_a_capped_tier_awaits_no_ledger_call(gateway: LocalGateway):
    # cold: each isolate's requests wait for its lease (and its first slots) from the ledger
    cold = [admitted_by(r) for r in asyncio.run(at_once(gateway, "steady", 16))]
    assert cold.count("ledger") >= len(ISOLATES)
    # warm: admitted on the leases, a slot grown now and then
    warm = []
    for _ in range(3):
        warm += [admitted_by(r) for r in asyncio.run(at_once(gateway, "steady", 16))]
    assert warm.count("lease") >= len(warm) - 2, warm


def test_a_cap_too_small_to_share_is_counted_per_request(gateway: LocalGateway, upstream: Emulator):
    upstream.fault(match={"metadata": {"userId": "pair"}}, times=-1, delayMs=HELD_MS)
    responses = asyncio.run(at_once(gateway, "pair", 12))
    assert sum(r.status_code == 200 for r in responses) >= 2
    assert most_at_once(upstream, "pair") <= 2
    assert {admitted_by(r) for r in responses if r.status_code == 200} == {"ledger"}


def test_a_capped_user_sending_every_few_seconds_keeps_its_slots(gateway: LocalGateway):
    """Nobody presses for its slots: the lease keeps them as long as its budget slice, so a
    request every 2.5 s (each settled and flushed before the next) awaits no ledger call."""
    ways = []
    for _ in range(4):
        [response] = asyncio.run(at_once(gateway, "sparse", 1))
        assert response.status_code == 200, response.text
        ways.append(admitted_by(response))
        time.sleep(2.5)
    assert ways == ["ledger", "lease", "lease", "lease"], ways
