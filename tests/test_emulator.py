"""Tests of the local AI Gateway emulator (worker/local/emulator.ts).

The emulator runs as a subprocess on a port it picks itself, so these tests can run in
parallel with any other test file. Every test starts from a reset emulator (log, faults,
cache and rate-limit windows cleared); tests that change gateway settings use a gateway of
their own.
"""

from __future__ import annotations

import base64
import json
import math
import re
import signal
import struct
import time
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest

from tests.emulator_support import (
    ACCOUNT,
    ANTHROPIC_KEY,
    CLAUDE,
    CONFIG,
    CROCKFORD_ULID,
    GATEWAY,
    OPEN_GATEWAY,
    OPENAI_KEY,
    TOKEN,
    WORD,
    WORKERS_AI_KEY,
    _start,
    add_fault,
    emulator_fixtures,
    sse_data,
)

emulator_url, http = emulator_fixtures(CONFIG, "emulator")


def gw_path(gateway: str = GATEWAY, account: str = ACCOUNT) -> str:
    return f"/v1/{account}/{gateway}"


def aig_headers(key: str | None = OPENAI_KEY, **extra: str) -> dict[str, str]:
    headers = {"cf-aig-authorization": f"Bearer {TOKEN}", **extra}
    if key is not None:
        headers["authorization"] = f"Bearer {key}"
    return headers


def chat_body(
    content: str = "Hello there", model: str = "openai/gpt-4o-mini", **extra: Any
) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": content}], **extra}


def compat_chat(http: httpx.Client, body: dict[str, Any], **headers: str) -> httpx.Response:
    return http.post(
        f"{gw_path()}/compat/chat/completions", json=body, headers=aig_headers(**headers)
    )


def prompt_tokens(*texts: str) -> int:
    return 3 + sum(4 + math.ceil(len(t.encode("utf-8")) / 4) for t in texts)


def gateway_error(response: httpx.Response) -> int:
    body = response.json()
    assert body["success"] is False and body["name"] == "AiGatewayError"
    assert body["httpCode"] == response.status_code
    assert body["internalCode"] == body["error"][0]["code"]
    assert body["description"] == body["error"][0]["message"]
    return body["error"][0]["code"]


def last_request(http: httpx.Client) -> dict[str, Any]:
    return http.get("/__emulator/requests", params={"limit": 1}).json()["requests"][0]


@pytest.fixture()
def oai(emulator_url: str, http: httpx.Client) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=f"{emulator_url}{gw_path()}/compat",
        api_key=OPENAI_KEY,
        default_headers={"cf-aig-authorization": f"Bearer {TOKEN}"},
        max_retries=0,
    )


@pytest.fixture()
def claude(emulator_url: str, http: httpx.Client) -> anthropic.Anthropic:
    return anthropic.Anthropic(
        base_url=f"{emulator_url}{gw_path()}/anthropic",
        api_key=ANTHROPIC_KEY,
        default_headers={"cf-aig-authorization": f"Bearer {TOKEN}"},
        max_retries=0,
    )


# --- controls -------------------------------------------------------------------------------


def test_health(http: httpx.Client) -> None:
    """GET /__emulator/health answers {ok: true} without any auth."""
    assert http.get("/__emulator/health").json() == {"ok": True}


def test_cli_prints_one_json_line_and_exits_cleanly(tmp_path: Path) -> None:
    """The script prints exactly one {"emulatorUrl"} line and exits 0 on SIGTERM."""
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps(CONFIG))
    proc, line = _start(config_path)
    try:
        assert re.fullmatch(r'\{"emulatorUrl":"http://127\.0\.0\.1:\d+"\}\n', line)
        assert httpx.get(json.loads(line)["emulatorUrl"] + "/__emulator/health").status_code == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=5)
    assert proc.returncode == 0
    assert out == ""


def test_config_endpoint_masks_secrets(http: httpx.Client) -> None:
    """GET /__emulator/config never shows gateway tokens or provider keys in full."""
    text = http.get("/__emulator/config").text
    assert ACCOUNT in text
    for secret in (TOKEN, OPENAI_KEY, ANTHROPIC_KEY, WORKERS_AI_KEY):
        assert secret not in text


def test_request_log_records_headers_and_parsed_body(http: httpx.Client) -> None:
    """Requests are logged with lower-case headers, parsed body, status, provider and usage."""
    body = chat_body("log me")
    compat_chat(http, body, **{"X-Custom-Header": "v"})
    entry = last_request(http)
    assert entry["headers"]["x-custom-header"] == "v"
    assert entry["headers"]["authorization"] == f"Bearer {OPENAI_KEY}"
    assert entry["body"] == body
    assert entry["method"] == "POST" and entry["status"] == 200
    assert entry["path"] == f"{gw_path()}/compat/chat/completions"
    assert (entry["provider"], entry["model"]) == ("openai", "gpt-4o-mini")
    assert entry["usage"]["completion_tokens"] == 12
    assert http.delete("/__emulator/requests").status_code == 200
    assert http.get("/__emulator/requests").json() == {"requests": []}


