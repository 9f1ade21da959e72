"""End-to-end: every failure is an OpenAI-shaped error with the right status."""

from __future__ import annotations

import re

import httpx
import openai
import pytest

from provision.local.runtime import LocalGateway
from tests.support import Emulator, WorkerTestHooks, error_of, key, openai_client

CHAT = "/v1/chat/completions"
HELLO = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


def auth(key_id: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key(key_id)}"}


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({}, "missing_api_key"),
        ({"authorization": "Bearer sk-not-a-gateway-key"}, "invalid_api_key"),
        ({"authorization": "Bearer gw_live_" + "x" * 40}, "invalid_api_key"),
        (auth("key_old_revoked"), "revoked_api_key"),
        (auth("key_old_expired"), "expired_api_key"),
        (auth("key_sus_main"), "account_suspended"),
    ],
    ids=["missing", "not-a-gateway-key", "unknown", "revoked", "expired", "suspended-org"],
)
def test_bad_keys_get_401(http: httpx.Client, headers, code):
    """Missing, unknown, revoked, expired and suspended keys are refused with 401."""
    response = http.post(CHAT, json=HELLO, headers=headers)
    assert response.status_code == 401
    assert error_of(response)["code"] == code
    assert response.headers["x-request-id"]


def test_openai_sdk_sees_authentication_error(gateway: LocalGateway):
    """The openai SDK raises its own AuthenticationError for an unknown key."""
    client = openai.OpenAI(
        base_url=gateway.openai_base_url, api_key="gw_live_" + "y" * 40, max_retries=0
    )
    with pytest.raises(openai.AuthenticationError) as caught:
        client.chat.completions.create(**HELLO)
    assert caught.value.status_code == 401


def test_malformed_json_is_400(http: httpx.Client):
    """A body that is not JSON is a 400 invalid_json."""
    response = http.post(CHAT, content=b"{not json", headers=auth("key_ada_main"))
    assert response.status_code == 400
    assert error_of(response)["code"] == "invalid_json"


@pytest.mark.parametrize(
    "body", [{"model": "gpt-4o-mini"}, {"model": "gpt-4o-mini", "messages": []}]
)
def test_missing_messages_is_400(http: httpx.Client, body):
    """A chat request without messages is a 400 naming the `messages` parameter."""
    response = http.post(CHAT, json=body, headers=auth("key_ada_main"))
    assert response.status_code == 400
    assert error_of(response)["param"] == "messages"


def test_unknown_route_is_404(http: httpx.Client):
    """Unknown paths are 404 in OpenAI's shape, even without a key."""
    response = http.post("/v1/engines/foo", json={})
    assert response.status_code == 404
    assert error_of(response)["code"] == "unknown_url"


def test_a_model_id_is_the_paths_rest_slashes_and_escapes_included(http: httpx.Client):
    """`/v1/models/<id>`: an id with a slash, sent raw or escaped, is the model; the path with no
    id is no route (404 without a key); another method is a 405 naming GET."""
    for path in ("/v1/models/openai/gpt-4o-mini", "/v1/models/openai%2Fgpt-4o-mini"):
        response = http.get(path, headers=auth("key_ada_main"))
        assert response.status_code == 200, (path, response.text)
        assert response.json()["id"] == "openai/gpt-4o-mini"
    assert http.get("/v1/models/nope/none", headers=auth("key_ada_main")).status_code == 404
    bare = http.get("/v1/models/")
    assert bare.status_code == 404
    assert error_of(bare)["code"] == "unknown_url"
    wrong = http.post("/v1/models/openai/gpt-4o-mini", json={}, headers=auth("key_ada_main"))
    assert (wrong.status_code, wrong.headers["allow"]) == (405, "GET")


