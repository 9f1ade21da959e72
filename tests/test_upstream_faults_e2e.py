"""Misbehaving upstreams (issue 13), through the emulator's fault controls, in one table per
case kind: every status each provider documents, answers that are not JSON, streams cut after
k events, streams with malformed events, slow first bytes and slow chunks. Each answer has its
documented status in the route's shape, and the ledger holds exactly what the cost headers
say (nothing for a refusal). The e2e stack's user `faulty` sends every request."""

from __future__ import annotations

import json
import math
from decimal import Decimal
from typing import Any

import httpx
import pytest

from provision.local.runtime import LocalGateway
from tests.support import Emulator, WorkerTestHooks, eventually, key

ORG, USER, KEY_ID = "acme", "faulty", "key_faulty_main"
MINI, CLAUDE = "openai/gpt-4o-mini", "anthropic/claude-sonnet-4-5"
CHAT = {"model": "gpt-4o-mini", "max_tokens": 20, "messages": [{"role": "user", "content": "hi"}]}
MESSAGES = {
    "model": "claude-sonnet-4-5",
    "max_tokens": 20,
    "messages": [{"role": "user", "content": "hi"}],
}

# provider status -> (client status, code). OpenAI's chat route: a 4xx the request caused keeps
# its status, our key refused is the gateway's 502, a 5xx is 502. Anthropic's Messages route
# answers Anthropic's clients as Anthropic would (their SDKs retry 429, 500 and 529 by status),
# except our key refused: the gateway's 502.
OPENAI_STATUSES = {
    400: (400, None),
    401: (502, "provider_auth_error"),
    403: (502, "provider_auth_error"),
    404: (404, None),
    409: (409, None),
    422: (422, None),
    429: (429, None),
    500: (502, "upstream_error"),
    502: (502, "upstream_error"),
    503: (502, "upstream_error"),
    504: (502, "upstream_error"),
}
ANTHROPIC_STATUSES = {
    400: (400, None),
    401: (502, None),
    403: (502, None),
    404: (404, None),
    413: (413, None),
    429: (429, None),
    500: (500, None),
    529: (529, None),
    504: (504, None),
}


def post(gateway: LocalGateway, path: str, body: dict[str, Any]) -> httpx.Response:
    headers = {"authorization": f"Bearer {key(KEY_ID)}", "anthropic-version": "2023-06-01"}
    return httpx.post(f"{gateway.worker_url}{path}", json=body, headers=headers, timeout=30)


def charged_by(ledger: WorkerTestHooks, before: dict[str, Any], response: httpx.Response) -> None:
    """The ledger moved by exactly the cost header (nothing, and one request less, if none)."""
    cost = response.headers.get("x-gateway-cost-usd")
    if cost is None:
        ledger.quiesce()
        assert ledger.user_row(ORG, USER) == before, "charged without saying so"
        return
    after = eventually(
        lambda: (r := ledger.user_row(ORG, USER))["requests"] > before["requests"] and r
    )
    assert after["usedMicros"] - before["usedMicros"] == int(Decimal(cost) * 1_000_000)


@pytest.mark.parametrize(("status", "expected"), list(OPENAI_STATUSES.items()))
def test_each_openai_status(
    gateway: LocalGateway, hooks: WorkerTestHooks, emulator: Emulator, status, expected
):
    before = hooks.user_row(ORG, USER)
    emulator.fault(match={"model": MINI, "metadata": {"userId": USER}}, status=status)
    response = post(gateway, "/v1/chat/completions", CHAT)
    assert response.status_code == expected[0], response.text
    error = response.json()["error"]
    if expected[1]:
        assert error["code"] == expected[1]
    assert response.headers["x-request-id"].startswith("req_")
    charged_by(hooks, before, response)


@pytest.mark.parametrize(("status", "expected"), list(ANTHROPIC_STATUSES.items()))
def test_each_anthropic_status(
    gateway: LocalGateway, hooks: WorkerTestHooks, emulator: Emulator, status, expected
):
    before = hooks.user_row(ORG, USER)
    emulator.fault(match={"model": CLAUDE, "metadata": {"userId": USER}}, status=status)
    response = post(gateway, "/v1/messages", MESSAGES)
    assert response.status_code == expected[0], response.text
    body = response.json()
    assert body["type"] == "error" and body["error"]["type"], body
    charged_by(hooks, before, response)