# --- compat chat completions ------------------------------------------------------------------


def test_compat_completion_has_openai_shape(oai: openai.OpenAI) -> None:
    """A compat completion is an OpenAI chat.completion with the model stripped of its prefix."""
    completion = oai.chat.completions.create(
        model="openai/gpt-4o-mini", messages=[{"role": "user", "content": "Hi"}]
    )
    assert completion.object == "chat.completion"
    assert completion.id.startswith("chatcmpl-")
    assert completion.model == "gpt-4o-mini"
    assert completion.system_fingerprint == "fp_emulator"
    choice = completion.choices[0]
    assert choice.finish_reason == "stop"
    assert choice.message.role == "assistant"
    words = (choice.message.content or "").split(" ")
    assert len(words) == 12 and all(WORD.match(w) for w in words)
    assert completion.usage is not None
    assert completion.usage.completion_tokens == 12
    assert completion.usage.prompt_tokens == prompt_tokens("Hi")
    assert completion.usage.total_tokens == completion.usage.prompt_tokens + 12


def test_same_request_gets_same_reply(http: httpx.Client) -> None:
    """The reply is a pure function of messages and model; a different prompt changes it."""
    first = compat_chat(http, chat_body("same")).json()["choices"][0]["message"]["content"]
    again = compat_chat(http, chat_body("same")).json()["choices"][0]["message"]["content"]
    other = compat_chat(http, chat_body("different")).json()["choices"][0]["message"]["content"]
    assert first == again
    assert first != other


def test_reply_does_not_depend_on_provider_route(http: httpx.Client) -> None:
    """Compat `openai/m` and native OpenAI `m` give the same text for the same messages."""
    compat = compat_chat(http, chat_body("route")).json()
    native = http.post(
        f"{gw_path()}/openai/chat/completions",
        json=chat_body("route", model="gpt-4o-mini"),
        headers=aig_headers(),
    ).json()
    assert compat["choices"][0]["message"]["content"] == native["choices"][0]["message"]["content"]


def test_streamed_text_equals_non_streamed_text(oai: openai.OpenAI) -> None:
    """Streaming yields role chunk, one chunk per word, a finish chunk, and the same text."""
    messages: list[Any] = [{"role": "user", "content": "stream me"}]
    full = oai.chat.completions.create(model="openai/gpt-4o-mini", messages=messages)
    chunks = list(
        oai.chat.completions.create(model="openai/gpt-4o-mini", messages=messages, stream=True)
    )
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[0].choices[0].delta.content == ""
    words = [c.choices[0].delta.content for c in chunks[1:-1]]
    assert len(words) == 12
    assert words[0] is not None and not words[0].startswith(" ")
    assert all(w is not None and w.startswith(" ") for w in words[1:])
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert chunks[-1].choices[0].delta.content is None
    assert {c.id for c in chunks} == {chunks[0].id} and {c.object for c in chunks} == {
        "chat.completion.chunk"
    }
    assert all(c.usage is None for c in chunks)
    assert "".join(w or "" for w in words) == full.choices[0].message.content


def test_stream_usage_chunk_only_with_include_usage(http: httpx.Client) -> None:
    """include_usage adds usage:null to every chunk and one final choices:[] chunk with usage."""
    plain = sse_data(compat_chat(http, chat_body("u", stream=True)).text)
    assert plain[-1] == "[DONE]"
    assert all("usage" not in json.loads(d) for d in plain[:-1])

    response = compat_chat(
        http, chat_body("u", stream=True, stream_options={"include_usage": True})
    )
    assert response.headers["content-type"] == "text/event-stream"
    data = sse_data(response.text)
    assert data[-1] == "[DONE]"
    chunks = [json.loads(d) for d in data[:-1]]
    assert all(c["usage"] is None for c in chunks[:-1])
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["completion_tokens"] == 12
    assert chunks[-1]["usage"]["prompt_tokens"] == prompt_tokens("u")
    assert len(chunks) == 1 + 12 + 1 + 1


def test_a_paced_stream_arrives_chunk_by_chunk_and_is_recorded_with_its_times(
    http: httpx.Client,
) -> None:
    """With a chunk delay the client gets the first chunk well before the last, and GET
    /__emulator/answers/<logId> gives the chunks it got, in order, each with the wall-clock time
    it was sent: what the delivery tests and make bench compare with."""
    add_fault(http, match={"path": "/compat/"}, chunkDelayMs=40)
    before = time.time() * 1000
    arrivals = []
    with http.stream(
        "POST",
        f"{gw_path()}/compat/chat/completions",
        json=chat_body("slow emulate:tokens=4", stream=True),
        headers=aig_headers(),
    ) as response:
        pieces = []
        for piece in response.iter_text():
            arrivals.append(time.time() * 1000)
            pieces.append(piece)
        body = "".join(pieces)
        log_id = response.headers["cf-aig-log-id"]
    after = time.time() * 1000
    assert arrivals[-1] - arrivals[0] >= 150  # 5 more chunks, 40 ms apart
    recorded = http.get(f"/__emulator/answers/{log_id}").json()["chunks"]
    assert "".join(chunk["data"] for chunk in recorded) == body
    times = [chunk["at"] for chunk in recorded]
    assert before <= times[0] and times[-1] <= after
    gaps = [later - earlier for earlier, later in zip(times, times[1:], strict=False)]
    assert all(gap >= 35 for gap in gaps), gaps
    assert http.get("/__emulator/answers/nope").status_code == 404
    answered = http.post(
        f"{gw_path()}/compat/chat/completions", json=chat_body("whole"), headers=aig_headers()
    )
    kept = http.get(f"/__emulator/answers/{answered.headers['cf-aig-log-id']}").json()
    assert (kept["status"], kept["body"]) == (200, answered.text)


