"""Anthropic Messages in the emulator: tool use, prompt caching and count_tokens.

Tools [{name, input_schema}] get a tool_use answer (input generated from the schema, valid
against it) unless the last user turn returns a tool_result; streams follow cf-contract-2
2.3. Blocks with cache_control report cache_creation_input_tokens the first time this gateway
sees that prefix and cache_read_input_tokens afterwards; input_tokens excludes both.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import anthropic
import httpx
import jsonschema
import pytest

from tests.emulator_support import (
    ACCOUNT,
    ANTHROPIC_KEY,
    CLAUDE,
    TOKEN,
    WORD,
    emulator_fixtures,
    sse_data,
)

GATEWAY = "claude-gw"
OTHER_GATEWAY = "claude-gw-2"
CONFIG: dict[str, Any] = {
    "accountId": ACCOUNT,
    "gateways": {
        GATEWAY: {"authentication": True, "token": TOKEN},
        OTHER_GATEWAY: {"authentication": True, "token": TOKEN},
    },
    "providerKeys": {"anthropic": ANTHROPIC_KEY},
}
TOOL_ID = re.compile(r"^toolu_01[0-9A-Za-z]{22}$")
WEATHER_SCHEMA = {
    "type": "object",
    "properties": {
        "location": {"type": "string", "description": "City and state"},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
        "when": {"type": "string", "format": "date"},
    },
    "required": ["location"],
}
WEATHER = {"name": "get_weather", "description": "Current weather", "input_schema": WEATHER_SCHEMA}
TIME = {
    "name": "get_time",
    "input_schema": {
        "type": "object",
        "properties": {"tz": {"type": "string"}},
        "required": ["tz"],
    },
}
SYSTEM_TEXT = "You are a meticulous assistant. " * 20


emulator_url, http = emulator_fixtures(CONFIG, "claude")


def claude_client(emulator_url: str, gateway: str = GATEWAY) -> anthropic.Anthropic:
    return anthropic.Anthropic(
        base_url=f"{emulator_url}/v1/{ACCOUNT}/{gateway}/anthropic",
        api_key=ANTHROPIC_KEY,
        default_headers={"cf-aig-authorization": f"Bearer {TOKEN}"},
        max_retries=0,
    )


@pytest.fixture()
def claude(emulator_url: str, http: httpx.Client) -> anthropic.Anthropic:
    return claude_client(emulator_url)


def post(
    http: httpx.Client, body: dict[str, Any], path: str = "v1/messages", **headers: str
) -> httpx.Response:
    return http.post(
        f"/v1/{ACCOUNT}/{GATEWAY}/anthropic/{path}",
        json=body,
        headers={
            "cf-aig-authorization": f"Bearer {TOKEN}",
            "x-api-key": ANTHROPIC_KEY,
            "anthropic-version": "2023-06-01",
            **headers,
        },
    )


def compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def byte_tokens(text: str) -> int:
    return math.ceil(len(text.encode("utf-8")) / 4)


def prompt_tokens(*texts: str, tools: list[dict[str, Any]] | None = None) -> int:
    total = 3 + sum(4 + byte_tokens(t) for t in texts)
    return total + (4 + byte_tokens(compact(tools)) if tools else 0)


def request(content: Any = "What's the weather in Paris?", **extra: Any) -> dict[str, Any]:
    return {
        "model": CLAUDE,
        "max_tokens": 1024,
        "messages": [{"role": "user", "content": content}],
        **extra,
    }


def cached_system(ttl: str | None = None) -> list[dict[str, Any]]:
    control: dict[str, Any] = {"type": "ephemeral"}
    if ttl:
        control["ttl"] = ttl
    return [{"type": "text", "text": SYSTEM_TEXT, "cache_control": control}]


# --- tool use ----------------------------------------------------------------------------------


def test_tool_use_message(claude: anthropic.Anthropic) -> None:
    """Tools given: one tool_use block with input valid against input_schema, stop_reason tool_use."""
    message = claude.messages.create(**request(tools=[WEATHER, TIME]))
    assert message.stop_reason == "tool_use"
    [block] = message.content
    assert block.type == "tool_use"
    assert TOOL_ID.match(block.id) and block.name == "get_weather"
    assert isinstance(block.input, dict)
    jsonschema.validate(block.input, WEATHER_SCHEMA, format_checker=jsonschema.FormatChecker())
    assert message.usage.output_tokens == byte_tokens(compact(block.input))
    assert message.usage.input_tokens == prompt_tokens(
        "What's the weather in Paris?", tools=[WEATHER, TIME]
    )


def test_tool_choice(claude: anthropic.Anthropic) -> None:
    """tool picks the named tool, any and auto the first, none answers in words."""
    tools: list[Any] = [WEATHER, TIME]
    cases: list[tuple[Any, str]] = [
        ({"type": "tool", "name": "get_time"}, "get_time"),
        ({"type": "any"}, "get_weather"),
        ({"type": "auto"}, "get_weather"),
    ]
    for choice, name in cases:
        block = claude.messages.create(**request(tools=tools, tool_choice=choice)).content[0]
        assert block.type == "tool_use" and block.name == name
    none = claude.messages.create(**request(tools=tools, tool_choice={"type": "none"}))
    assert none.stop_reason == "end_turn" and none.content[0].type == "text"


def test_round_trip_with_tool_result(claude: anthropic.Anthropic) -> None:
    """tool_use -> tool_result -> words; tool blocks count toward input tokens by their JSON/text."""
    first = claude.messages.create(**request(tools=[WEATHER]))
    block = first.content[0]
    assert block.type == "tool_use"
    messages: list[Any] = [
        {"role": "user", "content": "What's the weather in Paris?"},
        {"role": "assistant", "content": [block.model_dump()]},
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": block.id, "content": "18C, sunny"}],
        },
    ]
    final = claude.messages.create(
        model=CLAUDE, max_tokens=1024, tools=[WEATHER], messages=messages
    )
    assert final.stop_reason == "end_turn"
    text = final.content[0]
    assert text.type == "text" and len(text.text.split(" ")) == 12
    assert all(WORD.match(w) for w in text.text.split(" "))
    assert final.usage.input_tokens == prompt_tokens(
        "What's the weather in Paris?", compact(block.input), "18C, sunny", tools=[WEATHER]
    )


def test_tool_result_with_text_blocks_counts_their_text(http: httpx.Client) -> None:
    """A tool_result whose content is text blocks counts those texts."""
    body = request(
        [
            {
                "type": "tool_result",
                "tool_use_id": "toolu_x",
                "content": [{"type": "text", "text": "part one "}, {"type": "text", "text": "two"}],
            }
        ],
        tools=[WEATHER],
    )
    usage = post(http, body).json()["usage"]
    assert usage["input_tokens"] == prompt_tokens("part one two", tools=[WEATHER])


def test_tool_use_stream_event_sequence(http: httpx.Client, claude: anthropic.Anthropic) -> None:
    """message_start, tool_use block start, input_json_delta pieces ("" first), stop, delta, stop."""
    body = request(tools=[WEATHER])
    full = post(http, body).json()
    response = post(http, {**body, "stream": True})
    events = [line[7:] for line in response.text.split("\n") if line.startswith("event: ")]
    payloads = [json.loads(d) for d in sse_data(response.text)]
    assert [p["type"] for p in payloads] == events
    assert events[:3] == ["message_start", "content_block_start", "ping"]
    assert events[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    deltas = payloads[3:-3]
    assert len(deltas) >= 3 and all(p["type"] == "content_block_delta" for p in deltas)
    start = payloads[1]["content_block"]
    assert start["type"] == "tool_use" and start["input"] == {} and start["name"] == "get_weather"
    assert TOOL_ID.match(start["id"])
    partials = [p["delta"]["partial_json"] for p in deltas]
    assert all(p["delta"]["type"] == "input_json_delta" for p in deltas)
    assert partials[0] == ""
    assert json.loads("".join(partials)) == full["content"][0]["input"]
    delta = payloads[-2]
    assert delta["delta"]["stop_reason"] == "tool_use"
    assert delta["usage"]["output_tokens"] == full["usage"]["output_tokens"]
    assert payloads[0]["message"]["usage"]["input_tokens"] == full["usage"]["input_tokens"]
    with claude.messages.stream(**body) as stream:
        final = stream.get_final_message()
    assert final.content[0].type == "tool_use"
    assert final.content[0].input == full["content"][0]["input"]
    assert final.stop_reason == "tool_use"


def test_tool_use_cut_by_max_tokens(http: httpx.Client) -> None:
    """max_tokens below the input's tokens: stop_reason max_tokens, output_tokens = max_tokens."""
    data = post(http, request(tools=[WEATHER], max_tokens=2)).json()
    assert data["stop_reason"] == "max_tokens" and data["usage"]["output_tokens"] == 2
    assert data["content"][0]["type"] == "tool_use"


