"""`provision diff`: what a stack change does, in words a reviewer reads in a pull request.

Compares two validated configs (a git ref and the working tree): organizations, users and keys
added, removed or changed, how limits move, and which KV records `pulumi up` will write or
delete.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from provision.deploy.plan import plan_versions, summary
from provision.errors import ConfigError, ProvisionError
from provision.stack.changes import describe_changes, render_markdown, render_text
from provision.stack.config import display_path
from provision.stack.versions import Versions, load_versions


def load_versions_or_report(args: Any) -> Versions | None:
    """`load_versions` for a CLI command: a bad stack is reported on stderr (then None)."""
    try:
        return load_versions(args.stack, args.base)
    except (ConfigError, ProvisionError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return None


def deploy_summary(versions: Versions) -> str:
    return summary(plan_versions(versions))


def run(args: Any) -> int:
    versions = load_versions_or_report(args)
    if versions is None:
        return 1
    changes = describe_changes(versions.before, versions.after)
    deploy = deploy_summary(versions)
    if args.format == "markdown":
        title = f"Stack `{display_path(versions.path)}` vs `{args.base}`"
        print(render_markdown(changes, title, deploy))
    else:
        print(render_text(changes, deploy))
    return 0


def configure(parser: argparse.ArgumentParser) -> None:
    """The arguments of `provision diff` (its help line is in provision/cli/__init__.py)."""
    parser.add_argument("--stack", required=True, help="stack name (dev) or path")
    parser.add_argument("--base", default="HEAD", help="git ref to compare against (default: HEAD)")
    parser.add_argument("--format", choices=["text", "markdown"], default="text")
    parser.set_defaults(handler=run)
