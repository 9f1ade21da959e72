"""Gemini through the gateway (issue 24): Google AI Studio's own API behind AI Gateway.

First the emulator is held to the real client: google-genai (pinned) talks to the emulated
`google-ai-studio` endpoint directly, so the wire format the gateway is tested against is the one
Google's SDK parses (answers, SSE streams, function calls, JSON output, token counts, errors).
Then OpenAI SDK clients reach Gemini models through the chat route: every answer, stream and
tool round trip priced exactly from Gemini's usageMetadata (thinking billed as output, implicitly
cached input at the cached price), header equal to the ledger's delta."""

from __future__ import annotations

import json
import time
from decimal import Decimal
from typing import Any

import httpx
import openai
import pytest
from google import genai
from google.genai import errors as genai_errors
from google.genai import types as genai_types

from provision.local.runtime import LocalGateway
from tests.charges import cost_of
from tests.support import ROOT, Emulator, WorkerTestHooks, eventually, key, stack_gateway

gateway = stack_gateway(ROOT / "tests" / "fixtures" / "Pulumi.gemini.yaml")

FLASH = "google-ai-studio/gemini-2.5-flash"
PRO_3 = "google-ai-studio/gemini-3-pro-preview"
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather of a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}


def micros(usd: str) -> int:
    return int(Decimal(usd) * 1_000_000)


def sdk(gateway: LocalGateway, api_key: str | None = None) -> genai.Client:
    """google-genai pointed at the emulated AI Gateway's google-ai-studio endpoint."""
    assert gateway.emulator_url and gateway.config is not None
    base = f"{gateway.emulator_url}/v1/{gateway.config.accountId}/{gateway.config.gatewayId}/google-ai-studio"
    secret = gateway.secrets.provider_api_keys["google-ai-studio"]
    gateway_auth = {"cf-aig-authorization": f"Bearer {gateway.secrets.ai_gateway_token}"}
    return genai.Client(
        api_key=api_key or secret,
        http_options=genai_types.HttpOptions(
            base_url=base, api_version="v1beta", headers=gateway_auth
        ),
    )


def chat(gateway: LocalGateway, who: str = "main") -> openai.OpenAI:
    return openai.OpenAI(
        base_url=f"{gateway.worker_url}/v1",
        api_key=key(f"key_gem_{who}"),
        max_retries=0,
        timeout=30,
    )


def row(ledger: WorkerTestHooks, user: str) -> dict[str, Any]:
    return ledger.user_row("gem", user)


def charged(ledger: WorkerTestHooks, user: str, before: dict[str, Any]) -> int:
    after = eventually(lambda: (r := row(ledger, user))["requests"] == before["requests"] + 1 and r)
    return int(after["usedMicros"] - before["usedMicros"])


# ---------------------------------------------------------------- the emulator, held to google-genai


def test_the_sdk_reads_an_answer_with_thinking_and_usage(gateway: LocalGateway):
    client = sdk(gateway)  # held: a client left to the collector closes its connection pool
    answer = client.models.generate_content(
        model="gemini-2.5-flash",
        contents="Say hello emulate:tokens=5",
        config=genai_types.GenerateContentConfig(
            thinking_config=genai_types.ThinkingConfig(include_thoughts=True)
        ),
    )
    assert answer.text is not None and len(answer.text.split()) == 5  # thoughts are not the text
    parts = answer.candidates[0].content.parts  # type: ignore[index,union-attr]
    assert parts is not None and parts[0].thought is True
    usage = answer.usage_metadata
    assert usage is not None and usage.candidates_token_count == 5
    assert usage.thoughts_token_count and usage.thoughts_token_count > 0
    assert usage.total_token_count == (
        usage.prompt_token_count + usage.candidates_token_count + usage.thoughts_token_count  # type: ignore[operator]
    )
    assert answer.candidates[0].finish_reason == genai_types.FinishReason.STOP  # type: ignore[index]


