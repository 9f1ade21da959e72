"""OpenAI's Responses API in the emulator: POST {base}/openai/responses and /openai/v1/responses.

Wire-level checks (httpx: the response object, the SSE event sequence, OpenAI's 400s) and
SDK-level checks (the official `openai` SDK: create, stream=True, the stream helper, parse with a
pydantic text_format, pydantic function tools), the per-gateway response store behind
previous_response_id and its token accounting, reasoning models, max_output_tokens, faults
mid-stream and the gateway pipeline (request log, cache, custom cost, Universal).
"""

from __future__ import annotations

import json
import math
import re
import time
from typing import Any, Literal

import httpx
import jsonschema
import openai
import pytest
from pydantic import BaseModel, Field

from tests.emulator_support import (
    ACCOUNT,
    ANTHROPIC_KEY,
    CLAUDE,
    OPENAI_KEY,
    TOKEN,
    WORD,
    add_fault,
    emulator_fixtures,
    sse_data,
)

GATEWAY = "responses-gw"
OTHER_GATEWAY = "responses-other"  # no gateway auth, OpenAI key stored on the gateway (BYOK)
CACHED_GATEWAY = "responses-cached"
CONFIG: dict[str, Any] = {
    "accountId": ACCOUNT,
    "gateways": {
        GATEWAY: {"authentication": True, "token": TOKEN},
        OTHER_GATEWAY: {"authentication": False, "byokProviders": ["openai"]},
        CACHED_GATEWAY: {"authentication": True, "token": TOKEN, "cacheTtl": 60},
    },
    "providerKeys": {"openai": OPENAI_KEY, "anthropic": ANTHROPIC_KEY},
}
PATHS = ["openai/responses", "openai/v1/responses"]
RESP_ID = re.compile(r"^resp_[0-9a-f]{48}$")
MSG_ID = re.compile(r"^msg_[0-9a-f]{48}$")
FC_ID = re.compile(r"^fc_[0-9a-f]{48}$")
RS_ID = re.compile(r"^rs_[0-9a-f]{48}$")
CALL_ID = re.compile(r"^call_[0-9A-Za-z]{24}$")
WEATHER = {
    "type": "object",
    "properties": {
        "city": {"type": "string"},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
        "days": {"type": "integer", "minimum": 1, "maximum": 7},
    },
    "required": ["city", "unit", "days"],
    "additionalProperties": False,
}
REASONING_TOKENS = {"none": 0, "minimal": 8, "low": 16, "medium": 32, "high": 64, "xhigh": 128}

emulator_url, http = emulator_fixtures(CONFIG, "responses")


class GetWeather(BaseModel):
    city: str
    unit: Literal["celsius", "fahrenheit"]
    days: int = Field(ge=1, le=7)


class Booking(BaseModel):
    guest: str
    nights: int = Field(ge=1, le=14)
    tags: list[str]
    previous: GetWeather | None


@pytest.fixture()
def oai(emulator_url: str, http: httpx.Client) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=f"{emulator_url}/v1/{ACCOUNT}/{GATEWAY}/openai",
        api_key=OPENAI_KEY,
        default_headers={"cf-aig-authorization": f"Bearer {TOKEN}"},
        max_retries=0,
    )


def headers(key: str | None = OPENAI_KEY, **extra: str) -> dict[str, str]:
    out = {"cf-aig-authorization": f"Bearer {TOKEN}", **extra}
    if key is not None:
        out["authorization"] = f"Bearer {key}"
    return out


def post(
    http: httpx.Client,
    body: Any,
    path: str = "openai/responses",
    gateway: str = GATEWAY,
    key: str | None = OPENAI_KEY,
    **extra: str,
) -> httpx.Response:
    return http.post(f"/v1/{ACCOUNT}/{gateway}/{path}", json=body, headers=headers(key, **extra))


def ask(prompt: Any = "Hello there", model: str = "gpt-4o-mini", **extra: Any) -> dict[str, Any]:
    return {"model": model, "input": prompt, **extra}


def tool(name: str, parameters: dict[str, Any] | None = WEATHER, **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "function", "name": name, **extra}
    if parameters is not None:
        out["parameters"] = parameters
    return out


def byte_tokens(text: str) -> int:
    return math.ceil(len(text.encode("utf-8")) / 4)


def prompt_tokens(*texts: str, tools: list[dict[str, Any]] | None = None) -> int:
    """The chat emulator's prompt_tokens rule, which input_tokens follows."""
    total = 3 + sum(4 + byte_tokens(t) for t in texts)
    if tools:
        total += 4 + byte_tokens(json.dumps(tools, separators=(",", ":"), ensure_ascii=False))
    return total


def events(text: str) -> list[tuple[str, dict[str, Any]]]:
    """(event line, parsed data) per SSE event; every event has both lines."""
    out = []
    for block in text.strip("\n").split("\n\n"):
        lines = block.split("\n")
        assert len(lines) == 2 and lines[0].startswith("event: ") and lines[1].startswith("data: ")
        out.append((lines[0][len("event: ") :], json.loads(lines[1][len("data: ") :])))
    return out


def text_of(response: dict[str, Any]) -> str:
    return "".join(
        part["text"]
        for item in response["output"]
        if item["type"] == "message"
        for part in item["content"]
    )


def error_of(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 400, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}
    assert body["error"]["type"] == "invalid_request_error"
    return body["error"]


def last_request(http: httpx.Client) -> dict[str, Any]:
    return http.get("/__emulator/requests", params={"limit": 1}).json()["requests"][0]


# --- the response object ------------------------------------------------------------------


