"""`provision plan`: resources and API calls of a stack change, as `pulumi up` will make them.

The plan is computed without Pulumi from provision/deploy/resources.py; these tests hold it to what
the program really declares under mocks (the same resource names, the same changes) and to
the requests the fake Cloudflare API counts, and check the CLI a reviewer runs.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from provision.deploy.cloudflare_api import WINDOW_CALLS
from provision.deploy.plan import (
    NAMESPACE_PLACEHOLDER,
    Change,
    Plan,
    budget_warning,
    diff_resources,
    make_plan,
    secret_fingerprints,
    stack_resources,
)
from provision.deploy.resources import Declared, declared_resources
from provision.stack.config import parse_settings
from tests.deploy_sim import deploy, run_program
from tests.fake_cloudflare import FakeCloudflare, Resource
from tests.pulumi_support import (
    DEFAULT_SECRETS,
    RecordingMocks,
    mocks_fixture,  # noqa: F401  (the `mocks` fixture)
)
from tests.scale import CHANGES, changed, scale_settings
from tests.support import ROOT, git, run_cli

PROVISION = ROOT / ".venv" / "bin" / "provision"
SECRETS = secret_fingerprints(DEFAULT_SECRETS)


def as_declared(state: dict[str, Resource]) -> dict[str, Declared]:
    """What the program registered, in the plan's terms (the namespace id and the live
    migration plan exist only at deploy time)."""
    deploy_time = {"namespace_id", "migrations"}
    return {
        name: Declared(r.kind, name, {k: v for k, v in r.inputs.items() if k not in deploy_time})
        for name, r in state.items()
    }


def without_values(resources: dict[str, Declared]) -> dict[str, Declared]:
    """Bindings with secret values and the namespace id blanked: what no stack file says."""

    def blank(binding: dict[str, Any]) -> dict[str, Any]:
        binding = {k: v for k, v in binding.items() if v is not None}
        if binding["type"] == "secret_text":
            binding["text"] = "<secret>"
        if binding["type"] == "kv_namespace":
            binding["namespace_id"] = NAMESPACE_PLACEHOLDER
        return binding

    out = {}
    for name, r in resources.items():
        inputs = dict(r.inputs)
        if "bindings" in inputs:
            inputs["bindings"] = [blank(b) for b in inputs["bindings"]]
        out[name] = Declared(r.kind, name, inputs)
    return out


def test_the_plan_declares_what_the_program_declares(mocks: RecordingMocks):
    """Every resource the program registers is in the plan, by name, kind and inputs, the
    script's bindings included (their secret values aside)."""
    settings = scale_settings(120)
    registered = as_declared(run_program(mocks, settings))
    planned = stack_resources(parse_settings(settings, "scale"), SECRETS)
    assert without_values(registered) == without_values(planned)
    assert {r.kind for r in declared_resources(parse_settings(settings, "s")).values()} == {
        r.kind for r in registered.values()
    }


@pytest.mark.parametrize("label", list(CHANGES))
def test_the_plan_predicts_the_programs_changes_and_the_api_calls(
    mocks: RecordingMocks, label: str
):
    """For each priced change, the plan's creates/updates/deletes are the difference between
    two real program runs, and its call count is what the fake API counts for them."""
    base = scale_settings(120)
    edited = changed(base, CHANGES[label])
    fake = FakeCloudflare()
    state = deploy(fake, mocks, base, {})
    state = deploy(fake, mocks, base, state)  # settle: the migration is no longer sent
    start = fake.calls
    after = deploy(fake, mocks, edited, state)

    plan = make_plan(
        stack_resources(parse_settings(base, "base"), SECRETS),
        stack_resources(parse_settings(edited, "edited"), SECRETS),
    )
    observed = {(c.name, c.action) for c in diff_resources(as_declared(state), as_declared(after))}
    assert {(c.name, c.action) for c in plan.changes} == observed
    assert plan.calls == fake.calls - start


def test_a_changed_secret_updates_the_script():
    """A secret's ciphertext changing in the stack file is a script update (one call), and a
    provider key added is a new binding."""
    config = parse_settings(scale_settings(10), "s")
    before = stack_resources(config, secret_fingerprints({"adminApiKey": {"secure": "v1:a"}}))
    after = stack_resources(config, secret_fingerprints({"adminApiKey": {"secure": "v1:b"}}))
    assert make_plan(before, after).changes == [
        Change("WorkersScript", "gateway-worker", "update", ("bindings",))
    ]
    keyed = stack_resources(
        config,
        secret_fingerprints(
            {"adminApiKey": {"secure": "v1:a"}, "providerApiKeys": {"openai": {"secure": "v1:k"}}}
        ),
    )
    names = {b["name"] for b in keyed["gateway-worker"].inputs["bindings"]}
    assert "PROVIDER_KEY_OPENAI" in names
    assert not any("v1:" in json.dumps(b) for b in keyed["gateway-worker"].inputs["bindings"])


