"""Careful edits of stack files: round-trip YAML that keeps comments, order and formatting.

Every edit is applied to an in-memory copy, the result is validated with the same model the
Pulumi program uses, and only then written (atomically). A failed validation writes nothing.
"""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError
from ruamel.yaml.representer import RoundTripRepresenter

from provision.errors import ProvisionError
from provision.stack.config import (
    PROJECT,
    StackConfig,
    display_path,
    parse_stack_text,
)


class StackEditError(ProvisionError):
    """An edit that cannot be made (unknown id, duplicate, …); nothing was written."""


class _Representer(RoundTripRepresenter):
    """Round-trip output, with amounts (Decimal) written digit for digit as plain numbers."""


def _represent_decimal(representer: RoundTripRepresenter, value: Decimal) -> Any:
    # A float would come out as `5e-05`, which YAML 1.1 readers (PyYAML) take for a string.
    text = format(value, "f")
    return representer.represent_scalar(
        "tag:yaml.org,2002:float" if "." in text else "tag:yaml.org,2002:int", text
    )


_Representer.add_representer(Decimal, _represent_decimal)


def _yaml() -> YAML:
    y = YAML()  # round-trip
    y.Representer = _Representer
    y.preserve_quotes = True
    y.width = 4096  # never re-wrap long lines
    y.indent(mapping=2, sequence=4, offset=2)
    return y


class StackFile:
    """A stack file opened for editing: `doc.tenants` etc. are live ruamel nodes."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.source = display_path(self.path)
        try:
            self.original = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise StackEditError(f"{self.source}: file not found") from None
        self._yaml = _yaml()
        try:
            self.document = self._yaml.load(self.original)
        except YAMLError as exc:
            raise StackEditError(f"{self.source}: not valid YAML: {exc}") from None
        if not isinstance(self.document, CommentedMap) or "config" not in self.document:
            raise StackEditError(f"{self.source}: not a stack file (no top-level 'config')")

    # -------------------------------------------------------------- navigation

    def setting(self, name: str, default_factory: Callable[[], Any] | None = None) -> Any:
        config = self.document["config"]
        key = f"{PROJECT}:{name}"
        if key not in config:
            if default_factory is None:
                raise StackEditError(f"{self.source}: no '{key}' setting")
            config[key] = default_factory()
        return config[key]

    def tenants(self) -> CommentedMap:
        tenants: CommentedMap = self.setting("tenants", CommentedMap)
        return tenants

    def section(self, name: str) -> CommentedSeq:
        tenants = self.tenants()
        if name not in tenants or tenants[name] is None:
            tenants[name] = CommentedSeq()
        section: CommentedSeq = tenants[name]
        return section

    def find(self, section: str, item_id: str) -> tuple[int, CommentedMap]:
        for index, item in enumerate(self.section(section)):
            if item.get("id") == item_id:
                return index, item
        kind = "organization" if section == "organizations" else "user"
        known = ", ".join(str(i.get("id")) for i in self.section(section)) or "none"
        raise StackEditError(f"{self.source}: no {kind} '{item_id}' (declared: {known})")

    def find_key(self, key_id: str) -> tuple[CommentedMap, CommentedMap]:
        """(user, key) for a key id."""
        for user in self.section("users"):
            for key in user.get("keys") or []:
                if key.get("id") == key_id:
                    return user, key
        raise StackEditError(f"{self.source}: no key '{key_id}'")

    # -------------------------------------------------------------- output

    def render(self) -> str:
        buffer = io.StringIO()
        self._yaml.dump(self.document, buffer)
        return buffer.getvalue()

    def validate(self) -> StackConfig:
        return parse_stack_text(self.render(), self.source)[0]

    def save(self) -> StackConfig:
        """Validate the edited document, then replace the file atomically."""
        text = self.render()
        config = parse_stack_text(text, self.source)[0]
        directory = self.path.parent
        fd, temp = tempfile.mkstemp(prefix=".stack-", suffix=".yaml", dir=directory)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
            os.chmod(temp, self.path.stat().st_mode & 0o777)
            os.replace(temp, self.path)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise
        return config


def new_map(**fields: Any) -> CommentedMap:
    """A mapping for a new list item, dropping fields left unset."""
    item = CommentedMap()
    for name, value in fields.items():
        if value is not None:
            item[name] = value
    return item


def flow_list(values: list[str]) -> CommentedSeq:
    seq = CommentedSeq(values)
    seq.fa.set_flow_style()
    return seq
