"""The Pulumi component: one `Gateway` declares every Cloudflare resource of a stack."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

import pulumi
import pulumi_cloudflare as cloudflare

from provision.deploy.bindings import script_bindings
from provision.deploy.custom_provider import AiGatewayCustomProvider
from provision.deploy.migrations import (
    MIGRATIONS,
    MigrationError,
    MigrationStep,
    live_tag_from_listing,
    pending,
)
from provision.deploy.resources import (
    AI_GATEWAY,
    CRON,
    CUSTOM_DOMAIN,
    CUSTOM_PROVIDER,
    KV_ENTRY,
    KV_NAMESPACE,
    SCRIPT,
    SUBDOMAIN,
    Declared,
    declared_resources,
)
from provision.stack.compiler import compile_records, tenant_counts
from provision.stack.config import StackConfig
from provision.stack.render import render_worker

# get_workers_scripts reads at most this many scripts (its own default, said out loud).
SCRIPT_LISTING_LIMIT = 1000


@dataclass
class GatewayArgs:
    """What a stack gives the component: validated config plus secrets from Pulumi config."""

    config: StackConfig
    admin_api_key: pulumi.Input[str]
    ai_gateway_token: pulumi.Input[str]
    # provider → API key; a provider left out is used with keys stored on the gateway (BYOK).
    provider_api_keys: pulumi.Input[dict[str, str]] = field(default_factory=dict)
    # signs budget alert webhooks; required when the stack declares alerts
    alert_webhook_secret: pulumi.Input[str] = ""
    # The script's Durable Object history, oldest first; only steps the live script lacks are sent.
    migrations: tuple[MigrationStep, ...] = MIGRATIONS


def live_migration_tag(account_id: str, script: str) -> str | None:
    """The live script's applied migration tag, read from Cloudflare (None: no script yet)."""
    try:
        listing = cloudflare.get_workers_scripts(
            account_id=account_id, max_items=SCRIPT_LISTING_LIMIT
        )
    except Exception as exc:  # the invoke's own error type varies with the engine
        message = (
            f"could not read the live Durable Object migration tag of Worker script '{script}' "
            f"in account {account_id} (getWorkersScripts failed: {exc}). Without it the upload "
            "could re-send an applied migration, which the API refuses; check that the API "
            "token may read Workers scripts, then run again."
        )
        # The SDK also re-raises the failed invoke itself when the program ends, and that
        # error may be the one shown last: say ours in the log too, so it is seen.
        pulumi.log.error(message)
        raise MigrationError(message) from exc
    return live_tag_from_listing(list(listing.results or []), script, limit=SCRIPT_LISTING_LIMIT)


def script_migrations(
    plan: dict[str, Any] | None,
) -> cloudflare.WorkersScriptMigrationsArgs | None:
    """The pending plan in the provider's own Args types (a misspelt field fails here)."""
    if plan is None:
        return None
    steps = []
    for step in plan["steps"]:
        renamed = [
            cloudflare.WorkersScriptMigrationsStepRenamedClassArgs(**r)
            for r in step.get("renamed_classes", [])
        ]
        steps.append(
            cloudflare.WorkersScriptMigrationsStepArgs(
                **{k: v for k, v in step.items() if k != "renamed_classes"},
                renamed_classes=renamed or None,
            )
        )
    return cloudflare.WorkersScriptMigrationsArgs(
        old_tag=plan.get("old_tag"), new_tag=plan["new_tag"], steps=steps
    )


