"""Durable Object migrations: declared once, in order; sent only when the live script lacks them.

The Workers API applies migration steps in order and records the last applied tag on the
script. It refuses an upload whose `old_tag` is not the script's current tag (10079 / 412
"migration tag precondition failed") and a step that was already applied (10074), and the
provider sends the `migrations` input with every script update. So, as wrangler does
(workers-sdk `getMigrationsToUpload`), the program reads the live script's `migration_tag` at
deploy time and sends only the steps after it (docs/decisions/0008-migrations-from-the-live-tag.md).

Pure (no Pulumi import): the Pulumi component reads the live tag and calls `pending`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from provision.errors import ProvisionError
from provision.stack.contract import LEDGER_CLASS


class MigrationError(ProvisionError):
    """The live migration state cannot be read, or no declared plan leads from it."""


@dataclass(frozen=True)
class MigrationStep:
    """One step of the script's Durable Object history; its tag names the state after it."""

    tag: str
    new_sqlite_classes: tuple[str, ...] = ()
    new_classes: tuple[str, ...] = ()
    renamed_classes: tuple[tuple[str, str], ...] = ()  # (from, to)
    deleted_classes: tuple[str, ...] = ()

    def as_step(self) -> dict[str, Any]:
        """The step as `WorkersScriptMigrationsStepArgs` fields (empty lists left out)."""
        step: dict[str, Any] = {}
        if self.new_sqlite_classes:
            step["new_sqlite_classes"] = list(self.new_sqlite_classes)
        if self.new_classes:
            step["new_classes"] = list(self.new_classes)
        if self.renamed_classes:
            step["renamed_classes"] = [{"from_": a, "to": b} for a, b in self.renamed_classes]
        if self.deleted_classes:
            step["deleted_classes"] = list(self.deleted_classes)
        return step


# The whole history, oldest first. Never edit or reorder an entry that may have been deployed:
# a later change to the Durable Object classes is one NEW entry at the end (e.g. "v2").
MIGRATIONS: tuple[MigrationStep, ...] = (MigrationStep("v1", new_sqlite_classes=(LEDGER_CLASS,)),)


def pending(
    live_tag: str | None, script: str, steps: tuple[MigrationStep, ...] = MIGRATIONS
) -> dict[str, Any] | None:
    """The `migrations` input for the next upload (WorkersScriptMigrationsArgs fields), or None.

    - no script, or a script without a tag: every step, no `old_tag`;
    - a script at a declared tag: the steps after it, `old_tag` = that tag;
    - a script at the newest tag: nothing (an upload without migrations is always accepted);
    - a tag this program does not declare: an error, never a guess.
    """
    if not steps:
        return None
    tags = [step.tag for step in steps]
    if len(set(tags)) != len(tags):
        raise MigrationError(f"duplicate Durable Object migration tags in {tags}")
    if not live_tag:
        todo, old_tag = list(steps), None
    elif live_tag in tags:
        todo, old_tag = list(steps[tags.index(live_tag) + 1 :]), live_tag
    else:
        raise MigrationError(
            f"Worker script '{script}' is at Durable Object migration tag '{live_tag}', which this "
            f"program does not declare (declared: {', '.join(tags)}). Uploading would fail the "
            "API's tag precondition or replay applied steps; add the missing steps to "
            "provision/deploy/migrations.py MIGRATIONS, or deploy with the program that applied them."
        )
    if not todo:
        return None
    plan: dict[str, Any] = {"new_tag": todo[-1].tag, "steps": [step.as_step() for step in todo]}
    if old_tag is not None:
        plan["old_tag"] = old_tag
    return plan


def live_tag_from_listing(results: list[Any], script: str, *, limit: int) -> str | None:
    """The script's tag from a `get_workers_scripts` listing (None: no such script yet).

    `results` carry `.id` (the script name) and `.migration_tag`. A listing as long as the
    read's limit may have cut our script off, so it proves nothing: that is an error.
    """
    for result in results:
        if result.id == script:
            return result.migration_tag or None
    if len(results) >= limit:
        raise MigrationError(
            f"the account lists {len(results)} Worker scripts, the most one read returns, and "
            f"'{script}' is not among them: its live migration tag cannot be told"
        )
    return None
