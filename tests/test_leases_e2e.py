"""Budget leases (worker/src/budget/lease.ts, decision 0018), end to end in workerd: several isolates'
worth of leases (test renders give each `x-test-isolate` its own lease book, as separate
isolates have) against one org's UsageLedger. Recorded cost stays the exact sum of what the
answers say they cost; a budget squeezed with leases outstanding is never passed; a dead
isolate's slice comes back after the lease's expiry; a new month and a quota reset take
effect with leases out (tests/fixtures/Pulumi.leases.yaml)."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal
from typing import Any

import httpx

from provision.local.runtime import LocalGateway
from tests.support import ROOT, WorkerTestHooks, current_month, eventually, key, stack_gateway

STACK = ROOT / "tests" / "fixtures" / "Pulumi.leases.yaml"
ISOLATES = ["i0", "i1", "i2", "i3"]
LEASE_TTL_MS = 30_000  # worker/src/protocol/ledger.ts


gateway = stack_gateway(STACK)


def body(text: str, max_tokens: int = 8) -> dict[str, Any]:
    return {
        "model": "openai/gpt-4o-mini",
        "max_tokens": max_tokens,
        "messages": [{"role": "user", "content": text}],
    }


def micros(usd: str) -> int:
    return int(Decimal(usd) * 1_000_000)


async def spread(
    gateway: LocalGateway, user: str, count: int, isolates: list[str]
) -> list[httpx.Response]:
    """`count` requests at once, round-robin over the simulated isolates."""
    url = f"{gateway.openai_base_url}/chat/completions"
    async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=count)) as client:
        return await asyncio.gather(
            *[
                client.post(
                    url,
                    json=body(f"lease {i} emulate:tokens={1 + i % 7}"),
                    headers={
                        "authorization": f"Bearer {key(f'key_{user}_main')}",
                        "x-test-isolate": isolates[i % len(isolates)],
                    },
                )
                for i in range(count)
            ]
        )


def settled_rows(ledger: WorkerTestHooks, org: str) -> int:
    """Rows the org's ledger keeps to apply each settlement (or batch of them) once."""
    return int(ledger._post("/__test/ledger/settled-rows", {"orgId": org})["rows"])


def ledger_calls(responses: list[httpx.Response]) -> int:
    return sum(r.headers.get("server-timing", "").startswith("ledger;") for r in responses)


def test_200_concurrent_requests_over_four_isolates_are_recorded_exactly(
    gateway: LocalGateway, ledger: WorkerTestHooks
):
    """Each isolate takes a lease and admits most requests on it; the ledger's record is the
    exact sum of the cost headers, request for request, once the batches are in."""
    rows = settled_rows(ledger, "wide")
    responses = asyncio.run(spread(gateway, "many", 200, ISOLATES))
    assert [r.status_code for r in responses] == [200] * 200
    charged = sum(micros(r.headers["x-gateway-cost-usd"]) for r in responses)
    row = eventually(lambda: (r := ledger.user_row("wide", "many"))["requests"] == 200 and r)
    assert (row["requests"], row["usedMicros"]) == (200, charged)
    usage = ledger.usage("wide")
    assert usage["org"]["usedMicros"] == charged
    assert 2 <= usage["leases"] <= len(ISOLATES)
    assert ledger_calls(responses) < 200, "every request called the ledger: no lease was used"
    # a row per exchange's batch (and per metrics batch), not one per request (issue 26)
    ledger.quiesce()
    written = settled_rows(ledger, "wide") - rows
    assert written <= 200 // 4, f"{written} rows remember 200 settlements"


