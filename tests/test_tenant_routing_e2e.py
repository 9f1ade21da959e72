"""Per-tenant routing, rate tiers, the open-request cap and tenant caching, end to end
(tests/fixtures/Pulumi.fallbacks.yaml): the precedence table request > user > org > stack for
default models and aliases; N+1 requests in a rate window; the cache key's tenant and policy
version; client cache headers only where the org allows them; a cache hit charged nothing."""

from __future__ import annotations

import secrets
import time
from typing import Any

import anthropic
import httpx
import openai
import pytest

from provision.local.runtime import LocalGateway
from tests.support import (
    ROOT,
    Emulator,
    WorkerTestHooks,
    error_of,
    eventually,
    key,
    openai_client,
    stack_gateway,
)

STACK = ROOT / "tests" / "fixtures" / "Pulumi.fallbacks.yaml"
MINI, GPT4O, CLAUDE = "openai/gpt-4o-mini", "openai/gpt-4o", "anthropic/claude-sonnet-4-6"


gateway = stack_gateway(STACK)


def post(gateway: LocalGateway, path: str, key_id: str, body: dict[str, Any], **headers: str):
    return httpx.post(
        f"{gateway.worker_url}{path}",
        json=body,
        headers={"authorization": f"Bearer {key(key_id)}", **headers},
        timeout=30,
    )


def unique(text: str = "routing") -> str:
    return f"{text} {secrets.token_hex(6)}"


# ------------------------------------------------------------------ precedence

PRECEDENCE = [
    # (key, model asked for (None: omitted), the model that answers), from the fixture stack:
    # stack default gpt-4o-mini, stack alias fast → gpt-4o-mini;
    # org acme: default gpt-4o, alias fast → gpt-4o; org beta: nothing of its own;
    # user pref (acme): default claude, alias fast → claude; strict (acme) may not use gpt-4o.
    ("key_alice_main", None, MINI),  # no user or org default: the stack's
    ("key_plain_main", None, GPT4O),  # the org's default over the stack's
    ("key_pref_main", None, CLAUDE),  # the user's over the org's
    ("key_strict_main", None, MINI),  # the org's default is not allowed to strict: the stack's
    ("key_pref_main", MINI, MINI),  # the request's model over every default
    ("key_alice_main", "fast", MINI),  # the stack's alias
    ("key_plain_main", "fast", GPT4O),  # the org's alias shadows the stack's
    ("key_pref_main", "fast", CLAUDE),  # the user's alias shadows the org's
    ("key_pref_main", "claude-sonnet", CLAUDE),  # a stack alias no tenant shadows
]


# The Responses API is OpenAI's: the Claude cases are chat only (a Claude default there is a
# 400, tested below).
CASES = [("/v1/chat/completions", *case) for case in PRECEDENCE] + [
    ("/v1/responses", *case) for case in PRECEDENCE if case[2].startswith("openai/")
]


@pytest.mark.parametrize(("path", "key_id", "model", "expected"), CASES)
def test_the_model_that_answers_follows_the_precedence(
    gateway: LocalGateway, path: str, key_id: str, model: str | None, expected: str
):
    prompt = unique()
    body: dict[str, Any] = (
        {"messages": [{"role": "user", "content": prompt}]}
        if path.endswith("completions")
        else {"input": prompt}
    )
    if model is not None:
        body["model"] = model
    response = post(gateway, path, key_id, body)
    assert response.status_code == 200, response.text
    assert response.headers["x-gateway-model"] == expected


def test_a_default_the_route_does_not_serve_is_a_clear_400(gateway: LocalGateway):
    """pref's default is Claude; the Responses API serves OpenAI models only."""
    response = post(gateway, "/v1/responses", "key_pref_main", {"input": unique()})
    assert response.status_code == 400
    error = error_of(response)
    assert (error["param"], error["code"]) == ("model", "model_not_supported")


