"""A hostile-input corpus (issue 13), one table of request -> expected status and error code,
over every route of provision/stack/contract.py's table: bodies (encodings, types, nesting, NUL
bytes, numbers at the edges), authorization variants, huge and duplicate headers, every route x
every other method, encoded traversal to /admin, trailing and double slashes, and admin ids
that are prototype names or encodings. Every case must be a 4xx in the route's own error shape
with an x-request-id, send nothing upstream, charge nothing, write nothing, and leave the
gateway healthy.

What only the provider can judge (issue 21: unknown fields and roles, sampling ranges, a
dimension, a role an older model does not take) is no longer refused here: those cases go to the
provider, and its 4xx reaches the client in the route's shape, charged nothing (the second table,
FORWARDED)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from provision.local.runtime import LocalGateway
from provision.stack.contract import ROUTE_KINDS, ROUTES
from tests.support import ROOT, Emulator, WorkerTestHooks, key, stack_gateway
from tests.test_routes_e2e import assert_error_shape, auth_headers, request_for, sample_model

STACK = ROOT / "tests" / "fixtures" / "Pulumi.routes.yaml"
KEY_ID = "key_ok_main"  # org `open`, user `ok`


@dataclass
class Case:
    id: str
    method: str
    path: str
    status: int
    code: str | None = None  # the error code expected (None: any, the status says it)
    content: bytes | None = None
    headers: list[tuple[str, str]] | None = None  # None: the route's own way with a valid key
    route: dict[str, Any] | None = None  # whose error shape applies (None: OpenAI's)
    admin: bool = False  # sent with the admin key instead of a gateway key


# A cap that is not a positive safe integer (9007199254740993 parses as 2^53: not safe either).
EDGE_VALUES = (
    ("1e308", "invalid_type"),
    ("-1", "invalid_value"),
    ("0", "invalid_value"),
    ("1.5", "invalid_type"),
    ('"10"', "invalid_type"),
    ("9007199254740993", "invalid_type"),
)


def deep_tool(good: dict[str, Any], depth: int) -> bytes:
    """The route's good body with one more field: a JSON Schema nested `depth` levels (valid JSON:
    what JSON.stringify overflowed on after admission, issue 21)."""
    schema = '{"type":"object","properties":{"a":' * depth + "{}" + "}}" * depth
    return json.dumps(good)[:-1].encode() + f', "tool_schema": {schema}}}'.encode()


def route_path(route: dict[str, Any]) -> str:
    return request_for(route, sample_model(route))[0]


def body_cases() -> Iterator[Case]:
    """Bodies no route may take, on every route."""
    for route in ROUTES:
        kind = str(route["kind"])
        path, good = request_for(route, sample_model(route))
        rid = f"{route['path']}"
        raw = {
            "empty": b"",
            "not-json": b"{not json",
            "truncated": json.dumps(good).encode()[:-1],
            "array": b"[]",
            "string": b'"hello"',
            "null": b"null",
            "number": b"42",
            "nested-100k": b"[" * 100_000 + b"]" * 100_000,
            "tool schema nested 10,000 deep": deep_tool(good, 10_000),
            "tool schema nested 5,000 deep": deep_tool(good, 5_000),
            "utf16": json.dumps(good).encode("utf-16"),
            "bom-only": b"\xef\xbb\xbf",
        }
        for name, content in raw.items():
            code = "request_too_deep" if "nested" in name else "invalid_json"
            yield Case(f"{rid} body {name}", "POST", path, 400, code, content, route=route)
        if kind == "gemini":
            yield from gemini_cases(route, path, good)
            continue
        if kind == "workers_ai_run":
            continue  # the model is the path; its inputs pass through
        # the output cap the worst case is reserved from: sent but wrong is invalid, never missing
        edge = {"chat": "max_tokens", "responses": "max_output_tokens", "messages": "max_tokens"}
        if kind in edge:
            for value, code in EDGE_VALUES:
                content = json.dumps(good)[:-1].encode() + f', "{edge[kind]}": {value}}}'.encode()
                yield Case(
                    f"{rid} {edge[kind]}={value}", "POST", path, 400, code, content, route=route
                )
        # duplicate keys: JSON.parse keeps the last, so the last must be what is checked
        duplicated = json.dumps(good)[:-1].encode() + b', "model": 42}'
        yield Case(
            f"{rid} duplicate model key", "POST", path, 400, "invalid_type", duplicated, route=route
        )
        for name, model in (
            ("unknown model", "nope-model-9"),
            ("NUL model", "\u0000"),
            ("model of ../", "../admin"),
        ):
            yield Case(
                f"{rid} {name}",
                "POST",
                path,
                404,
                "model_not_found",
                json.dumps({**good, "model": model}).encode(),
                route=route,
            )
        yield Case(
            f"{rid} model as a number",
            "POST",
            path,
            400,
            "invalid_type",
            json.dumps({**good, "model": 42}).encode(),
            route=route,
        )


def gemini_cases(route: dict[str, Any], path: str, good: dict[str, Any]) -> Iterator[Case]:
    """Gemini's own API: the model is the path, the output cap its generationConfig's."""
    rid = str(route["path"])
    for value in ("0", "-1", '"many"', "1.5"):  # null is proto JSON's unset: the stack's cap
        content = json.dumps({**good, "generationConfig": {"maxOutputTokens": "X"}}).replace(
            '"X"', value
        )
        yield Case(
            f"{rid} maxOutputTokens={value}", "POST", path, 400, None, content.encode(), route=route
        )
    for name, model in (("unknown model", "nope-model-9"), ("model of ..", "..")):
        yield Case(
            f"{rid} {name}",
            "POST",
            path.replace("gemini-2.5-pro:", f"{model}:"),
            404,
            None,
            json.dumps(good).encode(),
            route=route,
        )
    if rid.startswith("/v1/"):
        return  # under /v1/models/ any other method is OpenAI's model route's (a 405)
    yield Case(
        f"{rid} unknown method",
        "POST",
        path.replace(":generateContent", ":embedContent"),
        404,
        None,
        json.dumps(good).encode(),
        route=route,
    )


def method_cases() -> Iterator[Case]:
    """Every route answers another method with 405 (and Allow)."""
    for route in ROUTES:
        for method in ("GET", "PUT", "DELETE", "PATCH"):
            yield Case(
                f"{route['path']} {method}", method, route_path(route), 405, None, route=route
            )


CHAT = next(r for r in ROUTES if r["path"] == "/v1/chat/completions")
MESSAGES = next(r for r in ROUTES if r["path"] == "/v1/messages")
HELLO = json.dumps(
    {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
).encode()
CLAUDE = json.dumps(
    {
        "model": "claude-sonnet-4-5",
        "max_tokens": 10,
        "messages": [{"role": "user", "content": "hi"}],
    }
).encode()


def header_cases() -> Iterator[Case]:
    unknown = "gw_live_" + "Z" * 40
    variants = {
        "no key": [],
        "empty bearer": [("authorization", "Bearer")],
        "lower-case scheme alone": [("authorization", "bearer")],
        "basic auth": [("authorization", "Basic dXNlcjpwYXNz")],
        "openai key": [("authorization", "Bearer sk-proj-" + "a" * 40)],
        "short gateway key": [("authorization", "Bearer gw_live_abc")],
        "unknown gateway key": [("authorization", f"Bearer {unknown}")],
        "key with a tail": [("authorization", f"Bearer {key(KEY_ID)}x")],
        "key with a NUL-like escape": [("authorization", f"Bearer {key(KEY_ID)}%00")],
        "two keys in one header": [("authorization", f"Bearer {key(KEY_ID)}, Bearer {unknown}")],
        "duplicate headers": [
            ("authorization", f"Bearer {unknown}"),
            ("authorization", f"Bearer {unknown}"),
        ],
        "70 KB key": [("authorization", "Bearer gw_live_" + "a" * 70_000)],
        "70 KB other header": [("authorization", f"Bearer {unknown}"), ("x-junk", "a" * 70_000)],
    }
    for name, headers in variants.items():
        yield Case(f"chat {name}", "POST", "/v1/chat/completions", 401, None, HELLO, headers, CHAT)
    anthropic = {
        "no x-api-key": [("anthropic-version", "2023-06-01")],
        "unknown x-api-key": [("anthropic-version", "2023-06-01"), ("x-api-key", unknown)],
        "empty x-api-key": [("anthropic-version", "2023-06-01"), ("x-api-key", "")],
        "two x-api-keys": [
            ("anthropic-version", "2023-06-01"),
            ("x-api-key", unknown),
            ("x-api-key", unknown),
        ],
    }
    for name, headers in anthropic.items():
        yield Case(f"messages {name}", "POST", "/v1/messages", 401, None, CLAUDE, headers, MESSAGES)


RUN = next(r for r in ROUTES if r["kind"] == "workers_ai_run")


def path_cases() -> Iterator[Case]:
    """Ways round to /admin with a gateway key, paths that are not routes, and a model in the
    path that is not valid percent-encoding (a URIError was a 500)."""
    for raw in ("/workers-ai/@cf/%", "/workers-ai/@cf/%ZZ", "/workers-ai/@cf/meta/%E0%A4%A"):
        yield Case(f"path {raw}", "POST", raw, 400, None, b'{"prompt": "hi"}', route=RUN)
    for raw in (
        "/v1/%2e%2e/admin/metrics",
        "/v1/../admin/metrics",
        "/openai/../admin/metrics",
        "/%61dmin/metrics",
    ):
        yield Case(f"path {raw}", "POST", raw, 401, "invalid_admin_key", HELLO)
    # resolves to /v1/admin/…: not a route at all
    raw = "/v1/chat/completions/../../admin/keys/key_ok_main/revoke"
    yield Case(f"path {raw}", "POST", raw, 404, "unknown_url", HELLO)
    for raw in (
        "//v1/chat/completions",
        "/v1//chat/completions",
        "/v1/chat/completions/",
        "/v1/chat%2Fcompletions",
        "/admin%2Fmetrics",
        "/v1/chat/completions%00",
        "/openai/v1/files",
        "/openai/chat/completions/../../v1/files",
        "/v2/chat/completions",
        "/v1/models/",
    ):
        yield Case(f"path {raw}", "POST" if "models" not in raw else "GET", raw, 404, None, HELLO)


ADMIN_IDS = [
    "__proto__",
    "constructor",
    "toString",
    "valueOf",
    "hasOwnProperty",
    "%5F%5Fproto%5F%5F",
    "prototype",
]


def admin_cases() -> Iterator[Case]:
    for key_id in ADMIN_IDS:
        yield Case(
            f"revoke {key_id}",
            "POST",
            f"/admin/keys/{key_id}/revoke",
            404,
            "key_not_found",
            admin=True,
        )
        yield Case(
            f"user {key_id}",
            "GET",
            f"/admin/users/{key_id}/usage",
            404,
            "user_not_found",
            admin=True,
        )
        yield Case(
            f"org {key_id}",
            "GET",
            f"/admin/organizations/{key_id}/usage",
            404,
            "organization_not_found",
            admin=True,
        )
    yield Case(
        "revoke a 300-char id", "POST", f"/admin/keys/{'a' * 300}/revoke", 404, None, admin=True
    )


CASES = [*body_cases(), *method_cases(), *header_cases(), *path_cases(), *admin_cases()]
assert len(CASES) >= 150, len(CASES)


gateway = stack_gateway(STACK)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_a_hostile_request_is_a_clean_4xx(
    gateway: LocalGateway, ledger: WorkerTestHooks, upstream: Emulator, case: Case
):
    charged = ledger.user_row("open", "ok")
    revoked = ledger.kv("revoked:")
    sent = len(upstream.requests())
    headers = list(case.headers or [])
    if case.admin:
        headers.append(("authorization", f"Bearer {gateway.secrets.admin_api_key}"))
    elif case.headers is None:
        headers += list(auth_headers(case.route or CHAT, KEY_ID).items())
    headers.append(("content-type", "application/json"))
    request = httpx.Request(case.method, gateway.worker_url, headers=headers, content=case.content)
    request.url = request.url.copy_with(raw_path=case.path.encode())
    with httpx.Client(timeout=30) as client:
        response = client.send(request)
    assert response.status_code == case.status, response.text[:300]
    assert_error_shape(case.route or CHAT, response)
    shape = ROUTE_KINDS[str((case.route or CHAT)["kind"])]["errors"]
    if case.code is not None and shape == "openai":  # the other shapes carry no code
        assert response.json()["error"]["code"] == case.code, response.text[:300]
    if case.status == 405:
        assert response.headers["allow"]
    assert len(upstream.requests()) == sent, "a refused request went upstream"
    assert ledger.user_row("open", "ok") == charged, "a refused request was charged"
    assert ledger.kv("revoked:") == revoked, "a refused request wrote a revocation"
    assert httpx.get(f"{gateway.worker_url}/health", timeout=10).status_code == 200


# ------------------------------------------------- what only the provider can judge (issue 21)


def forwarded_cases() -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(id, route, body) the gateway takes and the provider refuses: an unknown field or role, a
    sampling parameter out of the provider's range, a dimension, a role an older model refuses."""
    changes: dict[str, list[tuple[str, dict[str, Any]]]] = {
        "chat": [
            ("unknown field", {"wizardry": True}),
            ("unknown role", {"messages": [{"role": "wizard", "content": "hi"}]}),
            ("temperature 5", {"temperature": 5}),
            (
                "tool name with spaces",
                {"tools": [{"type": "function", "function": {"name": "a b"}}]},
            ),
        ],
        "responses": [("unknown field", {"wizardry": True}), ("temperature 5", {"temperature": 5})],
        "messages": [
            ("unknown field", {"wizardry": True}),
            ("temperature 1.5", {"temperature": 1.5}),
            (
                "a system message the model does not take",
                {
                    "messages": [
                        {"role": "user", "content": "hi"},
                        {"role": "system", "content": "x"},
                    ]
                },
            ),
        ],
        "count_tokens": [("unknown field", {"wizardry": True})],
        "embeddings": [
            ("dimensions 0", {"dimensions": 0}),
            ("encoding hex", {"encoding_format": "hex"}),
        ],
    }
    for route in ROUTES:
        if route["provider"] == "workers-ai":
            continue  # Workers AI's own checks: the binding's
        for name, change in changes.get(str(route["kind"]), []):
            _, good = request_for(route, sample_model(route))
            yield f"{route['path']} {name}", route, {**good, **change}


FORWARDED = list(forwarded_cases())


@pytest.mark.parametrize(
    ("route", "body"), [(r, b) for _, r, b in FORWARDED], ids=[i for i, _, _ in FORWARDED]
)
def test_what_only_the_provider_can_judge_goes_there_and_costs_nothing(
    gateway: LocalGateway,
    ledger: WorkerTestHooks,
    upstream: Emulator,
    route: dict[str, Any],
    body: dict[str, Any],
):
    """Once upstream, in the route's shape with the provider's own status, charged nothing."""
    charged = ledger.user_row("open", "ok")["usedMicros"]
    sent = len(upstream.requests())
    path, _ = request_for(route, sample_model(route))
    response = httpx.post(
        f"{gateway.worker_url}{path}", json=body, headers=auth_headers(route, KEY_ID), timeout=30
    )
    assert response.status_code == 400, response.text[:300]
    assert_error_shape(route, response)
    assert len(upstream.requests()) == sent + 1, "the provider was not asked"
    assert upstream.requests()[-1]["status"] == 400
    assert ledger.user_row("open", "ok")["usedMicros"] == charged, "a refusal was charged"
