"""OpenAI-wire tool calls and structured output from the emulator's fake model.

Every OpenAI-wire chat route answers a tool call when function tools are given (tool_choice
not "none", last message not a tool result), with `arguments` generated from the tool's JSON
Schema: deterministic and VALID against it (checked here with jsonschema and, for pydantic
models, by the OpenAI SDK's own parsing). response_format json_schema / json_object give a
JSON content the same way. Streams follow cf-contract-2 4.1.
"""

from __future__ import annotations

import json
import math
import re
import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Any, Literal
from urllib.parse import urlparse

import httpx
import jsonschema
import openai
import pytest
from pydantic import AnyUrl, BaseModel, Field

from tests.emulator_support import (
    ACCOUNT,
    ANTHROPIC_KEY,
    OPENAI_KEY,
    TOKEN,
    WORD,
    WORKERS_AI_KEY,
    emulator_fixtures,
    sse_data,
)

GATEWAY = "tools-gw"
GROQ_KEY = "gsk-tools"
CONFIG: dict[str, Any] = {
    "accountId": ACCOUNT,
    "gateways": {GATEWAY: {"authentication": True, "token": TOKEN}},
    "providerKeys": {
        "openai": OPENAI_KEY,
        "anthropic": ANTHROPIC_KEY,
        "workers-ai": WORKERS_AI_KEY,
        "groq": GROQ_KEY,
        "google-ai-studio": "gemini-tools",
    },
}
CALL_ID = re.compile(r"^call_[0-9a-f]{24}$")
# (path under the gateway, model, provider key): every OpenAI-wire chat route
ROUTES = [
    ("openai/chat/completions", "gpt-4o-mini", OPENAI_KEY),
    ("openai/v1/chat/completions", "gpt-4o-mini", OPENAI_KEY),
    ("compat/chat/completions", "openai/gpt-4o-mini", OPENAI_KEY),
    ("compat/chat/completions", "anthropic/claude-sonnet-4-5", ANTHROPIC_KEY),
    ("compat/chat/completions", "workers-ai/@cf/meta/llama-3.1-8b-instruct", WORKERS_AI_KEY),
    ("workers-ai/v1/chat/completions", "@cf/meta/llama-3.1-8b-instruct", WORKERS_AI_KEY),
    ("groq/chat/completions", "llama-3.3-70b-versatile", GROQ_KEY),
    ("google-ai-studio/v1beta/openai/chat/completions", "gemini-2.5-flash", "gemini-tools"),
]

WEATHER = {
    "type": "object",
    "properties": {
        "city": {"type": "string", "description": "City name"},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
        "days": {"type": "integer", "minimum": 1, "maximum": 7},
    },
    "required": ["city", "unit"],
    "additionalProperties": False,
}


def tool(name: str, parameters: dict[str, Any] | None = None) -> dict[str, Any]:
    function: dict[str, Any] = {"name": name, "description": f"The {name} tool"}
    if parameters is not None:
        function["parameters"] = parameters
    return {"type": "function", "function": function}


# Formats jsonschema only checks with optional packages (absent here): checked by hand.
FORMATS = jsonschema.FormatChecker()


@FORMATS.checks("date-time", raises=ValueError)
def _date_time(value: object) -> bool:
    return not isinstance(value, str) or bool(datetime.fromisoformat(value.replace("Z", "+00:00")))


@FORMATS.checks("time", raises=ValueError)
def _time(value: object) -> bool:
    return not isinstance(value, str) or bool(
        re.fullmatch(r"\d\d:\d\d:\d\d(Z|[+-]\d\d:\d\d)", value)
    )


@FORMATS.checks("uri")
def _uri(value: object) -> bool:
    if not isinstance(value, str):
        return True
    parsed = urlparse(value)
    return bool(parsed.scheme and parsed.netloc)


@FORMATS.checks("uuid", raises=ValueError)
def _uuid(value: object) -> bool:
    return not isinstance(value, str) or bool(uuid.UUID(value))


@FORMATS.checks("hostname")
def _hostname(value: object) -> bool:
    return not isinstance(value, str) or bool(re.fullmatch(r"[a-z0-9.-]+", value))


@FORMATS.checks("duration")
def _duration(value: object) -> bool:
    return not isinstance(value, str) or bool(re.fullmatch(r"P\d+D", value))


def validate(instance: Any, schema: dict[str, Any]) -> None:
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    cls(schema, format_checker=FORMATS).validate(instance)


