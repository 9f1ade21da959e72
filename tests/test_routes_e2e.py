"""Route conformance, generated from provision/stack/contract.py's route table: every model route
against every policy outcome (its status and its error shape), every route's served request
charged exactly, streams charged when the client leaves, and nothing outside the table
proxied. A route added to the table is tested here with no change to this file."""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest

from provision.local.runtime import LocalGateway
from provision.stack.config import StackConfig
from provision.stack.contract import ROUTE_KINDS, ROUTES, route_serves
from tests.charges import answer_usage, cost_of
from tests.support import (
    ROOT,
    Emulator,
    WorkerTestHooks,
    current_month,
    eventually,
    key,
    stack_gateway,
)

ROUTES_STACK = ROOT / "tests" / "fixtures" / "Pulumi.routes.yaml"
ROUTE_IDS = [str(route["path"]) for route in ROUTES]
STREAMING = [route for route in ROUTES if ROUTE_KINDS[str(route["kind"])]["streams"]]

CHAT_MODEL = {None: "openai/gpt-4o-mini", "openai": "openai/gpt-4o-mini"}
EMBEDDING_MODEL = {
    None: "openai/text-embedding-3-small",
    "openai": "openai/text-embedding-3-small",
    "workers-ai": "workers-ai/@cf/baai/bge-base-en-v1.5",
}
LLAMA = "workers-ai/@cf/meta/llama-3.1-8b-instruct"
CLAUDE = "anthropic/claude-sonnet-4-5"
GEMINI = "google-ai-studio/gemini-2.5-pro"


def sample_model(route: dict[str, Any]) -> str:
    """A catalog model the route serves (none of them allowed to user `narrow`)."""
    kind, provider = route["kind"], route["provider"]
    if kind == "embeddings":
        return EMBEDDING_MODEL[provider]
    if kind in ("messages", "count_tokens"):
        return CLAUDE
    if provider == "workers-ai":
        return LLAMA
    if kind == "gemini":
        return GEMINI
    return CHAT_MODEL[provider]


def request_for(
    route: dict[str, Any], model: str, *, stream: bool = False, prompt: str = "Hello there"
) -> tuple[str, dict[str, Any]]:
    """The path and body of a request to `route` for `model`, as its clients write it."""
    kind = route["kind"]
    # a provider's own route names the model as the provider does
    name = model.split("/", 1)[1] if route["native"] else model
    messages = [{"role": "user", "content": prompt}]
    path = str(route["path"])
    body: dict[str, Any]
    if kind == "chat":
        body = {"model": name, "messages": messages}
        if stream:
            body["stream_options"] = {"include_usage": True}
    elif kind == "responses":
        body = {"model": name, "input": prompt}
    elif kind == "embeddings":
        body = {"model": name, "input": [prompt, "a second input"]}
    elif kind == "messages":
        body = {"model": name, "max_tokens": 300, "messages": messages}
    elif kind == "count_tokens":
        body = {"model": name, "messages": messages}
    elif kind == "gemini":  # Gemini's own API: the model and the method are the path
        method = "streamGenerateContent?alt=sse" if stream else "generateContent"
        path = re.sub(r":call\{.*\}$", f"{model.split('/', 1)[1]}:{method}", path)
        return path, {"contents": [{"role": "user", "parts": [{"text": prompt}]}]}
    else:  # workers_ai_run: the model is the path
        path = path.replace("@cf/*", name)
        embedding = model in EMBEDDING_MODEL.values()
        body = {"text": [prompt]} if embedding else {"messages": messages}
    if stream:
        body["stream"] = True
    return path, body


def auth_headers(route: dict[str, Any], key_id: str | None) -> dict[str, str]:
    """A key as the route's clients send it: Anthropic's as x-api-key, the others as bearer."""
    headers = (
        {"anthropic-version": "2023-06-01"} if route["kind"] in ("messages", "count_tokens") else {}
    )
    if key_id is None:
        return headers
    plain = key(key_id) if key_id.startswith("key_") else key_id
    if ROUTE_KINDS[str(route["kind"])]["errors"] == "anthropic":
        return {**headers, "x-api-key": plain}
    if ROUTE_KINDS[str(route["kind"])]["errors"] == "google":
        return {**headers, "x-goog-api-key": plain}
    return {**headers, "authorization": f"Bearer {plain}"}


