"""End-to-end: the admin API (/admin/*) against the admin stack's Worker running in workerd.

Usage is generated with the official openai SDK; the emulator's token counts are
deterministic, so every cost below is computed independently of the Worker and compared to
the µUSD. The runtime is per module (and per xdist worker): tests that assert exact figures
own their users (nina and omar: the workload; rita: quota resets; pia: metrics deltas).
"""

from __future__ import annotations

import re
from decimal import Decimal

import httpx
import openai
import pytest

from provision.local.runtime import LocalGateway, LocalSecrets
from provision.stack.compiler import compile_records, config_version
from tests.admin_support import (
    ADMIN_STACK,
    Admin,
    Sent,
    next_month_start,
    send_settled,
    this_month,
)
from tests.support import WorkerTestHooks, error_of, key, openai_client

ENDPOINTS = [
    ("GET", "/admin/health"),
    ("GET", "/admin/metrics"),
    ("GET", "/admin/users/nina"),
    ("GET", "/admin/users/nina/usage"),
    ("POST", "/admin/users/rita/reset-quota"),  # rita: the user whose quota tests reset
    ("GET", "/admin/organizations/northwind"),
    ("GET", "/admin/organizations/northwind/users"),
    ("GET", "/admin/organizations/northwind/usage"),
]


# ---------------------------------------------------------------------------- authentication


@pytest.mark.parametrize(("method", "path"), ENDPOINTS, ids=[f"{m} {p}" for m, p in ENDPOINTS])
@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer adm_wrong-key", "Basic YWRtaW46YWRtaW4=", "user-key"],
    ids=["missing", "wrong", "not-bearer", "gateway-user-key"],
)
def test_every_endpoint_refuses_requests_without_the_admin_key(
    admin_gateway: LocalGateway, method, path, authorization
):
    """Every admin endpoint answers 401 invalid_admin_key without the right admin key."""
    if authorization == "user-key":
        authorization = f"Bearer {key('key_nina_main')}"
    headers = {"authorization": authorization} if authorization else {}
    response = httpx.request(method, admin_gateway.worker_url + path, headers=headers, timeout=30)
    assert response.status_code == 401
    assert error_of(response)["code"] == "invalid_admin_key"
    assert response.headers["x-request-id"]


@pytest.mark.parametrize(("method", "path"), ENDPOINTS, ids=[f"{m} {p}" for m, p in ENDPOINTS])
def test_every_endpoint_answers_with_the_admin_key(admin: Admin, method, path):
    """Every admin endpoint answers 200 with JSON to the admin key."""
    response = admin.request(method, path)
    assert response.status_code == 200, response.text
    assert isinstance(response.json(), dict)


def test_gateway_user_key_never_opens_the_admin_api(admin_gateway: LocalGateway):
    """A valid gw_live_ key is refused with a message saying the admin key is needed."""
    response = httpx.get(
        f"{admin_gateway.worker_url}/admin/metrics",
        headers={"authorization": f"Bearer {key('key_nina_ci')}"},
    )
    assert response.status_code == 401
    assert "ADMIN_API_KEY" in error_of(response)["message"]


def test_admin_api_is_disabled_without_an_admin_key_secret():
    """With ADMIN_API_KEY empty, every admin request is 401, whatever it sends."""
    with LocalGateway(ADMIN_STACK, local_secrets=LocalSecrets(admin_api_key="")) as gateway:
        for headers in ({}, {"authorization": "Bearer"}, {"authorization": "Bearer anything"}):
            response = httpx.get(f"{gateway.worker_url}/admin/health", headers=headers, timeout=30)
            assert response.status_code == 401
            error = error_of(response)
            assert error["code"] == "invalid_admin_key"
            assert "disabled" in error["message"]


# ---------------------------------------------------------------------------- routing


def test_unknown_admin_path_is_404(admin: Admin):
    """An unknown path under /admin/ is 404 unknown_url (after authentication)."""
    for path in ("/admin/nothing", "/admin/users", "/admin/users/nina/keys", "/admin/"):
        response = admin.request("GET", path)
        assert response.status_code == 404, path
        assert error_of(response)["code"] == "unknown_url"


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("POST", "/admin/health", "GET"),
        ("DELETE", "/admin/users/nina", "GET"),
        ("GET", "/admin/users/nina/reset-quota", "POST"),
        ("PUT", "/admin/organizations/northwind/usage", "GET"),
    ],
)
def test_wrong_method_is_405_with_allow(admin: Admin, method, path, allow):
    """A known admin path with the wrong method is 405 with an Allow header."""
    response = admin.request(method, path)
    assert response.status_code == 405
    assert response.headers["allow"] == allow
    assert error_of(response)["code"] == "method_not_allowed"


