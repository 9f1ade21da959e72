"""A local fake of the Cloudflare API as `pulumi up` meets it, enforcing the documented rules.

Mocks accept anything; this does not. It holds live state (scripts with their Durable Object
migration tag and classes, KV values) and refuses what the API refuses (shared/cf-contract-2.md
§6 and §7, the Cloudflare API limits page):
- a script upload whose migrations do not start at the script's current tag: HTTP 412,
  code 10079; a step creating a class that exists: 10074; a Durable Object binding to a class
  of its own that no migration created: 10061;
- KV keys over 512 bytes, values over 25 MiB, metadata over 1,024 bytes: 413/400;
- more than 1,200 calls in 5 minutes: HTTP 429, and every call for the next 5 minutes too.

`apply(before, after)` performs one `pulumi up` the way pulumi-cloudflare does, creates and
updates in dependency order, deletes last, and counts every request. What the provider sends
per operation and which inputs replace a resource are written out here from the provider's
source, NOT taken from provision/deploy/cloudflare_api.py: tests compare the two.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from provision.deploy.cloudflare_api import WINDOW_CALLS, WINDOW_SECONDS

# Requests the provider makes per (kind, action), terraform-provider-cloudflare v5.22
# internal/services/<resource>/resource.go (WorkersKv and WorkersScript are performed below).
REQUESTS: dict[tuple[str, str], list[str]] = {
    ("AiGateway", "create"): ["POST ai-gateway/gateways"],
    ("AiGateway", "update"): ["PUT ai-gateway/gateways/{id}"],
    ("AiGateway", "delete"): ["DELETE ai-gateway/gateways/{id}"],
    ("WorkersKvNamespace", "create"): ["POST storage/kv/namespaces"],
    ("WorkersKvNamespace", "update"): ["PUT storage/kv/namespaces/{id}"],
    ("WorkersKvNamespace", "delete"): ["DELETE storage/kv/namespaces/{id}"],
    ("WorkersCronTrigger", "create"): ["PUT workers/scripts/{name}/schedules"],
    ("WorkersCronTrigger", "update"): ["PUT workers/scripts/{name}/schedules"],
    ("WorkersCronTrigger", "delete"): [],  # Delete is empty: the schedules go with the script
    ("WorkersScriptSubdomain", "create"): ["POST workers/scripts/{name}/subdomain"],
    ("WorkersScriptSubdomain", "update"): ["POST workers/scripts/{name}/subdomain"],
    ("WorkersScriptSubdomain", "delete"): ["DELETE workers/scripts/{name}/subdomain"],
    ("WorkersCustomDomain", "create"): ["PUT workers/domains"],
    ("WorkersCustomDomain", "update"): [],  # Update is empty ("not supported")
    ("WorkersCustomDomain", "delete"): ["DELETE workers/domains/{id}"],
}
# Inputs whose change makes the engine replace: schema.go RequiresReplace, plus the component's
# replace_on_changes (the custom domain's zone and Worker).
REPLACED_BY: dict[str, set[str]] = {
    "AiGateway": {"account_id", "ai_gateway_id"},
    "WorkersKvNamespace": {"account_id"},
    "WorkersKv": {"account_id", "namespace_id", "key_name"},
    "WorkersScript": {"account_id", "script_name"},
    "WorkersCronTrigger": {"account_id", "script_name"},
    "WorkersScriptSubdomain": {"account_id", "script_name"},
    "WorkersCustomDomain": {"account_id", "hostname", "service", "zone_id"},
}

MAX_KEY_BYTES = 512
MAX_VALUE_BYTES = 25 * 1024 * 1024
MAX_METADATA_BYTES = 1024
# Creates and updates follow dependencies: gateway and namespace, records, script, its parts.
ORDER = [
    "AiGateway",
    "WorkersKvNamespace",
    "WorkersKv",
    "WorkersScript",
    "WorkersCronTrigger",
    "WorkersScriptSubdomain",
    "WorkersCustomDomain",
]


class ApiError(Exception):
    def __init__(self, status: int, code: int, message: str):
        super().__init__(f"HTTP {status}: {message} [code: {code}]")
        self.status, self.code, self.message = status, code, message


@dataclass
class Script:
    migration_tag: str | None = None
    classes: set[str] = field(default_factory=set)
    uploads: int = 0


@dataclass
class Resource:
    """A resource as the engine records it: kind and inputs (snake_case)."""

    kind: str
    inputs: dict[str, Any]


def snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def snake_keys(value: Any) -> Any:
    """Mock inputs arrive with wire names (camelCase); the provider's schema is snake_case."""
    if isinstance(value, dict):
        return {snake(k): snake_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [snake_keys(v) for v in value]
    return value


class FakeCloudflare:
    """One account's live state, a clock in seconds, and the requests made so far."""

    def __init__(self) -> None:
        self.now = 0.0
        self.scripts: dict[str, Script] = {}
        self.kv: dict[str, str] = {}
        self.requests: list[tuple[float, str]] = []
        self.blocked_until = -1.0

    # ---------------------------------------------------------------- the rate limit

    def _request(self, what: str) -> None:
        if self.now < self.blocked_until:
            raise ApiError(429, 10000, "Rate limited; all calls are blocked for 5 minutes")
        recent = [t for t, _ in self.requests if t > self.now - WINDOW_SECONDS]
        if len(recent) >= WINDOW_CALLS:
            self.blocked_until = self.now + WINDOW_SECONDS
            raise ApiError(429, 10000, "Rate limited; all calls are blocked for 5 minutes")
        self.requests.append((self.now, what))

    @property
    def calls(self) -> int:
        return len(self.requests)

    # ---------------------------------------------------------------- Workers scripts

    def list_scripts(self) -> dict[str, str | None]:
        """GET /accounts/{id}/workers/scripts: name → migration tag (what the data source reads)."""
        self._request("GET workers/scripts")
        return {name: script.migration_tag for name, script in self.scripts.items()}

    def upload_script(self, name: str, inputs: dict[str, Any]) -> None:
        """PUT /accounts/{id}/workers/scripts/{name} with metadata.migrations and bindings."""
        self._request(f"PUT workers/scripts/{name}")
        script = self.scripts.get(name) or Script()
        classes = set(script.classes)
        migrations = inputs.get("migrations")
        tag = script.migration_tag
        if migrations:
            old = migrations.get("old_tag")
            if (old or None) != (tag or None):
                raise ApiError(
                    412,
                    10079,
                    f"Actor migration tag precondition failed, got tag '{old or ''}' when "
                    f"expected tag is '{tag or ''}'. Please make sure the tags match and try again.",
                )
            for step in migrations.get("steps") or [migrations]:
                for created in [*step.get("new_sqlite_classes", []), *step.get("new_classes", [])]:
                    if created in classes:
                        raise ApiError(
                            400,
                            10074,
                            f"Class '{created}' cannot be the target of more than one migration",
                        )
                    classes.add(created)
                for renamed in step.get("renamed_classes", []):
                    classes.discard(renamed["from"] if "from" in renamed else renamed["from_"])
                    classes.add(renamed["to"])
                classes -= set(step.get("deleted_classes", []))
            tag = migrations.get("new_tag")
        for binding in inputs.get("bindings") or []:
            own = binding.get("type") == "durable_object_namespace" and not binding.get(
                "script_name"
            )
            if own and binding["class_name"] not in classes:
                raise ApiError(
                    400,
                    10061,
                    f"Cannot create binding for class '{binding['class_name']}' because it is not "
                    "currently configured to implement Durable Objects. Ensure a --new-class "
                    "migration has been applied to it.",
                )
        script.classes, script.migration_tag = classes, tag
        script.uploads += 1
        self.scripts[name] = script

    # ---------------------------------------------------------------- Workers KV

    def kv_put(self, key: str, value: str, metadata: str | None = None) -> None:
        self._request(f"PUT storage/kv/values/{key}")
        if not key or len(key.encode()) > MAX_KEY_BYTES:
            raise ApiError(414, 10033, f"key '{key[:40]}…' is longer than {MAX_KEY_BYTES} bytes")
        if len(value.encode()) > MAX_VALUE_BYTES:
            raise ApiError(413, 10033, f"value of '{key}' is larger than 25 MiB")
        if metadata is not None and len(metadata.encode()) > MAX_METADATA_BYTES:
            raise ApiError(413, 10033, f"metadata of '{key}' is larger than 1024 bytes")
        self.kv[key] = value

    def kv_delete(self, key: str) -> None:
        self._request(f"DELETE storage/kv/values/{key}")
        self.kv.pop(key, None)

    # ---------------------------------------------------------------- one `pulumi up`

    def _perform(self, kind: str, action: str, inputs: dict[str, Any]) -> None:
        if kind == "WorkersKv":
            if action == "delete":
                self.kv_delete(inputs["key_name"])
            else:
                self.kv_put(inputs["key_name"], inputs["value"], inputs.get("metadata"))
        elif kind == "WorkersScript":
            if action == "delete":
                self._request(f"DELETE workers/scripts/{inputs['script_name']}")
                self.scripts.pop(inputs["script_name"], None)
            else:
                self.upload_script(inputs["script_name"], inputs)
        else:
            for request in REQUESTS[(kind, action)]:
                self._request(request)

    def apply(self, before: dict[str, Resource], after: dict[str, Resource]) -> None:
        """Go from the recorded state `before` to the program's `after`, as the engine does."""
        rank = {kind: i for i, kind in enumerate(ORDER)}
        deletes = []
        for name in sorted(after, key=lambda n: rank[after[n].kind]):
            new, old = after[name], before.get(name)
            if old is None:
                self._perform(new.kind, "create", new.inputs)
            elif old.inputs != new.inputs:
                changed = {
                    k
                    for k in old.inputs.keys() | new.inputs.keys()
                    if old.inputs.get(k) != new.inputs.get(k)
                }
                if changed & REPLACED_BY[new.kind]:
                    self._perform(new.kind, "create", new.inputs)  # create before delete
                    deletes.append(old)
                else:
                    self._perform(new.kind, "update", new.inputs)
        deletes += [old for name, old in before.items() if name not in after]
        for old in sorted(deletes, key=lambda r: -rank[r.kind]):
            self._perform(old.kind, "delete", old.inputs)
