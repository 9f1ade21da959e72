"""Budget-clamped output (issue 25, decision 0035), end to end in workerd with the real SDKs: a
request whose worst case ($4 and more: 32,000 output tokens at $125 per million) does not fit a
user's $0.50 is sent with the output cap that does fit, stops at it with the provider's own
"length" reason, is charged its real cost, and the ledger never goes above the limit. Below the
org's floor, or in an org that switched clamping off, it is the 429 of before. 200 such requests
at once over four isolates' leases spend the headroom to within one floor's worth, never past it
(tests/fixtures/Pulumi.agents.yaml)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import anthropic
import httpx
import pytest
from google import genai
from google.genai import types as genai_types
from openai import OpenAI

from provision.local.runtime import LocalGateway
from tests.charges import usd_micros as micros
from tests.support import ROOT, Emulator, WorkerTestHooks, key, stack_gateway

gateway = stack_gateway(ROOT / "tests" / "fixtures" / "Pulumi.agents.yaml")

OPUS = "anthropic/claude-opus-4-1"
MINI = "openai/gpt-4o-mini"
IN, OUT = 15, 125  # µUSD per token: the stack's prices ($15 and $125 per million)
LIMIT = 500_000  # every clamped user's monthly limit, µUSD
ASKED = 32_000  # output tokens an agent asks for (Claude Code's default)
LONG = "Refactor the ledger, step by step. emulate:tokens=100000"  # longer than any cap


def claude(gateway: LocalGateway, key_id: str) -> anthropic.Anthropic:
    # an explicit timeout: the SDK refuses a non-streaming 32k-token request on its default one
    return anthropic.Anthropic(
        base_url=gateway.worker_url, api_key=key(key_id), max_retries=0, timeout=60
    )


def used(ledger: WorkerTestHooks, org: str, user: str) -> int:
    return int(ledger.user_row(org, user)["usedMicros"])


def lowered(headers: httpx.Headers) -> int:
    assert headers["x-gateway-output-cap-asked"] == str(ASKED)
    return int(headers["x-gateway-output-cap"])


def test_an_agent_near_its_limit_is_served_with_the_cap_that_fits(
    gateway: LocalGateway, upstream: Emulator, ledger: WorkerTestHooks
):
    raw = claude(gateway, "key_near_main").messages.with_raw_response.create(
        model=OPUS, max_tokens=ASKED, messages=[{"role": "user", "content": LONG}]
    )
    message = raw.parse()
    cap = lowered(raw.headers)
    # what $0.50 affords beside the prompt's worst case: under 4,000 output tokens
    assert 3_800 < cap < LIMIT // OUT
    assert message.stop_reason == "max_tokens", "the provider's own reason for stopping at a cap"
    assert message.usage.output_tokens == cap
    sent = upstream.request_for(raw.headers["x-request-id"])["body"]
    assert sent["max_tokens"] == cap, "the lowered cap is what went upstream"
    cost = micros(raw.headers["x-gateway-cost-usd"])
    assert cost == message.usage.input_tokens * IN + cap * OUT
    assert used(ledger, "agents", "near") == cost <= LIMIT
    # the prompt's worst case was reserved beside the cap: what is left is less than it
    assert LIMIT - cost < OUT + IN * 2 * message.usage.input_tokens + 4 * IN * len(LONG)

    # what is left is below the floor (256 tokens): the 429, the ledger unchanged
    with pytest.raises(anthropic.RateLimitError) as refused:
        claude(gateway, "key_near_main").messages.create(
            model=OPUS, max_tokens=ASKED, messages=[{"role": "user", "content": LONG}]
        )
    text = str(refused.value)
    assert "output cap lowered to 256 tokens" in text and "GET /v1/usage" in text
    assert used(ledger, "agents", "near") == cost


def test_a_stream_without_a_cap_of_its_own_gets_one_set_explicitly(
    gateway: LocalGateway, upstream: Emulator, ledger: WorkerTestHooks
):
    client = OpenAI(
        base_url=f"{gateway.worker_url}/v1", api_key=key("key_chatty_main"), max_retries=0
    )
    raw = client.chat.completions.with_raw_response.create(
        model=MINI,
        messages=[{"role": "user", "content": LONG}],
        stream=True,
        stream_options={"include_usage": True},
    )
    cap = lowered(raw.headers)  # the stack's maxOutputTokens (32,000) is the cap asked
    chunks = list(raw.parse())
    finish = [
        c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason
    ]
    assert finish == ["length"]
    usage = chunks[-1].usage
    assert usage is not None and usage.completion_tokens == cap
    sent = upstream.request_for(raw.headers["x-request-id"])["body"]
    assert sent["max_completion_tokens"] == cap, "set explicitly: the client left it out"
    assert used(ledger, "agents", "chatty") == usage.prompt_tokens * IN + cap * OUT <= LIMIT


def test_a_responses_request_ends_incomplete_at_the_lowered_cap(
    gateway: LocalGateway, ledger: WorkerTestHooks
):
    client = OpenAI(
        base_url=f"{gateway.worker_url}/v1", api_key=key("key_resp_main"), max_retries=0
    )
    raw = client.responses.with_raw_response.create(
        model=MINI, input=LONG, max_output_tokens=ASKED, store=False
    )
    response = raw.parse()
    cap = lowered(raw.headers)
    assert response.status == "incomplete"
    assert response.incomplete_details is not None
    assert response.incomplete_details.reason == "max_output_tokens"
    assert response.usage is not None and response.usage.output_tokens == cap
    assert used(ledger, "agents", "resp") == micros(raw.headers["x-gateway-cost-usd"]) <= LIMIT


def test_a_thinking_budget_that_no_longer_fits_is_lowered_with_the_cap(
    gateway: LocalGateway, upstream: Emulator, ledger: WorkerTestHooks
):
    raw = claude(gateway, "key_thinker_main").messages.with_raw_response.create(
        model=OPUS,
        max_tokens=ASKED,
        thinking={"type": "enabled", "budget_tokens": 20_000},
        messages=[{"role": "user", "content": LONG}],
    )
    cap = lowered(raw.headers)
    sent = upstream.request_for(raw.headers["x-request-id"])["body"]
    assert sent["max_tokens"] == cap
    assert sent["thinking"] == {"type": "enabled", "budget_tokens": cap - 1}
    assert raw.parse().usage.output_tokens <= cap
    assert used(ledger, "agents", "thinker") == micros(raw.headers["x-gateway-cost-usd"]) <= LIMIT


def test_geminis_own_route_lowers_max_output_tokens(
    gateway: LocalGateway, upstream: Emulator, ledger: WorkerTestHooks
):
    """google-genai on Gemini's own API: maxOutputTokens lowered (thinking counts in it, so the
    answer stops at it with Gemini's MAX_TOKENS)."""
    client = genai.Client(
        api_key=key("key_gemini_main"),
        http_options=genai_types.HttpOptions(base_url=gateway.worker_url, api_version="v1beta"),
    )
    answer = client.models.generate_content(
        model="gemini-2.5-flash",
        contents=LONG,
        config=genai_types.GenerateContentConfig(max_output_tokens=ASKED),
    )
    [logged] = [e for e in upstream.requests() if e["path"].endswith(":generateContent")]
    cap = logged["body"]["generationConfig"]["maxOutputTokens"]
    assert 3_800 < cap < LIMIT // OUT
    assert (
        answer.candidates
        and answer.candidates[0].finish_reason == genai_types.FinishReason.MAX_TOKENS
    )
    usage = answer.usage_metadata
    assert usage is not None
    output = (usage.candidates_token_count or 0) + (usage.thoughts_token_count or 0)
    assert output == cap
    assert (
        used(ledger, "agents", "gemini")
        == (usage.prompt_token_count or 0) * IN + cap * OUT
        <= LIMIT
    )


