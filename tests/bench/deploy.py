"""`make bench-deploy`: what a `pulumi up` of a company-size stack declares and costs.

For 1,000 and 10,000 users (one key each, 50 per organization; tests/scale.py), this checkout
and a baseline checkout (default: wave 1, one WorkersKv per record) are measured in the same
run by the same probe (tests/bench/deploy_probe.py, a fresh interpreter each): resources
declared, program evaluation time under mocks (the provider import excluded), peak memory,
and Cloudflare API calls for a first `up` and for each priced change. Calls are counted from
what changes (records, script) with the provider's per-operation costs
(provision/deploy/cloudflare_api.py); tests/test_deploy_scale.py holds this checkout's counts to what
the fake Cloudflare API counts.

    BENCH_DEPLOY_BASELINE=<git ref> make bench-deploy     (empty: no baseline)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from provision.deploy.cloudflare_api import READS_PER_RUN, WINDOW_CALLS
from tests.scale import CHANGES, changed, scale_settings, write_stack
from tests.support import ROOT

PROBE = Path(__file__).resolve().parent / "deploy_probe.py"
SIZES = (1_000, 10_000)
WAVE_1 = "fda1755"  # the last commit with one WorkersKv per record
TARGETS = {"resources": 400, "first up": 400, "one user's limit": 3, "one user added": 3,
           "one key revoked": 3, "catalog change": 3}  # fmt: skip
CALL_METRICS = {"first up", *CHANGES}


def probe(tree: Path, stack: Path, *, program: bool = False) -> dict[str, Any]:
    args = [sys.executable, str(PROBE), str(tree), str(stack)] + (["--program"] if program else [])
    out = subprocess.run(args, cwd=tree, capture_output=True, text=True, timeout=1800)
    if out.returncode != 0:
        raise RuntimeError(f"probe of {tree} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def change_calls(before: dict[str, Any], after: dict[str, Any], reads: int) -> int:
    """One call per KV record created, updated or deleted, one for the script if it changed."""
    old, new = before["records"], after["records"]
    records = sum(1 for k in old.keys() | new.keys() if old.get(k) != new.get(k))
    return records + (before["script"] != after["script"]) + reads


def measure(tree: Path, reads: int, workdir: Path) -> dict[int, dict[str, Any]]:
    results = {}
    for users in SIZES:
        settings = scale_settings(users)
        base_path = write_stack(settings, workdir / f"Pulumi.s{users}.yaml")
        base = probe(tree, base_path, program=True)
        program = base["program"]
        row = {
            "resources": program["resources"],
            "program evaluation s": program["evalSeconds"],
            "provider import s": program["importSeconds"],
            "peak RSS MB (with import)": program["peakRssMb"],
            "first up": program["resources"] + reads,
        }
        for label, change in CHANGES.items():
            path = write_stack(changed(settings, change), workdir / f"Pulumi.c{users}.yaml")
            row[label] = change_calls(base, probe(tree, path), reads)
        results[users] = row
        print(f"  measured {tree.name or tree} at {users:,} users", file=sys.stderr)
    return results


def baseline_tree(ref: str, into: Path) -> Path | None:
    tree = into / "baseline"
    made = subprocess.run(
        ["git", "worktree", "add", "--detach", str(tree), ref],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    if made.returncode != 0:
        print(f"no baseline: cannot check out {ref}: {made.stderr.strip()}", file=sys.stderr)
        return None
    return tree


def cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.2f}"
    return f"{value:,}"


def report(
    now: dict[int, dict[str, Any]], base: dict[int, dict[str, Any]] | None, ref: str
) -> None:
    print("Deploy at company size: one key per user, 50 users per organization")
    print(f"baseline: {ref} (one WorkersKv per record), measured in this run" if base else "")
    print(f"API budget: {WINDOW_CALLS:,} calls per 5 minutes; calls include the program's reads")
    header = f"{'users':>7}  {'':<34}{'baseline':>12}{'now':>12}{'now/base':>10}  target"
    print(header)
    print("-" * len(header))
    for users, row in now.items():
        for i, (metric, value) in enumerate(row.items()):
            old = base[users][metric] if base else None
            ratio = f"{value / old:.3f}x" if old else ""
            target = TARGETS.get(metric)
            verdict = ""
            if target is not None and users == max(SIZES):
                verdict = f"<= {target} {'ok' if value <= target else 'MISSED'}"
            metric_label = f"API calls: {metric}" if metric in CALL_METRICS else metric
            print(
                f"{(f'{users:,}' if i == 0 else ''):>7}  {metric_label:<34}"
                f"{(cell(old) if old is not None else '-'):>12}{cell(value):>12}{ratio:>10}  {verdict}"
            )
        print()


def main() -> int:
    ref = os.environ.get("BENCH_DEPLOY_BASELINE", WAVE_1)
    with tempfile.TemporaryDirectory(prefix="bench-deploy-") as tmp:
        workdir = Path(tmp)
        base_results = None
        tree = baseline_tree(ref, workdir) if ref else None
        try:
            if tree is not None:
                base_results = measure(tree, 0, workdir)  # wave 1 made no reads
            now = measure(ROOT, READS_PER_RUN, workdir)
        finally:
            if tree is not None:
                subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT)
        report(now, base_results, ref)
    return 0


if __name__ == "__main__":
    sys.exit(main())