def test_a_budget_squeezed_with_leases_out_is_never_passed(
    gateway: LocalGateway, ledger: WorkerTestHooks
):
    """Org `squeeze` has $0.002: 200 requests at once from two users over four isolates. Some
    are served on leases, the rest per request near the end, the others refused; recorded
    usage and the holds left never pass the budget."""

    async def both() -> list[httpx.Response]:
        first, second = await asyncio.gather(
            spread(gateway, "s1", 100, ISOLATES), spread(gateway, "s2", 100, ISOLATES[::-1])
        )
        return first + second

    responses = asyncio.run(both())
    statuses = [r.status_code for r in responses]
    assert set(statuses) <= {200, 429}
    served = [r for r in responses if r.status_code == 200]
    assert served and len(served) < 200
    charged = sum(micros(r.headers["x-gateway-cost-usd"]) for r in served)
    usage = eventually(
        lambda: (u := ledger.usage("squeeze"))["org"]["requests"] == len(served) and u
    )
    assert usage["org"]["usedMicros"] == charged <= 2000
    assert usage["org"]["usedMicros"] + usage["leasedMicros"] + usage["reservedMicros"] <= 2000
    for refused in (r for r in responses if r.status_code == 429):
        assert refused.json()["error"]["code"] == "insufficient_quota"


def test_a_dead_isolates_slice_comes_back_after_expiry(
    gateway: LocalGateway, ledger: WorkerTestHooks
):
    """An isolate takes a lease and dies without returning it: the slice is held until the
    lease expires, then the ledger has all of it again."""
    response = httpx.post(
        f"{gateway.openai_base_url}/chat/completions",
        json=body("before dying"),
        headers={"authorization": f"Bearer {key('key_d1_main')}", "x-test-isolate": "doomed"},
        timeout=30,
    )
    assert response.status_code == 200
    held = eventually(lambda: ledger.usage("dies")["leasedMicros"])
    assert held > 0
    assert (
        ledger.http.post("/__test/isolate/forget", json={"isolate": "doomed"}).json()["leases"] == 1
    )
    before_expiry = ledger._post(
        "/__test/ledger/usage", {"orgId": "dies", "month": current_month()}
    )
    assert before_expiry["leasedMicros"] == held, "the slice came back before the lease expired"
    later = int(time.time() * 1000) + LEASE_TTL_MS + 1
    after = ledger._post(
        "/__test/ledger/usage", {"orgId": "dies", "month": current_month(), "now": later}
    )
    assert (after["leases"], after["leasedMicros"]) == (0, 0)


def exchange(
    ledger: WorkerTestHooks, org: str, month: str, *, call: dict[str, Any] | None = None, **op: Any
) -> dict[str, Any]:
    """One lease's exchange, as an isolate sends it (`call`: the exchange's other fields)."""
    lease = {
        "leaseId": "lease:test",
        "userId": "m1",
        "seq": 1,
        "settlements": [],
        "returned": 0,
        "want": 10_000,
        "minGrant": 100,
        "userLimit": 1_000_000,
        "orgBudget": 1_000_000_000,
        **op,
    }
    return ledger._post(
        "/__test/ledger/exchange", {"orgId": org, "month": month, "leases": [lease], **(call or {})}
    )


def test_a_new_month_is_a_new_lease_and_a_full_allowance(ledger: WorkerTestHooks):
    """A lease is for one month: one held in November does not hold December's allowance,
    and a December lease is granted against December's headroom alone."""
    november = exchange(ledger, "months", "2026-11", leaseId="lease:nov", want=200_000)
    assert november["leases"][0]["granted"] == 200_000
    december = exchange(ledger, "months", "2026-12", leaseId="lease:dec", want=250_000)
    (granted,) = december["leases"]
    assert granted["granted"] == 250_000  # a quarter of December's 1,000,000, untouched
    assert granted["userReserved"] == 250_000
    again = exchange(ledger, "months", "2026-12", leaseId="lease:dec", seq=1, want=250_000)
    assert again["leases"][0]["held"] == 250_000, "a retried exchange was applied twice"