# --- token rules ----------------------------------------------------------------------------


def test_emulate_tokens_sets_exact_word_count(http: httpx.Client) -> None:
    """`emulate:tokens=N` in the last user message gives exactly N words and N completion tokens."""
    body = chat_body("please emulate:tokens=37 thanks")
    data = compat_chat(http, body).json()
    assert len(data["choices"][0]["message"]["content"].split(" ")) == 37
    assert data["usage"]["completion_tokens"] == 37
    earlier = {
        "model": "openai/gpt-4o-mini",
        "messages": [
            {"role": "user", "content": "emulate:tokens=5"},
            {"role": "assistant", "content": "ok"},
            {"role": "user", "content": "no directive here"},
        ],
    }
    assert compat_chat(http, earlier).json()["usage"]["completion_tokens"] == 12


def test_max_tokens_truncates_with_length(http: httpx.Client) -> None:
    """max_tokens / max_completion_tokens below the reply length cut it and finish with "length"."""
    for field in ("max_tokens", "max_completion_tokens"):
        data = compat_chat(http, chat_body("cap me", **{field: 5})).json()
        assert data["choices"][0]["finish_reason"] == "length"
        assert len(data["choices"][0]["message"]["content"].split(" ")) == 5
        assert data["usage"]["completion_tokens"] == 5
    uncapped = compat_chat(http, chat_body("cap me emulate:tokens=3", max_tokens=3)).json()
    assert uncapped["choices"][0]["finish_reason"] == "stop"


def test_prompt_token_formula(http: httpx.Client) -> None:
    """prompt_tokens = 3 + sum(4 + ceil(utf8 bytes / 4)), content parts concatenated."""
    body = {
        "model": "openai/gpt-4o-mini",
        "messages": [
            {"role": "system", "content": "You are terse."},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "héllo "},
                    {"type": "text", "text": "wörld ✓"},
                ],
            },
            {"role": "assistant", "content": ""},
        ],
    }
    usage = compat_chat(http, body).json()["usage"]
    assert usage["prompt_tokens"] == prompt_tokens("You are terse.", "héllo wörld ✓", "")


# --- gateway errors -------------------------------------------------------------------------


def test_model_without_provider_prefix_is_2019(http: httpx.Client) -> None:
    """A compat model without `provider/` is a 400/2019; an unknown provider is a 400."""
    response = compat_chat(http, chat_body(model="gpt-4o-mini"))
    assert response.status_code == 400 and gateway_error(response) == 2019
    unknown = compat_chat(http, chat_body(model="nope/model"))
    assert unknown.status_code == 400
    gateway_error(unknown)


def test_unknown_gateway_or_account_is_2001(http: httpx.Client) -> None:
    """An unknown gateway id or account id answers 400 with code 2001."""
    for path in (gw_path("no-such-gateway"), gw_path(account="f" * 32)):
        response = http.post(
            f"{path}/compat/chat/completions", json=chat_body(), headers=aig_headers()
        )
        assert response.status_code == 400
        assert gateway_error(response) == 2001
        assert (
            response.json()["error"][0]["message"]
            == "Please configure AI Gateway in the Cloudflare dashboard"
        )


def test_bad_gateway_token_is_2009(http: httpx.Client) -> None:
    """An authenticated gateway rejects a missing or wrong cf-aig-authorization with 401/2009."""
    path = f"{gw_path()}/compat/chat/completions"
    missing = http.post(path, json=chat_body(), headers={"authorization": f"Bearer {OPENAI_KEY}"})
    wrong = http.post(
        path, json=chat_body(), headers=aig_headers(**{"cf-aig-authorization": "Bearer nope"})
    )
    for response in (missing, wrong):
        assert response.status_code == 401 and gateway_error(response) == 2009


def test_bad_openai_key_passes_openai_error_through(http: httpx.Client) -> None:
    """A wrong OpenAI key gives OpenAI's 401 invalid_api_key body, without echoing the key."""
    response = compat_chat(http, chat_body(), key="sk-wrong-key-123")
    assert response.status_code == 401
    assert response.json() == {
        "error": {
            "message": "Incorrect API key provided.",
            "type": "invalid_request_error",
            "param": None,
            "code": "invalid_api_key",
        }
    }
    assert "sk-wrong-key-123" not in response.text


