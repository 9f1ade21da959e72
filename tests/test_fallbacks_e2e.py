"""Fallback chains, AI Gateway's own retries, the Workers AI stand-in and cut streams, driven
through the emulator's fault controls with the official SDKs (tests/fixtures/Pulumi.fallbacks.yaml).

Expected costs come from the stack's prices written out here, never from the code under test."""

from __future__ import annotations

import math
import secrets
from decimal import Decimal
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
    admin_metrics,
    error_of,
    eventually,
    key,
    openai_client,
    stack_gateway,
)

STACK = ROOT / "tests" / "fixtures" / "Pulumi.fallbacks.yaml"
MINI, GPT4O = "openai/gpt-4o-mini", "openai/gpt-4o"
CLAUDE, LLAMA = "anthropic/claude-sonnet-4-6", "workers-ai/@cf/meta/llama-3.1-8b-instruct"
PRICES = {  # µUSD per million tokens (input, output), as the stack declares them
    MINI: (150_000, 600_000),
    GPT4O: (2_500_000, 10_000_000),
    CLAUDE: (3_000_000, 15_000_000),
    LLAMA: (280_000, 830_000),
}
GATEWAY_PATH = "/v1/"  # AI Gateway's HTTP paths; Workers AI binding calls come as /run


def cost(model: str, prompt: int, completion: int) -> int:
    price_in, price_out = PRICES[model]
    return math.ceil((prompt * price_in + completion * price_out) / 1_000_000)


def micros(usd: str) -> int:
    return int(Decimal(usd) * 1_000_000)


gateway = stack_gateway(STACK)


def prompt() -> list[dict[str, str]]:
    """A prompt no other request sent (the org caches identical requests)."""
    return [{"role": "user", "content": f"fallback {secrets.token_hex(6)} emulate:tokens=9"}]


def sent_for(upstream: Emulator, request_id: str) -> list[dict[str, Any]]:
    """What went upstream for one client request, in order (every attempt carries its id)."""
    return upstream.requests(requestId=request_id)


def settled(ledger: WorkerTestHooks, org: str, user: str, before: dict[str, Any], requests: int):
    """The user's ledger row once `requests` more requests have settled."""
    return eventually(
        lambda: (
            (row := ledger.user_row(org, user))["requests"] >= before["requests"] + requests and row
        )
    )


# ------------------------------------------------------------------ fallback on failure


FAILURES = {  # a fault → the status AI Gateway answers with
    "500": ({"status": 500}, 500),
    "503": ({"status": 503}, 503),
    "429": ({"status": 429}, 429),
    # AI Gateway's "Failed to get response from provider", answered as a 400 (sic)
    "aig-2005": ({"gatewayError": 2005}, 400),
}


@pytest.mark.parametrize("failure", list(FAILURES))
def test_a_failing_primary_falls_back_and_is_charged_once_at_the_fallbacks_price(
    gateway: LocalGateway, ledger: WorkerTestHooks, upstream: Emulator, failure: str
):
    """gpt-4o-mini fails (5xx, 429, AI Gateway's provider-down code) → gpt-4o (its chain's
    next) answers; the client sees gpt-4o's answer, the headers name it and the count of
    attempts, and the ledger holds one request at gpt-4o's price."""
    fault, status = FAILURES[failure]
    upstream.fault(match={"model": MINI, "metadata": {"userId": "alice"}}, **fault)
    before = ledger.user_row("beta", "alice")
    client = openai_client(gateway.openai_base_url, "key_alice_main")
    raw = client.chat.completions.with_raw_response.create(model="fast", messages=prompt())
    completion = raw.parse()
    assert raw.headers["x-gateway-model"] == GPT4O
    assert raw.headers["x-gateway-attempts"] == "2"
    assert "x-gateway-fallback" not in raw.headers
    assert completion.model == "gpt-4o"
    charged = cost(GPT4O, completion.usage.prompt_tokens, completion.usage.completion_tokens)
    assert micros(raw.headers["x-gateway-cost-usd"]) == charged
    sent = sent_for(upstream, raw.headers["x-request-id"])
    assert [(e["model"], e["status"]) for e in sent] == [("gpt-4o-mini", status), ("gpt-4o", 200)]
    row = settled(ledger, "beta", "alice", before, 1)
    assert row["requests"] == before["requests"] + 1, "the failed attempt was counted"
    assert row["usedMicros"] == before["usedMicros"] + charged
    assert row["fallbacks"] == before["fallbacks"] + 1


