"""GET /v1/usage (issue 25): a key reads its own user's month (spent, held, limit, remaining,
when it resets) and, where its org shares them, the org's; never another tenant's. A revoked or
expired key is a 401. The figures are the ledger's: after a charged request they move by
exactly its cost header."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from openai import OpenAI

from provision.local.runtime import LocalGateway
from tests.charges import usd_micros as micros
from tests.support import ROOT, WorkerTestHooks, eventually, key, stack_gateway

gateway = stack_gateway(ROOT / "tests" / "fixtures" / "Pulumi.usage.yaml")


def read(gateway: LocalGateway, key_id: str) -> httpx.Response:
    return httpx.get(
        f"{gateway.worker_url}/v1/usage",
        headers={"authorization": f"Bearer {key(key_id)}"},
        timeout=30,
    )


@pytest.mark.parametrize(
    ("key_id", "user", "org", "limit", "budget"),
    [
        ("key_ua_main", "ua", "shared", 10, 50),
        ("key_ua_ci", "ua", "shared", 10, 50),
        ("key_ub_main", "ub", "shared", 20, 50),
        ("key_uc_main", "uc", None, 5, None),
    ],
)
def test_each_key_reads_its_own_figures(
    gateway: LocalGateway,
    key_id: str,
    user: str,
    org: str | None,
    limit: int,
    budget: int | None,
):
    response = read(gateway, key_id)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["object"] == "usage" and body["key"]["id"] == key_id
    assert body["key"]["limitMicros"] is None, "no key of this stack has a limit of its own"
    assert body["user"]["id"] == user
    assert body["user"]["limitMicros"] == limit * 1_000_000
    assert body["resetsAt"].endswith("-01T00:00:00.000Z")
    if org is None:
        assert body["org"] is None, "an org that does not share keeps its figures"
    else:
        assert body["org"]["id"] == org and body["org"]["limitMicros"] == (budget or 0) * 1_000_000
    assert "users" not in str(body), "no other tenant's figures"


@pytest.mark.parametrize("key_id", ["key_ua_old", "key_ua_expired"])
def test_a_revoked_or_expired_key_reads_nothing(gateway: LocalGateway, key_id: str):
    response = read(gateway, key_id)
    assert response.status_code == 401
    assert "usedMicros" not in response.text


def test_the_figures_move_by_exactly_what_a_request_cost(
    gateway: LocalGateway, ledger: WorkerTestHooks
):
    before = read(gateway, "key_ub_main").json()
    client = OpenAI(base_url=f"{gateway.worker_url}/v1", api_key=key("key_ub_main"), max_retries=0)
    raw = client.chat.completions.with_raw_response.create(
        model="openai/gpt-4o-mini", messages=[{"role": "user", "content": "Hi emulate:tokens=5"}]
    )
    cost = micros(raw.headers["x-gateway-cost-usd"])
    assert cost > 0

    def moved() -> dict[str, Any] | bool:
        now = read(gateway, "key_ub_main").json()
        return now["user"]["requests"] == before["user"]["requests"] + 1 and now

    after = eventually(moved)
    assert isinstance(after, dict)
    assert after["user"]["usedMicros"] - before["user"]["usedMicros"] == cost
    assert after["org"]["usedMicros"] - before["org"]["usedMicros"] == cost
    assert after["user"]["remainingMicros"] == (
        after["user"]["limitMicros"] - after["user"]["usedMicros"] - after["user"]["heldMicros"]
    )
    # the colleague's key sees the org move, never ub's own row
    colleague = read(gateway, "key_ua_main").json()
    assert (
        colleague["user"]["id"] == "ua"
        and colleague["org"]["usedMicros"] >= after["org"]["usedMicros"]
    )


def test_a_budget_refusal_points_to_the_usage_route(gateway: LocalGateway):
    """A worst case above the user's $5 (10M output tokens at $0.60 per million): the 429 in
    OpenAI's shape says where the key can read its figures."""
    response = httpx.post(
        f"{gateway.worker_url}/v1/chat/completions",
        headers={"authorization": f"Bearer {key('key_uc_main')}"},
        json={
            "model": "openai/gpt-4o-mini",
            "messages": [{"role": "user", "content": "Hi"}],
            "max_tokens": 10_000_000,
        },
        timeout=30,
    )
    assert response.status_code == 429
    assert "GET /v1/usage" in response.json()["error"]["message"]