def test_below_the_orgs_floor_it_is_refused_naming_the_floor(gateway: LocalGateway):
    # $0.05 affords fewer than 512 output tokens (the org's floor) at $125 per million
    response = httpx.post(
        f"{gateway.worker_url}/v1/messages",
        headers={"x-api-key": key("key_floor_main"), "anthropic-version": "2023-06-01"},
        json={"model": OPUS, "max_tokens": ASKED, "messages": [{"role": "user", "content": LONG}]},
        timeout=30,
    )
    assert response.status_code == 429
    error = response.json()["error"]
    assert "even with its output cap lowered to 512 tokens" in error["message"]
    # a request whose own cap fits is served as asked: nothing lowered
    fits = httpx.post(
        f"{gateway.worker_url}/v1/messages",
        headers={"x-api-key": key("key_floor_main"), "anthropic-version": "2023-06-01"},
        json={"model": OPUS, "max_tokens": 100, "messages": [{"role": "user", "content": LONG}]},
        timeout=30,
    )
    assert fits.status_code == 200, fits.text
    assert "x-gateway-output-cap" not in fits.headers
    assert fits.json()["usage"]["output_tokens"] == 100


def test_an_org_that_switched_clamping_off_gets_the_429(gateway: LocalGateway):
    with pytest.raises(anthropic.RateLimitError) as refused:
        claude(gateway, "key_strict_main").messages.create(
            model=OPUS, max_tokens=ASKED, messages=[{"role": "user", "content": LONG}]
        )
    assert "lowered" not in str(refused.value)
    assert "this request may cost up to $4.0" in str(refused.value)


