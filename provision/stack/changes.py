"""What a stack change does, in words a reviewer reads in a pull request: organizations, users
and keys added, removed or changed, how limits move, and which KV records `pulumi up` will
write or delete (two validated configs compared)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from provision.money import format_usd, usd_to_micros
from provision.stack.compiler import compile_records
from provision.stack.config import StackConfig


@dataclass
class Changes:
    """Human sentences per section, plus the KV record keys written and deleted."""

    organizations: list[str] = field(default_factory=list)
    users: list[str] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)
    settings: list[str] = field(default_factory=list)
    kv_written: list[str] = field(default_factory=list)
    kv_deleted: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (
            self.organizations
            or self.users
            or self.keys
            or self.settings
            or self.kv_written
            or self.kv_deleted
        )


def _usd(value: Any) -> str:
    return format_usd(usd_to_micros(value))


def _models(value: list[str] | None) -> str:
    return "all catalog models" if value is None else (", ".join(value) or "none")


# field → (what a reviewer reads, how a value is shown)
FieldLabels = dict[str, tuple[str, Callable[[Any], str]]]

ORG_FIELDS: FieldLabels = {
    "name": ("name", str),
    "monthlyBudgetUsd": ("monthly budget", _usd),
    "failureMode": ("failure mode", str),
    "fallbackDailyLimitUsd": ("fallback daily limit", _usd),
    "status": ("status", str),
    "allowedModels": ("allowed models", _models),
    "defaultModel": ("default model", lambda v: v or "the gateway default"),
    "cacheTtl": ("cache TTL", lambda v: f"{v} s" if v else "off"),
    "priceOverrides": ("price overrides", lambda v: ", ".join(sorted(v)) or "none"),
    "clampOutput": ("clamped output", lambda v: "on" if v else "off"),
    "clampFloorTokens": ("clamp floor", lambda v: f"{v} output tokens"),
    "coldStart": (
        "cold-start pools",
        lambda v: "off" if v is False else f"{v.isolates} isolates × {_usd(v.allowanceUsd)}",
    ),
}


def _rate(value: Any) -> str:
    return "none" if value is None else _usd(value)


# a spend-rate breaker, on a user or a key
RATE_FIELDS: FieldLabels = {
    "spendPerMinuteUsd": ("spend per minute", _rate),
    "spendPerHourUsd": ("spend per hour", _rate),
}
USER_FIELDS: FieldLabels = {
    "email": ("email", str),
    "org": ("organization", str),
    "monthlyLimitUsd": ("monthly limit", _usd),
    "status": ("status", str),
    "allowedModels": ("allowed models", _models),
    **RATE_FIELDS,
}


def _field_changes(kind: str, ident: str, old: Any, new: Any, fields: FieldLabels) -> list[str]:
    out = []
    for name, (label, show) in fields.items():
        before, after = getattr(old, name), getattr(new, name)
        if before != after:
            out.append(f"{kind} {ident}: {label} {show(before)} → {show(after)}")
    return out


def _key_limit(usd: Any) -> str:
    return "the user's" if usd is None else _usd(usd)


def _expiry(key: Any) -> str:
    return key.expires.isoformat() if key.expires else "never"


def describe_changes(before: StackConfig | None, after: StackConfig) -> Changes:
    changes = Changes()
    old_orgs = {o.id: o for o in before.tenants.organizations} if before else {}
    new_orgs = {o.id: o for o in after.tenants.organizations}
    for org_id, org in new_orgs.items():
        if org_id not in old_orgs:
            changes.organizations.append(
                f"+ org {org_id} ({org.name}): monthly budget {_usd(org.monthlyBudgetUsd)}, {org.failureMode}"
            )
        else:
            changes.organizations += _field_changes(
                "org", org_id, old_orgs[org_id], org, ORG_FIELDS
            )
    for org_id, org in old_orgs.items():
        if org_id not in new_orgs:
            changes.organizations.append(f"- org {org_id} ({org.name}) removed")

    old_users = {u.id: u for u in before.tenants.users} if before else {}
    new_users = {u.id: u for u in after.tenants.users}
    for user_id, user in new_users.items():
        if user_id not in old_users:
            changes.users.append(
                f"+ user {user_id} <{user.email}> in org {user.org}: monthly limit {_usd(user.monthlyLimitUsd)}"
            )
        else:
            changes.users += _field_changes("user", user_id, old_users[user_id], user, USER_FIELDS)
    for user_id, user in old_users.items():
        if user_id not in new_users:
            changes.users.append(
                f"- user {user_id} <{user.email}> removed (with {len(user.keys)} key(s))"
            )

    old_keys = {k.id: (u.id, k) for u in old_users.values() for k in u.keys}
    new_keys = {k.id: (u.id, k) for u in new_users.values() for k in u.keys}
    for key_id, (user_id, key) in new_keys.items():
        if key_id not in old_keys:
            expiry = f", expires {_expiry(key)}" if key.expires else ""
            limit = (
                f", monthly limit {_usd(key.monthlyLimitUsd)}"
                if key.monthlyLimitUsd is not None
                else ""
            )
            changes.keys.append(
                f"+ key {key_id} for user {user_id} ({key.name or 'unnamed'}){expiry}{limit}"
            )
            continue
        _, old = old_keys[key_id]
        if old.status != key.status:
            changes.keys.append(f"key {key_id} of user {user_id}: {old.status} → {key.status}")
        if old.expires != key.expires:
            changes.keys.append(
                f"key {key_id} of user {user_id}: expires {_expiry(old)} → {_expiry(key)}"
            )
        if old.sha256 != key.sha256:
            changes.keys.append(f"key {key_id} of user {user_id}: hash replaced")
        if old.monthlyLimitUsd != key.monthlyLimitUsd:
            changes.keys.append(
                f"key {key_id} of user {user_id}: monthly limit "
                f"{_key_limit(old.monthlyLimitUsd)} → {_key_limit(key.monthlyLimitUsd)}"
            )
        changes.keys += _field_changes("key", f"{key_id} of user {user_id}", old, key, RATE_FIELDS)
    for key_id, (user_id, _) in old_keys.items():
        if key_id not in new_keys:
            changes.keys.append(f"- key {key_id} of user {user_id} removed")

    if before is not None:
        for name in ("routing", "pricing", "aiGateway", "gatewayId", "workerName", "customDomain"):
            if getattr(before, name) != getattr(after, name):
                changes.settings.append(
                    f"{name} changed (Worker script or gateway settings are updated)"
                )

    old_records = compile_records(before) if before else {}
    new_records = compile_records(after)
    changes.kv_written = sorted(k for k, v in new_records.items() if old_records.get(k) != v)
    changes.kv_deleted = sorted(k for k in old_records if k not in new_records)
    return changes


SECTIONS = (
    ("Organizations", "organizations"),
    ("Users", "users"),
    ("Keys", "keys"),
    ("Settings", "settings"),
)


def render_text(changes: Changes, deploy: str | None = None) -> str:
    """The tenant changes, the KV records, and (given) the one-line deploy cost."""
    if changes.empty:
        return "No changes."
    lines = []
    for title, name in SECTIONS:
        items = getattr(changes, name)
        if items:
            lines.append(f"{title}:")
            lines += [f"  {item}" for item in items]
    lines.append(
        f"KV records: {len(changes.kv_written)} written, {len(changes.kv_deleted)} deleted"
    )
    lines += [f"  write  {k}" for k in changes.kv_written]
    lines += [f"  delete {k}" for k in changes.kv_deleted]
    if deploy:
        lines.append(f"{deploy} (details: provision plan)")
    return "\n".join(lines)


MARKDOWN_MARKER = "<!-- provision-diff -->"  # lets CI find and update its own PR comment


def render_markdown(changes: Changes, title: str, deploy: str | None = None) -> str:
    lines = [MARKDOWN_MARKER, f"### {title}", ""]
    if changes.empty:
        return "\n".join([*lines, "No tenant or configuration changes."])
    if deploy:
        lines += [f"**Deploy:** {deploy}", ""]
    for heading, name in SECTIONS:
        items = getattr(changes, name)
        if items:
            lines += [f"**{heading}**", ""] + [f"- {item}" for item in items] + [""]
    lines += [
        f"<details><summary>KV records: {len(changes.kv_written)} written, "
        f"{len(changes.kv_deleted)} deleted</summary>",
        "",
        "| action | key |",
        "|---|---|",
        *[f"| write | `{k}` |" for k in changes.kv_written],
        *[f"| delete | `{k}` |" for k in changes.kv_deleted],
        "",
        "</details>",
    ]
    return "\n".join(lines)
