"""The clients people put behind a gateway, unchanged, against what `make dev` runs: Claude Code,
Codex and the Gemini CLI (pinned in tests/clients/package.json), the Vercel AI SDK, the OpenAI Agents SDK,
Pydantic AI and LangChain (pinned in pyproject.toml). Each case asserts the protocol (the answer
parsed, the tool called and its result handed back, the object valid against its schema) and
that every upstream call it caused was charged exactly once, to its user, at the price of the
usage the provider reported (the ledger's delta in /admin/metrics equals the sum).

Every client talks to the gateway through a recording proxy (tests/recorder.py); with
RECORD_CLIENT_CORPUS=1 what they sent is written to tests/clients/corpus/, the corpus the fast
unit tests hold the gateway's checks and the emulator to. No client reaches anything but the
gateway: the agents and node run in a network namespace of their own where nothing else answers
(tests/netns.py), with telemetry, error reports and update checks off; a client that needed the
internet fails its case, on any machine."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from provision.local.runtime import LocalGateway
from tests import netns
from tests.charges import upstream_cost
from tests.recorder import Recorder
from tests.support import ROOT, Emulator, admin_metrics, eventually

CLIENTS = ROOT / "tests" / "clients"
CORPUS = CLIENTS / "corpus"
CLAUDE = CLIENTS / "node_modules" / ".bin" / "claude"
CODEX = CLIENTS / "node_modules" / ".bin" / "codex"
GEMINI = CLIENTS / "node_modules" / ".bin" / "gemini"
USER = "alice"
ORG = "demo-corp"


@pytest.fixture(scope="module")
def key(dev: LocalGateway) -> str:
    return dev.demo_keys()[USER]


@pytest.fixture(scope="module")
def upstream(dev: LocalGateway) -> Iterator[Emulator]:
    assert dev.emulator_url
    control = Emulator(dev.emulator_url)
    yield control
    control.close()


@pytest.fixture(scope="module")
def proxy(dev: LocalGateway) -> Iterator[Recorder]:
    with Recorder(dev.worker_url) as recorder:
        yield recorder


def spend(dev: LocalGateway) -> tuple[int, int]:
    """(requests, µUSD) of USER this month, as /admin/metrics reports them."""
    rows = admin_metrics(dev, org=ORG)["byUser"]
    row = next((r for r in rows if r["userId"] == USER), None)
    return (row["requests"], row["costMicros"]) if row else (0, 0)


@dataclass
class Exchange:
    """What one case sent: the client's requests (as the proxy saw them) and the upstream calls."""

    sent: list[dict[str, Any]] = field(default_factory=list)
    calls: list[dict[str, Any]] = field(default_factory=list)
    answers: list[dict[str, Any]] = field(default_factory=list)


@contextmanager
def charged_exactly(
    name: str, dev: LocalGateway, upstream: Emulator, proxy: Recorder
) -> Iterator[Exchange]:
    """Runs a client; then every upstream call it caused that the provider served must be charged
    once to USER at the price of its reported usage, and any the provider refused (a 4xx the
    client saw) nothing: the ledger's requests and µUSD rise by exactly that."""
    seen = {e["logId"] for e in upstream.requests(userId=USER)}
    before = spend(dev)
    proxy.taken()
    exchange = Exchange()
    yield exchange
    exchange.sent = proxy.taken()
    assert exchange.sent, f"{name} sent nothing to the gateway"
    exchange.calls = eventually(
        lambda: [
            e
            for e in upstream.requests(userId=USER)
            if e["logId"] not in seen and e["delivery"] != "pending"
        ]
    )
    assert exchange.calls, f"{name}: nothing went upstream"
    exchange.answers = [upstream.answer(e["logId"]) for e in exchange.calls]
    served = [
        (e, a) for e, a in zip(exchange.calls, exchange.answers, strict=True) if e["status"] == 200
    ]
    refused = [e for e in exchange.calls if e["status"] != 200]
    # a provider's refusal is the client's to see and costs nothing; anything else is an outage
    assert all(400 <= e["status"] < 500 for e in refused), [e["status"] for e in refused]
    cost = sum(upstream_cost(dev, e, a) for e, a in served)
    # every call is a recorded request; a refused one at 0 µUSD
    expected = (before[0] + len(exchange.calls), before[1] + cost)
    got = eventually(lambda: (s := spend(dev)) == expected and s, timeout=20) or spend(dev)
    assert got == expected, f"{name}: ledger moved from {before} to {got}, expected {expected}"
    record_corpus(name, exchange.sent)


