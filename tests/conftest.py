"""Fixtures for the end-to-end tests: the e2e stack's Worker running for real in workerd."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from provision.local.runtime import LocalGateway
from provision.stack.config import resolve_stack
from tests.admin_support import ADMIN_STACK, Admin, Sent, send_settled
from tests.support import E2E_STACK, Emulator, WorkerTestHooks


@pytest.fixture(scope="module")
def dev() -> Iterator[LocalGateway]:
    """What `make dev` runs (the dev stack, test hooks on), one per module that asks for it."""
    with LocalGateway(resolve_stack("dev"), test_hooks=True) as running:
        yield running


@pytest.fixture(scope="session")
def gateway() -> Iterator[LocalGateway]:
    """One local runtime per test process (xdist worker), on free ports."""
    with LocalGateway(E2E_STACK, test_hooks=True) as running:
        yield running


@pytest.fixture(scope="session")
def emulator_session(gateway: LocalGateway) -> Iterator[Emulator]:
    assert gateway.emulator_url
    control = Emulator(gateway.emulator_url)
    yield control
    control.close()


@pytest.fixture
def emulator(emulator_session: Emulator, gateway: LocalGateway) -> Iterator[Emulator]:
    """Emulator controls; faults and config changes never leak into the next test."""
    yield emulator_session
    emulator_session.clear_faults()
    assert gateway.config is not None
    emulator_session.configure(
        {gateway.config.gatewayId: {"token": gateway.secrets.ai_gateway_token}}
    )


@pytest.fixture
def http(gateway: LocalGateway) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gateway.worker_url, timeout=30) as client:
        yield client


@pytest.fixture(scope="session")
def hooks(gateway: LocalGateway) -> Iterator[WorkerTestHooks]:
    """Test-only views of the ledger and Worker-owned KV (test render only)."""
    control = WorkerTestHooks(gateway.worker_url)
    yield control
    control.close()


# ------------------------------------------- modules with a stack of their own (stack_gateway)


@pytest.fixture(scope="module")
def ledger(gateway: LocalGateway) -> Iterator[WorkerTestHooks]:
    """The test hooks of the module's gateway (its own stack's, or the e2e one)."""
    control = WorkerTestHooks(gateway.worker_url)
    yield control
    control.close()


@pytest.fixture
def upstream(gateway: LocalGateway) -> Iterator[Emulator]:
    """The module's emulator; its faults are cleared before and after each test."""
    assert gateway.emulator_url
    control = Emulator(gateway.emulator_url)
    control.clear_faults()
    yield control
    control.clear_faults()
    control.close()


# ---------------------------------------------------------------- the admin stack (one per worker)


@pytest.fixture(scope="session")
def admin_gateway() -> Iterator[LocalGateway]:
    """The admin stack's runtime, on free ports, with test hooks (ledger fault injection)."""
    with LocalGateway(ADMIN_STACK, test_hooks=True) as running:
        yield running


@pytest.fixture(scope="session")
def admin(admin_gateway: LocalGateway) -> Iterator[Admin]:
    client = Admin(admin_gateway)
    yield client
    client.close()


@pytest.fixture(scope="session")
def workload(admin: Admin, admin_gateway: LocalGateway) -> dict[str, Sent]:
    """Known usage for nina (2 requests) and omar (1); no other test sends for them."""
    nina = send_settled(
        admin,
        admin_gateway,
        "nina",
        "key_nina_main",
        ("openai/gpt-4o", "Summarise the quarter. emulate:tokens=4321", 5000),
        ("openai/gpt-4o-mini", "Hello there, how are you today?", 100),
    )
    omar = send_settled(
        admin,
        admin_gateway,
        "omar",
        "key_omar_main",
        ("anthropic/claude-sonnet-4-5", "Draft the memo — naïve café ☕ emulate:tokens=777", 1000),
    )
    return {"nina": nina, "omar": omar}
