"""The Pulumi program (`__main__.py`) with mocks, over the real stack files.

Every Pulumi test carries `@pulumi.runtime.test` and returns an Output or awaitable, so a
failing assert inside it fails the test (pulumi-notes §2.3.2). Assertions wait on the
children's URNs first (registration is asynchronous) and compare sets (its order is not).
"""

from __future__ import annotations

import inspect
import json
import re
import runpy
from pathlib import Path
from typing import Any

import pulumi
import pytest
import yaml
from pulumi.output import Unknown

from provision.deploy.gateway import Gateway
from provision.errors import ConfigError
from provision.stack.compiler import compile_records, tenant_counts
from provision.stack.config import StackConfig, load_stack_file, resolve_stack
from provision.stack.contract import rate_tier_namespace
from provision.stack.render import render_worker
from tests.pulumi_support import (
    DEFAULT_SECRETS,
    MAIN,
    RecordingMocks,
    mocks_fixture,  # noqa: F401  (the `mocks` fixture)
    set_stack_config,
    strip_secrets,
    unwrap_secrets,
)

STACKS = ["dev", "example"]
AI_GATEWAY = "cloudflare:index/aiGateway:AiGateway"
NAMESPACE = "cloudflare:index/workersKvNamespace:WorkersKvNamespace"
KV = "cloudflare:index/workersKv:WorkersKv"
SCRIPT = "cloudflare:index/workersScript:WorkersScript"
SUBDOMAIN = "cloudflare:index/workersScriptSubdomain:WorkersScriptSubdomain"
CUSTOM_DOMAIN = "cloudflare:index/workersCustomDomain:WorkersCustomDomain"
CRON = "cloudflare:index/workersCronTrigger:WorkersCronTrigger"
COMPONENT = "llm-gateway:index:Gateway"
NAMESPACE_ID = "gateway-kv-id"  # RecordingMocks: `<logical name>-id`


def kv_name(key: str) -> str:
    """The logical name of a key's WorkersKv. Spelled out on purpose: changing the scheme
    replaces every KV entry on the next deploy, so it must not change by accident."""
    return "gateway-kv-" + key.replace(":", ".")


def run_program(
    mocks: RecordingMocks,
    stack: str = "dev",
    *,
    path: Path | None = None,
    secrets: dict[str, Any] | None = None,
    preview: bool = False,
) -> Gateway:
    """Run `__main__.py` as `pulumi up -s <stack>` would, with `path` as the stack file."""
    mocks.install(stack, preview=preview)
    set_stack_config(path or stack, secrets)
    return runpy.run_path(str(MAIN))["gateway"]


def settled(gateway: Gateway, *more: pulumi.Output) -> pulumi.Output[list[Any]]:
    """Resolves once every child is registered, so `mocks.created` is complete."""
    return pulumi.Output.all(*more, *[c.urn for c in gateway.resources])


def config_of(stack: str, path: Path | None = None) -> StackConfig:
    return load_stack_file(path or resolve_stack(stack))


def edited_stack(tmp_path: Path, base: str, edit) -> Path:
    """A copy of a real stack file, changed by `edit(settings)`, as stacks/Pulumi.edited.yaml."""
    document = yaml.safe_load(resolve_stack(base).read_text(encoding="utf-8"))
    edit({k.removeprefix("llm-gateway:"): v for k, v in document["config"].items()})
    path = tmp_path / "Pulumi.edited.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


def kv_inputs(mocks: RecordingMocks) -> dict[str, dict[str, Any]]:
    return {r.inputs["keyName"]: r.inputs for r in mocks.of_type(KV)}


# ------------------------------------------------------------------------ resources


@pytest.mark.parametrize("stack", STACKS)
@pulumi.runtime.test
def test_resource_types_and_counts(mocks: RecordingMocks, stack: str):
    """One gateway, namespace, script, cron trigger and workers.dev switch; one KV entry per record."""
    gateway = run_program(mocks, stack)
    config = config_of(stack)

    def check(_):
        counts: dict[str, int] = {}
        for resource in mocks.created:
            counts[resource.typ] = counts.get(resource.typ, 0) + 1
        expected = {
            COMPONENT: 1,
            AI_GATEWAY: 1,
            NAMESPACE: 1,
            KV: len(compile_records(config)),
            SCRIPT: 1,
            CRON: 1,
            SUBDOMAIN: 1,
        }
        if config.customDomain is not None:
            expected[CUSTOM_DOMAIN] = 1
        assert counts == expected

    return settled(gateway).apply(check)


