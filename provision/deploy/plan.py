"""The plan of a stack change (`provision plan`, provision/cli/plan.py): the Cloudflare resources
it creates, updates, replaces or deletes, and the API calls `pulumi up` will make for it,
against the API's 5-minute budget.

Both versions are turned into the resources the Pulumi component declares
(provision/deploy/resources.py) and diffed as the engine would: an input that the provider cannot
update in place replaces the resource. Secret values are not readable here, but their
ciphertext in the stack file is: a changed ciphertext updates the script.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from provision.deploy.bindings import catalog_providers, script_bindings
from provision.deploy.cloudflare_api import (
    OPERATIONS,
    READS_PER_RUN,
    WINDOW_CALLS,
    WINDOW_SECONDS,
    calls_for,
)
from provision.deploy.resources import SCRIPT, Declared, declared_resources
from provision.stack.config import SECRET_KEYS, StackConfig

ACTIONS = ("create", "update", "replace", "delete")
SYMBOLS = {"create": "+", "update": "~", "replace": "+-", "delete": "-"}


@dataclass(frozen=True)
class Change:
    kind: str
    name: str
    action: str  # create | update | replace | delete
    fields: tuple[str, ...] = ()  # the inputs that differ (update, replace)

    @property
    def calls(self) -> int:
        return calls_for(self.kind, self.action)


@dataclass(frozen=True)
class Plan:
    changes: list[Change]
    declared: int  # resources after the change
    refresh_calls: int  # what `pulumi up --refresh` (or `pulumi refresh`) adds

    def count(self, action: str) -> int:
        return sum(1 for c in self.changes if c.action == action)

    @property
    def resource_calls(self) -> int:
        return sum(c.calls for c in self.changes)

    @property
    def calls(self) -> int:
        """API calls of `pulumi up`: every resource action plus the program's own reads."""
        return self.resource_calls + READS_PER_RUN

    @property
    def over_budget(self) -> bool:
        return self.calls > WINDOW_CALLS


def diff_resources(before: dict[str, Declared], after: dict[str, Declared]) -> list[Change]:
    """What the engine does to go from `before` to `after` (both by logical name)."""
    changes = []
    for name, resource in after.items():
        old = before.get(name)
        if old is None:
            changes.append(Change(resource.kind, name, "create"))
            continue
        fields = tuple(
            sorted(
                k
                for k in old.inputs.keys() | resource.inputs.keys()
                if old.inputs.get(k) != resource.inputs.get(k)
            )
        )
        if fields:
            replaces = set(fields) & OPERATIONS[resource.kind].replace_on
            changes.append(Change(resource.kind, name, "replace" if replaces else "update", fields))
    changes += [Change(r.kind, name, "delete") for name, r in before.items() if name not in after]
    return changes


def refresh_calls(resources: dict[str, Declared]) -> int:
    return sum(OPERATIONS[r.kind].refresh for r in resources.values())


NAMESPACE_PLACEHOLDER = "<the namespace id>"


def _fingerprint(value: Any) -> str:
    blob = json.dumps(value, sort_keys=True, default=str)
    return "<secret " + hashlib.sha256(blob.encode()).hexdigest()[:12] + ">"


def secret_fingerprints(settings: dict[str, Any]) -> dict[str, str]:
    """A short hash of each secret's ciphertext as the stack file holds it (never its value):
    `adminApiKey`, `aiGatewayToken`, and `providerApiKeys.<provider>` for each provider key."""
    out = {}
    for key in SECRET_KEYS:
        value = settings.get(key)
        if value is None:
            continue
        if key == "providerApiKeys" and isinstance(value, dict) and "secure" not in value:
            for provider, ciphertext in value.items():
                out[f"{key}.{provider}"] = _fingerprint(ciphertext)
        else:
            out[key] = _fingerprint(value)
    return out


