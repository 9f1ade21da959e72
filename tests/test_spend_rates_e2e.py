"""Spend-rate breakers (issue 25, decision 0037): a loop sending requests as fast as it can trips
its user's per-minute breaker within one request of the declared rate, gets 429
spend_rate_exceeded with retry-after and the limit headers, resumes when the minute ends, and the
alerts webhook hears of it once for the window; a key's own breaker stops that key only; a rate
tier's applies per key by the hour; GET /v1/usage shows each window
(tests/fixtures/Pulumi.breakers.yaml, its webhook pointed at this module's receiver)."""

from __future__ import annotations

import math
import secrets
import time
from datetime import UTC, datetime
from typing import Any

import httpx

from provision.local.runtime import LocalGateway
from tests.charges import usd_micros as micros
from tests.support import ROOT, WorkerTestHooks, eventually, key
from tests.webhooks import Receiver, alerts_from_a_shell, webhook_stack

FIXTURE = ROOT / "tests" / "fixtures" / "Pulumi.breakers.yaml"
GPT4O = "openai/gpt-4o"
OUT = 10  # µUSD per output token (the stack's $10 per million)


receiver, gateway = webhook_stack(FIXTURE)


def send(gateway: LocalGateway, key_id: str, tokens: int = 150) -> httpx.Response:
    """One chat answer of `tokens` (about $0.0015), its cap (200) below the clamp floor: a
    request a breaker either admits whole or refuses."""
    return httpx.post(
        f"{gateway.openai_base_url}/chat/completions",
        headers={"authorization": f"Bearer {key(key_id)}"},
        json={
            "model": GPT4O,
            "max_tokens": 200,
            "messages": [
                {"role": "user", "content": f"loop {secrets.token_hex(4)} emulate:tokens={tokens}"}
            ],
        },
        timeout=30,
    )


def worst_case(response: httpx.Response) -> int:
    """The request's worst case: its prompt's bound (bytes, at $2.50 per million) and 200 output
    tokens; bounded from above by its body's size."""
    return math.ceil(len(response.request.content) * 2.5) + 200 * OUT


def start_of_a_minute() -> None:
    """Wait, if need be, so that a loop of a few seconds stays inside one UTC minute."""
    second = datetime.now(UTC).second
    if second > 40:
        time.sleep(60 - second + 0.2)


def test_a_loop_trips_its_per_minute_breaker_and_resumes_after_the_minute(
    gateway: LocalGateway, receiver: Receiver, ledger: WorkerTestHooks
):
    start_of_a_minute()
    limit = 20_000  # lou: $0.02 a minute
    spent, served = 0, 0
    for _ in range(100):
        response = send(gateway, "key_lou_main")
        if response.status_code != 200:
            break
        spent += micros(response.headers["x-gateway-cost-usd"])
        served += 1
    assert response.status_code == 429, response.text
    error = response.json()["error"]
    assert (error["type"], error["code"]) == ("rate_limit_error", "spend_rate_exceeded")
    assert "User 'lou' reached its spend rate of $0.020000 per minute" in error["message"]
    # within one request of the declared rate: never past it, and the next one did not fit
    assert spent <= limit < spent + worst_case(response), (spent, served)
    ends = datetime.fromisoformat(response.headers["x-gateway-quota-resets-at"])
    assert ends.second == 0 and ends.microsecond == 0
    left = (ends - datetime.now(UTC)).total_seconds()
    assert 0 < int(response.headers["retry-after"]) <= 60
    assert abs(int(response.headers["retry-after"]) - left) <= 2
    assert response.headers["x-gateway-limit-scope"] == "user"
    assert response.headers["x-gateway-limit-window"] == "minute"
    assert response.headers["x-gateway-limit-usd"] == "0.020000"
    assert ledger.user_row("acme", "lou")["usedMicros"] == spent, "the month counts it all"

    # what the key reads of its window, while tripped
    usage = httpx.get(
        f"{gateway.worker_url}/v1/usage",
        headers={"authorization": f"Bearer {key('key_lou_main')}"},
        timeout=30,
    ).json()
    [window] = usage["spendRates"]
    assert (window["scope"], window["window"], window["limitMicros"]) == ("user", "minute", limit)
    assert (window["usedMicros"], window["heldMicros"]) == (spent, 0)
    assert datetime.fromisoformat(window["resetsAt"]) == ends

    # tripped again in the same minute: still refused, and no second alert
    assert send(gateway, "key_lou_main").status_code == 429
    [alert] = eventually(lambda: receiver.events(userId="lou"))
    event: dict[str, Any] = alert["event"]
    assert event["type"] == "spend_rate.exceeded"
    assert (event["scope"], event["userId"], event["window"]["name"]) == ("user", "lou", "minute")
    assert datetime.fromisoformat(event["window"]["end"]) == ends
    assert event["limitMicros"] == limit and event["usedMicros"] <= limit
    # and the admin sees it, from the API and from a shell
    listed = httpx.get(
        f"{gateway.worker_url}/admin/alerts",
        params={"org": "acme"},
        headers={"authorization": f"Bearer {gateway.secrets.admin_api_key}"},
        timeout=30,
    ).json()["alerts"]
    [shown] = [a for a in listed if a["userId"] == "lou"]
    assert (shown["scope"], shown["window"]["name"]) == ("user", "minute")
    lines = alerts_from_a_shell(gateway, "acme")
    [line] = [row for row in lines if " lou " in f" {row} "]
    assert "spend rate per minute" in line

    # the next minute: served again
    time.sleep(max(0.0, (ends - datetime.now(UTC)).total_seconds()) + 0.3)
    again = send(gateway, "key_lou_main")
    assert again.status_code == 200, again.text
    time.sleep(1.0)
    assert len(receiver.events(userId="lou")) == 1, "one alert for the window that tripped"


def test_a_keys_own_breaker_stops_that_key_only(gateway: LocalGateway, receiver: Receiver):
    start_of_a_minute()
    for _ in range(50):
        response = send(gateway, "key_max_ci")
        if response.status_code != 200:
            break
    assert response.status_code == 429, response.text
    assert "API key 'key_max_ci' reached its spend rate of $0.010000 per minute" in response.text
    assert response.headers["x-gateway-limit-scope"] == "key"
    # the same user's laptop key, in the same minute
    laptop = send(gateway, "key_max_laptop")
    assert laptop.status_code == 200, laptop.text
    [alert] = eventually(lambda: receiver.events(userId="max"))
    assert (alert["event"]["scope"], alert["event"]["keyId"]) == ("key", "key_max_ci")


def test_a_rate_tier_declares_an_hourly_breaker_per_key(gateway: LocalGateway):
    for _ in range(50):
        response = send(gateway, "key_tia_main")
        if response.status_code != 200:
            break
    assert response.status_code == 429, response.text
    assert response.headers["x-gateway-limit-window"] == "hour"
    assert response.json()["error"]["code"] == "spend_rate_exceeded"
    assert 0 < int(response.headers["retry-after"]) <= 3600
    ends = datetime.fromisoformat(response.headers["x-gateway-quota-resets-at"])
    assert (ends.minute, ends.second) == (0, 0)