@pytest.mark.parametrize("stack", STACKS)
@pulumi.runtime.test
def test_logical_names_are_unique(mocks: RecordingMocks, stack: str):
    """No two resources share a logical name (mocks would not notice; the engine would)."""
    gateway = run_program(mocks, stack)

    def check(_):
        names = [r.name for r in mocks.created]
        assert len(names) == len(set(names)), sorted(n for n in names if names.count(n) > 1)

    return settled(gateway).apply(check)


# ------------------------------------------------------------------------ the Worker


def expected_bindings(config: StackConfig, secrets: dict[str, Any]) -> dict[str, dict[str, Any]]:
    bindings = {
        "GATEWAY_KV": {"name": "GATEWAY_KV", "type": "kv_namespace", "namespace_id": NAMESPACE_ID},
        "USAGE_LEDGER": {
            "name": "USAGE_LEDGER",
            "type": "durable_object_namespace",
            "class_name": "UsageLedger",
        },
        "ACCOUNT_ID": {"name": "ACCOUNT_ID", "type": "plain_text", "text": config.accountId},
        "GATEWAY_ID": {"name": "GATEWAY_ID", "type": "plain_text", "text": config.gatewayId},
        "AI_GATEWAY_BASE_URL": {
            "name": "AI_GATEWAY_BASE_URL",
            "type": "plain_text",
            "text": config.gatewayBaseUrl,
        },
        "ADMIN_API_KEY": {
            "name": "ADMIN_API_KEY",
            "type": "secret_text",
            "text": secrets["adminApiKey"],
        },
        "AI_GATEWAY_TOKEN": {
            "name": "AI_GATEWAY_TOKEN",
            "type": "secret_text",
            "text": secrets["aiGatewayToken"],
        },
        # the dataset operators query with the SQL API: named after the Worker
        "REQUEST_ANALYTICS": {
            "name": "REQUEST_ANALYTICS",
            "type": "analytics_engine",
            "dataset": config.workerName.replace("-", "_") + "_requests",
        },
    }
    if config.alerts is not None:
        bindings["ALERT_WEBHOOK_SECRET"] = {
            "name": "ALERT_WEBHOOK_SECRET",
            "type": "secret_text",
            "text": secrets["alertWebhookSecret"],
        }
    if any(m.startswith("workers-ai/") for m in config.routing.models):
        bindings["AI"] = {"name": "AI", "type": "ai"}
    for tier, spec in config.rateTiers.items():
        name = "RATE_TIER_" + tier.upper().replace("-", "_")
        namespace = spec.namespaceId or rate_tier_namespace(config.workerName, tier)
        bindings[name] = {
            "name": name,
            "type": "ratelimit",
            "namespace_id": str(namespace),  # the API takes a positive integer as a string
            "simple": {"limit": float(spec.requests), "period": spec.periodSeconds},
        }
    for provider, key in secrets.get("providerApiKeys", {}).items():
        name = "PROVIDER_KEY_" + provider.upper().replace("-", "_")
        bindings[name] = {"name": name, "type": "secret_text", "text": key}
    return bindings


def _compact(binding: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in binding.items() if v is not None}


@pytest.mark.parametrize("stack", STACKS)
@pulumi.runtime.test
def test_script_bindings(mocks: RecordingMocks, stack: str):
    """The Worker gets its KV namespace, plain settings and every secret, by name and type."""
    gateway = run_program(mocks, stack)
    expected = expected_bindings(config_of(stack), DEFAULT_SECRETS)

    def check(args):
        bindings = args[0]
        by_name = {b["name"]: _compact(b) for b in bindings}
        assert len(by_name) == len(bindings)
        assert by_name == expected
        raw = unwrap_secrets(mocks.one(SCRIPT).inputs["bindings"])
        assert {b["name"]: b.get("namespaceId") for b in raw}["GATEWAY_KV"] == NAMESPACE_ID
        assert {b["name"] for b in raw} == set(expected)

    return settled(gateway, gateway.script.bindings).apply(check)