def record_corpus(name: str, sent: list[dict[str, Any]]) -> None:
    """With RECORD_CLIENT_CORPUS=1: what the client sent, checked in for the fast unit tests."""
    if os.environ.get("RECORD_CLIENT_CORPUS") != "1":
        return
    CORPUS.mkdir(parents=True, exist_ok=True)
    path = CORPUS / f"{name}.json"
    path.write_text(json.dumps(sent, indent=1, ensure_ascii=False, sort_keys=True) + "\n")


class City(BaseModel):
    """The typed result the framework cases ask for."""

    name: str
    population: int


def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"Sunny in {city}"


def quiet_env(home: Path) -> dict[str, str]:
    """A clean environment: the machine's PATH, a fresh HOME, no proxies, nothing phoning home."""
    return {
        "PATH": os.environ["PATH"],
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "DISABLE_TELEMETRY": "1",
        "DISABLE_ERROR_REPORTING": "1",
        "DISABLE_AUTOUPDATER": "1",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "NO_COLOR": "1",
    }


def isolated(
    command: list[str], proxy: Recorder, *, cwd: Path, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    """`command` where only the recording proxy (and through it the gateway) answers."""
    port = int(proxy.url.rsplit(":", 1)[1])
    return netns.run(command, port=port, cwd=cwd, env=env, timeout=240)


def text_of(answer: dict[str, Any]) -> str:
    """The words of an Anthropic answer the emulator sent (streamed or not)."""
    from tests.charges import sse_events

    if "chunks" not in answer:
        return "".join(b.get("text", "") for b in json.loads(answer["body"])["content"])
    events = sse_events("".join(c["data"] for c in answer["chunks"]))
    return "".join(
        e["delta"].get("text", "")
        for _, e in events
        if isinstance(e, dict) and e.get("type") == "content_block_delta"
    )


# ---------------------------------------------------------------- Claude Code


def claude(
    proxy: Recorder, key: str, tmp_path: Path, prompt: str, *args: str
) -> subprocess.CompletedProcess[str]:
    """`claude -p PROMPT` as its docs configure it for a gateway, in an empty directory."""
    work = tmp_path / "work"
    work.mkdir()
    env = {
        **quiet_env(tmp_path / "home"),
        "ANTHROPIC_BASE_URL": f"{proxy.url}/anthropic",
        "ANTHROPIC_AUTH_TOKEN": key,
    }
    return isolated([str(CLAUDE), "-p", prompt, *args], proxy, cwd=work, env=env)


def test_claude_code_default_model_uses_a_tool_and_answers(
    dev: LocalGateway, upstream: Emulator, proxy: Recorder, key: str, tmp_path: Path
):
    """`claude -p` with no --model, in an empty directory, asked something that takes a tool: its
    default model id is served, the tool is called, its result goes back, the answer is printed."""
    with charged_exactly("claude-code", dev, upstream, proxy) as exchange:
        run = claude(proxy, key, tmp_path, "What does notes.txt say? emulate:tool=Read")
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    messages = [r for r in exchange.sent if r["path"].startswith("/anthropic/v1/messages")]
    assert messages[0]["body"]["model"] == "claude-opus-5-5"
    # the first answer called Read; a later request hands its result back under its id
    first = json.dumps(exchange.answers[0])
    tool_use = next(c for c in exchange.calls if c["logId"] == exchange.calls[0]["logId"])
    assert '\\"name\\":\\"Read\\"' in first, "the model was asked for Read"
    results = [
        block
        for r in messages[1:]
        for m in r["body"]["messages"]
        if m["role"] == "user" and isinstance(m["content"], list)
        for block in m["content"]
        if block.get("type") == "tool_result"
    ]
    assert results, "Claude Code never handed the tool's result back"
    assert results[0]["tool_use_id"] in first
    assert tool_use["model"] == "claude-opus-5-5"
    assert text_of(exchange.answers[-1]).strip() in run.stdout


@pytest.mark.parametrize(
    ("alias", "sent", "served"),
    [
        ("sonnet", "claude-sonnet-5-5", "claude-sonnet-5-5"),
        ("haiku", "claude-haiku-5-5", "claude-haiku-4-5"),
    ],
)
def test_claude_code_model_choices_are_served(
    dev: LocalGateway,
    upstream: Emulator,
    proxy: Recorder,
    key: str,
    tmp_path: Path,
    alias: str,
    sent: str,
    served: str,
):
    """`--model sonnet|haiku`: the ids Claude Code sends for them are served (haiku's through the
    stack's alias), and the answer is printed."""
    with charged_exactly(f"claude-code-{alias}", dev, upstream, proxy) as exchange:
        run = claude(proxy, key, tmp_path, "say hi emulate:tool=none", "--model", alias)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    assert exchange.sent[0]["body"]["model"] == sent
    assert {c["model"] for c in exchange.calls} == {served}
    assert exchange.calls[-1]["status"] == 200
    assert text_of(exchange.answers[-1]).strip() in run.stdout
    if served != sent:
        # an older model behind the alias: Anthropic refuses Claude Code's mid-conversation
        # system message there, and Claude Code sends the turn again without it (uncharged)
        for call, answer in zip(exchange.calls[:-1], exchange.answers[:-1], strict=True):
            assert call["status"] == 400 and "messages.1.role" in answer["body"]


# ---------------------------------------------------------------- Codex


def test_codex_exec_with_a_custom_provider_answers(
    dev: LocalGateway, upstream: Emulator, proxy: Recorder, key: str, tmp_path: Path
):
    """`codex exec` with the gateway as a custom Responses provider and the dev stack's reasoning
    model: it streams, reasons, and prints the answer."""
    home = tmp_path / "codex"
    home.mkdir()
    (home / "config.toml").write_text(
        "\n".join(
            [
                'model = "gpt-5"',
                'model_provider = "gateway"',
                "",
                "[model_providers.gateway]",
                'name = "LLM gateway"',
                f'base_url = "{proxy.url}/v1"',
                'env_key = "GATEWAY_API_KEY"',
                'wire_api = "responses"',
                "",
                "[analytics]",
                "enabled = false",
                "",
            ]
        )
    )
    work = tmp_path / "work"
    work.mkdir()
    env = {**quiet_env(tmp_path / "home"), "CODEX_HOME": str(home), "GATEWAY_API_KEY": key}
    with charged_exactly("codex", dev, upstream, proxy) as exchange:
        run = isolated(
            [str(CODEX), "exec", "--skip-git-repo-check", "say hi emulate:tool=none"],
            proxy,
            cwd=work,
            env=env,
        )
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    responses = [r for r in exchange.sent if r["path"] == "/v1/responses"]
    assert responses and responses[0]["body"]["model"] == "gpt-5"
    assert "client_metadata" in responses[0]["body"]
    assert {c["model"] for c in exchange.calls} == {"gpt-5"}
    events = [
        json.loads(c["data"].split("data: ", 1)[1])
        for c in exchange.answers[-1]["chunks"]
        if "data: " in c["data"]
    ]
    words = "".join(
        e.get("delta", "") for e in events if e.get("type") == "response.output_text.delta"
    )
    assert words.strip() and words.strip() in run.stdout


# ---------------------------------------------------------------- Gemini CLI


def gemini(
    proxy: Recorder, key: str, tmp_path: Path, prompt: str, *args: str
) -> subprocess.CompletedProcess[str]:
    """`gemini -p PROMPT` with the gateway as its base URL and the gateway key as its API key,
    in an empty directory: the API-key auth chosen in its settings (as its docs set it up for a
    key), usage statistics off, the directory trusted."""
    work = tmp_path / "work"
    work.mkdir()
    home = tmp_path / "home"
    (home / ".gemini").mkdir(parents=True)
    settings = {
        "security": {"auth": {"selectedType": "gemini-api-key"}},
        "privacy": {"usageStatisticsEnabled": False},
    }
    (home / ".gemini" / "settings.json").write_text(json.dumps(settings))
    env = {
        **quiet_env(home),
        "GEMINI_API_KEY": key,
        "GOOGLE_GEMINI_BASE_URL": proxy.url,
        "GEMINI_CLI_TRUST_WORKSPACE": "true",
    }
    return isolated([str(GEMINI), "-p", prompt, *args], proxy, cwd=work, env=env)


def test_gemini_cli_default_configuration_answers(
    dev: LocalGateway, upstream: Emulator, proxy: Recorder, key: str, tmp_path: Path
):
    """`gemini -p` with no model: its router (a JSON answer from gemini-3.5-flash-lite) picks the
    model, which answers in a stream; each call priced from its usageMetadata, the gateway key
    never upstream."""
    with charged_exactly("gemini-cli", dev, upstream, proxy) as exchange:
        run = gemini(proxy, key, tmp_path, "say hi emulate:tool=none")
    assert run.returncode == 0, run.stderr
    paths = [e["path"].split("/google-ai-studio/", 1)[1] for e in exchange.calls]
    assert paths[0] == "v1beta/models/gemini-3.5-flash-lite:generateContent"
    routed = paths[-1]
    assert routed in (
        "v1beta/models/gemini-3.8-flash:streamGenerateContent",
        "v1beta/models/gemini-3.1-pro-preview:streamGenerateContent",
    ), paths
    # the key as Gemini clients send it (the recorder keeps no credential), never upstream
    assert all(s["headers"].get("x-goog-api-key") == "<redacted>" for s in exchange.sent)
    assert key not in json.dumps(exchange.calls)
    from tests.charges import sse_events

    answer = exchange.answers[-1]
    words = "".join(
        part.get("text", "")
        for _, event in sse_events("".join(c["data"] for c in answer["chunks"]))
        if isinstance(event, dict)
        for part in event["candidates"][0]["content"]["parts"]
        if not part.get("thought")
    )
    assert words.strip() and words.strip() in run.stdout


def test_the_agents_are_installed_where_the_suite_expects_them():
    """make test installs the pinned agents (tests/clients); a missing one is a failure."""
    for binary in (CLAUDE, CODEX, GEMINI):
        assert binary.exists(), f"{binary} is missing: run make clients"


def test_in_the_clients_network_only_the_gateway_answers(proxy: Recorder, tmp_path: Path):
    """The namespace the clients run in: the gateway's port answers, the rest of the world (and
    any other port here) does not, whatever the machine's own network."""
    port = proxy.url.rsplit(":", 1)[1]
    probe = (
        "import socket\n"
        "def reach(host, port):\n"
        "    s = socket.socket(); s.settimeout(2)\n"
        "    return s.connect_ex((host, port)) == 0\n"
        f"print(reach('127.0.0.1', {port}), reach('1.1.1.1', 443), reach('127.0.0.1', 22))\n"
    )
    run = isolated(["python3", "-c", probe], proxy, cwd=tmp_path, env=quiet_env(tmp_path))
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["True", "False", "False"]


# ---------------------------------------------------------------- OpenAI Agents SDK


def test_openai_agents_sdk_runs_a_function_tool(
    dev: LocalGateway, upstream: Emulator, proxy: Recorder, key: str
):
    """An Agents SDK agent on the Responses API (the dev stack's reasoning model) calls its
    function tool, gets the result back to the model, and ends with the model's answer."""
    from agents import Agent, OpenAIResponsesModel, Runner, function_tool, set_tracing_disabled
    from openai import AsyncOpenAI

    set_tracing_disabled(True)  # traces would go to OpenAI's platform
    asked: list[str] = []

    @function_tool
    def get_weather(city: str) -> str:
        """The weather in a city."""
        asked.append(city)
        return f"Sunny in {city}"

    client = AsyncOpenAI(base_url=f"{proxy.url}/v1", api_key=key, max_retries=0)
    agent = Agent(
        name="weather",
        instructions="Answer with the weather.",
        tools=[get_weather],
        model=OpenAIResponsesModel(model="gpt-5", openai_client=client),
    )
    with charged_exactly("openai-agents", dev, upstream, proxy) as exchange:
        result = Runner.run_sync(agent, "What is the weather in Paris?")
    assert len(asked) == 1, "the tool ran once"
    assert len(exchange.calls) == 2, "one turn to call the tool, one to answer with its result"
    second = exchange.sent[-1]["body"]["input"]
    assert any(item.get("type") == "function_call_output" for item in second)
    assert isinstance(result.final_output, str) and result.final_output.strip()


# ---------------------------------------------------------------- Pydantic AI


def test_pydantic_ai_returns_a_typed_result_on_each_provider(
    dev: LocalGateway, upstream: Emulator, proxy: Recorder, key: str
):
    """A Pydantic AI agent with a typed output, on an OpenAI and an Anthropic model: the result
    is an instance of the type, validated by Pydantic."""
    from pydantic_ai import Agent
    from pydantic_ai.models.anthropic import AnthropicModel
    from pydantic_ai.models.openai import OpenAIChatModel
    from pydantic_ai.providers.anthropic import AnthropicProvider
    from pydantic_ai.providers.openai import OpenAIProvider

    models = [
        OpenAIChatModel(
            "gpt-4o-mini", provider=OpenAIProvider(base_url=f"{proxy.url}/v1", api_key=key)
        ),
        AnthropicModel(
            "claude-sonnet-5-5",
            provider=AnthropicProvider(base_url=f"{proxy.url}/anthropic", api_key=key),
        ),
    ]
    for model in models:
        with charged_exactly(f"pydantic-ai-{model.system}", dev, upstream, proxy):
            result = Agent(model, output_type=City).run_sync("Tell me about Paris.")
        assert isinstance(result.output, City)


# ---------------------------------------------------------------- LangChain


def test_langchain_openai_tools_and_each_structured_output_method(
    dev: LocalGateway, upstream: Emulator, proxy: Recorder, key: str
):
    """ChatOpenAI: a bound tool is called with arguments valid for it; with_structured_output
    returns the type with json_schema and function_calling, a dict with json_mode."""
    from langchain_core.tools import tool
    from langchain_openai import ChatOpenAI

    weather = tool(get_weather)

    llm = ChatOpenAI(model="gpt-4o-mini", base_url=f"{proxy.url}/v1", api_key=key, max_retries=0)
    with charged_exactly("langchain-openai", dev, upstream, proxy):
        called = llm.bind_tools([weather]).invoke("What is the weather in Paris?")
        schema = llm.with_structured_output(City, method="json_schema").invoke("Paris, as JSON")
        function = llm.with_structured_output(City, method="function_calling").invoke("Paris")
        mode = llm.with_structured_output(method="json_mode").invoke("Describe Paris as JSON.")
    assert called.tool_calls[0]["name"] == "get_weather"
    assert isinstance(called.tool_calls[0]["args"]["city"], str)
    assert isinstance(schema, City) and isinstance(function, City)
    assert isinstance(mode, dict)


def test_langchain_anthropic_tools_and_each_structured_output_method(
    dev: LocalGateway, upstream: Emulator, proxy: Recorder, key: str
):
    """ChatAnthropic: a bound tool is called; with_structured_output returns the type through a
    forced tool (function_calling, on a model that takes one) and through Anthropic's JSON
    Schema output (json_schema, output_config.format)."""
    from langchain_anthropic import ChatAnthropic
    from langchain_core.tools import tool

    weather = tool(get_weather)

    def claude(model: str) -> ChatAnthropic:
        return ChatAnthropic(
            model_name=model,
            base_url=f"{proxy.url}/anthropic",
            api_key=key,
            max_retries=0,
            timeout=60,
            stop=None,
        )

    # Sonnet 5.5 takes no forced tool choice: function_calling (a forced tool) runs on Sonnet 4.6
    llm = claude("claude-sonnet-5-5")
    with charged_exactly("langchain-anthropic", dev, upstream, proxy) as exchange:
        called = llm.bind_tools([weather]).invoke("What is the weather in Paris?")
        function = (
            claude("claude-sonnet-4-6")
            .with_structured_output(City, method="function_calling")
            .invoke("Paris")
        )
        schema = llm.with_structured_output(City, method="json_schema").invoke("Paris")
    assert called.tool_calls[0]["name"] == "get_weather"
    assert isinstance(function, City) and isinstance(schema, City)
    assert any("output_config" in r["body"] for r in exchange.sent), (
        "json_schema used output_config"
    )


# ---------------------------------------------------------------- Vercel AI SDK


def test_vercel_ai_sdk(dev: LocalGateway, upstream: Emulator, proxy: Recorder, key: str):
    """`ai` with @ai-sdk/openai (its default Responses model, `.chat()`, `embed`) and
    @ai-sdk/anthropic: text, streams, a tool round trip and generateObject on each, under node's
    test runner (worker/test/clients/vercel-ai.e2e.mjs)."""
    node = shutil.which("node") or "node"
    script = ROOT / "worker" / "test" / "clients" / "vercel-ai.e2e.mjs"
    env = {**os.environ, "GATEWAY_URL": proxy.url, "GATEWAY_KEY": key}
    with charged_exactly("vercel-ai", dev, upstream, proxy):
        result = isolated([node, "--test", str(script)], proxy, cwd=ROOT / "worker", env=env)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "# fail 0" in result.stdout and "# pass 11" in result.stdout, result.stdout[-2000:]
