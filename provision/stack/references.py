"""Cross-reference checks of a stack: ids, organizations, models and prices that must agree.

They run on whatever part of a stack is well-typed, so one run reports type mistakes and
reference mistakes together.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from provision.errors import Problem
from provision.stack.catalog import pattern_entries
from provision.stack.contract import (
    AWS_BEDROCK,
    AZURE_OPENAI,
    CUSTOM_PREFIX,
    EMBEDDING_PROVIDERS,
    GOOGLE_VERTEX_AI,
    NATIVE_PROVIDERS,
    WORKERS_AI,
)
from provision.stack.keys import is_demo_hash
from provision.stack.model import (
    Alerts,
    Organization,
    Pricing,
    RateTier,
    Routing,
    StackConfig,
    User,
)
from provision.stack.prices import model_price

NOT_OFFERED = "routing.models or routing.embeddingModels"
NO_WEBHOOK = "thresholds need the stack's alerts.webhookUrl to send alerts to; set alerts first"


@dataclass
class View:
    """What the cross-reference checks look at; parts that failed type checks are left out."""

    routing: Routing | None
    pricing: Pricing
    orgs: list[tuple[int, Organization]]
    users: list[tuple[int, User]]
    allow_demo_keys: bool
    has_url: bool | None  # None: unknown, because those fields did not validate
    invalid_org_ids: frozenset[str] = frozenset()  # declared, but failed their own checks
    rate_tiers: frozenset[str] | None = None  # None: unknown (rateTiers did not validate)
    has_alerts: bool | None = None  # None: unknown (alerts did not validate)

    @classmethod
    def of(cls, config: StackConfig) -> View:
        return cls(
            routing=config.routing,
            pricing=config.pricing,
            orgs=list(enumerate(config.tenants.organizations)),
            users=list(enumerate(config.tenants.users)),
            allow_demo_keys=config.allowDemoKeys,
            has_url=config.customDomain is not None or config.workersDevSubdomain is not None,
            rate_tiers=frozenset(config.rateTiers),
            has_alerts=config.alerts is not None,
        )


def _valid(model: type[BaseModel], value: Any) -> Any:
    try:
        return model.model_validate(value)
    except ValidationError:
        return None


def _items(model: type[BaseModel], values: Any) -> list[tuple[int, Any]]:
    if not isinstance(values, list):
        return []
    return [(i, item) for i, raw in enumerate(values) if (item := _valid(model, raw)) is not None]


def salvage(public: dict[str, Any]) -> View:
    raw_tenants = public.get("tenants")
    tenants: dict[str, Any] = raw_tenants if isinstance(raw_tenants, dict) else {}
    return View(
        routing=_valid(Routing, public.get("routing")),
        pricing=_valid(Pricing, public.get("pricing", {})) or Pricing(),
        orgs=_items(Organization, tenants.get("organizations")),
        users=_items(User, tenants.get("users")),
        allow_demo_keys=public.get("allowDemoKeys") is True,
        has_url=None,
        invalid_org_ids=frozenset(
            str(raw.get("id"))
            for raw in (tenants.get("organizations") or [])
            if isinstance(raw, dict) and _valid(Organization, raw) is None
        ),
        rate_tiers=_tier_names(public.get("rateTiers", {})),
        has_alerts=_has_alerts(public.get("alerts")),
    )


def _has_alerts(raw: Any) -> bool | None:
    if raw is None:
        return False
    return None if _valid(Alerts, raw) is None else True


def _tier_names(raw: Any) -> frozenset[str] | None:
    if not isinstance(raw, dict) or any(_valid(RateTier, tier) is None for tier in raw.values()):
        return None
    return frozenset(raw)


def check_references(view: View, source: str) -> list[Problem]:
    problems: list[Problem] = []

    def add(path: str, message: str) -> None:
        problems.append(Problem(source, path, message))

    if view.has_alerts is False:
        for i, org in view.orgs:
            if org.alerts is not None:
                add(f"tenants.organizations[{i}].alerts", NO_WEBHOOK)
        for i, user in view.users:
            if user.alertThresholds is not None:
                add(f"tenants.users[{i}].alertThresholds", NO_WEBHOOK)
    if view.has_url is False:
        add(
            "workersDevSubdomain",
            "set the account's workers.dev subdomain or a customDomain, so the Worker has a URL",
        )
    catalog: set[str] | None = None
    offered: set[str] | None = None  # the catalog and the model patterns (what allow-lists name)
    if view.routing is not None:
        routing = view.routing
        catalog = set(routing.catalog)
        named = [
            *((f"routing.models[{i}]", m) for i, m in enumerate(routing.models)),
            *((f"routing.embeddingModels[{i}]", m) for i, m in enumerate(routing.embeddingModels)),
        ]
        if routing.defaultModel not in routing.models:
            add("routing.defaultModel", f"'{routing.defaultModel}' is not in routing.models")
        for alias, target in routing.aliases.items():
            if target not in catalog:
                add(f"routing.aliases.{alias}", f"'{target}' is not in {NOT_OFFERED}")
            if alias in catalog:
                add(f"routing.aliases.{alias}", "an alias must not shadow a model id")
        custom = {f"{CUSTOM_PREFIX}{slug}" for slug in routing.customProviders}
        providers = sorted({*NATIVE_PROVIDERS, *routing.openaiCompatible, *custom})
        for slug in routing.openaiCompatible:
            if slug in NATIVE_PROVIDERS:
                add(
                    f"routing.openaiCompatible.{slug}",
                    f"'{slug}' has a provider module of its own; only other providers are declared here",
                )
        seen: set[str] = set()
        for path, model in named:
            provider = model.split("/", 1)[0]
            if model in seen:
                add(path, f"'{model}' is listed twice")
            seen.add(model)
            if provider not in providers:
                add(
                    path,
                    f"'{model}': no provider '{provider}' (known: {', '.join(providers)}; declare an "
                    "OpenAI-compatible one in routing.openaiCompatible)",
                )
        _check_endpoints(routing, named, add)
        for slug in routing.byokAliases:
            if slug not in providers:
                add(
                    f"routing.byokAliases.{slug}",
                    f"no provider '{slug}' (known: {', '.join(providers)})",
                )
            elif slug == WORKERS_AI:
                add(
                    f"routing.byokAliases.{slug}",
                    "Workers AI runs through the AI binding: no stored key",
                )
        for i, pattern in enumerate(routing.modelPatterns):
            where = f"routing.modelPatterns[{i}]"
            slug = pattern.split("/", 1)[0]
            if slug not in providers:
                add(where, f"'{pattern}': no provider '{slug}' (known: {', '.join(providers)})")
            elif not pattern_entries(pattern):
                add(
                    where,
                    f"'{pattern}': the price catalog has no model under it that the gateway can bill",
                )
        offered = catalog | set(routing.modelPatterns)
        for i, model in enumerate(routing.embeddingModels):
            if model.split("/", 1)[0] not in EMBEDDING_PROVIDERS:
                add(
                    f"routing.embeddingModels[{i}]",
                    f"'{model}': embeddings are served for {' and '.join(EMBEDDING_PROVIDERS)} models",
                )
        for path, model in named:
            priced = model_price(view.pricing, model)
            if priced.price is None:
                add(
                    path,
                    f"'{model}' has no price: not in pricing.models, and {priced.missing} "
                    "(price it in pricing.models, or set pricing.default to charge unpriced "
                    "models explicitly)",
                )
        for model in view.pricing.models:
            if model not in catalog:
                add(f"pricing.models.{model}", f"'{model}' is not in {NOT_OFFERED}")
        names = catalog | set(routing.aliases)
        _check_fallbacks(routing.fallbacks, names, routing, "routing.fallbacks", add)
        for model in routing.retries:
            if model not in catalog:
                add(f"routing.retries.{model}", f"'{model}' is not in {NOT_OFFERED}")
        for model, stand_in in routing.workersAiStandIns.items():
            where = f"routing.workersAiStandIns.{model}"
            if model not in routing.models:
                add(where, f"'{model}' is not in routing.models")
            if not stand_in.startswith(f"{WORKERS_AI}/") or stand_in not in routing.models:
                add(where, f"'{stand_in}' must be a {WORKERS_AI} chat model of routing.models")

    org_ids: dict[str, int] = {}
    org_allowed: dict[str, set[str] | None] = {}
    for i, org in view.orgs:
        if org.id in org_ids:
            add(
                f"tenants.organizations[{i}].id",
                f"duplicate organization id '{org.id}' "
                f"(first used at tenants.organizations[{org_ids[org.id]}])",
            )
        org_ids.setdefault(org.id, i)
        _check_models(org.allowedModels, offered, f"tenants.organizations[{i}].allowedModels", add)
        for model in org.priceOverrides:
            if catalog is not None and model not in catalog:
                add(
                    f"tenants.organizations[{i}].priceOverrides.{model}",
                    f"'{model}' is not in {NOT_OFFERED}",
                )
        allowed = set(org.allowedModels) if org.allowedModels is not None else catalog
        if org.defaultModel and allowed is not None and org.defaultModel not in allowed:
            add(
                f"tenants.organizations[{i}].defaultModel",
                f"'{org.defaultModel}' is not among the models this organization may use",
            )
        if view.routing is not None and org.defaultModel in view.routing.embeddingModels:
            add(
                f"tenants.organizations[{i}].defaultModel",
                f"'{org.defaultModel}' is an embedding model; the default model answers chat",
            )
        org_where = f"tenants.organizations[{i}]"
        _check_aliases(org.aliases, catalog, f"{org_where}.aliases", add)
        if view.routing is not None and catalog is not None:
            names = catalog | set(view.routing.aliases) | set(org.aliases)
            _check_fallbacks(org.fallbacks, names, view.routing, f"{org_where}.fallbacks", add)
        _check_tier(org.rateTier, view.rate_tiers, f"{org_where}.rateTier", add)
        org_allowed.setdefault(org.id, allowed)  # a duplicate id is reported above, once

    user_ids: dict[str, int] = {}
    key_ids: dict[str, str] = {}
    hashes: dict[str, str] = {}
    for i, user in view.users:
        where = f"tenants.users[{i}]"
        if user.id in user_ids:
            add(
                f"{where}.id",
                f"duplicate user id '{user.id}' (first used at tenants.users[{user_ids[user.id]}])",
            )
        user_ids.setdefault(user.id, i)
        if user.org not in org_ids and user.org not in view.invalid_org_ids:
            known = ", ".join(sorted(org_ids)) or "none declared"
            add(f"{where}.org", f"unknown organization '{user.org}' (declared: {known})")
        _check_models(user.allowedModels, offered, f"{where}.allowedModels", add)
        _check_aliases(user.aliases, catalog, f"{where}.aliases", add)
        _check_tier(user.rateTier, view.rate_tiers, f"{where}.rateTier", add)
        if user.defaultModel is not None:
            allowed = org_allowed.get(user.org, catalog)
            if user.allowedModels is not None:
                allowed = (
                    set(user.allowedModels) & allowed
                    if allowed is not None
                    else set(user.allowedModels)
                )
            if allowed is not None and user.defaultModel not in allowed:
                add(
                    f"{where}.defaultModel",
                    f"'{user.defaultModel}' is not among the models this user may use",
                )
            if view.routing is not None and user.defaultModel in view.routing.embeddingModels:
                add(
                    f"{where}.defaultModel",
                    f"'{user.defaultModel}' is an embedding model; the default model answers chat",
                )
        for j, key in enumerate(user.keys):
            key_where = f"{where}.keys[{j}]"
            if key.id in key_ids:
                add(
                    f"{key_where}.id",
                    f"duplicate key id '{key.id}' (first used at {key_ids[key.id]})",
                )
            key_ids.setdefault(key.id, key_where)
            if key.sha256 in hashes:
                add(
                    f"{key_where}.sha256",
                    f"the same key hash is already used at {hashes[key.sha256]}",
                )
            hashes.setdefault(key.sha256, key_where)
            if key.monthlyLimitUsd is not None and key.monthlyLimitUsd > user.monthlyLimitUsd:
                add(
                    f"{key_where}.monthlyLimitUsd",
                    f"${key.monthlyLimitUsd} is above user '{user.id}''s monthly limit "
                    f"(${user.monthlyLimitUsd}); a key's limit is a share of its user's",
                )
            if not view.allow_demo_keys and is_demo_hash(key.id, key.sha256):
                add(
                    f"{key_where}.sha256",
                    "this is a public demo key (anyone can derive it); "
                    "only a stack with allowDemoKeys: true may carry it",
                )
    return problems


def _check_models(
    models: list[str] | None,
    catalog: set[str] | None,
    path: str,
    add: Callable[[str, str], None],
) -> None:
    for k, model in enumerate(models or []):
        if catalog is not None and model not in catalog:
            add(f"{path}[{k}]", f"'{model}' is not in {NOT_OFFERED}")


def _check_aliases(
    aliases: dict[str, str], catalog: set[str] | None, path: str, add: Callable[[str, str], None]
) -> None:
    """A tenant's aliases: each names a catalog model, none is a model id (it may shadow a
    stack alias: that is what a tenant alias is for)."""
    if catalog is None:
        return
    for alias, target in aliases.items():
        if target not in catalog:
            add(f"{path}.{alias}", f"'{target}' is not in {NOT_OFFERED}")
        if alias in catalog:
            add(f"{path}.{alias}", "an alias must not shadow a model id")


def _check_fallbacks(
    fallbacks: dict[str, list[str]],
    names: set[str],
    routing: Routing,
    path: str,
    add: Callable[[str, str], None],
) -> None:
    """Each chain starts from a model or alias this scope knows and lists catalog models of the
    same type (a chat request never falls back to an embedding model)."""
    embeddings = set(routing.embeddingModels)
    for name, chain in fallbacks.items():
        if name not in names:
            add(f"{path}.{name}", f"'{name}' is neither a model nor an alias")
        target = routing.aliases.get(name, name)
        for k, model in enumerate(chain):
            if model not in set(routing.catalog):
                add(f"{path}.{name}[{k}]", f"'{model}' is not in {NOT_OFFERED}")
            elif (model in embeddings) != (target in embeddings) and target in set(routing.catalog):
                kind = "an embedding" if target in embeddings else "a chat"
                add(f"{path}.{name}[{k}]", f"'{model}' is not {kind} model like '{target}'")


def _check_tier(
    tier: str | None, tiers: frozenset[str] | None, path: str, add: Callable[[str, str], None]
) -> None:
    if tier is not None and tiers is not None and tier not in tiers:
        known = ", ".join(sorted(tiers)) or "none declared"
        add(path, f"unknown rate tier '{tier}' (rateTiers: {known})")


def _check_endpoints(
    routing: Routing, named: list[tuple[str, str]], add: Callable[[str, str], None]
) -> None:
    """The providers whose path needs more than a key: their routing section, and for Azure a
    deployment per model (and no deployment of a model the stack does not offer)."""
    needs = {
        GOOGLE_VERTEX_AI: (
            routing.vertexAi,
            "routing.vertexAi (the Google Cloud project and region that serve them)",
        ),
        AZURE_OPENAI: (
            routing.azureOpenai,
            "routing.azureOpenai (the resource and the deployment of each)",
        ),
        AWS_BEDROCK: (routing.awsBedrock, "routing.awsBedrock (the AWS region that serves them)"),
    }
    for slug, (section, what) in needs.items():
        of_slug = [(p, m) for p, m in named if m.startswith(f"{slug}/")]
        if of_slug and section is None:
            add(of_slug[0][0], f"{slug} models need {what}")
    azure = routing.azureOpenai
    if azure is None:
        return
    offered = {m.split("/", 1)[1] for _, m in named if m.startswith(f"{AZURE_OPENAI}/")}
    for path, model in named:
        name = model.split("/", 1)[1]
        if model.startswith(f"{AZURE_OPENAI}/") and name not in azure.deployments:
            add(path, f"'{model}' has no deployment in routing.azureOpenai.deployments.{name}")
    for name in azure.deployments:
        if name not in offered:
            add(
                f"routing.azureOpenai.deployments.{name}",
                f"'{AZURE_OPENAI}/{name}' is not in routing.models or routing.embeddingModels",
            )