def test_a_failing_primary_falls_back_for_a_stream(
    gateway: LocalGateway, ledger: WorkerTestHooks, upstream: Emulator
):
    """The same for a stream: nothing had been streamed yet, so gpt-4o streams the answer."""
    upstream.fault(match={"model": MINI, "metadata": {"userId": "alice"}}, status=502)
    before = ledger.user_row("beta", "alice")
    client = openai_client(gateway.openai_base_url, "key_alice_main")
    with client.chat.completions.with_streaming_response.create(
        model=MINI, messages=prompt(), stream=True, stream_options={"include_usage": True}
    ) as response:
        assert response.headers["x-gateway-model"] == GPT4O
        assert response.headers["x-gateway-attempts"] == "2"
        request_id = response.headers["x-request-id"]
        chunks = list(response.parse())
    (usage,) = [c.usage for c in chunks if c.usage]
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices).count(" ") == 8
    assert {c.model for c in chunks} == {"gpt-4o"}
    row = settled(ledger, "beta", "alice", before, 1)
    assert row["usedMicros"] == before["usedMicros"] + cost(
        GPT4O, usage.prompt_tokens, usage.completion_tokens
    )
    assert [e["status"] for e in sent_for(upstream, request_id)] == [502, 200]


def test_a_timed_out_primary_falls_back(
    gateway: LocalGateway, ledger: WorkerTestHooks, upstream: Emulator
):
    """No first byte within upstreamTimeoutMs (1.5 s) → the next model answers."""
    upstream.fault(match={"model": MINI, "metadata": {"userId": "alice"}}, delayMs=4000)
    client = openai_client(gateway.openai_base_url, "key_alice_main")
    raw = client.chat.completions.with_raw_response.create(model=MINI, messages=prompt())
    assert raw.headers["x-gateway-model"] == GPT4O
    assert raw.headers["x-gateway-attempts"] == "2"
    assert raw.parse().choices[0].message.content


def test_ai_gateways_request_timeout_is_a_504_upstream_timeout(
    gateway: LocalGateway, upstream: Emulator
):
    """gpt-4o's cf-aig-request-timeout is 1 s: a provider slower than that is AI Gateway's
    timeout error, which the client sees as 504 upstream_timeout (gpt-4o has no chain)."""
    upstream.fault(match={"model": GPT4O, "metadata": {"userId": "alice"}}, delayMs=1200, times=-1)
    client = openai_client(gateway.openai_base_url, "key_alice_main")
    with pytest.raises(openai.APIStatusError) as raised:
        client.chat.completions.create(model=GPT4O, messages=prompt())
    assert (raised.value.status_code, raised.value.code) == (504, "upstream_timeout")


def test_every_model_failing_is_one_502_naming_the_attempts(
    gateway: LocalGateway, ledger: WorkerTestHooks, upstream: Emulator
):
    """gpt-4o-mini, gpt-4o and claude all fail: one 502 all_models_failed that names each
    attempt; nothing charged, nothing counted."""
    upstream.fault(match={"metadata": {"userId": "alice"}}, status=500, times=-1)
    before = ledger.user_row("beta", "alice")
    response = httpx.post(
        f"{gateway.openai_base_url}/chat/completions",
        json={"model": MINI, "messages": prompt()},
        headers={"authorization": f"Bearer {key('key_alice_main')}"},
        timeout=30,
    )
    assert response.status_code == 502
    error = error_of(response)
    assert error["code"] == "all_models_failed"
    assert response.headers["x-gateway-attempts"] == "3"
    for model in (MINI, GPT4O, CLAUDE):
        assert f"{model}:" in error["message"]
    assert "x-gateway-cost-usd" not in response.headers
    models = [e["model"] for e in sent_for(upstream, response.headers["x-request-id"])]
    # gpt-4o's own AI Gateway retries (maxAttempts 3) happen inside one gateway request
    assert models == ["gpt-4o-mini", "gpt-4o", "claude-sonnet-4-6"]
    upstream.clear_faults()
    # a request settles after its answer: wait for this one's before comparing
    after = eventually(
        lambda: ledger.usage("beta")["openReservations"] == 0 and ledger.user_row("beta", "alice")
    )
    assert after == before, "a request no model answered was charged"