@pytest.mark.parametrize("path", PATHS)
def test_text_response_shape(http: httpx.Client, path: str) -> None:
    """A completed response with one assistant message of 12 words and OpenAI's usage shape."""
    response = post(http, ask(instructions="Be brief.", metadata={"k": "v"}, user="u1"), path)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    data = response.json()
    assert RESP_ID.match(data["id"]) and data["object"] == "response"
    assert data["status"] == "completed" and data["error"] is None
    assert data["incomplete_details"] is None
    assert isinstance(data["created_at"], int) and data["completed_at"] >= data["created_at"]
    assert data["model"] == "gpt-4o-mini" and data["instructions"] == "Be brief."
    assert data["previous_response_id"] is None and data["store"] is True
    assert data["metadata"] == {"k": "v"} and data["user"] == "u1"
    assert data["tools"] == [] and data["tool_choice"] == "auto"
    assert data["parallel_tool_calls"] is True
    assert data["temperature"] == 1 and data["top_p"] == 1 and data["max_output_tokens"] is None
    assert data["text"] == {"format": {"type": "text"}, "verbosity": "medium"}
    assert data["reasoning"] == {"effort": None, "summary": None}
    [message] = data["output"]
    assert MSG_ID.match(message["id"])
    assert {k: message[k] for k in ("type", "role", "status")} == {
        "type": "message",
        "role": "assistant",
        "status": "completed",
    }
    [part] = message["content"]
    assert part["type"] == "output_text" and part["annotations"] == []
    words = part["text"].split(" ")
    assert len(words) == 12 and all(WORD.match(w) for w in words)
    expected_input = prompt_tokens("Be brief.", "Hello there")
    assert data["usage"] == {
        "input_tokens": expected_input,
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": 12,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": expected_input + 12,
    }


def test_same_conversation_same_words_as_chat(http: httpx.Client) -> None:
    """instructions + input read like chat's system + user messages: same words, same token count."""
    data = post(http, ask("Same words?", instructions="Sys")).json()
    chat = post(
        http,
        {
            "model": "gpt-4o-mini",
            "messages": [
                {"role": "system", "content": "Sys"},
                {"role": "user", "content": "Same words?"},
            ],
        },
        "openai/chat/completions",
    ).json()
    assert text_of(data) == chat["choices"][0]["message"]["content"]
    assert data["usage"]["input_tokens"] == chat["usage"]["prompt_tokens"]
    again = post(http, ask("Same words?", instructions="Sys")).json()
    assert text_of(again) == text_of(data) and again["id"] != data["id"]


def test_input_items_and_their_tokens(http: httpx.Client) -> None:
    """Message items with string or part content; images add nothing; roles seed the reply."""
    items = [
        {"role": "developer", "content": "Dev rules"},
        {
            "type": "message",
            "role": "user",
            "content": [
                {"type": "input_text", "text": "Look at "},
                {"type": "input_image", "image_url": "https://example.com/a.png"},
                {"type": "input_text", "text": "this"},
            ],
        },
        {"role": "assistant", "content": [{"type": "output_text", "text": "Seen"}]},
        {"role": "user", "content": "emulate:tokens=5"},
    ]
    data = post(http, ask(items)).json()
    assert data["usage"]["input_tokens"] == prompt_tokens(
        "Dev rules", "Look at this", "Seen", "emulate:tokens=5"
    )
    assert len(text_of(data).split(" ")) == 5 and data["usage"]["output_tokens"] == 5


def test_max_output_tokens_makes_the_response_incomplete(http: httpx.Client) -> None:
    """A cap below the planned words cuts them: status incomplete, reason max_output_tokens."""
    full = text_of(post(http, ask("emulate:tokens=40")).json())
    data = post(http, ask("emulate:tokens=40", max_output_tokens=20)).json()
    assert data["status"] == "incomplete" and data["completed_at"] is None
    assert data["incomplete_details"] == {"reason": "max_output_tokens"}
    assert data["max_output_tokens"] == 20
    [message] = data["output"]
    assert message["status"] == "incomplete"
    assert text_of(data) == " ".join(full.split(" ")[:20])
    assert data["usage"]["output_tokens"] == 20
    roomy = post(http, ask("emulate:tokens=40", max_output_tokens=40)).json()
    assert roomy["status"] == "completed" and text_of(roomy) == full


# --- reasoning models ---------------------------------------------------------------------


@pytest.mark.parametrize("model", ["gpt-5", "gpt-5-mini", "o4-mini", "o3"])
def test_reasoning_models_spend_reasoning_tokens(http: httpx.Client, model: str) -> None:
    """A reasoning item first; reasoning tokens (32 at medium effort) inside output_tokens."""
    data = post(http, ask("Think", model=model)).json()
    reasoning, message = data["output"]
    assert RS_ID.match(reasoning["id"])
    assert reasoning == {"id": reasoning["id"], "type": "reasoning", "summary": []}
    assert message["type"] == "message"
    assert data["reasoning"] == {"effort": "medium", "summary": None}
    usage = data["usage"]
    assert usage["output_tokens_details"]["reasoning_tokens"] == 32
    assert usage["output_tokens"] == 32 + 12
    assert usage["total_tokens"] == usage["input_tokens"] + 44


def test_reasoning_effort_and_other_models(http: httpx.Client) -> None:
    """Tokens follow reasoning.effort; effort none has no reasoning item; gpt-4o and gpt-5-chat don't reason."""
    for effort, tokens in REASONING_TOKENS.items():
        data = post(http, ask(model="gpt-5", reasoning={"effort": effort})).json()
        assert data["usage"]["output_tokens_details"]["reasoning_tokens"] == tokens
        assert [i["type"] for i in data["output"]][:1] == (["reasoning"] if tokens else ["message"])
        assert data["reasoning"]["effort"] == effort
    for model in ("gpt-4o", "gpt-4.1-mini", "gpt-5-chat-latest"):
        data = post(http, ask(model=model)).json()
        assert [i["type"] for i in data["output"]] == ["message"]
        assert data["usage"]["output_tokens_details"]["reasoning_tokens"] == 0


