"""When each streamed event reached the client, against when the emulator sent it.

The emulator keeps the chunks of its last streams with the wall-clock time each was handed to
the socket (`GET /__emulator/answers/<logId>`). A stream's content deltas (the text a person
watches appear) are read from those chunks and from what the client received, in order, so the
k-th delta the client got is paired with the k-th the provider sent, whatever the gateway did to
the framing in between (an Anthropic stream translated to OpenAI chat keeps one delta per delta).
Used by the end-to-end delivery tests and by `make bench`."""

from __future__ import annotations

import json
import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any


def content_of(event: Any) -> str:
    """The text a streamed event adds to the answer, in any of the routes' formats ("" for none):
    OpenAI chat chunks, Anthropic Messages deltas, Responses text deltas, Workers AI run events,
    Gemini's GenerateContentResponse chunks."""
    if not isinstance(event, dict):
        return ""
    choices = event.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):
        delta = choices[0].get("delta") or {}
        return str(delta.get("content") or "") if isinstance(delta, dict) else ""
    kind = event.get("type")
    if kind == "content_block_delta":
        delta = event.get("delta") or {}
        return str(delta.get("text") or "") if isinstance(delta, dict) else ""
    if kind == "response.output_text.delta":
        return str(event.get("delta") or "")
    if kind is None and isinstance(event.get("response"), str):
        return str(event["response"])
    candidates = event.get("candidates")  # Gemini: the first candidate's parts, thoughts left out
    if isinstance(candidates, list) and candidates and isinstance(candidates[0], dict):
        parts = (candidates[0].get("content") or {}).get("parts") or []
        return "".join(
            str(p.get("text") or "") for p in parts if isinstance(p, dict) and not p.get("thought")
        )
    return ""


def sse_deltas(pieces: Iterable[tuple[float, str]]) -> list[tuple[float, str]]:
    """(time, text) of each content delta in an SSE byte stream given as (arrival time, text)
    pieces: an event counts at the time of the piece that completed it."""
    out: list[tuple[float, str]] = []
    buffer = ""
    for at, text in pieces:
        buffer += text.replace("\r\n", "\n")
        while "\n\n" in buffer:
            block, buffer = buffer.split("\n\n", 1)
            data = "\n".join(
                line[5:].removeprefix(" ") for line in block.split("\n") if line.startswith("data:")
            )
            if not data or data == "[DONE]":
                continue
            try:
                delta = content_of(json.loads(data))
            except ValueError:
                continue
            if delta:
                out.append((at, delta))
    return out


@dataclass(frozen=True)
class Delivery:
    """Per content delta: how long after the provider sent it the client had it (ms)."""

    delays: list[float]
    first_received: float  # wall-clock ms when the client had the first delta
    last_sent: float  # wall-clock ms when the provider sent the last delta

    @property
    def p50(self) -> float:
        return statistics.median(self.delays)

    @property
    def worst(self) -> float:
        return max(self.delays)


def delivery(sent: list[tuple[float, str]], received: list[tuple[float, str]]) -> Delivery:
    """Pairs the k-th delta received with the k-th sent; both must carry the same text."""
    assert [t for _, t in received] == [t for _, t in sent], (
        f"the client's deltas differ from the provider's: {received!r} vs {sent!r}"
    )
    assert sent, "the stream carried no content"
    return Delivery(
        delays=[got - at for (at, _), (got, _) in zip(sent, received, strict=True)],
        first_received=received[0][0],
        last_sent=sent[-1][0],
    )