# ---------------------------------------------------------------------------- health and metrics


def test_health_reports_kv_ledger_and_worker(admin: Admin, admin_gateway: LocalGateway):
    """/admin/health is ok with the config version `provision` computes and the Worker's name."""
    assert admin_gateway.config is not None
    expected = config_version(compile_records(admin_gateway.config))
    body = admin.get("/admin/health")
    assert body["status"] == "ok"
    assert body["kv"] == {"ok": True, "configVersion": expected}
    assert body["ledger"] == {"ok": True}
    assert body["worker"]["name"] == admin_gateway.config.workerName
    assert re.fullmatch(r"[0-9a-f]{12}", body["worker"]["version"])


def test_health_is_503_degraded_when_the_ledger_is_down(admin: Admin):
    """With the ledger unreachable, /admin/health is a 503 JSON report saying which part."""
    response = admin.request("GET", "/admin/health", headers={"x-test-fault": "ledger-down"})
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "degraded"
    assert body["kv"]["ok"] is True
    assert body["ledger"]["ok"] is False


def test_reconcile_is_503_when_kv_is_down(admin: Admin):
    """With KV unreachable nothing can be moved: a 503 saying so, not a 500."""
    response = admin.request("POST", "/admin/reconcile", headers={"x-test-fault": "kv-down"})
    assert response.status_code == 503
    error = error_of(response)
    assert error["code"] == "config_unavailable" and "nothing was moved" in error["message"]


def test_usage_endpoints_are_503_when_the_ledger_is_down(admin: Admin):
    """Usage views answer 503 ledger_unavailable, naming the org, when the ledger is down."""
    response = admin.request(
        "GET", "/admin/organizations/northwind/usage", headers={"x-test-fault": "ledger-down"}
    )
    assert response.status_code == 503
    error = error_of(response)
    assert error["code"] == "ledger_unavailable"
    assert "northwind" in error["message"]


def test_metrics_counts_tenants_from_the_index(admin: Admin):
    """/admin/metrics counts orgs, users and keys (active ones apart) from the directory."""
    body = admin.get("/admin/metrics")
    assert (body["orgs"], body["users"], body["keys"], body["activeKeys"]) == (2, 4, 6, 5)
    assert body["month"] == this_month()


def test_metrics_totals_are_the_sum_of_what_was_sent(
    admin: Admin, admin_gateway: LocalGateway, workload: dict[str, Sent]
):
    """The month's totals grow by exactly the requests, tokens and µUSD sent."""
    before = admin.get("/admin/metrics")["usage"]
    sent = send_settled(
        admin,
        admin_gateway,
        "pia",
        "key_pia_main",
        ("openai/gpt-4o", "Plan the launch emulate:tokens=999", 2000),
        ("openai/gpt-4o-mini", "Short one", 50),
        ("anthropic/claude-sonnet-4-5", "And a longer answer emulate:tokens=2500", 4000),
    )
    after = admin.get("/admin/metrics")["usage"]
    assert after["requests"] - before["requests"] == sent.requests == 3
    assert after["costMicros"] - before["costMicros"] == sent.cost
    assert after["tokensIn"] - before["tokensIn"] == sent.tokens_in
    assert after["tokensOut"] - before["tokensOut"] == sent.tokens_out
    assert after["estimated"] == before["estimated"] == 0

    # And the totals are the sum of the organizations' own figures.
    orgs = [admin.get(f"/admin/organizations/{org}/usage") for org in ("northwind", "umbrella")]
    assert after["costMicros"] == sum(o["usedMicros"] for o in orgs)
    assert after["requests"] == sum(o["requests"] for o in orgs)


