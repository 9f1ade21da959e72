"""One error vocabulary for provisioning: every problem names its file and path."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One precise finding: where it is (file, dotted path) and what was expected."""

    file: str
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}: {self.path}" if self.path else self.file
        return f"{where}: {self.message}"


class ProvisionError(Exception):
    """Root of every error this package raises on purpose."""


class ConfigError(ProvisionError):
    """A stack file (or stack config) is invalid; carries every problem found."""

    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        count = len(self.problems)
        noun = "problem" if count == 1 else "problems"
        super().__init__(f"invalid stack configuration ({count} {noun}):\n{lines}")
