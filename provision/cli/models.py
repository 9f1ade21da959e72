"""`provision models`: each model a stack offers, the price it is charged at and where that
price comes from (the stack's pricing.models, the catalog, or pricing.default), with the
catalog's own price beside a stack price that differs from it, and the context window.

Model patterns (routing.modelPatterns) are listed with the catalog's models under each.
USD per million tokens; `long` is the price of every token of a request whose input is above
the size it names. `--json` prints the same as one object, prices as decimal strings.
"""

from __future__ import annotations

import argparse
import json
import sys
from decimal import Decimal
from typing import Any

from provision.cli.admin_views import table
from provision.errors import ProvisionError
from provision.stack.catalog import catalog_version, pattern_entries
from provision.stack.config import StackConfig, display_path, load_stack_file, resolve_stack
from provision.stack.model import Price, TokenPrices
from provision.stack.prices import ModelPrice, model_price


def _usd(value: Decimal | None) -> str:
    """`3` → `3.00`, `0.075` → `0.075`: cents at least, every digit the price has."""
    if value is None:
        return "-"
    exact = value.normalize()
    places = -int(exact.as_tuple().exponent)  # prices are finite: the exponent is a number
    shown = exact if places > 2 else value.quantize(Decimal("0.01"))
    return f"{shown:f}"


def _token_cells(prices: TokenPrices) -> list[str]:
    return [
        _usd(prices.inputPerMTok),
        _usd(prices.outputPerMTok),
        _usd(prices.cachedInputPerMTok),
        _usd(prices.cacheWriteInputPerMTok),
        _usd(prices.cacheWrite1hInputPerMTok),
    ]


def _long(price: Price) -> str:
    long = price.longContext
    if long is None:
        return "-"
    return f">{long.aboveInputTokens:,}: {_usd(long.inputPerMTok)}/{_usd(long.outputPerMTok)}"


def _row(model: str, kind: str, priced: ModelPrice) -> list[str]:
    price = priced.price
    window = priced.catalog.context_window if priced.catalog else None
    cells = [model, kind, priced.source or "NONE"]
    if price is None:
        return [*cells, *["-"] * 7, f"{window:,}" if window else "-", priced.missing]
    note = ""
    if priced.differs:
        theirs = priced.catalog.price if priced.catalog else None
        assert theirs is not None
        note = (
            f"differs from the catalog in {', '.join(priced.differs)} (catalog: "
            f"{_usd(theirs.inputPerMTok)}/{_usd(theirs.outputPerMTok)})"
        )
    elif priced.source == "default" and priced.catalog is None:
        note = "not in the catalog"
    elif priced.source == "default":
        note = priced.missing
    return [
        *cells,
        *_token_cells(price),
        _long(price),
        _usd(price.perRequestUsd),
        f"{window:,}" if window else "-",
        note,
    ]


def _json_price(price: Price | None) -> dict[str, Any] | None:
    return None if price is None else json.loads(price.model_dump_json(exclude_none=True))


def describe(config: StackConfig) -> dict[str, Any]:
    """Every offered model with its price, source and the catalog's view of it."""
    models = []
    offered = [(m, "chat") for m in config.routing.models]
    offered += [(m, "embedding") for m in config.routing.embeddingModels]
    for model, kind in offered:
        priced = model_price(config.pricing, model)
        catalog = priced.catalog
        models.append(
            {
                "model": model,
                "kind": kind,
                "source": priced.source,
                "price": _json_price(priced.price),
                "catalog": None
                if catalog is None
                else {
                    "id": f"{catalog.provider}/{catalog.catalog_id}",
                    "price": _json_price(catalog.price),
                    "unusable": catalog.unusable,
                    "contextWindow": catalog.context_window,
                },
                "differsFromCatalog": priced.differs,
                **({"missing": priced.missing} if priced.price is None else {}),
            }
        )
    patterns = [
        {
            "pattern": pattern,
            "models": [
                {"id": e.id, "price": _json_price(e.price), "contextWindow": e.window}
                for e in pattern_entries(pattern)
            ],
        }
        for pattern in config.routing.modelPatterns
    ]
    return {"catalog": f"genai-prices {catalog_version()}", "models": models, "patterns": patterns}


def _pattern_line(pattern: str) -> str:
    """One line per model pattern: how many of the catalog's models it serves, from which."""
    ids = [e.id for e in pattern_entries(pattern)]
    span = f" ({ids[0]} … {ids[-1]})" if len(ids) > 1 else (f" ({ids[0]})" if ids else "")
    return f"  {pattern}: {len(ids)} catalog models{span}, each at the catalog's price"


def render(config: StackConfig, source: str) -> str:
    rows = []
    for model, kind in [
        *((m, "chat") for m in config.routing.models),
        *((m, "embedding") for m in config.routing.embeddingModels),
    ]:
        rows.append(_row(model, kind, model_price(config.pricing, model)))
    headers = [
        "MODEL",
        "KIND",
        "SOURCE",
        "IN",
        "OUT",
        "CACHE READ",
        "CACHE WRITE",
        "WRITE 1H",
        "LONG CONTEXT",
        "PER REQUEST",
        "CONTEXT",
        "NOTE",
    ]
    head = (
        f"{source}: {len(rows)} models, USD per million tokens "
        f"(catalog: genai-prices {catalog_version()})"
    )
    out = head + "\n" + table(headers, rows, numeric={3, 4, 5, 6, 7, 9, 10})
    if config.routing.modelPatterns:
        lines = [_pattern_line(p) for p in config.routing.modelPatterns]
        out += (
            "\nModel patterns (ids under them served when the catalog knows them):\n"
            + "\n".join(lines)
        )
    return out


def run(args: argparse.Namespace) -> int:
    try:
        path = resolve_stack(args.stack)
        config = load_stack_file(path)
    except ProvisionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(describe(config), indent=2))
    else:
        print(render(config, display_path(path)))
    return 0


def configure(parser: argparse.ArgumentParser) -> None:
    """The arguments of `provision models` (its help line is in provision/cli/__init__.py)."""
    parser.add_argument("--stack", default="dev", help="stack name or path (default: dev)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(handler=run)
