"""Prices from the catalog (genai-prices, issue 24): what a model's catalog entry becomes, what
cannot be taken from there and why, the order stack > catalog > default, and the commands that
show it (`provision models`, `provision check`)."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml
from genai_prices import Usage, calc_price
from genai_prices import types as genai
from genai_prices.data_snapshot import get_snapshot

from provision.cli import main
from provision.errors import ConfigError
from provision.stack.catalog import CATALOG_PROVIDERS, catalog_entry, catalog_version
from provision.stack.config import load_stack_file
from provision.stack.model import Price, Pricing
from provision.stack.prices import compile_price, model_price
from tests.charges import micros_at
from tests.support import ROOT

STACKS = ROOT / "stacks"


def _models() -> list[tuple[str, genai.ModelInfo]]:
    """Every model of the providers the gateway maps, as `<AI Gateway slug>/<id>` (those a
    request can name by the catalog's own id: some ids are only labels of a match rule)."""
    slug_of = {catalog: slug for slug, catalog in reversed(CATALOG_PROVIDERS.items())}
    found = []
    for provider in get_snapshot().providers:
        for model in provider.models if provider.id in slug_of else []:
            model_id = f"{slug_of[provider.id]}/{model.id}"
            entry = catalog_entry(model_id)
            if entry is not None and entry.catalog_id == model.id:
                found.append((model_id, model))
    return found


def _current(model: genai.ModelInfo) -> genai.ModelPrice:
    prices = model.prices
    if isinstance(prices, genai.ModelPrice):
        return prices
    undated = [c.prices for c in prices if c.constraint is None]
    return undated[-1] if undated else prices[-1].prices


def test_catalog_prices_become_the_stacks_own_shape():
    """Flat prices, cache reads and writes by duration, and embeddings (no output price)."""
    mini = catalog_entry("openai/gpt-4o-mini")
    assert mini is not None and mini.price is not None
    assert compile_price(mini.price) == {
        "in": 150_000,
        "out": 600_000,
        "cachedIn": 75_000,
        "cacheWrite": 150_000,
    }
    assert mini.context_window == 128_000
    opus = catalog_entry("anthropic/claude-opus-5-5")
    assert opus is not None and opus.price is not None
    assert compile_price(opus.price) == {
        "in": 4_000_000,
        "out": 20_000_000,
        "cachedIn": 200_000,
        "cacheWrite": 5_000_000,
        "cacheWrite1h": 8_000_000,
    }
    embedding = catalog_entry("openai/text-embedding-3-small")
    assert embedding is not None and embedding.price is not None
    assert compile_price(embedding.price)["out"] == 0
    # Workers AI is the catalog's "cloudflare"
    llama = catalog_entry("workers-ai/@cf/meta/llama-3.1-8b-instruct")
    assert llama is not None and llama.provider == "cloudflare"
    assert llama.price is not None and compile_price(llama.price)["in"] == 282_000


def test_a_long_context_tier_becomes_the_long_price_with_its_line():
    """Sonnet 4.5: every token at the tier's price above 200,000 input tokens (the catalog's
    cliff, `>` its start), each kind of token at its own tier price."""
    entry = catalog_entry("anthropic/claude-sonnet-4-5")
    assert entry is not None and entry.price is not None
    compiled = compile_price(entry.price)
    assert compiled["long"] == {
        "in": 6_000_000,
        "out": 22_500_000,
        "cachedIn": 600_000,
        "cacheWrite": 7_500_000,
        "cacheWrite1h": 12_000_000,
        "above": 200_000,
    }
    # Haiku 5.5's line is lower: what the dev stack's flat prices could not say
    haiku = catalog_entry("anthropic/claude-haiku-5-5")
    assert haiku is not None and haiku.price is not None
    assert haiku.price.longContext is not None
    assert haiku.price.longContext.aboveInputTokens == 100_000


def _usages(price: Price) -> list[dict[str, int]]:
    """Requests to price: plain, reading and writing a cache (an hour's too, where priced), and
    one above the long-context line."""
    usages = [{"prompt": 1_234, "completion": 567}]
    if price.cachedInputPerMTok is not None or price.cacheWriteInputPerMTok is not None:
        cache: dict[str, int] = {"prompt": 5_000, "completion": 321}
        if price.cachedInputPerMTok is not None:
            cache["cached"] = 2_000
        if price.cacheWriteInputPerMTok is not None:
            cache["written"] = 1_500
            if price.cacheWrite1hInputPerMTok is not None:
                cache["written_1h"] = 1_000
        usages.append(cache)
    if price.longContext is not None:
        usages.append({"prompt": price.longContext.aboveInputTokens + 1, "completion": 999})
    return usages


def _catalog_micros(provider: str, model: str, usage: dict[str, int], day: dt.date) -> Decimal:
    """What genai-prices itself says one request with this usage costs, in µUSD (exact; a
    per-request price included)."""
    names = {"cached": "cache_read_tokens", "written": "cache_write_tokens"}
    names["written_1h"] = "cache_write_1h_tokens"
    counts = {names[k]: v for k, v in usage.items() if k in names}
    priced = calc_price(
        Usage(input_tokens=usage["prompt"], output_tokens=usage["completion"], **counts),
        model_ref=model,
        provider_id=provider,
        genai_request_timestamp=dt.datetime.combine(day, dt.time(12), tzinfo=dt.UTC),
    )
    return priced.total_price * 1_000_000


def test_every_mapped_catalog_model_is_charged_what_the_catalog_says_or_refused():
    """Across the whole catalog: each price the Worker can bill charges, for plain, cached,
    hour-cached and long-context requests alike, what genai-prices' own calculator says (rounded
    up, under a µUSD over); one it cannot (two tiers, tiers at other lines, modalities it does
    not meter) is refused with its reason, never approximated."""
    day = dt.datetime.now(dt.UTC).date()
    taken = refused = 0
    for model_id, model in _models():
        entry = catalog_entry(model_id, day)
        assert entry is not None, model_id
        if entry.price is None:
            assert entry.unusable, model_id
            refused += 1
            continue
        taken += 1
        compiled = compile_price(entry.price)
        for usage in _usages(entry.price):
            ours = micros_at(compiled, usage)
            exact = _catalog_micros(entry.provider, model.id, usage, day)
            assert exact <= ours < exact + 2, (model_id, usage, ours, exact)
    assert taken > 500 and refused > 0, (taken, refused)


def test_what_the_gateway_cannot_bill_exactly_is_not_taken():
    reasons: dict[str, str] = {}
    for model_id, model in _models():
        entry = catalog_entry(model_id)
        assert entry is not None
        prices = vars(_current(model))
        if entry.unusable:
            reasons[model_id] = entry.unusable
        tiered = [v for v in prices.values() if isinstance(v, genai.TieredPrices)]
        if any(len(v.tiers) > 1 for v in tiered):
            assert entry.price is None and "long-context tiers" in (entry.unusable or ""), model_id
        if prices.get("input_audio_mtok") is not None:
            assert entry.price is None and "input_audio_mtok" in (entry.unusable or ""), model_id
    assert any("does not meter" in r for r in reasons.values())


def test_a_per_request_price_is_taken_per_request():
    """`requests_kcount` (USD per 1,000 requests) becomes perRequestUsd, compiled to µUSD."""
    found = [
        (model_id, model)
        for model_id, model in _models()
        if vars(_current(model)).get("requests_kcount") is not None
        and (e := catalog_entry(model_id)) is not None
        and e.price is not None
    ]
    if not found:
        pytest.skip(f"genai-prices {catalog_version()} prices no mapped model per request")
    model_id, model = found[0]
    entry = catalog_entry(model_id)
    assert entry is not None and entry.price is not None
    per_k = Decimal(vars(_current(model))["requests_kcount"])
    assert entry.price.perRequestUsd == (per_k / 1000).quantize(Decimal("0.000001"))
    assert compile_price(entry.price)["request"] == int(per_k * 1000)


def test_a_price_change_on_a_date_is_taken_from_that_date():
    """A model whose catalog price changed on a date is priced as of the day the stack is
    compiled: the day before the change, the old price; from it, the new one."""
    for model_id, model in _models():
        if not isinstance(model.prices, list):
            continue
        dated = [
            c
            for c in model.prices
            if isinstance(c.constraint, genai.StartDateConstraint)
            and not isinstance(c.prices.input_mtok, genai.TieredPrices)
        ]
        if not dated:
            continue
        change = dated[-1]
        assert isinstance(change.constraint, genai.StartDateConstraint)
        day = change.constraint.start_date
        after = catalog_entry(model_id, day)
        before = catalog_entry(model_id, day - dt.timedelta(days=1))
        assert after is not None and before is not None
        if after.price is None or before.price is None:
            continue
        assert after.price.inputPerMTok == Decimal(change.prices.input_mtok).quantize(
            Decimal("0.000001")
        )
        if after.price.inputPerMTok != before.price.inputPerMTok:
            return
    pytest.fail("no model of the catalog changed its input price on a date")


def test_the_stack_wins_then_the_catalog_then_the_default():
    declared = {"inputPerMTok": "0.10", "outputPerMTok": "0.50"}
    pricing = Pricing.model_validate(
        {
            "models": {"openai/gpt-4o-mini": declared},
            "default": {"inputPerMTok": 9, "outputPerMTok": 9},
        }
    )
    stack = model_price(pricing, "openai/gpt-4o-mini")
    assert stack.source == "stack" and stack.price is not None
    assert stack.price.inputPerMTok == Decimal("0.10")
    assert "inputPerMTok" in stack.differs and "outputPerMTok" in stack.differs
    catalog = model_price(pricing, "openai/gpt-4o")
    assert catalog.source == "catalog" and catalog.differs == []
    unknown = model_price(pricing, "openai/no-such-model-2099")
    assert unknown.source == "default"
    # a provider the catalog does not map (a team's own OpenAI-compatible server)
    assert model_price(pricing, "my-vllm/llama").source == "default"
    assert model_price(Pricing(), "openai/no-such-model-2099").price is None


def _stack_with(tmp_path: Path, models: list[str], pricing: dict[str, Any]) -> Path:
    document = yaml.safe_load((STACKS / "Pulumi.dev.yaml").read_text(encoding="utf-8"))
    config = document["config"]
    config["llm-gateway:routing"]["models"] = models
    config["llm-gateway:routing"]["defaultModel"] = models[0]
    config["llm-gateway:routing"]["aliases"] = {}
    config["llm-gateway:routing"]["fallbacks"] = {}
    config["llm-gateway:routing"]["retries"] = {}
    config["llm-gateway:routing"]["workersAiStandIns"] = {}
    config["llm-gateway:pricing"] = pricing
    for org in config["llm-gateway:tenants"]["organizations"]:
        org.pop("allowedModels", None)
        org.pop("defaultModel", None)
        org.pop("aliases", None)
    for user in config["llm-gateway:tenants"]["users"]:
        user.pop("allowedModels", None)
        user.pop("defaultModel", None)
    path = tmp_path / "Pulumi.catalog.yaml"
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    return path


def test_a_model_with_no_price_anywhere_is_an_error_naming_why(tmp_path: Path):
    path = _stack_with(tmp_path, ["openai/gpt-4o-mini", "openai/gpt-9-imaginary"], {"models": {}})
    with pytest.raises(ConfigError) as raised:
        load_stack_file(path)
    (problem,) = [p for p in raised.value.problems if "gpt-9-imaginary" in p.message]
    assert problem.path == "routing.models[1]"
    assert f"the catalog (genai-prices {catalog_version()}) does not know it" in problem.message
    # the catalog prices the other one: no problem for it
    assert not [p for p in raised.value.problems if "gpt-4o-mini" in p.message]


def test_a_model_the_catalog_cannot_price_exactly_says_so(tmp_path: Path):
    unusable = next(
        model_id
        for model_id, _ in _models()
        if model_id.startswith("openai/")
        and (e := catalog_entry(model_id)) is not None
        and e.price is None
    )
    path = _stack_with(tmp_path, ["openai/gpt-4o-mini", unusable], {"models": {}})
    with pytest.raises(ConfigError) as raised:
        load_stack_file(path)
    (problem,) = raised.value.problems
    assert "the catalog cannot price it exactly" in problem.message
    # priced in the stack, it is offered
    priced = {"models": {unusable: {"inputPerMTok": 1, "outputPerMTok": 2}}}
    config = load_stack_file(_stack_with(tmp_path, ["openai/gpt-4o-mini", unusable], priced))
    assert model_price(config.pricing, unusable).source == "stack"


def test_provision_models_shows_each_price_and_its_source(capsys: pytest.CaptureFixture[str]):
    assert main(["models", "--stack", "example", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["catalog"] == f"genai-prices {catalog_version()}"
    by_model = {m["model"]: m for m in shown["models"]}
    config = load_stack_file(STACKS / "Pulumi.example.yaml")
    assert set(by_model) == set(config.routing.catalog)
    mini = by_model["openai/gpt-4o-mini"]  # a negotiated price
    assert mini["source"] == "stack"
    assert mini["price"]["inputPerMTok"] == "0.135"
    assert mini["catalog"]["price"]["inputPerMTok"] == "0.150000"
    assert "inputPerMTok" in mini["differsFromCatalog"]
    sonnet = by_model["anthropic/claude-sonnet-4-5"]  # declared as the catalog has it
    assert sonnet["source"] == "stack" and sonnet["differsFromCatalog"] == []
    assert by_model["openai/gpt-4o"]["source"] == "catalog"
    assert by_model["openai/gpt-4o"]["catalog"]["contextWindow"] == 128_000
    assert main(["models", "--stack", "example"]) == 0
    table = capsys.readouterr().out
    assert "differs from the catalog in inputPerMTok" in table
    assert ">200,000: 6.00/22.50" in table


def test_provision_models_on_a_broken_stack_says_what_is_wrong(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    path = _stack_with(tmp_path, ["openai/gpt-9-imaginary"], {"models": {}})
    assert main(["models", "--stack", str(path)]) == 1
    assert "gpt-9-imaginary" in capsys.readouterr().err


def test_check_warns_when_the_default_prices_a_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    pricing = {"models": {}, "default": {"inputPerMTok": 1, "outputPerMTok": 2}}
    path = _stack_with(tmp_path, ["openai/gpt-4o-mini", "openai/gpt-9-imaginary"], pricing)
    assert main(["check", "--stack", str(path)]) == 0
    out = capsys.readouterr().out
    assert "openai/gpt-9-imaginary has no price of its own and the catalog" in out
    assert "gpt-4o-mini has no price" not in out
    assert main(["check", "--stack", str(path), "--strict"]) == 1


# ---------------------------------------------------------------- model patterns


def test_a_patterns_entries_are_the_catalogs_priced_models_under_it_in_order():
    from provision.stack.catalog import pattern_entries

    entries = pattern_entries("anthropic/claude-*")
    ids = [e.id for e in entries]
    snapshot = [m.id for p in get_snapshot().providers if p.id == "anthropic" for m in p.models]
    assert ids == [i for i in snapshot if i in ids], "the catalog's order (first match wins)"
    assert {"claude-sonnet-4-5", "claude-opus-4-8"} <= set(ids)
    sonnet = next(e for e in entries if e.id == "claude-sonnet-4-5")
    assert sonnet.match == {
        "or": [{"starts_with": "claude-sonnet-4-5"}, {"starts_with": "claude-sonnet-4.5"}]
    }
    entry = catalog_entry("anthropic/claude-sonnet-4-5")
    assert entry is not None and sonnet.price == entry.price
    assert pattern_entries("anthropic/nothing-here-*") == []
    assert pattern_entries("no-such-provider/x*") == []


def _patterns_stack(tmp_path: Path, edit: Any) -> Path:
    document = yaml.safe_load((ROOT / "tests/fixtures/Pulumi.patterns.yaml").read_text())
    edit(document["config"])
    path = tmp_path / "Pulumi.edited.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def test_a_pattern_must_name_a_provider_and_cover_a_priced_model(tmp_path: Path):
    def edit(config: dict[str, Any]) -> None:
        config["llm-gateway:routing"]["modelPatterns"] = ["nobody/x*", "anthropic/zzz-*"]
        users = config["llm-gateway:tenants"]["users"]
        users[1]["allowedModels"] = ["anthropic/claude-sonnet-4-5", "openai/gpt-6*"]

    with pytest.raises(ConfigError) as raised:
        load_stack_file(_patterns_stack(tmp_path, edit))
    messages = {p.path: p.message for p in raised.value.problems}
    assert "no provider 'nobody'" in messages["routing.modelPatterns[0]"]
    assert "no model under it" in messages["routing.modelPatterns[1]"]
    assert "openai/gpt-6*" in messages["tenants.users[1].allowedModels[1]"]


def test_the_context_window_bounds_a_worst_case_only_where_it_is_safe():
    from provision.stack.prices import context_window

    pricing = Pricing()
    assert context_window(pricing, "openai/gpt-4o-mini") == 128_000
    # a long-context price: the catalog's window is the standard one, a beta goes past it
    assert context_window(pricing, "anthropic/claude-sonnet-4-5") is None
    assert context_window(pricing, "workers-ai/@cf/meta/llama-3.1-8b-instruct") is None


def test_provision_models_lists_each_pattern_with_the_catalogs_models_under_it(
    capsys: pytest.CaptureFixture[str],
):
    stack = str(ROOT / "tests/fixtures/Pulumi.patterns.yaml")
    assert main(["models", "--stack", stack, "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    patterns = {p["pattern"]: p["models"] for p in shown["patterns"]}
    assert set(patterns) == {"anthropic/claude-*", "openai/gpt-5*"}
    claude = {m["id"]: m for m in patterns["anthropic/claude-*"]}
    assert claude["claude-haiku-4-5"]["contextWindow"] == 200_000
    assert claude["claude-haiku-4-5"]["price"]["inputPerMTok"] == "1.000000"
    assert claude["claude-sonnet-4-5"]["contextWindow"] is None, "a long-context price: no cap"
    assert main(["models", "--stack", stack]) == 0
    table = capsys.readouterr().out
    assert f"anthropic/claude-*: {len(claude)} catalog models" in table