@pytest.mark.parametrize(
    "provider_keys",
    [
        None,
        {},
        {"openai": "sk-o-1"},
        {"openai": "sk-o-1", "anthropic": "sk-a-2", "google-ai-studio": "AIza-g-3"},
    ],
    ids=["absent", "empty", "openai", "all"],
)
@pulumi.runtime.test
def test_provider_key_bindings_only_for_given_keys(mocks: RecordingMocks, provider_keys):
    """A provider gets a PROVIDER_KEY_* secret binding exactly when a key is configured."""
    secrets = {k: v for k, v in DEFAULT_SECRETS.items() if k != "providerApiKeys"}
    if provider_keys is not None:
        secrets["providerApiKeys"] = provider_keys
    gateway = run_program(mocks, "dev", secrets=secrets)

    def check(args):
        found = {b["name"]: b["text"] for b in args[0] if b["name"].startswith("PROVIDER_KEY_")}
        expected = {
            "PROVIDER_KEY_" + p.upper().replace("-", "_"): k
            for p, k in (provider_keys or {}).items()
        }
        assert found == expected

    return settled(gateway, gateway.script.bindings).apply(check)


def test_a_workers_ai_key_fails_the_deploy_naming_the_fix(mocks: RecordingMocks) -> None:
    """Workers AI runs through the AI binding: a key for it would be a secret stored, never used."""
    secrets = {**DEFAULT_SECRETS, "providerApiKeys": {"workers-ai": "cf-token-secret"}}

    @pulumi.runtime.test
    def program():
        return settled(run_program(mocks, "dev", secrets=secrets))

    with pytest.raises(ValueError, match="AI binding") as info:
        program()
    assert "pulumi config rm --path 'providerApiKeys.workers-ai'" in str(info.value)
    assert "cf-token-secret" not in str(info.value)


def test_provider_key_for_an_unused_provider_fails_the_deploy(mocks: RecordingMocks) -> None:
    """A key for a provider no model uses (a typo) stops the deploy, without showing the key."""
    secrets = {**DEFAULT_SECRETS, "providerApiKeys": {"opneai": "sk-typo-secret"}}

    @pulumi.runtime.test
    def program():
        return settled(run_program(mocks, "dev", secrets=secrets))

    with pytest.raises(ValueError, match="opneai") as info:
        program()
    assert "sk-typo-secret" not in str(info.value)


@pytest.mark.parametrize("stack", STACKS)
@pulumi.runtime.test
def test_script_modules(mocks: RecordingMocks, stack: str):
    """The bundle is the script's content and main module; no other module is uploaded."""
    gateway = run_program(mocks, stack)
    bundle = render_worker(config_of(stack))

    def check(args):
        main_module, content, files = args[:3]
        assert main_module == "index.js"
        assert content == bundle.modules["index.js"]
        assert not files  # one bundled module
        assert "files" not in mocks.one(SCRIPT).inputs

    script = gateway.script
    return settled(gateway, script.main_module, script.content, script.files).apply(check)


@pytest.mark.parametrize("stack", STACKS)
@pulumi.runtime.test
def test_script_settings(mocks: RecordingMocks, stack: str):
    """Script name, pinned compatibility date and flags, Workers Logs on (migrations:
    tests/test_migrations.py)."""
    gateway = run_program(mocks, stack)
    config = config_of(stack)

    def check(_):
        inputs = mocks.one(SCRIPT).inputs
        assert inputs["accountId"] == config.accountId
        assert inputs["scriptName"] == config.workerName
        assert inputs["compatibilityDate"] == config.compatibilityDate.isoformat()
        # the local runtime runs with the same flags (client disconnects abort request.signal)
        assert inputs["compatibilityFlags"] == ["enable_request_signal"]
        assert inputs["observability"]["enabled"] is True

    return settled(gateway).apply(check)


@pytest.mark.parametrize("stack", STACKS)
@pulumi.runtime.test
def test_cron_trigger_reconciles_on_the_workers_schedule(mocks: RecordingMocks, stack: str):
    """The script gets a cron trigger (every 5 minutes) that reconciles unsettled usage."""
    gateway = run_program(mocks, stack)
    config = config_of(stack)

    def check(_):
        cron = mocks.one(CRON).inputs
        assert cron == {
            "accountId": config.accountId,
            "scriptName": config.workerName,
            "schedules": [{"cron": "*/5 * * * *"}],
        }

    return settled(gateway).apply(check)


