"""The Workers AI binding (env.AI.run) served by the emulator.

Miniflare's `ai: {binding, remoteProxyConnectionString}` forwards each binding fetch to the
emulator as `POST /` with MF-URL (https://workers-binding.ai/ai-gateway/run?version=3),
MF-Binding and MF-Header-<name> headers. The first half of this file speaks that wire directly;
the second half runs a tiny Worker in workerd through worker/local/runtime.ts (the real
binding code) and calls env.AI.run, streaming and not.
"""

from __future__ import annotations

import json
import math
import select
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.emulator_support import (
    ACCOUNT,
    TOKEN,
    WORD,
    WORKER_DIR,
    add_fault,
    emulator_fixtures,
    sse_data,
)

GATEWAY = "binding-gw"  # authenticated: the binding needs no token anyway
CACHED_GATEWAY = "binding-cached"
LIMITED_GATEWAY = "binding-limited"
MODEL = "@cf/meta/llama-3.1-8b-instruct"
RUN_URL = "https://workers-binding.ai/ai-gateway/run?version=3"
CONFIG: dict[str, Any] = {
    "accountId": ACCOUNT,
    "gateways": {
        GATEWAY: {"authentication": True, "token": TOKEN},
        CACHED_GATEWAY: {"authentication": False, "cacheTtl": 300},
        LIMITED_GATEWAY: {"rateLimit": {"limit": 1, "interval": 60, "technique": "fixed"}},
    },
    "providerKeys": {"workers-ai": "cf-token"},
}
RUNTIME = WORKER_DIR / "local" / "runtime.ts"
START_TIMEOUT_S = 60.0
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "days": {"type": "integer", "minimum": 1}},
            "required": ["city"],
        },
    },
}
# A tiny Worker: POST {model, inputs, options} -> what env.AI.run returned (or threw).
WORKER = """
export default {
  async fetch(request, env) {
    const { model, inputs, options } = await request.json();
    try {
      const out = await env.AI.run(model, inputs, options);
      const ids = { logId: env.AI.aiGatewayLogId, requestId: env.AI.lastRequestId };
      if (out instanceof ReadableStream) {
        return Response.json({ kind: "stream", text: await new Response(out).text(), ...ids });
      }
      return Response.json({ kind: "object", value: out, ...ids });
    } catch (err) {
      return Response.json({ kind: "error", name: err.name, message: err.message, logId: env.AI.aiGatewayLogId });
    }
  },
};
"""


def prompt_tokens(*texts: str) -> int:
    return 3 + sum(4 + math.ceil(len(t.encode("utf-8")) / 4) for t in texts)


emulator_url, http = emulator_fixtures(CONFIG, "binding")


def binding_call(
    http: httpx.Client,
    inputs: Any,
    gateway: dict[str, Any] | None = None,
    model: str = MODEL,
    url: str = RUN_URL,
) -> httpx.Response:
    """What miniflare's remote proxy sends for env.AI.run(model, inputs, {gateway})."""
    options: dict[str, Any] = {} if gateway is None else {"gateway": gateway}
    body = json.dumps({"inputs": inputs, "options": options})
    return http.post(
        "/",
        content=body,
        headers={
            "MF-URL": url,
            "MF-Binding": "AI",
            "MF-Header-content-type": "application/json",
            "MF-Header-cf-consn-sdk-version": "2.0.0",
            "MF-Header-cf-consn-model-id": model,
            "MF-Header-content-length": str(len(body)),
        },
    )


def last_request(http: httpx.Client) -> dict[str, Any]:
    return http.get("/__emulator/requests", params={"limit": 1}).json()["requests"][0]


# --- the wire, spoken directly -----------------------------------------------------------------


def test_text_generation_returns_the_bare_output(http: httpx.Client) -> None:
    """{response, usage} with content-type exactly application/json (the binding parses only that)."""
    response = binding_call(http, {"prompt": "Hello"}, {"id": GATEWAY})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"response", "usage"}
    words = body["response"].split(" ")
    assert len(words) == 12 and all(WORD.match(w) for w in words)
    assert body["usage"] == {
        "prompt_tokens": prompt_tokens("Hello"),
        "completion_tokens": 12,
        "total_tokens": prompt_tokens("Hello") + 12,
    }
    assert response.headers["cf-aig-log-id"] == last_request(http)["logId"]
    assert response.headers["cf-ai-req-id"]


def test_messages_and_max_tokens(http: httpx.Client) -> None:
    """{messages} works like {prompt}; max_tokens caps the words."""
    messages = [{"role": "system", "content": "Be terse."}, {"role": "user", "content": "Hi"}]
    body = binding_call(http, {"messages": messages, "max_tokens": 4}, {"id": GATEWAY}).json()
    assert len(body["response"].split(" ")) == 4
    assert body["usage"]["prompt_tokens"] == prompt_tokens("Be terse.", "Hi")
    assert body["usage"]["completion_tokens"] == 4