def test_request_ids_are_distinct_and_random_hex(http: httpx.Client):
    """Every response's x-request-id is `req_` and 24 hex digits, none repeated over more
    requests than one draw of random bytes serves (256 ids)."""
    ids = [http.get("/health").headers["x-request-id"] for _ in range(600)]
    assert all(re.fullmatch(r"req_[0-9a-f]{24}", i) for i in ids)
    assert len(set(ids)) == len(ids)


def test_wrong_method_is_405(http: httpx.Client):
    """GET on the chat endpoint is 405 with an Allow header."""
    response = http.get(CHAT, headers=auth("key_ada_main"))
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert error_of(response)["code"] == "method_not_allowed"


def test_model_outside_allow_list_is_403(gateway: LocalGateway):
    """A model the key may not use is 403 (PermissionDeniedError in the SDK)."""
    client = openai_client(gateway.openai_base_url, "key_ben_main")
    with pytest.raises(openai.PermissionDeniedError) as caught:
        client.chat.completions.create(model="openai/gpt-4o", messages=HELLO["messages"])
    assert caught.value.body["code"] == "model_not_allowed"


def test_unknown_model_is_404(gateway: LocalGateway):
    """A model that is not in the catalog is 404 model_not_found."""
    client = openai_client(gateway.openai_base_url, "key_ada_main")
    with pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.create(model="gpt-99", messages=HELLO["messages"])
    assert caught.value.body["code"] == "model_not_found"


def test_provider_5xx_becomes_502(http: httpx.Client, emulator: Emulator):
    """An upstream provider failure is a 502 upstream_error, not a raw provider body."""
    emulator.fault(match={"model": "openai/gpt-4o-mini"}, times=1, status=500)
    response = http.post(CHAT, json=HELLO, headers=auth("key_ada_main"))
    assert response.status_code == 502
    assert error_of(response)["code"] == "upstream_error"


def test_provider_4xx_passes_through(http: httpx.Client, emulator: Emulator):
    """A provider's own 400 reaches the client with its status and message."""
    emulator.fault(
        match={"model": "openai/gpt-4o-mini"},
        times=1,
        status=400,
        body={
            "error": {
                "message": "bad temperature",
                "type": "invalid_request_error",
                "param": "temperature",
                "code": None,
            }
        },
    )
    response = http.post(CHAT, json=HELLO, headers=auth("key_ada_main"))
    assert response.status_code == 400
    error = error_of(response)
    assert (error["message"], error["param"]) == ("bad temperature", "temperature")


def test_slow_upstream_is_504(http: httpx.Client, emulator: Emulator):
    """No response headers within the stack's upstreamTimeoutMs (1.5 s here) is a 504."""
    emulator.fault(match={"model": "openai/gpt-4o-mini"}, times=1, delayMs=4000)
    response = http.post(CHAT, json=HELLO, headers=auth("key_ada_main"))
    assert response.status_code == 504
    assert error_of(response)["code"] == "upstream_timeout"


def test_wrong_gateway_token_is_502(gateway: LocalGateway, http: httpx.Client, emulator: Emulator):
    """AI Gateway refusing our token (401/2009) is the operator's problem: 502, code named."""
    assert gateway.config is not None
    emulator.configure({gateway.config.gatewayId: {"token": "rotated-elsewhere"}})
    response = http.post(CHAT, json=HELLO, headers=auth("key_ada_main"))
    assert response.status_code == 502
    error = error_of(response)
    assert error["code"] == "gateway_error"
    assert "2009" in error["message"]


def test_gateway_rate_limit_is_429(gateway: LocalGateway, http: httpx.Client, emulator: Emulator):
    """AI Gateway's own rate limit (429/2003) reaches the client as a 429."""
    emulator.fault(match={"model": "openai/gpt-4o-mini"}, times=1, gatewayError=2003)
    response = http.post(CHAT, json=HELLO, headers=auth("key_ada_main"))
    assert response.status_code == 429
    assert error_of(response)["code"] == "gateway_rate_limited"