def test_bad_anthropic_key_passes_anthropic_error_through(
    emulator_url: str, http: httpx.Client
) -> None:
    """A wrong x-api-key gives Anthropic's 401 authentication_error body."""
    client = anthropic.Anthropic(
        base_url=f"{emulator_url}{gw_path()}/anthropic",
        api_key="sk-ant-wrong",
        default_headers={"cf-aig-authorization": f"Bearer {TOKEN}"},
        max_retries=0,
    )
    with pytest.raises(anthropic.AuthenticationError) as caught:
        client.messages.create(
            model=CLAUDE, max_tokens=10, messages=[{"role": "user", "content": "x"}]
        )
    assert caught.value.status_code == 401
    assert caught.value.body == {
        "type": "error",
        "error": {"type": "authentication_error", "message": "invalid x-api-key"},
    }


def test_byok_provider_may_omit_key(http: httpx.Client) -> None:
    """A byokProviders provider may omit its key header, but a wrong key still fails."""
    path = f"{gw_path(OPEN_GATEWAY)}/compat/chat/completions"
    assert http.post(path, json=chat_body()).status_code == 200
    assert (
        http.post(path, json=chat_body(), headers={"authorization": "Bearer sk-bad"}).status_code
        == 401
    )
    assert http.post(path, json=chat_body(model=f"anthropic/{CLAUDE}")).status_code == 401


@pytest.mark.parametrize("technique", ["fixed", "sliding"])
def test_gateway_rate_limit_is_2003(http: httpx.Client, technique: str) -> None:
    """Past the gateway-wide limit requests get 429 with code 2003 and are not processed."""
    gateway = f"rl-{technique}"
    rate_limit = {"limit": 2, "interval": 3600, "technique": technique}
    http.post(
        "/__emulator/config", json={"gateways": {gateway: {"rateLimit": rate_limit}}}
    ).raise_for_status()
    path = f"{gw_path(gateway)}/compat/chat/completions"
    statuses = [
        http.post(path, json=chat_body(), headers=aig_headers()).status_code for _ in range(3)
    ]
    assert statuses == [200, 200, 429]
    limited = http.post(path, json=chat_body(), headers=aig_headers())
    assert gateway_error(limited) == 2003
    assert limited.json()["error"][0]["message"] == "Rate limited"


def test_unknown_path_404_and_wrong_method_405(http: httpx.Client) -> None:
    """Unknown paths answer 404 and GET on a POST route answers 405, both as gateway errors."""
    missing = http.post(f"{gw_path()}/openai/no/such/thing", json={}, headers=aig_headers())
    assert missing.status_code == 404
    gateway_error(missing)
    wrong = http.get(f"{gw_path()}/compat/chat/completions", headers=aig_headers())
    assert wrong.status_code == 405
    gateway_error(wrong)


def test_every_response_has_log_id(http: httpx.Client) -> None:
    """Successes and errors carry a 26-char Crockford cf-aig-log-id equal to cf-aig-request-id."""
    responses = [
        compat_chat(http, chat_body()),
        compat_chat(http, chat_body(), key="bad"),
        http.post(f"{gw_path('nope')}/compat/chat/completions", json=chat_body()),
    ]
    ids = set()
    for response in responses:
        log_id = response.headers["cf-aig-log-id"]
        assert CROCKFORD_ULID.match(log_id)
        assert response.headers["cf-aig-request-id"] == log_id
        ids.add(log_id)
    assert len(ids) == 3
    logged = [r["logId"] for r in http.get("/__emulator/requests").json()["requests"]]
    assert logged == [r.headers["cf-aig-log-id"] for r in responses]


# --- cache ----------------------------------------------------------------------------------


def test_cache_miss_then_hit(http: httpx.Client) -> None:
    """With a cache TTL an identical request is a MISS then a HIT replaying the same body."""
    headers = {"cf-aig-cache-ttl": "60"}
    first = compat_chat(http, chat_body("cache"), **headers)
    second = compat_chat(http, chat_body("cache"), **headers)
    assert first.headers["cf-aig-cache-status"] == "MISS"
    assert second.headers["cf-aig-cache-status"] == "HIT"
    assert second.content == first.content
    assert second.headers["content-type"] == "application/json"
    assert last_request(http)["cacheStatus"] == "HIT"


def test_cache_key_includes_auth_and_body(http: httpx.Client) -> None:
    """A different body or provider key misses; gateway cacheTtl 0 without headers never caches."""
    compat_chat(http, chat_body("k"), **{"cf-aig-cache-ttl": "60"})
    assert (
        compat_chat(http, chat_body("k2"), **{"cf-aig-cache-ttl": "60"}).headers[
            "cf-aig-cache-status"
        ]
        == "MISS"
    )
    other_key = http.post(
        f"{gw_path(OPEN_GATEWAY)}/compat/chat/completions",
        json=chat_body("k"),
        headers={"cf-aig-cache-ttl": "60"},
    )
    assert other_key.headers["cf-aig-cache-status"] == "MISS"
    compat_chat(http, chat_body("nocache"))
    assert compat_chat(http, chat_body("nocache")).headers["cf-aig-cache-status"] == "MISS"