@pytest.mark.parametrize("stack", STACKS)
@pulumi.runtime.test
def test_public_url_resources(mocks: RecordingMocks, stack: str):
    """workers.dev is on only with workersDevSubdomain; a customDomain binds its hostname."""
    gateway = run_program(mocks, stack)
    config = config_of(stack)

    def check(_):
        subdomain = mocks.one(SUBDOMAIN).inputs
        assert subdomain["scriptName"] == config.workerName
        assert subdomain["enabled"] is (config.workersDevSubdomain is not None)
        assert subdomain["previewsEnabled"] is False
        domains = [r.inputs for r in mocks.of_type(CUSTOM_DOMAIN)]
        if config.customDomain is None:
            assert domains == []
        else:
            assert domains == [
                {
                    "accountId": config.accountId,
                    "hostname": config.customDomain.hostname,
                    "zoneId": config.customDomain.zoneId,
                    "service": config.workerName,
                }
            ]

    return settled(gateway).apply(check)


@pytest.mark.parametrize("stack", STACKS)
@pulumi.runtime.test
def test_ai_gateway_inputs(mocks: RecordingMocks, stack: str):
    """The AI Gateway is declared from the stack's aiGateway settings."""
    gateway = run_program(mocks, stack)
    config = config_of(stack)
    settings = config.aiGateway

    def check(_):
        inputs = mocks.one(AI_GATEWAY).inputs
        assert inputs == {
            "accountId": config.accountId,
            "aiGatewayId": config.gatewayId,
            "authentication": settings.authentication,
            "cacheTtl": settings.cacheTtl,
            "cacheInvalidateOnUpdate": settings.cacheInvalidateOnUpdate,
            "collectLogs": settings.collectLogs,
            "rateLimitingLimit": settings.rateLimit.limit,
            "rateLimitingInterval": settings.rateLimit.interval,
            "rateLimitingTechnique": settings.rateLimit.technique,
        }
        namespace = mocks.one(NAMESPACE).inputs
        assert namespace == {"accountId": config.accountId, "title": f"{config.workerName}-config"}

    return settled(gateway).apply(check)


# -------------------------------------------------------------------------- secrecy


def _secret_values(secrets: dict[str, Any], config: StackConfig) -> list[str]:
    values = [secrets["adminApiKey"], secrets["aiGatewayToken"]]
    if config.alerts is not None:  # used only by a stack with alerts
        values.append(secrets["alertWebhookSecret"])
    return values + list(secrets.get("providerApiKeys", {}).values())


@pytest.mark.parametrize("stack", STACKS)
@pulumi.runtime.test
def test_secrets_stay_secret(mocks: RecordingMocks, stack: str):
    """Bindings are a secret output, and secret values appear only under the secret marker."""
    gateway = run_program(mocks, stack)

    async def check():
        await settled(gateway).future()
        assert await gateway.script.bindings.is_secret()
        assert not await gateway.script.content.is_secret()
        raw = json.dumps([r.inputs for r in mocks.created], default=str)
        visible = json.dumps([strip_secrets(r.inputs) for r in mocks.created], default=str)
        revealed = json.dumps(unwrap_secrets(mocks.one(SCRIPT).inputs))
        for value in _secret_values(DEFAULT_SECRETS, config_of(stack)):
            assert value in revealed and value in raw
            assert value not in visible
        outputs = pulumi.runtime.get_root_resource().outputs
        exported = await pulumi.Output.from_input(outputs).future()
        secret_values = _secret_values(DEFAULT_SECRETS, config_of(stack))
        assert not any(v in json.dumps(exported) for v in secret_values)

    return check()


# ------------------------------------------------------------------------ KV records


