"""End-to-end: the rendered Worker in workerd, driven by the official openai SDK."""

from __future__ import annotations

import time

import httpx

from provision.local.runtime import LocalGateway
from tests.support import Emulator, key, openai_client


def test_non_streaming_completion_returns_the_upstream_answer(gateway: LocalGateway, emulator):
    """A plain completion through the gateway is the AI Gateway's answer, with usage."""
    client = openai_client(gateway.openai_base_url, "key_ada_main")
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "Say hello"}]
    )
    completion = raw.parse()
    assert completion.object == "chat.completion"
    assert completion.choices[0].message.role == "assistant"
    assert len(completion.choices[0].message.content.split()) == 12  # emulator default reply
    assert completion.usage.completion_tokens == 12
    assert completion.usage.total_tokens == completion.usage.prompt_tokens + 12
    assert raw.headers["x-request-id"].startswith("req_")
    assert raw.headers["x-gateway-model"] == "openai/gpt-4o-mini"
    assert raw.headers["cf-aig-log-id"]


def test_streaming_yields_the_same_text_chunk_by_chunk(gateway: LocalGateway, emulator):
    """Streaming delivers the same completion as non-streaming, as a sequence of chunks."""
    client = openai_client(gateway.openai_base_url, "key_ada_main")
    messages = [{"role": "user", "content": "Tell me a story emulate:tokens=20"}]
    whole = client.chat.completions.create(model="gpt-4o-mini", messages=messages)
    chunks = list(
        client.chat.completions.create(model="gpt-4o-mini", messages=messages, stream=True)
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    assert len(chunks) >= 20
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert all(c.usage is None for c in chunks), "no usage chunk unless the client asked for it"


def test_stream_is_not_buffered(gateway: LocalGateway, emulator: Emulator):
    """The first chunk reaches the client long before the upstream stream ends."""
    emulator.fault(match={"model": "openai/gpt-4o-mini"}, times=1, chunkDelayMs=150)
    url = f"{gateway.openai_base_url}/chat/completions"
    body = {
        "model": "gpt-4o-mini",
        "stream": True,
        "messages": [{"role": "user", "content": "slow emulate:tokens=8"}],
    }
    arrivals = []
    start = time.monotonic()
    with httpx.stream(
        "POST",
        url,
        json=body,
        headers={"authorization": f"Bearer {key('key_ada_main')}"},
        timeout=30,
    ) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if line.startswith("data:"):
                arrivals.append(time.monotonic() - start)
    assert len(arrivals) >= 10
    # 8 words + role + finish chunks, 150 ms apart: the first must not wait for the last.
    assert arrivals[-1] - arrivals[0] > 0.9, arrivals


def test_models_list_shows_only_what_the_key_may_use(gateway: LocalGateway):
    """GET /v1/models lists the key's effective allow-list (catalog ∩ org ∩ user)."""
    ada = openai_client(gateway.openai_base_url, "key_ada_main")
    ben = openai_client(gateway.openai_base_url, "key_ben_main")
    cy = openai_client(gateway.openai_base_url, "key_cy_main")
    assert {m.id for m in ada.models.list()} == {
        "openai/gpt-4o-mini",
        "openai/gpt-4o",
        "anthropic/claude-sonnet-4-5",
        "workers-ai/@cf/meta/llama-3.1-8b-instruct",
    }
    assert [m.id for m in ben.models.list()] == ["openai/gpt-4o-mini"]
    assert {m.id for m in cy.models.list()} == {"openai/gpt-4o-mini", "anthropic/claude-sonnet-4-5"}
    model = ada.models.retrieve("claude-sonnet")
    assert (model.id, model.owned_by) == ("anthropic/claude-sonnet-4-5", "anthropic")


def test_default_model_is_the_tenants(gateway: LocalGateway, emulator: Emulator):
    """A request without a model uses the org's default model."""
    response = httpx.post(
        f"{gateway.openai_base_url}/chat/completions",
        headers={"authorization": f"Bearer {key('key_cy_main')}"},
        json={"messages": [{"role": "user", "content": "hi"}]},
    )
    assert response.status_code == 200
    assert response.headers["x-gateway-model"] == "anthropic/claude-sonnet-4-5"
    upstream = emulator.request_for(response.headers["x-request-id"])
    assert upstream["path"].endswith("/anthropic/v1/messages")  # Anthropic's own endpoint
    assert upstream["body"]["model"] == "claude-sonnet-4-5"


def test_client_key_is_never_forwarded_and_metadata_is(gateway: LocalGateway, emulator: Emulator):
    """Upstream sees the provider key and gateway token, never the client's gateway key."""
    client = openai_client(gateway.openai_base_url, "key_ada_main")
    for stream in (False, True):
        raw = client.chat.completions.with_raw_response.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], stream=stream
        )
        raw.parse()
        request_id = raw.headers["x-request-id"]
        upstream = emulator.request_for(request_id)
        headers = upstream["headers"]
        plain = key("key_ada_main")
        assert all(plain not in value for value in headers.values())
        assert plain not in str(upstream["body"])
        assert headers["authorization"] == f"Bearer {gateway.secrets.provider_api_keys['openai']}"
        assert headers["cf-aig-authorization"] == f"Bearer {gateway.secrets.ai_gateway_token}"
        assert upstream["metadata"] == {
            "requestId": request_id,
            "userId": "ada",
            "orgId": "acme",
            "keyId": "key_ada_main",
        }
        assert upstream["path"].endswith("/llm-gateway-e2e/openai/chat/completions")
        assert upstream["body"]["model"] == "gpt-4o-mini"


def test_each_provider_gets_its_own_key(gateway: LocalGateway, emulator: Emulator):
    """A model of another provider is sent with that provider's key."""
    client = openai_client(gateway.openai_base_url, "key_ada_main")
    raw = client.chat.completions.with_raw_response.create(
        model="claude-sonnet", messages=[{"role": "user", "content": "hi"}]
    )
    assert raw.parse().model == "claude-sonnet-4-5"
    upstream = emulator.request_for(raw.headers["x-request-id"])
    # Anthropic takes its key as x-api-key; the gateway token only ever as cf-aig-authorization
    assert upstream["headers"]["x-api-key"] == gateway.secrets.provider_api_keys["anthropic"]
    assert "authorization" not in upstream["headers"]
    assert upstream["headers"]["anthropic-version"] == "2023-06-01"


def test_health_needs_no_key(http: httpx.Client):
    """GET /health answers without authentication, with a request id."""
    response = http.get("/health")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"
    assert response.headers["x-request-id"].startswith("req_")
