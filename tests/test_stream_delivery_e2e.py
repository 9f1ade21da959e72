"""End-to-end: every streaming route hands each event to the client as the provider sends it.

The emulator paces the answer's chunks PACE_MS apart and records when it sent each; the client
(the real SDK's stream iterator where the route has one) records when each content delta
reached it. Each delta must arrive within a few milliseconds of its chunk, the first long
before the provider sent the last: a gateway that holds the stream until its end (a meter whose
read size or a tee gates the client's branch) delivers its first delta about a whole stream late.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import anthropic
import httpx
import pytest
from openai import OpenAI

from provision.local.runtime import LocalGateway
from provision.stack.config import resolve_stack
from tests.delivery import Delivery, delivery, sse_deltas
from tests.support import Emulator, eventually, key, stack_gateway

# What `make dev` runs: the dev stack's models, as a newcomer's client meets them
gateway = stack_gateway(resolve_stack("dev"))

PACE_MS = 80
TOKENS = 12  # content deltas per answer: the stream lasts about TOKENS * PACE_MS
USER = "alice"
KEY = "key_alice_laptop"
# Generous for a loaded 2-core machine, far below what a held stream shows (about TOKENS * PACE_MS)
WORST_DELAY_MS = 250
MEDIAN_DELAY_MS = 40


def now_ms() -> float:
    return time.time() * 1000


@dataclass(frozen=True)
class Received:
    request_id: str
    deltas: list[tuple[float, str]]


class Send(Protocol):
    def __call__(
        self, gateway: LocalGateway, prompt: str, leave_after: int | None = None
    ) -> Received: ...


def openai_sdk(gateway: LocalGateway, base: str) -> OpenAI:
    return OpenAI(
        base_url=f"{gateway.worker_url}{base}", api_key=key(KEY), max_retries=0, timeout=30
    )


def anthropic_sdk(gateway: LocalGateway, base: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(
        base_url=f"{gateway.worker_url}{base}", api_key=key(KEY), max_retries=0, timeout=30
    )


def timed(
    stream: Any, text: Callable[[Any], str], leave_after: int | None
) -> list[tuple[float, str]]:
    """(arrival ms, text) of each event with text, as the SDK's stream yields it; the client
    hangs up after `leave_after` deltas when given."""
    out: list[tuple[float, str]] = []
    with stream:
        for event in stream:
            delta = text(event)
            if delta:
                out.append((now_ms(), delta))
                if len(out) == leave_after:
                    break
    return out


def chat_delta(chunk: Any) -> str:
    return (chunk.choices[0].delta.content or "") if chunk.choices else ""


def chat(base: str, model: str, **extra: Any) -> Send:
    def send(gateway: LocalGateway, prompt: str, leave_after: int | None = None) -> Received:
        raw = openai_sdk(gateway, base).chat.completions.with_raw_response.create(
            model=model, messages=[{"role": "user", "content": prompt}], stream=True, **extra
        )
        return Received(raw.headers["x-request-id"], timed(raw.parse(), chat_delta, leave_after))

    return send


def responses(base: str) -> Send:
    def send(gateway: LocalGateway, prompt: str, leave_after: int | None = None) -> Received:
        raw = openai_sdk(gateway, base).responses.with_raw_response.create(
            model="gpt-4o-mini", input=prompt, stream=True
        )
        text = lambda e: e.delta if e.type == "response.output_text.delta" else ""  # noqa: E731
        return Received(raw.headers["x-request-id"], timed(raw.parse(), text, leave_after))

    return send


def messages(base: str) -> Send:
    def send(gateway: LocalGateway, prompt: str, leave_after: int | None = None) -> Received:
        raw = anthropic_sdk(gateway, base).messages.with_raw_response.create(
            model="claude-sonnet-4-6",
            max_tokens=256,
            messages=[{"role": "user", "content": prompt}],
            stream=True,
        )

        def text(event: Any) -> str:
            if event.type == "content_block_delta" and event.delta.type == "text_delta":
                return str(event.delta.text)
            return ""

        return Received(raw.headers["x-request-id"], timed(raw.parse(), text, leave_after))

    return send


def raw_stream(
    gateway: LocalGateway,
    path: str,
    body: dict[str, Any],
    headers: dict[str, str],
    leave_after: int | None,
) -> Received:
    """A route without an SDK here: httpx, each piece timed as it arrives."""
    with httpx.stream(
        "POST", f"{gateway.worker_url}{path}", json=body, headers=headers, timeout=30
    ) as response:
        assert response.status_code == 200, response.read()
        pieces = []
        for piece in response.iter_text():
            pieces.append((now_ms(), piece))
            if leave_after is not None and len(sse_deltas(pieces)) >= leave_after:
                break
        return Received(response.headers["x-request-id"], sse_deltas(pieces))


def workers_ai_run(gateway: LocalGateway, prompt: str, leave_after: int | None = None) -> Received:
    """Workers AI's own run API."""
    body = {"prompt": prompt, "stream": True}
    headers = {"authorization": f"Bearer {key(KEY)}"}
    return raw_stream(
        gateway, "/workers-ai/@cf/meta/llama-3.1-8b-instruct", body, headers, leave_after
    )