@pytest.mark.parametrize("stack", STACKS)
@pulumi.runtime.test
def test_kv_entries_are_the_compiled_records(mocks: RecordingMocks, stack: str):
    """Each WorkersKv writes one compiled record, into our namespace, named from its key."""
    gateway = run_program(mocks, stack)
    config = config_of(stack)
    records = compile_records(config)

    def check(_):
        entries = mocks.of_type(KV)
        assert {e.name for e in entries} == {kv_name(k) for k in records}
        for entry in entries:
            key = entry.inputs["keyName"]
            assert entry.name == kv_name(key)
            assert entry.inputs == {
                "accountId": config.accountId,
                "namespaceId": NAMESPACE_ID,
                "keyName": key,
                "value": records[key],
            }

    return settled(gateway).apply(check)


@pulumi.runtime.test
def test_reordered_yaml_gives_the_same_resources(mocks: RecordingMocks, tmp_path: Path):
    """Reordering orgs, users and keys in the stack file changes no KV resource or value."""

    def reverse(settings: dict[str, Any]) -> None:
        tenants = settings["tenants"]
        tenants["organizations"].reverse()
        tenants["users"].reverse()
        for user in tenants["users"]:
            user["keys"].reverse()

    path = edited_stack(tmp_path, "example", reverse)
    before, after = config_of("example"), config_of("edited", path)
    assert [u.id for u in after.tenants.users] == [u.id for u in before.tenants.users][::-1]
    gateway = run_program(mocks, "edited", path=path)
    original = compile_records(before)

    def check(_):
        got = {(e.name, e.inputs["keyName"], e.inputs["value"]) for e in mocks.of_type(KV)}
        assert got == {(kv_name(k), k, v) for k, v in original.items()}

    return settled(gateway).apply(check)


@pulumi.runtime.test
def test_removed_user_leaves_no_record(mocks: RecordingMocks, tmp_path: Path):
    """A user deleted from the stack file is in no shard the program deploys."""
    config = config_of("example")
    (ben,) = [u for u in config.tenants.users if u.id == "ben"]
    hashes = {k.sha256 for k in ben.keys}
    assert hashes

    def remove(settings: dict[str, Any]) -> None:
        settings["tenants"]["users"] = [u for u in settings["tenants"]["users"] if u["id"] != "ben"]

    path = edited_stack(tmp_path, "example", remove)
    gateway = run_program(mocks, "edited", path=path)

    def check(_):
        entries = kv_inputs(mocks)
        values = [json.loads(e["value"]) for e in entries.values()]
        assert not any(h in shard.get("keys", {}) for h in hashes for shard in values)
        assert not any(
            "ben" in org.get("users", {})
            for shard in values
            for org in shard.get("orgs", {}).values()
        )
        assert set(entries) == set(compile_records(config_of("edited", path)))

    return settled(gateway).apply(check)


# ------------------------------------------------------------------------ bad stacks


def test_bad_stack_stops_before_any_resource(mocks: RecordingMocks, tmp_path: Path) -> None:
    """A user pointing at a missing org fails naming stacks/Pulumi.<stack>.yaml and
    tenants.users[N].org, and the program declares no resource at all."""

    def break_org(settings: dict[str, Any]) -> None:
        settings["tenants"]["users"][2]["org"] = "umbrella"

    path = edited_stack(tmp_path, "example", break_org)
    errors: list[ConfigError] = []

    @pulumi.runtime.test
    def program():
        with pytest.raises(ConfigError) as info:
            run_program(mocks, "edited", path=path)
        errors.append(info.value)
        return pulumi.Output.from_input(None)

    program()  # returns only after every pending registration has finished
    (error,) = errors
    assert [(p.file, p.path) for p in error.problems] == [
        ("stacks/Pulumi.edited.yaml", "tenants.users[2].org")
    ]
    assert (
        "stacks/Pulumi.edited.yaml: tenants.users[2].org: unknown organization 'umbrella'"
        in str(error)
    )
    assert mocks.created == []
    assert pulumi.runtime.get_root_resource().outputs == {}


def test_alerts_without_their_signing_secret_stop_the_program(mocks: RecordingMocks) -> None:
    """A stack with alerts (the example) and no alertWebhookSecret: Pulumi's own error names
    the missing secret, before any resource."""
    errors: list[Exception] = []

    @pulumi.runtime.test
    def program():
        mocks.install("example")
        secrets = {k: v for k, v in DEFAULT_SECRETS.items() if k != "alertWebhookSecret"}
        set_stack_config("example", secrets)
        with pytest.raises(pulumi.ConfigMissingError) as info:
            runpy.run_path(str(MAIN))
        errors.append(info.value)
        return pulumi.Output.from_input(None)

    program()
    (error,) = errors
    assert "alertWebhookSecret" in str(error)
    assert mocks.created == []