def test_reasoning_reaching_the_cap_leaves_no_message(http: httpx.Client) -> None:
    """max_output_tokens counts reasoning too: a cap at or below it yields only the reasoning item."""
    data = post(http, ask(model="o4-mini", max_output_tokens=20)).json()
    assert data["status"] == "incomplete"
    assert data["incomplete_details"] == {"reason": "max_output_tokens"}
    assert [i["type"] for i in data["output"]] == ["reasoning"]
    assert data["usage"]["output_tokens"] == 20
    assert data["usage"]["output_tokens_details"]["reasoning_tokens"] == 20
    some = post(http, ask("emulate:tokens=30", model="gpt-5", max_output_tokens=40)).json()
    assert some["status"] == "incomplete" and len(text_of(some).split(" ")) == 8
    assert some["usage"]["output_tokens"] == 40


def test_reasoning_parameters_are_checked_per_model(http: httpx.Client) -> None:
    """reasoning on a non-reasoning model, temperature on a reasoning model: unsupported_parameter."""
    effort = error_of(post(http, ask(model="gpt-4o", reasoning={"effort": "low"})))
    assert (effort["param"], effort["code"]) == ("reasoning.effort", "unsupported_parameter")
    temperature = error_of(post(http, ask(model="o3", temperature=0.2)))
    assert (temperature["param"], temperature["code"]) == ("temperature", "unsupported_parameter")
    bad = error_of(post(http, ask(model="gpt-5", reasoning={"effort": "extreme"})))
    assert (bad["param"], bad["code"]) == ("reasoning.effort", "invalid_value")
    assert post(http, ask(model="gpt-4o", reasoning={})).status_code == 200


# --- function tools -----------------------------------------------------------------------


def test_function_call_output_item(http: httpx.Client) -> None:
    """Flat function tools: one function_call item with arguments valid against the schema."""
    tools = [tool("get_weather", description="Weather"), tool("other", {"type": "object"})]
    data = post(http, ask("Weather in Oslo?", tools=tools)).json()
    assert data["status"] == "completed"
    [call] = data["output"]
    assert FC_ID.match(call["id"]) and CALL_ID.match(call["call_id"])
    assert call["type"] == "function_call" and call["name"] == "get_weather"
    assert call["status"] == "completed"
    jsonschema.validate(json.loads(call["arguments"]), WEATHER)
    assert data["usage"]["output_tokens"] == byte_tokens(call["arguments"])
    assert data["usage"]["input_tokens"] == prompt_tokens("Weather in Oslo?", tools=tools)
    first, second = data["tools"]
    assert first == {
        "type": "function",
        "description": "Weather",
        "name": "get_weather",
        "parameters": WEATHER,
        "strict": True,
    }
    assert second["description"] is None and second["strict"] is False


def test_tool_choice_picks_the_answer(http: httpx.Client) -> None:
    """Named choice calls that tool; required/auto the first; none and built-ins answer in words."""
    tools = [tool("first"), tool("second", {"type": "object", "properties": {}})]
    named = post(http, ask(tools=tools, tool_choice={"type": "function", "name": "second"})).json()
    assert named["output"][0]["name"] == "second"
    assert named["tool_choice"] == {"type": "function", "name": "second"}
    for choice in ("required", "auto"):
        assert (
            post(http, ask(tools=tools, tool_choice=choice)).json()["output"][0]["name"] == "first"
        )
    allowed = {
        "type": "allowed_tools",
        "mode": "required",
        "tools": [{"type": "function", "name": "second"}],
    }
    assert post(http, ask(tools=tools, tool_choice=allowed)).json()["output"][0]["name"] == "second"
    none = post(http, ask(tools=tools, tool_choice="none")).json()
    assert [i["type"] for i in none["output"]] == ["message"]
    builtin = post(http, ask(tools=[{"type": "web_search"}])).json()
    assert [i["type"] for i in builtin["output"]] == ["message"]
    assert builtin["tools"] == [{"type": "web_search"}]
    no_params = post(http, ask(tools=[tool("ping", None)])).json()["output"][0]
    assert no_params["arguments"] == "{}"


def test_function_call_output_gets_words_and_counts(http: httpx.Client) -> None:
    """Handing back a call's output inline: the model answers in words; the items count as input."""
    tools = [tool("get_weather")]
    first = post(http, ask("Weather?", tools=tools)).json()["output"][0]
    items = [
        {"role": "user", "content": "Weather?"},
        {k: first[k] for k in ("type", "call_id", "name", "arguments")},
        {"type": "function_call_output", "call_id": first["call_id"], "output": '{"temp": 21}'},
    ]
    data = post(http, ask(items, tools=tools)).json()
    [message] = data["output"]
    assert message["type"] == "message" and len(text_of(data).split(" ")) == 12
    assert data["usage"]["input_tokens"] == prompt_tokens(
        "Weather?", first["arguments"], '{"temp": 21}', tools=tools
    )


def test_max_output_tokens_cuts_arguments(http: httpx.Client) -> None:
    """Arguments longer than the cap are cut to cap*4 bytes; the call item is incomplete."""
    tools = [tool("book", Booking.model_json_schema())]
    full = post(http, ask("Book", tools=tools)).json()["output"][0]["arguments"]
    assert byte_tokens(full) > 16
    data = post(http, ask("Book", tools=tools, max_output_tokens=16)).json()
    [call] = data["output"]
    assert call["status"] == "incomplete" and call["arguments"] == full[:64]
    assert data["status"] == "incomplete" and data["usage"]["output_tokens"] == 16