def stack_resources(config: StackConfig, secrets: dict[str, str]) -> dict[str, Declared]:
    """The component's resources; the script's bindings as it will get them, with each secret's
    ciphertext fingerprint where its value goes (so a changed secret is a script update)."""
    resources = declared_resources(config)
    provider_keys = {
        name.removeprefix("providerApiKeys."): fingerprint
        for name, fingerprint in secrets.items()
        if name.startswith("providerApiKeys.")
    }
    providers = set(catalog_providers(config))
    bindings = script_bindings(
        config,
        NAMESPACE_PLACEHOLDER,
        secrets.get("adminApiKey", ""),
        secrets.get("aiGatewayToken", ""),
        {p: key for p, key in provider_keys.items() if p in providers},
        secrets.get("alertWebhookSecret", ""),
    )
    for name, resource in resources.items():
        if resource.kind == SCRIPT:
            resources[name] = Declared(SCRIPT, name, {**resource.inputs, "bindings": bindings})
    return resources


def make_plan(before: dict[str, Declared] | None, after: dict[str, Declared]) -> Plan:
    changes = diff_resources(before or {}, after)
    return Plan(changes=changes, declared=len(after), refresh_calls=refresh_calls(after))


def plan_versions(versions: Any) -> Plan:
    """The plan between the two versions `provision.stack.versions.load_versions` read."""
    before = None
    if versions.before is not None:
        before = stack_resources(versions.before, secret_fingerprints(versions.before_settings))
    after = stack_resources(versions.after, secret_fingerprints(versions.after_settings))
    return make_plan(before, after)


# ---------------------------------------------------------------------------- output


def summary(plan: Plan) -> str:
    """One line for `provision diff` and CI comments."""
    counts = ", ".join(f"{plan.count(a)} {a}d" for a in ("create", "update", "delete"))
    replaced = f", {plan.count('replace')} replaced" if plan.count("replace") else ""
    return (
        f"pulumi up: {plan.calls:,} Cloudflare API call{'s' if plan.calls != 1 else ''} of "
        f"{WINDOW_CALLS:,} per "
        f"{WINDOW_SECONDS // 60} minutes ({counts}{replaced}; {plan.declared} resources)"
    )


def budget_warning(plan: Plan) -> str | None:
    if plan.over_budget:
        return (
            f"warning: this change makes {plan.calls:,} Cloudflare API calls, more than the "
            f"{WINDOW_CALLS:,} the API allows per {WINDOW_SECONDS // 60} minutes; past them it "
            "blocks every call for 5 minutes and `pulumi up` fails half-way. Split the change "
            "into smaller ones deployed one after another."
        )
    if plan.calls + plan.refresh_calls > WINDOW_CALLS:
        return (
            f"warning: with --refresh this `pulumi up` would make "
            f"{plan.calls + plan.refresh_calls:,} calls, over the {WINDOW_CALLS:,} per "
            f"{WINDOW_SECONDS // 60} minutes: run `pulumi refresh` on its own first."
        )
    return None


def render_text(plan: Plan) -> str:
    lines = [summary(plan)]
    for change in plan.changes:
        fields = f" ({', '.join(change.fields)})" if change.fields else ""
        calls = f"{change.calls} call{'s' if change.calls != 1 else ''}"
        lines.append(f"  {SYMBOLS[change.action]:<2} {change.kind} {change.name}{fields}: {calls}")
    lines.append(
        f"  {READS_PER_RUN} read: the live Durable Object migration tag (getWorkersScripts); the "
        "script carries a migration only if the live script lacks a declared step"
    )
    lines.append(f"with --refresh: +{plan.refresh_calls:,} calls (reads of every resource)")
    return "\n".join(lines)


def render_json(plan: Plan) -> str:
    return json.dumps(
        {
            "calls": plan.calls,
            "resourceCalls": plan.resource_calls,
            "readsPerRun": READS_PER_RUN,
            "refreshCalls": plan.refresh_calls,
            "windowCalls": WINDOW_CALLS,
            "windowSeconds": WINDOW_SECONDS,
            "overBudget": plan.over_budget,
            "declared": plan.declared,
            "counts": {action: plan.count(action) for action in ACTIONS},
            "changes": [
                {"kind": c.kind, "name": c.name, "action": c.action, "fields": list(c.fields)}
                for c in plan.changes
            ],
        },
        indent=2,
    )
