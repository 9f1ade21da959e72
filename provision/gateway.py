"""The Pulumi component: one `Gateway` declares every Cloudflare resource of a stack."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field

import pulumi
import pulumi_cloudflare as cloudflare

from provision.bindings import (
    COMPATIBILITY_FLAGS,
    LEDGER_MIGRATION,
    RECONCILE_CRON,
    script_bindings,
)
from provision.compiler import compile_records, tenant_counts
from provision.config import StackConfig
from provision.render import WorkerBundle, render_worker

MODULE_CONTENT_TYPE = "application/javascript+module"


@dataclass
class GatewayArgs:
    """What a stack gives the component: validated config plus secrets from Pulumi config."""

    config: StackConfig
    admin_api_key: pulumi.Input[str]
    ai_gateway_token: pulumi.Input[str]
    # provider → API key; a provider left out is used with keys stored on the gateway (BYOK).
    provider_api_keys: pulumi.Input[dict[str, str]] = field(default_factory=dict)


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


class Gateway(pulumi.ComponentResource):
    """AI Gateway + KV namespace + tenant records + Worker, reconciled in one `pulumi up`."""

    def __init__(self, name: str, args: GatewayArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("llm-gateway:index:Gateway", name, None, opts)
        config = args.config
        child = pulumi.ResourceOptions(parent=self)
        self.records = compile_records(config)
        self.bundle = render_worker(config)
        counts = tenant_counts(config)

        # The AI Gateway every model call goes through (logs, cache, rate limit, auth).
        settings = config.aiGateway
        self.ai_gateway = cloudflare.AiGateway(
            f"{name}-ai-gateway",
            account_id=config.accountId,
            ai_gateway_id=config.gatewayId,
            authentication=settings.authentication,
            cache_ttl=settings.cacheTtl,
            cache_invalidate_on_update=settings.cacheInvalidateOnUpdate,
            collect_logs=settings.collectLogs,
            rate_limiting_limit=settings.rateLimit.limit,
            rate_limiting_interval=settings.rateLimit.interval,
            rate_limiting_technique=settings.rateLimit.technique,
            opts=child,
        )

        # Tenant configuration: read on every request, written only by `pulumi up`.
        self.namespace = cloudflare.WorkersKvNamespace(
            f"{name}-kv",
            account_id=config.accountId,
            title=f"{config.workerName}-config",
            opts=child,
        )

        # One record per compiled key; values hold hashes only, never a plain key. Everything
        # the Worker needs is in the value: KV metadata is unreliable in the provider (TF#6353).
        self.entries = [
            cloudflare.WorkersKv(
                kv_resource_name(name, key),
                account_id=config.accountId,
                namespace_id=self.namespace.id,
                key_name=key,
                value=value,
                opts=child,
            )
            for key, value in self.records.items()
        ]

        # The Worker itself: ES modules rendered from worker/, bindings in a stable order.
        bindings = pulumi.Output.all(
            self.namespace.id,
            args.admin_api_key,
            args.ai_gateway_token,
            args.provider_api_keys,
        ).apply(lambda values: script_bindings(config, *values))
        self.script = cloudflare.WorkersScript(
            f"{name}-worker",
            account_id=config.accountId,
            script_name=config.workerName,
            content=self.bundle.modules[self.bundle.main_module],
            main_module=self.bundle.main_module,
            files=module_files(self.bundle),
            compatibility_date=config.compatibilityDate.isoformat(),
            compatibility_flags=COMPATIBILITY_FLAGS,
            bindings=bindings,
            migrations=LEDGER_MIGRATION,
            observability={"enabled": True, "head_sampling_rate": 1},
            opts=child,
        )

        # Every few minutes the Worker reconciles usage served while a ledger was unreachable.
        self.cron = cloudflare.WorkersCronTrigger(
            f"{name}-cron",
            account_id=config.accountId,
            script_name=self.script.script_name,
            schedules=[{"cron": RECONCILE_CRON}],
            opts=child,
        )

        # Public URL: the workers.dev route, and optionally the stack's own hostname.
        self.subdomain = cloudflare.WorkersScriptSubdomain(
            f"{name}-workers-dev",
            account_id=config.accountId,
            script_name=self.script.script_name,
            enabled=config.workersDevSubdomain is not None,
            previews_enabled=False,
            opts=child,
        )
        self.custom_domain = None
        if config.customDomain is not None:
            self.custom_domain = cloudflare.WorkersCustomDomain(
                f"{name}-domain",
                account_id=config.accountId,
                hostname=config.customDomain.hostname,
                service=self.script.script_name,
                zone_id=config.customDomain.zoneId,
                opts=pulumi.ResourceOptions(parent=self, depends_on=[self.script]),
            )

        if config.customDomain is not None:
            url = f"https://{config.customDomain.hostname}"
        else:
            url = f"https://{config.workerName}.{config.workersDevSubdomain}.workers.dev"
        self.worker_url = pulumi.Output.from_input(url)
        self.gateway_id = self.ai_gateway.ai_gateway_id
        self.kv_namespace_id = self.namespace.id
        self.tenant_counts = {
            "organizations": counts.organizations,
            "users": counts.users,
            "keys": counts.keys,
            "activeKeys": counts.active_keys,
        }
        self.register_outputs(
            {
                "workerUrl": self.worker_url,
                "gatewayId": self.gateway_id,
                "kvNamespaceId": self.kv_namespace_id,
                "tenantCounts": self.tenant_counts,
                "workerSha256": self.bundle.sha256,
            }
        )
