"""Cold-start pools (issue 26, decision 0039): an isolate admits the first request of a user who
has no lease there from a slice of the org's budget, without awaiting the ledger, and reports it
at its next exchange; each user's band (pool isolates x allowance) stays free of every other
admission, and a user near its limit goes on a deny list the pools learn, so no limit is ever
passed (tests/fixtures/Pulumi.pools.yaml: four pool isolates x $0.01 = a band of $0.04)."""

from __future__ import annotations

import asyncio
import json
import time
from decimal import Decimal

import httpx

from provision.local.runtime import LocalGateway
from provision.money import usd_to_micros
from tests.support import ROOT, WorkerTestHooks, eventually, key, stack_gateway

gateway = stack_gateway(ROOT / "tests" / "fixtures" / "Pulumi.pools.yaml")

ISOLATES = ["i0", "i1", "i2", "i3"]
BAND = 40_000  # µUSD: 4 isolates x $0.01
QUIET = [f"q{i:02d}" for i in range(1, 13)]


def ask(
    client: httpx.Client | httpx.AsyncClient,
    gateway: LocalGateway,
    user: str,
    isolate: str,
    tokens: int = 100,
):
    """A request of `user` in `isolate` for `tokens` output tokens, all used: 100 cost $0.006
    (within the allowance: pooled), 1,500 cost $0.09 (never)."""
    return client.post(
        f"{gateway.worker_url}/v1/chat/completions",
        headers={"authorization": f"Bearer {key(f'key_{user}_main')}", "x-test-isolate": isolate},
        json={
            "max_tokens": tokens,
            "messages": [{"role": "user", "content": f"{user} {isolate} emulate:tokens={tokens}"}],
        },
    )


def micros(usd: str) -> int:
    return usd_to_micros(Decimal(usd))


def admitted_by(response: httpx.Response) -> str:
    """ledger (an awaited ledger call), lease or pool (this isolate's), from server-timing."""
    return response.headers.get("server-timing", "").split(";")[0]


def warm_pools(gateway: LocalGateway, client: httpx.Client) -> None:
    """One request per isolate (it awaits the ledger, which grants the isolate's pool with it)."""
    for isolate in ISOLATES:
        assert ask(client, gateway, "warm", isolate).status_code == 200


def test_a_quiet_users_first_request_in_each_isolate_awaits_no_ledger_call(
    gateway: LocalGateway, ledger: WorkerTestHooks
):
    with httpx.Client(timeout=30) as client:
        warm_pools(gateway, client)
        responses = [ask(client, gateway, user, isolate) for user in QUIET for isolate in ISOLATES]
    assert [r.status_code for r in responses] == [200] * len(responses)
    by = [admitted_by(r) for r in responses]
    assert by.count("pool") == len(responses), by
    # its user's month is not known in this isolate yet: the limit, no spend
    first = responses[0].headers
    assert first["x-gateway-limit-usd"] == "10.000000"
    assert "x-gateway-usage-usd" not in first and "x-gateway-remaining-usd" not in first
    # each report became a reservation, each settlement its cost: the ledger has every cent
    ledger.quiesce()
    usage = ledger.usage("quiet")
    for user in QUIET:
        charged = sum(
            micros(r.headers["x-gateway-cost-usd"])
            for r, (u, _) in zip(responses, [(u, i) for u in QUIET for i in ISOLATES], strict=True)
            if u == user
        )
        assert (usage["users"][user]["requests"], usage["users"][user]["usedMicros"]) == (
            4,
            charged,
        )
    assert usage["openReservations"] == 0
    assert 1 <= usage["pools"] <= len(ISOLATES)


def test_users_pools_do_not_serve_await_the_ledger(gateway: LocalGateway):
    """A limit under twenty bands, a tier with an open-request cap, an org with pools off: their
    first request in an isolate awaits the ledger, as before."""
    with httpx.Client(timeout=30) as client:
        warm_pools(gateway, client)
        for user in ("tiny", "capped", "plain"):
            response = ask(client, gateway, user, "i1")
            assert response.status_code == 200
            assert admitted_by(response) == "ledger", user


def test_a_user_near_its_limit_goes_on_the_deny_list(
    gateway: LocalGateway, ledger: WorkerTestHooks
):
    """`edge` has $0.80: once under two bands ($0.08) of headroom is left, the ledger lists it and
    the pools stop admitting it; its requests await the ledger (and are still served)."""
    with httpx.Client(timeout=30) as client:
        warm_pools(gateway, client)
        first = ask(client, gateway, "edge", "i0")
        assert admitted_by(first) == "pool"
        # $0.09 a request (never pooled): after eight, under $0.08 of headroom is left
        spent = [ask(client, gateway, "edge", "i0", 1_500) for _ in range(8)]
        assert all(r.status_code == 200 for r in spent)
        ledger.quiesce()
        assert ledger.user_row("quiet", "edge")["usedMicros"] > 800_000 - 2 * BAND
        time.sleep(1.5)  # every pool's next exchange brings the list
        for isolate in ISOLATES:
            assert ask(client, gateway, "warm", isolate).status_code == 200
        ledger.quiesce()
        # i3 never saw edge: no lease there; its pool knows the list now
        late = ask(client, gateway, "edge", "i3")
        assert late.status_code == 200
        assert admitted_by(late) == "ledger"