def test_binding_matches_http_run_route(http: httpx.Client) -> None:
    """The binding's output is the native run route's `result`, without the v4 envelope."""
    inputs = {"messages": [{"role": "user", "content": "same"}]}
    bare = binding_call(http, inputs, {"id": GATEWAY}).json()
    wrapped = http.post(
        f"/v1/{ACCOUNT}/{GATEWAY}/workers-ai/{MODEL}",
        json=inputs,
        headers={"cf-aig-authorization": f"Bearer {TOKEN}", "authorization": "Bearer cf-token"},
    ).json()
    assert wrapped["result"] == bare


def test_stream_is_workers_ai_sse(http: httpx.Client) -> None:
    """stream: true answers data: {"response"} per word, a usage event, then [DONE]."""
    inputs = {"messages": [{"role": "user", "content": "emulate:tokens=5"}], "stream": True}
    response = binding_call(http, inputs, {"id": GATEWAY})
    assert response.headers["content-type"] == "text/event-stream"
    data = sse_data(response.text)
    assert data[-1] == "[DONE]"
    events = [json.loads(d) for d in data[:-1]]
    assert [set(e) for e in events[:-1]] == [{"response"}] * 5
    assert events[-1]["response"] == "" and events[-1]["usage"]["completion_tokens"] == 5
    assert last_request(http)["stream"] is True
    full = binding_call(http, {**inputs, "stream": False}, {"id": GATEWAY}).json()["response"]
    assert "".join(e["response"] for e in events) == full


def test_call_is_logged_with_gateway_options(http: httpx.Client) -> None:
    """The log has provider, model, gateway id, binding, metadata and the options as sent."""
    options = {
        "id": GATEWAY,
        "metadata": {"tenant": "acme", "n": 3},
        "skipCache": True,
        "cacheTtl": 120,
    }
    binding_call(http, {"prompt": "log me"}, options)
    entry = last_request(http)
    assert (entry["provider"], entry["model"], entry["gatewayId"]) == ("workers-ai", MODEL, GATEWAY)
    assert entry["binding"] == "AI" and entry["path"] == "/ai-gateway/run"
    assert entry["metadata"] == {"tenant": "acme", "n": 3}
    assert entry["gatewayOptions"] == options
    assert entry["headers"]["cf-consn-model-id"] == MODEL
    assert "mf-url" not in entry["headers"]
    assert entry["body"] == {"inputs": {"prompt": "log me"}, "options": {"gateway": options}}
    assert entry["usage"]["completion_tokens"] == 12
    listed = http.get("/__emulator/requests", params={"gatewayId": GATEWAY, "binding": "AI"}).json()
    assert [e["logId"] for e in listed["requests"]] == [entry["logId"]]
    filtered = http.get("/__emulator/requests", params={"metadata.tenant": "acme"}).json()
    assert len(filtered["requests"]) == 1


def test_cache_options(http: httpx.Client) -> None:
    """The gateway cache applies; skipCache bypasses it, cacheTtl turns it on."""
    inputs = {"prompt": "cache me"}
    first = binding_call(http, inputs, {"id": CACHED_GATEWAY})
    second = binding_call(http, inputs, {"id": CACHED_GATEWAY})
    assert first.headers["cf-aig-cache-status"] == "MISS"
    assert second.headers["cf-aig-cache-status"] == "HIT" and second.json() == first.json()
    skipped = binding_call(http, inputs, {"id": CACHED_GATEWAY, "skipCache": True})
    assert skipped.headers["cf-aig-cache-status"] == "MISS"
    binding_call(http, inputs, {"id": GATEWAY, "cacheTtl": 60})
    ttl = binding_call(http, inputs, {"id": GATEWAY, "cacheTtl": 60})
    assert ttl.headers["cf-aig-cache-status"] == "HIT"
    assert binding_call(http, inputs, {"id": GATEWAY}).headers["cf-aig-cache-status"] == "MISS"


def test_tools_give_tool_calls(http: httpx.Client) -> None:
    """tools: {response: "", tool_calls: [{name, arguments: object}], usage}; a tool result gets words."""
    inputs: dict[str, Any] = {
        "messages": [{"role": "user", "content": "Weather in Rome?"}],
        "tools": [WEATHER_TOOL],
    }
    body = binding_call(http, inputs, {"id": GATEWAY}).json()
    assert body["response"] == ""
    [call] = body["tool_calls"]
    assert call["name"] == "get_weather" and isinstance(call["arguments"]["city"], str)
    args = json.dumps(call["arguments"], separators=(",", ":"))
    assert body["usage"]["completion_tokens"] == math.ceil(len(args) / 4)
    legacy = {**inputs, "tools": [WEATHER_TOOL["function"]]}
    assert binding_call(http, legacy, {"id": GATEWAY}).json()["tool_calls"] == body["tool_calls"]
    inputs["messages"] += [
        {"role": "assistant", "content": "", "tool_calls": body["tool_calls"]},
        {"role": "tool", "content": "sunny"},
    ]
    final = binding_call(http, inputs, {"id": GATEWAY}).json()
    assert "tool_calls" not in final and len(final["response"].split(" ")) == 12


