"""The `provision` command: one entry point, one small module per subcommand.

A subcommand's module is imported only when that subcommand runs, so `provision --help` and
the light commands (`admin`, `chat`) start without loading the config model or Pulumi.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

# name → (module, its configure function, the help line shown by `provision --help`)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "dev": (
        "provision.cli.dev",
        "configure",
        "run the gateway locally (workerd + AI Gateway emulator)",
    ),
    "chat": (
        "provision.cli.chat",
        "configure",
        "chat with the gateway (one message or interactive)",
    ),
    "admin": (
        "provision.cli.admin",
        "configure",
        "the admin API: health, metrics, users and organizations with their usage",
    ),
    "report": (
        "provision.cli.report",
        "configure",
        "a month's spend, requests and latency per organization and day: table, CSV or chart",
    ),
    "keys": ("provision.cli.keys", "configure", "create, rotate, revoke and list API keys"),
    "orgs": (
        "provision.cli.tenants",
        "configure_orgs",
        "add or change organizations in a stack file",
    ),
    "users": ("provision.cli.tenants", "configure_users", "add, change, remove or import users"),
    "check": ("provision.cli.check", "configure", "validate stack files; list every problem"),
    "models": (
        "provision.cli.models",
        "configure",
        "each offered model's price and its source (stack, catalog, default)",
    ),
    "diff": ("provision.cli.diff", "configure", "what a stack change does, for review"),
    "plan": (
        "provision.cli.plan",
        "configure",
        "Cloudflare resources and API calls a stack change makes on `pulumi up`",
    ),
    "schema": (
        "provision.cli.schema",
        "configure",
        "print (or --write) the stack file JSON Schema",
    ),
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser, with the arguments of `command` (every other subcommand: name and help)."""
    parser = argparse.ArgumentParser(
        prog="provision",
        description="Operate the LLM gateway: run it locally, chat, manage tenants.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name, (module, function, help_line) in COMMANDS.items():
        sub = subparsers.add_parser(name, help=help_line, description=help_line)
        if name == command:
            getattr(importlib.import_module(module), function)(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args_in = sys.argv[1:] if argv is None else argv
    command = next((a for a in args_in if not a.startswith("-")), None)
    args = build_parser(command).parse_args(args_in)
    try:
        code: int = args.handler(args)
        sys.stdout.flush()
    except BrokenPipeError:
        # `provision … | head`: the reader left; stop quietly, as Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    return code


if __name__ == "__main__":
    sys.exit(main())
