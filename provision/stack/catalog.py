"""Model prices and context windows from a maintained catalog: pydantic's `genai-prices` (MIT,
updated weekly, pinned in uv.lock), read when a stack is compiled, never at request time.

A stack names its models; each gets its prices from here unless `pricing.models` declares its
own (decision 0029). What the Worker cannot bill exactly is not taken from the catalog: a model
whose catalog prices have more than one long-context tier, tiers that start at different input
sizes, or prices for things the gateway does not meter (audio or image tokens, reasoning tokens
at their own rate, characters, pages) must be priced in the stack, and the reason is said.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal
from functools import cache
from importlib.metadata import version
from typing import Any

from genai_prices import types as genai
from genai_prices.data_snapshot import get_snapshot

from provision.stack.model import LongContextPrice, Price

# AI Gateway's provider slug (the first segment of a model id) → the catalog's provider id.
# Workers AI is the catalog's "cloudflare"; Vertex prices Gemini as AI Studio does.
CATALOG_PROVIDERS: dict[str, str] = {
    "openai": "openai",
    "anthropic": "anthropic",
    "workers-ai": "cloudflare",
    "google-ai-studio": "google",
    "google-vertex-ai": "google",
    "aws-bedrock": "aws",
    "azure-openai": "azure",
    "groq": "groq",
    "mistral": "mistral",
    "deepseek": "deepseek",
    "grok": "x-ai",
    "openrouter": "openrouter",
    "cerebras": "cerebras",
    "perplexity-ai": "perplexity",
    "cohere": "cohere",
}

# The catalog's price keys the gateway bills, and the stack field each becomes.
TOKEN_KEYS: dict[str, str] = {
    "input_mtok": "inputPerMTok",
    "output_mtok": "outputPerMTok",
    "cache_read_mtok": "cachedInputPerMTok",
    "cache_write_mtok": "cacheWriteInputPerMTok",
    "cache_write_1h_mtok": "cacheWrite1hInputPerMTok",
}
# Billed per call through pricing.tools (the same documented prices), not per model here.
TOOL_KEYS = frozenset({"web_searches_kcount", "storage_searches_kcount", "code_executions_kcount"})
REQUEST_KEY = "requests_kcount"
MICRO = Decimal("0.000001")


@dataclass(frozen=True)
class CatalogEntry:
    """What the catalog says of one model: its price as the stack would declare it, or why the
    gateway cannot take it from there; and its context window when known."""

    model: str
    catalog_id: str
    provider: str
    price: Price | None
    unusable: str | None
    context_window: int | None


def catalog_version() -> str:
    """The genai-prices release the prices come from (uv.lock pins it)."""
    return version("genai-prices")


def _usd(value: Decimal) -> Decimal:
    # at most 6 decimals per million tokens (one µUSD); a finer catalog price is rounded up,
    # never down: the gateway never charges less than the provider bills
    return value.quantize(MICRO, rounding=ROUND_CEILING)


def _active_price(model: genai.ModelInfo, at: dt.datetime) -> genai.ModelPrice | None:
    if isinstance(model.prices, genai.ModelPrice):
        return model.prices
    active = None
    for conditional in model.prices:
        constraint = conditional.constraint
        if constraint is None:
            active = conditional.prices
        elif isinstance(constraint, genai.StartDateConstraint) and constraint.active(at):
            active = conditional.prices
        elif isinstance(constraint, genai.TimeOfDateConstraint):
            return None  # a price by time of day (off-peak): one price cannot say it
    return active


def _price_of(prices: genai.ModelPrice) -> tuple[Price | None, str | None]:
    """The catalog's prices as the stack's Price, or why they cannot be one."""
    set_keys = {key: value for key, value in vars(prices).items() if value is not None}
    other = sorted(
        k for k in set_keys if k not in TOKEN_KEYS and k not in TOOL_KEYS and k != REQUEST_KEY
    )
    if other:
        return None, f"the catalog prices {', '.join(other)}, which the gateway does not meter"
    if "input_mtok" not in set_keys:
        return None, "the catalog has no input price for it"
    starts: set[int] = set()
    base: dict[str, Decimal] = {}
    tier: dict[str, Decimal] = {}
    for key, field in TOKEN_KEYS.items():
        value = set_keys.get(key)
        if value is None:
            continue
        if isinstance(value, genai.TieredPrices):
            if len(value.tiers) != 1:
                return (
                    None,
                    f"its {key} has {len(value.tiers)} long-context tiers (the gateway bills one)",
                )
            starts.add(value.tiers[0].start)
            base[field] = _usd(value.base)
            tier[field] = _usd(value.tiers[0].price)
        else:
            base[field] = _usd(Decimal(value))
    if len(starts) > 1:
        return None, "its long-context tiers start at different input sizes"
    # no output price (an embedding model): the provider bills no output
    base.setdefault("outputPerMTok", Decimal(0))
    request = set_keys.get(REQUEST_KEY)
    per_request = None if request is None else _usd(Decimal(request) / 1000)
    long_context = None
    if starts:
        (above,) = starts
        # a price without a tier of its own stays what it is past the line
        long_context = LongContextPrice(**{**base, **tier}, aboveInputTokens=above)
    return Price(**base, longContext=long_context, perRequestUsd=per_request), None


@cache
def _entry(model: str, day: dt.date) -> CatalogEntry | None:
    slug, _, name = model.partition("/")
    provider_id = CATALOG_PROVIDERS.get(slug)
    if provider_id is None:
        return None
    try:
        provider, info = get_snapshot().find_provider_model(name, None, provider_id, None)
    except LookupError:
        return None
    at = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)
    active = _active_price(info, at)
    price: Price | None = None
    unusable: str | None = "its catalog price depends on the time of day"
    if active is not None:
        price, unusable = _price_of(active)
    return CatalogEntry(
        model=model,
        catalog_id=info.id,
        provider=provider.id,
        price=price,
        unusable=unusable,
        context_window=info.context_window,
    )


def catalog_entry(model: str, day: dt.date | None = None) -> CatalogEntry | None:
    """The catalog's entry for a model id (`provider/model`), with the price active on `day`
    (today, UTC, by default); None when the catalog does not know the model."""
    return _entry(model, day or dt.datetime.now(dt.UTC).date())


@dataclass(frozen=True)
class PatternEntry:
    """One catalog model under a stack's model pattern: its id, its match rules (genai-prices'
    own, as JSON for the Worker) and its price."""

    id: str
    match: dict[str, Any]
    price: Price
    # the most input tokens it takes, when that bounds a worst case safely (no long-context price)
    window: int | None = None


def match_json(logic: Any) -> dict[str, Any]:
    """genai-prices' match rules as plain JSON ({"starts_with": …}, {"or": […]}, …)."""
    if isinstance(logic, genai.ClauseOr):
        return {"or": [match_json(clause) for clause in logic.or_]}
    if isinstance(logic, genai.ClauseAnd):
        return {"and": [match_json(clause) for clause in logic.and_]}
    for field in ("equals", "starts_with", "ends_with", "contains", "regex"):
        if hasattr(logic, field):
            return {field: getattr(logic, field)}
    raise ValueError(f"unknown catalog match rule {logic!r}")


def pattern_entries(pattern: str, day: dt.date | None = None) -> list[PatternEntry]:
    """The catalog's models under `pattern` (`anthropic/claude-*`: the provider's models whose id
    starts with `claude-`), in the catalog's order, each with a price the gateway can bill; the
    rest (no price, a price it cannot meter) are left out, so ids that only they match are
    refused."""
    slug, _, name = pattern.partition("/")
    provider_id = CATALOG_PROVIDERS.get(slug)
    if provider_id is None:
        return []
    prefix = name.removesuffix("*").lower()
    at = dt.datetime.combine(day or dt.datetime.now(dt.UTC).date(), dt.time(), tzinfo=dt.UTC)
    out: list[PatternEntry] = []
    for provider in get_snapshot().providers:
        if provider.id != provider_id:
            continue
        for model in provider.models:
            if not model.id.lower().startswith(prefix):
                continue
            active = _active_price(model, at)
            price = None if active is None else _price_of(active)[0]
            if price is not None:
                window = None if price.longContext is not None else model.context_window
                out.append(PatternEntry(model.id, match_json(model.match), price, window))
    return out