def test_embeddings_model(http: httpx.Client) -> None:
    """{text} on an embedding model answers {shape, data, pooling} bare."""
    body = binding_call(
        http, {"text": ["a", "b"]}, {"id": GATEWAY}, model="@cf/baai/bge-base-en-v1.5"
    ).json()
    assert body["shape"] == [2, 768] and len(body["data"]) == 2 and body["pooling"] == "mean"


def test_errors_as_the_binding_reads_them(http: httpx.Client) -> None:
    """Unknown gateway: AiGatewayError 2001; bad input and unknown model: AiError bodies."""
    unknown = binding_call(http, {"prompt": "x"}, {"id": "nope"})
    assert unknown.status_code == 400
    assert unknown.json()["name"] == "AiGatewayError" and unknown.json()["internalCode"] == 2001
    bad = binding_call(http, {"nothing": True}, {"id": GATEWAY})
    assert bad.status_code == 400
    assert bad.json()["name"] == "AiError" and bad.json()["internalCode"] == 5006
    assert bad.json()["description"]
    third_party = binding_call(http, {"prompt": "x"}, {"id": GATEWAY}, model="openai/gpt-4o")
    assert third_party.status_code == 400 and third_party.json()["internalCode"] == 5007
    bad_metadata = binding_call(http, {"prompt": "x"}, {"id": GATEWAY, "metadata": {"o": {"x": 1}}})
    assert bad_metadata.status_code == 400 and bad_metadata.json()["name"] == "AiGatewayError"


def test_gateway_rate_limit_and_faults_apply(http: httpx.Client) -> None:
    """Gateway rate limits (2003) and faults (provider workers-ai) hit binding calls too."""
    assert binding_call(http, {"prompt": "x"}, {"id": LIMITED_GATEWAY}).status_code == 200
    limited = binding_call(http, {"prompt": "x"}, {"id": LIMITED_GATEWAY})
    assert limited.status_code == 429 and limited.json()["internalCode"] == 2003
    add_fault(http, match={"provider": "workers-ai", "path": "/ai-gateway/run"}, status=429)
    fault = binding_call(http, {"prompt": "x"}, {"id": GATEWAY})
    assert fault.status_code == 429 and fault.json()["errors"][0]["code"] == 3040
    assert last_request(http)["fault"] is not None


def test_default_gateway_is_auto_created(http: httpx.Client) -> None:
    """gateway.id "default" works without configuration (auto-created, as in production)."""
    assert binding_call(http, {"prompt": "x"}, {"id": "default"}).status_code == 200
    assert last_request(http)["gatewayId"] == "default"


def test_run_without_gateway(http: httpx.Client) -> None:
    """No gateway.id: /run?version=3 answers without cf-aig-* headers; still logged."""
    response = binding_call(
        http, {"prompt": "x"}, None, url="https://workers-binding.ai/run?version=3"
    )
    assert response.status_code == 200 and "response" in response.json()
    assert "cf-aig-log-id" not in response.headers and response.headers["cf-ai-req-id"]
    entry = last_request(http)
    assert entry["gatewayId"] is None and entry["path"] == "/run"


def test_other_binding_urls_and_probes(http: httpx.Client) -> None:
    """Unknown binding URLs answer a v4 404; miniflare's GET /?MF-Binding=AI probes a 404."""
    logs = binding_call(
        http,
        {},
        {"id": GATEWAY},
        url=f"https://workers-binding.ai/ai-gateway/gateways/{GATEWAY}/logs/x",
    )
    assert logs.status_code == 404 and logs.json()["success"] is False
    assert http.get("/", params={"MF-Binding": "AI"}).status_code == 404