def test_a_lease_shrinks_as_the_limit_nears_and_none_is_granted_at_the_end(
    ledger: WorkerTestHooks,
):
    """Grants are at most a quarter of the headroom beside every other hold, and nothing below
    the isolate's least useful grant: then it admits per request."""
    month = "2025-01"
    grants = []
    for i in range(8):
        result = exchange(ledger, "months", month, leaseId=f"lease:s{i}", want=10**9)["leases"][0]
        grants.append(result["granted"])
    assert grants[:3] == [250_000, 187_500, 140_625]  # 1/4 of what the others leave
    assert all(a > b for a, b in zip(grants, grants[1:], strict=False) if b)
    tail = exchange(ledger, "months", month, leaseId="lease:tail", want=10**9, minGrant=10**6)
    assert tail["leases"][0]["granted"] == 0
    total = sum(grants)
    assert total <= 1_000_000


def test_a_quota_reset_with_leases_out_serves_the_user_again(
    gateway: LocalGateway, ledger: WorkerTestHooks
):
    """r1 ($0.003) spends its limit over two isolates, on leases and then per request, until
    refused; an admin quota reset lets it be served again, and usage plus holds never pass
    the limit."""
    url = f"{gateway.openai_base_url}/chat/completions"
    statuses, admissions = [], []
    for i in range(300):
        response = httpx.post(
            url,
            json=body(f"reset {i} emulate:tokens=50", max_tokens=50),
            headers={
                "authorization": f"Bearer {key('key_r1_main')}",
                "x-test-isolate": ISOLATES[i % 2],
            },
            timeout=30,
        )
        statuses.append(response.status_code)
        admissions.append(response.headers.get("server-timing", "").split(";")[0])
        # at every instant, settlements still in a batch are part of the lease's hold
        usage = ledger._post("/__test/ledger/usage", {"orgId": "resets", "month": current_month()})
        row = usage["users"].get("r1", {"usedMicros": 0})
        assert row["usedMicros"] + usage["leasedMicros"] + usage["reservedMicros"] <= 3000
        if response.status_code == 429:
            break
    assert statuses[-1] == 429 and 200 in statuses
    assert "lease" in admissions and "ledger" in admissions[-5:], admissions
    reset = httpx.post(
        f"{gateway.worker_url}/admin/users/r1/reset-quota",
        headers={"authorization": f"Bearer {gateway.secrets.admin_api_key}"},
        timeout=30,
    )
    assert reset.status_code == 200, reset.text
    again = httpx.post(
        url,
        json=body("after the reset", max_tokens=50),
        headers={"authorization": f"Bearer {key('key_r1_main')}", "x-test-isolate": ISOLATES[0]},
        timeout=30,
    )
    assert again.status_code == 200, again.text


def metrics_batch(batch_id: str, day: str, requests: int, cost: int) -> dict[str, Any]:
    """One isolate's facts as its outbox sends them (worker/src/facts/facts.ts): summed per key."""
    counters = dict.fromkeys(
        [
            "requests",
            "errors4xx",
            "errors5xx",
            "rateLimited",
            "cacheHits",
            "fallbacks",
            "standIns",
            "degraded",
            "streams",
            "interrupted",
            "tokensIn",
            "tokensOut",
            "costMicros",
            "tokensCached",
            "tokensCacheWrite",
        ],
        0,
    )
    latency = [0] * 16
    latency[3] = requests  # 5-10 ms
    row = {**counters, "requests": requests, "costMicros": cost, "latency": latency}
    row |= {name: [0] * 16 for name in ("upstream", "ttft", "overhead")}
    return {
        "id": batch_id,
        "requests": requests,
        "groups": [{"key": [day, "m2", "openai/gpt-4o-mini", "/v1/chat/completions"], "row": row}],
    }