def test_a_tenant_alias_to_a_model_the_key_may_not_use_is_403(gateway: LocalGateway):
    """strict's org aliases `fast` to gpt-4o, which strict may not use."""
    client = openai_client(gateway.openai_base_url, "key_strict_main")
    with pytest.raises(openai.PermissionDeniedError) as raised:
        client.chat.completions.create(model="fast", messages=[{"role": "user", "content": "x"}])
    assert raised.value.code == "model_not_allowed"
    assert GPT4O in raised.value.message


# ------------------------------------------------------------------ rate tiers


def wait_for_a_fresh_window(period: int = 60, needed_s: float = 8.0) -> None:
    """The local binding counts in fixed windows aligned to the epoch (as Cloudflare's do per
    location): start where the whole test fits in one."""
    into = time.time() % period
    if into > period - needed_s:
        time.sleep(period - into + 0.2)


def test_the_request_over_the_tier_is_429_and_another_user_is_unaffected(
    gateway: LocalGateway, ledger: WorkerTestHooks, upstream: Emulator
):
    """Org `limited` has tier `tight`: 3 requests per 60 s per user. lim1's fourth is 429 with
    retry-after and OpenAI's x-ratelimit headers, sent nowhere and charged nothing; lim2 of
    the same org, and lim1 on the Anthropic route's shape, show it is per user."""
    wait_for_a_fresh_window()
    client = openai_client(gateway.openai_base_url, "key_lim1_main")
    for _ in range(3):
        client.chat.completions.create(
            model=MINI, messages=[{"role": "user", "content": unique("tier")}]
        )
    before = eventually(lambda: (r := ledger.user_row("limited", "lim1"))["requests"] == 3 and r)
    sent_before = len(upstream.requests(userId="lim1"))
    with pytest.raises(openai.RateLimitError) as raised:
        client.chat.completions.create(model=MINI, messages=[{"role": "user", "content": "4th"}])
    refused = raised.value.response
    assert raised.value.code == "rate_limit_exceeded"
    assert "3 requests per 60 s" in raised.value.message
    assert refused.headers["retry-after"] == "60"
    assert refused.headers["x-ratelimit-limit-requests"] == "3"
    assert refused.headers["x-ratelimit-remaining-requests"] == "0"
    assert refused.headers["x-ratelimit-reset-requests"] == "60s"
    assert refused.headers["x-request-id"].startswith("req_")
    assert len(upstream.requests(userId="lim1")) == sent_before, "a limited request went upstream"
    assert ledger.user_row("limited", "lim1") == before, "a limited request was charged"

    anthropic_client = anthropic.Anthropic(
        base_url=gateway.worker_url, api_key=key("key_lim1_main"), max_retries=0
    )
    with pytest.raises(anthropic.RateLimitError) as shaped:
        anthropic_client.messages.create(
            model="claude-sonnet-4-6", max_tokens=20, messages=[{"role": "user", "content": "x"}]
        )
    assert shaped.value.response.headers["retry-after"] == "60"

    other = openai_client(gateway.openai_base_url, "key_lim2_main")
    answer = other.chat.completions.create(
        model=MINI, messages=[{"role": "user", "content": unique("other user")}]
    )
    assert answer.choices[0].message.content


def test_a_tier_keyed_by_key_counts_each_key_apart(gateway: LocalGateway):
    """multi's tier `per-key` allows 2 requests per 60 s per API key: its second key still
    has its own two after the first key has spent its own."""
    wait_for_a_fresh_window()
    body = {"model": MINI, "messages": [{"role": "user", "content": "per key"}]}
    first = [post(gateway, "/v1/chat/completions", "key_multi_one", body) for _ in range(3)]
    assert [r.status_code for r in first] == [200, 200, 429]
    assert "API key 'key_multi_one'" in error_of(first[2])["message"]
    second = [post(gateway, "/v1/chat/completions", "key_multi_two", body) for _ in range(2)]
    assert [r.status_code for r in second] == [200, 200]


