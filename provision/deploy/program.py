"""What `__main__.py` runs: stack config in, one Gateway component, outputs out."""

from __future__ import annotations

import pulumi
from pulumi.runtime import config as runtime_config

from provision.deploy.gateway import Gateway, GatewayArgs
from provision.deploy.migrations import MIGRATIONS, MigrationStep
from provision.stack.config import (
    PROJECT,
    StackConfig,
    display_path,
    parse_pulumi_config,
    resolve_stack,
)


def pulumi_settings() -> dict[str, str]:
    """Every setting in our namespace as the engine passed it (namespace removed)."""
    merged = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
    prefix = f"{PROJECT}:"
    return {k.removeprefix(prefix): v for k, v in merged.items() if k.startswith(prefix)}


def load_config() -> StackConfig:
    """Validate the stack's settings; a bad stack file stops before any resource exists."""
    source = display_path(resolve_stack(pulumi.get_stack()))
    settings = pulumi_settings()
    secret = frozenset(k for k in settings if runtime_config.is_config_secret(f"{PROJECT}:{k}"))
    return parse_pulumi_config(settings, source, secret=secret)


def build(name: str = "gateway", migrations: tuple[MigrationStep, ...] = MIGRATIONS) -> Gateway:
    config = load_config()
    secrets = pulumi.Config()
    gateway = Gateway(
        name,
        GatewayArgs(
            config=config,
            admin_api_key=secrets.require_secret("adminApiKey"),
            ai_gateway_token=secrets.require_secret("aiGatewayToken"),
            provider_api_keys=secrets.get_secret_object("providerApiKeys") or {},
            # budget alerts are signed with it: required once the stack declares alerts
            alert_webhook_secret=secrets.require_secret("alertWebhookSecret")
            if config.alerts is not None
            else "",
            migrations=migrations,
        ),
    )
    pulumi.export("workerUrl", gateway.worker_url)
    pulumi.export("gatewayId", gateway.gateway_id)
    pulumi.export("kvNamespaceId", gateway.kv_namespace_id)
    pulumi.export("tenantCounts", gateway.tenant_counts)
    pulumi.export("workerSha256", gateway.bundle.sha256)
    return gateway
