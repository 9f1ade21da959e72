"""Tenant compiler: a validated stack config → the Pulumi-owned KV records.

Pure and deterministic: the same config gives the same records, byte for byte. The Pulumi
component and the local runtime both call `compile_records`, so what runs locally is what
deploys. The layout (provision/stack/contract.py, docs/decisions/0011) is a bounded set of shards:

- `keys:{hh}`: the hot path. Keys whose SHA-256 starts with `hh`, each with its principal,
  status, expiry and the TENANT-specific policy (user limit and models; the org's budget,
  failure mode, models, default model, cache TTL and price overrides, once per org). Nothing
  catalog-wide (models, aliases, prices, the stack default) is here: that is in the script,
  so a catalog change rewrites no record.
- `dir:{h}`: the admin directory. Whole organizations with their users and key ids, grouped
  by SHA-256(org id); a superset of what the key shards say, so its hash is the config
  version.
- `meta:tenants`: schema version and layout, present once deployed.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from provision.money import usd_to_micros
from provision.stack.config import Organization, SpendRate, StackConfig, User
from provision.stack.contract import (
    CLAMP_FLOOR_TOKENS,
    COLD_START_ALLOWANCE_MICROS,
    COLD_START_ISOLATES,
    DIRECTORY_SHARD_CHARS,
    DIRECTORY_SHARD_PREFIX,
    INDEX_KEY,
    KEY_SHARD_CHARS,
    KEY_SHARD_PREFIX,
    SCHEMA_VERSION,
    SPEND_RATE_WINDOWS,
    directory_shard,
    key_shard,
)
from provision.stack.prices import compile_price


@dataclass(frozen=True)
class TenantCounts:
    organizations: int
    users: int
    keys: int
    active_keys: int


def dumps(value: Any) -> str:
    """Canonical JSON: sorted keys, no spaces — stable bytes for stable diffs."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def compile_records(config: StackConfig) -> dict[str, str]:
    """Every managed KV record, keyed by its KV key, values as canonical JSON."""
    orgs = {org.id: org for org in config.tenants.organizations}
    key_shards: dict[str, dict[str, Any]] = defaultdict(lambda: {"orgs": {}, "keys": {}})
    directory: dict[str, dict[str, Any]] = defaultdict(dict)
    for org in config.tenants.organizations:
        directory[directory_shard(org.id)][org.id] = {**_org_entry(org), "users": {}}
    for user in config.tenants.users:
        org = orgs[user.org]
        directory[directory_shard(org.id)][org.id]["users"][user.id] = _user_entry(user)
        for key in user.keys:
            shard = key_shards[key_shard(key.sha256)]
            shard["orgs"][org.id] = org_policy(org)
            shard["keys"][key.sha256] = {
                "keyId": key.id,
                "userId": user.id,
                "orgId": org.id,
                "status": _key_status(key.status, user, org),
                "expiresAt": key.expires_at(),
                "monthlyLimitMicros": usd_to_micros(user.monthlyLimitUsd),
                "allowedModels": _model_set(user.allowedModels),
                **user_routing(user),
                # set only when declared, so a stack that uses none rewrites no record
                **_present(
                    keyLimitMicros=_micros_or_none(key.monthlyLimitUsd),
                    spendRates=spend_rates(user, "user") + spend_rates(key, "key"),
                ),
            }
    records = {name: dumps({"v": SCHEMA_VERSION, **shard}) for name, shard in key_shards.items()}
    for name, entries in directory.items():
        records[name] = dumps({"v": SCHEMA_VERSION, "orgs": entries})
    records[INDEX_KEY] = dumps(_index_record())
    return dict(sorted(records.items()))


def org_policy(org: Organization) -> dict[str, Any]:
    """The org's part of every key's policy; the Worker resolves it against the catalog."""
    return {
        "monthlyBudgetMicros": usd_to_micros(org.monthlyBudgetUsd),
        "failureMode": org.failureMode,
        "fallbackDailyLimitMicros": usd_to_micros(org.fallbackDailyLimitUsd),
        "allowedModels": _model_set(org.allowedModels),
        "defaultModel": org.defaultModel,
        "cacheTtl": org.cacheTtl,
        "priceOverrides": {
            model: compile_price(price) for model, price in org.priceOverrides.items()
        },
        # set only when declared, so a stack that uses none rewrites no record
        **_present(
            aliases=org.aliases,
            fallbacks=org.fallbacks,
            rateTier=org.rateTier,
            clientCacheControl=org.clientCacheControl or None,
            corsOrigins=org.corsOrigins,
            alerts=org.alerts.model_dump(exclude_none=True) if org.alerts else None,
            logPrompts=org.logPrompts or None,
            allowUnpriced=org.allowUnpriced or None,
            shareStoredResponses=org.shareStoredResponses or None,
            shareOrgUsage=org.shareOrgUsage or None,
            clampOutput=None if org.clampOutput else False,
            clampFloorTokens=None
            if org.clampFloorTokens == CLAMP_FLOOR_TOKENS
            else org.clampFloorTokens,
            coldStart=cold_start(org),
        ),
    }


def cold_start(org: Organization) -> dict[str, int] | bool | None:
    """An org's cold-start pools where they differ from the contract's defaults (False: off)."""
    if org.coldStart is False:
        return False
    declared = {
        "isolates": org.coldStart.isolates,
        "allowanceMicros": usd_to_micros(org.coldStart.allowanceUsd),
    }
    defaults = {"isolates": COLD_START_ISOLATES, "allowanceMicros": COLD_START_ALLOWANCE_MICROS}
    return {k: v for k, v in declared.items() if v != defaults[k]} or None