def gemini_native(gateway: LocalGateway, prompt: str, leave_after: int | None = None) -> Received:
    """Gemini's own API as the Gemini CLI calls it (SSE)."""
    body = {"contents": [{"role": "user", "parts": [{"text": prompt}]}]}
    path = "/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse"
    return raw_stream(gateway, path, body, {"x-goog-api-key": key(KEY)}, leave_after)


ROUTES: dict[str, Send] = {
    "chat, openai, rewritten (no usage asked)": chat("/v1", "gpt-4o-mini"),
    "chat, openai, piped (usage asked)": chat(
        "/v1", "gpt-4o-mini", stream_options={"include_usage": True}
    ),
    "chat, anthropic translated": chat("/v1", "anthropic/claude-sonnet-4-6"),
    "chat, workers-ai translated": chat("/v1", "workers-ai/@cf/meta/llama-3.1-8b-instruct"),
    "/openai/chat/completions, usage asked": chat(
        "/openai", "gpt-4o-mini", stream_options={"include_usage": True}
    ),
    "/openai/chat/completions": chat("/openai", "gpt-4o-mini"),
    "/workers-ai/v1/chat/completions": chat("/workers-ai/v1", "@cf/meta/llama-3.1-8b-instruct"),
    "/v1/responses": responses("/v1"),
    "/openai/responses": responses("/openai"),
    "/v1/messages": messages(""),
    "/anthropic/v1/messages": messages("/anthropic"),
    "/workers-ai/@cf/… run": workers_ai_run,
    "chat, gemini translated": chat("/v1", "google-ai-studio/gemini-2.5-pro"),
    "/v1beta/models/…:streamGenerateContent": gemini_native,
}


def paced(emulator: Emulator, gateway: LocalGateway, send: Send) -> Delivery:
    emulator.fault(match={"metadata": {"userId": USER}}, times=1, chunkDelayMs=PACE_MS)
    got = send(gateway, f"Tell me something slowly emulate:tokens={TOKENS}")
    sent = sse_deltas(emulator.sent_chunks(got.request_id))
    return delivery(sent, got.deltas)


@pytest.mark.parametrize("send", ROUTES.values(), ids=ROUTES.keys())
def test_each_event_reaches_the_client_as_the_provider_sends_it(
    gateway: LocalGateway, upstream: Emulator, send: Send
):
    """Every content delta reaches the client within milliseconds of the provider's chunk,
    through the route's own SDK: none waits for the end of the stream."""
    got = paced(upstream, gateway, send)
    assert len(got.delays) == TOKENS
    span = got.last_sent - (got.first_received - got.delays[0])
    assert span >= (TOKENS - 1) * PACE_MS * 0.9, "the emulator did not pace the stream"
    assert got.first_received < got.last_sent - (TOKENS - 3) * PACE_MS, (
        f"the first delta reached the client only as the stream ended: delays {got.delays}"
    )
    assert got.p50 <= MEDIAN_DELAY_MS, f"deltas arrived late: {got.delays}"
    assert got.worst <= WORST_DELAY_MS, f"a delta was held back: {got.delays}"


@pytest.mark.parametrize("send", ROUTES.values(), ids=ROUTES.keys())
def test_a_client_that_hangs_up_stops_the_upstream_stream(
    gateway: LocalGateway, upstream: Emulator, send: Send
):
    """A client that leaves after three deltas of a long answer stops the provider's stream
    within a few chunks: no more tokens are bought for nobody."""
    upstream.fault(match={"metadata": {"userId": USER}}, times=1, chunkDelayMs=PACE_MS)
    got = send(gateway, "Tell me a long story emulate:tokens=60", leave_after=3)
    assert len(got.deltas) == 3
    entry = eventually(
        lambda: next(
            (e for e in upstream.requests(requestId=got.request_id) if e["delivery"] != "pending"),
            None,
        ),
        timeout=10,
    )
    assert entry is not None, "the provider is still streaming to nobody"
    assert entry["delivery"] == "aborted"
    assert len(upstream.stream(entry["logId"])) < 15, (
        "upstream kept streaming after the client left"
    )
