"""Durable Object migrations are planned from the live script's tag, never re-sent.

Pulumi tests model live state as the provider exposes it (the `getWorkersScripts` invoke,
mocked); successive deploys run against tests/fake_cloudflare.py, which refuses uploads the
way the Workers API does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pulumi
import pulumi_cloudflare as cloudflare
import pytest

from provision.deploy.gateway import SCRIPT_LISTING_LIMIT, script_migrations
from provision.deploy.migrations import MIGRATIONS, MigrationError, MigrationStep, pending
from provision.stack.config import resolve_stack
from tests.deploy_sim import deploy, run_program
from tests.fake_cloudflare import ApiError, FakeCloudflare
from tests.pulumi_support import (
    SCRIPTS_INVOKE,
    RecordingMocks,
    mocks_fixture,  # noqa: F401  (the `mocks` fixture)
)

SCRIPT = "cloudflare:index/workersScript:WorkersScript"
DEV = resolve_stack("dev")
WORKER = "llm-gateway-dev"  # the dev stack's workerName
V2 = MigrationStep("v2", new_sqlite_classes=("AuditLog",))
WITH_V2 = (*MIGRATIONS, V2)
V1_STEP = {"newSqliteClasses": ["UsageLedger"]}


def script_inputs(mocks: RecordingMocks) -> dict[str, Any]:
    (script,) = mocks.of_type(SCRIPT)
    return script.inputs


def run_failing(mocks: RecordingMocks, **kwargs: Any) -> Exception:
    with pytest.raises(Exception) as caught:
        run_program(mocks, DEV, **kwargs)
    return caught.value


# ------------------------------------------------------------------ the program under mocks


def test_a_fresh_account_gets_every_step(mocks: RecordingMocks):
    """No script yet: the upload carries all declared steps and no old_tag."""
    run_program(mocks, DEV)
    assert script_inputs(mocks)["migrations"] == {"newTag": "v1", "steps": [V1_STEP]}
    (invoke,) = mocks.invokes
    assert invoke.token == SCRIPTS_INVOKE
    assert invoke.args == {"accountId": "0123456789abcdef0123456789abcdef", "maxItems": 1000}


def test_another_script_in_the_account_is_not_ours(mocks: RecordingMocks):
    """A script of another name at v1 says nothing about ours: still a fresh start."""
    mocks.live_scripts = {"some-other-worker": "v1"}
    run_program(mocks, DEV)
    assert script_inputs(mocks)["migrations"] == {"newTag": "v1", "steps": [V1_STEP]}


def test_a_script_at_the_newest_tag_gets_no_migration(mocks: RecordingMocks):
    """At v1 with v1 declared: no `migrations` input at all (any upload is then accepted)."""
    mocks.live_scripts = {WORKER: "v1"}
    run_program(mocks, DEV)
    assert "migrations" not in script_inputs(mocks)


def test_a_script_one_step_behind_gets_exactly_that_step(mocks: RecordingMocks):
    """At v1 with v2 declared: only v2, with old_tag v1."""
    mocks.live_scripts = {WORKER: "v1"}
    run_program(mocks, DEV, migrations=WITH_V2)
    assert script_inputs(mocks)["migrations"] == {
        "oldTag": "v1",
        "newTag": "v2",
        "steps": [{"newSqliteClasses": ["AuditLog"]}],
    }


def test_a_script_without_a_tag_gets_every_step(mocks: RecordingMocks):
    """A script deployed before it had Durable Objects has no tag: every step, no old_tag."""
    mocks.live_scripts = {WORKER: None}
    run_program(mocks, DEV, migrations=WITH_V2)
    assert script_inputs(mocks)["migrations"] == {
        "newTag": "v2",
        "steps": [V1_STEP, {"newSqliteClasses": ["AuditLog"]}],
    }


def test_a_failed_read_is_a_clear_error_and_declares_nothing(
    mocks: RecordingMocks, caplog: pytest.LogCaptureFixture
):
    """If the live tag cannot be read, the deploy stops, says which script and why, and
    declares nothing (so no upload can re-send a migration)."""
    mocks.invoke_error = RuntimeError("403 Forbidden: Authentication error [code: 10000]")
    error = run_failing(mocks)
    # The SDK re-raises the failed invoke when the program ends; our error rides with it.
    assert "Authentication error" in str(error)
    logged = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert any(f"Worker script '{WORKER}'" in m and "Authentication error" in m for m in logged), (
        logged
    )
    assert mocks.created == []


def test_an_undeclared_live_tag_is_an_error(mocks: RecordingMocks):
    """A script at a tag this program does not know is refused, never guessed at."""
    mocks.live_scripts = {WORKER: "v9"}
    error = run_failing(mocks)
    assert isinstance(error, MigrationError)
    assert "'v9'" in str(error) and "declared: v1" in str(error)
    assert mocks.created == []


def test_a_truncated_listing_is_an_error(mocks: RecordingMocks):
    """A listing as long as the read's limit, without our script, proves nothing: an error."""
    mocks.live_scripts = {f"worker-{i}": "v1" for i in range(SCRIPT_LISTING_LIMIT)}
    error = run_failing(mocks)
    assert isinstance(error, MigrationError)
    assert f"'{WORKER}' is not among them" in str(error)


