"""`provision admin`: the gateway's admin API (health, metrics, users, organizations) from a shell.

Readable tables by default, the API's JSON with `--json`. Exit codes: 0 fine, 1 the gateway
answered with an error (or is degraded, or unreachable), 2 a usage problem such as no admin key.
`provision report` reaches the API through `fetch` and `connection_options` too.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any
from urllib.parse import quote

import httpx

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
from provision.cli.api_errors import error_text
from provision.errors import ProvisionError

DEFAULT_BASE_URL = "http://127.0.0.1:8787"
TIMEOUT = httpx.Timeout(30.0, connect=10.0)


class AdminError(ProvisionError):
    """The admin API answered with an error or could not be reached, worded for a person."""

    exit_code = 1


class AdminUsageError(AdminError):
    """The command line cannot be sent as it is (no admin key, options that exclude each other)."""

    exit_code = 2


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
            text = error_text(response)
            if response.status_code == 401:
                text += " (check --admin-key or GATEWAY_ADMIN_KEY)"
            raise AdminError(text)
    return response


def admin_key_of(args: argparse.Namespace) -> str:
    """--admin-key, else GATEWAY_ADMIN_KEY; neither is a usage error."""
    admin_key: str | None = args.admin_key or os.environ.get("GATEWAY_ADMIN_KEY")
    if not admin_key:
        raise AdminUsageError(
            "no admin key: pass --admin-key or set GATEWAY_ADMIN_KEY "
            "(`provision dev` prints the local one)"
        )
    return admin_key


def fetch(
    args: argparse.Namespace, method: str, path: str, params: dict[str, str]
) -> httpx.Response:
    """One call to the admin API at --base-url with the admin key; every failure an AdminError."""
    headers = {"authorization": f"Bearer {admin_key_of(args)}"}
    base_url = args.base_url.rstrip("/")
    try:
        with httpx.Client(base_url=base_url, headers=headers, timeout=TIMEOUT) as client:
            return call(client, method, path, params)
    except httpx.HTTPError as exc:
        raise AdminError(
            f"could not reach {base_url}: {exc} (is the gateway running, and is --base-url "
            "or GATEWAY_ADMIN_URL its URL?)"
        ) from exc


def json_body(response: httpx.Response) -> Any:
    """The answer's JSON; anything else means --base-url is not a gateway."""
    try:
        return response.json()
    except ValueError as exc:
        raise AdminError(
            f"{response.request.url} answered HTTP {response.status_code} without the admin "
            "API's JSON: is --base-url the gateway's URL (without /v1)?"
        ) from exc


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


def connection_options(parser: argparse.ArgumentParser, *, defaults: bool = True) -> None:
    """--base-url and --admin-key (with GATEWAY_ADMIN_URL and GATEWAY_ADMIN_KEY), for `fetch`."""

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