# --- structured output --------------------------------------------------------------------


def test_text_format_json_schema_and_json_object(http: httpx.Client) -> None:
    """json_schema: a document valid against the schema; json_object: {"answer": words}."""
    fmt = {"type": "json_schema", "name": "weather", "schema": WEATHER, "strict": True}
    data = post(http, ask(text={"format": fmt})).json()
    document = json.loads(text_of(data))
    jsonschema.validate(document, WEATHER)
    assert data["usage"]["output_tokens"] == byte_tokens(text_of(data))
    assert data["text"] == {"format": {**fmt, "description": None}, "verbosity": "medium"}
    obj = post(http, ask("Reply in JSON", text={"format": {"type": "json_object"}})).json()
    assert list(json.loads(text_of(obj))) == ["answer"]
    refused = error_of(post(http, ask("no magic word", text={"format": {"type": "json_object"}})))
    assert refused["param"] == "input"


# --- validation ---------------------------------------------------------------------------

NESTED_TOOL = {"type": "function", "function": {"name": "get_weather", "parameters": WEATHER}}
LOOSE = {"type": "object", "properties": {"a": {"type": "string"}}}
VALIDATION: list[tuple[dict[str, Any], str | None, str | None]] = [
    ({"input": "x"}, "model", "missing_required_parameter"),
    ({"model": "gpt-4o-mini"}, "input", "missing_required_parameter"),
    ({"model": "gpt-4o-mini", "input": {"role": "user"}}, "input", "invalid_type"),
    ({"model": "gpt-4o-mini", "input": []}, "input", "empty_array"),
    (ask([{"role": "robot", "content": "x"}]), "input[0].role", "invalid_value"),
    (ask([{"role": "user"}]), "input[0].content", "missing_required_parameter"),
    (ask([{"type": "bogus"}]), "input[0].type", "invalid_value"),
    (
        ask([{"role": "assistant", "content": [{"type": "input_text", "text": "x"}]}]),
        "input[0].content[0]",
        "invalid_value",
    ),
    (ask([{"type": "function_call", "call_id": "c1", "name": "f"}]), "input[0].arguments", None),
    (ask(tools=[NESTED_TOOL]), "tools[0].name", "missing_required_parameter"),
    (ask(tools=[tool("bad name!")]), "tools[0].name", "invalid_value"),
    (ask(tools=[tool("loose", LOOSE, strict=True)]), "tools[0].parameters", None),
    (ask(tools=[tool("a")], tool_choice={"type": "function", "name": "b"}), "tool_choice", None),
    (ask(tool_choice="sometimes", tools=[tool("a")]), "tool_choice", "invalid_value"),
    (ask(text={"format": {"type": "json_schema", "schema": WEATHER}}), "text.format.name", None),
    (ask(text={"format": {"type": "xml"}}), "text.format.type", "invalid_value"),
    (
        ask(text={"format": {"type": "json_schema", "name": "n", "schema": LOOSE, "strict": True}}),
        "text.format.schema",
        "invalid_json_schema",
    ),
    (ask(max_output_tokens=15), "max_output_tokens", "integer_below_min_value"),
    (ask(max_output_tokens="20"), "max_output_tokens", "invalid_type"),
    (ask(temperature=3), "temperature", "decimal_above_max_value"),
    (ask(top_p=-0.5), "top_p", "decimal_below_min_value"),
    (ask(store="yes"), "store", "invalid_type"),
    (ask(metadata={"n": 1}), "metadata.n", "invalid_type"),
    (ask(messages=[{"role": "user", "content": "x"}]), "messages", "unknown_parameter"),
    (ask(response_format={"type": "json_object"}), "response_format", "unsupported_parameter"),
    (ask(stream_options={"include_usage": True}), "stream_options.include_usage", None),
    (ask(previous_response_id="resp_" + "0" * 48), "previous_response_id", None),
]


@pytest.mark.parametrize(("body", "param", "code"), VALIDATION)
def test_validation_errors_name_the_param(
    http: httpx.Client, body: dict[str, Any], param: str, code: str | None
) -> None:
    """OpenAI's 400 {error: {message, type, param, code}} for what OpenAI checks."""
    error = error_of(post(http, body))
    assert error["param"] == param and error["message"]
    if code is not None:
        assert error["code"] == code


def test_unparsable_body_and_wrong_key(http: httpx.Client) -> None:
    """A non-JSON body is OpenAI's parse 400; a wrong provider key is its 401 invalid_api_key."""
    raw = http.post(
        f"/v1/{ACCOUNT}/{GATEWAY}/openai/responses",
        content=b"{not json",
        headers={**headers(), "content-type": "application/json"},
    )
    assert raw.status_code == 400 and raw.json()["error"]["type"] == "invalid_request_error"
    wrong = post(http, ask(), key="sk-wrong")
    assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "invalid_api_key"
    gateway = http.post(f"/v1/{ACCOUNT}/{GATEWAY}/openai/responses", json=ask())
    assert gateway.status_code == 401 and gateway.json()["internalCode"] == 2009


def test_strict_schema_error_names_the_context(http: httpx.Client) -> None:
    """A strict tool whose nested object allows extra keys is refused, naming where."""
    schema = {
        "type": "object",
        "properties": {"where": {"type": "object", "properties": {"city": {"type": "string"}}}},
        "required": ["where"],
        "additionalProperties": False,
    }
    error = error_of(post(http, ask(tools=[tool("f", schema, strict=True)])))
    assert error["code"] == "invalid_function_parameters"
    assert error["message"] == (
        "Invalid schema for function 'f': In context=('properties', 'where'), "
        "'additionalProperties' is required to be supplied and to be false."
    )


