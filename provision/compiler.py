"""Tenant compiler: a validated stack config → the Pulumi-owned KV records.

Pure and deterministic: the same config gives the same records, byte for byte. The Pulumi
component and the local runtime both call `compile_records`, so what runs locally is what
deploys. Record layout: see README "Tenants" and docs/decisions.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from provision.config import Organization, Price, StackConfig, User
from provision.money import usd_to_micros

SCHEMA_VERSION = 1
# Pulumi owns every key with these prefixes; the Worker owns `revoked:` and the ledger.
MANAGED_PREFIXES = ("apikey:", "user:", "org:", "meta:")


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
    records: dict[str, str] = {}
    for org in config.tenants.organizations:
        records[f"org:{org.id}:config"] = dumps(_org_record(org))
    for user in config.tenants.users:
        org = orgs[user.org]
        records[f"user:{user.id}:config"] = dumps(_user_record(user))
        policy = effective_policy(config, org, user)
        for key in user.keys:
            records[f"apikey:{key.sha256}"] = dumps(
                {
                    "v": SCHEMA_VERSION,
                    "keyId": key.id,
                    "userId": user.id,
                    "orgId": org.id,
                    "status": _key_status(key.status, user, org),
                    "expiresAt": key.expires_at(),
                    "policy": policy,
                }
            )
    records["meta:tenants"] = dumps(_meta_record(config, records))
    return dict(sorted(records.items()))


def effective_policy(config: StackConfig, org: Organization, user: User) -> dict[str, Any]:
    """Everything the hot path needs about a key's principal, so it makes ONE config read."""
    allowed = allowed_models(config, org, user)
    default = org.defaultModel or config.routing.defaultModel
    return {
        "userLimitMicros": usd_to_micros(user.monthlyLimitUsd),
        "orgBudgetMicros": usd_to_micros(org.monthlyBudgetUsd),
        "failureMode": org.failureMode,
        "fallbackDailyLimitMicros": usd_to_micros(org.fallbackDailyLimitUsd),
        "allowedModels": allowed,
        "defaultModel": default if default in allowed else (allowed[0] if allowed else None),
        "cacheTtl": org.cacheTtl,
        "priceOverrides": {
            model: compile_price(price)
            for model, price in org.priceOverrides.items()
            if model in allowed
        },
    }


def compile_price(price: Price) -> dict[str, int]:
    """µUSD per million tokens, integers (so cost = tokens × price / 10^6, one rounding)."""
    cached = (
        price.cachedInputPerMTok if price.cachedInputPerMTok is not None else price.inputPerMTok
    )
    return {
        "in": usd_to_micros(price.inputPerMTok),
        "out": usd_to_micros(price.outputPerMTok),
        "cachedIn": usd_to_micros(cached),
    }


def price_table(config: StackConfig) -> dict[str, dict[str, int]]:
    """Every catalog model's price (the explicit default fills the gaps)."""
    table = {}
    for model in config.routing.models:
        price = config.pricing.models.get(model, config.pricing.default)
        assert price is not None, "config validation guarantees a price"
        table[model] = compile_price(price)
    return table


def allowed_models(config: StackConfig, org: Organization, user: User) -> list[str]:
    """Catalog ∩ org allow-list ∩ user allow-list, in catalog order."""
    allowed = list(config.routing.models)
    for narrowing in (org.allowedModels, user.allowedModels):
        if narrowing is not None:
            allowed = [m for m in allowed if m in narrowing]
    return allowed


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


def _org_record(org: Organization) -> dict[str, Any]:
    return {
        "v": SCHEMA_VERSION,
        "id": org.id,
        "name": org.name,
        "monthlyBudgetMicros": usd_to_micros(org.monthlyBudgetUsd),
        "failureMode": org.failureMode,
        "fallbackDailyLimitMicros": usd_to_micros(org.fallbackDailyLimitUsd),
        "status": org.status,
    }


def _user_record(user: User) -> dict[str, Any]:
    return {
        "v": SCHEMA_VERSION,
        "id": user.id,
        "orgId": user.org,
        "email": user.email,
        "monthlyLimitMicros": usd_to_micros(user.monthlyLimitUsd),
        "status": user.status,
        "keyIds": sorted(k.id for k in user.keys),
    }


def _key_status(key_status: str, user: User, org: Organization) -> str:
    if key_status != "active":
        return key_status
    if org.status != "active" or user.status != "active":
        return "suspended"
    return "active"


def _meta_record(config: StackConfig, records: dict[str, str]) -> dict[str, Any]:
    counts = tenant_counts(config)
    digest = hashlib.sha256()
    for key in sorted(records):
        digest.update(key.encode() + b"\0" + records[key].encode() + b"\0")
    return {
        "v": SCHEMA_VERSION,
        "configVersion": digest.hexdigest()[:16],
        "orgs": sorted(o.id for o in config.tenants.organizations),
        "users": {u.id: u.org for u in config.tenants.users},
        "keyCount": counts.keys,
        "activeKeyCount": counts.active_keys,
        # key id → hash, so the admin API can revoke a key by id at once (revoked:{hash})
        "keys": {
            k.id: {"sha256": k.sha256, "userId": u.id} for u in config.tenants.users for k in u.keys
        },
    }
