"""Amazon Bedrock through the gateway (issue 24): the Converse API behind AI Gateway.

The providers stack serves `aws-bedrock/us.anthropic.claude-haiku-4-5-20251001-v1:0` in
us-east-1, priced from the catalog; the Worker holds AWS keys (JSON) and signs every request
with SigV4 for Bedrock's own host, which the emulator verifies as AWS does. OpenAI SDK clients
reach it through the chat route: answers and ConverseStream's binary event stream translated,
usage with cache reads and 1-hour cache writes priced exactly (header equal to the ledger's
delta), a stream cut mid-message ending with the route's error event and charged for what was
delivered, and a signature Bedrock refuses reported as the gateway's credentials, unbilled."""

from __future__ import annotations

import json
import math
import secrets
from typing import Any

import anthropic
import httpx
import openai
import pytest

from provision.local.runtime import LocalGateway
from tests.charges import cost_of
from tests.charges import usd_micros as micros
from tests.support import ROOT, Emulator, WorkerTestHooks, eventually, key, stack_gateway

gateway = stack_gateway(ROOT / "tests" / "fixtures" / "Pulumi.providers.yaml")

MODEL = "aws-bedrock/us.anthropic.claude-haiku-4-5-20251001-v1:0"
ORG, USER = "prov", "pbr"


def client(gateway: LocalGateway) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=f"{gateway.worker_url}/v1", api_key=key("key_pbr_main"), max_retries=0, timeout=30
    )


def row(ledger: WorkerTestHooks) -> dict[str, Any]:
    return ledger.user_row(ORG, USER)


def settled(ledger: WorkerTestHooks, before: dict[str, Any]) -> dict[str, Any]:
    return eventually(lambda: (r := row(ledger))["requests"] == before["requests"] + 1 and r)


def fresh(text: str) -> str:
    """A prompt no other request sent."""
    return f"{text} {secrets.token_hex(6)}"


def test_requests_are_signed_for_bedrocks_own_host_and_verified(
    gateway: LocalGateway, upstream: Emulator
):
    raw = client(gateway).chat.completions.with_raw_response.create(
        model=MODEL, messages=[{"role": "user", "content": fresh("Hello")}]
    )
    assert raw.parse().choices[0].message.content
    logged = upstream.request_for(raw.headers["x-request-id"])
    assert logged["path"].endswith(
        "/aws-bedrock/bedrock-runtime/us-east-1/model/"
        "us.anthropic.claude-haiku-4-5-20251001-v1%3A0/converse"
    )
    keys = json.loads(gateway.secrets.provider_api_keys["aws-bedrock"])
    authorization = logged["headers"]["authorization"]
    assert (
        authorization.startswith(f"AWS4-HMAC-SHA256 Credential={keys['accessKeyId']}/")
        and "/us-east-1/bedrock/aws4_request" in authorization
    )
    assert logged["headers"]["x-amz-date"]
    assert keys["secretAccessKey"] not in json.dumps(logged)
    assert logged["status"] == 200, "the emulator checked the signature as AWS does"


def test_a_signature_bedrock_refuses_is_the_gateways_credentials_and_costs_nothing(
    gateway: LocalGateway, upstream: Emulator, ledger: WorkerTestHooks
):
    before = row(ledger)
    upstream.fault(
        match={"path": "/aws-bedrock/", "metadata": {"userId": USER}},
        status=403,
        body={
            "message": "The request signature we calculated does not match the signature you provided."
        },
        headers={
            "x-amzn-errortype": "InvalidSignatureException:http://internal.amazon.com/coral/com.amazon.bedrock/"
        },
    )
    try:
        with pytest.raises(openai.APIStatusError) as raised:
            client(gateway).chat.completions.create(
                model=MODEL, messages=[{"role": "user", "content": fresh("Hi")}]
            )
    finally:
        upstream.clear_faults()
    assert raised.value.status_code == 502
    assert raised.value.code == "provider_auth_error"
    after = eventually(lambda: (r := row(ledger))["requests"] >= before["requests"] and r)
    assert after["usedMicros"] == before["usedMicros"]


