"""Per-key monthly limits (issue 25): a CI key with a $1 limit of its own is refused at it while
the same user's laptop key keeps working, on the lease path too (requests spread over four
isolates' lease books at once); the key's, the user's and the org's figures stay exact; the
usage headers name the tightest limit; GET /v1/usage and the admin metrics show the key against
its limit (tests/fixtures/Pulumi.agents.yaml: user `dev`, keys key_dev_laptop and key_dev_ci)."""

from __future__ import annotations

import asyncio
import time

import httpx

from provision.local.runtime import LocalGateway
from tests.charges import usd_micros as micros
from tests.support import ROOT, WorkerTestHooks, admin_metrics, key, stack_gateway

gateway = stack_gateway(ROOT / "tests" / "fixtures" / "Pulumi.agents.yaml")

MINI = "openai/gpt-4o-mini"
KEY_LIMIT = 1_000_000  # key_dev_ci's own $1
ISOLATES = ["i0", "i1", "i2", "i3"]


async def burst(
    gateway: LocalGateway, key_id: str, count: int, first: int = 0
) -> list[httpx.Response]:
    """`count` chat requests at once ($0.05 of output each), over four isolates' lease books
    (round robin from the `first`)."""
    async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=32)) as client:
        return await asyncio.gather(
            *[
                client.post(
                    f"{gateway.worker_url}/v1/chat/completions",
                    headers={
                        "authorization": f"Bearer {key(key_id)}",
                        "x-test-isolate": ISOLATES[(first + i) % len(ISOLATES)],
                    },
                    json={
                        "model": MINI,
                        "max_tokens": 400,
                        "messages": [{"role": "user", "content": f"build {i} emulate:tokens=400"}],
                    },
                )
                for i in range(count)
            ]
        )


def usage_of(gateway: LocalGateway, key_id: str) -> dict[str, object]:
    response = httpx.get(
        f"{gateway.worker_url}/v1/usage",
        headers={"authorization": f"Bearer {key(key_id)}"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


def test_a_ci_key_stops_at_its_own_limit_while_the_laptop_key_goes_on(
    gateway: LocalGateway, ledger: WorkerTestHooks
):
    charged = 0
    refused: httpx.Response | None = None
    # well past $1 of requests at once: the key's leases and holds stop them at its limit
    for response in asyncio.run(burst(gateway, "key_dev_ci", 40)):
        assert response.status_code in (200, 429), response.text
        if response.status_code == 200:
            charged += micros(response.headers["x-gateway-cost-usd"])
        else:
            refused = response
    assert refused is not None, "40 requests of $0.05 are more than $1"
    # then, with nothing in flight (and the isolates' refusals forgotten: quota.ts remembers one
    # 2 s), one at a time round the isolates until each refuses: a lease near the limit gives back
    # what it holds, and each request served is lowered to what is left, down to the floor
    ledger.quiesce()
    time.sleep(2.1)
    in_a_row = 0
    for i in range(80):
        [response] = asyncio.run(burst(gateway, "key_dev_ci", 1, first=i))
        if response.status_code == 429:
            refused, in_a_row = response, in_a_row + 1
            if in_a_row == len(ISOLATES):
                break
            continue
        in_a_row = 0
        assert response.status_code == 200, response.text
        charged += micros(response.headers["x-gateway-cost-usd"])
    assert in_a_row == len(ISOLATES)
    assert "lowered to 256 tokens" in refused.text
    error = refused.json()["error"]
    assert error["code"] == "insufficient_quota"
    assert "the monthly limit of API key 'key_dev_ci'" in error["message"]
    assert refused.headers["x-gateway-limit-scope"] == "key"
    assert refused.headers["x-gateway-limit-usd"] == "1.000000"

    usage = ledger.usage("agents")
    ci = usage["keys"]["key_dev_ci"]
    assert ci["userId"] == "dev"
    assert ci["usedMicros"] == charged <= KEY_LIMIT, "exact, and never past the key's limit"
    assert KEY_LIMIT - charged < 256 * 125 + 15 * 100, "spent to within one floor's worth"

    # the same user's laptop key: served, its headers the user's (the tighter limit for it)
    laptop = httpx.post(
        f"{gateway.worker_url}/v1/chat/completions",
        headers={"authorization": f"Bearer {key('key_dev_laptop')}"},
        json={
            "model": MINI,
            "messages": [{"role": "user", "content": "still here emulate:tokens=5"}],
        },
        timeout=30,
    )
    assert laptop.status_code == 200, laptop.text
    assert laptop.headers["x-gateway-limit-scope"] == "user"
    laptop_cost = micros(laptop.headers["x-gateway-cost-usd"])
    assert micros(laptop.headers["x-gateway-usage-usd"]) == charged + laptop_cost

    usage = ledger.usage("agents")
    assert usage["keys"]["key_dev_laptop"]["usedMicros"] == laptop_cost
    assert usage["users"]["dev"]["usedMicros"] == charged + laptop_cost
    others = sum(row["usedMicros"] for user, row in usage["users"].items() if user != "dev")
    assert usage["org"]["usedMicros"] == others + charged + laptop_cost
    assert usage["openReservations"] == 0

    # what each key reads of itself
    mine = usage_of(gateway, "key_dev_ci")
    assert mine["key"] == {
        "id": "key_dev_ci",
        "requests": ci["requests"],
        "usedMicros": charged,
        "usedUsd": f"{charged / 1e6:.6f}",
        "heldMicros": 0,
        "heldUsd": "0.000000",
        "limitMicros": KEY_LIMIT,
        "limitUsd": "1.000000",
        "remainingMicros": KEY_LIMIT - charged,
        "remainingUsd": f"{(KEY_LIMIT - charged) / 1e6:.6f}",
    }
    assert mine["tightest"] == "key"
    theirs = usage_of(gateway, "key_dev_laptop")
    assert theirs["key"]["limitMicros"] is None and theirs["key"]["usedMicros"] == laptop_cost
    assert theirs["tightest"] == "user"

    # the admin's metrics: the key against its own limit
    [shown] = [k for k in admin_metrics(gateway)["byKey"] if k["keyId"] == "key_dev_ci"]
    assert (shown["userId"], shown["monthlyLimitMicros"], shown["spentMicros"]) == (
        "dev",
        KEY_LIMIT,
        charged,
    )
