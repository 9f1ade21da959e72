"""Model families offered by pattern (issue 24): `routing.modelPatterns` lets a provider's new
ids work without a stack edit, priced from the catalog compiled into the Worker, refused when
the catalog does not know them. Claude Code's kind of request (a bare, dated Claude id on
/v1/messages) and an OpenAI SDK request for a GPT-5 snapshot are served at the prices
genai-prices gives their ids (header equal to the ledger's delta); an unknown id under a
pattern is a 404 that says why; a key whose allow-list leaves a pattern out is refused it."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import anthropic
import openai
import pytest

from provision.local.runtime import LocalGateway
from provision.stack.catalog import catalog_entry
from tests.charges import cost_of
from tests.charges import usd_micros as micros
from tests.support import ROOT, WorkerTestHooks, eventually, key, stack_gateway

gateway = stack_gateway(ROOT / "tests" / "fixtures" / "Pulumi.patterns.yaml")
ORG = "pat"


def charged(ledger: WorkerTestHooks, user: str, before: dict[str, Any]) -> int:
    after = eventually(
        lambda: (r := ledger.user_row(ORG, user))["requests"] == before["requests"] + 1 and r
    )
    return int(after["usedMicros"] - before["usedMicros"])


def claude(gateway: LocalGateway, key_id: str = "key_pat_main") -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gateway.worker_url, api_key=key(key_id), max_retries=0)


@pytest.mark.parametrize(
    ("requested", "family"),
    [
        ("claude-opus-4-8-20261101", "claude-opus-4-8"),  # a dated snapshot of a family
        ("claude-haiku-4-5", "claude-haiku-4-5"),
    ],
)
def test_an_undeclared_claude_id_is_served_at_the_catalogs_price(
    gateway: LocalGateway, ledger: WorkerTestHooks, requested: str, family: str
):
    entry = catalog_entry(f"anthropic/{requested}")
    assert entry is not None and entry.catalog_id == family and entry.price is not None
    before = ledger.user_row(ORG, "wide")
    raw = claude(gateway).messages.with_raw_response.create(
        model=requested,
        max_tokens=64,
        messages=[
            {"role": "user", "content": f"Hi {dt.datetime.now().isoformat()} emulate:tokens=5"}
        ],
    )
    message = raw.parse()
    assert raw.headers["x-gateway-model"] == f"anthropic/{requested}"
    usage = message.usage
    expected = cost_of(
        gateway,
        f"anthropic/{requested}",
        {
            "prompt": usage.input_tokens,
            "completion": usage.output_tokens,
            "cached": 0,
            "written": 0,
        },
    )
    assert micros(raw.headers["x-gateway-cost-usd"]) == expected > 0
    assert charged(ledger, "wide", before) == expected


def test_a_gpt_5_snapshot_through_the_chat_route(gateway: LocalGateway, ledger: WorkerTestHooks):
    model = "openai/gpt-5-mini-2025-08-07"
    assert catalog_entry(model) is not None
    before = ledger.user_row(ORG, "narrow")
    client = openai.OpenAI(
        base_url=f"{gateway.worker_url}/v1", api_key=key("key_pat_narrow"), max_retries=0
    )
    raw = client.chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "user", "content": "Hello emulate:tokens=4"}]
    )
    usage = raw.parse().usage
    assert usage is not None
    expected = cost_of(
        gateway, model, {"prompt": usage.prompt_tokens, "completion": usage.completion_tokens}
    )
    assert micros(raw.headers["x-gateway-cost-usd"]) == expected
    assert charged(ledger, "narrow", before) == expected


def test_an_id_the_catalog_does_not_know_is_refused_saying_why(gateway: LocalGateway):
    with pytest.raises(anthropic.NotFoundError) as raised:
        claude(gateway).messages.create(
            model="claude-nonexistent-9", max_tokens=16, messages=[{"role": "user", "content": "x"}]
        )
    assert "anthropic/claude-*" in raised.value.message
    assert "price catalog" in raised.value.message


def test_a_pattern_outside_the_keys_allow_list_is_refused(gateway: LocalGateway):
    with pytest.raises(anthropic.PermissionDeniedError):
        claude(gateway, "key_pat_narrow").messages.create(
            model="claude-haiku-4-5", max_tokens=16, messages=[{"role": "user", "content": "x"}]
        )
    # the declared model stays usable
    claude(gateway, "key_pat_narrow").messages.create(
        model="claude-sonnet-4-5", max_tokens=16, messages=[{"role": "user", "content": "x"}]
    )


def test_a_large_prompts_worst_case_stops_at_the_models_context_window(
    gateway: LocalGateway, ledger: WorkerTestHooks
):
    """A ~400 KB prompt to gpt-4o-mini: the body alone bounds it at ~400,000 input tokens
    ($0.06 at $0.15 per million, more than this user's $0.05), but the model takes at most
    128,000 (the catalog's window), so the worst case admitted is that, and the request is served
    and charged its real usage."""
    text = "lorem ipsum dolor sit amet " * 15_000  # ~400 KB, ~100,000 tokens
    body_bound_usd = Decimal(len(text)) * Decimal("0.15") / 1_000_000
    assert body_bound_usd > Decimal("0.05"), "without the window the worst case would not fit"
    before = ledger.user_row(ORG, "tight")
    client = openai.OpenAI(
        base_url=f"{gateway.worker_url}/v1", api_key=key("key_pat_tight"), max_retries=0
    )
    raw = client.chat.completions.with_raw_response.create(
        model="openai/gpt-4o-mini",
        messages=[{"role": "user", "content": text + " emulate:tokens=3"}],
        max_tokens=16,
    )
    usage = raw.parse().usage
    assert usage is not None and usage.prompt_tokens < 128_000
    expected = cost_of(
        gateway,
        "openai/gpt-4o-mini",
        {"prompt": usage.prompt_tokens, "completion": usage.completion_tokens},
    )
    assert micros(raw.headers["x-gateway-cost-usd"]) == expected
    assert charged(ledger, "tight", before) == expected
