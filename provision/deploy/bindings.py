"""The Worker's bindings: one list for the Pulumi script and the local runtime alike.

Pure (no Pulumi import), so the local runtime and the CLI stay fast to start.
"""

from __future__ import annotations

import json
from typing import Any

from provision.stack.config import StackConfig
from provision.stack.contract import (
    AI_BINDING,
    ANALYTICS_BINDING,
    AWS_BEDROCK,
    KV_BINDING,
    LEDGER_BINDING,
    LEDGER_CLASS,
    WORKERS_AI,
    analytics_dataset,
    provider_key_binding,
    rate_tier_binding,
    rate_tier_namespace,
)

# request.signal is aborted when the client disconnects: a stream whose client left is then
# stopped upstream and settled at once (estimated), instead of hanging until the runtime gives up.
COMPATIBILITY_FLAGS = ["enable_request_signal"]
# The Worker's cron trigger: reconcile usage kept under `unsettled:` into the ledgers.
RECONCILE_CRON = "*/5 * * * *"


def catalog_providers(config: StackConfig) -> list[str]:
    """Every provider a model of the stack may be served by: its models' and its patterns'."""
    models = [*config.routing.catalog, *config.routing.modelPatterns]
    return sorted({model.split("/", 1)[0] for model in models})


def _check_bedrock_credential(secret: str | None) -> None:
    """Bedrock's credential is AWS keys as JSON (the Worker signs with them) or a Bedrock API key;
    JSON that is not AWS keys would fail every request, so it stops the deploy (never shown)."""
    if not secret or not secret.lstrip().startswith("{"):
        return
    fix = (
        f"providerApiKeys.{AWS_BEDROCK} looks like JSON but is not AWS keys: set it to "
        '{"accessKeyId": "...", "secretAccessKey": "..."[, "sessionToken": "..."]} or to a '
        "Bedrock API key (pulumi config set --secret --path 'providerApiKeys."
        f"{AWS_BEDROCK}' ...)"
    )
    try:
        keys = json.loads(secret)
    except json.JSONDecodeError:
        raise ValueError(fix) from None
    fields = ("accessKeyId", "secretAccessKey")
    if not isinstance(keys, dict) or not all(
        isinstance(keys.get(f), str) and keys[f] for f in fields
    ):
        raise ValueError(fix)


def script_bindings(
    config: StackConfig,
    namespace_id: str,
    admin_api_key: str,
    ai_gateway_token: str,
    provider_api_keys: dict[str, str],
    alert_webhook_secret: str = "",
) -> list[dict[str, Any]]:
    """The Worker's bindings in a stable order (unstable order causes perpetual diffs, TF#5522)."""
    providers = catalog_providers(config)
    if provider_api_keys.get(WORKERS_AI):
        # the binding carries the account's own authority: a token would be stored, never used
        raise ValueError(
            f"providerApiKeys.{WORKERS_AI}: Workers AI models run through the Worker's AI binding "
            f"and need no key; remove it (pulumi config rm --path 'providerApiKeys.{WORKERS_AI}')"
        )
    unknown = sorted(set(provider_api_keys) - set(providers))
    if unknown:
        raise ValueError(
            f"providerApiKeys has keys for {', '.join(unknown)}, which no model in "
            f"routing.models or routing.embeddingModels uses (providers in use: {', '.join(providers)})"
        )
    _check_bedrock_credential(provider_api_keys.get(AWS_BEDROCK))
    both = sorted(p for p in config.routing.byokAliases if provider_api_keys.get(p))
    if both:
        # AI Gateway refuses a stored key's request that also carries a provider key
        raise ValueError(
            f"routing.byokAliases names a stored key for {', '.join(both)}, which also has a key in "
            "providerApiKeys: keep one (pulumi config rm --path 'providerApiKeys.<provider>', or "
            "remove the alias)"
        )
    bindings: list[dict[str, Any]] = [
        {"name": KV_BINDING, "type": "kv_namespace", "namespace_id": namespace_id},
        {"name": LEDGER_BINDING, "type": "durable_object_namespace", "class_name": LEDGER_CLASS},
        {"name": "ACCOUNT_ID", "type": "plain_text", "text": config.accountId},
        {"name": "GATEWAY_ID", "type": "plain_text", "text": config.gatewayId},
        {"name": "AI_GATEWAY_BASE_URL", "type": "plain_text", "text": config.gatewayBaseUrl},
        {"name": "ADMIN_API_KEY", "type": "secret_text", "text": admin_api_key},
        {"name": "AI_GATEWAY_TOKEN", "type": "secret_text", "text": ai_gateway_token},
        # one data point per request (worker/src/facts/facts.ts), for Cloudflare's SQL API and Grafana
        {
            "name": ANALYTICS_BINDING,
            "type": "analytics_engine",
            "dataset": analytics_dataset(config.workerName),
        },
    ]
    if config.alerts is not None:
        # required by the program when alerts are set (provision/deploy/program.py)
        bindings.append(
            {"name": "ALERT_WEBHOOK_SECRET", "type": "secret_text", "text": alert_webhook_secret}
        )
    if WORKERS_AI in providers:
        # Workers AI models run through the binding, with the gateway option (no key needed)
        bindings.append({"name": AI_BINDING, "type": "ai"})
    for tier, spec in sorted(config.rateTiers.items()):
        namespace = spec.namespaceId or rate_tier_namespace(config.workerName, tier)
        bindings.append(
            {
                "name": rate_tier_binding(tier),
                "type": "ratelimit",
                "namespace_id": str(namespace),  # a positive integer, as a string
                "simple": {"limit": spec.requests, "period": spec.periodSeconds},
            }
        )
    for provider in providers:
        if provider_api_keys.get(provider):
            bindings.append(
                {
                    "name": provider_key_binding(provider),
                    "type": "secret_text",
                    "text": provider_api_keys[provider],
                }
            )
    return bindings
