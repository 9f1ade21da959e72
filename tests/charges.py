"""What a request must cost: the provider's reported usage, read from its answer in any route's
format, priced at the stack's prices the way the Worker prices it (integer micro-dollars,
rounded up). The emulator keeps each answer as it sent it (`Emulator.answer`), so a test can price
every upstream call a client made and hold the ledger to the sum."""

from __future__ import annotations

import json
import math
from decimal import Decimal
from typing import Any

from provision.local.runtime import LocalGateway
from provision.stack.prices import compile_price, model_price


def sse_events(text: str) -> list[tuple[str | None, Any]]:
    """(event name, data) of each event of an SSE body; data parsed as JSON ("[DONE]" kept)."""
    events = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        name = None
        data = []
        for line in block.split("\n"):
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].strip())
        if data:
            joined = "\n".join(data)
            events.append((name, joined if joined == "[DONE]" else json.loads(joined)))
    return events


def _anthropic(u: dict[str, Any]) -> dict[str, int]:
    written = u.get("cache_creation_input_tokens") or 0
    read = u.get("cache_read_input_tokens") or 0
    return {
        "prompt": u["input_tokens"] + written + read,
        "completion": u["output_tokens"],
        "cached": read,
        "written": written,
        "written_1h": (u.get("cache_creation") or {}).get("ephemeral_1h_input_tokens") or 0,
    }


def _openai_chat(u: dict[str, Any]) -> dict[str, int]:
    details = u.get("prompt_tokens_details") or {}
    return {
        "prompt": u["prompt_tokens"],
        "completion": u.get("completion_tokens") or 0,
        "cached": details.get("cached_tokens") or 0,
        "written": details.get("cache_write_tokens") or 0,
    }


def _gemini(u: dict[str, Any]) -> dict[str, int]:
    """Gemini's usageMetadata: the prompt includes what was cached; thinking is output."""
    return {
        "prompt": u["promptTokenCount"] + (u.get("toolUsePromptTokenCount") or 0),
        "completion": (u.get("candidatesTokenCount") or 0) + (u.get("thoughtsTokenCount") or 0),
        "cached": u.get("cachedContentTokenCount") or 0,
    }


def _responses(u: dict[str, Any]) -> dict[str, int]:
    return {
        "prompt": u["input_tokens"],
        "completion": u["output_tokens"],
        "cached": (u.get("input_tokens_details") or {}).get("cached_tokens") or 0,
    }


def answer_usage(kind: str, answer: str, *, stream: bool) -> dict[str, int]:
    """The usage the provider reported in its answer, in the route kind's own format (chat,
    responses, messages, embeddings, workers_ai_run)."""
    if not stream:
        body = json.loads(answer)
        if kind == "gemini":
            return _gemini(body["usageMetadata"])
        if kind == "responses":
            return _responses(body["usage"])
        if kind == "messages":
            return _anthropic(body["usage"])
        return _openai_chat(body["usage"])
    events = [data for _, data in sse_events(answer) if data != "[DONE]"]
    if kind == "gemini":  # the last event carries the whole usage
        return _gemini([e["usageMetadata"] for e in events if e.get("usageMetadata")][-1])
    if kind == "chat":
        (u,) = [e["usage"] for e in events if e.get("usage")]
        return _openai_chat(u)
    if kind == "responses":
        (u,) = [e["response"]["usage"] for e in events if e.get("type") == "response.completed"]
        return _responses(u)
    if kind == "messages":
        start = next(e["message"]["usage"] for e in events if e.get("type") == "message_start")
        delta = [e["usage"] for e in events if e.get("type") == "message_delta"][-1]
        return _anthropic({**start, **delta})
    (u,) = [e["usage"] for e in events if e.get("usage")]  # workers_ai_run
    return {"prompt": u["prompt_tokens"], "completion": u["completion_tokens"]}


def cost_of(gateway: LocalGateway, model: str, usage: dict[str, int]) -> int:
    """µUSD for `usage` of `model` (`<provider>/<id>`) at the stack's prices (its own, else the
    catalog's, else its default), as the Worker computes it."""
    assert gateway.config is not None
    resolved = model_price(gateway.config.pricing, model).price
    assert resolved is not None, f"{model} has no price"
    return micros_at(compile_price(resolved), usage)


def usd_micros(usd: str) -> int:
    """A cost header (`x-gateway-cost-usd`, USD with up to 6 decimals) in µUSD."""
    return int(Decimal(usd) * 1_000_000)


def micros_at(price: dict[str, Any], usage: dict[str, int]) -> int:
    """µUSD for `usage` at a compiled price, as the Worker computes it: each token kind at its
    price (all at the long-context prices when the input is above their line), the sum rounded
    up once, and the model's per-request price."""
    per_request = price.get("request", 0)
    if "long" in price and usage["prompt"] > price["long"]["above"]:
        price = price["long"]
    written = usage.get("written", 0)
    hour = usage.get("written_1h", 0)
    plain = usage["prompt"] - usage.get("cached", 0) - written
    numerator = (
        plain * price["in"]
        + usage.get("cached", 0) * price["cachedIn"]
        + (written - hour) * price["cacheWrite"]
        + hour * price.get("cacheWrite1h", price["cacheWrite"])
        + usage["completion"] * price["out"]
    )
    return math.ceil(numerator / 1_000_000) + per_request


# The route kind of an upstream call, from its path at AI Gateway (the emulator's log).
_KINDS = (
    ("/google-ai-studio/", "gemini"),
    ("/anthropic/v1/messages", "messages"),
    ("/openai/responses", "responses"),
    ("/embeddings", "embeddings"),
    ("/chat/completions", "chat"),
)


def upstream_cost(gateway: LocalGateway, entry: dict[str, Any], answer: dict[str, Any]) -> int:
    """What the upstream call `entry` (a log entry of the emulator) must cost, from the answer
    the emulator sent for it."""
    kind = next((k for suffix, k in _KINDS if suffix in entry["path"]), "workers_ai_run")
    stream = "chunks" in answer
    text = "".join(chunk["data"] for chunk in answer["chunks"]) if stream else answer["body"]
    usage = answer_usage(kind, text, stream=stream)
    return cost_of(gateway, f"{entry['provider']}/{entry['model']}", usage)