def test_skip_cache_bypasses(http: httpx.Client) -> None:
    """cf-aig-skip-cache: true neither reads nor writes the cache."""
    headers = {"cf-aig-cache-ttl": "60"}
    compat_chat(http, chat_body("skip"), **headers)
    skipped = compat_chat(http, chat_body("skip"), **headers, **{"cf-aig-skip-cache": "true"})
    assert skipped.headers["cf-aig-cache-status"] == "MISS"
    assert compat_chat(http, chat_body("skip"), **headers).headers["cf-aig-cache-status"] == "HIT"


def test_custom_cache_key_works_with_caching_off(http: httpx.Client) -> None:
    """cf-aig-cache-key caches even with gateway TTL 0 and replaces the body-derived key."""
    first = compat_chat(http, chat_body("one"), **{"cf-aig-cache-key": "tenant-a:q1"})
    second = compat_chat(http, chat_body("two"), **{"cf-aig-cache-key": "tenant-a:q1"})
    assert first.headers["cf-aig-cache-status"] == "MISS"
    assert second.headers["cf-aig-cache-status"] == "HIT"
    assert second.json() == first.json()


def test_streaming_is_not_cached(http: httpx.Client) -> None:
    """Streaming requests are always a MISS, even with a cache TTL."""
    headers = {"cf-aig-cache-ttl": "60"}
    compat_chat(http, chat_body("s", stream=True), **headers)
    assert (
        compat_chat(http, chat_body("s", stream=True), **headers).headers["cf-aig-cache-status"]
        == "MISS"
    )


# --- metadata and cost ----------------------------------------------------------------------


def test_metadata_keeps_first_five_entries(http: httpx.Client) -> None:
    """cf-aig-metadata keeps its first five entries and is filterable in the request log."""
    metadata = {
        "requestId": "abc",
        "userId": "u1",
        "n": 3,
        "flag": True,
        "e": "5",
        "sixth": "dropped",
    }
    compat_chat(http, chat_body(), **{"cf-aig-metadata": json.dumps(metadata)})
    compat_chat(http, chat_body(), **{"cf-aig-metadata": json.dumps({"requestId": "other"})})
    found = http.get("/__emulator/requests", params={"metadata.requestId": "abc"}).json()[
        "requests"
    ]
    assert len(found) == 1
    assert found[0]["metadata"] == {
        "requestId": "abc",
        "userId": "u1",
        "n": 3,
        "flag": True,
        "e": "5",
    }


def test_metadata_object_value_is_rejected(http: httpx.Client) -> None:
    """An object value in cf-aig-metadata is a 400 gateway error."""
    response = compat_chat(
        http, chat_body(), **{"cf-aig-metadata": json.dumps({"user": {"id": 1}})}
    )
    assert response.status_code == 400
    gateway_error(response)


def test_custom_cost_is_recorded(http: httpx.Client) -> None:
    """cf-aig-custom-cost and tokens x price are recorded in the request log."""
    price = {"per_token_in": 0.000001, "per_token_out": 0.000002}
    usage = compat_chat(
        http, chat_body("cost"), **{"cf-aig-custom-cost": json.dumps(price)}
    ).json()["usage"]
    entry = last_request(http)
    assert entry["customCost"] == price
    expected = usage["prompt_tokens"] * 0.000001 + usage["completion_tokens"] * 0.000002
    assert entry["cost"] == pytest.approx(expected)


# --- faults ---------------------------------------------------------------------------------


def test_fault_status_uses_provider_error_shape_once(http: httpx.Client) -> None:
    """A 500 fault without body answers OpenAI's server_error shape, then normal service resumes."""
    add_fault(http, match={"model": "openai/gpt-4o-mini"}, status=500)
    failed = compat_chat(http, chat_body())
    assert failed.status_code == 500
    assert failed.json()["error"]["type"] == "server_error"
    assert "cf-aig-log-id" in failed.headers
    assert compat_chat(http, chat_body()).status_code == 200


def test_fault_body_headers_and_match(http: httpx.Client) -> None:
    """A fault fires only for matching requests and returns its own status, body and headers."""
    add_fault(
        http,
        match={"provider": "anthropic", "metadata": {"userId": "u1"}},
        status=429,
        body={"custom": True},
        headers={"retry-after": "7"},
    )
    assert compat_chat(http, chat_body()).status_code == 200  # provider does not match
    hit = compat_chat(
        http,
        chat_body(model=f"anthropic/{CLAUDE}"),
        key=ANTHROPIC_KEY,
        **{"cf-aig-metadata": '{"userId":"u1"}'},
    )
    assert hit.status_code == 429
    assert hit.json() == {"custom": True}
    assert hit.headers["retry-after"] == "7"


def test_fault_times_minus_one_until_cleared(http: httpx.Client) -> None:
    """times: -1 keeps firing until DELETE /__emulator/faults."""
    add_fault(http, match={"path": "/compat/chat"}, times=-1, status=503)
    assert [compat_chat(http, chat_body()).status_code for _ in range(3)] == [503, 503, 503]
    http.delete("/__emulator/faults").raise_for_status()
    assert compat_chat(http, chat_body()).status_code == 200