@pytest.mark.parametrize(
    ("path", "body", "model"),
    [("/v1/chat/completions", CHAT, MINI), ("/v1/messages", MESSAGES, CLAUDE)],
    ids=["openai", "anthropic"],
)
@pytest.mark.parametrize("answer", ["not json at all", "<html>502 Bad Gateway</html>", '{"id":'])
def test_a_success_that_is_not_json_is_502_charged_as_said(
    gateway: LocalGateway, hooks: WorkerTestHooks, emulator: Emulator, path, body, model, answer
):
    before = hooks.user_row(ORG, USER)
    emulator.fault(match={"model": model, "metadata": {"userId": USER}}, status=200, body=answer)
    response = post(gateway, path, body)
    assert response.status_code == 502, response.text
    assert "x-gateway-cost-usd" in response.headers
    charged_by(hooks, before, response)


def test_json_without_usage_is_estimated_and_charged_as_said(
    gateway: LocalGateway, hooks: WorkerTestHooks, emulator: Emulator
):
    answer = {
        "id": "chatcmpl-x",
        "object": "chat.completion",
        "created": 0,
        "model": "gpt-4o-mini",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}
        ],
    }
    before = hooks.user_row(ORG, USER)
    emulator.fault(match={"model": MINI, "metadata": {"userId": USER}}, status=200, body=answer)
    response = post(gateway, "/v1/chat/completions", CHAT)
    assert response.status_code == 200
    charged_by(hooks, before, response)
    assert hooks.user_row(ORG, USER)["estimated"] == before["estimated"] + 1


def stream(gateway: LocalGateway, path: str, body: dict[str, Any]) -> tuple[int, list[str]]:
    headers = {"authorization": f"Bearer {key(KEY_ID)}", "anthropic-version": "2023-06-01"}
    lines: list[str] = []
    with httpx.stream(
        "POST",
        f"{gateway.worker_url}{path}",
        json={**body, "stream": True},
        headers=headers,
        timeout=30,
    ) as response:
        status = response.status_code
        try:
            lines.extend(line for line in response.iter_lines() if line)
        except httpx.HTTPError:
            pass
    return status, lines


@pytest.mark.parametrize("k", [0, 1, 3, 8])
@pytest.mark.parametrize(
    ("path", "body", "model"),
    [("/v1/chat/completions", CHAT, MINI), ("/v1/messages", MESSAGES, CLAUDE)],
    ids=["openai", "anthropic"],
)
def test_a_stream_cut_after_k_events_ends_with_an_error_and_is_charged(
    gateway: LocalGateway, hooks: WorkerTestHooks, emulator: Emulator, path, body, model, k
):
    """The client gets the k events, then the route's error event (never a silent end); the
    ledger holds an estimate of at least the prompt, flagged estimated."""
    before = hooks.user_row(ORG, USER)
    emulator.fault(match={"model": model, "metadata": {"userId": USER}}, cutAfterChunks=k)
    status, lines = stream(
        gateway, path, {**body, "messages": [{"role": "user", "content": "cut emulate:tokens=30"}]}
    )
    assert status == 200
    data = [line for line in lines if line.startswith("data:")]
    assert "data: [DONE]" not in data
    last = json.loads(data[-1][5:])
    assert last.get("error") or last.get("type") == "error", lines[-3:]
    after = eventually(
        lambda: (r := hooks.user_row(ORG, USER))["requests"] > before["requests"] and r
    )
    assert after["usedMicros"] > before["usedMicros"]
    assert after["estimated"] == before["estimated"] + 1


