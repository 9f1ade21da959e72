"""`provision keys create|rotate|revoke|list`: API keys without secrets in git.

A new key comes from the OS's secure random source, is printed exactly once, and only its
SHA-256 hash (with id, name, created date and expiry) goes into the stack file.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import secrets
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from provision.errors import ConfigError, ProvisionError
from provision.stack.config import ApiKey, all_stacks, parse_stack_text, resolve_stack
from provision.stack.keys import generate_key, hash_key, mask
from provision.stack.stackfile import StackEditError, StackFile, new_map

GRACE_PATTERN = re.compile(r"^(\d+)([dhms])$")
EXPIRING_SOON = dt.timedelta(days=7)


def parse_grace(text: str) -> dt.timedelta:
    match = GRACE_PATTERN.match(text.strip())
    if not match:
        raise StackEditError(f"--grace must look like 7d, 12h, 30m or 45s (got {text!r})")
    amount, unit = int(match[1]), match[2]
    return dt.timedelta(
        **{{"d": "days", "h": "hours", "m": "minutes", "s": "seconds"}[unit]: amount}
    )


def parse_expiry(text: str) -> dt.date | dt.datetime:
    """A date (expires at 00:00 UTC that day) or an ISO datetime."""
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        pass
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise StackEditError(
            f"--expires must be a date (2027-01-31) or ISO datetime (got {text!r})"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _moment(value: dt.date | dt.datetime) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value
    return dt.datetime.combine(value, dt.time(), tzinfo=dt.UTC)


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def new_key_id(user_id: str, taken: set[str]) -> str:
    while True:
        candidate = f"key_{user_id}_{secrets.token_hex(4)}"
        if candidate not in taken:
            return candidate


def _all_key_ids(stack: StackFile) -> set[str]:
    return {str(k.get("id")) for u in stack.section("users") for k in (u.get("keys") or [])}


def add_key(stack: StackFile, user_id: str, name: str, expires: Any = None) -> tuple[str, str]:
    """Append a fresh key to a user; returns (key id, plain key). Not yet saved."""
    _, user = stack.find("users", user_id)
    plain = generate_key()
    key_id = new_key_id(user_id, _all_key_ids(stack))
    if user.get("keys") is None:
        from ruamel.yaml.comments import CommentedSeq

        user["keys"] = CommentedSeq()
    user["keys"].append(
        new_map(
            id=key_id, name=name, sha256=hash_key(plain), created=utc_now().date(), expires=expires
        )
    )
    return key_id, plain


def _announce(result: dict[str, Any], as_json: bool, note: str) -> None:
    if as_json:
        print(json.dumps(result))
        return
    print(
        f"{result['action']} key {result['keyId']} for user {result['userId']} in {result['stack']}."
    )
    print()
    print(f"  {result['key']}")
    print()
    print(
        "This is the only time the key is shown: store it now. The stack file holds only its SHA-256."
    )
    print(note)


def create(args: Any) -> int:
    stack = StackFile(resolve_stack(args.stack))
    expires = parse_expiry(args.expires) if args.expires else None
    if expires is not None and _moment(expires) <= utc_now():
        raise StackEditError(f"--expires {args.expires} is in the past; a new key would never work")
    key_id, plain = add_key(stack, args.user, args.name or "", expires)
    stack.save()
    _announce(
        {
            "action": "Created",
            "keyId": key_id,
            "userId": args.user,
            "key": plain,
            "sha256": hash_key(plain),
            "stack": stack.source,
            "expires": expires.isoformat() if expires else None,
        },
        args.json,
        "It works once the stack is deployed (`pulumi up`); a running `make dev` applies it at once.",
    )
    return 0


def _stack_with_key(stack_arg: str | None, key_id: str) -> StackFile:
    if stack_arg:
        return StackFile(resolve_stack(stack_arg))
    found = []
    for path in all_stacks():
        candidate = StackFile(path)
        try:
            candidate.find_key(key_id)
            found.append(candidate)
        except StackEditError:
            continue
    if len(found) != 1:
        where = ", ".join(s.source for s in found) or "no stack file"
        raise StackEditError(f"key '{key_id}' is in {where}; pass --stack")
    return found[0]


def _current_expiry(stack: StackFile, key_id: str) -> dt.datetime | None:
    """The key's expiry as the validated model reads it (a bare date is 00:00 UTC)."""
    config = parse_stack_text(stack.original, stack.source)[0]
    for user in config.tenants.users:
        for key in user.keys:
            if key.id == key_id:
                expires_at = key.expires_at()
                return None if expires_at is None else dt.datetime.fromtimestamp(expires_at, dt.UTC)
    return None