def test_fault_delay_before_headers(http: httpx.Client) -> None:
    """delayMs holds the response back before the first byte."""
    add_fault(http, match={"path": "/compat/"}, delayMs=300)
    started = time.monotonic()
    assert compat_chat(http, chat_body()).status_code == 200
    assert time.monotonic() - started >= 0.3


def test_fault_cuts_stream_mid_way(http: httpx.Client) -> None:
    """cutAfterChunks drops the connection after N chunks, without [DONE]."""
    add_fault(http, match={"path": "/compat/"}, cutAfterChunks=3)
    received: list[str] = []
    with pytest.raises(httpx.RemoteProtocolError):
        with http.stream(
            "POST",
            f"{gw_path()}/compat/chat/completions",
            json=chat_body(stream=True),
            headers=aig_headers(),
        ) as response:
            assert response.status_code == 200
            for line in response.iter_lines():
                if line.startswith("data: "):
                    received.append(line)
    assert len(received) == 3
    assert "data: [DONE]" not in received
    assert compat_chat(http, chat_body()).status_code == 200


def test_fault_gateway_error(http: httpx.Client) -> None:
    """gatewayError answers the gateway envelope with that code and its documented status."""
    add_fault(http, gatewayError=2005)
    response = compat_chat(http, chat_body())
    assert response.status_code == 400
    assert gateway_error(response) == 2005


def test_fault_reset_connection_answers_nothing(http: httpx.Client) -> None:
    """resetConnection drops the connection before a status line (an unreachable gateway); the
    log keeps the request with status 0 and delivery "reset"."""
    add_fault(http, match={"path": "/compat/"}, resetConnection=True)
    with pytest.raises(httpx.RemoteProtocolError):
        compat_chat(http, chat_body())
    (entry,) = http.get("/__emulator/requests", params={"limit": 1}).json()["requests"]
    assert (entry["status"], entry["delivery"]) == (0, "reset")
    assert compat_chat(http, chat_body()).status_code == 200
    refused = http.post("/__emulator/faults", json={"resetConnection": 1})
    assert refused.status_code == 400 and "resetConnection" in refused.text


def test_retries_after_provider_failure(http: httpx.Client) -> None:
    """cf-aig-max-attempts retries a 5xx before answering."""
    add_fault(http, match={"path": "/compat/"}, status=502)
    response = compat_chat(http, chat_body(), **{"cf-aig-max-attempts": "2"})
    assert response.status_code == 200


# --- universal endpoint ---------------------------------------------------------------------


def universal_step(
    provider: str, endpoint: str, key: str, query: dict[str, Any], **headers: str
) -> dict[str, Any]:
    return {
        "provider": provider,
        "endpoint": endpoint,
        "headers": {"Authorization": f"Bearer {key}", **headers},
        "query": query,
    }


def test_universal_falls_back_and_reports_step(http: httpx.Client) -> None:
    """Universal runs steps in order until one succeeds and names it in cf-aig-step."""
    openai_query = chat_body(model="gpt-4o-mini")
    steps = [
        universal_step("openai", "chat/completions", "sk-bad", openai_query),
        universal_step(
            "workers-ai", "@cf/meta/llama-3.1-8b-instruct", WORKERS_AI_KEY, {"prompt": "hi"}
        ),
    ]
    response = http.post(gw_path(), json=steps, headers=aig_headers(key=None))
    assert response.status_code == 200
    assert response.headers["cf-aig-step"] == "1"
    assert response.json()["success"] is True
    first_ok = http.post(gw_path(), json=list(reversed(steps)), headers=aig_headers(key=None))
    assert first_ok.headers["cf-aig-step"] == "0"


def test_universal_falls_back_on_fault_and_timeout(http: httpx.Client) -> None:
    """A 5xx fault or a first byte slower than cf-aig-request-timeout moves on to the next step."""
    add_fault(http, match={"provider": "openai"}, status=500)
    add_fault(http, match={"provider": "anthropic"}, delayMs=5000)
    steps = [
        universal_step("openai", "chat/completions", OPENAI_KEY, chat_body(model="gpt-4o-mini")),
        universal_step(
            "compat",
            "chat/completions",
            ANTHROPIC_KEY,
            chat_body(model=f"anthropic/{CLAUDE}"),
            **{"cf-aig-request-timeout": "100"},
        ),
        universal_step("compat", "chat/completions", OPENAI_KEY, chat_body()),
    ]
    started = time.monotonic()
    response = http.post(gw_path(), json=steps, headers=aig_headers(key=None))
    assert time.monotonic() - started < 4
    assert response.status_code == 200
    assert response.headers["cf-aig-step"] == "2"
    assert last_request(http)["step"] == 2


# --- anthropic native -----------------------------------------------------------------------