def test_renaming_the_worker_replaces_it_and_what_hangs_on_it():
    """A new workerName cannot be updated in place: script, cron and subdomain are replaced."""
    settings = scale_settings(10)
    renamed = {**settings, "workerName": "llm-gateway-next"}
    plan = make_plan(
        stack_resources(parse_settings(settings, "a"), SECRETS),
        stack_resources(parse_settings(renamed, "b"), SECRETS),
    )
    actions = {c.name: c.action for c in plan.changes}
    assert actions["gateway-worker"] == "replace"
    assert actions["gateway-cron"] == "replace"
    assert actions["gateway-workers-dev"] == "replace"
    assert actions["gateway-domain"] == "replace"  # its service is the script's name
    assert actions["gateway-kv"] == "update"  # the namespace title follows the name


def test_a_change_over_one_window_is_warned_about():
    """More calls than one 5-minute window allows is a warning that says what to do."""
    many = [Change("WorkersKv", f"kv-{i}", "update", ("value",)) for i in range(WINDOW_CALLS)]
    plan = Plan(changes=many, declared=len(many), refresh_calls=2 * len(many))
    assert plan.over_budget
    warning = budget_warning(plan)
    assert warning and "1,200" in warning and "Split the change" in warning

    small = Plan(changes=many[:700], declared=700, refresh_calls=1400)
    assert not small.over_budget
    assert "pulumi refresh` on its own first" in (budget_warning(small) or "")
    assert budget_warning(Plan(changes=many[:3], declared=280, refresh_calls=554)) is None


# ---------------------------------------------------------------------------- the CLI


def provision(*args: Any, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return run_cli(*args, cwd=cwd)


@pytest.fixture
def repo_stack(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    (repo / "stacks").mkdir(parents=True)
    stack = repo / "stacks" / "Pulumi.prod.yaml"
    shutil.copyfile(ROOT / "stacks" / "Pulumi.example.yaml", stack)
    git(repo, "init", "-q")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "base")
    return stack


def edit(stack: Path, change) -> None:
    document = yaml.safe_load(stack.read_text())
    settings = {k.removeprefix("llm-gateway:"): v for k, v in document["config"].items()}
    change(settings)
    document["config"] = {f"llm-gateway:{k}": v for k, v in settings.items()}
    stack.write_text(yaml.safe_dump(document, sort_keys=False))


def test_plan_cli_lists_the_changes_and_their_calls(repo_stack: Path):
    """`provision plan` names each resource action and sums the calls of `pulumi up`."""
    edit(repo_stack, lambda s: s["tenants"]["organizations"][0].update(monthlyBudgetUsd=9000))
    result = provision("plan", "--stack", repo_stack, "--base", "HEAD")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("pulumi up: ")
    assert "Cloudflare API calls of 1,200 per 5 minutes" in lines[0]
    assert any(line.startswith("  ~  WorkersKv gateway-kv-dir.") for line in lines)
    assert any("getWorkersScripts" in line for line in lines)
    assert result.stderr == ""  # well inside the budget: no warning

    as_json = json.loads(
        provision("plan", "--stack", repo_stack, "--format", "json", "--strict").stdout
    )
    updates = [c for c in as_json["changes"] if c["action"] == "update"]
    assert as_json["calls"] == len(as_json["changes"]) + 1 == len(updates) + 1
    assert as_json["overBudget"] is False and as_json["windowCalls"] == 1200


def test_plan_of_a_new_stack_prices_the_first_up(repo_stack: Path):
    """A stack file that is new at the base is a first `up`: every resource is created."""
    result = provision("plan", "--stack", repo_stack, "--base", "HEAD~0", "--format", "json")
    assert json.loads(result.stdout)["counts"]["create"] == 0  # unchanged since HEAD
    new = repo_stack.with_name("Pulumi.new.yaml")
    shutil.copyfile(repo_stack, new)
    body = json.loads(provision("plan", "--stack", new, "--format", "json").stdout)
    assert body["counts"]["create"] == body["declared"]
    assert body["calls"] == body["declared"] + 1


def test_diff_carries_the_deploy_cost(repo_stack: Path):
    """`provision diff` ends with the one-line deploy cost (for the PR comment): ben has one
    key, so his new limit rewrites his key's shard and his org's directory shard."""
    edit(repo_stack, lambda s: s["tenants"]["users"][1].update(monthlyLimitUsd=321))
    out = provision("diff", "--stack", repo_stack, "--base", "HEAD").stdout
    assert out.splitlines()[-1].startswith("pulumi up: 3 Cloudflare API calls")
    markdown = provision("diff", "--stack", repo_stack, "--format", "markdown").stdout
    assert "**Deploy:** pulumi up: 3 Cloudflare API calls" in markdown
