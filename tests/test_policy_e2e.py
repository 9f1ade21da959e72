"""A key's effective policy, resolved by the Worker from its shard record and the catalog.

Key shards carry only tenant settings (declared allow-lists, the org's default model and
price overrides); the catalog (models, the stack default, prices) is rendered into the script.
These tests prove the Worker's resolution through what a client sees, and that a catalog
change reaches clients with not one KV record rewritten.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from openai import OpenAI

from provision.local.runtime import LocalGateway
from provision.stack.compiler import compile_records
from provision.stack.config import load_stack_file
from provision.stack.keys import demo_key, hash_key
from tests.support import ROOT

CATALOG = [
    "openai/gpt-4o-mini",
    "openai/gpt-4o",
    "anthropic/claude-sonnet-4-5",
    "anthropic/claude-haiku-4-5",
]


def demo(key_id: str) -> dict[str, str]:
    return {"id": key_id, "sha256": hash_key(demo_key(key_id)), "created": "2026-11-01"}


def settings() -> dict[str, Any]:
    document = yaml.safe_load((ROOT / "stacks" / "Pulumi.dev.yaml").read_text(encoding="utf-8"))
    config = document["config"]
    config["llm-gateway:routing"] = {"models": list(CATALOG), "defaultModel": CATALOG[0]}
    config["llm-gateway:pricing"] = {"default": {"inputPerMTok": 2.5, "outputPerMTok": 10}}
    config["llm-gateway:tenants"] = {
        "organizations": [
            {
                "id": "acme",
                "name": "Acme",
                "monthlyBudgetUsd": 100,
                "defaultModel": "openai/gpt-4o",
                "priceOverrides": {"openai/gpt-4o": {"inputPerMTok": 1, "outputPerMTok": 2}},
            },
            {
                "id": "globex",
                "name": "Globex",
                "monthlyBudgetUsd": 100,
                "allowedModels": ["anthropic/claude-haiku-4-5", "openai/gpt-4o"],
            },
        ],
        "users": [
            {"id": "ana", "email": "ana@a.example", "org": "acme", "monthlyLimitUsd": 10,
             "keys": [demo("key_ana")]},
            {"id": "ben", "email": "ben@a.example", "org": "acme", "monthlyLimitUsd": 10,
             "allowedModels": ["anthropic/claude-haiku-4-5", "openai/gpt-4o-mini"],
             "keys": [demo("key_ben")]},
            {"id": "chen", "email": "chen@g.example", "org": "globex", "monthlyLimitUsd": 10,
             "keys": [demo("key_chen")]},
            {"id": "dee", "email": "dee@g.example", "org": "globex", "monthlyLimitUsd": 10,
             "allowedModels": ["openai/gpt-4o-mini"], "keys": [demo("key_dee")]},
        ],
    }  # fmt: skip
    return document


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("policy") / "Pulumi.policy.yaml"
    path.write_text(yaml.safe_dump(settings(), sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def live(stack: Path) -> Iterator[LocalGateway]:
    with LocalGateway(stack) as running:
        yield running


def models_of(live: LocalGateway, key_id: str) -> list[str]:
    with OpenAI(base_url=live.openai_base_url, api_key=demo_key(key_id), max_retries=0) as client:
        return [m.id for m in client.models.list()]


def without_model(live: LocalGateway, key_id: str) -> httpx.Response:
    return httpx.post(
        f"{live.openai_base_url}/chat/completions",
        headers={"authorization": f"Bearer {demo_key(key_id)}"},
        json={"messages": [{"role": "user", "content": "hi"}], "max_tokens": 20},
        timeout=30,
    )


def test_allowed_models_are_catalog_and_org_and_user_in_catalog_order(live: LocalGateway):
    """A key may use the catalog ∩ its org's list ∩ its user's list, listed in catalog order."""
    assert models_of(live, "key_ana") == CATALOG
    assert models_of(live, "key_ben") == ["openai/gpt-4o-mini", "anthropic/claude-haiku-4-5"]
    assert models_of(live, "key_chen") == ["openai/gpt-4o", "anthropic/claude-haiku-4-5"]
    assert models_of(live, "key_dee") == []


def test_default_model_prefers_the_org_then_the_first_allowed(live: LocalGateway):
    """No model in the request: the org's default, else the first model the key may use."""
    assert without_model(live, "key_ana").headers["x-gateway-model"] == "openai/gpt-4o"
    # ben may not use his org's default: his first allowed model
    assert without_model(live, "key_ben").headers["x-gateway-model"] == "openai/gpt-4o-mini"
    # globex has no default and may not use the stack's: its first allowed model
    assert without_model(live, "key_chen").headers["x-gateway-model"] == "openai/gpt-4o"


def test_a_key_with_no_model_allowed_has_no_default(live: LocalGateway):
    """A user whose list shares nothing with the org's gets 400 naming the missing model."""
    response = without_model(live, "key_dee")
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "model"


def test_org_price_override_prices_its_requests(live: LocalGateway):
    """acme's override of openai/gpt-4o (1 / 2 USD per MTok) is what ana is charged."""
    response = without_model(live, "key_ana")
    usage = response.json()["usage"]
    micros = -(-(usage["prompt_tokens"] * 1_000_000 + usage["completion_tokens"] * 2_000_000)
               // 1_000_000)  # fmt: skip
    assert (
        response.headers["x-gateway-cost-usd"] == f"{micros // 1_000_000}.{micros % 1_000_000:06d}"
    )


def test_catalog_change_reaches_clients_without_rewriting_a_record(stack: Path, live: LocalGateway):
    """A new model and a new stack default change what keys see; every KV record is unchanged."""
    original = stack.read_text(encoding="utf-8")
    before = compile_records(load_stack_file(stack))
    document = copy.deepcopy(yaml.safe_load(original))
    routing = document["config"]["llm-gateway:routing"]
    routing["models"].append("openai/gpt-4.1")
    routing["defaultModel"] = "anthropic/claude-haiku-4-5"
    try:
        stack.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
        assert compile_records(load_stack_file(stack)) == before
        live.reload()
        assert models_of(live, "key_ana") == [*CATALOG, "openai/gpt-4.1"]
        # globex may use the new stack default, so chen's default follows it
        assert without_model(live, "key_chen").headers["x-gateway-model"] == (
            "anthropic/claude-haiku-4-5"
        )
    finally:
        stack.write_text(original, encoding="utf-8")
        live.reload()