# --- state: store and previous_response_id ------------------------------------------------


def test_previous_response_chain_counts_earlier_turns(http: httpx.Client) -> None:
    """Earlier inputs and outputs count as input tokens; instructions are not carried over."""
    first = post(http, ask("First question", instructions="Be brief.")).json()
    out1 = text_of(first)
    second = post(http, ask("Second", previous_response_id=first["id"])).json()
    assert second["previous_response_id"] == first["id"]
    assert second["instructions"] is None
    assert second["usage"]["input_tokens"] == prompt_tokens("First question", out1, "Second")
    third = post(
        http, ask("Third", previous_response_id=second["id"], instructions="New rules")
    ).json()
    assert third["usage"]["input_tokens"] == prompt_tokens(
        "New rules", "First question", out1, "Second", text_of(second), "Third"
    )
    # the chain is the conversation: the same turns sent inline get the same words
    inline = post(
        http,
        ask(
            [
                {"role": "user", "content": "First question"},
                {"role": "assistant", "content": out1},
                {"role": "user", "content": "Second"},
            ]
        ),
    ).json()
    assert text_of(inline) == text_of(second)


def test_reasoning_items_are_not_carried_as_input(http: httpx.Client) -> None:
    """A reasoning model's chain counts the earlier message, not its reasoning."""
    first = post(http, ask("One", model="gpt-5")).json()
    second = post(http, ask("Two", model="gpt-5", previous_response_id=first["id"])).json()
    assert second["usage"]["input_tokens"] == prompt_tokens("One", text_of(first), "Two")


def test_store_false_and_reset_forget_the_response(http: httpx.Client) -> None:
    """store: false is echoed and never found; a stored response is gone after reset."""
    unstored = post(http, ask(store=False)).json()
    assert unstored["store"] is False
    missing = error_of(post(http, ask(previous_response_id=unstored["id"])))
    assert (missing["param"], missing["code"]) == (
        "previous_response_id",
        "previous_response_not_found",
    )
    assert missing["message"] == f"Previous response with id '{unstored['id']}' not found."
    stored = post(http, ask()).json()
    assert post(http, ask(previous_response_id=stored["id"])).status_code == 200
    http.post("/__emulator/reset").raise_for_status()
    assert error_of(post(http, ask(previous_response_id=stored["id"])))["code"] == (
        "previous_response_not_found"
    )


def test_responses_are_kept_per_gateway(http: httpx.Client) -> None:
    """A response id from one gateway is unknown on another."""
    stored = post(http, ask()).json()
    other = post(http, ask(previous_response_id=stored["id"]), gateway=OTHER_GATEWAY, key=None)
    assert error_of(other)["code"] == "previous_response_not_found"


def test_tool_outputs_must_match_calls(http: httpx.Client) -> None:
    """An output for an unknown call, or a chained call left without output, is a 400."""
    tools = [tool("get_weather")]
    first = post(http, ask("Weather?", tools=tools)).json()
    call_id = first["output"][0]["call_id"]
    orphan = [{"type": "function_call_output", "call_id": "call_unknown", "output": "x"}]
    unknown = error_of(post(http, ask(orphan, tools=tools, previous_response_id=first["id"])))
    assert unknown["param"] == "input" and "call_unknown" in unknown["message"]
    forgotten = error_of(post(http, ask("Never mind", previous_response_id=first["id"])))
    assert forgotten["message"] == f"No tool output found for function call {call_id}."
    answered = [{"type": "function_call_output", "call_id": call_id, "output": "21C"}]
    final = post(http, ask(answered, tools=tools, previous_response_id=first["id"])).json()
    assert [i["type"] for i in final["output"]] == ["message"]
    assert final["usage"]["input_tokens"] == prompt_tokens(
        "Weather?", first["output"][0]["arguments"], "21C", tools=tools
    )


# --- streaming on the wire ----------------------------------------------------------------

TEXT_EVENTS = [
    "response.created",
    "response.in_progress",
    "response.output_item.added",
    "response.content_part.added",
    *["response.output_text.delta"] * 4,
    "response.output_text.done",
    "response.content_part.done",
    "response.output_item.done",
]


def stream(http: httpx.Client, body: dict[str, Any], **kw: Any) -> list[tuple[str, dict[str, Any]]]:
    response = post(http, {**body, "stream": True}, **kw)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/event-stream"
    assert "[DONE]" not in response.text
    got = events(response.text)
    assert [name for name, _ in got] == [data["type"] for _, data in got]
    assert [data["sequence_number"] for _, data in got] == list(range(len(got)))
    return got


@pytest.mark.parametrize("path", PATHS)
def test_text_stream_event_sequence(http: httpx.Client, path: str) -> None:
    """OpenAI's order, increasing sequence numbers, no [DONE], usage only on response.completed."""
    body = ask("emulate:tokens=4", instructions="Sys")
    got = stream(http, body, path=path)
    assert [name for name, _ in got] == [*TEXT_EVENTS, "response.completed"]
    created, in_progress = got[0][1]["response"], got[1][1]["response"]
    assert created == in_progress
    assert created["status"] == "in_progress" and created["output"] == []
    assert created["usage"] is None and created["instructions"] == "Sys"
    final = got[-1][1]["response"]
    assert final["id"] == created["id"] and final["status"] == "completed"
    assert all(d.get("response", {}).get("usage") is None for _, d in got[:-1])
    item_id = got[2][1]["item"]["id"]
    assert got[2][1]["item"] == {
        "id": item_id,
        "type": "message",
        "status": "in_progress",
        "content": [],
        "role": "assistant",
    }
    assert got[3][1]["part"] == {
        "type": "output_text",
        "annotations": [],
        "logprobs": [],
        "text": "",
    }
    deltas = [d for name, d in got if name == "response.output_text.delta"]
    for d in deltas:
        assert (d["item_id"], d["output_index"], d["content_index"]) == (item_id, 0, 0)
        assert d["logprobs"] == [] and isinstance(d["obfuscation"], str)
    text = "".join(d["delta"] for d in deltas)
    assert got[8][1]["text"] == text and got[9][1]["part"]["text"] == text
    assert final["output"] == [got[10][1]["item"]]
    buffered = post(http, body).json()
    assert text == text_of(buffered) == text_of(final)
    assert final["usage"] == buffered["usage"]