def assert_error_shape(route: dict[str, Any], response: httpx.Response) -> None:
    """The route's own error shape (provision/stack/contract.py ROUTE_KINDS)."""
    shape = ROUTE_KINDS[str(route["kind"])]["errors"]
    body = response.json()
    assert response.headers.get("x-request-id", "").startswith("req_")
    if shape == "openai":
        assert set(body) == {"error"}, body
        assert set(body["error"]) == {"message", "type", "param", "code"}, body
    elif shape == "anthropic":
        assert body["type"] == "error" and set(body["error"]) == {"type", "message"}, body
        expected = {401: "authentication_error", 403: "permission_error", 429: "rate_limit_error"}
        assert body["error"]["type"] == expected.get(response.status_code, body["error"]["type"])
    elif shape == "google":
        assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "status"}, body
        assert body["error"]["code"] == response.status_code
        expected = {401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 429: "RESOURCE_EXHAUSTED"}
        assert body["error"]["status"] == expected.get(
            response.status_code, body["error"]["status"]
        )
    else:
        assert body["success"] is False and body["result"] is None, body
        assert body["errors"][0]["code"] == response.status_code and body["errors"][0]["message"]


# ---------------------------------------------------------------- fixtures


gateway = stack_gateway(ROUTES_STACK)


@pytest.fixture(scope="module")
def ledger(gateway: LocalGateway) -> Iterator[WorkerTestHooks]:
    control = WorkerTestHooks(gateway.worker_url)
    # `spent` is over its user limit, `pauper`'s org over its budget, before any test
    for org, user in (("open", "spent"), ("broke", "pauper")):
        control.record(
            org, requestId=f"seed-{user}", userId=user, month=current_month(), cost=20_000
        )
    yield control
    control.close()


@pytest.fixture()
def http(gateway: LocalGateway) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gateway.worker_url, timeout=30) as client:
        yield client


def config_of(gateway: LocalGateway) -> StackConfig:
    assert gateway.config is not None
    return gateway.config


# ---------------------------------------------------------------- the policy matrix

POLICY = {
    # case: (key id, extra headers, status for a metered route, status for an unmetered one)
    "missing key": (None, {}, 401, 401),
    "unknown key": ("gw_live_" + secrets.token_hex(20), {}, 401, 401),
    "revoked key": ("key_ok_revoked", {}, 401, 401),
    "expired key": ("key_ok_expired", {}, 401, 401),
    "model not allowed": ("key_narrow_main", {}, 403, 403),
    "user over limit": ("key_spent_main", {}, 429, 200),
    "org over budget": ("key_pauper_main", {}, 429, 200),
    "ledger down, fail-closed": ("key_ok_main", {"x-test-fault": "ledger-down"}, 503, 200),
}


OWNERS = {  # key id → (org, user) of the keys that belong to someone
    "key_ok_revoked": ("open", "ok"),
    "key_ok_expired": ("open", "ok"),
    "key_ok_main": ("open", "ok"),
    "key_narrow_main": ("open", "narrow"),
    "key_spent_main": ("open", "spent"),
    "key_pauper_main": ("broke", "pauper"),
}


@pytest.mark.parametrize("case", list(POLICY))
@pytest.mark.parametrize("route", ROUTES, ids=ROUTE_IDS)
def test_every_route_applies_the_policy(
    gateway: LocalGateway,
    ledger: WorkerTestHooks,
    upstream: Emulator,
    http: httpx.Client,
    route: dict[str, Any],
    case: str,
):
    """Refused in the route's own error shape, with nothing charged and nothing sent upstream;
    an unmetered route (count_tokens) is refused only by authentication and the allow-list."""
    key_id, extra, metered_status, free_status = POLICY[case]
    metered = ROUTE_KINDS[str(route["kind"])]["metered"]
    path, body = request_for(route, sample_model(route), prompt=f"policy {case}")
    owner = OWNERS.get(key_id or "")
    charged_before = ledger.user_row(*owner) if owner else None
    sent_before = len(upstream.requests())
    response = http.post(path, json=body, headers={**auth_headers(route, key_id), **extra})
    expected = metered_status if metered else free_status
    assert response.status_code == expected, response.text
    if expected >= 400:
        assert_error_shape(route, response)
        assert len(upstream.requests()) == sent_before, "a refused request went upstream"
        assert "x-gateway-cost-usd" not in response.headers
        if owner:
            assert ledger.user_row(*owner) == charged_before, "a refused request was charged"


# ---------------------------------------------------------------- served and charged exactly


def rows(ledger: WorkerTestHooks) -> tuple[dict[str, Any], dict[str, Any]]:
    usage = ledger.usage("open")
    empty = {"usedMicros": 0, "requests": 0}
    return usage["users"].get("served", empty), usage["org"]