# ------------------------------------------------------------------ the plan, purely


@pytest.mark.parametrize(
    ("live", "declared", "expected"),
    [
        (None, MIGRATIONS, {"new_tag": "v1", "steps": [{"new_sqlite_classes": ["UsageLedger"]}]}),
        ("v1", MIGRATIONS, None),
        ("v2", WITH_V2, None),
        ("v1", WITH_V2, {"old_tag": "v1", "new_tag": "v2", "steps": [V2.as_step()]}),
        (None, (), None),
    ],
)
def test_pending_steps(live: str | None, declared: tuple[MigrationStep, ...], expected: Any):
    """Only the steps after the live tag, with old_tag set when there is one."""
    assert pending(live, "w", declared) == expected


def test_duplicate_tags_are_refused():
    """Two steps with one tag would make the live tag ambiguous."""
    with pytest.raises(MigrationError, match="duplicate"):
        pending(None, "w", (MigrationStep("v1"), MigrationStep("v1")))


def test_every_step_kind_fits_the_providers_args():
    """Renames and deletions convert to the provider's Args types, field names checked by them."""
    step = MigrationStep(
        "v3", new_classes=("A",), renamed_classes=(("B", "C"),), deleted_classes=("D",)
    )
    args = script_migrations(pending("v2", "w", (*WITH_V2, step)))
    assert isinstance(args, cloudflare.WorkersScriptMigrationsArgs)
    (converted,) = pulumi.get(args, "steps")
    assert pulumi.get(converted, "new_classes") == ["A"]
    assert pulumi.get(pulumi.get(converted, "renamed_classes")[0], "from_") == "B"
    assert pulumi.get(converted, "deleted_classes") == ["D"]


# ------------------------------------------------------------------ successive deploys


def edited_dev_stack(tmp_path: Path, price: float) -> Path:
    text = DEV.read_text(encoding="utf-8")
    path = tmp_path / "Pulumi.sim.yaml"
    # gpt-4o-mini's own price (the catalog's is 0.15: the same Worker when equal)
    own = f"openai/gpt-4o-mini: {{inputPerMTok: {price}, outputPerMTok: 0.60, cachedInputPerMTok: 0.075}}"
    edited = (
        text
        if price == 0.15
        else text.replace("    models: {}\n", f"    models:\n      {own}\n", 1)
    )
    assert (edited == text) == (price == 0.15)
    path.write_text(edited, encoding="utf-8")
    return path


def test_later_deploys_that_change_the_worker_are_accepted(mocks: RecordingMocks, tmp_path: Path):
    """First up creates v1; ups that change prices and code upload without a migration; a new
    declared step is applied once, from v1 — and the API (fake) accepts every upload."""
    fake = FakeCloudflare()
    state = deploy(fake, mocks, edited_dev_stack(tmp_path, 0.15), {})
    assert fake.scripts[WORKER].migration_tag == "v1"

    for price in (0.2, 0.25):  # each changes the rendered script, so it is uploaded again
        state = deploy(fake, mocks, edited_dev_stack(tmp_path, price), state)
        assert "migrations" not in state["gateway-worker"].inputs

    state = deploy(fake, mocks, edited_dev_stack(tmp_path, 0.3), state, migrations=WITH_V2)
    assert fake.scripts[WORKER].migration_tag == "v2"
    assert fake.scripts[WORKER].classes == {"UsageLedger", "AuditLog"}
    assert fake.scripts[WORKER].uploads == 4

    state = deploy(fake, mocks, edited_dev_stack(tmp_path, 0.35), state, migrations=WITH_V2)
    assert fake.scripts[WORKER].uploads == 5


def test_the_fake_refuses_what_the_api_refuses():
    """Re-sending v1 to a script at v1 fails (10079), as the old program's second deploy did;
    a replayed class fails (10074); a binding to a class no migration created fails (10061)."""
    fake = FakeCloudflare()
    v1 = {"new_tag": "v1", "steps": [{"new_sqlite_classes": ["UsageLedger"]}]}
    binding = [{"type": "durable_object_namespace", "class_name": "UsageLedger"}]
    with pytest.raises(ApiError) as missing:
        fake.upload_script("w", {"bindings": binding})
    assert missing.value.code == 10061
    fake.upload_script("w", {"migrations": v1, "bindings": binding})
    with pytest.raises(ApiError) as again:
        fake.upload_script("w", {"migrations": v1, "bindings": binding})
    assert (again.value.status, again.value.code) == (412, 10079)
    with pytest.raises(ApiError) as replay:
        fake.upload_script("w", {"migrations": {"old_tag": "v1", **v1}, "bindings": binding})
    assert replay.value.code == 10074
    fake.upload_script("w", {"bindings": binding})  # no migration: accepted
    assert fake.scripts["w"].migration_tag == "v1"