def test_a_client_error_is_not_retried(
    gateway: LocalGateway, ledger: WorkerTestHooks, upstream: Emulator
):
    """A 400 caused by the request goes back as is: no other model is tried."""
    upstream.fault(match={"model": MINI, "metadata": {"userId": "alice"}}, status=400)
    client = openai_client(gateway.openai_base_url, "key_alice_main")
    with pytest.raises(openai.BadRequestError) as raised:
        client.chat.completions.create(model=MINI, messages=prompt())
    request_id = raised.value.response.headers["x-request-id"]
    assert [e["model"] for e in sent_for(upstream, request_id)] == ["gpt-4o-mini"]
    assert "x-gateway-attempts" not in raised.value.response.headers


def test_fallbacks_stay_inside_the_allow_list(
    gateway: LocalGateway, ledger: WorkerTestHooks, upstream: Emulator
):
    """`narrow` may use gpt-4o-mini only: its chain (gpt-4o, claude) and the Workers AI
    stand-in are skipped, and the provider's own error reaches the client."""
    upstream.fault(match={"metadata": {"userId": "narrow"}}, status=503, times=-1)
    client = openai_client(gateway.openai_base_url, "key_narrow_main")
    with pytest.raises(openai.APIStatusError) as raised:
        client.chat.completions.create(model=MINI, messages=prompt())
    assert raised.value.status_code == 502
    assert raised.value.code != "all_models_failed"
    request_id = raised.value.response.headers["x-request-id"]
    assert [e["model"] for e in sent_for(upstream, request_id)] == ["gpt-4o-mini"]


def test_an_org_chain_comes_before_the_stacks(
    gateway: LocalGateway, ledger: WorkerTestHooks, upstream: Emulator
):
    """`claude-sonnet` falls back to gpt-4o in the stack, to gpt-4o-mini in org acme."""
    for user, key_id, expected in (
        ("alice", "key_alice_main", GPT4O),
        ("plain", "key_plain_main", MINI),
    ):
        upstream.fault(match={"model": CLAUDE, "metadata": {"userId": user}}, status=529)
        client = openai_client(gateway.openai_base_url, key_id)
        raw = client.chat.completions.with_raw_response.create(
            model="claude-sonnet", messages=prompt()
        )
        assert (raw.headers["x-gateway-model"], raw.headers["x-gateway-attempts"]) == (
            expected,
            "2",
        )


def test_ai_gateway_retries_are_set_per_model(gateway: LocalGateway, upstream: Emulator):
    """routing.retries sends AI Gateway's retry headers for gpt-4o only; a 5xx that AI Gateway
    retries away is one answer from the Worker's point of view (one attempt)."""
    upstream.fault(match={"model": GPT4O, "metadata": {"userId": "alice"}}, status=500, times=2)
    client = openai_client(gateway.openai_base_url, "key_alice_main")
    raw = client.chat.completions.with_raw_response.create(model=GPT4O, messages=prompt())
    assert (raw.headers["x-gateway-model"], raw.headers["x-gateway-attempts"]) == (GPT4O, "1")
    (sent,) = sent_for(upstream, raw.headers["x-request-id"])
    headers = sent["headers"]
    assert headers["cf-aig-max-attempts"] == "3"
    assert headers["cf-aig-retry-delay"] == "50"
    assert headers["cf-aig-backoff"] == "constant"
    assert headers["cf-aig-request-timeout"] == "1000"
    raw = client.chat.completions.with_raw_response.create(model=MINI, messages=prompt())
    (sent,) = sent_for(upstream, raw.headers["x-request-id"])
    assert not any(name.startswith(("cf-aig-max", "cf-aig-retry")) for name in sent["headers"])


# ------------------------------------------------------------------ Workers AI stand-in