def test_server_tools_are_not_called(http: httpx.Client) -> None:
    """Tools with a server type (web search, ...) are accepted but never called."""
    data = post(http, request(tools=[{"type": "web_search_20250305", "name": "web_search"}])).json()
    assert data["stop_reason"] == "end_turn" and data["content"][0]["type"] == "text"


def test_tool_validation_errors(http: httpx.Client) -> None:
    """Anthropic's 400 invalid_request_error for bad tools and tool_choice."""
    bodies = [
        request(tools=[{"name": "x"}]),
        request(tools={"name": "x"}),
        request(tools=[WEATHER], tool_choice={"type": "tool", "name": "nope"}),
        request(tools=[WEATHER], tool_choice={"type": "sometimes"}),
        request(tool_choice={"type": "any"}),
    ]
    for body in bodies:
        response = post(http, body)
        assert response.status_code == 400, body
        assert response.json()["type"] == "error"
        assert response.json()["error"]["type"] == "invalid_request_error"


# --- prompt caching ----------------------------------------------------------------------------


def test_usage_always_has_cache_fields(http: httpx.Client) -> None:
    """Without cache_control both cache fields are present and 0."""
    usage = post(http, request("hi")).json()["usage"]
    assert usage["cache_creation_input_tokens"] == 0 and usage["cache_read_input_tokens"] == 0
    assert usage["input_tokens"] == prompt_tokens("hi")