def test_a_secret_set_in_plain_text_stops_the_program(mocks: RecordingMocks) -> None:
    """`pulumi config set adminApiKey ...` without --secret: refused by name, before any
    resource, and the value is never shown."""
    errors: list[ConfigError] = []

    @pulumi.runtime.test
    def program():
        mocks.install("dev")
        config = set_stack_config("dev")
        secrets = sorted(
            k
            for k in config
            if k.endswith((":aiGatewayToken", ":providerApiKeys", ":alertWebhookSecret"))
        )
        pulumi.runtime.set_all_config(config, secret_keys=secrets)  # adminApiKey left plain
        with pytest.raises(ConfigError) as info:
            runpy.run_path(str(MAIN))
        errors.append(info.value)
        return pulumi.Output.from_input(None)

    program()
    (error,) = errors
    assert [p.path for p in error.problems] == ["adminApiKey"]
    assert DEFAULT_SECRETS["adminApiKey"] not in str(error)
    assert mocks.created == []


# -------------------------------------------------------------------------- outputs


@pytest.mark.parametrize("stack", STACKS)
@pulumi.runtime.test
def test_stack_outputs(mocks: RecordingMocks, stack: str):
    """The stack exports the Worker URL, gateway id, KV namespace id and tenant counts."""
    gateway = run_program(mocks, stack)
    config = config_of(stack)
    counts = tenant_counts(config)
    if config.customDomain is not None:
        url = f"https://{config.customDomain.hostname}"
    else:
        url = f"https://{config.workerName}.{config.workersDevSubdomain}.workers.dev"
    outputs = pulumi.runtime.get_root_resource().outputs

    def check(args):
        exported = args[0]
        assert set(exported) >= {"workerUrl", "gatewayId", "kvNamespaceId", "tenantCounts"}
        assert exported["workerUrl"] == url
        assert exported["gatewayId"] == config.gatewayId
        assert exported["kvNamespaceId"] == NAMESPACE_ID
        assert exported["tenantCounts"] == {
            "organizations": counts.organizations,
            "users": counts.users,
            "keys": counts.keys,
            "activeKeys": counts.active_keys,
        }
        assert exported["workerSha256"] == render_worker(config).sha256

    return settled(gateway, pulumi.Output.from_input(outputs)).apply(check)


# -------------------------------------------------------------------------- preview


@pytest.mark.parametrize("stack", STACKS)
@pulumi.runtime.test
def test_preview_with_unknown_ids_does_not_crash(mocks: RecordingMocks, stack: str):
    """`pulumi preview` (ids unknown until created) declares the same resources."""
    gateway = run_program(mocks, stack, preview=True)
    config = config_of(stack)

    def check(_):
        assert len(mocks.of_type(KV)) == len(compile_records(config))
        assert len(mocks.of_type(SCRIPT)) == 1
        # The namespace id, and so the script's bindings, are unknown until apply.
        assert all(isinstance(r.inputs["namespaceId"], Unknown) for r in mocks.of_type(KV))
        assert isinstance(unwrap_secrets(mocks.one(SCRIPT).inputs["bindings"]), Unknown)

    return settled(gateway).apply(check)


