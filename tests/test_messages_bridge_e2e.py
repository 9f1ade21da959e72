"""Anthropic's clients reach every chat model (issue 24): the Anthropic SDK on /v1/messages asks
OpenAI, Gemini, Azure OpenAI and Bedrock (Nova) models; the gateway translates Anthropic's
request into the model's provider module and its answer and stream back into Anthropic's
message and events. Text, streams through the SDK's stream helper, a tool round trip and
structured output; each answer priced exactly from the provider's usage (header equal to the
ledger's delta); count_tokens answers the gateway's estimate, free."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from typing import Any

import anthropic
import pytest

from provision.local.runtime import LocalGateway
from tests.charges import cost_of
from tests.charges import usd_micros as micros
from tests.support import ROOT, Emulator, WorkerTestHooks, eventually, key, stack_gateway

gateway = stack_gateway(ROOT / "tests" / "fixtures" / "Pulumi.providers.yaml")
ORG = "prov"


@dataclass(frozen=True)
class Target:
    model: str
    user: str


TARGETS = [
    Target("openai/gpt-4o-mini", "po"),
    Target("google-ai-studio/gemini-2.5-pro", "pgm"),
    Target("azure-openai/gpt-4o-mini", "paz"),
    Target("aws-bedrock/amazon.nova-lite-v1:0", "pbr"),
]
IDS = [t.model.split("/")[0] for t in TARGETS]
WEATHER = {
    "name": "get_weather",
    "description": "Current weather of a city",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}


def client(gateway: LocalGateway, target: Target) -> anthropic.Anthropic:
    return anthropic.Anthropic(
        base_url=gateway.worker_url,
        api_key=key(f"key_{target.user}_main"),
        max_retries=0,
        timeout=30,
    )


def cost(gateway: LocalGateway, target: Target, usage: Any) -> int:
    read = usage.cache_read_input_tokens or 0
    written = usage.cache_creation_input_tokens or 0
    return cost_of(
        gateway,
        target.model,
        {
            "prompt": usage.input_tokens + read + written,
            "completion": usage.output_tokens,
            "cached": read,
            "written": written,
        },
    )


def settled(ledger: WorkerTestHooks, target: Target, before: dict[str, Any]) -> int:
    after = eventually(
        lambda: (r := ledger.user_row(ORG, target.user))["requests"] == before["requests"] + 1 and r
    )
    return int(after["usedMicros"] - before["usedMicros"])


def fresh(text: str) -> str:
    return f"{text} {secrets.token_hex(6)}"


@pytest.mark.parametrize("target", TARGETS, ids=IDS)
def test_a_message_from_another_providers_model_is_anthropics_shape_and_priced(
    gateway: LocalGateway, upstream: Emulator, ledger: WorkerTestHooks, target: Target
):
    before = ledger.user_row(ORG, target.user)
    raw = client(gateway, target).messages.with_raw_response.create(
        model=target.model,
        max_tokens=100,
        system="Be brief.",
        messages=[{"role": "user", "content": fresh("Hello emulate:tokens=6")}],
    )
    message = raw.parse()
    assert message.type == "message" and message.role == "assistant"
    assert message.model == target.model and message.id.startswith("msg_")
    (block,) = message.content
    assert block.type == "text" and len(block.text.split()) == 6
    assert message.stop_reason == "end_turn"
    logged = upstream.request_for(raw.headers["x-request-id"])
    assert "/anthropic/" not in logged["path"], "the model's own provider answered"
    header = micros(raw.headers["x-gateway-cost-usd"])
    assert header == cost(gateway, target, message.usage) > 0
    assert settled(ledger, target, before) == header


@pytest.mark.parametrize("target", TARGETS, ids=IDS)
def test_the_sdks_stream_helper_reads_another_providers_stream(
    gateway: LocalGateway, ledger: WorkerTestHooks, target: Target
):
    before = ledger.user_row(ORG, target.user)
    content = fresh("Stream a story emulate:tokens=12")
    with client(gateway, target).messages.stream(
        model=target.model, max_tokens=200, messages=[{"role": "user", "content": content}]
    ) as stream:
        pieces = [event.delta.text for event in stream if event.type == "content_block_delta"]  # type: ignore[union-attr]
        final = stream.get_final_message()
    assert len(pieces) > 1, "the text arrived in pieces"
    assert "".join(pieces) == final.content[0].text  # type: ignore[union-attr]
    assert final.stop_reason == "end_turn" and final.usage.output_tokens >= 12
    assert final.usage.input_tokens > 0, "message_delta carries the input count"
    assert settled(ledger, target, before) == cost(gateway, target, final.usage)


@pytest.mark.parametrize("target", TARGETS, ids=IDS)
def test_a_tool_round_trip_through_anthropics_blocks(gateway: LocalGateway, target: Target):
    sdk = client(gateway, target)
    messages: list[Any] = [{"role": "user", "content": fresh("Weather in Oslo?")}]
    first = sdk.messages.create(
        model=target.model,
        max_tokens=200,
        tools=[WEATHER],
        messages=messages,  # type: ignore[list-item]
    )
    assert first.stop_reason == "tool_use"
    (use,) = [b for b in first.content if b.type == "tool_use"]
    assert use.name == "get_weather" and isinstance(use.input, dict) and "city" in use.input
    messages += [
        {"role": "assistant", "content": first.content},
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": use.id, "content": '{"temp_c": 7}'},
            ],
        },
    ]
    final = sdk.messages.create(
        model=target.model,
        max_tokens=200,
        tools=[WEATHER],
        messages=messages,  # type: ignore[list-item]
    )
    assert final.stop_reason == "end_turn"
    assert final.content and final.content[0].type == "text"


@pytest.mark.parametrize("target", TARGETS, ids=IDS)
def test_a_streamed_tool_use_assembles_its_input(gateway: LocalGateway, target: Target):
    with client(gateway, target).messages.stream(
        model=target.model,
        max_tokens=200,
        tools=[WEATHER],  # type: ignore[list-item]
        tool_choice={"type": "tool", "name": "get_weather"},
        messages=[{"role": "user", "content": fresh("Weather in Lima?")}],
    ) as stream:
        final = stream.get_final_message()
    (use,) = [b for b in final.content if b.type == "tool_use"]
    assert use.input["city"]  # type: ignore[index]


@pytest.mark.parametrize("target", TARGETS, ids=IDS)
def test_structured_output_and_count_tokens(gateway: LocalGateway, target: Target):
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string"}, "sunny": {"type": "boolean"}},
        "required": ["city", "sunny"],
        "additionalProperties": False,
    }
    sdk = client(gateway, target)
    message = sdk.messages.create(
        model=target.model,
        max_tokens=200,
        messages=[{"role": "user", "content": fresh("Forecast for Bergen as JSON")}],
        extra_body={"output_config": {"format": {"type": "json_schema", "schema": schema}}},
    )
    value = json.loads(message.content[0].text)  # type: ignore[union-attr]
    assert set(value) == {"city", "sunny"} and isinstance(value["sunny"], bool)
    counted = sdk.messages.count_tokens(
        model=target.model, messages=[{"role": "user", "content": "How long is this?"}]
    )
    assert counted.input_tokens > 0


def test_what_only_anthropics_models_do_is_refused_by_name(gateway: LocalGateway):
    sdk = client(gateway, TARGETS[0])
    with pytest.raises(anthropic.BadRequestError) as raised:
        sdk.messages.create(
            model=TARGETS[0].model,
            max_tokens=50,
            tools=[{"type": "web_search_20250305", "name": "web_search"}],  # type: ignore[list-item]
            messages=[{"role": "user", "content": "Search"}],
        )
    assert "tools.0" in raised.value.message and "Anthropic" in raised.value.message