def test_anthropic_message_shape(claude: anthropic.Anthropic) -> None:
    """Native Anthropic answers a Messages API message; max_tokens caps it (max_tokens)."""
    message = claude.messages.create(
        model=CLAUDE,
        max_tokens=100,
        system="Be brief.",
        messages=[{"role": "user", "content": "Hello"}],
    )
    assert (
        message.id.startswith("msg_") and message.type == "message" and message.role == "assistant"
    )
    assert message.model == CLAUDE
    assert message.stop_reason == "end_turn" and message.stop_sequence is None
    assert message.content[0].type == "text" and len(message.content[0].text.split(" ")) == 12
    assert message.usage.input_tokens == prompt_tokens("Be brief.", "Hello")
    assert message.usage.output_tokens == 12
    capped = claude.messages.create(
        model=CLAUDE, max_tokens=4, messages=[{"role": "user", "content": "Hello"}]
    )
    assert capped.stop_reason == "max_tokens" and capped.usage.output_tokens == 4


def test_anthropic_requires_max_tokens_and_version(http: httpx.Client) -> None:
    """Missing max_tokens or anthropic-version is Anthropic's 400 invalid_request_error."""
    path = f"{gw_path()}/anthropic/v1/messages"
    body = {"model": CLAUDE, "messages": [{"role": "user", "content": "x"}]}
    headers = {"cf-aig-authorization": f"Bearer {TOKEN}", "x-api-key": ANTHROPIC_KEY}
    no_max = http.post(path, json=body, headers={**headers, "anthropic-version": "2023-06-01"})
    no_version = http.post(path, json={**body, "max_tokens": 5}, headers=headers)
    for response in (no_max, no_version):
        assert response.status_code == 400
        assert response.json()["type"] == "error"
        assert response.json()["error"]["type"] == "invalid_request_error"


