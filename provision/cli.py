"""The `provision` command: one entry point, one small module per subcommand."""

from __future__ import annotations

import argparse
import sys

from provision import chat, devserver


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="provision", description="Operate the LLM gateway: run it locally, chat, manage tenants."
    )
    subparsers = parser.add_subparsers(dest="command", required=True)
    for module in (devserver, chat):
        module.add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