def settled(ledger: WorkerTestHooks, requests: int) -> tuple[dict[str, Any], dict[str, Any]]:
    return eventually(
        lambda: (
            (r := rows(ledger))[0]["requests"] >= requests
            and ledger.usage("open")["openReservations"] == 0
            and r
        )
    )


@pytest.mark.parametrize("route", ROUTES, ids=ROUTE_IDS)
def test_a_served_answer_raises_the_users_and_orgs_rows_by_its_cost(
    gateway: LocalGateway,
    ledger: WorkerTestHooks,
    upstream: Emulator,
    http: httpx.Client,
    route: dict[str, Any],
):
    """Charged exactly what its cost header says (an unmetered route: nothing, and says
    nothing); upstream, the tenant's metadata and never the client's key."""
    user_before, org_before = rows(ledger)
    path, body = request_for(route, sample_model(route), prompt="Charge me emulate:tokens=7")
    response = http.post(path, json=body, headers=auth_headers(route, "key_served_main"))
    assert response.status_code == 200, response.text
    request_id = response.headers["x-request-id"]
    logged = upstream.request_for(request_id)
    assert logged["metadata"]["userId"] == "served" and logged["metadata"]["orgId"] == "open"
    assert key("key_served_main") not in json.dumps(logged), "the client's key went upstream"
    if not ROUTE_KINDS[str(route["kind"])]["metered"]:
        assert "x-gateway-cost-usd" not in response.headers
        assert rows(ledger) == (user_before, org_before)
        return
    charged = int(response.headers["x-gateway-cost-usd"].replace(".", ""))
    assert charged > 0
    user_after, org_after = settled(ledger, user_before["requests"] + 1)
    assert user_after["usedMicros"] - user_before["usedMicros"] == charged
    assert org_after["usedMicros"] - org_before["usedMicros"] == charged


@pytest.mark.parametrize("route", STREAMING, ids=[str(r["path"]) for r in STREAMING])
def test_a_served_stream_raises_the_rows_by_the_cost_of_its_usage(
    gateway: LocalGateway, ledger: WorkerTestHooks, http: httpx.Client, route: dict[str, Any]
):
    user_before, org_before = rows(ledger)
    model = sample_model(route)
    path, body = request_for(route, model, stream=True, prompt="Stream me emulate:tokens=9")
    response = http.post(path, json=body, headers=auth_headers(route, "key_served_main"))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/event-stream")
    cost = cost_of(gateway, model, answer_usage(str(route["kind"]), response.text, stream=True))
    user_after, org_after = settled(ledger, user_before["requests"] + 1)
    assert user_after["usedMicros"] - user_before["usedMicros"] == cost
    assert org_after["usedMicros"] - org_before["usedMicros"] == cost


@pytest.mark.parametrize("route", STREAMING, ids=[str(r["path"]) for r in STREAMING])
def test_a_client_that_leaves_mid_stream_is_still_charged(
    gateway: LocalGateway,
    ledger: WorkerTestHooks,
    upstream: Emulator,
    route: dict[str, Any],
):
    """The client reads a few events and hangs up: the request is recorded, charged more than
    nothing, and its reservation is released."""
    user_before, _ = rows(ledger)
    upstream.fault(match={"metadata": {"userId": "served"}}, times=1, chunkDelayMs=40)
    path, body = request_for(
        route, sample_model(route), stream=True, prompt="Long emulate:tokens=200"
    )
    try:
        with httpx.stream(
            "POST",
            f"{gateway.worker_url}{path}",
            json=body,
            headers=auth_headers(route, "key_served_main"),
            timeout=30,
        ) as response:
            assert response.status_code == 200
            lines = 0
            for line in response.iter_lines():
                lines += line.startswith("data:")
                if lines >= 4:
                    break
    finally:
        upstream.clear_faults()
    user_after, _ = settled(ledger, user_before["requests"] + 1)
    assert user_after["requests"] == user_before["requests"] + 1
    assert user_after["usedMicros"] > user_before["usedMicros"]


# ---------------------------------------------------------------- the table is the whole surface


@pytest.mark.parametrize("route", ROUTES, ids=ROUTE_IDS)
def test_other_methods_are_405_in_the_routes_shape(http: httpx.Client, route: dict[str, Any]):
    path, _ = request_for(route, sample_model(route))
    response = http.get(path, headers=auth_headers(route, "key_ok_main"))
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert_error_shape(route, response)


