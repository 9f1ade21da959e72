"""Priced or refused: spend a provider bills beyond tokens (issue 22). Anthropic's web search
server tool and the Responses API's web search were forwarded and charged as plain tokens, and a
`priority` request at the standard price: a user with a $10 limit could run up provider charges
the ledger never saw. Now each call of a billed tool is charged its price, a tier its multiple of
the token prices, the worst case counts both, and what the stack has no price for is refused
before anything goes upstream (unless the org allows it: then its tokens are charged).

The stack (fixtures/Pulumi.priced.yaml) declares web search at $0.0125 a call and priority at
1.75x, so the charges below are the stack's own prices, not the defaults."""

from __future__ import annotations

import math
import time
from decimal import Decimal
from typing import Any

import anthropic
import httpx
import pytest

from provision.local.runtime import LocalGateway
from tests.charges import answer_usage, cost_of
from tests.support import (
    ROOT,
    Emulator,
    WorkerTestHooks,
    eventually,
    key,
    openai_client,
    stack_gateway,
)

gateway = stack_gateway(ROOT / "tests" / "fixtures" / "Pulumi.priced.yaml")

SEARCH_MICROS = 12_500
SONNET = "anthropic/claude-sonnet-4-6"
MINI = "openai/gpt-4o-mini"
ASK = "What happened in the news today? emulate:search=2 emulate:tokens=6"


def micros(usd: str) -> int:
    return int(Decimal(usd) * 1_000_000)


def spend(ledger: WorkerTestHooks, org: str, user: str) -> dict[str, Any]:
    return ledger.user_row(org, user)


def settled(ledger: WorkerTestHooks, org: str, user: str, before: dict[str, Any]) -> dict[str, int]:
    """What the ledger recorded for the one request made since `before` (µUSD, tool µUSD,
    tier µUSD)."""
    after = eventually(
        lambda: (r := spend(ledger, org, user))["requests"] == before["requests"] + 1 and r
    )
    return {
        name: int(after.get(name, 0) - before.get(name, 0))
        for name in ("usedMicros", "toolMicros", "tierMicros")
    }


def upstream_answer(upstream: Emulator, request_id: str) -> tuple[dict[str, Any], str, bool]:
    """The emulator's log entry of the one call a request made, and its answer as sent."""
    entry = eventually(
        lambda: (e := upstream.request_for(request_id))["delivery"] != "pending" and e
    )
    answer = upstream.answer(entry["logId"])
    stream = "chunks" in answer
    text = "".join(c["data"] for c in answer["chunks"]) if stream else answer["body"]
    return entry, text, stream


