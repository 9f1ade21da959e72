"""`provision admin`: the gateway's admin API (health, metrics, users, organizations) from a shell.

Readable tables by default, the API's JSON with `--json`. Exit codes: 0 fine, 1 the gateway
answered with an error (or is degraded, or unreachable), 2 a usage problem such as no admin key.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any
from urllib.parse import quote

import httpx

from provision.admin_views import (
    render_export,
    render_health,
    render_metrics,
    render_org,
    render_org_usage,
    render_org_users,
    render_reconcile,
    render_reset,
    render_revoke,
    render_user,
    render_user_usage,
)
from provision.api_errors import error_text
from provision.errors import ProvisionError

DEFAULT_BASE_URL = "http://127.0.0.1:8787"
TIMEOUT = httpx.Timeout(30.0, connect=10.0)


class AdminError(ProvisionError):
    """The admin API answered with an error, already worded for a person."""


# ---------------------------------------------------------------------------- requests


def call(client: httpx.Client, method: str, path: str, params: dict[str, str]) -> httpx.Response:
    """One admin API call; an error answer (other than a degraded health report) raises."""
    response = client.request(method, path, params=params)
    if response.status_code >= 400:
        try:
            body = response.json()
        except ValueError:
            body = None
        if not (isinstance(body, dict) and "status" in body and "error" not in body):
            raise AdminError(error_text(response))
    return response


def plan(args: argparse.Namespace) -> tuple[str, str, Any]:
    """(method, path, renderer) for the parsed command line."""
    if args.admin_command == "health":
        return "GET", "/admin/health", render_health
    if args.admin_command == "metrics":
        return "GET", "/admin/metrics", render_metrics
    if args.admin_command == "revoke":
        return "POST", f"/admin/keys/{_segment(args.key)}/revoke", render_revoke
    if args.admin_command == "export":
        return "GET", "/admin/export", render_export
    if args.admin_command == "reconcile":
        return "POST", "/admin/reconcile", render_reconcile
    if args.admin_command == "user":
        base = f"/admin/users/{_segment(args.id)}"
        return {
            None: ("GET", base, render_user),
            "usage": ("GET", f"{base}/usage", render_user_usage),
            "reset-quota": ("POST", f"{base}/reset-quota", render_reset),
        }[args.action]
    base = f"/admin/organizations/{_segment(args.id)}"
    return {
        None: ("GET", base, render_org),
        "users": ("GET", f"{base}/users", render_org_users),
        "usage": ("GET", f"{base}/usage", render_org_usage),
    }[args.action]


def _segment(value: str) -> str:
    return quote(value, safe="")


def _takes_month(args: argparse.Namespace) -> bool:
    if args.admin_command in ("user", "org"):
        return args.action in ("usage", "users")
    return args.admin_command in ("metrics", "export")


def run(args: argparse.Namespace) -> int:
    admin_key = args.admin_key or os.environ.get("GATEWAY_ADMIN_KEY")
    if not admin_key:
        print(
            "error: no admin key: pass --admin-key or set GATEWAY_ADMIN_KEY "
            "(`provision dev` prints the local one)",
            file=sys.stderr,
        )
        return 2
    if args.month and not _takes_month(args):
        print(
            "error: --month applies only to metrics, `user ID usage`, `org ID users` and "
            "`org ID usage` (reset-quota always resets the current month)",
            file=sys.stderr,
        )
        return 2
    method, path, render = plan(args)
    params = {"month": args.month} if args.month else {}
    if args.admin_command == "export" and args.format == "csv":
        params["format"] = "csv"
    headers = {"authorization": f"Bearer {admin_key}"}
    base_url = args.base_url.rstrip("/")
    try:
        with httpx.Client(base_url=base_url, headers=headers, timeout=TIMEOUT) as client:
            response = call(client, method, path, params)
    except AdminError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except httpx.HTTPError as exc:
        print(f"error: could not reach {base_url}: {exc}", file=sys.stderr)
        return 1
    if response.headers.get("content-type", "").startswith("text/csv"):
        sys.stdout.write(response.text)
        return 0
    body = response.json()
    print(json.dumps(body, indent=2) if args.json else render(body))
    return 0 if response.status_code < 400 else 1


# ---------------------------------------------------------------------------- parser


def _common(parser: argparse.ArgumentParser, *, defaults: bool) -> None:
    """The shared options, accepted before and after the admin subcommand."""

    def default(value: Any) -> Any:
        return value if defaults else argparse.SUPPRESS

    parser.add_argument(
        "--base-url",
        default=default(os.environ.get("GATEWAY_ADMIN_URL", DEFAULT_BASE_URL)),
        help=f"the gateway's URL, without /v1 (default: $GATEWAY_ADMIN_URL or {DEFAULT_BASE_URL})",
    )
    parser.add_argument(
        "--admin-key",
        default=default(None),
        help="the deployment's ADMIN_API_KEY (default: $GATEWAY_ADMIN_KEY)",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        default=default(False),
        help="print the API's JSON instead of tables",
    )
    parser.add_argument(
        "--month",
        default=default(None),
        metavar="YYYY-MM",
        help="UTC month for usage figures (default: the current month)",
    )


def configure(parser: argparse.ArgumentParser) -> None:
    """The arguments of `provision admin` (its help line is in provision/cli.py)."""
    _common(parser, defaults=True)
    commands = parser.add_subparsers(dest="admin_command", required=True, metavar="COMMAND")
    shared = argparse.ArgumentParser(add_help=False)
    _common(shared, defaults=False)
    commands.add_parser("health", parents=[shared], help="KV, ledger and Worker status")
    commands.add_parser(
        "metrics", parents=[shared], help="tenant counts, the month's totals, top users"
    )
    user = commands.add_parser("user", parents=[shared], help="a user: config, usage, reset-quota")
    user.add_argument("id", help="user id")
    user.add_argument(
        "action",
        nargs="?",
        choices=("usage", "reset-quota"),
        help="usage: the month's usage; reset-quota: give the allowance back",
    )
    org = commands.add_parser("org", parents=[shared], help="an organization: config, users, usage")
    org.add_argument("id", help="organization id")
    org.add_argument(
        "action",
        nargs="?",
        choices=("users", "usage"),
        help="users: its users with their usage; usage: totals and per-user rows",
    )
    revoke = commands.add_parser(
        "revoke",
        parents=[shared],
        help="emergency revocation: the key stops working before any deploy",
    )
    revoke.add_argument("--key", required=True, help="key id")
    commands.add_parser(
        "reconcile",
        parents=[shared],
        help="move usage served while the ledger was down into the ledgers",
    )
    export = commands.add_parser(
        "export", parents=[shared], help="all tenants with the month's usage"
    )
    export.add_argument(
        "--format",
        choices=("table", "csv"),
        default="table",
        help="csv: one row per user (use --json for the full JSON)",
    )
    parser.set_defaults(handler=run)
