"""The admin stack's runtime and its known workload, shared by the admin API and CLI tests.

Costs are computed by the tests from the emulator's rules and the stack's prices written out
here, never by the code under test. The fixtures that use these live in tests/conftest.py
(session scope: one admin runtime per test worker).
"""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx

from provision.local.runtime import LocalGateway
from tests.support import ROOT, eventually, openai_client

ADMIN_STACK = ROOT / "tests" / "fixtures" / "Pulumi.admin.yaml"
# The admin stack's prices in µUSD per million tokens (input, output), written out here so the
# expected costs do not come from the code under test.
PRICES = {
    "openai/gpt-4o-mini": (150_000, 600_000),
    "openai/gpt-4o": (2_500_000, 10_000_000),
    "anthropic/claude-sonnet-4-5": (3_000_000, 15_000_000),
}
SETTLE_TIMEOUT_S = 5.0


@dataclass
class Sent:
    """What a user sent, as the test itself counts it."""

    requests: int = 0
    cost: int = 0
    tokens_in: int = 0
    tokens_out: int = 0

    def add(self, other: Sent) -> None:
        self.requests += other.requests
        self.cost += other.cost
        self.tokens_in += other.tokens_in
        self.tokens_out += other.tokens_out


# ---------------------------------------------------------------------------- helpers


def prompt_tokens(messages: list[dict[str, str]]) -> int:
    """The emulator's rule: 3 + Σ(4 + ceil(utf8 bytes / 4))."""
    return 3 + sum(4 + math.ceil(len(m["content"].encode()) / 4) for m in messages)


def cost_micros(model: str, prompt: int, completion: int) -> int:
    price_in, price_out = PRICES[model]
    return -(-(prompt * price_in + completion * price_out) // 1_000_000)  # ceil, integers only


def this_month() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m")


def next_month_start(month: str) -> str:
    year, mon = map(int, month.split("-"))
    year, mon = (year + 1, 1) if mon == 12 else (year, mon + 1)
    return f"{year:04d}-{mon:02d}-01T00:00:00.000Z"


def _not_money(where: str, name: str) -> bool:
    """Rates (`errorRate`) and latency percentiles (`latencyMs.p50`) are the only floats."""
    return name.endswith("Rate") or where.rsplit(".", 1)[-1].endswith("Ms")


def assert_money_exact(value: Any, where: str = "body") -> None:
    """Every `xMicros` is an int with an `xUsd` twin that is its exact decimal; no floats but
    rates and latencies."""
    if isinstance(value, dict):
        for name, item in value.items():
            if not _not_money(where, name):
                assert not isinstance(item, float), f"{where}.{name} is a float: {item}"
            if name.endswith("Micros"):
                twin = name[: -len("Micros")] + "Usd"
                assert isinstance(item, int) and not isinstance(item, bool), f"{where}.{name}"
                assert twin in value, f"{where}.{name} has no {twin}"
                assert value[twin] == f"{Decimal(item) / 1_000_000:.6f}", f"{where}.{twin}"
            assert_money_exact(item, f"{where}.{name}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            assert_money_exact(item, f"{where}[{i}]")


class Admin:
    """An httpx client with the admin key that checks every body's money fields."""

    def __init__(self, gateway: LocalGateway):
        self.http = httpx.Client(
            base_url=gateway.worker_url,
            headers={"authorization": f"Bearer {gateway.secrets.admin_api_key}"},
            timeout=30,
        )

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        response = self.http.request(method, path, **kwargs)
        if response.headers.get("content-type", "").startswith("application/json"):
            assert_money_exact(response.json())
        return response

    def get(self, path: str, **kwargs: Any) -> dict[str, Any]:
        response = self.request("GET", path, **kwargs)
        assert response.status_code == 200, response.text
        return response.json()

    def post(self, path: str) -> dict[str, Any]:
        response = self.request("POST", path)
        assert response.status_code == 200, response.text
        return response.json()

    def wait_for_requests(self, user_id: str, requests: int) -> dict[str, Any]:
        """The user's usage once the ledger has settled `requests` requests (waitUntil)."""

        def usage() -> dict[str, Any]:
            return self.get(f"/admin/users/{user_id}/usage")

        settled = eventually(lambda: usage()["requests"] >= requests, SETTLE_TIMEOUT_S)
        row = usage()
        assert settled and row["requests"] == requests, f"{user_id}: {row}"
        return row

    def close(self) -> None:
        self.http.close()


def send(gateway: LocalGateway, key_id: str, model: str, text: str, max_tokens: int) -> Sent:
    """One chat completion with the openai SDK; the cost as the test computes it."""
    messages = [{"role": "user", "content": text}]
    with openai_client(gateway.openai_base_url, key_id) as client:
        completion = client.chat.completions.create(
            model=model, messages=messages, max_tokens=max_tokens
        )
    assert completion.usage is not None
    prompt, out = completion.usage.prompt_tokens, completion.usage.completion_tokens
    assert prompt == prompt_tokens(messages)
    directive = re.search(r"emulate:tokens=(\d+)", text)
    assert out == min(int(directive.group(1)) if directive else 12, max_tokens)
    return Sent(requests=1, cost=cost_micros(model, prompt, out), tokens_in=prompt, tokens_out=out)


def send_settled(admin: Admin, gateway: LocalGateway, user_id: str, key_id: str, *calls) -> Sent:
    """Send `calls` ((model, text, max_tokens) each) and wait until the ledger counted them."""
    before = admin.get(f"/admin/users/{user_id}/usage")["requests"]
    sent = Sent()
    for model, text, max_tokens in calls:
        sent.add(send(gateway, key_id, model, text, max_tokens))
    admin.wait_for_requests(user_id, before + sent.requests)
    return sent