def test_a_fallback_the_budget_refuses_is_the_refusal_not_a_502(
    gateway: LocalGateway, ledger: WorkerTestHooks, upstream: Emulator
):
    """thin ($0.01): gpt-4o-mini's worst case fits, it fails upstream; gpt-4o's does not fit
    even with its output cap lowered to the floor (a 16 KB prompt's own worst case is $0.04 at
    gpt-4o's input price): the client gets 429 insufficient_quota (it may retry once the month
    resets), not a 502 it would retry at once, and nothing is charged."""
    upstream.fault(match={"model": MINI, "metadata": {"userId": "thin"}}, status=500)
    before = ledger.user_row("beta", "thin")
    [message] = prompt()
    long = [{"role": "user", "content": message["content"] + " pad" * 4_000}]
    response = httpx.post(
        f"{gateway.openai_base_url}/chat/completions",
        headers={"authorization": f"Bearer {key('key_thin_main')}"},
        json={"model": MINI, "messages": long, "max_tokens": 1200},
    )
    assert response.status_code == 429, response.text
    error = error_of(response)
    assert error["code"] == "insufficient_quota" and "user 'thin'" in error["message"]
    assert response.headers["x-gateway-attempts"] == "2"
    assert response.headers["x-gateway-limit-scope"] == "user"
    assert len(sent_for(upstream, response.headers["x-request-id"])) == 1  # gpt-4o never sent
    ledger.quiesce()
    assert ledger.user_row("beta", "thin") == before


def test_a_provider_route_is_never_answered_by_a_stand_in_of_another_provider(
    gateway: LocalGateway, upstream: Emulator
):
    """/openai/chat/completions serves OpenAI's models only: with AI Gateway down, gpt-4o-mini's
    Workers AI stand-in does not answer there (it does on /v1/chat/completions)."""
    upstream.fault(
        match={"path": GATEWAY_PATH, "metadata": {"userId": "alice"}},
        times=-1,
        resetConnection=True,
    )
    response = httpx.post(
        f"{gateway.worker_url}/openai/chat/completions",
        headers={"authorization": f"Bearer {key('key_alice_main')}"},
        json={"model": "gpt-4o-mini", "messages": prompt()},
    )
    assert response.status_code == 502, response.text
    assert "x-gateway-fallback" not in response.headers
    assert error_of(response)["code"] in ("all_models_failed", "upstream_unreachable")


@pytest.mark.parametrize(("code", "what"), [(2016, "prompt"), (2017, "response")])
def test_a_guardrail_block_is_a_400_with_no_fallback_and_no_stand_in(
    gateway: LocalGateway, ledger: WorkerTestHooks, upstream: Emulator, code: int, what: str
):
    """AI Gateway's guardrails refusing the content is not an outage: no fallback model and no
    Workers AI stand-in (which would answer outside the gateway's policy) is tried, nothing is
    charged, and the client gets a 400 saying what was blocked."""
    upstream.fault(
        match={"path": GATEWAY_PATH, "metadata": {"userId": "alice"}}, times=-1, gatewayError=code
    )
    before = ledger.user_row("beta", "alice")
    response = httpx.post(
        f"{gateway.openai_base_url}/chat/completions",
        headers={"authorization": f"Bearer {key('key_alice_main')}"},
        json={"model": MINI, "messages": prompt()},
    )
    assert response.status_code == 400, response.text
    error = error_of(response)
    assert error["code"] == "content_blocked" and what in error["message"]
    assert "x-gateway-fallback" not in response.headers
    assert (
        len(sent_for(upstream, response.headers["x-request-id"])) == 1
    )  # one attempt, no fallback
    ledger.quiesce()
    assert ledger.user_row("beta", "alice") == before