def test_metrics_top_users_are_ranked_by_cost(admin: Admin, workload: dict[str, Sent]):
    """topUsers lists users by cost, highest first, with their org and exact cost."""
    top = admin.get("/admin/metrics")["topUsers"]
    costs = [u["costMicros"] for u in top]
    assert costs == sorted(costs, reverse=True)
    assert len(top) <= 10
    by_user = {u["userId"]: u for u in top}
    for user_id, org_id in (("nina", "northwind"), ("omar", "northwind")):
        expected = workload[user_id]
        assert by_user[user_id] == {
            "userId": user_id,
            "orgId": org_id,
            "costMicros": expected.cost,
            "costUsd": f"{Decimal(expected.cost) / 1_000_000:.6f}",
            "requests": expected.requests,
        }


# ---------------------------------------------------------------------------- users


def test_user_record_with_org_name(admin: Admin):
    """/admin/users/{id} is the user's config with the limit in µUSD and USD, and the org name."""
    assert admin.get("/admin/users/omar") == {
        "id": "omar",
        "orgId": "northwind",
        "orgName": "Northwind Traders",
        "email": "omar@northwind.example",
        "status": "active",
        "monthlyLimitMicros": 20_000_000,
        "monthlyLimitUsd": "20.000000",
        "keyIds": ["key_omar_main", "key_omar_old"],
    }


def test_user_usage_matches_what_was_sent(admin: Admin, workload: dict[str, Sent]):
    """A user's usage is exactly the requests, tokens and µUSD sent, with limit and remaining."""
    sent = workload["nina"]
    month = this_month()
    body = admin.get("/admin/users/nina/usage")
    # the slice this isolate's lease still holds for nina: a share of what she has left
    leased = body.pop("leasedMicros")
    assert 0 <= leased <= (100_000_000 - sent.cost) // 4
    assert body.pop("leasedUsd") == f"{Decimal(leased) / 1_000_000:.6f}"
    # her keys: what each spent; the CI key against its own $10
    ci, main = body.pop("keys")  # by key id
    assert (main["id"], main["usage"]["usedMicros"], main["usage"]["requests"]) == (
        "key_nina_main",
        sent.cost,
        2,
    )
    assert "monthlyLimitMicros" not in main, "no limit of its own: its user's applies"
    assert (ci["id"], ci["monthlyLimitMicros"], ci["remainingMicros"], ci["usage"]["requests"]) == (
        "key_nina_ci",
        10_000_000,
        10_000_000,
        0,
    )
    assert body == {
        "userId": "nina",
        "orgId": "northwind",
        "month": month,
        "requests": 2,
        "usedMicros": sent.cost,
        "usedUsd": f"{Decimal(sent.cost) / 1_000_000:.6f}",
        "tokensIn": sent.tokens_in,
        "tokensOut": sent.tokens_out,
        "estimated": 0,
        "cached": 0,
        # of the money: none for billed tools, none for a service tier
        "toolsMicros": 0,
        "toolsUsd": "0.000000",
        "tierMicros": 0,
        "tierUsd": "0.000000",
        "reservedMicros": 0,
        "reservedUsd": "0.000000",
        "limitMicros": 100_000_000,
        "limitUsd": "100.000000",
        "remainingMicros": 100_000_000 - sent.cost,
        "remainingUsd": f"{Decimal(100_000_000 - sent.cost) / 1_000_000:.6f}",
        "resetsAt": next_month_start(month),
    }


def test_user_usage_of_another_month(admin: Admin, workload: dict[str, Sent]):
    """?month= selects a UTC month; a month without traffic is all zeros and resets a month on."""
    body = admin.get("/admin/users/nina/usage", params={"month": "2025-12"})
    assert (body["month"], body["requests"], body["usedMicros"]) == ("2025-12", 0, 0)
    assert body["remainingMicros"] == body["limitMicros"] == 100_000_000
    assert body["resetsAt"] == "2026-01-01T00:00:00.000Z"


