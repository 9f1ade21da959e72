"""End-to-end per provider module: the providers stack's Worker in workerd, the emulator as AI
Gateway, driven by the official openai SDK (and LangChain). One user per provider, so each
user's ledger row is one provider's traffic."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import jsonschema
import pytest
from openai import AsyncOpenAI
from pydantic import BaseModel

from provision.local.runtime import LocalGateway
from provision.stack.config import StackConfig
from tests.charges import cost_of
from tests.support import ROOT, Emulator, WorkerTestHooks, eventually, key, openai_client

PROVIDERS_STACK = ROOT / "tests" / "fixtures" / "Pulumi.providers.yaml"
ORG = "prov"


@dataclass(frozen=True)
class Case:
    slug: str
    model: str  # the catalog id the client asks for
    user: str
    upstream_model: str  # what the provider is asked for
    path: str | None  # the AI Gateway path after /{account}/{gateway}/; None: the AI binding
    auth: str | None  # the provider's key header (its value: the Worker's secret)
    model_in_path: bool = False  # Gemini names the model in the path, not the body

    @property
    def key_id(self) -> str:
        return f"key_{self.user}_main"


CASES = [
    Case(
        "openai",
        "openai/gpt-4o-mini",
        "po",
        "gpt-4o-mini",
        "openai/chat/completions",
        "authorization",
    ),
    Case(
        "anthropic",
        "anthropic/claude-sonnet-4-5",
        "pa",
        "claude-sonnet-4-5",
        "anthropic/v1/messages",
        "x-api-key",
    ),
    Case(
        "workers-ai",
        "workers-ai/@cf/meta/llama-3.1-8b-instruct",
        "pw",
        "@cf/meta/llama-3.1-8b-instruct",
        None,
        None,
    ),
    Case(
        "groq",
        "groq/llama-3.3-70b-versatile",
        "pg",
        "llama-3.3-70b-versatile",
        "groq/chat/completions",
        "authorization",
    ),
    # declared `compat`: AI Gateway's unified endpoint wants the catalog id as the model
    Case(
        "mistral",
        "mistral/mistral-small-latest",
        "pm",
        "mistral/mistral-small-latest",
        "compat/chat/completions",
        "authorization",
    ),
    Case(
        "google-ai-studio",
        "google-ai-studio/gemini-2.5-pro",
        "pgm",
        "gemini-2.5-pro",
        "google-ai-studio/v1beta/models/gemini-2.5-pro:generateContent",
        "x-goog-api-key",
        model_in_path=True,
    ),
    Case(
        "google-vertex-ai",
        "google-vertex-ai/gemini-2.5-pro",
        "pvx",
        "gemini-2.5-pro",
        "google-vertex-ai/v1/projects/gateway-tests-1/locations/us-central1/publishers/google/models/"
        "gemini-2.5-pro:generateContent",
        "authorization",
        model_in_path=True,
    ),
    # a deployment of the stack's Azure OpenAI resource; the path names it and the api-version
    Case(
        "azure-openai",
        "azure-openai/gpt-4o-mini",
        "paz",
        "chat-4o-mini-prod",
        "azure-openai/gateway-tests/chat-4o-mini-prod/chat/completions",
        "api-key",
        model_in_path=True,
    ),
    # Converse in the stack's region, the model id in the path (its `:` encoded), SigV4 signed
    Case(
        "aws-bedrock",
        "aws-bedrock/us.anthropic.claude-haiku-4-5-20251001-v1:0",
        "pbr",
        "us.anthropic.claude-haiku-4-5-20251001-v1:0",
        "aws-bedrock/bedrock-runtime/us-east-1/model/us.anthropic.claude-haiku-4-5-20251001-v1%3A0/converse",
        "authorization",
        model_in_path=True,
    ),
    # an AI Gateway custom provider (routing.customProviders): the team's own vLLM server
    Case(
        "custom-vllm",
        "custom-vllm/meta-llama/Llama-3.1-8B-Instruct",
        "pcu",
        "meta-llama/Llama-3.1-8B-Instruct",
        "custom-vllm/chat/completions",
        "authorization",
    ),
]
IDS = [case.slug for case in CASES]
BY_SLUG = {case.slug: case for case in CASES}

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "minLength": 1},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            },
            "required": ["city", "unit"],
            "additionalProperties": False,
        },
    },
}


class Forecast(BaseModel):
    city: str
    temperature_c: float
    sunny: bool


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def providers() -> Iterator[LocalGateway]:
    with LocalGateway(PROVIDERS_STACK, test_hooks=True) as running:
        yield running


@pytest.fixture(scope="module")
def upstream(providers: LocalGateway) -> Iterator[Emulator]:
    assert providers.emulator_url
    control = Emulator(providers.emulator_url)
    yield control
    control.clear_faults()
    control.close()


@pytest.fixture(scope="module")
def ledger(providers: LocalGateway) -> Iterator[WorkerTestHooks]:
    control = WorkerTestHooks(providers.worker_url)
    yield control
    control.close()


def config_of(gateway: LocalGateway) -> StackConfig:
    assert gateway.config is not None
    return gateway.config


def cost_micros(gateway: LocalGateway, model: str, usage: Any) -> int:
    """The cost the Worker must record for `usage` (the openai SDK's object), at the stack's prices."""
    details = usage.prompt_tokens_details
    return cost_of(
        gateway,
        model,
        {
            "prompt": usage.prompt_tokens,
            "completion": usage.completion_tokens,
            "cached": (details.cached_tokens or 0) if details else 0,
            "written": (getattr(details, "cache_write_tokens", None) or 0) if details else 0,
        },
    )


def micros(usd: str) -> int:
    whole, _, frac = usd.partition(".")
    return int(whole) * 1_000_000 + int(frac.ljust(6, "0"))


def settled_row(ledger: WorkerTestHooks, user: str, requests: int) -> dict[str, Any]:
    return eventually(lambda: (row := ledger.user_row(ORG, user))["requests"] >= requests and row)


# ---------------------------------------------------------------- what goes upstream


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_each_provider_is_called_at_its_native_endpoint_with_the_workers_credentials(
    providers: LocalGateway, upstream: Emulator, case: Case
):
    """The request log per provider: native path (or the AI binding), the provider's key from
    the Worker's secret in the provider's own header, tenant metadata, no client key."""
    client = openai_client(providers.openai_base_url, case.key_id)
    raw = client.chat.completions.with_raw_response.create(
        model=case.model, messages=[{"role": "user", "content": "Say hello"}]
    )
    request_id = raw.headers["x-request-id"]
    logged = upstream.request_for(request_id)
    config = config_of(providers)
    headers = logged["headers"]
    if case.path is None:
        # the AI binding: the gateway named in the call's options, no key of any kind
        assert logged["binding"] == "AI"
        assert logged["gatewayOptions"]["id"] == config.gatewayId
        assert headers["cf-consn-model-id"] == case.upstream_model
        assert logged["body"]["inputs"]["messages"] == [{"role": "user", "content": "Say hello"}]
        assert not {"authorization", "x-api-key", "cf-aig-authorization"} & set(headers)
    else:
        assert logged["path"].endswith(f"/{config.accountId}/{config.gatewayId}/{case.path}")
        if case.model_in_path:
            assert "model" not in logged["body"]
        else:
            assert logged["body"]["model"] == case.upstream_model
        secret = providers.secrets.provider_api_keys[case.slug]
        if case.slug == "aws-bedrock":
            # AWS keys: a SigV4 signature with the access key id, never the secret key
            access = json.loads(secret)["accessKeyId"]
            assert headers["authorization"].startswith(f"AWS4-HMAC-SHA256 Credential={access}/")
            assert json.loads(secret)["secretAccessKey"] not in json.dumps(logged)
        else:
            expected = f"Bearer {secret}" if case.auth == "authorization" else secret
            assert headers[case.auth] == expected
        assert headers["cf-aig-authorization"] == f"Bearer {providers.secrets.ai_gateway_token}"
    assert logged["metadata"] == {
        "requestId": request_id,
        "userId": case.user,
        "orgId": ORG,
        "keyId": case.key_id,
    }
    assert key(case.key_id) not in json.dumps(logged), "the client's key went upstream"


# ---------------------------------------------------------------- answers in OpenAI's shape


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_answers_are_openai_chat_completions_streaming_and_not(
    providers: LocalGateway, upstream: Emulator, case: Case
):
    client = openai_client(providers.openai_base_url, case.key_id)
    messages = [{"role": "user", "content": "Tell me a story emulate:tokens=9"}]
    whole = client.chat.completions.create(model=case.model, messages=messages)
    assert whole.object == "chat.completion"
    assert whole.choices[0].message.role == "assistant"
    assert whole.choices[0].finish_reason == "stop"
    assert whole.usage is not None
    # a thinking model (Gemini 2.5) counts its thinking in completion_tokens, as OpenAI does
    details = whole.usage.completion_tokens_details
    thinking = (details.reasoning_tokens or 0) if details else 0
    assert whole.usage.completion_tokens - thinking == 9
    stream = client.chat.completions.create(
        model=case.model, messages=messages, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    if case.slug == "azure-openai":
        # Azure's first chunk is its prompt filter's results alone (no object, no choices)
        head = chunks.pop(0)
        assert not head.choices and head.model_extra and head.model_extra["prompt_filter_results"]
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    finishes = [
        c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason
    ]
    assert finishes == ["stop"]
    usage = [c.usage for c in chunks if c.usage is not None]
    assert len(usage) == 1 and not chunks[-1].choices, "one usage chunk, last, without choices"
    assert (usage[0].prompt_tokens, usage[0].completion_tokens) == (
        whole.usage.prompt_tokens,
        whole.usage.completion_tokens,
    )


# ---------------------------------------------------------------- tools and structured output


def _weather_call(message: Any) -> Any:
    assert message.tool_calls, f"no tool call: {message}"
    (call,) = message.tool_calls
    assert call.type == "function" and call.function.name == "get_weather"
    assert call.id
    jsonschema.validate(json.loads(call.function.arguments), WEATHER_TOOL["function"]["parameters"])
    return call


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_a_tool_call_round_trip(providers: LocalGateway, upstream: Emulator, case: Case):
    """Call, tool result, final answer: arguments valid against the tool's schema."""
    client = openai_client(providers.openai_base_url, case.key_id)
    messages: list[Any] = [{"role": "user", "content": "What is the weather in Oslo?"}]
    first = client.chat.completions.create(
        model=case.model, messages=messages, tools=[WEATHER_TOOL], tool_choice="auto"
    )
    assert first.choices[0].finish_reason == "tool_calls"
    call = _weather_call(first.choices[0].message)
    messages += [
        first.choices[0].message.model_dump(exclude_none=True),
        {
            "role": "tool",
            "tool_call_id": call.id,
            "content": '{"temperature_c": 7, "sunny": false}',
        },
    ]
    final = client.chat.completions.create(
        model=case.model, messages=messages, tools=[WEATHER_TOOL]
    )
    assert final.choices[0].finish_reason == "stop"
    assert final.choices[0].message.content
    assert not final.choices[0].message.tool_calls


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_a_streamed_tool_call_assembles_to_valid_arguments(
    providers: LocalGateway, upstream: Emulator, case: Case
):
    client = openai_client(providers.openai_base_url, case.key_id)
    stream = client.chat.completions.create(
        model=case.model,
        messages=[{"role": "user", "content": "Weather in Lima?"}],
        tools=[WEATHER_TOOL],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        stream=True,
    )
    calls: dict[int, dict[str, str]] = {}
    finish = None
    for chunk in stream:
        if not chunk.choices:
            continue
        choice = chunk.choices[0]
        finish = choice.finish_reason or finish
        for delta in choice.delta.tool_calls or []:
            entry = calls.setdefault(delta.index, {"id": "", "name": "", "arguments": ""})
            entry["id"] = delta.id or entry["id"]
            if delta.function:
                entry["name"] += delta.function.name or ""
                entry["arguments"] += delta.function.arguments or ""
    # OpenAI finishes a call forced by name with "stop"; the others (and our translations) say
    # "tool_calls"
    assert finish == ("stop" if case.slug == "openai" else "tool_calls")
    assert list(calls) == [0] and calls[0]["name"] == "get_weather" and calls[0]["id"]
    jsonschema.validate(json.loads(calls[0]["arguments"]), WEATHER_TOOL["function"]["parameters"])


STRUCTURED = [
    "openai",
    "anthropic",
    "groq",
    "mistral",
    "azure-openai",
    "aws-bedrock",
    "custom-vllm",
]


@pytest.mark.parametrize("slug", STRUCTURED)
def test_response_format_json_schema_parses_with_the_sdk(
    providers: LocalGateway, upstream: Emulator, slug: str
):
    case = BY_SLUG[slug]
    client = openai_client(providers.openai_base_url, case.key_id)
    parsed = client.chat.completions.parse(
        model=case.model,
        messages=[{"role": "user", "content": "Forecast for Bergen"}],
        response_format=Forecast,
    )
    assert isinstance(parsed.choices[0].message.parsed, Forecast)
    assert parsed.choices[0].finish_reason == "stop"


@pytest.mark.parametrize("slug", ["openai", "anthropic"])
def test_response_format_json_object_is_json(
    providers: LocalGateway, upstream: Emulator, slug: str
):
    case = BY_SLUG[slug]
    client = openai_client(providers.openai_base_url, case.key_id)
    answer = client.chat.completions.create(
        model=case.model,
        messages=[{"role": "user", "content": "Reply in JSON: a greeting"}],
        response_format={"type": "json_object"},
    )
    assert isinstance(json.loads(answer.choices[0].message.content or ""), dict)


@pytest.mark.parametrize("method", ["json_schema", "function_calling"])
@pytest.mark.parametrize("slug", ["openai", "anthropic"])
def test_langchain_with_structured_output(
    providers: LocalGateway, upstream: Emulator, slug: str, method: str
):
    from langchain_openai import ChatOpenAI

    case = BY_SLUG[slug]
    llm = ChatOpenAI(
        model=case.model,
        base_url=providers.openai_base_url,
        api_key=key(case.key_id),  # type: ignore[arg-type]
        max_retries=0,
        timeout=30,
    )
    forecast = llm.with_structured_output(Forecast, method=method).invoke("Forecast for Tromsø")
    assert isinstance(forecast, Forecast)


# ---------------------------------------------------------------- costs stay exact


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_the_ledger_is_exact_for_each_provider(
    providers: LocalGateway, upstream: Emulator, ledger: WorkerTestHooks, case: Case
):
    """Concurrent answers and streams: the user's row grows by exactly the costs charged
    (the cost header of each answer, the usage of each stream at the stack's price)."""
    before = ledger.user_row(ORG, case.user)

    async def run() -> list[int]:
        client = AsyncOpenAI(
            base_url=providers.openai_base_url, api_key=key(case.key_id), max_retries=0, timeout=60
        )

        async def answer(i: int) -> int:
            raw = await client.chat.completions.with_raw_response.create(
                model=case.model,
                messages=[{"role": "user", "content": f"Count to {i} emulate:tokens={5 + i}"}],
            )
            completion = raw.parse()
            charged = micros(raw.headers["x-gateway-cost-usd"])
            assert charged == cost_micros(providers, case.model, completion.usage)
            return charged

        async def streamed(i: int) -> int:
            stream = await client.chat.completions.create(
                model=case.model,
                messages=[{"role": "user", "content": f"Stream {i} emulate:tokens={3 + i}"}],
                stream=True,
                stream_options={"include_usage": True},
            )
            usage = [chunk.usage async for chunk in stream if chunk.usage is not None]
            return cost_micros(providers, case.model, usage[-1])

        try:
            return await asyncio.gather(
                *[answer(i) for i in range(6)], *[streamed(i) for i in range(6)]
            )
        finally:
            await client.close()

    charged = asyncio.run(run())
    after = settled_row(ledger, case.user, before["requests"] + len(charged))
    assert after["requests"] - before["requests"] == len(charged)
    assert after["usedMicros"] - before["usedMicros"] == sum(charged)
    assert after["estimated"] == before["estimated"], "every provider reported its usage"


def test_anthropic_prompt_cache_tokens_are_priced_as_written_then_read(
    providers: LocalGateway, upstream: Emulator, ledger: WorkerTestHooks
):
    """A cache_control part: the first request writes the prefix (cacheWriteInputPerMTok), the
    second reads it (cachedInputPerMTok); both reported in OpenAI's usage and charged exactly."""
    case = BY_SLUG["anthropic"]
    client = openai_client(providers.openai_base_url, case.key_id)
    manual = "Policy clause. " * 800  # above Anthropic's minimum cacheable prefix
    messages = [
        {
            "role": "system",
            "content": [{"type": "text", "text": manual, "cache_control": {"type": "ephemeral"}}],
        },
        {"role": "user", "content": "Summarise the policy"},
    ]
    before = ledger.user_row(ORG, case.user)
    charged = []
    details = []
    for _ in range(2):
        raw = client.chat.completions.with_raw_response.create(model=case.model, messages=messages)
        usage = raw.parse().usage
        assert usage is not None and usage.prompt_tokens_details is not None
        details.append(usage.prompt_tokens_details.model_dump())
        charged.append(micros(raw.headers["x-gateway-cost-usd"]))
        assert charged[-1] == cost_micros(providers, case.model, usage)
    written, read = details
    assert written["cache_write_tokens"] > 0 and written["cached_tokens"] == 0
    assert (
        read["cached_tokens"] == written["cache_write_tokens"] and read["cache_write_tokens"] == 0
    )
    assert charged[1] < charged[0], "a cache read costs less than the write"
    after = settled_row(ledger, case.user, before["requests"] + 2)
    assert after["usedMicros"] - before["usedMicros"] == sum(charged)


# ---------------------------------------------------------------- errors in OpenAI's shape


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_an_upstream_rate_limit_is_a_429_in_openais_shape_and_costs_nothing(
    providers: LocalGateway, upstream: Emulator, ledger: WorkerTestHooks, case: Case
):
    before = ledger.user_row(ORG, case.user)
    upstream.fault(match={"metadata": {"userId": case.user}}, times=1, status=429)
    try:
        response = httpx.post(
            f"{providers.openai_base_url}/chat/completions",
            json={"model": case.model, "messages": [{"role": "user", "content": "hi"}]},
            headers={"authorization": f"Bearer {key(case.key_id)}"},
            timeout=30,
        )
    finally:
        upstream.clear_faults()
    assert response.status_code == 429, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}
    assert response.headers["x-request-id"]
    assert ledger.user_row(ORG, case.user)["usedMicros"] == before["usedMicros"]