def rotate(args: Any) -> int:
    stack = _stack_with_key(args.stack, args.key)
    user, old = stack.find_key(args.key)
    if old.get("status", "active") != "active":
        raise StackEditError(
            f"{stack.source}: key '{args.key}' is {old.get('status')}; only active keys rotate"
        )
    cutover = utc_now() + parse_grace(args.grace)
    # Rotation only ever shortens a key's life: an earlier expiry (or a key that has already
    # expired) is kept, never pushed out to the end of the grace period.
    current = _current_expiry(stack, args.key)
    if current is not None and current <= cutover:
        cutover = current
    name = args.name or (f"{old.get('name')} (rotated)" if old.get("name") else "rotated")
    key_id, plain = add_key(stack, str(user["id"]), name)
    if cutover != current:
        old["expires"] = cutover
    stack.save()
    _announce(
        {
            "action": "Rotated: created",
            "keyId": key_id,
            "userId": str(user["id"]),
            "key": plain,
            "sha256": hash_key(plain),
            "stack": stack.source,
            "replaces": args.key,
            "oldKeyExpires": cutover.isoformat(),
        },
        args.json,
        f"The old key {args.key} keeps working until {cutover.isoformat()}; switch clients before then."
        if cutover > utc_now()
        else f"The old key {args.key} already expired at {cutover.isoformat()}.",
    )
    return 0


def revoke(args: Any) -> int:
    stack = _stack_with_key(args.stack, args.key)
    user, key = stack.find_key(args.key)
    key["status"] = "revoked"
    stack.save()
    print(f"Revoked key {args.key} of user {user['id']} in {stack.source}.")
    print(
        "It stops working when the stack is deployed. For an immediate stop, also run "
        f"`provision admin revoke --key {args.key}`."
    )
    return 0


def key_state(key: ApiKey, now: dt.datetime) -> str:
    if key.status != "active":
        return key.status
    expires_at = key.expires_at()
    if expires_at is not None:
        moment = dt.datetime.fromtimestamp(expires_at, dt.UTC)
        if moment <= now:
            return "expired"
        if moment - now <= EXPIRING_SOON:
            return "expiring"
    return "active"


def list_keys(args: Any) -> int:
    path = resolve_stack(args.stack)
    from provision.stack.config import load_stack_file

    config = load_stack_file(Path(path))
    now = utc_now()
    rows = []
    for user in config.tenants.users:
        if args.user and user.id != args.user:
            continue
        for key in user.keys:
            expires_at = key.expires_at()
            rows.append(
                {
                    "id": key.id,
                    "user": user.id,
                    "org": user.org,
                    "name": key.name,
                    "status": key_state(key, now),
                    "created": key.created.isoformat(),
                    "expires": dt.datetime.fromtimestamp(expires_at, dt.UTC).isoformat()
                    if expires_at
                    else None,
                    "sha256": mask(key.sha256),
                }
            )
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    columns = ["id", "user", "org", "name", "status", "created", "expires", "sha256"]
    table = [[str(row[c] or "-") for c in columns] for row in rows]
    widths = [
        max(len(c), *(len(r[i]) for r in table)) if table else len(c) for i, c in enumerate(columns)
    ]
    print("  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True)))
    for row in table:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)))
    return 0


def guarded(handler: Callable[[Any], int]) -> Callable[[Any], int]:
    """A subcommand that reports stack and edit errors as one line each, exit code 1."""

    def run(args: Any) -> int:
        try:
            return handler(args)
        except ConfigError as exc:
            print(
                f"error: the edit would make the stack invalid; nothing was written.\n{exc}",
                file=sys.stderr,
            )
            return 1
        except ProvisionError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1

    return run


def configure(parser: argparse.ArgumentParser) -> None:
    """The arguments of `provision keys` (its help line is in provision/cli/__init__.py)."""
    commands = parser.add_subparsers(dest="keys_command", required=True)

    p = commands.add_parser("create", help="generate a key for a user; prints it once")
    p.add_argument("--stack", required=True, help="stack name (dev) or path to a stack file")
    p.add_argument("--user", required=True)
    p.add_argument("--name", help="what the key is for (laptop, ci, …)")
    p.add_argument("--expires", help="date (2027-01-31, expires 00:00 UTC) or ISO datetime")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(handler=guarded(create))

    p = commands.add_parser("rotate", help="new key now; the old one expires after a grace period")
    p.add_argument("--key", required=True, help="id of the key to replace")
    p.add_argument("--stack", help="stack name or path (default: the stack file that has the key)")
    p.add_argument(
        "--grace", default="7d", help="how long the old key keeps working (7d, 12h, 30m)"
    )
    p.add_argument("--name")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=guarded(rotate))

    p = commands.add_parser("revoke", help="mark a key revoked in the stack file")
    p.add_argument("--key", required=True)
    p.add_argument("--stack")
    p.set_defaults(handler=guarded(revoke))

    p = commands.add_parser("list", help="ids, users, status and expiry (never full hashes)")
    p.add_argument("--stack", required=True)
    p.add_argument("--user")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=guarded(list_keys))