@pytest.mark.parametrize("month", ["2026-13", "2026-1", "november", "2026-11-01", "0"])
@pytest.mark.parametrize(
    "path",
    [
        "/admin/users/nina/usage",
        "/admin/organizations/northwind/usage",
        "/admin/organizations/northwind/users",
        "/admin/metrics",
    ],
)
def test_bad_month_is_400(admin: Admin, path, month):
    """A month that is not YYYY-MM is a 400 invalid_month naming the `month` parameter."""
    response = admin.request("GET", path, params={"month": month})
    assert response.status_code == 400
    error = error_of(response)
    assert (error["code"], error["param"]) == ("invalid_month", "month")
    assert month in error["message"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/admin/users/nobody"),
        ("GET", "/admin/users/nobody/usage"),
        ("POST", "/admin/users/nobody/reset-quota"),
        ("GET", "/admin/users/Not%20An%20Id"),
        ("GET", "/admin/users/northwind"),
        ("GET", "/admin/users/__proto__"),
        ("GET", "/admin/users/constructor/usage"),
        ("POST", "/admin/users/toString/reset-quota"),
    ],
)
def test_unknown_user_is_404(admin: Admin, method, path):
    """An unknown user id is 404 user_not_found with a message naming the id."""
    response = admin.request(method, path)
    assert response.status_code == 404
    error = error_of(response)
    assert error["code"] == "user_not_found"
    wanted = httpx.URL(path).path.split("/")[3]
    assert f"'{wanted}'" in error["message"]


def test_reset_quota_zeroes_the_user_and_keeps_the_org_total(
    admin: Admin, admin_gateway: LocalGateway
):
    """reset-quota returns the previous usage; the user restarts at 0, the org total stays."""
    sent = send_settled(
        admin,
        admin_gateway,
        "rita",
        "key_rita_main",
        ("openai/gpt-4o", "Write it out emulate:tokens=1234", 2000),
    )
    user_before = admin.get("/admin/users/rita/usage")
    org_before = admin.get("/admin/organizations/umbrella/usage")

    body = admin.post("/admin/users/rita/reset-quota")
    assert body["userId"] == "rita" and body["orgId"] == "umbrella"
    assert body["month"] == this_month()
    assert body["previousUsageMicros"] == user_before["usedMicros"] >= sent.cost
    assert body["previousUsageUsd"] == user_before["usedUsd"]
    assert (body["usedMicros"], body["remainingMicros"], body["limitMicros"]) == (
        0,
        5_250_000,
        5_250_000,
    )

    user_after = admin.get("/admin/users/rita/usage")
    assert user_after["usedMicros"] == 0
    assert user_after["remainingMicros"] == user_after["limitMicros"] == 5_250_000
    org_after = admin.get("/admin/organizations/umbrella/usage")
    assert org_after["usedMicros"] == org_before["usedMicros"]
    assert org_after["requests"] == org_before["requests"]
    assert admin.post("/admin/users/rita/reset-quota")["previousUsageMicros"] == 0


def test_reset_quota_lets_a_refused_user_through_again(admin: Admin, admin_gateway: LocalGateway):
    """A user refused with 429 insufficient_quota is served again right after reset-quota."""
    admin.post("/admin/users/rita/reset-quota")
    # $1.50 spent of $5.25; the next request may cost up to $4.50, more than what is left.
    send_settled(
        admin,
        admin_gateway,
        "rita",
        "key_rita_main",
        ("anthropic/claude-sonnet-4-5", "emulate:tokens=100000", 100_000),
    )
    big = {
        "model": "anthropic/claude-sonnet-4-5",
        "messages": [{"role": "user", "content": "hi"}],
        "max_tokens": 300_000,
    }
    with openai_client(admin_gateway.openai_base_url, "key_rita_main") as client:
        with pytest.raises(openai.RateLimitError) as refused:
            client.chat.completions.create(**big)
        assert refused.value.body["code"] == "insufficient_quota"

        admin.post("/admin/users/rita/reset-quota")
        requests = admin.get("/admin/users/rita/usage")["requests"]
        completion = client.chat.completions.create(**big)
    assert completion.usage is not None and completion.usage.completion_tokens == 12
    admin.wait_for_requests("rita", requests + 1)  # settled before the next test looks


# ---------------------------------------------------------------------------- organizations


def test_organization_record_with_user_count(admin: Admin):
    """/admin/organizations/{id} is the org's config, money in µUSD and USD, and its user count."""
    assert admin.get("/admin/organizations/umbrella") == {
        "id": "umbrella",
        "name": "Umbrella Corp",
        "status": "active",
        "failureMode": "fail-open",
        "monthlyBudgetMicros": 50_000_000,
        "monthlyBudgetUsd": "50.000000",
        "fallbackDailyLimitMicros": 1_500_000,
        "fallbackDailyLimitUsd": "1.500000",
        "userCount": 2,
    }