def test_google_genai_reaches_a_vertex_model_through_geminis_own_route(
    providers: LocalGateway, upstream: Emulator, ledger: WorkerTestHooks
):
    """The google-genai SDK unchanged, naming a Vertex model by its alias: Vertex AI's path and
    credential upstream, Gemini's answer back, priced as the Vertex model; countTokens too."""
    from google import genai
    from google.genai import types as genai_types

    client = genai.Client(
        api_key=key("key_pvx_main"),
        http_options=genai_types.HttpOptions(base_url=providers.worker_url, api_version="v1beta"),
    )
    before = ledger.user_row(ORG, "pvx")
    answer = client.models.generate_content(
        model="gemini-2.5-pro-vertex", contents="Hello from Vertex emulate:tokens=5"
    )
    assert answer.text is not None and len(answer.text.split()) == 5
    usage = answer.usage_metadata
    assert usage is not None
    expected = cost_of(
        providers,
        "google-vertex-ai/gemini-2.5-pro",
        {
            "prompt": usage.prompt_token_count or 0,
            "completion": (usage.candidates_token_count or 0) + (usage.thoughts_token_count or 0),
        },
    )
    row = settled_row(ledger, "pvx", before["requests"] + 1)
    assert row["usedMicros"] - before["usedMicros"] == expected
    logged = [e for e in upstream.requests(userId="pvx") if e["path"].endswith(":generateContent")][
        -1
    ]
    assert "/google-vertex-ai/v1/projects/gateway-tests-1/locations/us-central1/" in logged["path"]
    secret = providers.secrets.provider_api_keys["google-vertex-ai"]
    assert logged["headers"]["authorization"] == f"Bearer {secret}"
    counted = client.models.count_tokens(model="gemini-2.5-pro-vertex", contents="How long?")
    assert (counted.total_tokens or 0) > 0
