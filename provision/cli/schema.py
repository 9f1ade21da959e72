"""`provision schema`: print (or --write) the stack file JSON Schema."""

from __future__ import annotations

import argparse
from typing import Any

from provision.stack.config import STACKS_DIR
from provision.stack.schema import SCHEMA_PATH, schema_text


def run(args: Any) -> int:
    if args.write:
        SCHEMA_PATH.write_text(schema_text(), encoding="utf-8")
        print(f"wrote {SCHEMA_PATH.relative_to(STACKS_DIR.parent)}")
    else:
        print(schema_text(), end="")
    return 0


def configure(parser: argparse.ArgumentParser) -> None:
    """The arguments of `provision schema` (its help line is in provision/cli/__init__.py)."""
    parser.add_argument("--write", action="store_true", help=f"update {SCHEMA_PATH.name}")
    parser.set_defaults(handler=run)
