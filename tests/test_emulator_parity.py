"""The emulator knows every request field the official SDKs can send.

The SDKs' request types are generated from the providers' API specifications, so a field they
list is one the API takes. The emulator refuses fields it does not know, as the APIs do; this
holds its lists to the pinned SDKs (pyproject.toml), so an SDK upgrade that brings a field fails
here, naming it, instead of as a refused request in some end-to-end test."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from anthropic.types.beta import message_create_params as anthropic_beta
from openai.types import embedding_create_params
from openai.types.chat import completion_create_params
from openai.types.responses import response_create_params

PROVIDERS = Path(__file__).resolve().parent.parent / "worker" / "local" / "emulator" / "providers"


def emulator_set(module: str, name: str) -> set[str]:
    """The string literals of `const NAME = new Set([...])` in an emulator module."""
    source = (PROVIDERS / module).read_text()
    match = re.search(rf"const {name} = new Set\(\[(.*?)\]\)", source, re.S)
    assert match, f"{module} defines no {name}"
    return set(re.findall(r'"([^"]+)"', match.group(1)))


def fields(params: Any) -> set[str]:
    return set(params.__annotations__)


CASES = [
    (
        "openai chat",
        fields(completion_create_params.CompletionCreateParamsBase),
        emulator_set("openai-chat-request.ts", "KNOWN_CHAT_FIELDS"),
    ),
    (
        "openai responses",
        fields(response_create_params.ResponseCreateParamsBase),
        emulator_set("responses-request.ts", "KNOWN_PARAMS"),
    ),
    (
        "openai embeddings",
        fields(embedding_create_params.EmbeddingCreateParams),
        emulator_set("openai.ts", "KNOWN_EMBEDDING_FIELDS"),
    ),
    (
        "anthropic messages",
        fields(anthropic_beta.MessageCreateParamsBase) - {"betas"},  # betas is the header
        emulator_set("anthropic-request.ts", "KNOWN_FIELDS"),
    ),
]


@pytest.mark.parametrize(("name", "sdk", "emulator"), CASES, ids=[c[0] for c in CASES])
def test_the_emulator_takes_every_field_of_the_sdks_request_type(
    name: str, sdk: set[str], emulator: set[str]
):
    assert sdk, f"{name}: the SDK's request type has no fields (moved?)"
    assert sdk <= emulator, f"{name}: the emulator would refuse {sorted(sdk - emulator)}"


def test_the_emulator_knows_every_beta_flag_the_anthropic_sdk_lists():
    from anthropic.types import anthropic_beta_param

    source = Path(anthropic_beta_param.__file__).read_text()
    listed = set(re.findall(r'"([a-z0-9.-]+-\d{4}-\d{2}-\d{2}|[a-z0-9-]+-\d{8})"', source))
    assert listed, "the SDK lists no beta flags (moved?)"
    missing = listed - emulator_set("anthropic-request.ts", "KNOWN_BETAS")
    assert not missing, f"the emulator would refuse the beta flags {sorted(missing)}"