def test_the_open_request_cap_refuses_the_next_stream(gateway: LocalGateway, upstream: Emulator):
    """streamer's tier allows one open request: while a slow stream is open, the next is 429
    concurrency_limit_exceeded; once it has ended, a new one is served."""
    upstream.fault(match={"metadata": {"userId": "streamer"}}, times=1, chunkDelayMs=150)
    body = {
        "model": MINI,
        "stream": True,
        "messages": [{"role": "user", "content": f"{unique('slow')} emulate:tokens=12"}],
    }
    headers = {"authorization": f"Bearer {key('key_streamer_main')}"}
    with httpx.Client(base_url=gateway.openai_base_url, timeout=30) as http:
        with http.stream("POST", "/chat/completions", json=body, headers=headers) as first:
            assert first.status_code == 200
            lines = first.iter_lines()
            assert next(line for line in lines if line.startswith("data:"))
            second = http.post("/chat/completions", json=body, headers=headers)
            assert second.status_code == 429, second.text
            assert error_of(second)["code"] == "concurrency_limit_exceeded"
            assert int(second.headers["retry-after"]) >= 1
            rest = [line for line in lines if line.startswith("data:")]
            assert rest[-1] == "data: [DONE]"

        def served() -> bool:
            return http.post("/chat/completions", json=body, headers=headers).status_code == 200

        assert eventually(served), "the cap did not free the slot after the stream ended"


# ------------------------------------------------------------------ caching per tenant


def cache_headers(upstream: Emulator, request_id: str) -> dict[str, str]:
    (sent,) = upstream.requests(requestId=request_id)
    return {k: v for k, v in sent["headers"].items() if k.startswith("cf-aig-") and "cache" in k}


def test_a_cache_hit_is_charged_nothing_and_counted(
    gateway: LocalGateway, ledger: WorkerTestHooks, upstream: Emulator
):
    body = {"model": MINI, "messages": [{"role": "user", "content": unique("cache")}]}
    start = ledger.user_row("acme", "plain")
    first = post(gateway, "/v1/chat/completions", "key_plain_main", body)
    assert first.headers["cf-aig-cache-status"] == "MISS"
    before = eventually(
        lambda: (r := ledger.user_row("acme", "plain"))["requests"] == start["requests"] + 1 and r
    )
    assert before["usedMicros"] > start["usedMicros"]
    hit = post(gateway, "/v1/chat/completions", "key_plain_main", body)
    assert hit.headers["cf-aig-cache-status"] == "HIT"
    assert hit.json() == first.json()
    assert hit.headers["x-gateway-cost-usd"] == "0.000000"
    after = eventually(
        lambda: (r := ledger.user_row("acme", "plain"))["requests"] == before["requests"] + 1 and r
    )
    assert after["usedMicros"] == before["usedMicros"]
    assert after["cached"] == before["cached"] + 1


def test_the_cache_key_is_the_tenants_and_carries_the_policy_version(
    gateway: LocalGateway, upstream: Emulator
):
    """plain and twin (same org, same routing, different limits) share answers; pref (own
    aliases and default) and strict (a narrower allow-list) never get theirs; beta's alice
    never gets acme's."""
    body = {"model": MINI, "messages": [{"role": "user", "content": unique("shared")}]}
    keys = {}
    statuses = {}
    for key_id in (
        "key_plain_main",
        "key_twin_main",
        "key_pref_main",
        "key_strict_main",
        "key_alice_main",
    ):
        response = post(gateway, "/v1/chat/completions", key_id, body)
        assert response.status_code == 200, response.text
        statuses[key_id] = response.headers["cf-aig-cache-status"]
        keys[key_id] = cache_headers(upstream, response.headers["x-request-id"])["cf-aig-cache-key"]
    assert statuses == {
        "key_plain_main": "MISS",
        "key_twin_main": "HIT",
        "key_pref_main": "MISS",
        "key_strict_main": "MISS",
        "key_alice_main": "MISS",
    }
    org, version, digest = keys["key_plain_main"].split(":")
    assert org == "acme" and len(version) == 8 and len(digest) == 64
    assert keys["key_twin_main"] == keys["key_plain_main"]
    assert len({keys["key_plain_main"], keys["key_pref_main"], keys["key_strict_main"]}) == 3
    assert keys["key_alice_main"].startswith("beta:")


