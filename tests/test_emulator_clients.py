"""The emulator answers what today's clients send, as the real APIs do: every request of the
recorded corpus (tests/clients/corpus: Claude Code, Codex, the Vercel AI SDK, the Agents SDK,
Pydantic AI, LangChain), sent to its provider's native endpoint with the client's own headers,
is answered 200. An emulator that refused a field a client ships would hide a client that works;
the emulator's refusals of what the real APIs refuse are tested beside each provider."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.emulator_support import (
    ACCOUNT,
    ANTHROPIC_KEY,
    CONFIG,
    GATEWAY,
    OPENAI_KEY,
    TOKEN,
    emulator_fixtures,
)

CORPUS = Path(__file__).resolve().parent / "clients" / "corpus"

emulator_url, http = emulator_fixtures(CONFIG, "emulator")

# The gateway's routes → the provider's native endpoint at AI Gateway, and its credentials.
NATIVE = {
    "/anthropic/v1/messages": ("anthropic/v1/messages", {"x-api-key": ANTHROPIC_KEY}),
    "/v1/messages": ("anthropic/v1/messages", {"x-api-key": ANTHROPIC_KEY}),
    "/v1/chat/completions": ("openai/chat/completions", {"authorization": f"Bearer {OPENAI_KEY}"}),
    "/v1/responses": ("openai/responses", {"authorization": f"Bearer {OPENAI_KEY}"}),
    "/v1/embeddings": ("openai/embeddings", {"authorization": f"Bearer {OPENAI_KEY}"}),
}
# The client's own headers that reach the provider (the rest describe the client or its key).
FORWARDED = ("anthropic-version", "anthropic-beta")


def recorded() -> list[tuple[str, dict[str, Any]]]:
    cases = []
    for path in sorted(CORPUS.glob("*.json")):
        for i, request in enumerate(json.loads(path.read_text())):
            cases.append((f"{path.stem}#{i} {request['path']}", request))
    return cases


CASES = recorded()


def test_the_corpus_is_there():
    assert len(CASES) >= 20, (
        "tests/clients/corpus: run the client suite with RECORD_CLIENT_CORPUS=1"
    )


@pytest.mark.parametrize(("name", "request_"), CASES, ids=[name for name, _ in CASES])
def test_the_provider_answers_what_a_client_sent(
    http: httpx.Client, name: str, request_: dict[str, Any]
):
    endpoint, credentials = NATIVE[request_["path"].split("?")[0]]
    headers = {
        "cf-aig-authorization": f"Bearer {TOKEN}",
        **credentials,
        **{k: v for k, v in request_["headers"].items() if k in FORWARDED},
    }
    response = http.post(
        f"/v1/{ACCOUNT}/{GATEWAY}/{endpoint}", json=request_["body"], headers=headers
    )
    assert response.status_code == 200, f"{name}: {response.text[:500]}"
