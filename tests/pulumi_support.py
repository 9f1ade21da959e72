"""Pulumi-with-mocks support: a recording mock, a per-test runtime fixture, and a config
loader that hands a stack file to the program the way the Pulumi CLI does.

Follows the verified pattern in /work/shared/pulumi-notes.md §2: one event loop and one
`set_mocks` per test (never at module scope), compare sets (registration order is not
deterministic), and unwrap the secret sentinel before asserting on raw mock inputs.
Import the fixture explicitly: `from tests.pulumi_support import mocks_fixture  # noqa: F401`
(registered under the name `mocks`).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pulumi
import pytest
import yaml
from pulumi.runtime import settings as runtime_settings

from provision.stack.config import resolve_stack

ROOT = Path(__file__).resolve().parent.parent
MAIN = ROOT / "__main__.py"
PROJECT = "llm-gateway"

# What `pulumi.runtime` uses to mark a secret value inside serialized inputs (notes §2.3.6).
SECRET_SIG = "4dabf18193072939515e22adb298388d"
SECRET_SENTINEL = "1b47061264138c4ac30d75fd1eb44270"

# Secret config a test stack is run with: distinctive values, so a leak is easy to spot.
DEFAULT_SECRETS: dict[str, Any] = {
    "adminApiKey": "admin-secret-0f3c9a7e",
    "aiGatewayToken": "aig-secret-5b1d2e88",
    "providerApiKeys": {"openai": "sk-openai-secret-77aa", "anthropic": "sk-ant-secret-91bc"},
    "alertWebhookSecret": "whsec-secret-3e9d40c1",
}


SCRIPTS_INVOKE = "cloudflare:index/getWorkersScripts:getWorkersScripts"


class RecordingMocks(pulumi.runtime.Mocks):
    """Records every `new_resource` call; the id is `<logical name>-id` (unknown in preview).

    Live state is modelled the way the provider exposes it: `get_workers_scripts` answers from
    `live_scripts` (script name → migration tag, None for no tag; empty = a fresh account), or
    raises `invoke_error` when set.
    """

    def __init__(self) -> None:
        self.created: list[pulumi.runtime.MockResourceArgs] = []
        self.invokes: list[pulumi.runtime.MockCallArgs] = []
        self.live_scripts: dict[str, str | None] = {}
        self.invoke_error: Exception | None = None
        self.preview = False

    def install(self, stack: str = "dev", *, preview: bool = False) -> RecordingMocks:
        """(Re)install these mocks as the runtime of `stack`: fresh root Stack, empty config."""
        self.created.clear()
        self.invokes.clear()
        self.preview = preview
        # set_mocks keeps an existing root Stack, so exports would pile up across tests.
        runtime_settings.ROOT.set(None)
        pulumi.runtime.set_all_config({}, secret_keys=[])
        pulumi.runtime.set_mocks(self, project=PROJECT, stack=stack, preview=preview)
        return self

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict]:
        self.created.append(args)
        # Notes §2.3.4/§2.3.7: the id comes only from this tuple; "" makes it unknown.
        return ("" if self.preview else f"{args.name}-id"), dict(args.inputs)

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict:
        self.invokes.append(args)
        if args.token != SCRIPTS_INVOKE:
            raise NotImplementedError(f"no mock for invoke {args.token}")
        if self.invoke_error is not None:
            raise self.invoke_error
        results = [
            {"id": name, "migrationTag": tag or ""} for name, tag in self.live_scripts.items()
        ]
        return {"accountId": args.args["accountId"], "results": results}

    def of_type(self, typ: str) -> list[pulumi.runtime.MockResourceArgs]:
        return [r for r in self.created if r.typ == typ]

    def one(self, typ: str) -> pulumi.runtime.MockResourceArgs:
        found = self.of_type(typ)
        assert len(found) == 1, f"expected exactly one {typ}, got {[r.name for r in found]}"
        return found[0]


@pytest.fixture(name="mocks")
def mocks_fixture() -> Iterator[RecordingMocks]:
    """Mocks for stack `dev` on a per-test event loop; `mocks.install(...)` switches stack."""
    loop = asyncio.new_event_loop()  # per-test loop (py3.14: pulumi/pulumi#24338)
    asyncio.set_event_loop(loop)
    yield RecordingMocks().install("dev")
    pulumi.runtime.set_all_config({}, secret_keys=[])
    loop.close()
    asyncio.set_event_loop(None)


# ------------------------------------------------------------------ stack config as the CLI


class _CliLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """YAML as the Pulumi CLI reads it: timestamp-looking scalars stay text (go-yaml v3)."""


_CliLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def cli_value(value: Any) -> str:
    """One config value as the engine passes it: strings as-is, everything else as JSON."""
    if isinstance(value, str):
        return value
    # default=str only matters for documents parsed with a date-resolving loader.
    return json.dumps(value, default=str)


def load_stack_config(stack_or_path: str | Path) -> dict[str, str]:
    """`{"llm-gateway:tenants": "<json>", ...}` for a stack name or a stack file path."""
    document = yaml.load(resolve_stack(stack_or_path).read_text(encoding="utf-8"), _CliLoader)
    return {str(k): cli_value(v) for k, v in (document.get("config") or {}).items()}


def settings_config(settings: dict[str, Any]) -> dict[str, str]:
    """Stack settings (namespace removed) as the engine passes them, without a file."""
    return {f"{PROJECT}:{k}": cli_value(v) for k, v in settings.items()}


def set_stack_config(
    stack_or_path: str | Path | dict[str, Any], secrets: dict[str, Any] | None = None
) -> dict[str, str]:
    """Install a stack's config (a stack name, a file, or its settings) plus secret config, as
    `pulumi up` would; returns it."""
    secrets = DEFAULT_SECRETS if secrets is None else secrets
    if isinstance(stack_or_path, dict):
        config = settings_config(stack_or_path)
    else:
        config = load_stack_config(stack_or_path)
    secret_config = {f"{PROJECT}:{k}": cli_value(v) for k, v in secrets.items()}
    config.update(secret_config)
    pulumi.runtime.set_all_config(config, secret_keys=sorted(secret_config))
    return config


def unwrap_secrets(value: Any) -> Any:
    """Raw mock inputs with every secret sentinel wrapper replaced by its value."""
    if isinstance(value, dict):
        if value.get(SECRET_SIG) == SECRET_SENTINEL:
            return unwrap_secrets(value.get("value"))
        return {k: unwrap_secrets(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unwrap_secrets(v) for v in value]
    return value


def strip_secrets(value: Any) -> Any:
    """Raw mock inputs with every secret-wrapped part removed (what a non-secret reader sees)."""
    if isinstance(value, dict):
        if value.get(SECRET_SIG) == SECRET_SENTINEL:
            return "<secret>"
        return {k: strip_secrets(v) for k, v in value.items()}
    if isinstance(value, list):
        return [strip_secrets(v) for v in value]
    return value
