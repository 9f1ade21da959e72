"""Prices from the catalog, end to end (issue 24): the dev stack declares no price, so every
model is charged what genai-prices says. A Claude Sonnet 4.5 request past the catalog's 200,000-
token line pays the long-context prices for all its tokens (with the 1M-context beta, as
Anthropic serves it), a 1-hour cache write its own price; header equal to the ledger's delta."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

import httpx

from provision.local.runtime import LocalGateway
from provision.stack.prices import model_price
from tests.charges import answer_usage, cost_of
from tests.support import ROOT, WorkerTestHooks, eventually, key, stack_gateway

gateway = stack_gateway(ROOT / "stacks" / "Pulumi.dev.yaml")

SONNET = "anthropic/claude-sonnet-4-5"
HEADERS = {
    "authorization": f"Bearer {key('key_bob_ci')}",
    "anthropic-version": "2023-06-01",
}


def micros(usd: str) -> int:
    return int(Decimal(usd) * 1_000_000)


def ask(gateway: LocalGateway, body: dict[str, Any], **headers: str) -> httpx.Response:
    response = httpx.post(
        f"{gateway.worker_url}/v1/messages", json=body, headers={**HEADERS, **headers}, timeout=60
    )
    assert response.status_code == 200, response.text
    return response


def charged(ledger: WorkerTestHooks, before: dict[str, Any]) -> int:
    after = eventually(
        lambda: (
            (r := ledger.user_row("demo-corp", "bob"))["requests"] == before["requests"] + 1 and r
        )
    )
    return int(after["usedMicros"] - before["usedMicros"])


def test_the_dev_stack_prices_sonnet_from_the_catalog(gateway: LocalGateway):
    assert gateway.config is not None
    priced = model_price(gateway.config.pricing, SONNET)
    assert priced.source == "catalog"
    assert priced.price is not None and priced.price.longContext is not None


def test_a_request_past_the_catalogs_line_pays_its_long_context_prices(
    gateway: LocalGateway, ledger: WorkerTestHooks
):
    """~212,000 input tokens: every token at $6 / $22.50 per million (the catalog's tier), not
    $3 / $15; a short request to the same model at the standard prices."""
    for words, long in ((300, False), (170_000, True)):
        before = ledger.user_row("demo-corp", "bob")
        text = f"Read this {time.time_ns()}: " + "word " * words + " emulate:tokens=9"
        body = {
            "model": "claude-sonnet-4-5",
            "max_tokens": 64,
            "messages": [{"role": "user", "content": text}],
        }
        response = ask(gateway, body, **{"anthropic-beta": "context-1m-2025-08-07"})
        usage = answer_usage("messages", response.text, stream=False)
        assert (usage["prompt"] > 200_000) == long
        rate_in, rate_out = (6_000_000, 22_500_000) if long else (3_000_000, 15_000_000)
        numerator = usage["prompt"] * rate_in + usage["completion"] * rate_out  # µUSD per MTok
        expected = cost_of(gateway, SONNET, usage)
        assert expected == -(-numerator // 1_000_000)  # the catalog's rates, rounded up once
        assert charged(ledger, before) == expected
        assert micros(response.headers["x-gateway-cost-usd"]) == expected


def test_a_one_hour_cache_write_pays_the_catalogs_hour_price(
    gateway: LocalGateway, ledger: WorkerTestHooks
):
    """The catalog's $6 per million for an hour's cache write (the 5-minute write is $3.75)."""
    before = ledger.user_row("demo-corp", "bob")
    system = f"Policy manual {time.time_ns()} " + "clause " * 500
    body = {
        "model": "claude-sonnet-4-5",
        "max_tokens": 64,
        "system": [
            {"type": "text", "text": system, "cache_control": {"type": "ephemeral", "ttl": "1h"}}
        ],
        "messages": [{"role": "user", "content": "Summarise. emulate:tokens=5"}],
    }
    response = ask(gateway, body)
    usage = answer_usage("messages", response.text, stream=False)
    assert usage["written_1h"] > 0
    expected = cost_of(gateway, SONNET, usage)
    plain = usage["prompt"] - usage["written"] - usage.get("cached", 0)
    numerator = (
        plain * 3_000_000 + usage["written_1h"] * 6_000_000 + usage["completion"] * 15_000_000
    )
    assert expected == -(-numerator // 1_000_000)
    assert charged(ledger, before) == expected
    assert micros(response.headers["x-gateway-cost-usd"]) == expected