emulator_url, http = emulator_fixtures(CONFIG, "tools")


@pytest.fixture()
def oai(emulator_url: str, http: httpx.Client) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=f"{emulator_url}/v1/{ACCOUNT}/{GATEWAY}/openai",
        api_key=OPENAI_KEY,
        default_headers={"cf-aig-authorization": f"Bearer {TOKEN}"},
        max_retries=0,
    )


def post(
    http: httpx.Client,
    body: dict[str, Any],
    path: str = "openai/chat/completions",
    key: str = OPENAI_KEY,
) -> httpx.Response:
    return http.post(
        f"/v1/{ACCOUNT}/{GATEWAY}/{path}",
        json=body,
        headers={"cf-aig-authorization": f"Bearer {TOKEN}", "authorization": f"Bearer {key}"},
    )


def ask(
    content: str = "What is the weather?", model: str = "gpt-4o-mini", **extra: Any
) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": content}], **extra}


def byte_tokens(text: str) -> int:
    return math.ceil(len(text.encode("utf-8")) / 4)


def prompt_tokens(*texts: str, tools: list[dict[str, Any]] | None = None) -> int:
    total = 3 + sum(4 + byte_tokens(t) for t in texts)
    if tools:
        total += 4 + byte_tokens(json.dumps(tools, separators=(",", ":"), ensure_ascii=False))
    return total


# --- tool calls ------------------------------------------------------------------------------