def test_the_sdk_reads_a_stream_chunk_by_chunk(gateway: LocalGateway):
    client = sdk(gateway)
    chunks = list(
        client.models.generate_content_stream(
            model="gemini-2.5-flash", contents="Count emulate:tokens=6"
        )
    )
    assert len(chunks) >= 6
    assert (
        "".join(c.text or "" for c in chunks).split()
        == " ".join(c.text or "" for c in chunks).split()
    )
    assert chunks[-1].usage_metadata is not None
    assert chunks[-1].usage_metadata.candidates_token_count == 6
    assert chunks[-1].candidates[0].finish_reason == genai_types.FinishReason.STOP  # type: ignore[index]


def test_the_sdk_calls_a_function_and_reads_a_json_answer(gateway: LocalGateway):
    client = sdk(gateway)
    declaration = genai_types.FunctionDeclaration(
        name="get_weather",
        description="The weather of a city",
        parameters_json_schema={
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    )
    answer = client.models.generate_content(
        model="gemini-3-pro-preview",
        contents="Weather in Paris?",
        config=genai_types.GenerateContentConfig(
            tools=[genai_types.Tool(function_declarations=[declaration])],
            tool_config=genai_types.ToolConfig(
                function_calling_config=genai_types.FunctionCallingConfig(mode="ANY")
            ),
        ),
    )
    (call,) = answer.function_calls or []
    assert call.name == "get_weather" and isinstance((call.args or {}).get("city"), str)
    schema = {
        "type": "object",
        "properties": {"n": {"type": "integer"}, "word": {"type": "string"}},
        "required": ["n", "word"],
    }
    document = client.models.generate_content(
        model="gemini-2.5-pro",
        contents="A number and a word",
        config=genai_types.GenerateContentConfig(
            response_mime_type="application/json", response_json_schema=schema
        ),
    )
    value = json.loads(document.text or "")
    assert isinstance(value["n"], int) and isinstance(value["word"], str)


def test_the_sdk_counts_tokens_and_raises_googles_errors(gateway: LocalGateway):
    client = sdk(gateway)
    counted = client.models.count_tokens(model="gemini-2.5-flash", contents="How many tokens?")
    assert counted.total_tokens and counted.total_tokens > 0
    wrong = sdk(gateway, api_key="AIza-not-the-key")
    with pytest.raises(genai_errors.ClientError) as bad_key:
        wrong.models.generate_content(model="gemini-2.5-flash", contents="hi")
    assert bad_key.value.code == 400 and bad_key.value.status == "INVALID_ARGUMENT"
    assert "API key not valid" in (bad_key.value.message or "")
    with pytest.raises(genai_errors.ClientError) as missing:
        client.models.generate_content(model="no-such-model", contents="hi")
    assert missing.value.code == 404 and missing.value.status == "NOT_FOUND"


def test_the_emulator_refuses_what_gemini_refuses(gateway: LocalGateway):
    """Unknown fields, bad roles, empty contents: Google's 400s, not lenient answers."""
    assert gateway.emulator_url and gateway.config is not None
    url = (
        f"{gateway.emulator_url}/v1/{gateway.config.accountId}/{gateway.config.gatewayId}"
        "/google-ai-studio/v1beta/models/gemini-2.5-flash:generateContent"
    )
    headers = {
        "x-goog-api-key": gateway.secrets.provider_api_keys["google-ai-studio"],
        "cf-aig-authorization": f"Bearer {gateway.secrets.ai_gateway_token}",
    }
    cases = [
        ({"contents": [{"parts": [{"text": "hi"}]}], "max_tokens": 5}, 'Unknown name "max_tokens"'),
        ({"contents": [{"role": "assistant", "parts": [{"text": "hi"}]}]}, "valid role"),
        ({"contents": []}, "contents is not specified"),
        ({"contents": [{"role": "user", "parts": [{}]}]}, "required oneof field 'data'"),
    ]
    for body, message in cases:
        response = httpx.post(url, json=body, headers=headers, timeout=10)
        assert response.status_code == 400, body
        error = response.json()["error"]
        assert error["status"] == "INVALID_ARGUMENT" and message in error["message"], error


# ---------------------------------------------------------------- the chat route to Gemini


def test_a_chat_completion_from_gemini_is_priced_from_its_usage(
    gateway: LocalGateway, ledger: WorkerTestHooks
):
    """Thinking is output: completion_tokens = candidates + thoughts, priced at the output price."""
    before = row(ledger, "gemma")
    response = chat(gateway).chat.completions.with_raw_response.create(
        model="gemini-flash",
        messages=[{"role": "user", "content": f"Hello {time.time_ns()} emulate:tokens=7"}],
    )
    completion = response.parse()
    assert completion.choices[0].message.content is not None
    assert len(completion.choices[0].message.content.split()) == 7
    usage = completion.usage
    assert usage is not None and usage.completion_tokens_details is not None
    thoughts = usage.completion_tokens_details.reasoning_tokens or 0
    assert thoughts > 0 and usage.completion_tokens == 7 + thoughts
    expected = cost_of(
        gateway, FLASH, {"prompt": usage.prompt_tokens, "completion": usage.completion_tokens}
    )
    assert micros(response.headers["x-gateway-cost-usd"]) == expected
    assert charged(ledger, "gemma", before) == expected


def test_a_gemini_prompt_past_the_catalogs_line_pays_its_long_context_prices(
    gateway: LocalGateway, ledger: WorkerTestHooks
):
    """Gemini 2.5 Pro from the catalog: $1.25 / $10 per million up to 200,000 input tokens,
    $2.50 / $15 for every token of a request above (thinking billed as output); a short and a
    ~212,000-token request through the chat route, header equal to the ledger's delta."""
    pro = "google-ai-studio/gemini-2.5-pro"
    for words, long in ((300, False), (170_000, True)):
        before = row(ledger, "gemma")
        text = f"Read this {time.time_ns()}: " + "word " * words + " emulate:tokens=9"
        response = chat(gateway).chat.completions.with_raw_response.create(
            model=pro, messages=[{"role": "user", "content": text}], max_tokens=64
        )
        usage = response.parse().usage
        assert usage is not None
        assert (usage.prompt_tokens > 200_000) == long
        rate_in, rate_out = (2_500_000, 15_000_000) if long else (1_250_000, 10_000_000)
        numerator = usage.prompt_tokens * rate_in + usage.completion_tokens * rate_out
        expected = cost_of(
            gateway, pro, {"prompt": usage.prompt_tokens, "completion": usage.completion_tokens}
        )
        assert expected == -(-numerator // 1_000_000), "the catalog's rates, rounded up once"
        assert micros(response.headers["x-gateway-cost-usd"]) == expected
        assert charged(ledger, "gemma", before) == expected


def test_a_stream_from_gemini_arrives_in_chunks_and_is_metered(
    gateway: LocalGateway, ledger: WorkerTestHooks
):
    before = row(ledger, "gemma")
    stream = chat(gateway).chat.completions.create(
        model=FLASH,
        messages=[{"role": "user", "content": f"Stream {time.time_ns()} emulate:tokens=9"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    pieces: list[str] = []
    usage = None
    finish = None
    for chunk in stream:
        if chunk.usage:
            usage = chunk.usage
        for choice in chunk.choices:
            if choice.delta.content:
                pieces.append(choice.delta.content)
            finish = choice.finish_reason or finish
    assert len("".join(pieces).split()) == 9 and len(pieces) >= 9 and finish == "stop"
    assert usage is not None
    expected = cost_of(
        gateway, FLASH, {"prompt": usage.prompt_tokens, "completion": usage.completion_tokens}
    )
    assert charged(ledger, "gemma", before) == expected


def test_a_tool_round_trip_with_gemini_3_keeps_its_thought_signature(gateway: LocalGateway):
    """Gemini 3 refuses a call sent back without its signature: the tool call id carries it."""
    client = chat(gateway, "two")
    messages: list[Any] = [{"role": "user", "content": "Weather in Oslo?"}]
    first = client.chat.completions.create(
        model=PRO_3, messages=messages, tools=[WEATHER], tool_choice="required"
    )
    (call,) = first.choices[0].message.tool_calls or []
    assert first.choices[0].finish_reason == "tool_calls"
    assert call.function.name == "get_weather"  # type: ignore[union-attr]
    assert "__thought__" in call.id
    messages.append(first.choices[0].message.model_dump(exclude_none=True))
    messages.append({"role": "tool", "tool_call_id": call.id, "content": '{"celsius": 4}'})
    second = client.chat.completions.create(model=PRO_3, messages=messages, tools=[WEATHER])
    assert second.choices[0].finish_reason == "stop"
    assert second.choices[0].message.content
    # the same conversation with the signature stripped is Gemini's 400, passed on
    stripped = call.id.split("__thought__")[0]
    messages[1]["tool_calls"][0]["id"] = stripped
    messages[2]["tool_call_id"] = stripped
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(model=PRO_3, messages=messages, tools=[WEATHER])
    assert "thought_signature" in str(refused.value)


def test_structured_output_from_gemini_follows_the_schema(gateway: LocalGateway):
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string"}, "rank": {"type": "integer"}},
        "required": ["city", "rank"],
        "additionalProperties": False,
    }
    completion = chat(gateway).chat.completions.create(
        model="google-ai-studio/gemini-2.5-pro",
        messages=[{"role": "user", "content": "A city and its rank"}],
        response_format={"type": "json_schema", "json_schema": {"name": "city", "schema": schema}},
    )
    value = json.loads(completion.choices[0].message.content or "")
    assert isinstance(value["city"], str) and isinstance(value["rank"], int)


def test_a_repeated_long_prefix_is_read_from_gemini_s_cache_and_priced_so(
    gateway: LocalGateway, ledger: WorkerTestHooks
):
    """Gemini's implicit caching: the second request's prefix comes back as
    cachedContentTokenCount (part of the prompt), priced at the cached-input price."""
    manual = f"Manual {time.time_ns()}: " + "clause " * 1500
    messages: list[Any] = [
        {"role": "system", "content": manual},
        {"role": "user", "content": "Summarise emulate:tokens=4"},
    ]
    client = chat(gateway, "two")
    client.chat.completions.create(model=FLASH, messages=messages)
    before = row(ledger, "gino")
    response = client.chat.completions.with_raw_response.create(model=FLASH, messages=messages)
    usage = response.parse().usage
    assert usage is not None and usage.prompt_tokens_details is not None
    cached = usage.prompt_tokens_details.cached_tokens or 0
    assert cached > 1000 and cached < usage.prompt_tokens
    expected = cost_of(
        gateway,
        FLASH,
        {"prompt": usage.prompt_tokens, "completion": usage.completion_tokens, "cached": cached},
    )
    uncached = cost_of(
        gateway, FLASH, {"prompt": usage.prompt_tokens, "completion": usage.completion_tokens}
    )
    assert expected < uncached
    assert micros(response.headers["x-gateway-cost-usd"]) == expected
    assert charged(ledger, "gino", before) == expected


def test_gemini_s_errors_reach_the_client_in_openai_s_shape(
    gateway: LocalGateway, upstream: Emulator
):
    upstream.fault(match={"model": FLASH}, status=429)
    with pytest.raises(openai.RateLimitError):
        chat(gateway).chat.completions.create(
            model=FLASH, messages=[{"role": "user", "content": "hi"}]
        )
    with pytest.raises(openai.BadRequestError) as refused:
        chat(gateway).chat.completions.create(
            model=FLASH,
            messages=[
                {
                    "role": "user",
                    "content": [
                        {"type": "image_url", "image_url": {"url": "https://x.test/a.png"}}
                    ],
                }
            ],
        )
    assert "base64 data URL" in str(refused.value)


# ---------------------------------------------------------------- Gemini's own API, through the gateway


def native(gateway: LocalGateway, who: str = "main", version: str = "v1") -> genai.Client:
    """google-genai with the gateway's URL and a gateway key, as a Gemini client is configured
    (the SDK's own default API version, v1, unless told)."""
    return genai.Client(
        api_key=key(f"key_gem_{who}"),
        http_options=genai_types.HttpOptions(base_url=gateway.worker_url, api_version=version),
    )


def test_google_genai_generates_through_the_gateway_and_is_charged_its_usage(
    gateway: LocalGateway, ledger: WorkerTestHooks, upstream: Emulator
):
    """The SDK unchanged (v1 and v1beta), the gateway key as x-goog-api-key: the answer as
    Gemini wrote it, charged from its usageMetadata (thinking as output), the client's key never
    upstream, the Worker's Google key instead."""
    for version in ("v1", "v1beta"):
        before = row(ledger, "gemma")
        client = native(gateway, version=version)
        answer = client.models.generate_content(
            model="gemini-2.5-flash", contents=f"Hello {time.time_ns()} emulate:tokens=6"
        )
        assert answer.text is not None and len(answer.text.split()) == 6
        usage = answer.usage_metadata
        assert usage is not None and usage.thoughts_token_count
        expected = cost_of(
            gateway,
            FLASH,
            {
                "prompt": usage.prompt_token_count or 0,
                "completion": (usage.candidates_token_count or 0) + usage.thoughts_token_count,
            },
        )
        assert charged(ledger, "gemma", before) == expected
    (logged,) = [
        e for e in upstream.requests() if e["path"].endswith("gemini-2.5-flash:generateContent")
    ][-1:]
    assert (
        logged["headers"]["x-goog-api-key"] == gateway.secrets.provider_api_keys["google-ai-studio"]
    )
    assert key("key_gem_main") not in json.dumps(logged)
    # the stack's output cap, set where the client gave none (Gemini counts thinking in it)
    assert logged["body"]["generationConfig"]["maxOutputTokens"] == 4096


def test_google_genai_streams_through_the_gateway_chunk_by_chunk(
    gateway: LocalGateway, ledger: WorkerTestHooks
):
    before = row(ledger, "gemma")
    client = native(gateway)
    chunks = list(
        client.models.generate_content_stream(
            model="gemini-2.5-flash",
            contents=f"Count {time.time_ns()} emulate:tokens=8",
            config=genai_types.GenerateContentConfig(max_output_tokens=500),
        )
    )
    assert len(chunks) >= 8
    assert len("".join(c.text or "" for c in chunks).split()) == 8
    final = chunks[-1].usage_metadata
    assert final is not None and final.candidates_token_count == 8
    expected = cost_of(
        gateway,
        FLASH,
        {
            "prompt": final.prompt_token_count or 0,
            "completion": 8 + (final.thoughts_token_count or 0),
        },
    )
    assert charged(ledger, "gemma", before) == expected


def test_google_genai_calls_functions_and_counts_tokens_through_the_gateway(
    gateway: LocalGateway, ledger: WorkerTestHooks
):
    client = native(gateway, "two", "v1beta")
    declaration = genai_types.FunctionDeclaration(
        name="get_weather",
        description="The weather of a city",
        parameters_json_schema={
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    )
    config = genai_types.GenerateContentConfig(
        tools=[genai_types.Tool(function_declarations=[declaration])],
        tool_config=genai_types.ToolConfig(
            function_calling_config=genai_types.FunctionCallingConfig(mode="ANY")
        ),
    )
    first = client.models.generate_content(
        model="gemini-3-pro-preview", contents="Weather in Rome?", config=config
    )
    (call,) = first.function_calls or []
    assert call.name == "get_weather"
    # the turn goes back with its signature, as the SDK keeps it: Gemini 3 answers
    history = [
        genai_types.Content(role="user", parts=[genai_types.Part(text="Weather in Rome?")]),
        first.candidates[0].content,  # type: ignore[index]
        genai_types.Content(
            role="user",
            parts=[genai_types.Part.from_function_response(name="get_weather", response={"c": 19})],
        ),
    ]
    second = client.models.generate_content(
        model="gemini-3-pro-preview",
        contents=history,  # type: ignore[arg-type]
        config=genai_types.GenerateContentConfig(
            tools=[genai_types.Tool(function_declarations=[declaration])]
        ),
    )
    assert second.text
    before = row(ledger, "gino")
    counted = client.models.count_tokens(model="gemini-2.5-flash", contents="Count me")
    assert counted.total_tokens and counted.total_tokens > 0
    time.sleep(0.3)
    assert row(ledger, "gino")["requests"] == before["requests"], "countTokens is never charged"


def test_gemini_clients_get_google_shaped_refusals(gateway: LocalGateway):
    """A wrong key, a model the stack does not offer, a stream without alt=sse, objects of the
    gateway's own Google account: each refused in Google's error shape, nothing sent."""
    wrong = genai.Client(
        api_key="gw_live_" + "0" * 40,
        http_options=genai_types.HttpOptions(base_url=gateway.worker_url),
    )
    with pytest.raises(genai_errors.ClientError) as unauthorized:
        wrong.models.generate_content(model="gemini-2.5-flash", contents="hi")
    assert unauthorized.value.code == 401 and unauthorized.value.status == "UNAUTHENTICATED"
    client = native(gateway)
    with pytest.raises(genai_errors.ClientError) as unknown:
        client.models.generate_content(model="gemini-1.0-ultra", contents="hi")
    assert unknown.value.code == 404 and unknown.value.status == "NOT_FOUND"
    headers = {"x-goog-api-key": key("key_gem_main")}
    body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    plain = httpx.post(
        f"{gateway.worker_url}/v1beta/models/gemini-2.5-flash:streamGenerateContent",
        json=body,
        headers=headers,
        timeout=30,
    )
    assert plain.status_code == 400
    assert plain.json()["error"]["status"] == "INVALID_ARGUMENT"
    assert "alt=sse" in plain.json()["error"]["message"]
    for extra, where in (
        ({"cachedContent": "cachedContents/abc123"}, "cachedContent"),
        (
            {
                "contents": [
                    {
                        "role": "user",
                        "parts": [{"fileData": {"mimeType": "video/mp4", "fileUri": "files/x"}}],
                    }
                ]
            },
            "fileData",
        ),
    ):
        refused = httpx.post(
            f"{gateway.worker_url}/v1beta/models/gemini-2.5-flash:generateContent",
            json={**body, **extra},
            headers=headers,
            timeout=30,
        )
        assert refused.status_code == 400 and where in refused.json()["error"]["message"]


def test_the_model_list_shows_gemini_s_own_routes(gateway: LocalGateway):
    listed = httpx.get(
        f"{gateway.worker_url}/v1/models",
        headers={"authorization": f"Bearer {key('key_gem_main')}"},
        timeout=30,
    ).json()
    (flash,) = [m for m in listed["data"] if m["id"] == FLASH]
    assert "/v1/chat/completions" in flash["routes"]
    assert "/v1beta/models/{model}:{method}" in flash["routes"]
    assert "/google-ai-studio/v1beta/models/{model}:{method}" in flash["routes"]


def test_google_search_grounding_is_priced_or_refused(gateway: LocalGateway, upstream: Emulator):
    """Google bills Search grounding per request, beyond tokens, and the stack has no price for
    it: a request offering it is refused before anything is sent (the org allows no unpriced
    tools); code execution, billed as tokens, is served."""
    headers = {"x-goog-api-key": key("key_gem_main")}
    url = f"{gateway.worker_url}/v1beta/models/gemini-2.5-pro:generateContent"
    body: dict[str, Any] = {
        "contents": [{"role": "user", "parts": [{"text": "News? emulate:tool=none"}]}]
    }
    sent = len(upstream.requests())
    for tool in ({"googleSearch": {}}, {"google_search_retrieval": {}}):
        refused = httpx.post(url, json={**body, "tools": [tool]}, headers=headers, timeout=30)
        assert refused.status_code == 400, refused.text
        assert refused.json()["error"]["status"] == "INVALID_ARGUMENT"
        assert "grounding" in refused.json()["error"]["message"]
    assert len(upstream.requests()) == sent
    served = httpx.post(
        url, json={**body, "tools": [{"codeExecution": {}}]}, headers=headers, timeout=30
    )
    assert served.status_code == 200, served.text
