"""`provision orgs add|set` and `provision users add|set|remove|import`: tenant edits that keep
the stack file's comments and formatting, validated before anything is written."""

from __future__ import annotations

import argparse
import csv
import re
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from ruamel.yaml.comments import CommentedMap

from provision.cli.keys import guarded
from provision.stack.changes import describe_changes, render_text
from provision.stack.config import StackConfig, parse_stack_text, resolve_stack
from provision.stack.model import SLUG
from provision.stack.stackfile import StackEditError, StackFile, flow_list, new_map


def slugify(text: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:63]
    if not re.match(SLUG, slug):
        raise StackEditError(f"cannot derive an id from {text!r}; pass --id")
    return slug


def money(text: str, flag: str) -> int | Decimal:
    """CLI amounts as written: integers stay integers in the YAML, decimals keep their digits."""
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise StackEditError(f"{flag} must be a number of US dollars (got {text!r})") from None
    if not value.is_finite():
        raise StackEditError(f"{flag} must be a number of US dollars (got {text!r})")
    return int(value) if value == value.to_integral_value() and "." not in text else value


def _models(text: str | None) -> Any:
    if text is None:
        return None
    return flow_list([m.strip() for m in text.split(",") if m.strip()])


def _unique_id(stack: StackFile, section: str, wanted: str) -> str:
    taken = {str(item.get("id")) for item in stack.section(section)}
    if wanted not in taken:
        return wanted
    for n in range(2, 1000):
        if f"{wanted}-{n}" not in taken:
            return f"{wanted}-{n}"
    raise StackEditError(f"no free id like {wanted!r}")


def _set_fields(item: Any, fields: dict[str, Any]) -> list[str]:
    changed = []
    for name, value in fields.items():
        if value is not None:
            item[name] = value
            changed.append(name)
    return changed


# ------------------------------------------------------------------ organizations


def _org_values(args: Any) -> dict[str, Any]:
    """The organization fields given on the command line (None = not given)."""
    return {
        "name": args.name,
        "monthlyBudgetUsd": money(args.budget, "--budget") if args.budget else None,
        "failureMode": args.failure_mode,
        "fallbackDailyLimitUsd": (
            money(args.fallback_daily, "--fallback-daily") if args.fallback_daily else None
        ),
        "allowedModels": _models(args.models),
        "defaultModel": args.default_model,
    }


def orgs_add(args: Any) -> int:
    stack = StackFile(resolve_stack(args.stack))
    org_id = args.id or slugify(args.name)
    if any(o.get("id") == org_id for o in stack.section("organizations")):
        raise StackEditError(f"{stack.source}: organization '{org_id}' already exists")
    stack.section("organizations").append(new_map(id=org_id, **_org_values(args)))
    stack.save()
    print(f"Added organization {org_id} ({args.name}) to {stack.source}.")
    return 0


def orgs_set(args: Any) -> int:
    stack = StackFile(resolve_stack(args.stack))
    _, org = stack.find("organizations", args.org)
    changed = _set_fields(org, {**_org_values(args), "status": args.status})
    if not changed:
        raise StackEditError("nothing to change: pass at least one field option")
    stack.save()
    print(f"Updated organization {args.org} in {stack.source}: {', '.join(changed)}.")
    return 0


# ------------------------------------------------------------------ users


def user_item(
    stack: StackFile, email: str, org: str, limit: str, user_id: str | None, models: str | None
) -> CommentedMap:
    wanted = user_id or slugify(email.split("@", 1)[0])
    final_id = wanted if user_id else _unique_id(stack, "users", wanted)
    if user_id and any(u.get("id") == user_id for u in stack.section("users")):
        raise StackEditError(f"{stack.source}: user '{user_id}' already exists")
    return new_map(
        id=final_id,
        email=email,
        org=org,
        monthlyLimitUsd=money(limit, "--limit"),
        allowedModels=_models(models),
    )


def users_add(args: Any) -> int:
    stack = StackFile(resolve_stack(args.stack))
    item = user_item(stack, args.email, args.org, args.limit, args.id, args.models)
    stack.section("users").append(item)
    stack.save()
    print(f"Added user {item['id']} ({args.email}) to organization {args.org} in {stack.source}.")
    print(f"Create a key with: provision keys create --stack {args.stack} --user {item['id']}")
    return 0


def users_set(args: Any) -> int:
    stack = StackFile(resolve_stack(args.stack))
    _, user = stack.find("users", args.user)
    changed = _set_fields(
        user,
        {
            "email": args.email,
            "org": args.org,
            "monthlyLimitUsd": money(args.limit, "--limit") if args.limit else None,
            "status": args.status,
            "allowedModels": _models(args.models),
        },
    )
    if not changed:
        raise StackEditError("nothing to change: pass at least one field option")
    stack.save()
    print(f"Updated user {args.user} in {stack.source}: {', '.join(changed)}.")
    return 0