@pytest.mark.parametrize("stack", STACKS)
def test_every_binding_is_one_the_provider_declares(stack: str):
    """Mocks accept anything: hold each binding to the provider's own typed input (its field
    names, and the rate limit's `simple` block), so a misspelt field fails here, not in `up`."""
    from pulumi_cloudflare._inputs import (
        WorkersScriptBindingArgsDict,
        WorkersScriptBindingSimpleArgsDict,
    )

    from provision.deploy.bindings import script_bindings

    declared = set(WorkersScriptBindingArgsDict.__annotations__)
    # the binding types the provider documents ("Available values: …", `_` written as `*`)
    # (the file's text: inspect.getsource parses the module's AST, which CPython 3.11 can fail
    # at with "AST constructor recursion depth mismatch" after the Pulumi runtime tests)
    text = Path(inspect.getsourcefile(WorkersScriptBindingArgsDict) or "").read_text()
    start = text.index("class WorkersScriptBindingArgsDict(")
    source = text[start : text.index("\nclass ", start + 1)]
    listed = re.search(r"Available values: (.*?)\.\n", source)
    assert listed, "the provider no longer lists its binding types"
    types = {t.strip().strip('"').replace("*", "_") for t in listed.group(1).split(",")}
    assert {"kv_namespace", "analytics_engine", "secret_text", "ratelimit"} <= types
    for binding in script_bindings(config_of(stack), NAMESPACE_ID, "adm", "aig", {}, "whsec"):
        assert set(binding) <= declared, binding
        assert binding["type"] in types, binding
        if binding["type"] == "ratelimit":
            assert set(binding["simple"]) <= set(WorkersScriptBindingSimpleArgsDict.__annotations__)
            assert binding["namespace_id"].isdigit() and int(binding["namespace_id"]) > 0
            assert binding["simple"]["period"] in (10, 60)


def _with_custom_and_bedrock(settings: dict[str, Any]) -> None:
    routing = settings["routing"]
    routing["models"] += [
        "custom-vllm/meta-llama/Llama-3.1-8B-Instruct",
        "aws-bedrock/amazon.nova-lite-v1:0",
    ]
    routing["customProviders"] = {"vllm": {"baseUrl": "https://vllm.internal.example/v1"}}
    routing["awsBedrock"] = {"region": "eu-central-1"}
    settings["pricing"]["models"] = {
        "custom-vllm/meta-llama/Llama-3.1-8B-Instruct": {
            "inputPerMTok": 0.05,
            "outputPerMTok": 0.08,
        }
    }


def test_a_custom_provider_is_created_on_the_account(mocks: RecordingMocks, tmp_path: Path):
    """routing.customProviders: one custom provider resource each, on the stack's account, with
    the server's base URL; the Worker may call custom-<slug>."""
    path = edited_stack(tmp_path, "dev", _with_custom_and_bedrock)
    config = config_of("dev", path)

    @pulumi.runtime.test
    def program():
        gateway = run_program(mocks, "edited", path=path)

        def check(_):
            (provider,) = [r for r in mocks.created if r.typ == "pulumi-python:dynamic:Resource"]
            assert provider.name == "gateway-custom-vllm"
            inputs = provider.inputs
            assert inputs["account_id"] == config.accountId
            assert inputs["slug"] == "vllm"
            assert inputs["base_url"] == "https://vllm.internal.example/v1"
            assert "__provider" in inputs, "a dynamic resource carries its provider"

        return settled(gateway).apply(check)

    program()


@pytest.mark.parametrize(
    "secret",
    ['{"accessKeyId": "AKIA1"}', "{not json", '{"accessKeyId": 1, "secretAccessKey": "s"}'],
    ids=["partial", "bad", "not-a-string"],
)
def test_a_bedrock_credential_that_is_not_aws_keys_stops_the_deploy(
    mocks: RecordingMocks, tmp_path: Path, secret: str
) -> None:
    """JSON that is not AWS keys would fail every request: the deploy stops, naming the fix,
    without showing the secret."""
    path = edited_stack(tmp_path, "dev", _with_custom_and_bedrock)
    secrets = {**DEFAULT_SECRETS, "providerApiKeys": {"aws-bedrock": secret}}

    @pulumi.runtime.test
    def program():
        return settled(run_program(mocks, "edited", path=path, secrets=secrets))

    with pytest.raises(ValueError, match="not AWS keys") as info:
        program()
    assert secret not in str(info.value)


def test_a_byok_alias_beside_a_key_for_the_same_provider_stops_the_deploy(
    mocks: RecordingMocks, tmp_path: Path
) -> None:
    def edit(settings: dict[str, Any]) -> None:
        settings["routing"]["byokAliases"] = {"openai": "team-prod"}

    path = edited_stack(tmp_path, "dev", edit)

    @pulumi.runtime.test
    def program():
        return settled(run_program(mocks, "edited", path=path))

    with pytest.raises(ValueError, match="byokAliases") as info:
        program()
    assert "openai" in str(info.value)
    assert DEFAULT_SECRETS["providerApiKeys"]["openai"] not in str(info.value)