@pytest.mark.parametrize(("path", "model", "key"), ROUTES)
def test_tool_call_shape_on_every_route(
    http: httpx.Client, path: str, model: str, key: str
) -> None:
    """Tools given: one call to the first tool, content null, finish_reason tool_calls."""
    tools = [tool("get_weather", WEATHER), tool("other", {"type": "object"})]
    data = post(http, ask(model=model, tools=tools), path, key).json()
    choice = data["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    message = choice["message"]
    assert message["role"] == "assistant" and message["content"] is None
    [call] = message["tool_calls"]
    assert CALL_ID.match(call["id"]) and call["type"] == "function"
    assert call["function"]["name"] == "get_weather"
    arguments = call["function"]["arguments"]
    assert isinstance(arguments, str)
    validate(json.loads(arguments), WEATHER)
    assert data["usage"]["completion_tokens"] == byte_tokens(arguments)
    assert data["usage"]["prompt_tokens"] == prompt_tokens("What is the weather?", tools=tools)
    assert data["usage"]["total_tokens"] == data["usage"]["prompt_tokens"] + byte_tokens(arguments)


def test_arguments_are_deterministic(http: httpx.Client) -> None:
    """Same request, same arguments (ids differ); another prompt or model may change them."""
    body = ask(tools=[tool("get_weather", WEATHER)])
    first = post(http, body).json()["choices"][0]["message"]["tool_calls"][0]
    again = post(http, body).json()["choices"][0]["message"]["tool_calls"][0]
    assert first["function"] == again["function"] and first["id"] != again["id"]
    others = {
        post(http, ask(f"prompt {i}", tools=[tool("get_weather", WEATHER)])).json()["choices"][0][
            "message"
        ]["tool_calls"][0]["function"]["arguments"]
        for i in range(6)
    }
    assert len(others) > 1


def test_tool_choice_selects_the_tool(http: httpx.Client) -> None:
    """A named tool_choice calls that tool; "required" and "auto" call the first; "none" talks."""
    tools = [
        tool("first", WEATHER),
        tool("second", {"type": "object", "properties": {"q": {"type": "string"}}}),
    ]
    named = {"type": "function", "function": {"name": "second"}}
    # OpenAI's quirk: a call forced by name finishes "stop"; "required" and "auto", "tool_calls"
    cases = (
        (named, "second", "stop"),
        ("required", "first", "tool_calls"),
        ("auto", "first", "tool_calls"),
    )
    for choice, expected, finish in cases:
        answer = post(http, ask(tools=tools, tool_choice=choice)).json()["choices"][0]
        assert answer["message"]["tool_calls"][0]["function"]["name"] == expected
        assert answer["finish_reason"] == finish
    none = post(http, ask(tools=tools, tool_choice="none")).json()["choices"][0]
    assert none["finish_reason"] == "stop" and "tool_calls" not in none["message"]
    assert len(none["message"]["content"].split(" ")) == 12


def test_tool_without_parameters_gets_empty_object(http: httpx.Client) -> None:
    """A function without a parameters schema is called with {}."""
    call = post(http, ask(tools=[tool("ping")])).json()["choices"][0]["message"]["tool_calls"][0]
    assert call["function"]["arguments"] == "{}"


def test_non_function_tools_are_never_called(http: httpx.Client) -> None:
    """Only type "function" tools can be called; others alone give a text answer."""
    body = ask(tools=[{"type": "custom", "custom": {"name": "grammar"}}])
    choice = post(http, body).json()["choices"][0]
    assert choice["finish_reason"] == "stop" and choice["message"]["content"]


def test_round_trip_call_result_answer(oai: openai.OpenAI) -> None:
    """call -> tool result -> the final answer is words again (finish_reason stop)."""
    tools: list[Any] = [tool("get_weather", WEATHER)]
    messages: list[Any] = [{"role": "user", "content": "Weather in Oslo?"}]
    first = oai.chat.completions.create(model="gpt-4o-mini", messages=messages, tools=tools)
    call = first.choices[0].message.tool_calls
    assert call is not None and first.choices[0].finish_reason == "tool_calls"
    messages.append(first.choices[0].message.model_dump(exclude_none=True))
    messages.append({"role": "tool", "tool_call_id": call[0].id, "content": '{"temp": 21}'})
    final = oai.chat.completions.create(model="gpt-4o-mini", messages=messages, tools=tools)
    assert final.choices[0].finish_reason == "stop"
    words = (final.choices[0].message.content or "").split(" ")
    assert len(words) == 12 and all(WORD.match(w) for w in words)
    assert final.choices[0].message.tool_calls is None


def test_tool_call_stream_matches_contract(http: httpx.Client) -> None:
    """Stream: id+name chunk, argument pieces, delta {} finish, usage chunk, [DONE]."""
    tools = [tool("get_weather", WEATHER)]
    full = post(http, ask(tools=tools)).json()
    arguments = full["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"]
    response = post(http, ask(tools=tools, stream=True, stream_options={"include_usage": True}))
    assert response.headers["content-type"] == "text/event-stream"
    data = sse_data(response.text)
    assert data[-1] == "[DONE]"
    chunks = [json.loads(d) for d in data[:-1]]
    head = chunks[0]["choices"][0]
    assert head["finish_reason"] is None
    assert head["delta"]["role"] == "assistant" and head["delta"]["content"] is None
    [first] = head["delta"]["tool_calls"]
    assert first["index"] == 0 and CALL_ID.match(first["id"]) and first["type"] == "function"
    assert first["function"] == {"name": "get_weather", "arguments": ""}
    pieces = chunks[1:-2]
    assert len(pieces) >= 2
    for chunk in pieces:
        assert chunk["choices"][0]["finish_reason"] is None
        [delta] = chunk["choices"][0]["delta"]["tool_calls"]
        assert set(delta) == {"index", "function"} and set(delta["function"]) == {"arguments"}
    streamed = "".join(
        c["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"] for c in pieces
    )
    assert streamed == arguments
    closing = chunks[-2]["choices"][0]
    assert closing["delta"] == {} and closing["finish_reason"] == "tool_calls"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == byte_tokens(
        arguments
    )
    assert all(c["usage"] is None for c in chunks[:-1])


def test_sdk_stream_accumulates_and_parses_tool_call(oai: openai.OpenAI) -> None:
    """The SDK's streaming helper rebuilds the call and parses it with the pydantic tool."""

    class GetWeather(BaseModel):
        city: str
        unit: Literal["celsius", "fahrenheit"]
        days: int = Field(ge=1, le=7)

    with oai.chat.completions.stream(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "Weather?"}],
        tools=[openai.pydantic_function_tool(GetWeather)],
    ) as stream:
        final = stream.get_final_completion()
    [call] = final.choices[0].message.tool_calls or []
    assert isinstance(call.function.parsed_arguments, GetWeather)
    assert final.choices[0].finish_reason == "tool_calls"


def test_max_tokens_cuts_arguments_with_length(http: httpx.Client) -> None:
    """A cap below the arguments' tokens cuts them to cap*4 bytes, finish_reason length."""
    tools = [tool("get_weather", WEATHER)]
    full = post(http, ask(tools=tools)).json()["choices"][0]["message"]["tool_calls"][0]
    cut = post(http, ask(tools=tools, max_tokens=3)).json()
    assert cut["choices"][0]["finish_reason"] == "length"
    arguments = cut["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"]
    assert arguments == full["function"]["arguments"][:12]
    assert cut["usage"]["completion_tokens"] == 3


