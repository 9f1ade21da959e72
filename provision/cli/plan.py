"""`provision plan`: the Cloudflare resources and API calls a stack change makes on `pulumi up`,
and whether they fit one API window."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from provision.cli.diff import load_versions_or_report
from provision.deploy.plan import budget_warning, plan_versions, render_json, render_text


def run(args: Any) -> int:
    versions = load_versions_or_report(args)
    if versions is None:
        return 1
    plan = plan_versions(versions)
    print(render_json(plan) if args.format == "json" else render_text(plan))
    warning = budget_warning(plan)
    if warning:
        print(warning, file=sys.stderr)
    return 2 if (args.strict and plan.over_budget) else 0


def configure(parser: argparse.ArgumentParser) -> None:
    """The arguments of `provision plan` (its help line is in provision/cli/__init__.py)."""
    parser.add_argument("--stack", required=True, help="stack name (dev) or path")
    parser.add_argument("--base", default="HEAD", help="git ref to compare against (default: HEAD)")
    parser.add_argument("--format", choices=["text", "json"], default="text")
    parser.add_argument(
        "--strict", action="store_true", help="exit 2 when the change exceeds one API window"
    )
    parser.set_defaults(handler=run)
