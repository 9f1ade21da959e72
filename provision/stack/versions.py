"""A stack file at a git ref and in the working tree, each validated: what `provision diff` and
`provision plan` compare."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from provision.errors import ConfigError, Problem, ProvisionError
from provision.stack.config import StackConfig, display_path, parse_stack_text, resolve_stack


def file_at_ref(path: Path, ref: str) -> str | None:
    """The file's text at a git ref of the repository holding it, or None if it did not exist."""
    folder = path.resolve().parent
    check = subprocess.run(
        ["git", "rev-parse", "--verify", f"{ref}^{{commit}}"],
        cwd=folder,
        capture_output=True,
        text=True,
    )
    if check.returncode != 0:
        raise ProvisionError(
            f"unknown git ref '{ref}' (or {display_path(path)} is not in a git repository)"
        )
    result = subprocess.run(
        ["git", "show", f"{ref}:./{path.name}"], cwd=folder, capture_output=True, text=True
    )
    return result.stdout if result.returncode == 0 else None


@dataclass
class Versions:
    """A stack file at a git ref and in the working tree, validated (before: None if new)."""

    path: Path
    before: StackConfig | None
    after: StackConfig
    before_settings: dict[str, Any]
    after_settings: dict[str, Any]


def load_versions(stack: str, base: str) -> Versions:
    """The stack at `base` and now; a base that no longer validates counts as new (noted)."""
    path = resolve_stack(stack)
    source = display_path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([Problem(source, "", "file not found")]) from None
    after, after_settings = parse_stack_text(text, source)
    base_text = file_at_ref(path, base)
    before: StackConfig | None = None
    before_settings: dict[str, Any] = {}
    if base_text:
        try:
            before, before_settings = parse_stack_text(base_text, f"{source}@{base}")
        except ConfigError as exc:
            # e.g. the change also changes the config model: compare against nothing, say so
            print(
                f"note: the base version does not validate with this code ({len(exc.problems)} "
                "problem(s)); showing the stack as if it were new",
                file=sys.stderr,
            )
    return Versions(path, before, after, before_settings, after_settings)
