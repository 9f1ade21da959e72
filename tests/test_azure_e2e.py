"""Azure OpenAI through the gateway (issue 24): OpenAI's models on the stack's deployments.

The providers stack serves `azure-openai/gpt-4o-mini` (deployment chat-4o-mini-prod, the
resource's api-version) and `azure-openai/text-embedding-3-small` (deployment embed-small, its own
api-version), priced from the catalog. The openai SDK reaches them through the chat, Responses
and embeddings routes; what goes upstream is Azure's path, api-version and `api-key`; Azure's
content filter results reach the client as Azure sent them, and a filtered prompt is Azure's 400
with its innererror, charged nothing."""

from __future__ import annotations

import json
from typing import Any

import httpx
import openai
import pytest

from provision.local.runtime import LocalGateway
from tests.charges import cost_of
from tests.charges import usd_micros as micros
from tests.support import ROOT, Emulator, WorkerTestHooks, eventually, key, stack_gateway

gateway = stack_gateway(ROOT / "tests" / "fixtures" / "Pulumi.providers.yaml")

CHAT = "azure-openai/gpt-4o-mini"
EMBED = "azure-openai/text-embedding-3-small"
ORG, USER = "prov", "paz"


def client(gateway: LocalGateway) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=f"{gateway.worker_url}/v1", api_key=key("key_paz_main"), max_retries=0, timeout=30
    )


def row(ledger: WorkerTestHooks) -> dict[str, Any]:
    return ledger.user_row(ORG, USER)


def charged(ledger: WorkerTestHooks, before: dict[str, Any]) -> int:
    after = eventually(lambda: (r := row(ledger))["requests"] == before["requests"] + 1 and r)
    return int(after["usedMicros"] - before["usedMicros"])


def test_chat_goes_to_the_deployment_with_its_api_version_and_azures_key(
    gateway: LocalGateway, upstream: Emulator, ledger: WorkerTestHooks
):
    before = row(ledger)
    raw = client(gateway).chat.completions.with_raw_response.create(
        model=CHAT, messages=[{"role": "user", "content": "Hello emulate:tokens=6"}]
    )
    answer = raw.parse()
    logged = upstream.request_for(raw.headers["x-request-id"])
    assert logged["path"].endswith("/azure-openai/gateway-tests/chat-4o-mini-prod/chat/completions")
    assert logged["query"] == "api-version=2024-10-21"
    assert logged["headers"]["api-key"] == gateway.secrets.provider_api_keys["azure-openai"]
    assert "authorization" not in logged["headers"]
    assert "model" not in logged["body"], "the deployment in the path is the model"
    assert answer.usage is not None and answer.usage.completion_tokens == 6
    expected = cost_of(
        gateway, CHAT, {"prompt": answer.usage.prompt_tokens, "completion": 6, "cached": 0}
    )
    assert micros(raw.headers["x-gateway-cost-usd"]) == expected > 0
    assert charged(ledger, before) == expected


def test_azures_content_filter_results_reach_the_client_as_sent(gateway: LocalGateway):
    headers = {"authorization": f"Bearer {key('key_paz_main')}"}
    body = {"model": CHAT, "messages": [{"role": "user", "content": "Hi"}]}
    whole = httpx.post(
        f"{gateway.worker_url}/v1/chat/completions", json=body, headers=headers, timeout=30
    ).json()
    assert whole["prompt_filter_results"][0]["content_filter_results"]["hate"] == {
        "filtered": False,
        "severity": "safe",
    }
    assert "violence" in whole["choices"][0]["content_filter_results"]
    # a stream's first chunk carries the prompt's results and no choices; the SDK reads past it
    lines = []
    with httpx.stream(
        "POST",
        f"{gateway.worker_url}/v1/chat/completions",
        json={**body, "stream": True},
        headers=headers,
        timeout=30,
    ) as response:
        lines = [line for line in response.iter_lines() if line.startswith("data: {")]
    first = json.loads(lines[0].removeprefix("data: "))
    assert first["choices"] == [] and first["prompt_filter_results"]
    text = "".join(
        c.choices[0].delta.content or ""
        for c in client(gateway).chat.completions.create(
            model=CHAT, messages=[{"role": "user", "content": "Hi"}], stream=True
        )
        if c.choices
    )
    assert text == whole["choices"][0]["message"]["content"]


def test_a_filtered_prompt_is_azures_400_with_its_results_and_costs_nothing(
    gateway: LocalGateway, ledger: WorkerTestHooks
):
    before = row(ledger)
    with pytest.raises(openai.BadRequestError) as raised:
        client(gateway).chat.completions.create(
            model=CHAT, messages=[{"role": "user", "content": "emulate:content-filter"}]
        )
    error = raised.value.body
    assert isinstance(error, dict)
    assert error["code"] == "content_filter" and error["param"] == "prompt"
    assert error["innererror"]["code"] == "ResponsibleAIPolicyViolation"
    assert error["innererror"]["content_filter_result"]["violence"] == {
        "filtered": True,
        "severity": "high",
    }
    after = eventually(lambda: (r := row(ledger))["requests"] >= before["requests"] and r)
    assert after["usedMicros"] == before["usedMicros"]


def test_embeddings_reach_their_own_deployment_and_api_version(
    gateway: LocalGateway, upstream: Emulator, ledger: WorkerTestHooks
):
    before = row(ledger)
    raw = client(gateway).embeddings.with_raw_response.create(
        model=EMBED, input=["the first text", "a second"]
    )
    answer = raw.parse()
    assert len(answer.data) == 2 and len(answer.data[0].embedding) > 0
    logged = upstream.request_for(raw.headers["x-request-id"])
    assert logged["path"].endswith("/azure-openai/gateway-tests/embed-small/embeddings")
    assert logged["query"] == "api-version=2023-05-15"
    expected = cost_of(
        gateway, EMBED, {"prompt": answer.usage.prompt_tokens, "completion": 0, "cached": 0}
    )
    assert micros(raw.headers["x-gateway-cost-usd"]) == expected
    assert charged(ledger, before) == expected


def test_responses_reach_the_deployment_and_stream(
    gateway: LocalGateway, upstream: Emulator, ledger: WorkerTestHooks
):
    before = row(ledger)
    raw = client(gateway).responses.with_raw_response.create(
        model=CHAT, input="Write a line emulate:tokens=5", store=False
    )
    response = raw.parse()
    assert response.output_text and response.usage is not None
    logged = upstream.request_for(raw.headers["x-request-id"])
    assert logged["path"].endswith("/azure-openai/gateway-tests/chat-4o-mini-prod/responses")
    assert logged["query"] == "api-version=2024-10-21"
    assert logged["body"]["model"] == "chat-4o-mini-prod", "Azure takes the deployment as model"
    expected = cost_of(
        gateway,
        CHAT,
        {
            "prompt": response.usage.input_tokens,
            "completion": response.usage.output_tokens,
            "cached": 0,
        },
    )
    assert micros(raw.headers["x-gateway-cost-usd"]) == expected
    assert charged(ledger, before) == expected
    events = list(
        client(gateway).responses.create(model=CHAT, input="Again", store=False, stream=True)
    )
    assert events[-1].type == "response.completed"
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert deltas == events[-1].response.output_text