# --- the real binding in workerd ----------------------------------------------------------------


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """runtime.ts with the tiny Worker, aiBinding "AI" and the emulator; yields its URLs."""
    spec = {
        "host": "127.0.0.1",
        "port": 0,
        "modules": {"worker.mjs": WORKER},
        "mainModule": "worker.mjs",
        "compatibilityDate": "2025-09-01",
        "kvBinding": "KV",
        "kvRecords": {},
        "managedPrefixes": [],
        "bindings": {},
        "aiBinding": "AI",
        "emulator": {"port": 0, "config": CONFIG},
    }
    spec_path: Path = tmp_path_factory.mktemp("runtime") / "spec.json"
    spec_path.write_text(json.dumps(spec))
    proc = subprocess.Popen(
        ["node", "--import", "tsx/esm", str(RUNTIME), str(spec_path)],
        cwd=WORKER_DIR,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    try:
        ready, _, _ = select.select([proc.stdout], [], [], START_TIMEOUT_S)
        line = proc.stdout.readline() if ready else ""
        if not line:
            raise RuntimeError("runtime.ts did not start")
        yield json.loads(line)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def run(
    runtime: dict[str, str], inputs: Any, options: dict[str, Any], model: str = MODEL
) -> dict[str, Any]:
    response = httpx.post(
        runtime["workerUrl"],
        json={"model": model, "inputs": inputs, "options": options},
        timeout=30,
    )
    response.raise_for_status()
    result: dict[str, Any] = response.json()
    return result


def emulator_log(runtime: dict[str, str], log_id: str) -> dict[str, Any]:
    entries = httpx.get(f"{runtime['emulatorUrl']}/__emulator/requests").json()["requests"]
    [entry] = [e for e in entries if e["logId"] == log_id]
    return entry


def test_env_ai_run_returns_the_parsed_output(runtime: dict[str, str]) -> None:
    """env.AI.run resolves to {response, usage}; aiGatewayLogId is the emulator's log id."""
    options = {"gateway": {"id": GATEWAY, "metadata": {"tenant": "t1"}, "skipCache": True}}
    out = run(runtime, {"prompt": "Hello", "max_tokens": 5}, options)
    assert out["kind"] == "object"
    assert set(out["value"]) == {"response", "usage"}
    assert len(out["value"]["response"].split(" ")) == 5
    assert out["value"]["usage"]["prompt_tokens"] == prompt_tokens("Hello")
    assert out["requestId"]
    entry = emulator_log(runtime, out["logId"])
    assert (entry["provider"], entry["model"], entry["gatewayId"]) == ("workers-ai", MODEL, GATEWAY)
    assert entry["metadata"] == {"tenant": "t1"} and entry["gatewayOptions"] == options["gateway"]
    assert entry["headers"]["cf-consn-sdk-version"] == "2.0.0"


def test_env_ai_run_streams_sse_bytes(runtime: dict[str, str]) -> None:
    """stream: true resolves to a ReadableStream of the Workers AI SSE bytes."""
    inputs = {"messages": [{"role": "user", "content": "emulate:tokens=3"}], "stream": True}
    out = run(runtime, inputs, {"gateway": {"id": GATEWAY}})
    assert out["kind"] == "stream"
    data = sse_data(out["text"])
    assert data[-1] == "[DONE]"
    events = [json.loads(d) for d in data[:-1]]
    assert len(events) == 4 and events[-1]["usage"]["completion_tokens"] == 3
    text = "".join(e["response"] for e in events)
    full = run(runtime, {**inputs, "stream": False}, {"gateway": {"id": GATEWAY}})
    assert full["value"]["response"] == text
    assert emulator_log(runtime, out["logId"])["stream"] is True


def test_env_ai_run_tool_calls(runtime: dict[str, str]) -> None:
    """Tools through the real binding: tool_calls in the parsed output."""
    inputs = {"messages": [{"role": "user", "content": "Weather?"}], "tools": [WEATHER_TOOL]}
    out = run(runtime, inputs, {"gateway": {"id": GATEWAY}})
    assert out["value"]["tool_calls"][0]["name"] == "get_weather"


def test_env_ai_run_errors_are_thrown(runtime: dict[str, str]) -> None:
    """Errors surface as the binding throws them: name and "<code>: <description>"."""
    unknown = run(runtime, {"prompt": "x"}, {"gateway": {"id": "no-such-gateway"}})
    assert unknown["kind"] == "error" and unknown["name"] == "AiGatewayError"
    assert unknown["message"] == "2001: Please configure AI Gateway in the Cloudflare dashboard"
    bad = run(runtime, {"nothing": 1}, {"gateway": {"id": GATEWAY}})
    assert bad["name"] == "AiError" and bad["message"].startswith("5006: ")
    httpx.post(
        f"{runtime['emulatorUrl']}/__emulator/faults",
        json={"match": {"provider": "workers-ai"}, "status": 429},
    ).raise_for_status()
    limited = run(runtime, {"prompt": "x"}, {"gateway": {"id": GATEWAY}})
    assert limited["name"] == "InferenceUpstreamError"
    assert limited["message"] == "3040: Capacity temporarily exceeded, please try again."


def test_env_ai_run_without_gateway(runtime: dict[str, str]) -> None:
    """Without a gateway the call still works; aiGatewayLogId stays null."""
    out = run(runtime, {"prompt": "direct"}, {})
    assert out["kind"] == "object" and out["logId"] is None
    assert len(out["value"]["response"].split(" ")) == 12
