"""Deploys at company size: 1,000 and 10,000 users (one key each, 50 per organization).

Each size is deployed to the fake Cloudflare API (tests/fake_cloudflare.py: the 1,200-call
window, the migration rules, KV limits), then every priced change of tests/scale.py is
deployed on top of it; the fake counts the requests. The targets are the issue's: at most
400 resources and 400 calls for a first `up`, at most 3 calls for a one-user change and for a
catalog change. `provision plan` must predict exactly what the fake counted.
"""

from __future__ import annotations

import copy

import pytest

from provision.deploy.plan import make_plan, secret_fingerprints, stack_resources
from provision.stack.config import parse_settings
from tests.deploy_sim import deploy
from tests.fake_cloudflare import FakeCloudflare
from tests.pulumi_support import (
    DEFAULT_SECRETS,
    RecordingMocks,
    mocks_fixture,  # noqa: F401  (the `mocks` fixture)
)
from tests.scale import CHANGES, changed, scale_settings

TARGET_RESOURCES = 400
TARGET_FIRST_UP = 400
TARGET_SMALL_CHANGE = 3
SMALL = (
    "one user's limit",
    "one user added",
    "one key revoked",
    "catalog change",
)


@pytest.mark.slow
@pytest.mark.parametrize("users", [1_000, 10_000])
def test_deploys_fit_one_api_window_at_company_size(mocks: RecordingMocks, users: int):
    """Resources and API calls stay bounded at 10,000 users, and the plan predicts them."""
    base = scale_settings(users)
    fake = FakeCloudflare()
    state = deploy(fake, mocks, base, {})
    first_up = fake.calls
    assert len(state) <= TARGET_RESOURCES, len(state)
    assert first_up <= TARGET_FIRST_UP, first_up
    records = {r.inputs["key_name"] for r in state.values() if r.kind == "WorkersKv"}
    assert set(fake.kv) == records  # every record written, nothing else
    assert fake.scripts["llm-gateway-prod"].migration_tag == "v1"

    # The next up sends no migration; the provider kept the first one in state, so the script
    # is uploaded once more without it (accepted). From then on an unchanged stack costs the
    # one read of the live tag.
    for expected in (2, 1):
        start = fake.calls
        state = deploy(fake, mocks, base, state)
        assert fake.calls - start == expected

    secrets = secret_fingerprints(DEFAULT_SECRETS)
    before_plan = stack_resources(parse_settings(base, "base"), secrets)
    for label, change in CHANGES.items():
        live = copy.deepcopy(fake)
        live.now += 600  # a fresh rate-limit window for each change
        edited = changed(base, change)
        start = live.calls
        deploy(live, mocks, edited, state)
        calls = live.calls - start
        predicted = make_plan(before_plan, stack_resources(parse_settings(edited, label), secrets))
        assert predicted.calls == calls, (label, predicted.changes)
        if label in SMALL:
            assert calls <= TARGET_SMALL_CHANGE, (label, calls, predicted.changes)
