"""The Cloudflare resources a stack declares, as plain data.

The Pulumi component (provision/deploy/gateway.py) declares exactly these, adding only what exists
at deploy time (the namespace id, secret values, the live migration plan); `provision plan`
diffs them between two versions of a stack and prices the difference in API calls
(provision/deploy/cloudflare_api.py). Pure: no Pulumi import, so the CLI starts fast.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from typing import Any

from provision.deploy.bindings import COMPATIBILITY_FLAGS, RECONCILE_CRON
from provision.stack.compiler import compile_records
from provision.stack.config import StackConfig
from provision.stack.render import WorkerBundle, render_worker

MODULE_CONTENT_TYPE = "application/javascript+module"

AI_GATEWAY = "AiGateway"
KV_NAMESPACE = "WorkersKvNamespace"
KV_ENTRY = "WorkersKv"
SCRIPT = "WorkersScript"
CRON = "WorkersCronTrigger"
SUBDOMAIN = "WorkersScriptSubdomain"
CUSTOM_DOMAIN = "WorkersCustomDomain"
CUSTOM_PROVIDER = (
    "AiGatewayCustomProvider"  # a dynamic resource: provision/deploy/custom_provider.py
)


@dataclass(frozen=True)
class Declared:
    """One resource: its kind (the pulumi-cloudflare class name), logical name and the inputs
    the stack decides, as the component passes them (snake_case)."""

    kind: str
    name: str
    inputs: dict[str, Any]


def kv_resource_name(parent: str, key: str) -> str:
    """Named from the KV key, never a list position: reordering YAML changes nothing."""
    return f"{parent}-kv-{key.replace(':', '.')}"


def module_files(bundle: WorkerBundle) -> dict[str, dict[str, str]]:
    files = {}
    for name, source in bundle.extra_modules.items():
        data = source.encode("utf-8")
        files[name] = {
            "content_type": MODULE_CONTENT_TYPE,
            "content_base64": base64.b64encode(data).decode("ascii"),
            "content_sha256": hashlib.sha256(data).hexdigest(),
        }
    return files


def declared_resources(
    config: StackConfig,
    parent: str = "gateway",
    *,
    records: dict[str, str] | None = None,
    bundle: WorkerBundle | None = None,
) -> dict[str, Declared]:
    """Every resource of the stack by logical name, in the order they are declared."""
    records = compile_records(config) if records is None else records
    bundle = render_worker(config) if bundle is None else bundle
    account = config.accountId
    ai = config.aiGateway
    out = [
        Declared(
            AI_GATEWAY,
            f"{parent}-ai-gateway",
            {
                "account_id": account,
                "ai_gateway_id": config.gatewayId,
                "authentication": ai.authentication,
                "cache_ttl": ai.cacheTtl,
                "cache_invalidate_on_update": ai.cacheInvalidateOnUpdate,
                "collect_logs": ai.collectLogs,
                "rate_limiting_limit": ai.rateLimit.limit,
                "rate_limiting_interval": ai.rateLimit.interval,
                "rate_limiting_technique": ai.rateLimit.technique,
            },
        ),
        Declared(
            KV_NAMESPACE,
            f"{parent}-kv",
            {"account_id": account, "title": f"{config.workerName}-config"},
        ),
        *(
            Declared(
                KV_ENTRY,
                kv_resource_name(parent, key),
                {"account_id": account, "key_name": key, "value": value},
            )
            for key, value in records.items()
        ),
        Declared(
            SCRIPT,
            f"{parent}-worker",
            {
                "account_id": account,
                "script_name": config.workerName,
                "content": bundle.modules[bundle.main_module],
                "main_module": bundle.main_module,
                # one bundled module today; more would go as `files` beside the entry
                **({"files": module_files(bundle)} if bundle.extra_modules else {}),
                "compatibility_date": config.compatibilityDate.isoformat(),
                "compatibility_flags": list(COMPATIBILITY_FLAGS),
                "observability": {"enabled": True, "head_sampling_rate": 1},
            },
        ),
        Declared(
            CRON,
            f"{parent}-cron",
            {
                "account_id": account,
                "script_name": config.workerName,
                "schedules": [{"cron": RECONCILE_CRON}],
            },
        ),
        Declared(
            SUBDOMAIN,
            f"{parent}-workers-dev",
            {
                "account_id": account,
                "script_name": config.workerName,
                "enabled": config.workersDevSubdomain is not None,
                "previews_enabled": False,
            },
        ),
    ]
    if config.customDomain is not None:
        out.append(
            Declared(
                CUSTOM_DOMAIN,
                f"{parent}-domain",
                {
                    "account_id": account,
                    "hostname": config.customDomain.hostname,
                    "service": config.workerName,
                    "zone_id": config.customDomain.zoneId,
                },
            )
        )
    for slug, provider in sorted(config.routing.customProviders.items()):
        out.append(
            Declared(
                CUSTOM_PROVIDER,
                f"{parent}-custom-{slug}",
                {
                    "account_id": account,
                    "slug": slug,
                    "name": provider.name or f"{config.workerName} {slug}",
                    "base_url": provider.baseUrl,
                    "description": f"routing.customProviders.{slug} of {config.workerName}",
                },
            )
        )
    return {resource.name: resource for resource in out}