def test_tool_validation_errors(http: httpx.Client) -> None:
    """OpenAI's 400s: tool_choice without tools, an unknown named tool, a tool without a name."""
    lonely = post(http, ask(tool_choice="required"))
    assert lonely.status_code == 400 and lonely.json()["error"]["param"] == "tool_choice"
    unknown = post(
        http, ask(tools=[tool("a")], tool_choice={"type": "function", "function": {"name": "b"}})
    )
    assert unknown.status_code == 400 and unknown.json()["error"]["param"] == "tool_choice"
    nameless = post(http, ask(tools=[{"type": "function", "function": {}}]))
    assert nameless.status_code == 400
    assert nameless.json()["error"]["code"] == "missing_required_parameter"
    not_list = post(http, ask(tools={"type": "function"}))
    assert not_list.status_code == 400 and not_list.json()["error"]["param"] == "tools"


# --- the schema generator ---------------------------------------------------------------------

SCHEMAS: dict[str, dict[str, Any]] = {
    "scalars": {
        "type": "object",
        "properties": {
            "flag": {"type": "boolean"},
            "nothing": {"type": "null"},
            "count": {"type": "integer", "exclusiveMinimum": 10, "exclusiveMaximum": 13},
            "ratio": {"type": "number", "minimum": 0, "maximum": 1},
            "step": {"type": "number", "multipleOf": 0.1, "minimum": 0.25, "maximum": 0.75},
            "even": {"type": "integer", "multipleOf": 2, "minimum": 101},
            "negative": {"type": "integer", "maximum": -5},
            "fixed": {"const": "v1"},
            "level": {"enum": [3, 5, 8]},
        },
        "required": [
            "flag",
            "nothing",
            "count",
            "ratio",
            "step",
            "even",
            "negative",
            "fixed",
            "level",
        ],
    },
    "strings": {
        "type": "object",
        "properties": {
            "short": {"type": "string", "maxLength": 3},
            "long": {"type": "string", "minLength": 40},
            "exact": {"type": "string", "minLength": 5, "maxLength": 5},
            "code": {"type": "string", "pattern": r"^[A-Z]{3}-\d{4}$"},
            "choice": {"type": "string", "pattern": r"^(foo|bar)_[a-z0-9]+$"},
            "hex": {"type": "string", "pattern": r"^#[0-9a-fA-F]{6}$"},
            "opt": {"type": "string", "pattern": r"^v\d+(\.\d+){2}(-rc\d)?$"},
            "day": {"type": "string", "format": "date"},
            "at": {"type": "string", "format": "date-time"},
            "clock": {"type": "string", "format": "time"},
            "mail": {"type": "string", "format": "email"},
            "link": {"type": "string", "format": "uri"},
            "id": {"type": "string", "format": "uuid"},
            "host": {"type": "string", "format": "hostname"},
            "ip": {"type": "string", "format": "ipv4"},
            "ip6": {"type": "string", "format": "ipv6"},
            "span": {"type": "string", "format": "duration"},
        },
        "required": [
            "short",
            "long",
            "exact",
            "code",
            "choice",
            "hex",
            "opt",
            "day",
            "at",
            "mail",
            "link",
            "id",
        ],
    },
    "arrays": {
        "type": "object",
        "properties": {
            "three": {"type": "array", "items": {"type": "integer"}, "minItems": 3, "maxItems": 3},
            "none": {"type": "array", "items": {"type": "string"}, "maxItems": 0},
            "unique": {
                "type": "array",
                "items": {"enum": ["a", "b", "c"]},
                "minItems": 3,
                "uniqueItems": True,
            },
            "tuple": {
                "type": "array",
                "prefixItems": [{"type": "string"}, {"type": "integer"}],
                "items": False,
            },
            "nested": {
                "type": "array",
                "minItems": 1,
                "items": {
                    "type": "object",
                    "properties": {
                        "x": {"type": "number"},
                        "y": {"type": "array", "items": {"type": "boolean"}},
                    },
                    "required": ["x", "y"],
                },
            },
            "has": {"type": "array", "contains": {"const": 7}, "items": {"type": "integer"}},
        },
        "required": ["three", "none", "unique", "tuple", "nested", "has"],
    },
    "combinators": {
        "$defs": {
            "Pet": {
                "type": "object",
                "properties": {"name": {"type": "string"}, "kind": {"$ref": "#/$defs/Kind"}},
                "required": ["name", "kind"],
                "additionalProperties": False,
            },
            "Kind": {"type": "string", "enum": ["cat", "dog"]},
        },
        "type": "object",
        "properties": {
            "pet": {"$ref": "#/$defs/Pet"},
            "maybe": {"anyOf": [{"$ref": "#/$defs/Pet"}, {"type": "null"}]},
            "nullable": {"type": ["integer", "null"], "minimum": 2},
            "either": {"oneOf": [{"type": "string", "maxLength": 4}, {"type": "integer"}]},
            "both": {
                "allOf": [
                    {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]},
                    {"properties": {"b": {"type": "string"}}, "required": ["b"]},
                ]
            },
            "untyped": {"properties": {"z": {"type": "integer"}}, "required": ["z"]},
            "anything": {},
        },
        "required": ["pet", "maybe", "nullable", "either", "both", "untyped", "anything"],
        "additionalProperties": False,
    },
    "draft7": {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "definitions": {
            "Point": {"type": "array", "items": [{"type": "number"}, {"type": "number"}]}
        },
        "type": "object",
        "properties": {
            "origin": {"$ref": "#/definitions/Point"},
            "bounded": {"type": "integer", "minimum": 5, "exclusiveMinimum": 5, "maximum": 9},
        },
        "required": ["origin", "bounded"],
    },
    "maps": {
        "type": "object",
        "properties": {
            "labels": {
                "type": "object",
                "additionalProperties": {"type": "integer", "minimum": 0},
                "minProperties": 2,
            },
            "closed": {"type": "object", "additionalProperties": False},
        },
        "required": ["labels", "closed"],
    },
    "recursive": {
        "$defs": {
            "Node": {
                "type": "object",
                "properties": {
                    "value": {"type": "integer"},
                    "children": {"type": "array", "items": {"$ref": "#/$defs/Node"}},
                    "parent": {"anyOf": [{"$ref": "#/$defs/Node"}, {"type": "null"}]},
                },
                "required": ["value", "children", "parent"],
            }
        },
        "$ref": "#/$defs/Node",
    },
}


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_arguments_validate_against_schema(http: httpx.Client, name: str) -> None:
    """Generated arguments validate against each schema (formats included) for several prompts."""
    schema = SCHEMAS[name]
    for i in range(4):
        call = post(http, ask(f"case {i}", tools=[tool(name, schema)])).json()["choices"][0][
            "message"
        ]["tool_calls"][0]
        validate(json.loads(call["function"]["arguments"]), schema)