def test_a_one_hour_cache_write_then_a_read_are_priced_exactly(
    gateway: LocalGateway, ledger: WorkerTestHooks
):
    system = {
        "role": "system",
        "content": [
            {
                "type": "text",
                "text": fresh("The house rules, long and stable. " * 40),
                "cache_control": {"type": "ephemeral", "ttl": "1h"},
            }
        ],
    }
    charges = []
    for _ in range(2):
        before = row(ledger)
        raw = client(gateway).chat.completions.with_raw_response.create(
            model=MODEL,
            messages=[system, {"role": "user", "content": "Summarise emulate:tokens=4"}],
        )
        usage = raw.parse().usage
        assert usage is not None and usage.prompt_tokens_details is not None
        details = usage.prompt_tokens_details
        written = details.cache_write_tokens or 0
        expected = cost_of(
            gateway,
            MODEL,
            {
                "prompt": usage.prompt_tokens,
                "completion": usage.completion_tokens,
                "cached": details.cached_tokens or 0,
                "written": written,
                "written_1h": written,
            },
        )
        header = micros(raw.headers["x-gateway-cost-usd"])
        assert header == expected
        if written:
            # at the 1-hour write price, not the 5-minute one
            five = {
                "prompt": usage.prompt_tokens,
                "completion": usage.completion_tokens,
                "cached": 0,
                "written": written,
            }
            assert header > cost_of(gateway, MODEL, five)
        assert settled(ledger, before)["usedMicros"] - before["usedMicros"] == header
        charges.append((written, details.cached_tokens, header))
    (written, read, first), (rewritten, reread, second) = charges
    assert written > 0 and read == 0, "the first request writes the 1-hour cache"
    assert rewritten == 0 and reread == written, "the second reads what the first wrote"
    assert second < first


def test_a_stream_cut_mid_message_ends_with_the_error_event_and_is_charged_for_what_came(
    gateway: LocalGateway, upstream: Emulator, ledger: WorkerTestHooks
):
    before = row(ledger)
    content = fresh("Tell a long story emulate:tokens=30")
    # each event message goes out in two chunks: after 9 chunks the fifth message is half sent
    upstream.fault(
        match={"path": "/converse-stream", "metadata": {"userId": USER}}, cutAfterChunks=9
    )
    received: list[str] = []
    try:
        with pytest.raises(openai.APIError) as raised:
            for chunk in client(gateway).chat.completions.create(
                model=MODEL, messages=[{"role": "user", "content": content}], stream=True
            ):
                received += [c.delta.content or "" for c in chunk.choices]
    finally:
        upstream.clear_faults()
    assert "upstream_incomplete" in str(raised.value.body)
    text = "".join(received)
    assert text, "what came before the cut was streamed"
    after = settled(ledger, before)
    assert after["estimated"] == before["estimated"] + 1
    # no usage came: the prompt as estimated before sending, the output that was delivered
    prompt = 3 + 4 + math.ceil(len(content.encode()) / 4)
    delivered = math.ceil(len(text.encode()) / 4)
    expected = cost_of(gateway, MODEL, {"prompt": prompt, "completion": delivered, "cached": 0})
    assert after["usedMicros"] - before["usedMicros"] == expected


def test_the_stream_is_aws_event_stream_upstream_and_sse_to_the_client(
    gateway: LocalGateway, upstream: Emulator
):
    headers = {"authorization": f"Bearer {key('key_pbr_main')}"}
    body = {
        "model": MODEL,
        "messages": [{"role": "user", "content": fresh("Stream emulate:tokens=5")}],
        "stream": True,
    }
    with httpx.stream(
        "POST", f"{gateway.worker_url}/v1/chat/completions", json=body, headers=headers, timeout=30
    ) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in response.iter_lines() if line.startswith("data: ")]
        request_id = response.headers["x-request-id"]
    assert lines[-1] == "data: [DONE]"
    logged = upstream.request_for(request_id)
    assert logged["path"].endswith("/converse-stream")
    answer = upstream.answer(logged["logId"])
    assert len(answer["chunks"]) == 2 * (1 + 5 + 3), (
        "messageStart, five deltas, stop, stop, metadata"
    )


# ---------------------------------------------------------------- Claude on Bedrock, Anthropic's format


def anthropic_client(gateway: LocalGateway) -> anthropic.Anthropic:
    return anthropic.Anthropic(
        base_url=gateway.worker_url, api_key=key("key_pbr_main"), max_retries=0, timeout=30
    )


def anthropic_cost(gateway: LocalGateway, usage: Any) -> int:
    read = usage.cache_read_input_tokens or 0
    written = usage.cache_creation_input_tokens or 0
    return cost_of(
        gateway,
        MODEL,
        {
            "prompt": usage.input_tokens + read + written,
            "completion": usage.output_tokens,
            "cached": read,
            "written": written,
        },
    )


