"""Each offered model's price, and where it comes from: the stack's `pricing.models` (what a
platform team declares wins), else the catalog (genai-prices, read when the stack is compiled),
else the stack's `pricing.default`; none of them: the model cannot be offered (decision 0029).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Literal

from provision.money import usd_to_micros
from provision.stack.catalog import CatalogEntry, catalog_entry, catalog_version
from provision.stack.model import Price, Pricing, StackConfig, TokenPrices

Source = Literal["stack", "catalog", "default"]


@dataclass(frozen=True)
class ModelPrice:
    model: str
    price: Price | None
    source: Source | None
    catalog: CatalogEntry | None

    @property
    def differs(self) -> list[str]:
        """The stack's fields that say otherwise than the catalog (a stack price only)."""
        if self.source != "stack" or self.catalog is None or self.catalog.price is None:
            return []
        assert self.price is not None
        return _differences(self.price, self.catalog.price)

    @property
    def missing(self) -> str:
        """Why neither the stack nor the catalog prices it ("" when one does)."""
        if self.source in ("stack", "catalog"):
            return ""
        if self.catalog is None:
            return f"the catalog (genai-prices {catalog_version()}) does not know it"
        return f"the catalog cannot price it exactly: {self.catalog.unusable}"


def _token_prices(price: TokenPrices) -> dict[str, int]:
    cached = (
        price.cachedInputPerMTok if price.cachedInputPerMTok is not None else price.inputPerMTok
    )
    written = (
        price.cacheWriteInputPerMTok
        if price.cacheWriteInputPerMTok is not None
        else price.inputPerMTok
    )
    compiled = {
        "in": usd_to_micros(price.inputPerMTok),
        "out": usd_to_micros(price.outputPerMTok),
        "cachedIn": usd_to_micros(cached),
        "cacheWrite": usd_to_micros(written),
    }
    if price.cacheWrite1hInputPerMTok is not None:  # absent: 1-hour caching has no price
        compiled["cacheWrite1h"] = usd_to_micros(price.cacheWrite1hInputPerMTok)
    return compiled


def compile_price(price: Price) -> dict[str, Any]:
    """µUSD per million tokens, integers (so cost = tokens × price / 10^6, one rounding); a
    long-context price as `long`, with the input size above which it applies."""
    compiled: dict[str, Any] = _token_prices(price)
    if price.longContext is not None:
        compiled["long"] = {
            **_token_prices(price.longContext),
            "above": price.longContext.aboveInputTokens,
        }
    if price.perRequestUsd:  # µUSD per request, on top of the tokens
        compiled["request"] = usd_to_micros(price.perRequestUsd)
    return compiled


# compiled keys → the stack's field names, for what `provision models` says differs
FIELD_OF = {
    "in": "inputPerMTok",
    "out": "outputPerMTok",
    "cachedIn": "cachedInputPerMTok",
    "cacheWrite": "cacheWriteInputPerMTok",
    "cacheWrite1h": "cacheWrite1hInputPerMTok",
    "request": "perRequestUsd",
    "above": "aboveInputTokens",
}


def _differences(stack: Price, catalog: Price) -> list[str]:
    """What the stack's price charges otherwise than the catalog's (as compiled: a field left
    out means what it defaults to)."""
    mine, theirs = compile_price(stack), compile_price(catalog)
    out = [FIELD_OF[k] for k in FIELD_OF if k != "above" and mine.get(k) != theirs.get(k)]
    long_mine, long_theirs = mine.get("long"), theirs.get("long")
    if (long_mine is None) != (long_theirs is None):
        out.append("longContext")
    elif long_mine is not None and long_theirs is not None:
        out += [
            f"longContext.{FIELD_OF[k]}" for k in FIELD_OF if long_mine.get(k) != long_theirs.get(k)
        ]
    return out


def model_price(pricing: Pricing, model: str, day: dt.date | None = None) -> ModelPrice:
    """The price `model` is charged at, and its source."""
    entry = catalog_entry(model, day)
    if model in pricing.models:
        return ModelPrice(model, pricing.models[model], "stack", entry)
    if entry is not None and entry.price is not None:
        return ModelPrice(model, entry.price, "catalog", entry)
    if pricing.default is not None:
        return ModelPrice(model, pricing.default, "default", entry)
    return ModelPrice(model, None, None, entry)


def price_table(config: StackConfig, day: dt.date | None = None) -> dict[str, dict[str, Any]]:
    """Every offered model's price as the Worker reads it (µUSD; config validation guarantees
    each has one)."""
    table = {}
    for model in config.routing.catalog:
        price = model_price(config.pricing, model, day).price
        assert price is not None, "config validation guarantees a price"
        table[model] = compile_price(price)
    return table


def context_window(pricing: Pricing, model: str) -> int | None:
    """The most input tokens `model` takes, from the catalog, when it bounds a request's worst
    case safely: not for a model with a long-context price (the catalog's window is then the
    standard one, and a beta such as Anthropic's 1M context goes past it), nor one the catalog
    does not know."""
    entry = catalog_entry(model)
    if entry is None or entry.context_window is None:
        return None
    price = model_price(pricing, model).price
    long_priced = (price is not None and price.longContext is not None) or (
        entry.price is not None and entry.price.longContext is not None
    )
    return None if long_priced else entry.context_window


def context_windows(config: StackConfig) -> dict[str, int]:
    """The chat models' context windows the Worker caps a request's worst-case input at."""
    windows = {model: context_window(config.pricing, model) for model in config.routing.models}
    return {model: window for model, window in windows.items() if window is not None}