def users_remove(args: Any) -> int:
    stack = StackFile(resolve_stack(args.stack))
    index, user = stack.find("users", args.user)
    keys = len(user.get("keys") or [])
    del stack.section("users")[index]
    stack.save()
    print(
        f"Removed user {args.user} and their {keys} key(s) from {stack.source}; "
        "their KV records are deleted at the next `pulumi up`."
    )
    return 0


IMPORT_COLUMNS = {"email", "org", "limit"}


def users_import(args: Any) -> int:
    stack = StackFile(resolve_stack(args.stack))
    before = parse_stack_text(stack.original, stack.source)[0]
    path = Path(args.file)
    try:
        handle = path.open(newline="", encoding="utf-8")
    except FileNotFoundError:
        raise StackEditError(f"{path}: file not found") from None
    with handle:
        reader = csv.DictReader(handle)
        missing = IMPORT_COLUMNS - set(reader.fieldnames or [])
        if missing:
            raise StackEditError(
                f"{path}: missing column(s) {', '.join(sorted(missing))} "
                "(expected: email, org, limit[, id, models])"
            )
        for line, row in enumerate(reader, start=2):
            try:
                item = user_item(
                    stack,
                    row["email"].strip(),
                    row["org"].strip(),
                    row["limit"].strip(),
                    (row.get("id") or "").strip() or None,
                    (row.get("models") or "").replace(";", ",").strip() or None,
                )
            except StackEditError as exc:
                raise StackEditError(f"{path}:{line}: {exc}") from None
            stack.section("users").append(item)
    after: StackConfig = stack.validate()
    print(render_text(describe_changes(before, after)))
    if args.dry_run:
        print("\n(dry run: nothing was written)")
        return 0
    stack.save()
    print(f"\nImported into {stack.source}.")
    return 0


# ------------------------------------------------------------------ parsers


def _org_fields(p: Any, *, adding: bool) -> None:
    p.add_argument("--name", required=adding, help="display name")
    p.add_argument("--budget", required=adding, help="monthly budget in USD")
    p.add_argument("--failure-mode", choices=["fail-closed", "fail-open"])
    p.add_argument(
        "--fallback-daily", help="fail-open: USD per day served while usage accounting is down"
    )
    p.add_argument("--models", help="comma-separated allow-list (default: every catalog model)")
    p.add_argument("--default-model")


def configure_orgs(orgs: argparse.ArgumentParser) -> None:
    """The arguments of `provision orgs` (its help line is in provision/cli/__init__.py)."""
    commands = orgs.add_subparsers(dest="orgs_command", required=True)
    p = commands.add_parser("add", help="add an organization")
    p.add_argument("--stack", required=True)
    p.add_argument("--id", help="id (default: derived from --name)")
    _org_fields(p, adding=True)
    p.set_defaults(handler=guarded(orgs_add))
    p = commands.add_parser("set", help="change fields of an organization")
    p.add_argument("--stack", required=True)
    p.add_argument("--org", required=True)
    p.add_argument("--status", choices=["active", "suspended"])
    _org_fields(p, adding=False)
    p.set_defaults(handler=guarded(orgs_set))


def configure_users(users: argparse.ArgumentParser) -> None:
    """The arguments of `provision users` (its help line is in provision/cli/__init__.py)."""
    commands = users.add_subparsers(dest="users_command", required=True)
    p = commands.add_parser("add", help="add a user")
    p.add_argument("--stack", required=True)
    p.add_argument("--email", required=True)
    p.add_argument("--org", required=True)
    p.add_argument("--limit", required=True, help="monthly limit in USD")
    p.add_argument("--id", help="id (default: from the email's local part)")
    p.add_argument("--models", help="comma-separated allow-list")
    p.set_defaults(handler=guarded(users_add))
    p = commands.add_parser("set", help="change fields of a user")
    p.add_argument("--stack", required=True)
    p.add_argument("--user", required=True)
    p.add_argument("--email")
    p.add_argument("--org")
    p.add_argument("--limit")
    p.add_argument("--status", choices=["active", "suspended"])
    p.add_argument("--models")
    p.set_defaults(handler=guarded(users_set))
    p = commands.add_parser("remove", help="remove a user and their keys")
    p.add_argument("--stack", required=True)
    p.add_argument("--user", required=True)
    p.set_defaults(handler=guarded(users_remove))
    p = commands.add_parser("import", help="add users from a CSV (email,org,limit[,id,models])")
    p.add_argument("file")
    p.add_argument("--stack", required=True)
    p.add_argument(
        "--dry-run", action="store_true", help="show the resulting changes, write nothing"
    )
    p.set_defaults(handler=guarded(users_import))