def test_an_exchange_sent_again_counts_its_settlements_and_metrics_once(
    gateway: LocalGateway, ledger: WorkerTestHooks
):
    """An isolate whose exchange got no answer sends its settlements again with its next one
    (a new seq), and its metrics batch again under the same id: the ledger applied the first,
    so each settlement and the batch count once (120 settlements: claimed 50 to a statement;
    one sent twice in the same call counts once), while usage is written per subject."""
    month, day = "2026-01", "2026-01-15"
    settlements = [
        {
            "requestId": f"req_again_{i}",
            "userId": "m2",
            "month": month,
            "cost": 100 + i,
            "tokensIn": 10,
        }
        for i in range(120)
    ]
    batch = metrics_batch(
        "isolate-x:1", day, requests=120, cost=sum(s["cost"] for s in settlements)
    )
    settlements.append(settlements[0])  # the same settlement twice in one exchange
    for seq in (1, 2):  # the retry: same settlements, same batch, next seq
        exchange(
            ledger,
            "months",
            month,
            call={"metrics": [batch]},
            leaseId="lease:again",
            userId="m2",
            seq=seq,
            settlements=settlements,
            want=0,
        )
    usage = ledger._post("/__test/ledger/usage", {"orgId": "months", "month": month})
    row = usage["users"]["m2"]
    assert (row["requests"], row["usedMicros"], row["tokensIn"]) == (
        120,
        sum(100 + i for i in range(120)),
        1200,
    )
    assert usage["org"]["requests"] == 120
    metrics = httpx.get(
        f"{gateway.worker_url}/admin/metrics",
        params={"org": "months", "from": day, "to": day},
        headers={"authorization": f"Bearer {gateway.secrets.admin_api_key}"},
        timeout=30,
    )
    assert metrics.status_code == 200, metrics.text
    totals = metrics.json()["totals"]
    assert (totals["requests"], totals["costMicros"]) == (
        120,
        batch["groups"][0]["row"]["costMicros"],
    )


def test_a_batch_sent_again_is_applied_once_as_one_row(ledger: WorkerTestHooks):
    """An exchange's settlements form a batch with an id: sent again under it (the isolate got no
    answer, so a new seq), they count once, and the ledger keeps one row for all of them; the
    same batch sent alone (the isolate's fallback) is not applied again."""
    month = "2026-02"
    settlements = [
        {"requestId": f"req_batch_{i}", "userId": "m2", "month": month, "cost": 100 + i}
        for i in range(120)
    ]
    rows = settled_rows(ledger, "months")
    for seq in (1, 2):
        exchange(
            ledger,
            "months",
            month,
            call={"batch": "batch:test:1"},
            leaseId="lease:batch",
            userId="m2",
            seq=seq,
            settlements=settlements,
            want=0,
        )
    alone = ledger._post(
        "/__test/ledger/settle-batch",
        {"orgId": "months", "batch": "batch:test:1", "records": settlements},
    )
    assert alone == {"applied": False}
    usage = ledger._post("/__test/ledger/usage", {"orgId": "months", "month": month})
    row = usage["users"]["m2"]
    assert (row["requests"], row["usedMicros"]) == (120, sum(100 + i for i in range(120)))
    assert settled_rows(ledger, "months") - rows == 1


def test_a_batch_kept_in_kv_is_reconciled_once(gateway: LocalGateway, ledger: WorkerTestHooks):
    """A batch no exchange could deliver and the ledger would not take alone is kept in KV
    whole; /admin/reconcile applies it once, even when it is found there twice."""
    month = current_month()
    records = [
        {"requestId": f"req_kept_{i}", "userId": "many", "month": month, "cost": 1_000 + i}
        for i in range(3)
    ]
    before = ledger.user_row("wide", "many")
    kept = {"v": 2, "orgId": "wide", "at": 0, "batch": "batch:kept:1", "records": records}
    admin = {"authorization": f"Bearer {gateway.secrets.admin_api_key}"}
    for _ in range(2):  # the same batch reconciled, then found again
        ledger._post(
            "/__test/kv/put", {"key": f"unsettled:wide:{month}:batch:kept:1", "value": kept}
        )
        response = httpx.post(f"{gateway.worker_url}/admin/reconcile", headers=admin, timeout=30)
        assert response.status_code == 200, response.text
        assert ledger._post("/__test/kv", {"prefix": "unsettled:wide:"}) == {}
    after = ledger.user_row("wide", "many")
    assert after["requests"] - before["requests"] == 3
    assert after["usedMicros"] - before["usedMicros"] == 3 * 1_000 + 3