def test_stream_without_obfuscation(http: httpx.Client) -> None:
    """stream_options.include_obfuscation false drops the padding field."""
    got = stream(http, ask(stream_options={"include_obfuscation": False}))
    assert all("obfuscation" not in d for _, d in got)


def test_function_call_stream_event_sequence(http: httpx.Client) -> None:
    """added (arguments "") -> arguments deltas -> arguments.done -> item done; reasoning first."""
    got = stream(http, ask("Weather?", model="gpt-5", tools=[tool("get_weather")]))
    names = [name for name, _ in got]
    assert names[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.output_item.done",
    ]
    assert got[2][1]["item"]["type"] == "reasoning" and got[3][1]["item"] == got[2][1]["item"]
    assert names[4] == "response.output_item.added"
    added = got[4][1]["item"]
    assert added["type"] == "function_call" and added["arguments"] == ""
    assert added["status"] == "in_progress" and CALL_ID.match(added["call_id"])
    n = names.count("response.function_call_arguments.delta")
    assert n >= 2
    assert names[5:] == [
        *["response.function_call_arguments.delta"] * n,
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    arguments = "".join(d["delta"] for _, d in got[5 : 5 + n])
    assert got[5 + n][1]["arguments"] == arguments
    done = got[6 + n][1]
    assert done["output_index"] == 1 and done["item"]["status"] == "completed"
    assert done["item"]["arguments"] == arguments and done["item"]["id"] == added["id"]
    jsonschema.validate(json.loads(arguments), WEATHER)
    usage = got[-1][1]["response"]["usage"]
    assert usage["output_tokens"] == 32 + byte_tokens(arguments)


def test_incomplete_stream_ends_with_response_incomplete(http: httpx.Client) -> None:
    """A capped stream's terminal event is response.incomplete, with usage."""
    got = stream(http, ask("emulate:tokens=30", max_output_tokens=16))
    name, data = got[-1]
    assert name == "response.incomplete"
    assert data["response"]["incomplete_details"] == {"reason": "max_output_tokens"}
    assert data["response"]["usage"]["output_tokens"] == 16
    assert got[-2][1]["item"]["status"] == "incomplete"


# --- the SDK --------------------------------------------------------------------------------


def test_sdk_create_and_stream(oai: openai.OpenAI) -> None:
    """responses.create, with and without stream=True, parses into the SDK's types."""
    response = oai.responses.create(model="gpt-4o-mini", input="Hi", instructions="Sys")
    assert response.status == "completed" and len(response.output_text.split(" ")) == 12
    assert response.usage is not None and response.usage.output_tokens == 12
    with oai.responses.create(
        model="gpt-4o-mini", input="Hi", instructions="Sys", stream=True
    ) as s:
        got = list(s)
    assert got[0].type == "response.created" and got[-1].type == "response.completed"
    assert isinstance(got[-1], openai.types.responses.ResponseCompletedEvent)
    streamed = "".join(e.delta for e in got if e.type == "response.output_text.delta")
    assert streamed == response.output_text == got[-1].response.output_text


def test_sdk_stream_helper_final_response(oai: openai.OpenAI) -> None:
    """responses.stream(...) accumulates the events into the final response."""
    with oai.responses.stream(model="gpt-5", input="Tell me") as s:
        texts = [e.delta for e in s if e.type == "response.output_text.delta"]
        final = s.get_final_response()
    assert final.output_text == "".join(texts)
    assert final.usage is not None and final.usage.output_tokens_details.reasoning_tokens == 32
    assert [item.type for item in final.output] == ["reasoning", "message"]


def test_sdk_parse_text_format(oai: openai.OpenAI) -> None:
    """responses.parse(text_format=Model) and the stream helper with it give a parsed model."""
    parsed = oai.responses.parse(model="gpt-4o-mini", input="Book it", text_format=Booking)
    assert isinstance(parsed.output_parsed, Booking)
    with oai.responses.stream(model="gpt-4o-mini", input="Book it", text_format=Booking) as s:
        final = s.get_final_response()
    assert final.output_parsed == parsed.output_parsed


def test_sdk_pydantic_function_tools(oai: openai.OpenAI) -> None:
    """Pydantic function tools (the responses helper, and chat's helper flattened) parse their arguments."""
    helper = openai.pydantic_responses_function_tool(GetWeather)
    parsed = oai.responses.parse(model="gpt-4o-mini", input="Weather?", tools=[helper])
    [call] = parsed.output
    assert call.type == "function_call" and isinstance(call.parsed_arguments, GetWeather)
    with oai.responses.stream(model="o4-mini", input="Weather?", tools=[helper]) as s:
        final = s.get_final_response()
    assert isinstance(final.output[1].parsed_arguments, GetWeather)
    flat: Any = {"type": "function", **openai.pydantic_function_tool(Booking)["function"]}
    assert flat["strict"] is True
    raw = oai.responses.create(model="gpt-4o-mini", input="Book", tools=[flat])
    assert raw.output[0].type == "function_call"
    Booking.model_validate_json(raw.output[0].arguments)


def test_sdk_tool_round_trip_with_previous_response_id(oai: openai.OpenAI) -> None:
    """call -> function_call_output chained by previous_response_id -> words."""
    tools: Any = [openai.pydantic_responses_function_tool(GetWeather)]
    first = oai.responses.create(model="gpt-4o-mini", input="Weather in Oslo?", tools=tools)
    [call] = first.output
    assert call.type == "function_call"
    final = oai.responses.create(
        model="gpt-4o-mini",
        previous_response_id=first.id,
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "21C"}],
        tools=tools,
    )
    assert final.previous_response_id == first.id
    assert [item.type for item in final.output] == ["message"]
    assert final.usage is not None
    assert final.usage.input_tokens == prompt_tokens(
        "Weather in Oslo?", call.arguments, "21C", tools=[dict(t) for t in tools]
    )
    with pytest.raises(openai.BadRequestError) as missing:
        oai.responses.create(model="gpt-4o-mini", previous_response_id="resp_gone", input="x")
    assert missing.value.code == "previous_response_not_found"