async def squeeze(
    gateway: LocalGateway, users: list[str], each: int
) -> list[tuple[str, httpx.Response]]:
    limits = httpx.Limits(max_connections=len(users) * each)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:
        asks = [(u, ISOLATES[i % len(ISOLATES)]) for u in users for i in range(each)]
        answers = await asyncio.gather(*[ask(client, gateway, u, isolate) for u, isolate in asks])
    return list(zip([u for u, _ in asks], answers, strict=True))


def test_cold_requests_from_every_isolate_at_once_never_pass_a_limit(
    gateway: LocalGateway, ledger: WorkerTestHooks
):
    """Eight users with $0.80 each, 40 requests each at once over four isolates whose pools are
    warm, asking $2.93 in all: pools, leases and per-request admissions together serve at most
    what each limit allows, and the ledger records exactly what was charged."""
    with httpx.Client(timeout=30) as client:
        warm_pools(gateway, client)
    users = [f"sq{i}" for i in range(1, 9)]
    answers = asyncio.run(squeeze(gateway, users, 40))
    assert {r.status_code for _, r in answers} <= {200, 429}
    assert any(admitted_by(r) == "pool" for _, r in answers), "no request was admitted from a pool"
    ledger.quiesce()
    usage = eventually(lambda: (u := ledger.usage("quiet"))["openReservations"] == 0 and u)
    for user in users:
        served = [r for u, r in answers if u == user and r.status_code == 200]
        charged = sum(micros(r.headers["x-gateway-cost-usd"]) for r in served)
        row = usage["users"][user]
        assert (row["requests"], row["usedMicros"]) == (len(served), charged)
        assert charged <= 800_000, f"{user} spent {charged} µUSD of its 800,000"


def test_the_band_stays_free_for_what_pools_admitted_unreported(
    gateway: LocalGateway, ledger: WorkerTestHooks
):
    """Three isolates admit a request of `tight` from their pools; before their reports reach the
    ledger, two requests in a fourth isolate ask for all of its $0.80 (the second lowered to fit,
    decision 0035). The ledger left the band free for the three: all served, never over."""
    with httpx.Client(timeout=60) as client:
        warm_pools(gateway, client)

        async def pooled() -> list[httpx.Response]:
            async with httpx.AsyncClient(timeout=60) as many:
                return await asyncio.gather(*[ask(many, gateway, "tight", i) for i in ISOLATES[1:]])

        small = asyncio.run(pooled())
        assert [admitted_by(r) for r in small] == ["pool"] * 3
        large = [ask(client, gateway, "tight", "i0", 12_000) for _ in range(2)]
    assert [r.status_code for r in small + large] == [200] * 5
    assert "x-gateway-output-cap" in large[1].headers, "the second was lowered to the headroom"
    charged = sum(micros(r.headers["x-gateway-cost-usd"]) for r in small + large)
    ledger.quiesce()
    row = ledger.user_row("quiet", "tight")
    assert (row["requests"], row["usedMicros"]) == (5, charged)
    assert charged <= 800_000, f"spent {charged} µUSD of 800,000"


def test_an_isolate_beyond_the_orgs_pools_gets_none_and_operators_are_told(
    gateway: LocalGateway, ledger: WorkerTestHooks
):
    """The org declares four pool isolates: with four pools held, a fifth isolate's ask is
    refused (its quiet users await the ledger there) and the ledger logs cold_start_pools_full,
    naming the org and its coldStart.isolates, for operators to raise it."""
    with httpx.Client(timeout=30) as client:
        warm_pools(gateway, client)
        # the four pools live: a pooled admission renews one, a lapsed one is asked for again
        for isolate in ISOLATES:
            assert ask(client, gateway, "q12", isolate).status_code == 200
        assert eventually(lambda: ledger.usage("quiet")["pools"] == len(ISOLATES))
        assert ask(client, gateway, "warm", "i4").status_code == 200  # it asks at its next exchange
        time.sleep(1.5)
        ledger.quiesce()
        late = ask(client, gateway, "q01", "i4")
        assert late.status_code == 200
        assert admitted_by(late) == "ledger"
    full = [
        json.loads(line)
        for line in gateway.logs().splitlines()
        if '"event":"cold_start_pools_full"' in line
    ]
    assert full and full[-1]["orgId"] == "quiet" and full[-1]["isolates"] == len(ISOLATES)
    assert full[-1]["refused"] >= 1
    # what to raise it to: the isolates calling the ledger lately (i0-i4, the refused one too)
    assert full[-1]["isolatesSeen"] >= len(ISOLATES) + 1