OUTSIDE = [
    ("POST", "/openai/files", "openai"),
    ("GET", "/openai/models", "openai"),
    ("POST", "/openai/v1/chat/completions/extra", "openai"),
    ("POST", "/openai/audio/speech", "openai"),
    ("POST", "/anthropic/v1/complete", "anthropic"),
    ("GET", "/anthropic/v1/models", "anthropic"),
    ("POST", "/workers-ai/run/@cf/meta/llama-3.1-8b-instruct", "cloudflare"),
    ("POST", "/workers-ai/v1/images/generations", "cloudflare"),
    ("POST", "/groq/chat/completions", "openai"),
]


@pytest.mark.parametrize(("method", "path", "shape"), OUTSIDE, ids=[p for _, p, _ in OUTSIDE])
def test_nothing_outside_the_table_is_proxied(
    http: httpx.Client, upstream: Emulator, method: str, path: str, shape: str
):
    """A provider path that carries no model of ours is a 404 in the namespace's shape, and
    nothing reaches AI Gateway."""
    before = len(upstream.requests())
    response = http.request(
        method,
        path,
        json={"model": "gpt-4o-mini"},
        headers={"authorization": f"Bearer {key('key_ok_main')}"},
    )
    assert response.status_code == 404, response.text
    route = {
        "kind": {"openai": "chat", "anthropic": "messages", "cloudflare": "workers_ai_run"}[shape]
    }
    assert_error_shape(route, response)
    assert len(upstream.requests()) == before


def test_an_encoded_traversal_resolves_to_our_own_route_not_upstream(
    http: httpx.Client, upstream: Emulator
):
    """`/openai/%2e%2e/admin/metrics` is `/admin/metrics` once the URL is parsed: the admin
    API, which refuses a gateway key; nothing reaches AI Gateway."""
    before = len(upstream.requests())
    response = http.post(
        "/openai/%2e%2e/admin/metrics", headers={"authorization": f"Bearer {key('key_ok_main')}"}
    )
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_admin_key"
    assert len(upstream.requests()) == before


def test_models_list_each_models_routes(gateway: LocalGateway, http: httpx.Client):
    """GET /v1/models: every model with its type and the routes that serve it (the table's)."""
    response = http.get("/v1/models", headers={"authorization": f"Bearer {key('key_ok_main')}"})
    listed = {m["id"]: m for m in response.json()["data"]}
    config = config_of(gateway)
    assert set(listed) == set(config.routing.catalog)
    for model, entry in listed.items():
        kind = "embedding" if model in config.routing.embeddingModels else "chat"
        expected = [
            # a pattern as a client writes it (Gemini's `models/:call{…}`)
            re.sub(r":call\{.*\}$", "{model}:{method}", str(route["path"]))
            for route in ROUTES
            if route_serves(route, model, kind)
        ]
        assert entry["type"] == kind
        assert entry["routes"] == expected, model
    assert "/v1/responses" in listed["openai/gpt-4o-mini"]["routes"]
    assert "/v1/messages" in listed[CLAUDE]["routes"]
    # Anthropic's clients reach every chat model on /v1/messages, not on Anthropic's own path
    assert "/v1/messages" in listed["openai/gpt-4o-mini"]["routes"]
    assert "/anthropic/v1/messages" not in listed["openai/gpt-4o-mini"]["routes"]
    assert listed["openai/text-embedding-3-small"]["routes"] == [
        "/v1/embeddings",
        "/openai/embeddings",
    ]


def test_embeddings_answered_as_a_stream_are_502_settled_not_held(
    gateway: LocalGateway, ledger: WorkerTestHooks, upstream: Emulator
):
    """An embeddings answer that is an event stream cannot be an answer: a 502 that states its
    charge, the ledger moved by exactly that, and no reservation left holding budget."""
    model = EMBEDDING_MODEL[None]
    before = ledger.user_row("open", "served")
    upstream.fault(
        match={"model": model, "metadata": {"userId": "served"}},
        status=200,
        body="data: {}\n\n",
        headers={"content-type": "text/event-stream"},
    )
    response = httpx.post(
        f"{gateway.worker_url}/v1/embeddings",
        headers={"authorization": f"Bearer {key('key_served_main')}"},
        json={"model": model, "input": "a sentence to embed"},
    )
    assert response.status_code == 502, response.text
    assert response.json()["error"]["code"] == "upstream_error"
    charge = int(Decimal(response.headers["x-gateway-cost-usd"]) * 1_000_000)
    after = eventually(
        lambda: (r := ledger.user_row("open", "served"))["requests"] > before["requests"] and r
    )
    assert after["usedMicros"] - before["usedMicros"] == charge
    assert ledger.usage("open")["openReservations"] == 0