def claude(gateway: LocalGateway, who: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(
        base_url=gateway.worker_url, api_key=key(f"key_{who}_main"), max_retries=0, timeout=30
    )


def headers_of(who: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key(f'key_{who}_main')}"}


# ---------------------------------------------------------------- tool calls at their price


@pytest.mark.parametrize("stream", [False, True], ids=["answer", "stream"])
def test_an_anthropic_web_search_is_charged_its_declared_price(
    gateway: LocalGateway, upstream: Emulator, ledger: WorkerTestHooks, stream: bool
):
    """Two searches (usage.server_tool_use.web_search_requests = 2) cost the answer's tokens,
    what the searches read included, plus 2 x $0.0125; the answer's header says so, and the
    ledger records exactly that, the tool part apart."""
    before = spend(ledger, "strict", "pia")
    tools: Any = [{"type": "web_search_20250305", "name": "web_search", "max_uses": 3}]
    ask: Any = [{"role": "user", "content": ASK}]
    client = claude(gateway, "pia")
    if stream:
        with client.messages.stream(
            model="claude-sonnet-4-6", max_tokens=200, messages=ask, tools=tools
        ) as events:
            message = events.get_final_message()
            request_id = events.response.headers["x-request-id"]
        header = None
    else:
        raw = client.messages.with_raw_response.create(
            model="claude-sonnet-4-6", max_tokens=200, messages=ask, tools=tools
        )
        message, request_id = raw.parse(), raw.headers["x-request-id"]
        header = raw.headers
    kinds = [block.type for block in message.content]
    assert kinds == ["server_tool_use", "web_search_tool_result"] * 2 + ["text"], kinds
    assert message.usage.server_tool_use is not None
    assert message.usage.server_tool_use.web_search_requests == 2

    _, text, streamed = upstream_answer(upstream, request_id)
    assert streamed == stream
    tokens = cost_of(gateway, SONNET, answer_usage("messages", text, stream=stream))
    expected = tokens + 2 * SEARCH_MICROS
    assert settled(ledger, "strict", "pia", before) == {
        "usedMicros": expected,
        "toolMicros": 2 * SEARCH_MICROS,
        "tierMicros": 0,
    }
    if header is not None:
        assert micros(header["x-gateway-cost-usd"]) == expected
        assert header["x-gateway-cost-breakdown"] == (
            f"tokens={tokens / 1e6:.6f}; tools=0.025000; tier=0.000000"
        )


@pytest.mark.parametrize("stream", [False, True], ids=["answer", "stream"])
def test_a_responses_web_search_is_charged_its_declared_price(
    gateway: LocalGateway, upstream: Emulator, ledger: WorkerTestHooks, stream: bool
):
    """Two web_search_call items in the output cost 2 x $0.0125 beside the tokens."""
    before = spend(ledger, "strict", "pia")
    client = openai_client(gateway.openai_base_url, "key_pia_main")
    if stream:
        with client.responses.stream(
            model="gpt-4o-mini", input=ASK, tools=[{"type": "web_search"}]
        ) as events:
            response = events.get_final_response()
        request_id = None
        header = None
    else:
        raw = client.responses.with_raw_response.create(
            model="gpt-4o-mini", input=ASK, tools=[{"type": "web_search"}]
        )
        response, header = raw.parse(), raw.headers
        request_id = header["x-request-id"]
    calls = [item for item in response.output if item.type == "web_search_call"]
    assert len(calls) == 2
    if request_id is None:
        (entry,) = [e for e in upstream.requests() if e["path"].endswith("/openai/responses")][-1:]
        request_id = entry["metadata"]["requestId"]
    _, text, _ = upstream_answer(upstream, request_id)
    tokens = cost_of(gateway, MINI, answer_usage("responses", text, stream=stream))
    assert settled(ledger, "strict", "pia", before) == {
        "usedMicros": tokens + 2 * SEARCH_MICROS,
        "toolMicros": 2 * SEARCH_MICROS,
        "tierMicros": 0,
    }
    if header is not None:
        assert micros(header["x-gateway-cost-usd"]) == tokens + 2 * SEARCH_MICROS


# ---------------------------------------------------------------- tiers at their multiple


@pytest.mark.parametrize(
    ("route", "tier", "multiple"),
    [
        ("chat", "priority", Decimal("1.75")),
        ("responses", "priority", Decimal("1.75")),
        ("chat", "flex", Decimal("0.5")),
    ],
)
def test_a_service_tier_is_charged_its_multiple(
    gateway: LocalGateway,
    upstream: Emulator,
    ledger: WorkerTestHooks,
    route: str,
    tier: str,
    multiple: Decimal,
):
    """The answer says which tier served it; its tokens cost the tier's multiple of the model's
    prices (the difference rounded up for the client), header equal to the ledger's delta."""
    before = spend(ledger, "strict", "pia")
    if route == "chat":
        body: dict[str, Any] = {
            "model": MINI,
            "messages": [{"role": "user", "content": "Quick! emulate:tokens=9"}],
            "service_tier": tier,
        }
        path = "/chat/completions"
    else:
        body = {"model": "gpt-4o-mini", "input": "Quick! emulate:tokens=9", "service_tier": tier}
        path = "/responses"
    response = httpx.post(
        f"{gateway.openai_base_url}{path}", json=body, headers=headers_of("pia"), timeout=30
    )
    assert response.status_code == 200, response.text
    assert response.json()["service_tier"] == tier
    kind = "chat" if route == "chat" else "responses"
    tokens = cost_of(gateway, MINI, answer_usage(kind, response.text, stream=False))
    difference = tokens * (multiple - 1)
    extra = math.ceil(difference) if difference >= 0 else -math.floor(-difference)
    got = settled(ledger, "strict", "pia", before)
    assert got == {"usedMicros": tokens + extra, "toolMicros": 0, "tierMicros": extra}
    assert micros(response.headers["x-gateway-cost-usd"]) == tokens + extra
    assert response.headers["x-gateway-cost-breakdown"].endswith(f"tier={extra / 1e6:.6f}")


# ---------------------------------------------------------------- no price: refused


def _anthropic_tool(tool: dict[str, Any]) -> dict[str, Any]:
    return {
        "model": "claude-sonnet-4-6",
        "max_tokens": 100,
        "messages": [{"role": "user", "content": "Compute it"}],
        "tools": [tool],
    }


UNPRICED = {
    "anthropic code execution": (
        "/v1/messages",
        _anthropic_tool({"type": "code_execution_20250825", "name": "code_execution"}),
        "tools[0]",
    ),
    "responses image generation": (
        "/openai/responses",
        {"model": "gpt-4o-mini", "input": "Draw it", "tools": [{"type": "image_generation"}]},
        "tools[0]",
    ),
    "a tool kind nobody knows yet": (
        "/openai/responses",
        {"model": "gpt-4o-mini", "input": "Go", "tools": [{"type": "quantum_annealer_2027"}]},
        "tools[0]",
    ),
    "the scale tier": (
        "/openai/chat/completions",
        {
            "model": "gpt-4o-mini",
            "messages": [{"role": "user", "content": "Hi"}],
            "service_tier": "scale",
        },
        "service_tier",
    ),
    "a background run": (
        "/openai/responses",
        {"model": "gpt-4o-mini", "input": "Take your time", "background": True},
        "background",
    ),
}


@pytest.mark.parametrize(("path", "body", "param"), UNPRICED.values(), ids=UNPRICED.keys())
def test_what_has_no_price_is_refused_and_never_forwarded(
    gateway: LocalGateway,
    upstream: Emulator,
    ledger: WorkerTestHooks,
    path: str,
    body: dict[str, Any],
    param: str,
):
    """A 400 in the route's own error shape naming the field, before anything is admitted:
    nothing goes upstream and nothing is recorded."""
    before = spend(ledger, "strict", "pia")
    sent = len(upstream.requests())
    response = httpx.post(
        f"{gateway.worker_url}{path}", json=body, headers=headers_of("pia"), timeout=30
    )
    assert response.status_code == 400, response.text
    if path.endswith("/messages"):
        error = response.json()
        assert error["type"] == "error"
        assert error["error"]["type"] == "invalid_request_error"
        assert "no price" in error["error"]["message"]
    else:
        error = response.json()["error"]
        assert (error["code"], error["param"]) == ("unpriced_feature", param)
        assert error["type"] == "invalid_request_error"
    assert len(upstream.requests()) == sent, "an unpriced request went upstream"
    assert spend(ledger, "strict", "pia") == before


def test_an_org_that_allows_the_unpriced_is_charged_its_tokens(
    gateway: LocalGateway, upstream: Emulator, ledger: WorkerTestHooks
):
    """lou's org allows unpriced features: the scale tier is forwarded, and its tokens are
    charged at the model's prices (no multiple is declared for it)."""
    before = spend(ledger, "lenient", "lou")
    body = {"model": "gpt-4o-mini", "input": "Hi emulate:tokens=4", "service_tier": "scale"}
    response = httpx.post(
        f"{gateway.openai_base_url}/responses", json=body, headers=headers_of("lou"), timeout=30
    )
    assert response.status_code == 200, response.text
    assert response.json()["service_tier"] == "scale"
    tokens = cost_of(gateway, MINI, answer_usage("responses", response.text, stream=False))
    assert settled(ledger, "lenient", "lou", before) == {
        "usedMicros": tokens,
        "toolMicros": 0,
        "tierMicros": 0,
    }


# ---------------------------------------------------------------- cache writes by duration, long context


def _sonnet_ask(system_text: str, ttl: str | None) -> dict[str, Any]:
    control: dict[str, Any] = {"type": "ephemeral", **({"ttl": ttl} if ttl else {})}
    return {
        "model": "claude-sonnet-4-6",
        "max_tokens": 100,
        "system": [{"type": "text", "text": system_text, "cache_control": control}],
        "messages": [{"role": "user", "content": "Summarise. emulate:tokens=5"}],
    }


def test_a_one_hour_cache_write_is_charged_its_own_price(
    gateway: LocalGateway, upstream: Emulator, ledger: WorkerTestHooks
):
    """A system block cached for an hour: its write is priced at cacheWrite1hInputPerMTok ($6,
    not the 5-minute $3.75), header equal to the ledger's delta."""
    before = spend(ledger, "strict", "pia")
    body = _sonnet_ask(f"Policy manual {time.time_ns()} " + "clause " * 400, "1h")
    response = httpx.post(
        f"{gateway.worker_url}/v1/messages", json=body, headers=headers_of("pia"), timeout=30
    )
    assert response.status_code == 200, response.text
    usage = answer_usage("messages", response.text, stream=False)
    assert usage["written_1h"] > 0 and usage["written_1h"] == usage["written"]
    expected = cost_of(gateway, SONNET, usage)
    at_five_minutes = cost_of(gateway, SONNET, {**usage, "written_1h": 0})
    assert expected > at_five_minutes
    assert settled(ledger, "strict", "pia", before)["usedMicros"] == expected
    assert micros(response.headers["x-gateway-cost-usd"]) == expected


def test_a_one_hour_cache_write_without_a_price_is_refused(
    gateway: LocalGateway, upstream: Emulator, ledger: WorkerTestHooks
):
    """Haiku has no 1-hour write price in this stack: the request is a 400 naming the block,
    nothing goes upstream; the same request with the 5-minute cache is served."""
    sent = len(upstream.requests())
    body = {**_sonnet_ask("A manual. " * 50, "1h"), "model": "claude-haiku-4-5"}
    response = httpx.post(
        f"{gateway.worker_url}/v1/messages", json=body, headers=headers_of("pia"), timeout=30
    )
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert "1-hour prompt cache write" in error["message"]
    assert "system[0].cache_control" in error["message"]
    assert len(upstream.requests()) == sent
    served = {**_sonnet_ask("A manual. " * 50, None), "model": "claude-haiku-4-5"}
    response = httpx.post(
        f"{gateway.worker_url}/v1/messages", json=served, headers=headers_of("pia"), timeout=30
    )
    assert response.status_code == 200, response.text


def test_a_request_above_the_long_context_line_pays_the_long_prices(
    gateway: LocalGateway, upstream: Emulator, ledger: WorkerTestHooks
):
    """Input above the stack's line (5,000 tokens here) is billed, all of it and the output, at
    the long-context prices; the same model below the line at its standard ones."""
    for words, long in ((200, False), (6000, True)):
        before = spend(ledger, "strict", "pia")
        text = f"Read this {time.time_ns()}: " + "word " * words + " emulate:tokens=7"
        response = claude(gateway, "pia").messages.with_raw_response.create(
            model="claude-sonnet-4-6", max_tokens=50, messages=[{"role": "user", "content": text}]
        )
        message = response.parse()
        usage = {"prompt": message.usage.input_tokens, "completion": message.usage.output_tokens}
        assert (usage["prompt"] > 5000) == long
        standard = math.ceil((usage["prompt"] * 3_000_000 + usage["completion"] * 15_000_000) / 1e6)
        longer = math.ceil((usage["prompt"] * 6_000_000 + usage["completion"] * 22_500_000) / 1e6)
        expected = longer if long else standard
        assert expected == cost_of(gateway, SONNET, usage)
        assert settled(ledger, "strict", "pia", before)["usedMicros"] == expected
        assert micros(response.headers["x-gateway-cost-usd"]) == expected


# ---------------------------------------------------------------- the worst case


def test_the_worst_case_counts_a_tools_bound_and_what_it_may_read(
    gateway: LocalGateway, upstream: Emulator, ledger: WorkerTestHooks
):
    """pat has $0.06 left: five searches may cost $0.0625 on their own, so a request that
    allows five is refused before it goes upstream; one that allows one ($0.0125, and 4,000
    tokens read at most: $0.054 in all, at the long-context prices its bound may reach) is
    served."""
    client = claude(gateway, "pat")
    ask: Any = [{"role": "user", "content": "News? emulate:search=1 emulate:tokens=3"}]
    sent = len(upstream.requests())
    with pytest.raises(anthropic.APIStatusError) as refused:
        client.messages.create(
            model="claude-sonnet-4-6",
            max_tokens=100,
            messages=ask,
            tools=[{"type": "web_search_20250305", "name": "web_search", "max_uses": 5}],
        )
    assert refused.value.status_code == 429, refused.value
    assert len(upstream.requests()) == sent
    message = client.messages.create(
        model="claude-sonnet-4-6",
        max_tokens=100,
        messages=ask,
        tools=[{"type": "web_search_20250305", "name": "web_search", "max_uses": 1}],
    )
    assert message.usage.server_tool_use is not None
    assert message.usage.server_tool_use.web_search_requests == 1


def test_the_usage_report_shows_each_component(gateway: LocalGateway, ledger: WorkerTestHooks):
    """The admin usage report gives the month's tool and tier parts of the money: the org's
    are its users' sums (after a search and a priority request of its own)."""
    for body in (
        {"model": "gpt-4o-mini", "input": ASK, "tools": [{"type": "web_search"}]},
        {"model": "gpt-4o-mini", "input": "Now! emulate:tokens=5", "service_tier": "priority"},
    ):
        response = httpx.post(
            f"{gateway.openai_base_url}/responses", json=body, headers=headers_of("pia"), timeout=30
        )
        assert response.status_code == 200, response.text
    rows = [spend(ledger, "strict", user) for user in ("pia", "pat")]
    response = httpx.get(
        f"{gateway.worker_url}/admin/metrics",
        headers={"authorization": f"Bearer {gateway.secrets.admin_api_key}"},
        params={"org": "strict"},
        timeout=30,
    )
    response.raise_for_status()
    usage = response.json()["usage"]
    assert usage["toolsMicros"] == sum(r.get("toolMicros", 0) for r in rows) > 0
    assert usage["tierMicros"] == sum(r.get("tierMicros", 0) for r in rows) != 0
    assert usage["toolsUsd"] == f"{usage['toolsMicros'] / 1e6:.6f}"
