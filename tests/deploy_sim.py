"""Successive `pulumi up`s against the fake Cloudflare API: the program runs for real under
mocks (reading live state from the fake, as its data source would), and the fake performs and
counts what the engine would send for the difference to the previous run.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pulumi

from provision.deploy.migrations import MIGRATIONS, MigrationStep
from provision.deploy.program import build
from tests.fake_cloudflare import FakeCloudflare, Resource, snake_keys
from tests.pulumi_support import RecordingMocks, set_stack_config, unwrap_secrets

COMPONENT = "llm-gateway:index:Gateway"


def snapshot(mocks: RecordingMocks) -> dict[str, Resource]:
    """The resources of the last run by logical name, inputs unwrapped and in snake_case."""
    return {
        r.name: Resource(r.typ.rsplit(":", 1)[-1], snake_keys(unwrap_secrets(r.inputs)))
        for r in mocks.created
        if r.typ != COMPONENT
    }


def run_program(
    mocks: RecordingMocks,
    stack_path: Path | dict[str, Any],
    *,
    stack: str = "sim",
    migrations: tuple[MigrationStep, ...] = MIGRATIONS,
    secrets: dict[str, Any] | None = None,
) -> dict[str, Resource]:
    """One run of the program (what `pulumi up` evaluates) on a stack file or its settings;
    the resources it declares."""

    @pulumi.runtime.test
    def program() -> pulumi.Output[Any]:
        mocks.install(stack)
        set_stack_config(stack_path, secrets)
        gateway = build(migrations=migrations)
        return pulumi.Output.all(*[c.urn for c in gateway.resources])

    program()
    return snapshot(mocks)


def deploy(
    fake: FakeCloudflare,
    mocks: RecordingMocks,
    stack_path: Path | dict[str, Any],
    state: dict[str, Resource],
    *,
    migrations: tuple[MigrationStep, ...] = MIGRATIONS,
) -> dict[str, Resource]:
    """One `pulumi up`: the program reads the live scripts, then the engine applies the diff."""
    mocks.live_scripts = fake.list_scripts()
    after = run_program(mocks, stack_path, migrations=migrations)
    fake.apply(state, after)
    return after


def new_event_loop() -> asyncio.AbstractEventLoop:
    """A loop of its own for a run outside pytest's fixtures (pulumi-notes §2.3.10)."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    return loop
