"""The official SDKs against what `make dev` runs (the dev stack, the emulator as AI Gateway):
the Anthropic SDK on both Messages routes (messages, streams, tools, count_tokens), the openai
SDK's Responses and embeddings. The other clients (Claude Code, Codex, the Vercel AI SDK, the
Agents SDK, Pydantic AI, LangChain) are tests/test_client_suite_e2e.py."""

from __future__ import annotations

import base64
import json
import struct
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import pytest
from openai import OpenAI

from provision.local.runtime import LocalGateway
from tests.support import Emulator, WorkerTestHooks, eventually

WEATHER = {
    "name": "get_weather",
    "description": "Current weather for a city",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}


@pytest.fixture(scope="module")
def alice(dev: LocalGateway) -> str:
    return dev.demo_keys()["alice"]


@pytest.fixture(scope="module")
def upstream(dev: LocalGateway) -> Iterator[Emulator]:
    assert dev.emulator_url
    control = Emulator(dev.emulator_url)
    yield control
    control.close()


def claude(
    dev: LocalGateway, plain_key: str, base: str, *, bearer: bool = False
) -> anthropic.Anthropic:
    """The Anthropic SDK as Claude Code configures it: ANTHROPIC_BASE_URL, and the key as
    ANTHROPIC_API_KEY (x-api-key) or ANTHROPIC_AUTH_TOKEN (bearer)."""
    auth: dict[str, Any] = {"auth_token": plain_key} if bearer else {"api_key": plain_key}
    return anthropic.Anthropic(
        base_url=f"{dev.worker_url}{base}", max_retries=0, timeout=30, **auth
    )


# ---------------------------------------------------------------- Anthropic SDK


@pytest.mark.parametrize(
    ("base", "bearer"),
    [("/anthropic", False), ("/anthropic", True), ("", False)],
    ids=["anthropic-x-api-key", "anthropic-bearer", "root"],
)
def test_anthropic_sdk_messages(
    dev: LocalGateway, alice: str, upstream: Emulator, base: str, bearer: bool
):
    client = claude(dev, alice, base, bearer=bearer)
    raw = client.messages.with_raw_response.create(
        model="claude-sonnet-4-6",
        max_tokens=200,
        system="Be brief.",
        messages=[{"role": "user", "content": "Hello emulate:tokens=6"}],
    )
    message = raw.parse()
    assert message.type == "message" and message.role == "assistant"
    assert message.content[0].type == "text" and len(message.content[0].text.split()) == 6
    assert message.stop_reason == "end_turn"
    assert message.usage.output_tokens == 6
    logged = upstream.request_for(raw.headers["x-request-id"])
    assert logged["path"].endswith("/anthropic/v1/messages")
    assert logged["headers"]["x-api-key"] == dev.secrets.provider_api_keys["anthropic"]
    # the client's API version (and betas) go upstream as it sent them
    assert logged["headers"]["anthropic-version"] == raw.http_request.headers["anthropic-version"]
    assert (
        logged["body"]["model"] == "claude-sonnet-4-6" and logged["body"]["system"] == "Be brief."
    )
    assert alice not in json.dumps(logged)


def test_anthropic_sdk_stream_passes_anthropics_events_through(dev: LocalGateway, alice: str):
    client = claude(dev, alice, "/anthropic")
    with client.messages.stream(
        model="claude-sonnet-4-6",
        max_tokens=100,
        messages=[{"role": "user", "content": "Stream emulate:tokens=8"}],
    ) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_message()
    assert kinds[0] == "message_start" and "content_block_delta" in kinds
    assert kinds[-1] == "message_stop"
    assert len(final.content[0].text.split()) == 8
    assert final.usage.output_tokens == 8


def test_anthropic_sdk_tools_round_trip(dev: LocalGateway, alice: str):
    client = claude(dev, alice, "/anthropic")
    messages: list[Any] = [{"role": "user", "content": "Weather in Oslo?"}]
    first = client.messages.create(
        model="claude-sonnet-4-6", max_tokens=300, tools=[WEATHER], messages=messages
    )
    assert first.stop_reason == "tool_use"
    (call,) = [block for block in first.content if block.type == "tool_use"]
    assert call.name == "get_weather" and isinstance(call.input, dict) and "city" in call.input
    messages += [
        {"role": "assistant", "content": [block.model_dump() for block in first.content]},
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "7°C, rain"}],
        },
    ]
    final = client.messages.create(
        model="claude-sonnet-4-6", max_tokens=300, tools=[WEATHER], messages=messages
    )
    assert final.stop_reason == "end_turn" and final.content[0].type == "text"


def test_anthropic_sdk_count_tokens_is_free(dev: LocalGateway, alice: str):
    client = claude(dev, alice, "/anthropic")
    hooks = WorkerTestHooks(dev.worker_url)
    before = hooks.user_row("demo-corp", "alice")
    counted = client.messages.count_tokens(
        model="claude-sonnet-4-6",
        messages=[{"role": "user", "content": "How many tokens is this?"}],
    )
    assert counted.input_tokens > 0
    assert hooks.user_row("demo-corp", "alice")["usedMicros"] == before["usedMicros"]
    hooks.close()


