"""Budget alerts (issue 14): a threshold of a user's limit or an org's budget reached sends
exactly one signed webhook for the month, retried after a failed delivery, never twice across
isolates, and shown by the admin API (tests/fixtures/Pulumi.alerts.yaml, received here on a
local HTTP server).

Expected costs come from the stack's prices written out here and the usage the SDK returned."""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from provision.local.runtime import LocalGateway
from tests.admin_support import Admin
from tests.support import ROOT, eventually, openai_client
from tests.webhooks import Receiver, alerts_from_a_shell, webhook_stack

FIXTURE = ROOT / "tests" / "fixtures" / "Pulumi.alerts.yaml"
GPT4O = "openai/gpt-4o"
PRICE_IN, PRICE_OUT = 2_500_000, 10_000_000  # µUSD per million tokens, as the stack says


def cost(prompt: int, completion: int) -> int:
    return math.ceil((prompt * PRICE_IN + completion * PRICE_OUT) / 1_000_000)


receiver, gateway = webhook_stack(FIXTURE)


@pytest.fixture(scope="module")
def admin(gateway: LocalGateway):
    client = Admin(gateway)
    yield client
    client.http.close()


def spend(gateway: LocalGateway, key_id: str, completion: int, isolate: str = "") -> int:
    """One answer of `completion` tokens; its cost, from the usage the SDK returned."""
    client = openai_client(gateway.openai_base_url, key_id)
    headers = {"x-test-isolate": isolate} if isolate else {}
    answer = client.chat.completions.create(
        model=GPT4O,
        messages=[
            {"role": "user", "content": f"spend {secrets.token_hex(4)} emulate:tokens={completion}"}
        ],
        max_tokens=completion + 100,
        extra_headers=headers,
    )
    assert answer.usage is not None
    return cost(answer.usage.prompt_tokens, answer.usage.completion_tokens)


def check_signature(record: dict[str, Any], secret: str) -> None:
    """x-gateway-signature: t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>."""
    parts = dict(p.split("=", 1) for p in record["headers"]["x-gateway-signature"].split(","))
    expected = hmac.new(
        secret.encode(), f"{parts['t']}.{record['body']}".encode(), hashlib.sha256
    ).hexdigest()
    assert hmac.compare_digest(parts["v1"], expected)
    assert abs(int(parts["t"]) - time.time()) < 120


def test_crossing_80_percent_sends_exactly_one_signed_webhook(
    gateway: LocalGateway, receiver: Receiver, admin: Admin
):
    """dee ($0.01 limit): 30 % spent sends nothing; crossing 80 % sends one alert (and its
    org, $0.015 budget, crosses 50 % with it); more spend below 100 % sends nothing new."""
    spent = spend(gateway, "key_dee_main", 300)
    assert spent * 100 < 10_000 * 80
    time.sleep(1.5)  # an alert would have been delivered by now
    assert receiver.events(userId="dee") == []
    spent += spend(gateway, "key_dee_main", 500)
    assert 10_000 * 80 <= spent * 100 < 10_000 * 100
    [alert] = eventually(lambda: receiver.events(userId="dee"))
    event = alert["event"]
    assert event == {
        "id": "alert:acme:" + event["month"] + ":user:dee:80",
        "type": "budget.threshold_reached",
        "orgId": "acme",
        "scope": "user",
        "userId": "dee",
        "month": event["month"],
        "thresholdPercent": 80,
        "usedMicros": spent,
        "usedUsd": f"{spent / 1_000_000:.6f}",
        "limitMicros": 10_000,
        "limitUsd": "0.010000",
        "reachedAt": event["reachedAt"],
        "attempt": 1,
    }
    assert alert["headers"]["x-gateway-event-id"] == event["id"]
    check_signature(alert, gateway.secrets.alert_webhook_secret)
    # the org crossed 50 % of its budget in the same request: one alert of its own
    [org_alert] = eventually(lambda: receiver.events(orgId="acme", scope="org"))
    assert org_alert["event"]["thresholdPercent"] == 50 and org_alert["event"]["userId"] is None
    check_signature(org_alert, gateway.secrets.alert_webhook_secret)

    spend(gateway, "key_dee_main", 50)  # still under 100 %
    time.sleep(1.5)
    assert len(receiver.events(userId="dee")) == 1
    assert len(receiver.events(orgId="acme", scope="org")) == 1

    listed = admin.get("/admin/alerts", params={"org": "acme"})
    assert listed["webhookConfigured"] is True
    mine = {(a["scope"], a["thresholdPercent"]): a for a in listed["alerts"]}
    assert set(mine) == {("user", 80), ("org", 50)}
    assert mine[("user", 80)]["status"] == "delivered" and mine[("user", 80)]["attempts"] == 1
    assert mine[("user", 80)]["usedMicros"] == event["usedMicros"]  # as it was when reached
    assert mine[("user", 80)]["lastStatus"] == 204

    # and from a shell
    lines = alerts_from_a_shell(gateway, "acme")
    [dee_line] = [line for line in lines if " dee " in f" {line} "]
    assert "80 %" in dee_line and "delivered" in dee_line and "$0.0" in dee_line