@pytest.mark.parametrize(
    "path",
    [
        "/admin/organizations/nowhere",
        "/admin/organizations/nowhere/users",
        "/admin/organizations/nowhere/usage",
        "/admin/organizations/nina",
        "/admin/organizations/__proto__",
        "/admin/organizations/constructor/users",
    ],
)
def test_unknown_organization_is_404(admin: Admin, path):
    """An unknown organization id is 404 organization_not_found with a message naming it."""
    response = admin.request("GET", path)
    assert response.status_code == 404
    error = error_of(response)
    assert error["code"] == "organization_not_found"
    assert f"'{path.split('/')[3]}'" in error["message"]


def test_organization_users_with_their_usage(admin: Admin, workload: dict[str, Sent]):
    """/organizations/{id}/users lists exactly its users, each with this month's exact usage."""
    body = admin.get("/admin/organizations/northwind/users")
    assert body["orgId"] == "northwind" and body["month"] == this_month()
    users = {u["id"]: u for u in body["users"]}
    assert set(users) == {"nina", "omar"}
    for user_id, limit in (("nina", 100_000_000), ("omar", 20_000_000)):
        sent, user = workload[user_id], users[user_id]
        assert user["email"] == f"{user_id}@northwind.example"
        assert user["monthlyLimitMicros"] == limit
        usage = user["usage"]
        assert (usage["requests"], usage["usedMicros"]) == (sent.requests, sent.cost)
        assert (usage["tokensIn"], usage["tokensOut"]) == (sent.tokens_in, sent.tokens_out)
        assert usage["remainingMicros"] == limit - sent.cost


def test_organization_usage_totals_and_rows(admin: Admin, workload: dict[str, Sent]):
    """/organizations/{id}/usage: the org total is the sum of its users, with budget and rows."""
    total = Sent()
    for sent in workload.values():
        total.add(sent)
    month = this_month()
    body = admin.get("/admin/organizations/northwind/usage")
    assert (body["orgId"], body["name"], body["month"]) == ("northwind", "Northwind Traders", month)
    assert (body["requests"], body["usedMicros"]) == (3, total.cost)
    assert (body["tokensIn"], body["tokensOut"]) == (total.tokens_in, total.tokens_out)
    assert body["budgetMicros"] == 500_000_000
    assert body["remainingMicros"] == 500_000_000 - total.cost
    assert (body["openReservations"], body["reservedMicros"]) == (0, 0)
    assert body["resetsAt"] == next_month_start(month)
    rows = {row["userId"]: row for row in body["users"]}
    assert set(rows) == {"nina", "omar"}
    for user_id, sent in workload.items():
        row = rows[user_id]
        assert (row["requests"], row["usedMicros"]) == (sent.requests, sent.cost)


def test_organization_without_traffic_shows_its_users_at_zero(admin: Admin):
    """A month without traffic lists every member with zero usage and the full budget left."""
    body = admin.get("/admin/organizations/umbrella/usage", params={"month": "2024-02"})
    assert (body["requests"], body["usedMicros"], body["remainingMicros"]) == (0, 0, 50_000_000)
    assert [row["userId"] for row in body["users"]] == ["pia", "rita"]
    assert all(row["usedMicros"] == 0 for row in body["users"])
    assert body["resetsAt"] == "2024-03-01T00:00:00.000Z"


# ---------------------------------------------------------------------------- hostile ids


@pytest.mark.parametrize("key_id", ["__proto__", "constructor", "toString", "hasOwnProperty"])
def test_revoking_an_object_property_name_is_404_and_writes_nothing(
    admin: Admin, admin_gateway: LocalGateway, key_id: str
):
    """A key id is looked up as an id, never as an object property: no `revoked:undefined`."""
    response = admin.request("POST", f"/admin/keys/{key_id}/revoke")
    assert response.status_code == 404
    assert error_of(response)["code"] == "key_not_found"
    hooks = WorkerTestHooks(admin_gateway.worker_url)
    try:
        assert "revoked:undefined" not in hooks.kv("revoked:")
    finally:
        hooks.close()