def test_cache_created_then_read(claude: anthropic.Anthropic, http: httpx.Client) -> None:
    """First time a prefix is seen it is created, later identical prefixes are read."""
    prefix = 3 + 4 + byte_tokens(SYSTEM_TEXT)
    total = prompt_tokens(SYSTEM_TEXT, "hi")
    first = claude.messages.create(**request("hi", system=cached_system()))
    assert first.usage.cache_creation_input_tokens == prefix
    assert first.usage.cache_read_input_tokens == 0
    assert first.usage.input_tokens == total - prefix
    assert first.usage.cache_creation is not None
    assert first.usage.cache_creation.ephemeral_5m_input_tokens == prefix
    second = claude.messages.create(**request("a different question", system=cached_system()))
    assert second.usage.cache_creation_input_tokens == 0
    assert second.usage.cache_read_input_tokens == prefix
    assert second.usage.input_tokens == prompt_tokens(SYSTEM_TEXT, "a different question") - prefix
    # The reply does not depend on caching.
    again = claude.messages.create(**request("hi", system=cached_system()))
    assert again.content == first.content and again.usage.cache_read_input_tokens == prefix
    http.post("/__emulator/reset").raise_for_status()
    after_reset = claude.messages.create(**request("hi", system=cached_system()))
    assert after_reset.usage.cache_creation_input_tokens == prefix


def test_cache_is_per_gateway_and_per_model(emulator_url: str, http: httpx.Client) -> None:
    """Another gateway, or another model, has not seen the prefix."""
    body = request("hi", system=cached_system())
    here = claude_client(emulator_url).messages.create(**body)
    there = claude_client(emulator_url, OTHER_GATEWAY).messages.create(**body)
    assert here.usage.cache_creation_input_tokens == there.usage.cache_creation_input_tokens > 0
    other_model = claude_client(emulator_url).messages.create(
        **{**body, "model": "claude-haiku-4-5"}
    )
    assert other_model.usage.cache_creation_input_tokens > 0


