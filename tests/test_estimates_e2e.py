"""Answers without usable usage are estimated from the answer's output, the same way whether
it came whole or streamed, whatever the JSON's spacing (issue 22: a whole answer was estimated
from its entire JSON body, 525 µUSD against 95 streamed; a stream in spaced JSON counted no
output at all)."""

from __future__ import annotations

import json
import math
from typing import Any

import httpx
import pytest

from tests.support import Emulator, WorkerTestHooks, eventually, key

CHAT = "/v1/chat/completions"
WORDS = "Hello there, a 28-byte reply"
assert len(WORDS.encode()) == 28
HEAD = {"id": "chatcmpl-x", "created": 0, "model": "gpt-4o"}


def dumps(value: Any, spaced: bool) -> str:
    return json.dumps(value, separators=(", ", ": ") if spaced else (",", ":"))


def whole(spaced: bool) -> str:
    message = {"role": "assistant", "content": WORDS}
    choice = {"index": 0, "message": message, "finish_reason": "stop"}
    return dumps({**HEAD, "object": "chat.completion", "choices": [choice]}, spaced)


def streamed(spaced: bool) -> str:
    def chunk(delta: dict[str, str], finish: str | None = None) -> str:
        choice = {"index": 0, "delta": delta, "finish_reason": finish}
        return f"data: {dumps({**HEAD, 'object': 'chat.completion.chunk', 'choices': [choice]}, spaced)}\n\n"

    deltas = [
        {"role": "assistant", "content": ""},
        {"content": WORDS[:10]},
        {"content": WORDS[10:]},
    ]
    return "".join(chunk(d) for d in deltas) + chunk({}, "stop") + "data: [DONE]\n\n"


def recorded_cost(
    http: httpx.Client, emulator: Emulator, hooks: WorkerTestHooks, body: str, sse: bool
) -> int:
    """What the ledger records for one request answered `body` (no usage in it)."""
    before = hooks.user_row("acme", "ada")
    content_type = "text/event-stream" if sse else "application/json"
    emulator.fault(
        match={"model": "openai/gpt-4o"}, times=1, body=body, headers={"content-type": content_type}
    )
    request: dict[str, Any] = {
        "model": "openai/gpt-4o",
        "messages": [{"role": "user", "content": "Say hello"}],
        "stream": sse,
    }
    response = http.post(
        CHAT, json=request, headers={"authorization": f"Bearer {key('key_ada_main')}"}
    )
    assert response.status_code == 200, response.text
    if sse:
        assert WORDS.split()[0] in response.text
    after = eventually(
        lambda: (r := hooks.user_row("acme", "ada"))["requests"] > before["requests"] and r
    )
    return int(after["usedMicros"] - before["usedMicros"])


def test_the_same_output_costs_the_same_streamed_or_whole_compact_or_spaced(
    http: httpx.Client, emulator: Emulator, hooks: WorkerTestHooks
):
    """28 bytes of output are 7 tokens at gpt-4o's output price (plus the prompt's estimate),
    for a whole answer and a stream, in compact and in spaced JSON."""
    prompt = 3 + 4 + math.ceil(len(b"Say hello") / 4)
    expected = math.ceil((prompt * 2_500_000 + 7 * 10_000_000) / 1_000_000)
    costs = {
        f"{'stream' if sse else 'answer'}, {'spaced' if spaced else 'compact'}": recorded_cost(
            http, emulator, hooks, (streamed if sse else whole)(spaced), sse
        )
        for sse in (False, True)
        for spaced in (False, True)
    }
    assert costs == dict.fromkeys(costs, expected), costs


@pytest.mark.parametrize("spaced", [False, True], ids=["compact", "spaced"])
def test_an_estimate_is_flagged_in_the_answer_headers(
    http: httpx.Client, emulator: Emulator, spaced: bool
):
    """A whole answer's estimate is its cost header, and no tokens header claims usage."""
    emulator.fault(
        match={"model": "openai/gpt-4o"},
        times=1,
        body=whole(spaced),
        headers={"content-type": "application/json"},
    )
    request = {"model": "openai/gpt-4o", "messages": [{"role": "user", "content": "Say hello"}]}
    response = http.post(
        CHAT, json=request, headers={"authorization": f"Bearer {key('key_ada_main')}"}
    )
    assert response.headers["x-gateway-cost-usd"] == "0.000095"
    assert "x-gateway-tokens-used" not in response.headers
