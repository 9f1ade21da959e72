"""Tenant cache keys carry the route, the provider's endpoint and the model: on every route, the
same request for two models never shares an AI Gateway cache entry (issue 22). A Workers AI
binding call's inputs name no model, so without the model in the key a run of Llama was answered
from bge's cached embedding, at a cost of 0."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from provision.local.runtime import LocalGateway
from tests.support import ROOT, Emulator, key, stack_gateway

gateway = stack_gateway(ROOT / "tests" / "fixtures" / "Pulumi.cache.yaml")

LLAMA = "@cf/meta/llama-3.1-8b-instruct"
MISTRAL = "@cf/mistral/mistral-7b-instruct-v0.1"
BGE = "@cf/baai/bge-base-en-v1.5"
BGE_SMALL = "@cf/baai/bge-small-en-v1.5"

# (route path, the two models as that route names them, the body's kind)
PAIRS: list[tuple[str, str, str, str]] = [
    ("/v1/chat/completions", "openai/gpt-4o-mini", "openai/gpt-4o", "chat"),
    ("/v1/chat/completions", f"workers-ai/{LLAMA}", f"workers-ai/{MISTRAL}", "chat"),
    ("/openai/chat/completions", "gpt-4o-mini", "gpt-4o", "chat"),
    ("/workers-ai/v1/chat/completions", LLAMA, MISTRAL, "chat"),
    ("/v1/responses", "openai/gpt-4o-mini", "openai/gpt-4o", "responses"),
    ("/openai/responses", "gpt-4o-mini", "gpt-4o", "responses"),
    ("/v1/embeddings", "openai/text-embedding-3-small", "openai/text-embedding-3-large", "embed"),
    ("/v1/embeddings", f"workers-ai/{BGE}", f"workers-ai/{BGE_SMALL}", "embed"),
    ("/openai/embeddings", "text-embedding-3-small", "text-embedding-3-large", "embed"),
    ("/workers-ai/v1/embeddings", BGE, BGE_SMALL, "embed"),
    ("/v1/messages", "claude-sonnet-4-6", "claude-haiku-4-5", "messages"),
    ("/anthropic/v1/messages", "claude-sonnet-4-6", "claude-haiku-4-5", "messages"),
    ("/workers-ai/{model}", BGE, LLAMA, "run"),
    ("/workers-ai/{model}", LLAMA, MISTRAL, "run"),
]


def send(gateway: LocalGateway, path: str, model: str, kind: str, nonce: str) -> httpx.Response:
    text = f"cache me {nonce}"
    body: dict[str, Any] = {
        "chat": {"model": model, "messages": [{"role": "user", "content": text}]},
        # a stored response is never cached (its id is its caller's): this one is not stored
        "responses": {"model": model, "input": text, "store": False},
        "embed": {"model": model, "input": [text]},
        "messages": {
            "model": model,
            "max_tokens": 50,
            "messages": [{"role": "user", "content": text}],
        },
        "run": {"text": [text], "prompt": text},
    }[kind]
    headers = {
        "authorization": f"Bearer {key('key_cache_main')}",
        "anthropic-version": "2023-06-01",
    }
    url = f"{gateway.worker_url}{path.format(model=model)}"
    return httpx.post(url, json=body, headers=headers, timeout=30)


@pytest.mark.parametrize(
    ("path", "first", "second", "kind"),
    PAIRS,
    ids=[f"{p} {a.rsplit('/', 1)[-1]} vs {b.rsplit('/', 1)[-1]}" for p, a, b, _ in PAIRS],
)
def test_two_models_never_share_a_cache_entry(
    gateway: LocalGateway, upstream: Emulator, path: str, first: str, second: str, kind: str
):
    """The same request for model A is cached (a second one is a HIT at no cost); for model B
    it is a MISS answered by B, under a key of its own."""
    nonce = str(time.time_ns())
    miss = send(gateway, path, first, kind, nonce)
    assert miss.status_code == 200, miss.text[:300]
    hit = send(gateway, path, first, kind, nonce)
    assert (miss.headers["cf-aig-cache-status"], hit.headers["cf-aig-cache-status"]) == (
        "MISS",
        "HIT",
    ), "the route does not cache: this test proves nothing"
    other = send(gateway, path, second, kind, nonce)
    assert other.status_code == 200, other.text[:300]
    assert other.headers["cf-aig-cache-status"] == "MISS"
    assert other.headers["x-gateway-model"].endswith(second.split("/", 1)[-1])
    assert other.text != hit.text
    keys = {
        upstream.request_for(r.headers["x-request-id"])["headers"].get("cf-aig-cache-key")
        or upstream.request_for(r.headers["x-request-id"])["gatewayOptions"]["cacheKey"]
        for r in (miss, other)
    }
    assert len(keys) == 2, "both models were cached under one key"