def user_routing(user: User) -> dict[str, Any]:
    """A user's own routing (before the org's and the stack's), where declared."""
    return _present(
        defaultModel=user.defaultModel,
        aliases=user.aliases,
        rateTier=user.rateTier,
        alertThresholds=user.alertThresholds,
    )


def spend_rates(declared: SpendRate, scope: str) -> list[dict[str, Any]]:
    """The spend-rate breakers declared on a user, a key or a rate tier, for `scope`'s windows."""
    amounts = {"minute": declared.spendPerMinuteUsd, "hour": declared.spendPerHourUsd}
    return [
        {"scope": scope, "spanMs": SPEND_RATE_WINDOWS[window], "limitMicros": usd_to_micros(usd)}
        for window, usd in amounts.items()
        if usd is not None
    ]


def _micros_or_none(usd: Decimal | None) -> int | None:
    return None if usd is None else usd_to_micros(usd)


def _present(**fields: Any) -> dict[str, Any]:
    return {name: value for name, value in fields.items() if value not in (None, {}, [])}


# What providers bill beyond tokens, as documented (decision 0026): Anthropic's and OpenAI's web
# search $10 per 1,000 calls; Anthropic's web fetch no more than its tokens; OpenAI's file search
# $2.50 per 1,000 calls and a code interpreter container $0.03. Each with the calls a request's
# worst case counts when it sets no bound, and the input tokens a call may add (what it read).
# A stack's pricing.tools overrides.
DEFAULT_TOOL_PRICES: dict[str, tuple[str, int, int]] = {
    "web_search": ("0.01", 10, 20_000),
    "web_fetch": ("0", 10, 50_000),
    "file_search": ("0.0025", 10, 20_000),
    "code_interpreter": ("0.03", 4, 10_000),
}
# Service tiers as a multiple of the token prices (OpenAI's flex half, priority double); the
# tiers a provider reports when none was asked for (default, standard) and asks for (auto) at 1.
DEFAULT_SERVICE_TIERS: dict[str, str] = {
    "default": "1",
    "standard": "1",
    "auto": "1",
    "flex": "0.5",
    "priority": "2",
}


def tool_prices(config: StackConfig) -> dict[str, dict[str, int]]:
    """Every priced tool: µUSD per call, the calls a request's worst case counts, the input
    tokens each may add."""
    table = {
        name: {"perCall": usd_to_micros(Decimal(usd)), "maxCalls": calls, "inputTokens": tokens}
        for name, (usd, calls, tokens) in DEFAULT_TOOL_PRICES.items()
    }
    for name, price in config.pricing.tools.items():
        table[name] = {
            "perCall": usd_to_micros(price.perCallUsd),
            "maxCalls": price.maxCallsPerRequest,
            "inputTokens": price.inputTokensPerCall,
        }
    return table


def service_tiers(config: StackConfig) -> dict[str, int]:
    """Every priced service tier: its multiple of the token prices, in thousandths."""
    tiers = {name: Decimal(m) for name, m in DEFAULT_SERVICE_TIERS.items()}
    tiers.update(config.pricing.serviceTiers)
    return {name: int(m * 1000) for name, m in tiers.items()}


def tenant_counts(config: StackConfig) -> TenantCounts:
    orgs = {org.id: org for org in config.tenants.organizations}
    keys = [(u, k) for u in config.tenants.users for k in u.keys]
    return TenantCounts(
        organizations=len(config.tenants.organizations),
        users=len(config.tenants.users),
        keys=len(keys),
        # keys that authenticate: not revoked, user and org active (expiry is checked per request)
        active_keys=sum(1 for u, k in keys if _key_status(k.status, u, orgs[u.org]) == "active"),
    )


def config_version(records: dict[str, str]) -> str:
    """Hash of the directory shards (which say everything the key shards say).

    The admin API computes the same from what KV holds, so `configVersion` tells which
    tenant configuration an edge location sees.
    """
    digest = hashlib.sha256()
    for key in sorted(k for k in records if k.startswith(DIRECTORY_SHARD_PREFIX)):
        digest.update(key.encode() + b"\0" + records[key].encode() + b"\0")
    return digest.hexdigest()[:16]


def _org_entry(org: Organization) -> dict[str, Any]:
    return {"id": org.id, "name": org.name, "status": org.status, **org_policy(org)}


def _user_entry(user: User) -> dict[str, Any]:
    return {
        "id": user.id,
        "orgId": user.org,
        "email": user.email,
        "monthlyLimitMicros": usd_to_micros(user.monthlyLimitUsd),
        "status": user.status,
        "allowedModels": _model_set(user.allowedModels),
        **user_routing(user),
        # key id → what the admin API needs to revoke it at once and to count it
        "keys": {
            k.id: {
                "sha256": k.sha256,
                "status": k.status,
                "expiresAt": k.expires_at(),
                **_present(monthlyLimitMicros=_micros_or_none(k.monthlyLimitUsd)),
            }
            for k in user.keys
        },
    }


def _model_set(models: list[str] | None) -> list[str] | None:
    """An allow-list as a set (sorted): its YAML order means nothing, so it changes no byte."""
    return None if models is None else sorted(set(models))


def _key_status(key_status: str, user: User, org: Organization) -> str:
    if key_status != "active":
        return key_status
    if org.status != "active" or user.status != "active":
        return "suspended"
    return "active"


def _index_record() -> dict[str, Any]:
    return {
        "v": SCHEMA_VERSION,
        "layout": {
            "keys": {"prefix": KEY_SHARD_PREFIX, "chars": KEY_SHARD_CHARS},
            "directory": {"prefix": DIRECTORY_SHARD_PREFIX, "chars": DIRECTORY_SHARD_CHARS},
        },
    }