# --- faults ---------------------------------------------------------------------------------


def test_fault_cuts_the_stream(http: httpx.Client) -> None:
    """cutAfterChunks drops the connection after N events, before the terminal one."""
    add_fault(http, match={"path": "/openai/responses"}, cutAfterChunks=4)
    received: list[str] = []
    with pytest.raises(httpx.RemoteProtocolError):
        with http.stream(
            "POST",
            f"/v1/{ACCOUNT}/{GATEWAY}/openai/responses",
            json=ask(stream=True),
            headers=headers(),
        ) as response:
            for line in response.iter_lines():
                if line.startswith("event: "):
                    received.append(line[len("event: ") :])
    assert received == TEXT_EVENTS[:4]
    assert last_request(http)["delivery"] == "cut"


def test_fault_error_event_mid_stream(http: httpx.Client, oai: openai.OpenAI) -> None:
    """errorAfterChunks: k events, then `event: error` with the next sequence number."""
    add_fault(http, match={"path": "/openai/responses"}, errorAfterChunks=5, times=3)
    got = events(post(http, ask(stream=True)).text)
    assert [name for name, _ in got] == [*TEXT_EVENTS[:5], "error"]
    error = got[-1][1]
    assert error["type"] == "error" and error["sequence_number"] == 5
    assert error["code"] == "server_error" and error["message"] and error["param"] is None
    with oai.responses.create(model="gpt-4o-mini", input="Hello there", stream=True) as s:
        types = [e.type for e in s]
    assert types[-1] == "error" and "response.completed" not in types
    with oai.responses.stream(model="gpt-4o-mini", input="Hello there") as helper:
        with pytest.raises(RuntimeError, match="response.completed"):
            helper.get_final_response()


def test_fault_response_failed_mid_stream(http: httpx.Client, oai: openai.OpenAI) -> None:
    """errorEvent response.failed: the response with status failed, its finished items, no usage."""
    spec = {"path": "/openai/responses"}
    add_fault(http, match=spec, errorAfterChunks=4, errorEvent="response.failed")
    got = events(post(http, ask(model="gpt-5", stream=True)).text)
    assert [name for name, _ in got][-1] == "response.failed"
    failed = got[-1][1]
    assert failed["sequence_number"] == 4
    response = failed["response"]
    assert response["status"] == "failed" and response["usage"] is None
    assert response["error"]["code"] == "server_error"
    assert [item["type"] for item in response["output"]] == ["reasoning"]
    assert response["id"] == got[0][1]["response"]["id"]
    add_fault(http, match=spec, errorAfterChunks=6, errorEvent="response.failed")
    with oai.responses.create(model="gpt-4o-mini", input="Hi", stream=True) as s:
        last = list(s)[-1]
    assert last.type == "response.failed" and last.response.error is not None


def test_fault_status_and_delay(http: httpx.Client) -> None:
    """A status-only fault answers OpenAI's error shape; delayMs holds the answer back."""
    add_fault(http, match={"path": "/openai/responses"}, status=429)
    limited = post(http, ask())
    assert limited.status_code == 429 and limited.json()["error"]["code"] == "rate_limit_exceeded"
    add_fault(http, match={"path": "/openai/v1/responses"}, delayMs=250)
    started = time.monotonic()
    assert post(http, ask(), path="openai/v1/responses").status_code == 200
    assert time.monotonic() - started >= 0.25