def test_changed_prefix_is_created_again(claude: anthropic.Anthropic) -> None:
    """A change before the breakpoint is a new prefix; cache_control itself is not part of it."""
    claude.messages.create(**request("hi", system=cached_system()))
    changed: list[Any] = [{**cached_system()[0], "text": SYSTEM_TEXT + "!"}]
    assert (
        claude.messages.create(**request("hi", system=changed)).usage.cache_creation_input_tokens
        > 0
    )
    ttl = claude.messages.create(**request("hi", system=cached_system("1h")))
    assert ttl.usage.cache_read_input_tokens == 3 + 4 + byte_tokens(SYSTEM_TEXT)


def test_one_hour_ttl_is_reported(claude: anthropic.Anthropic) -> None:
    """cache_control ttl 1h: the creation is reported as ephemeral_1h_input_tokens."""
    usage = claude.messages.create(**request("hi", system=cached_system("1h"))).usage
    assert usage.cache_creation is not None
    assert usage.cache_creation.ephemeral_1h_input_tokens == usage.cache_creation_input_tokens > 0
    assert usage.cache_creation.ephemeral_5m_input_tokens == 0


def test_growing_conversation_reads_earlier_breakpoint(http: httpx.Client) -> None:
    """With several breakpoints: read the longest cached prefix, create the rest."""

    def turn(text: str) -> dict[str, Any]:
        return {
            "role": "user",
            "content": [{"type": "text", "text": text, "cache_control": {"type": "ephemeral"}}],
        }

    first_turn = "First question, with some context " * 5
    one = [turn(first_turn)]
    body = {"model": CLAUDE, "max_tokens": 100, "system": cached_system(), "messages": one}
    first = post(http, body).json()["usage"]
    prefix_one = prompt_tokens(SYSTEM_TEXT, first_turn)
    assert first["cache_creation_input_tokens"] == prefix_one and first["input_tokens"] == 0
    two = [*one, {"role": "assistant", "content": "ok"}, turn("Second")]
    second = post(http, {**body, "messages": two}).json()["usage"]
    total = prompt_tokens(SYSTEM_TEXT, first_turn, "ok", "Second")
    assert second["cache_read_input_tokens"] == prefix_one
    assert second["cache_creation_input_tokens"] == total - prefix_one
    assert second["input_tokens"] == 0


def test_cache_control_on_tools_and_mid_message(http: httpx.Client) -> None:
    """Tools come first in the prefix; a breakpoint inside a message counts its text so far."""
    tools: list[Any] = [WEATHER, {**TIME, "cache_control": {"type": "ephemeral"}}]
    usage = post(http, request("hi", tools=tools)).json()["usage"]
    assert usage["cache_creation_input_tokens"] == 3 + 4 + byte_tokens(compact(tools))
    blocks = [
        {"type": "text", "text": "alpha " * 10, "cache_control": {"type": "ephemeral"}},
        {"type": "text", "text": "beta"},
    ]
    inside = post(http, request(blocks)).json()["usage"]
    assert inside["cache_creation_input_tokens"] == 3 + 4 + byte_tokens("alpha " * 10)
    assert inside["input_tokens"] == prompt_tokens("alpha " * 10 + "beta") - (
        3 + 4 + byte_tokens("alpha " * 10)
    )


def test_stream_message_start_carries_cache_usage(http: httpx.Client) -> None:
    """message_start's usage has the cache fields; a cached stream reads the prefix."""
    body = {**request("hi", system=cached_system()), "stream": True}
    first = json.loads(sse_data(post(http, body).text)[0])["message"]["usage"]
    second = json.loads(sse_data(post(http, body).text)[0])["message"]["usage"]
    prefix = 3 + 4 + byte_tokens(SYSTEM_TEXT)
    assert (first["cache_creation_input_tokens"], first["cache_read_input_tokens"]) == (prefix, 0)
    assert (second["cache_creation_input_tokens"], second["cache_read_input_tokens"]) == (0, prefix)
    assert second["input_tokens"] == prompt_tokens(SYSTEM_TEXT, "hi") - prefix


# --- count_tokens ------------------------------------------------------------------------------