def test_anthropic_sdk_errors_are_anthropic_errors(dev: LocalGateway, alice: str):
    """What the SDK raises: its own exception classes, from Anthropic-shaped bodies."""
    with pytest.raises(anthropic.AuthenticationError):
        claude(dev, "gw_live_" + "x" * 40, "/anthropic").messages.create(
            model="claude-sonnet-4-6", max_tokens=10, messages=[{"role": "user", "content": "hi"}]
        )
    with pytest.raises(anthropic.NotFoundError):
        claude(dev, alice, "/anthropic").messages.create(
            model="claude-opus-9", max_tokens=10, messages=[{"role": "user", "content": "hi"}]
        )
    with pytest.raises(anthropic.BadRequestError) as info:
        claude(dev, alice, "/anthropic").messages.create(
            model="gpt-4o-mini", max_tokens=10, messages=[{"role": "user", "content": "hi"}]
        )
    assert "not served on /anthropic/v1/messages" in str(info.value)


# ---------------------------------------------------------------- openai SDK: Responses, embeddings


def openai_client(dev: LocalGateway, plain_key: str, base: str = "/v1") -> OpenAI:
    return OpenAI(base_url=f"{dev.worker_url}{base}", api_key=plain_key, max_retries=0, timeout=30)


@pytest.mark.parametrize("base", ["/v1", "/openai"])
def test_openai_sdk_responses(dev: LocalGateway, alice: str, base: str):
    client = openai_client(dev, alice, base)
    response = client.responses.create(model="gpt-4o-mini", input="Say hello emulate:tokens=5")
    assert response.object == "response" and response.status == "completed"
    assert len(response.output_text.split()) == 5
    assert response.usage is not None and response.usage.output_tokens == 5


def test_openai_sdk_responses_stream(dev: LocalGateway, alice: str):
    client = openai_client(dev, alice)
    events = list(
        client.responses.create(model="gpt-4o-mini", input="Stream emulate:tokens=7", stream=True)
    )
    kinds = [event.type for event in events]
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
    text = "".join(event.delta for event in events if event.type == "response.output_text.delta")
    assert len(text.split()) == 7
    completed = events[-1]
    assert completed.type == "response.completed" and completed.response.usage is not None


def test_openai_sdk_responses_continue_stored_state(dev: LocalGateway, alice: str):
    client = openai_client(dev, alice)
    first = client.responses.create(model="gpt-4o-mini", input="Remember: blue")
    second = client.responses.create(
        model="gpt-4o-mini", input="What colour?", previous_response_id=first.id
    )
    assert second.previous_response_id == first.id
    assert second.usage is not None and first.usage is not None
    assert second.usage.input_tokens > first.usage.input_tokens, "the stored turn is input again"


SIZES = {"openai/text-embedding-3-small": 1536, "workers-ai/@cf/baai/bge-base-en-v1.5": 768}


@pytest.mark.parametrize("model", list(SIZES))
def test_openai_sdk_embeddings(dev: LocalGateway, alice: str, model: str):
    client = openai_client(dev, alice)
    raw = client.embeddings.with_raw_response.create(
        model=model, input=["first text", "second text"]
    )
    result = raw.parse()
    assert [item.index for item in result.data] == [0, 1]
    # the model's own size (the SDK asked for base64 and decoded it)
    assert len(result.data[0].embedding) == SIZES[model]
    assert all(isinstance(x, float) for x in result.data[0].embedding)
    assert result.data[0].embedding != result.data[1].embedding
    assert result.usage.prompt_tokens > 0
    assert raw.headers["x-gateway-cost-usd"]


def test_embeddings_base64_is_little_endian_float32(dev: LocalGateway, alice: str):
    """Asked for base64 explicitly, Workers AI's floats come back encoded as OpenAI encodes them."""
    client = openai_client(dev, alice)
    model = "workers-ai/@cf/baai/bge-base-en-v1.5"
    floats = (
        client.embeddings.create(model=model, input="same", encoding_format="float")
        .data[0]
        .embedding
    )
    raw = client.embeddings.with_raw_response.create(
        model=model, input="same", encoding_format="base64"
    )
    encoded = base64.b64decode(json.loads(raw.text)["data"][0]["embedding"])
    decoded = struct.unpack(f"<{len(encoded) // 4}f", encoded)
    assert decoded == pytest.approx(floats, rel=1e-6)


def test_workers_ai_native_run(dev: LocalGateway, alice: str):
    """Workers AI's own run API: the v4 envelope, as the REST API answers."""
    response = httpx.post(
        f"{dev.worker_url}/workers-ai/@cf/meta/llama-3.1-8b-instruct",
        json={"messages": [{"role": "user", "content": "Hi emulate:tokens=4"}]},
        headers={"authorization": f"Bearer {alice}"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["success"] is True and body["errors"] == []
    assert len(body["result"]["response"].split()) == 4
    assert body["result"]["usage"]["completion_tokens"] == 4


def test_clients_are_charged(dev: LocalGateway, alice: str):
    """What a client sends goes through the ledger: alice's row gains the request and a cost
    (the test makes its own request: tests of a module may run on different workers)."""
    hooks = WorkerTestHooks(dev.worker_url)
    before = hooks.user_row("demo-corp", "alice")
    response = httpx.post(
        f"{dev.worker_url}/v1/chat/completions",
        json={
            "model": "gpt-4o-mini",
            "messages": [{"role": "user", "content": "Hi emulate:tokens=3"}],
        },
        headers={"authorization": f"Bearer {alice}"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    row = eventually(
        lambda: (r := hooks.user_row("demo-corp", "alice"))["requests"] > before["requests"] and r
    )
    assert row["usedMicros"] > before["usedMicros"]
    hooks.close()