def test_a_stream_of_malformed_events_ends_with_an_error_and_is_estimated(
    gateway: LocalGateway, hooks: WorkerTestHooks, emulator: Emulator
):
    garbage = (
        'data: {"id": "x", "choices": [\n\ndata: not json\n\n: comment\n\nevent: odd\ndata: {}\n\n'
    )
    before = hooks.user_row(ORG, USER)
    emulator.fault(
        match={"model": MINI, "metadata": {"userId": USER}},
        status=200,
        body=garbage,
        headers={"content-type": "text/event-stream"},
    )
    status, lines = stream(gateway, "/v1/chat/completions", CHAT)
    assert status == 200
    last = json.loads([line for line in lines if line.startswith("data:")][-1][5:])
    assert last["error"]["code"] == "upstream_incomplete"
    after = eventually(
        lambda: (r := hooks.user_row(ORG, USER))["requests"] > before["requests"] and r
    )
    assert after["estimated"] == before["estimated"] + 1


@pytest.mark.parametrize(
    "fault", [{"delayMs": 400}, {"chunkDelayMs": 60}], ids=["slow-first-byte", "slow-chunks"]
)
@pytest.mark.parametrize("streamed", [False, True], ids=["json", "stream"])
def test_a_slow_upstream_within_the_timeout_is_served_and_charged_exactly(
    gateway: LocalGateway, hooks: WorkerTestHooks, emulator: Emulator, fault, streamed
):
    before = hooks.user_row(ORG, USER)
    emulator.fault(match={"model": MINI, "metadata": {"userId": USER}}, **fault)
    body = {**CHAT, "messages": [{"role": "user", "content": "slow emulate:tokens=6"}]}
    if not streamed:
        response = post(gateway, "/v1/chat/completions", body)
        assert response.status_code == 200
        usage = response.json()["usage"]
        charged_by(hooks, before, response)
        assert usage["completion_tokens"] == 6
        return
    status, lines = stream(
        gateway, "/v1/chat/completions", {**body, "stream_options": {"include_usage": True}}
    )
    assert status == 200 and lines[-1] == "data: [DONE]"
    (usage,) = [json.loads(line[5:])["usage"] for line in lines[:-1] if '"usage":{' in line]
    after = eventually(
        lambda: (r := hooks.user_row(ORG, USER))["requests"] > before["requests"] and r
    )
    expected = math.ceil(
        (usage["prompt_tokens"] * 150_000 + usage["completion_tokens"] * 600_000) / 1_000_000
    )
    assert after["usedMicros"] - before["usedMicros"] == expected
    assert after["estimated"] == before["estimated"]


@pytest.mark.parametrize(
    ("path", "body", "model", "first"),
    [
        ("/v1/chat/completions", CHAT, MINI, 'data: {"id":"c","choices":[]}\n\n'),
        (
            "/v1/chat/completions",
            {**CHAT, "stream_options": {"include_usage": True}},
            MINI,
            'data: {"id":"c","choices":[]}\n\n',
        ),
        ("/v1/messages", MESSAGES, CLAUDE, 'event: ping\ndata: {"type":"ping"}\n\n'),
    ],
    ids=["openai-rewritten", "openai-piped", "anthropic-piped"],
)
def test_an_event_too_large_to_be_a_chunk_ends_with_an_error_and_is_estimated(
    gateway: LocalGateway, hooks: WorkerTestHooks, emulator: Emulator, path, body, model, first
):
    """A single event over 4 MiB is not an answer chunk: the stream ends with the route's
    error event (the SDK raises; never what looks like a complete answer), whether the route
    rewrites events or pipes them, and the request is recorded at an estimate."""
    before = hooks.user_row(ORG, USER)
    huge = "data: " + "x" * (5 * 1024 * 1024) + "\n\n"
    emulator.fault(
        match={"model": model, "metadata": {"userId": USER}},
        status=200,
        body=first + huge,
        headers={"content-type": "text/event-stream"},
    )
    status, lines = stream(gateway, path, body)
    assert status == 200
    last = json.loads([line for line in lines if line.startswith("data:")][-1][5:])
    assert last.get("error") or last.get("type") == "error", lines[-1][:300]
    after = eventually(
        lambda: (r := hooks.user_row(ORG, USER))["requests"] > before["requests"] and r
    )
    assert after["estimated"] == before["estimated"] + 1