async def crowd(gateway: LocalGateway, count: int) -> list[httpx.Response]:
    """`count` agent requests at once, round-robin over four simulated isolates' lease books."""
    isolates = ["i0", "i1", "i2", "i3"]
    async with httpx.AsyncClient(timeout=120, limits=httpx.Limits(max_connections=64)) as client:
        return await asyncio.gather(
            *[
                client.post(
                    f"{gateway.worker_url}/v1/messages",
                    headers={
                        "x-api-key": key("key_crowd_main"),
                        "anthropic-version": "2023-06-01",
                        "x-test-isolate": isolates[i % len(isolates)],
                    },
                    json={
                        "model": OPUS,
                        "max_tokens": ASKED,
                        "messages": [{"role": "user", "content": f"agent {i}: {LONG}"}],
                    },
                )
                for i in range(count)
            ]
        )


def test_two_hundred_at_once_over_several_isolates_never_pass_the_limit(
    gateway: LocalGateway, ledger: WorkerTestHooks
):
    responses = asyncio.run(crowd(gateway, 200))
    statuses = {r.status_code for r in responses}
    assert statuses <= {200, 429}, [r.text for r in responses if r.status_code not in (200, 429)]
    served = [r for r in responses if r.status_code == 200]
    assert served, "the first admitted takes the headroom with a lowered cap"
    for response in served:
        body: dict[str, Any] = response.json()
        assert body["stop_reason"] == "max_tokens"
        assert body["usage"]["output_tokens"] == int(response.headers["x-gateway-output-cap"])
    charged = sum(micros(r.headers["x-gateway-cost-usd"]) for r in served)
    assert used(ledger, "agents", "crowd") == charged <= LIMIT
    # then one at a time until the headroom is below the floor: each served one is clamped to
    # what is left, and the first refusal leaves less than one floor's worth unspent
    for _ in range(20):
        [response] = asyncio.run(crowd(gateway, 1))
        if response.status_code == 429:
            break
        assert response.status_code == 200, response.text
        charged += micros(response.headers["x-gateway-cost-usd"])
    assert response.status_code == 429
    assert "lowered to 256 tokens" in response.json()["error"]["message"]
    usage = ledger.usage("agents")
    assert used(ledger, "agents", "crowd") == charged <= LIMIT
    prompt_worst = json.loads(response.request.content)["messages"][0]["content"]
    floor_worth = 256 * OUT + IN * 4 * len(prompt_worst)  # 256 output tokens and the prompt's bound
    assert LIMIT - charged < floor_worth
    assert usage["openReservations"] == 0, "nothing left held"