def test_count_tokens(claude: anthropic.Anthropic) -> None:
    """count_tokens answers {input_tokens} by the same count, tools and system included."""
    counted = claude.messages.count_tokens(
        model=CLAUDE,
        system="Be brief.",
        tools=[WEATHER],
        messages=[{"role": "user", "content": "Hello"}],
    )
    assert counted.input_tokens == prompt_tokens("Be brief.", "Hello", tools=[WEATHER])
    plain = claude.messages.count_tokens(
        model=CLAUDE, messages=[{"role": "user", "content": "Hello"}]
    )
    message = claude.messages.create(
        model=CLAUDE, max_tokens=10, messages=[{"role": "user", "content": "Hello"}]
    )
    assert plain.input_tokens == message.usage.input_tokens


def test_count_tokens_does_not_touch_the_cache(claude: anthropic.Anthropic) -> None:
    """Counting a prompt with cache_control does not create the prefix."""
    body = request("hi", system=cached_system())
    del body["max_tokens"]
    claude.messages.count_tokens(**body)
    created = claude.messages.create(**request("hi", system=cached_system()))
    assert created.usage.cache_creation_input_tokens > 0


def test_count_tokens_errors_in_anthropic_shape(http: httpx.Client) -> None:
    """count_tokens validates like messages (model, messages) but needs no max_tokens."""
    ok = post(
        http,
        {"model": CLAUDE, "messages": [{"role": "user", "content": "x"}]},
        "v1/messages/count_tokens",
    )
    assert ok.status_code == 200 and set(ok.json()) == {"input_tokens"}
    bad = post(http, {"model": CLAUDE}, "v1/messages/count_tokens")
    assert bad.status_code == 400 and bad.json()["error"]["type"] == "invalid_request_error"
    wrong_key = http.post(
        f"/v1/{ACCOUNT}/{GATEWAY}/anthropic/v1/messages/count_tokens",
        json={"model": CLAUDE, "messages": [{"role": "user", "content": "x"}]},
        headers={
            "cf-aig-authorization": f"Bearer {TOKEN}",
            "x-api-key": "nope",
            "anthropic-version": "2023-06-01",
        },
    )
    assert (
        wrong_key.status_code == 401 and wrong_key.json()["error"]["type"] == "authentication_error"
    )


# --- what the API takes and refuses (providers/anthropic-request.ts) ---------------------------


def refusal(response: httpx.Response) -> str:
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error"
    message: str = body["error"]["message"]
    return message


