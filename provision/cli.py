"""The `provision` command: one entry point, one small module per subcommand."""

from __future__ import annotations

import argparse
import sys

from provision import (
    admin_cli,
    chat,
    check,
    devserver,
    diff,
    keys_cli,
    plan,
    schema,
    tenants_cli,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="provision",
        description="Operate the LLM gateway: run it locally, chat, manage tenants.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True)
    for module in (devserver, chat, admin_cli, keys_cli, tenants_cli, check, diff, plan, schema):
        module.add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