class Gateway(pulumi.ComponentResource):
    """AI Gateway + KV namespace + tenant records + Worker, reconciled in one `pulumi up`."""

    def __init__(self, name: str, args: GatewayArgs, opts: pulumi.ResourceOptions | None = None):
        config = args.config
        # Read before anything is declared, so a failed read stops the deploy untouched.
        # Durable Object migrations: only the steps the live script has not applied yet.
        live_tag = live_migration_tag(config.accountId, config.workerName)
        self.migration_plan = pending(live_tag, config.workerName, args.migrations)
        super().__init__("llm-gateway:index:Gateway", name, None, opts)
        pulumi.log.info(_migration_note(config.workerName, live_tag, self.migration_plan), self)
        child = pulumi.ResourceOptions(parent=self)
        self.records = compile_records(config)
        self.bundle = render_worker(config)
        self.declared = declared_resources(config, name, records=self.records, bundle=self.bundle)
        by_kind: dict[str, list[Declared]] = {}
        for resource in self.declared.values():
            by_kind.setdefault(resource.kind, []).append(resource)
        (ai_gateway,) = by_kind[AI_GATEWAY]
        (namespace,) = by_kind[KV_NAMESPACE]
        (script,) = by_kind[SCRIPT]
        (cron,) = by_kind[CRON]
        (subdomain,) = by_kind[SUBDOMAIN]
        counts = tenant_counts(config)

        # The AI Gateway every model call goes through (logs, cache, rate limit, auth).
        self.ai_gateway = cloudflare.AiGateway(ai_gateway.name, **ai_gateway.inputs, opts=child)

        # Tenant configuration: read on every request, written only by `pulumi up`.
        self.namespace = cloudflare.WorkersKvNamespace(
            namespace.name, **namespace.inputs, opts=child
        )

        # A bounded set of shard records (provision/stack/contract.py); values hold hashes only,
        # never a plain key. Everything the Worker needs is in the value: KV metadata is
        # unreliable in the provider (TF#6353).
        self.entries = [
            cloudflare.WorkersKv(
                entry.name, **entry.inputs, namespace_id=self.namespace.id, opts=child
            )
            for entry in by_kind.get(KV_ENTRY, [])
        ]

        # The team's own OpenAI-compatible servers, as AI Gateway custom providers (custom-<slug>):
        # they exist before the Worker that calls them.
        self.custom_providers = [
            AiGatewayCustomProvider(
                declared.name,
                **declared.inputs,
                opts=pulumi.ResourceOptions(parent=self, delete_before_replace=True),
            )
            for declared in by_kind.get(CUSTOM_PROVIDER, [])
        ]

        # The Worker itself: ES modules rendered from worker/, bindings in a stable order. It
        # goes live after the records it reads are written.
        bindings = pulumi.Output.all(
            self.namespace.id,
            args.admin_api_key,
            args.ai_gateway_token,
            args.provider_api_keys,
            args.alert_webhook_secret,
        ).apply(lambda values: script_bindings(config, *values))
        self.script = cloudflare.WorkersScript(
            script.name,
            **script.inputs,
            # plain dicts in the WorkersScriptBindingArgs shape (bindings.py stays Pulumi-free)
            bindings=cast("pulumi.Input[list[cloudflare.WorkersScriptBindingArgsDict]]", bindings),
            migrations=script_migrations(self.migration_plan),
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=[*self.entries, *self.custom_providers]
            ),
        )
        after_script = {"script_name": self.script.script_name}  # same value, plus the ordering

        # Every few minutes the Worker reconciles usage served while a ledger was unreachable.
        self.cron = cloudflare.WorkersCronTrigger(
            cron.name, **{**cron.inputs, **after_script}, opts=child
        )

        # Public URL: the workers.dev route, and optionally the stack's own hostname.
        self.subdomain = cloudflare.WorkersScriptSubdomain(
            subdomain.name, **{**subdomain.inputs, **after_script}, opts=child
        )
        self.custom_domain = None
        for domain in by_kind.get(CUSTOM_DOMAIN, []):
            self.custom_domain = cloudflare.WorkersCustomDomain(
                domain.name,
                **{**domain.inputs, "service": self.script.script_name},
                # The provider's Update does nothing (TF workers_custom_domain resource.go), so
                # a changed zone or Worker would be recorded but never applied: replace instead.
                opts=pulumi.ResourceOptions(
                    parent=self, depends_on=[self.script], replace_on_changes=["zone_id", "service"]
                ),
            )

        # Every child resource, for callers that wait on them all.
        self.resources: list[pulumi.CustomResource] = [
            self.ai_gateway,
            self.namespace,
            *self.entries,
            self.script,
            self.cron,
            self.subdomain,
            *([self.custom_domain] if self.custom_domain is not None else []),
            *self.custom_providers,
        ]

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


def _migration_note(script: str, live_tag: str | None, plan: dict[str, Any] | None) -> str:
    where = (
        f"Worker script '{script}' is at migration tag '{live_tag}'"
        if live_tag
        else (f"Worker script '{script}' has no Durable Object migration applied yet")
    )
    if plan is None:
        return f"{where}: no migration sent"
    tags = (
        plan["new_tag"]
        if len(plan["steps"]) == 1
        else f"{len(plan['steps'])} steps up to {plan['new_tag']}"
    )
    return f"{where}: sending {tags}" + (
        f" (old_tag {plan['old_tag']})" if "old_tag" in plan else ""
    )