def test_anthropic_stream_event_sequence(http: httpx.Client, claude: anthropic.Anthropic) -> None:
    """Anthropic streaming emits Anthropic's exact event sequence and the non-streamed text."""
    request: dict[str, Any] = {
        "model": CLAUDE,
        "max_tokens": 50,
        "messages": [{"role": "user", "content": "emulate:tokens=3"}],
    }
    text = claude.messages.create(**request).content[0].text
    response = http.post(
        f"{gw_path()}/anthropic/v1/messages",
        json={**request, "stream": True},
        headers={
            "cf-aig-authorization": f"Bearer {TOKEN}",
            "x-api-key": ANTHROPIC_KEY,
            "anthropic-version": "2023-06-01",
        },
    )
    events = [
        line[len("event: ") :] for line in response.text.split("\n") if line.startswith("event: ")
    ]
    assert events == [
        "message_start",
        "content_block_start",
        "ping",
        "content_block_delta",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    payloads = [json.loads(d) for d in sse_data(response.text)]
    assert [p["type"] for p in payloads] == events
    assert payloads[0]["message"]["usage"]["input_tokens"] == prompt_tokens("emulate:tokens=3")
    assert payloads[-2]["usage"]["output_tokens"] == 3
    assert payloads[-2]["delta"]["stop_reason"] == "end_turn"
    with claude.messages.stream(**request) as stream:
        assert "".join(stream.text_stream) == text


# --- embeddings and workers ai --------------------------------------------------------------


def test_compat_embeddings(oai: openai.OpenAI, http: httpx.Client) -> None:
    """Embeddings are deterministic unit vectors of the model's size in OpenAI's list shape,
    float or base64; `dimensions` shortens text-embedding-3 vectors."""
    result = oai.embeddings.create(model="openai/text-embedding-3-small", input=["alpha", "beta"])
    assert result.object == "list" and result.model == "text-embedding-3-small"
    assert [d.index for d in result.data] == [0, 1]
    assert all(len(d.embedding) == 1536 for d in result.data)
    assert math.isclose(math.fsum(x * x for x in result.data[0].embedding), 1.0, rel_tol=1e-6)
    short = oai.embeddings.create(
        model="openai/text-embedding-3-small", input="alpha", dimensions=256
    )
    assert len(short.data[0].embedding) == 256
    assert result.usage.prompt_tokens == 2 + 1
    raw = http.post(
        f"{gw_path()}/compat/embeddings",
        json={
            "model": "openai/text-embedding-3-small",
            "input": "alpha",
            "encoding_format": "float",
        },
        headers=aig_headers(),
    ).json()
    assert raw["data"][0]["object"] == "embedding"
    assert raw["data"][0]["embedding"] == result.data[0].embedding
    b64 = http.post(
        f"{gw_path()}/openai/embeddings",
        json={"model": "text-embedding-3-small", "input": "alpha", "encoding_format": "base64"},
        headers=aig_headers(),
    ).json()
    decoded = list(struct.unpack("<1536f", base64.b64decode(b64["data"][0]["embedding"])))
    assert decoded == raw["data"][0]["embedding"]


def test_workers_ai_native_envelope(http: httpx.Client) -> None:
    """/workers-ai/{model} and /run/{model} answer the v4 envelope, or SSE when streaming."""
    for path in (
        "workers-ai/@cf/meta/llama-3.1-8b-instruct",
        "workers-ai/run/@cf/meta/llama-3.1-8b-instruct",
    ):
        response = http.post(
            f"{gw_path()}/{path}",
            json={"messages": [{"role": "user", "content": "emulate:tokens=4"}]},
            headers=aig_headers(key=WORKERS_AI_KEY),
        )
        body = response.json()
        assert response.status_code == 200
        assert body["success"] is True and body["errors"] == [] and body["messages"] == []
        assert len(body["result"]["response"].split(" ")) == 4
        assert body["result"]["usage"]["completion_tokens"] == 4
        streamed = http.post(
            f"{gw_path()}/{path}",
            json={"messages": [{"role": "user", "content": "emulate:tokens=4"}], "stream": True},
            headers=aig_headers(key=WORKERS_AI_KEY),
        )
        data = sse_data(streamed.text)
        assert data[-1] == "[DONE]"
        assert "".join(json.loads(d)["response"] for d in data[:-1]) == body["result"]["response"]
    bad = http.post(
        f"{gw_path()}/workers-ai/@cf/meta/llama-3.1-8b-instruct",
        json={"prompt": "x"},
        headers=aig_headers(key="nope"),
    )
    assert bad.status_code == 401 and bad.json()["success"] is False


def test_workers_ai_openai_compatible_route(http: httpx.Client) -> None:
    """/workers-ai/v1/chat/completions answers the OpenAI shape with the @cf model."""
    model = "@cf/meta/llama-3.1-8b-instruct"
    response = http.post(
        f"{gw_path()}/workers-ai/v1/chat/completions",
        json=chat_body("hi", model=model),
        headers=aig_headers(key=WORKERS_AI_KEY),
    )
    assert response.status_code == 200
    assert response.json()["model"] == model
    compat = compat_chat(http, chat_body("hi", model=f"workers-ai/{model}"), key=WORKERS_AI_KEY)
    assert compat.json()["choices"][0]["message"] == response.json()["choices"][0]["message"]


# --- what OpenAI's Chat Completions takes and refuses (providers/openai-chat-request.ts) ------


def openai_chat(http: httpx.Client, body: dict[str, Any]) -> httpx.Response:
    return http.post(f"{gw_path()}/openai/chat/completions", json=body, headers=aig_headers())


def openai_refusal(response: httpx.Response) -> tuple[str | None, str | None, str]:
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    return error["param"], error["code"], error["message"]


@pytest.mark.parametrize(
    ("extra", "param", "code"),
    [
        ({"wizardry": True}, None, None),
        ({"messages": [{"role": "wizard", "content": "x"}]}, "messages[0].role", "invalid_value"),
        (
            {"messages": [{"role": "user", "content": [{"type": "video", "url": "x"}]}]},
            "messages[0].content[0].type",
            "invalid_value",
        ),
        ({"temperature": 2.5}, "temperature", "decimal_above_max_value"),
        ({"temperature": "hot"}, "temperature", "invalid_type"),
        ({"top_p": -0.1}, "top_p", "decimal_below_min_value"),
        ({"n": 129}, "n", "integer_above_max_value"),
        ({"max_tokens": 0}, "max_tokens", "integer_below_min_value"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "stop", "array_above_max_length"),
        ({"stream": "yes"}, "stream", "invalid_type"),
        (
            {"tools": [{"type": "function", "function": {"name": "get weather"}}]},
            "tools[0].function.name",
            "invalid_value",
        ),
        ({"reasoning_effort": "low"}, "reasoning_effort", "unsupported_parameter"),
    ],
    ids=lambda value: str(value)[:40],
)
def test_openai_refuses_what_it_does_not_take(
    http: httpx.Client, extra: dict[str, Any], param: str | None, code: str | None
) -> None:
    """Each as OpenAI answers it: the parameter named, the code saying what is wrong."""
    body = {**chat_body("hi", model="gpt-4o-mini"), **extra}
    got_param, got_code, message = openai_refusal(openai_chat(http, body))
    assert (got_param, got_code) == (param, code), message
    if param is None:
        assert message == "Unrecognized request argument supplied: wizardry"


def test_a_reasoning_model_thinks_and_refuses_what_it_does_not_take(http: httpx.Client) -> None:
    """gpt-5: max_tokens and non-default sampling are refused; reasoning tokens (by
    reasoning_effort) are part of completion_tokens; current fields are taken."""
    assert openai_refusal(openai_chat(http, chat_body("hi", model="gpt-5", max_tokens=10)))[:2] == (
        "max_tokens",
        "unsupported_parameter",
    )
    assert openai_refusal(openai_chat(http, chat_body("hi", model="gpt-5", temperature=0.2)))[
        :2
    ] == (
        "temperature",
        "unsupported_value",
    )
    body = chat_body(
        "hi emulate:tokens=5",
        model="gpt-5",
        reasoning_effort="high",
        verbosity="low",
        prompt_cache_key="k",
        safety_identifier="u1",
        max_completion_tokens=500,
    )
    usage = openai_chat(http, body).json()["usage"]
    assert usage["completion_tokens_details"]["reasoning_tokens"] == 64
    assert usage["completion_tokens"] == 5 + 64
    plain = openai_chat(http, chat_body("hi emulate:tokens=5", model="gpt-4o-mini")).json()
    assert plain["usage"]["completion_tokens_details"]["reasoning_tokens"] == 0