def test_config_store_outage_is_503_not_500(http: httpx.Client):
    """If KV cannot be read, a key that is not cached gets 503 config_unavailable."""
    response = http.post(
        CHAT,
        json=HELLO,
        headers={"authorization": f"Bearer {key('key_ada_second')}", "x-test-fault": "kv-down"},
    )
    assert response.status_code == 503
    assert error_of(response)["code"] == "config_unavailable"


def test_a_fail_open_orgs_key_seen_lately_authenticates_while_kv_is_down(
    gateway: LocalGateway, http: httpx.Client
):
    """Issue 13: stale but bounded. cy's org is fail-open: a key this isolate read within 15 min
    still authenticates while KV cannot be read, a key known revoked never does, and past the
    bound it is the 503. ben's org is fail-closed: the 503 at once."""
    hooks = WorkerTestHooks(gateway.worker_url)
    down = {"x-test-fault": "kv-down"}
    for key_id in ("key_cy_main", "key_cy_revoked", "key_ben_main"):
        http.post(CHAT, json=HELLO, headers=auth(key_id))  # read from KV, now cached
    hooks._post("/__test/auth/age", {"ms": 11_000})  # past the 10 s a cached record is fresh
    served = http.post(CHAT, json=HELLO, headers={**auth("key_cy_main"), **down})
    assert served.status_code == 200, served.text
    revoked = http.post(CHAT, json=HELLO, headers={**auth("key_cy_revoked"), **down})
    assert (revoked.status_code, error_of(revoked)["code"]) == (401, "revoked_api_key")
    closed = http.post(CHAT, json=HELLO, headers={**auth("key_ben_main"), **down})
    assert (closed.status_code, error_of(closed)["code"]) == (503, "config_unavailable")
    hooks._post("/__test/auth/age", {"ms": 15 * 60 * 1000})  # past STALE_AUTH_MS
    late = http.post(CHAT, json=HELLO, headers={**auth("key_cy_main"), **down})
    assert (late.status_code, error_of(late)["code"]) == (503, "config_unavailable")
    hooks.close()


MAX_REQUEST_BYTES = 16 * 1024 * 1024  # routing.maxRequestBytes' default (provision/stack/model.py)


def oversized(chunked: bool):
    """A valid chat body just over the cap: declared, or streamed without a length."""
    body = b'{"model":"gpt-4o-mini","messages":[{"role":"user","content":"'
    body += b"x" * (MAX_REQUEST_BYTES - len(body)) + b'"}]}'
    if not chunked:
        return body
    return (body[i : i + (1 << 20)] for i in range(0, len(body), 1 << 20))


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
@pytest.mark.parametrize(
    ("path", "shape"),
    [(CHAT, "openai"), ("/v1/messages", "anthropic"), ("/v1/embeddings", "openai")],
)
def test_a_body_over_the_cap_is_413_in_the_routes_shape(
    http: httpx.Client, emulator: Emulator, path: str, shape: str, chunked: bool
):
    """Issue 13, defect 2: routing.maxRequestBytes caps what the Worker reads, whether the
    length is declared or not; nothing goes upstream."""
    headers = {**auth("key_ada_main"), "content-type": "application/json"}
    if shape == "anthropic":
        headers["anthropic-version"] = "2023-06-01"
    # its own connection, closed after: the Worker answers before the upload has finished
    with httpx.Client(base_url=str(http.base_url), timeout=30) as once:
        response = once.post(
            path, content=oversized(chunked), headers={**headers, "connection": "close"}
        )
    assert response.status_code == 413
    body = response.json()
    if shape == "anthropic":
        assert body["error"]["type"] == "request_too_large"
    else:
        assert error_of(response)["code"] == "request_too_large"
    assert str(MAX_REQUEST_BYTES) in response.text
    # nothing of this request upstream (by its id: other tests' late requests do not count)
    assert emulator.requests(requestId=response.headers["x-request-id"]) == []
    assert http.post(CHAT, json=HELLO, headers=auth("key_ada_main")).status_code == 200