def test_unknown_fields_and_betas_are_refused_in_anthropics_words(http: httpx.Client) -> None:
    """A field the API does not know: `<field>: Extra inputs are not permitted`; a beta flag it
    does not know: its header error. The fields and betas current clients send are taken."""
    assert refusal(post(http, request(wizardry=True))) == (
        "wizardry: Extra inputs are not permitted"
    )
    message = refusal(post(http, request(), **{"anthropic-beta": "made-up-2099-01-01"}))
    assert "`made-up-2099-01-01`" in message and "anthropic-beta" in message
    claude_code = request(
        model="claude-opus-5-5",
        thinking={"type": "adaptive", "display": "omitted"},
        context_management={"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
        output_config={"effort": "medium"},
        metadata={"user_id": "u"},
    )
    betas = "claude-code-20250219,interleaved-thinking-2025-05-14,context-management-2025-06-27"
    assert post(http, claude_code, **{"anthropic-beta": betas}).status_code == 200


MID_SYSTEM = [
    {"role": "user", "content": "say hi"},
    {"role": "system", "content": [{"type": "text", "text": "# Environment"}]},
]


def test_a_mid_conversation_system_message_on_the_models_that_take_one(http: httpx.Client) -> None:
    """Opus 4.8 and the Claude 5 models take a `system` message inside `messages`; older ones
    refuse its role."""
    for model in ("claude-opus-4-8", "claude-opus-5-5", "claude-sonnet-5-5", "claude-haiku-5-5"):
        response = post(http, request(model=model, messages=MID_SYSTEM))
        assert response.status_code == 200, (model, response.text)
    message = refusal(post(http, request(model="claude-sonnet-4-6", messages=MID_SYSTEM)))
    assert message == "messages.1.role: Input should be 'user' or 'assistant'"


@pytest.mark.parametrize(
    ("messages", "rule"),
    [
        ([{"role": "system", "content": "x"}, {"role": "user", "content": "hi"}], "first"),
        (
            [
                {"role": "user", "content": "hi"},
                {"role": "system", "content": "a"},
                {"role": "system", "content": "b"},
            ],
            "consecutive",
        ),
        (
            [
                {"role": "user", "content": "hi"},
                {"role": "assistant", "content": "hello"},
                {"role": "system", "content": "a"},
            ],
            "must follow a user message",
        ),
        (
            [
                {"role": "user", "content": "hi"},
                {"role": "system", "content": "a"},
                {"role": "user", "content": "again"},
            ],
            "followed by an assistant",
        ),
        (
            [
                {"role": "user", "content": "hi"},
                {"role": "system", "content": [{"type": "image", "source": {"type": "url"}}]},
            ],
            "text blocks only",
        ),
    ],
    ids=["first", "two in a row", "after an assistant turn", "before a user turn", "an image"],
)
def test_where_a_system_message_may_stand(
    http: httpx.Client, messages: list[dict[str, Any]], rule: str
) -> None:
    """The placement rules of mid-conversation system messages, each a 400."""
    assert rule in refusal(post(http, request(model="claude-opus-5-5", messages=messages)))


def test_sampling_thinking_and_forced_tools_follow_each_models_rules(http: httpx.Client) -> None:
    """Older models take temperature in [0, 1]; Claude 5 models only the default; Opus 5 and
    Sonnet 5.5 take adaptive thinking only and no forced tool; no model forces a tool while it
    thinks."""
    assert "less than or equal to 1" in refusal(post(http, request(temperature=1.5)))
    assert post(http, request(temperature=0.3)).status_code == 200
    assert "default sampling" in refusal(
        post(http, request(model="claude-sonnet-5-5", temperature=0.3))
    )
    enabled = {"type": "enabled", "budget_tokens": 2048}
    assert "adaptive" in refusal(post(http, request(model="claude-opus-5-5", thinking=enabled)))
    assert post(http, request(thinking=enabled, max_tokens=4096)).status_code == 200
    assert "greater than" in refusal(post(http, request(thinking=enabled, max_tokens=2048)))
    assert "budget_tokens" in refusal(
        post(http, request(thinking={"type": "enabled", "budget_tokens": 10}))
    )
    forced = {"tools": [WEATHER], "tool_choice": {"type": "any"}}
    assert post(http, request(**forced)).status_code == 200
    assert "not supported for this model" in refusal(
        post(http, request(model="claude-sonnet-5-5", **forced))
    )
    assert refusal(post(http, request(thinking=enabled, max_tokens=4096, **forced))) == (
        "Thinking may not be enabled when tool_choice forces tool use."
    )


CITY = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "population": {"type": "integer", "minimum": 0},
        "landmarks": {"type": "array", "items": {"type": "string"}, "minItems": 1},
    },
    "required": ["name", "population", "landmarks"],
    "additionalProperties": False,
}


def test_output_config_format_answers_a_document_of_the_schema(http: httpx.Client) -> None:
    """output_config.format: the answer's text is JSON valid against the schema, streamed or not;
    the stop reason is end_turn and the output tokens are the document's."""
    body = request(
        "Describe Paris.", output_config={"format": {"type": "json_schema", "schema": CITY}}
    )
    data = post(http, body).json()
    assert data["stop_reason"] == "end_turn" and data["content"][0]["type"] == "text"
    document = json.loads(data["content"][0]["text"])
    jsonschema.validate(document, CITY)
    assert data["usage"]["output_tokens"] == byte_tokens(data["content"][0]["text"])
    streamed = post(http, {**body, "stream": True})
    events = [json.loads(data) for data in sse_data(streamed.text)]
    text = "".join(e["delta"]["text"] for e in events if e.get("type") == "content_block_delta")
    assert json.loads(text) == document
    bad = request(output_config={"format": {"type": "yaml"}})
    assert "json_schema" in refusal(post(http, bad))