@pytest.mark.parametrize(
    "outage", [{"resetConnection": True}, {"gatewayError": 2001}], ids=["unreachable", "2001"]
)
@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_a_workers_ai_stand_in_answers_when_ai_gateway_is_down(
    gateway: LocalGateway,
    ledger: WorkerTestHooks,
    upstream: Emulator,
    outage: dict[str, Any],
    stream: bool,
):
    """Every AI Gateway request of alice fails at the gateway itself; gpt-4o-mini's stand-in
    (llama through the AI binding, no gateway option) answers, metered at llama's price,
    flagged in a header and counted by the admin metrics."""
    upstream.fault(
        match={"path": GATEWAY_PATH, "metadata": {"userId": "alice"}}, times=-1, **outage
    )
    before = ledger.user_row("beta", "alice")
    metrics_before = admin_metrics(gateway)["usage"]["standIns"]
    client = openai_client(gateway.openai_base_url, "key_alice_main")
    if stream:
        with client.chat.completions.with_streaming_response.create(
            model=MINI, messages=prompt(), stream=True, stream_options={"include_usage": True}
        ) as response:
            headers = response.headers
            chunks = list(response.parse())
        (usage,) = [c.usage for c in chunks if c.usage]
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    else:
        raw = client.chat.completions.with_raw_response.create(model=MINI, messages=prompt())
        headers, completion = raw.headers, raw.parse()
        usage, text = completion.usage, completion.choices[0].message.content
    assert text
    assert headers["x-gateway-model"] == LLAMA
    assert headers["x-gateway-fallback"] == "workers-ai-direct"
    assert headers["x-gateway-attempts"] == "4"  # three models through the gateway, then llama
    direct = upstream.requests(requestId=headers["x-request-id"])
    assert [e["status"] != 200 for e in direct] == [True, True, True]  # the gateway attempts
    (run,) = [
        e
        for e in httpx.get(f"{gateway.emulator_url}/__emulator/requests").json()["requests"]
        if e["binding"] is not None and e["gatewayId"] is None
    ][-1:]
    assert run["model"] == "@cf/meta/llama-3.1-8b-instruct" and run["gatewayOptions"] is None
    row = settled(ledger, "beta", "alice", before, 1)
    assert row["usedMicros"] == before["usedMicros"] + cost(
        LLAMA, usage.prompt_tokens, usage.completion_tokens
    )
    assert row["standIns"] == before["standIns"] + 1
    assert admin_metrics(gateway)["usage"]["standIns"] == metrics_before + 1


# ------------------------------------------------------------------ streams cut mid-way


def test_a_chat_stream_cut_mid_way_raises_in_the_openai_sdk(
    gateway: LocalGateway, ledger: WorkerTestHooks, upstream: Emulator
):
    """Bytes reached the client, so no fallback: the stream ends with an error event the SDK
    raises, and the ledger holds at least what was streamed."""
    upstream.fault(match={"model": MINI, "metadata": {"userId": "alice"}}, cutAfterChunks=4)
    before = ledger.user_row("beta", "alice")
    client = openai_client(gateway.openai_base_url, "key_alice_main")
    received: list[str] = []
    with pytest.raises(openai.APIError) as raised:
        for chunk in client.chat.completions.create(model=MINI, messages=prompt(), stream=True):
            received += [c.delta.content or "" for c in chunk.choices]
    assert "upstream_incomplete" in str(raised.value.body) or "incomplete" in raised.value.message
    assert received, "the first chunks were streamed before the cut"
    row = settled(ledger, "beta", "alice", before, 1)
    assert row["usedMicros"] > before["usedMicros"]
    assert row["estimated"] == before["estimated"] + 1
    sent = upstream.requests(userId="alice")
    assert sent[-1]["model"] == "gpt-4o-mini", "a fallback was tried after bytes were streamed"


def test_a_responses_stream_cut_mid_way_raises_in_the_openai_sdk(
    gateway: LocalGateway, upstream: Emulator
):
    upstream.fault(match={"model": MINI, "metadata": {"userId": "alice"}}, cutAfterChunks=5)
    client = openai_client(gateway.openai_base_url, "key_alice_main")
    with pytest.raises(openai.APIError):
        for _ in client.responses.create(model=MINI, input=prompt()[0]["content"], stream=True):
            pass


def test_a_messages_stream_cut_mid_way_raises_in_the_anthropic_sdk(
    gateway: LocalGateway, upstream: Emulator
):
    upstream.fault(match={"model": CLAUDE, "metadata": {"userId": "alice"}}, cutAfterChunks=4)
    client = anthropic.Anthropic(
        base_url=gateway.worker_url, api_key=key("key_alice_main"), max_retries=0
    )
    with pytest.raises(anthropic.APIStatusError):
        with client.messages.stream(
            model="claude-sonnet-4-6", max_tokens=200, messages=prompt()
        ) as stream:
            for _ in stream:
                pass