# --- pydantic models (what LangChain / the SDKs send) -----------------------------------------


class Unit(StrEnum):
    CELSIUS = "celsius"
    FAHRENHEIT = "fahrenheit"


class Address(BaseModel):
    street: str = Field(min_length=3, max_length=40)
    postcode: str = Field(pattern=r"^[0-9]{5}(-[0-9]{4})?$")
    country: Literal["US", "CA"]


class Node(BaseModel):
    name: str
    children: list[Node] = Field(max_length=3)


class Booking(BaseModel):
    guest: str
    nights: int = Field(ge=1, le=14)
    price: float = Field(gt=0, multiple_of=0.25)
    check_in: date
    created: datetime
    unit: Unit
    address: Address
    previous: Address | None
    tags: list[str] = Field(min_length=1, max_length=4)
    website: AnyUrl
    contact: Address | Node
    tree: Node


def test_pydantic_tool_arguments_parse(oai: openai.OpenAI) -> None:
    """A strict pydantic function tool: the SDK parses the arguments into the model."""
    completion = oai.chat.completions.parse(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "Book it"}],
        tools=[openai.pydantic_function_tool(Booking)],
    )
    [call] = completion.choices[0].message.tool_calls or []
    assert isinstance(call.function.parsed_arguments, Booking)
    Booking.model_validate_json(call.function.arguments)


def test_non_strict_pydantic_schema_validates(http: httpx.Client) -> None:
    """The plain model_json_schema ($defs, anyOf-null, defaults) also yields valid arguments."""
    schema = Booking.model_json_schema()
    for i in range(4):
        call = post(http, ask(f"b{i}", tools=[tool("book", schema)])).json()["choices"][0][
            "message"
        ]["tool_calls"][0]
        validate(json.loads(call["function"]["arguments"]), schema)
        Booking.model_validate_json(call["function"]["arguments"])


# --- structured output ------------------------------------------------------------------------