def test_a_failed_delivery_is_retried_and_recorded(
    gateway: LocalGateway, receiver: Receiver, admin: Admin
):
    """eve's receiver answers 500 once: the alert comes again (same id, attempt 2), and the
    admin API shows it delivered after 2 attempts. eve's own threshold (80) replaces the stack's."""
    receiver.fail_first["eve"] = 1
    spend(gateway, "key_eve_main", 850)
    posts = eventually(
        lambda: len(receiver.events(userId="eve")) >= 2 and receiver.events(userId="eve")
    )
    assert [p["event"]["attempt"] for p in posts] == [1, 2]
    assert {p["event"]["id"] for p in posts} == {posts[0]["event"]["id"]}
    for post in posts:
        check_signature(post, gateway.secrets.alert_webhook_secret)
    [alert] = eventually(
        lambda: [
            a
            for a in admin.get("/admin/alerts", params={"org": "beta"})["alerts"]
            if a["status"] == "delivered"
        ]
    )
    assert (alert["userId"], alert["thresholdPercent"], alert["attempts"], alert["lastStatus"]) == (
        "eve",
        80,
        2,
        204,
    )
    assert alert["lastError"] is None


def test_nothing_is_sent_twice_across_isolates(gateway: LocalGateway, receiver: Receiver):
    """fay ($0.10): six answers at once from two isolates cross 80 % together: one alert."""
    with ThreadPoolExecutor(6) as pool:
        costs = list(
            pool.map(lambda i: spend(gateway, "key_fay_main", 1500, isolate="ab"[i % 2]), range(6))
        )
    assert 100_000 * 80 <= sum(costs) * 100 < 100_000 * 100
    eventually(lambda: receiver.events(userId="fay"))
    time.sleep(2.0)  # a duplicate would have come by now
    [alert] = receiver.events(userId="fay")
    assert alert["event"]["thresholdPercent"] == 80


def test_a_key_with_a_limit_of_its_own_alerts_at_the_users_thresholds_of_it(
    gateway: LocalGateway, receiver: Receiver, admin: Admin
):
    """kim's CI key ($0.01 of kim's $1): crossing 80 % of the key's limit sends one alert naming
    the key; kim's own limit is far away and sends nothing."""
    spent = spend(gateway, "key_kim_ci", 850)
    assert 10_000 * 80 <= spent * 100 < 10_000 * 100
    [alert] = eventually(lambda: receiver.events(keyId="key_kim_ci"))
    event = alert["event"]
    assert event["id"] == f"alert:gamma:{event['month']}:key:kim:key_kim_ci:80"
    assert (event["scope"], event["userId"], event["thresholdPercent"]) == ("key", "kim", 80)
    assert (event["usedMicros"], event["limitMicros"]) == (spent, 10_000)
    check_signature(alert, gateway.secrets.alert_webhook_secret)
    time.sleep(1.5)
    assert [e["event"]["scope"] for e in receiver.events(userId="kim")] == ["key"]
    listed = admin.get("/admin/alerts", params={"org": "gamma"})["alerts"]
    [shown] = [a for a in listed if a.get("keyId") == "key_kim_ci"]
    assert (shown["scope"], shown["userId"], shown["thresholdPercent"]) == ("key", "kim", 80)


def test_a_limit_lowered_under_the_spend_raises_its_alerts_at_the_next_request(
    gateway: LocalGateway, receiver: Receiver
):
    """hal spends 0.3 % of $1; the stack lowers the limit under that spend (the runtime restarts
    with its state, as a deploy would): the next request is refused, and the 80 % and 100 %
    alerts go out with it, though no new spend was recorded."""
    spent = spend(gateway, "key_hal_main", 300)
    time.sleep(1.5)
    assert receiver.events(userId="hal") == []
    stack = gateway.stack_path
    stack.write_text(
        stack.read_text().replace("monthlyLimitUsd: 1        #", "monthlyLimitUsd: 0.003    #")
    )
    gateway.reload()
    httpx.post(f"{gateway.worker_url}/__test/auth/age", json={"ms": 60_000})  # the new policy now
    client = openai_client(gateway.openai_base_url, "key_hal_main")
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(
            model=GPT4O, messages=[{"role": "user", "content": "one more"}], max_tokens=10
        )
    alerts = eventually(
        lambda: len(receiver.events(userId="hal")) >= 2 and receiver.events(userId="hal")
    )
    assert sorted(a["event"]["thresholdPercent"] for a in alerts) == [80, 100]
    assert {a["event"]["usedMicros"] for a in alerts} == {spent}
    assert {a["event"]["limitMicros"] for a in alerts} == {3_000}


def test_thresholds_need_a_webhook(tmp_path: Path):
    """Thresholds without the stack's webhook are a config error naming each field."""
    text = FIXTURE.read_text()
    without = (
        text.split("  llm-gateway:alerts:")[0]
        + "  llm-gateway:tenants:"
        + text.split("  llm-gateway:tenants:")[1]
    )
    stack = tmp_path / "Pulumi.broken.yaml"
    stack.write_text(without)
    from provision.errors import ConfigError
    from provision.stack.config import load_stack_file

    with pytest.raises(ConfigError) as error:
        load_stack_file(stack)
    message = str(error.value)
    assert (
        "tenants.organizations[1].alerts" in message
        and "tenants.users[1].alertThresholds" in message
    )
    assert "alerts.webhookUrl" in message


def test_admin_alerts_rejects_an_unknown_org(admin: Admin):
    response = admin.request("GET", "/admin/alerts", params={"org": "nowhere"})
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "organization_not_found"
