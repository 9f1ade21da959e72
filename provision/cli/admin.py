"""`provision admin`: the gateway's admin API (health, metrics, users, organizations) from a shell.

Readable tables by default, the API's JSON with `--json`. Exit codes: 0 fine, 1 the gateway
answered with an error (or is degraded, or unreachable), 2 a usage problem such as no admin key.
The client itself (connection options, calls, errors) is admin_client.py's, shared with `provision
report`.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any
from urllib.parse import quote

from provision.cli.admin_client import (
    AdminError,
    AdminUsageError,
    admin_key_of,
    connection_options,
    fetch,
    json_body,
)
from provision.cli.admin_views import (
    render_alerts,
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
    if args.admin_command == "alerts":
        return "GET", "/admin/alerts", render_alerts
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
    return args.admin_command in ("metrics", "export", "alerts")


def query(args: argparse.Namespace) -> dict[str, str]:
    """The query parameters of the command line; options that cannot go together raise."""
    if args.month and not _takes_month(args):
        raise AdminUsageError(
            "--month applies only to metrics, `user ID usage`, `org ID users` and "
            "`org ID usage` (reset-quota always resets the current month)"
        )
    params = {"month": args.month} if args.month else {}
    if args.admin_command == "export" and args.format == "csv":
        params["format"] = "csv"
    if args.admin_command == "metrics":
        params.update(_metrics_query(args))
    if args.admin_command == "alerts" and args.org:
        params["org"] = args.org
    return params


def _metrics_query(args: argparse.Namespace) -> dict[str, str]:
    if args.month and (args.from_day or args.to_day):
        raise AdminUsageError(
            "give either --month or --from and --to, not both (a range may span months)"
        )
    if bool(args.from_day) != bool(args.to_day):
        raise AdminUsageError("a range of days needs both --from and --to (YYYY-MM-DD)")
    named = {"from": args.from_day, "to": args.to_day, "org": args.org, "user": args.user}
    return {name: value for name, value in named.items() if value}


def run(args: argparse.Namespace) -> int:
    try:
        admin_key_of(args)
        params = query(args)
        method, path, render = plan(args)
        response = fetch(args, method, path, params)
        if response.headers.get("content-type", "").startswith("text/csv"):
            sys.stdout.write(response.text)
            return 0
        body = json_body(response)
    except AdminError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    print(json.dumps(body, indent=2) if args.json else render(body))
    return 0 if response.status_code < 400 else 1


# ---------------------------------------------------------------------------- parser


def _common(parser: argparse.ArgumentParser, *, defaults: bool) -> None:
    """The shared options, accepted before and after the admin subcommand."""

    def default(value: Any) -> Any:
        return value if defaults else argparse.SUPPRESS

    connection_options(parser, defaults=defaults)
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
    """The arguments of `provision admin` (its help line is in provision/cli/__init__.py)."""
    _common(parser, defaults=True)
    commands = parser.add_subparsers(dest="admin_command", required=True, metavar="COMMAND")
    shared = argparse.ArgumentParser(add_help=False)
    _common(shared, defaults=False)
    commands.add_parser("health", parents=[shared], help="KV, ledger and Worker status")
    metrics = commands.add_parser(
        "metrics",
        parents=[shared],
        help="totals, rates, latency and spend per org, user and model, for a month or days",
    )
    metrics.add_argument(
        "--from",
        dest="from_day",
        metavar="YYYY-MM-DD",
        help="first UTC day of a range (with --to, instead of --month; at most 93 days)",
    )
    metrics.add_argument(
        "--to", dest="to_day", metavar="YYYY-MM-DD", help="last UTC day of the range (inclusive)"
    )
    metrics.add_argument("--org", metavar="ID", help="only this organization")
    metrics.add_argument("--user", metavar="ID", help="only this user (and their organization)")
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
    alerts = commands.add_parser(
        "alerts", parents=[shared], help="the month's budget alerts and their deliveries"
    )
    alerts.add_argument("--org", metavar="ID", help="only this organization")
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