def test_json_schema_response_format_parses(oai: openai.OpenAI) -> None:
    """response_format=<pydantic model>: content is JSON the SDK parses into the model."""
    completion = oai.chat.completions.parse(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "Give me a booking"}],
        response_format=Booking,
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "stop" and choice.message.tool_calls is None
    assert isinstance(choice.message.parsed, Booking)
    assert completion.usage is not None
    assert completion.usage.completion_tokens == byte_tokens(choice.message.content or "")


def test_json_schema_raw_and_streamed(http: httpx.Client, oai: openai.OpenAI) -> None:
    """The content validates against the raw schema; streaming sends the same JSON in pieces."""
    schema = SCHEMAS["combinators"]
    format_ = {
        "type": "json_schema",
        "json_schema": {"name": "combo", "schema": schema, "strict": False},
    }
    content = post(http, ask(response_format=format_)).json()["choices"][0]["message"]["content"]
    validate(json.loads(content), schema)
    data = sse_data(post(http, ask(response_format=format_, stream=True)).text)
    chunks = [json.loads(d) for d in data[:-1]]
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    pieces = [c["choices"][0]["delta"]["content"] for c in chunks[1:-1]]
    assert len(pieces) > 1 and "".join(pieces) == content
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    with oai.chat.completions.stream(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}], response_format=Booking
    ) as stream:
        assert isinstance(stream.get_final_completion().choices[0].message.parsed, Booking)


def test_tools_win_over_response_format_until_tool_result(http: httpx.Client) -> None:
    """With both, the model calls the tool first and answers in the schema after the result."""
    format_ = {"type": "json_schema", "json_schema": {"name": "w", "schema": WEATHER}}
    body = ask(tools=[tool("get_weather", WEATHER)], response_format=format_)
    first = post(http, body).json()["choices"][0]
    assert first["finish_reason"] == "tool_calls"
    body["messages"] += [
        first["message"],
        {"role": "tool", "tool_call_id": first["message"]["tool_calls"][0]["id"], "content": "21C"},
    ]
    final = post(http, body).json()["choices"][0]
    assert final["finish_reason"] == "stop"
    validate(json.loads(final["message"]["content"]), WEATHER)


def test_json_object_mode(http: httpx.Client) -> None:
    """json_object: {"answer": "<12 words>"}; OpenAI needs the word json in the messages."""
    body = ask("Reply in JSON please", response_format={"type": "json_object"})
    data = post(http, body).json()
    content = data["choices"][0]["message"]["content"]
    answer = json.loads(content)
    assert list(answer) == ["answer"] and len(answer["answer"].split(" ")) == 12
    assert data["usage"]["completion_tokens"] == byte_tokens(content)
    refused = post(http, ask("no magic word", response_format={"type": "json_object"}))
    assert refused.status_code == 400 and refused.json()["error"]["param"] == "messages"
    groq = post(
        http,
        ask("no magic word", model="llama", response_format={"type": "json_object"}),
        "groq/chat/completions",
        GROQ_KEY,
    )
    assert groq.status_code == 200 and "answer" in json.loads(
        groq.json()["choices"][0]["message"]["content"]
    )


def test_structured_output_cut_by_max_tokens(http: httpx.Client) -> None:
    """A JSON content longer than max_tokens is cut, finish_reason length."""
    format_ = {"type": "json_schema", "json_schema": {"name": "w", "schema": SCHEMAS["strings"]}}
    full = post(http, ask(response_format=format_)).json()["choices"][0]["message"]["content"]
    cut = post(http, ask(response_format=format_, max_completion_tokens=5)).json()
    assert cut["choices"][0]["finish_reason"] == "length"
    assert cut["choices"][0]["message"]["content"] == full[:20]
    assert cut["usage"]["completion_tokens"] == 5


def test_response_format_validation(http: httpx.Client) -> None:
    """OpenAI's 400s for a json_schema without name, or an unknown type."""
    nameless = post(
        http, ask(response_format={"type": "json_schema", "json_schema": {"schema": {}}})
    )
    assert nameless.status_code == 400
    assert nameless.json()["error"]["param"] == "response_format.json_schema.name"
    unknown = post(http, ask(response_format={"type": "xml"}))
    assert unknown.status_code == 400 and unknown.json()["error"]["param"] == "response_format.type"
    text = post(http, ask(response_format={"type": "text"})).json()["choices"][0]["message"][
        "content"
    ]
    assert len(text.split(" ")) == 12