def test_the_anthropic_sdk_reaches_claude_on_bedrock_through_invoke_model(
    gateway: LocalGateway, upstream: Emulator, ledger: WorkerTestHooks
):
    before = row(ledger)
    raw = anthropic_client(gateway).messages.with_raw_response.create(
        model=MODEL,
        max_tokens=200,
        messages=[{"role": "user", "content": fresh("Hello emulate:tokens=7")}],
        extra_headers={"anthropic-beta": "context-1m-2025-08-07"},
    )
    message = raw.parse()
    assert message.type == "message" and message.content[0].type == "text"
    assert message.usage.output_tokens == 7
    logged = upstream.request_for(raw.headers["x-request-id"])
    assert logged["path"].endswith(
        "/aws-bedrock/bedrock-runtime/us-east-1/model/"
        "us.anthropic.claude-haiku-4-5-20251001-v1%3A0/invoke"
    )
    assert logged["body"]["anthropic_version"] == "bedrock-2023-05-31"
    assert logged["body"]["anthropic_beta"] == ["context-1m-2025-08-07"]
    assert "model" not in logged["body"] and "stream" not in logged["body"]
    assert logged["headers"]["authorization"].startswith("AWS4-HMAC-SHA256 ")
    expected = anthropic_cost(gateway, message.usage)
    assert micros(raw.headers["x-gateway-cost-usd"]) == expected
    assert settled(ledger, before)["usedMicros"] - before["usedMicros"] == expected


def test_a_streamed_tool_use_from_claude_on_bedrock_with_the_sdks_stream_helper(
    gateway: LocalGateway, ledger: WorkerTestHooks
):
    before = row(ledger)
    tool = {
        "name": "get_weather",
        "description": "Weather of a city",
        "input_schema": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    }
    with anthropic_client(gateway).messages.stream(
        model=MODEL,
        max_tokens=300,
        tools=[tool],  # type: ignore[list-item]
        messages=[{"role": "user", "content": fresh("Weather in Oslo?")}],
    ) as stream:
        texts = [event for event in stream if event.type == "content_block_delta"]
        final = stream.get_final_message()
    assert texts, "the tool input arrived in pieces"
    (use,) = [b for b in final.content if b.type == "tool_use"]
    assert use.name == "get_weather" and isinstance(use.input, dict) and use.input["city"]
    assert final.stop_reason == "tool_use"
    after = settled(ledger, before)
    assert after["usedMicros"] - before["usedMicros"] == anthropic_cost(gateway, final.usage)


def test_count_tokens_for_claude_on_bedrock_is_counted_by_bedrock_and_free(
    gateway: LocalGateway, upstream: Emulator, ledger: WorkerTestHooks
):
    before = row(ledger)
    messages = [{"role": "user", "content": "How many tokens is this?"}]
    counted = anthropic_client(gateway).messages.count_tokens(model=MODEL, messages=messages)  # type: ignore[arg-type]
    created = anthropic_client(gateway).messages.create(
        model=MODEL,
        max_tokens=50,
        messages=messages,  # type: ignore[arg-type]
    )
    assert counted.input_tokens == created.usage.input_tokens > 0
    sent = upstream.requests(userId=USER)
    assert any(entry["path"].endswith("/count-tokens") for entry in sent)
    after = settled(ledger, before)
    assert after["usedMicros"] - before["usedMicros"] == anthropic_cost(gateway, created.usage)


def test_a_claude_on_bedrock_stream_cut_mid_message_raises_in_the_anthropic_sdk(
    gateway: LocalGateway, upstream: Emulator, ledger: WorkerTestHooks
):
    before = row(ledger)
    upstream.fault(
        match={"path": "/invoke-with-response-stream", "metadata": {"userId": USER}},
        cutAfterChunks=7,
    )
    try:
        with pytest.raises(anthropic.APIError):
            with anthropic_client(gateway).messages.stream(
                model=MODEL,
                max_tokens=300,
                messages=[{"role": "user", "content": fresh("A long story emulate:tokens=40")}],
            ) as stream:
                for _ in stream:
                    pass
    finally:
        upstream.clear_faults()
    after = settled(ledger, before)
    assert after["estimated"] == before["estimated"] + 1
    assert after["usedMicros"] > before["usedMicros"], "what was delivered is charged"