def test_error_fault_on_chat_and_anthropic_streams(http: httpx.Client) -> None:
    """errorAfterChunks applies to every stream in its provider's in-band error shape."""
    add_fault(http, match={"path": "/chat/completions"}, errorAfterChunks=2)
    chat = post(
        http,
        {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x"}], "stream": True},
        "openai/chat/completions",
    )
    data = sse_data(chat.text)
    assert len(data) == 3 and "[DONE]" not in data
    assert json.loads(data[-1])["error"]["type"] == "server_error"
    add_fault(http, match={"provider": "anthropic"}, errorAfterChunks=3)
    claude = http.post(
        f"/v1/{ACCOUNT}/{GATEWAY}/anthropic/v1/messages",
        json={
            "model": CLAUDE,
            "max_tokens": 50,
            "stream": True,
            "messages": [{"role": "user", "content": "x"}],
        },
        headers={
            "cf-aig-authorization": f"Bearer {TOKEN}",
            "x-api-key": ANTHROPIC_KEY,
            "anthropic-version": "2023-06-01",
        },
    )
    blocks = claude.text.strip().split("\n\n")
    assert len(blocks) == 4 and blocks[-1].startswith("event: error\n")
    assert json.loads(blocks[-1].split("data: ", 1)[1])["error"]["type"] == "overloaded_error"
    bad = http.post("/__emulator/faults", json={"errorEvent": "boom"})
    assert bad.status_code == 400


# --- the gateway pipeline -------------------------------------------------------------------


def test_request_log_entry(http: httpx.Client) -> None:
    """Logged with its path, the provider key as sent, usage in chat terms; no other key headers."""
    body = ask("log me", model="gpt-5")
    data = post(http, body, path="openai/v1/responses").json()
    entry = last_request(http)
    assert entry["path"] == f"/v1/{ACCOUNT}/{GATEWAY}/openai/v1/responses"
    assert (entry["provider"], entry["model"], entry["status"]) == ("openai", "gpt-5", 200)
    assert entry["body"] == body and entry["stream"] is False
    logged = entry["headers"]
    assert logged["authorization"] == f"Bearer {OPENAI_KEY}"
    assert logged["cf-aig-authorization"] == f"Bearer {TOKEN}"
    allowed = {
        "host",
        "accept",
        "accept-encoding",
        "connection",
        "user-agent",
        "content-length",
        "content-type",
        "authorization",
        "cf-aig-authorization",
    }
    assert set(logged) <= allowed, set(logged) - allowed
    usage = data["usage"]
    assert entry["usage"] == {
        "prompt_tokens": usage["input_tokens"],
        "completion_tokens": usage["output_tokens"],
        "total_tokens": usage["total_tokens"],
    }
    post(http, ask(stream=True))
    assert last_request(http)["stream"] is True


def test_cache_custom_cost_metadata_and_byok(http: httpx.Client) -> None:
    """Gateway cache replays the same response; custom cost and metadata are recorded; BYOK works."""
    first = post(http, ask("cache me"), gateway=CACHED_GATEWAY)
    again = post(http, ask("cache me"), gateway=CACHED_GATEWAY)
    assert first.headers["cf-aig-cache-status"] == "MISS"
    assert again.headers["cf-aig-cache-status"] == "HIT" and again.json() == first.json()
    price = {"per_token_in": 0.000001, "per_token_out": 0.000002}
    usage = post(
        http,
        ask("cost"),
        **{"cf-aig-custom-cost": json.dumps(price), "cf-aig-metadata": '{"tenant":"t1"}'},
    ).json()["usage"]
    entry = last_request(http)
    assert entry["metadata"] == {"tenant": "t1"}
    expected = usage["input_tokens"] * 0.000001 + usage["output_tokens"] * 0.000002
    assert entry["cost"] == pytest.approx(expected)
    byok = post(http, ask(), gateway=OTHER_GATEWAY, key=None)
    assert byok.status_code == 200 and byok.json()["status"] == "completed"


def test_universal_step_to_responses(http: httpx.Client) -> None:
    """A Universal step {provider: openai, endpoint: v1/responses} reaches the same route."""
    step = {
        "provider": "openai",
        "endpoint": "v1/responses",
        "headers": {"authorization": f"Bearer {OPENAI_KEY}"},
        "query": ask("universal"),
    }
    response = http.post(
        f"/v1/{ACCOUNT}/{GATEWAY}",
        json=[step],
        headers={"cf-aig-authorization": f"Bearer {TOKEN}"},
    )
    assert response.status_code == 200 and response.headers["cf-aig-step"] == "0"
    assert response.json()["object"] == "response"
    entry = last_request(http)
    assert (entry["provider"], entry["step"], entry["status"]) == ("openai", 0, 200)


# ---------------------------------------------------------------- background runs, retrieval


def test_a_background_run_is_queued_then_completes_and_is_retrieved(
    oai: openai.OpenAI, http: httpx.Client
):
    """background: true answers at once, queued, no output and no usage; GET responses/{id}
    says in_progress until the run's time is up (emulate:run_ms), then the completed response
    with its usage, as the SDK's retrieve reads it."""
    queued = post(http, ask("Slow one. emulate:run_ms=400 emulate:tokens=9", background=True))
    assert queued.status_code == 200, queued.text
    body = queued.json()
    assert (body["status"], body["background"], body["output"], body["usage"]) == (
        "queued",
        True,
        [],
        None,
    )
    early = oai.responses.retrieve(body["id"])
    assert early.status == "in_progress" and early.usage is None
    time.sleep(0.5)
    done = oai.responses.retrieve(body["id"])
    assert done.status == "completed" and done.background is True
    assert done.usage is not None and done.usage.output_tokens == 9
    assert done.output_text


def test_retrieving_takes_get_only_and_knows_only_stored_responses(
    oai: openai.OpenAI, http: httpx.Client
):
    """A stored response is read back as it was answered; one never stored (store: false, or
    another gateway's) is OpenAI's 404; a background run must be stored; POST to a response's
    path is not a route (405)."""
    stored = oai.responses.create(model="gpt-4o-mini", input="Keep me")
    assert oai.responses.retrieve(stored.id).output_text == stored.output_text
    unstored = oai.responses.create(model="gpt-4o-mini", input="Forget me", store=False)
    with pytest.raises(openai.NotFoundError) as missing:
        oai.responses.retrieve(unstored.id)
    assert missing.value.body == {
        "message": f"Response with id '{unstored.id}' not found.",
        "type": "invalid_request_error",
        "param": None,
        "code": None,
    }
    refused = post(http, ask("x", background=True, store=False))
    assert refused.status_code == 400 and refused.json()["error"]["param"] == "store"
    wrong = post(http, {}, path=f"openai/responses/{stored.id}")
    assert wrong.status_code == 405