MALFORMED = [
    ([{"role": "wizard", "content": "hi"}], "messages[0].role"),
    ([{"role": "user", "content": [{"type": "video"}]}], "messages[0].content[0].type"),
    ([{"role": "tool", "content": "42"}], "messages[0].tool_call_id"),
]


@pytest.mark.parametrize(("messages", "param"), MALFORMED)
def test_a_malformed_message_is_the_providers_400_naming_it_and_costs_nothing(
    http: httpx.Client, emulator: Emulator, hooks: WorkerTestHooks, messages, param
):
    """Issue 21: roles and content parts are the provider's to judge: OpenAI's own 400 naming
    the part reaches the client, the request went upstream once, and nothing was charged."""
    before = hooks.user_row("acme", "ada")["usedMicros"]
    response = http.post(CHAT, json={**HELLO, "messages": messages}, headers=auth("key_ada_main"))
    assert response.status_code == 400
    assert error_of(response)["param"] == param
    assert [e["status"] for e in emulator.requests(requestId=response.headers["x-request-id"])] == [
        400
    ]
    assert hooks.user_row("acme", "ada")["usedMicros"] == before


@pytest.mark.parametrize(("messages", "param"), MALFORMED)
def test_a_message_the_translation_cannot_carry_is_400_naming_it_and_never_sent(
    http: httpx.Client, emulator: Emulator, messages, param
):
    """The OpenAI-to-Anthropic translation is the gateway's own: what it cannot translate is its
    400 naming the part, before anything goes upstream."""
    body = {**HELLO, "model": "claude-sonnet", "messages": messages}
    response = http.post(CHAT, json=body, headers=auth("key_ada_main"))
    assert response.status_code == 400
    assert error_of(response)["param"] == param
    assert emulator.requests(requestId=response.headers["x-request-id"]) == []


LEAKY = (
    "Invalid value for model at https://api.provider.example/v1/x?key=sk-abc1234567890 "
    "(upstream 10.0.0.12:443, account 0123456789abcdef0123456789abcdef)"
)


@pytest.mark.parametrize("status", [400, 500])
def test_an_upstream_error_reaches_the_client_without_secrets_or_infrastructure(
    http: httpx.Client, emulator: Emulator, status: int
):
    """Issue 22: the provider's error comes back in the route's shape with its own type, but
    without keys, URLs, addresses or ids of what is behind the gateway."""
    body = {
        "error": {
            "message": LEAKY,
            "type": "invalid_request_error",
            "param": "model",
            "code": "bad",
        }
    }
    emulator.fault(match={"model": "openai/gpt-4o-mini"}, times=1, status=status, body=body)
    response = http.post(CHAT, json=HELLO, headers=auth("key_ada_main"))
    assert response.status_code == (400 if status == 400 else 502)
    message = error_of(response)["message"]
    for leak in ("https://", "sk-abc", "10.0.0.12", "0123456789abcdef"):
        assert leak not in message, message
    assert "Invalid value for model at <url>" in message
    if status == 400:
        assert error_of(response)["type"] == "invalid_request_error"


def test_an_anthropic_error_keeps_anthropics_type_on_the_messages_route(
    http: httpx.Client, emulator: Emulator
):
    """The Messages route passes Anthropic's own error type on (not one made from the status)."""
    body = {"type": "error", "error": {"type": "not_found_error", "message": f"model: {LEAKY}"}}
    emulator.fault(match={"model": "claude-sonnet-4-5"}, times=1, status=404, body=body)
    response = http.post(
        "/v1/messages",
        json={
            "model": "claude-sonnet",
            "max_tokens": 20,
            "messages": [{"role": "user", "content": "hi"}],
        },
        headers={"x-api-key": key("key_ada_main"), "anthropic-version": "2023-06-01"},
    )
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["type"] == "not_found_error"
    assert "sk-abc" not in error["message"] and "https://" not in error["message"]
