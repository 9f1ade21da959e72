"""What a `pulumi up` costs in Cloudflare API calls, and the budget it must fit in.

Calls per operation are read off the provider's own code: pulumi-cloudflare 6.23.1 bridges
cloudflare/terraform-provider-cloudflare v5 (internal/services/<resource>/resource.go, read at
a2efdc57 / v5.22.0): Create, Update and Delete make one request each, except where noted;
Read (what `pulumi refresh` or `up --refresh` runs per resource) makes the requests listed.
Inputs that force a replacement are the schema's RequiresReplace attributes (schema.go), plus
any the component adds with `replace_on_changes`.

The API allows 1,200 requests per 5 minutes per user, then blocks EVERY call for 5 minutes
(developers.cloudflare.com/fundamentals/api/reference/limits); the provider's SDK retries
twice, which does not outlast the block. A `pulumi up` must stay inside one window.
"""

from __future__ import annotations

from dataclasses import dataclass

WINDOW_CALLS = 1200
WINDOW_SECONDS = 300


@dataclass(frozen=True)
class Operations:
    create: int
    update: int
    delete: int
    refresh: int
    replace_on: frozenset[str]


OPERATIONS: dict[str, Operations] = {
    "AiGateway": Operations(1, 1, 1, 1, frozenset({"account_id", "ai_gateway_id"})),
    "WorkersKvNamespace": Operations(1, 1, 1, 1, frozenset({"account_id"})),
    # Read = value GET + metadata GET.
    "WorkersKv": Operations(1, 1, 1, 2, frozenset({"account_id", "namespace_id", "key_name"})),
    # Create and Update are one multipart PUT; Read = two GETs of settings + one of content.
    "WorkersScript": Operations(1, 1, 1, 3, frozenset({"account_id", "script_name"})),
    # Delete is empty in the provider (the schedules go with the script).
    "WorkersCronTrigger": Operations(1, 1, 0, 1, frozenset({"account_id", "script_name"})),
    "WorkersScriptSubdomain": Operations(1, 1, 1, 1, frozenset({"account_id", "script_name"})),
    # Update is empty in the provider, so the component replaces on a zone change too.
    "WorkersCustomDomain": Operations(
        1, 0, 1, 1, frozenset({"account_id", "hostname", "service", "zone_id"})
    ),
    # Our dynamic resource (custom_provider.py): one request per action; every change replaces.
    "AiGatewayCustomProvider": Operations(
        1, 0, 1, 1, frozenset({"account_id", "slug", "name", "base_url", "description"})
    ),
}

# Reads the program itself makes on every run (`pulumi up` runs it once, as does `preview`):
# getWorkersScripts, for the live Durable Object migration tag (one page of scripts).
READS_PER_RUN = 1


def calls_for(kind: str, action: str) -> int:
    """API calls of one resource action: create, update, replace or delete."""
    ops = OPERATIONS[kind]
    by_action = {"create": ops.create, "update": ops.update, "delete": ops.delete}
    return ops.create + ops.delete if action == "replace" else by_action[action]