def test_client_cache_headers_count_only_where_the_org_allows_them(
    gateway: LocalGateway, upstream: Emulator
):
    """acme sets clientCacheControl: a client's cf-aig-skip-cache and cf-aig-cache-ttl are
    honoured; beta does not: they are ignored and the org's TTL applies. Neither is ever
    forwarded as the client sent it."""
    body = {"model": MINI, "messages": [{"role": "user", "content": unique("client cache")}]}
    skip = {"cf-aig-skip-cache": "true"}
    ttl = {"cf-aig-cache-ttl": "60"}
    acme_skip = post(gateway, "/v1/chat/completions", "key_plain_main", body, **skip)
    assert cache_headers(upstream, acme_skip.headers["x-request-id"]) == {
        "cf-aig-skip-cache": "true"
    }
    acme_ttl = post(gateway, "/v1/chat/completions", "key_plain_main", body, **ttl)
    assert cache_headers(upstream, acme_ttl.headers["x-request-id"])["cf-aig-cache-ttl"] == "60"
    beta_skip = post(gateway, "/v1/chat/completions", "key_alice_main", body, **skip, **ttl)
    beta = cache_headers(upstream, beta_skip.headers["x-request-id"])
    assert "cf-aig-skip-cache" not in beta
    assert beta["cf-aig-cache-ttl"] == "300"


# ------------------------------------------------------------------ CORS per org

APP = "https://app.acme.example"


def test_a_preflight_from_an_allowed_origin_is_answered(gateway: LocalGateway):
    """acme allows APP: the preflight (no key, as browsers send it) gets 204 with the origin,
    the methods and the headers the browser asked for."""
    response = httpx.options(
        f"{gateway.worker_url}/v1/chat/completions",
        headers={
            "origin": APP,
            "access-control-request-method": "POST",
            "access-control-request-headers": "authorization, content-type, x-stainless-os",
        },
    )
    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == APP
    assert "POST" in response.headers["access-control-allow-methods"]
    assert (
        response.headers["access-control-allow-headers"]
        == "authorization, content-type, x-stainless-os"
    )
    assert response.headers["x-request-id"].startswith("req_")


def test_a_preflight_from_another_origin_is_refused(gateway: LocalGateway):
    response = httpx.options(
        f"{gateway.worker_url}/v1/chat/completions",
        headers={"origin": "https://evil.example", "access-control-request-method": "POST"},
    )
    assert response.status_code == 403
    assert "access-control-allow-origin" not in response.headers
    assert error_of(response)["code"] == "origin_not_allowed"


def test_a_request_from_its_orgs_origin_exposes_the_quota_headers(gateway: LocalGateway):
    response = post(
        gateway,
        "/v1/chat/completions",
        "key_plain_main",
        {"model": MINI, "messages": [{"role": "user", "content": unique("cors")}]},
        origin=APP,
    )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == APP
    exposed = response.headers["access-control-expose-headers"]
    for name in (
        "x-gateway-cost-usd",
        "x-gateway-remaining-usd",
        "x-request-id",
        "x-gateway-model",
    ):
        assert name in exposed
    assert "Origin" in response.headers["vary"]


def test_a_request_from_an_origin_its_org_does_not_allow_is_refused(gateway: LocalGateway):
    """beta allows no origin: APP (allowed by acme) is refused for beta's key, before anything
    is admitted; a request without an Origin (a server) is unaffected."""
    body = {"model": MINI, "messages": [{"role": "user", "content": unique("cors")}]}
    refused = post(gateway, "/v1/chat/completions", "key_alice_main", body, origin=APP)
    assert refused.status_code == 403
    assert error_of(refused)["code"] == "origin_not_allowed"
    assert "access-control-allow-origin" not in refused.headers
    assert post(gateway, "/v1/chat/completions", "key_alice_main", body).status_code == 200
