"""`provision check`: validate stack files with the Pulumi program's own model, and warn about
what is legal but suspicious."""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path
from typing import Any

from provision.errors import ConfigError, Problem
from provision.stack.compiler import tenant_counts
from provision.stack.config import (
    StackConfig,
    all_stacks,
    display_path,
    load_stack_file,
    resolve_stack,
)
from provision.stack.prices import model_price

EXPIRY_WARNING = dt.timedelta(days=7)


def warnings_for(config: StackConfig, source: str, now: dt.datetime) -> list[Problem]:
    found: list[Problem] = []
    budgets = {org.id: org.monthlyBudgetUsd for org in config.tenants.organizations}
    members = {org.id: 0 for org in config.tenants.organizations}
    for i, user in enumerate(config.tenants.users):
        members[user.org] = members.get(user.org, 0) + 1
        budget = budgets.get(user.org)
        if budget is not None and user.monthlyLimitUsd > budget:
            found.append(
                Problem(
                    source,
                    f"tenants.users[{i}].monthlyLimitUsd",
                    f"user {user.id}'s limit ${user.monthlyLimitUsd} is above the budget "
                    f"${budget} of org {user.org}; the org budget will stop them first",
                )
            )
        for j, key in enumerate(user.keys):
            expires_at = key.expires_at()
            if key.status != "active" or expires_at is None:
                continue
            moment = dt.datetime.fromtimestamp(expires_at, dt.UTC)
            path = f"tenants.users[{i}].keys[{j}].expires"
            if moment <= now:
                found.append(
                    Problem(
                        source, path, f"key {key.id} expired on {moment.isoformat()}; remove it"
                    )
                )
            elif moment - now <= EXPIRY_WARNING:
                found.append(
                    Problem(
                        source,
                        path,
                        f"key {key.id} expires in {_duration(moment - now)}, on {moment.isoformat()}",
                    )
                )
    for i, org in enumerate(config.tenants.organizations):
        if members.get(org.id, 0) == 0:
            found.append(
                Problem(
                    source, f"tenants.organizations[{i}]", f"organization {org.id} has no users"
                )
            )
    named = [
        *((f"routing.models[{i}]", m) for i, m in enumerate(config.routing.models)),
        *(
            (f"routing.embeddingModels[{i}]", m)
            for i, m in enumerate(config.routing.embeddingModels)
        ),
    ]
    for path, model in named:
        priced = model_price(config.pricing, model)
        if priced.source == "default":
            found.append(
                Problem(
                    source,
                    path,
                    f"{model} has no price of its own and {priced.missing}; it is charged at "
                    "pricing.default",
                )
            )
    return found


def _duration(left: dt.timedelta) -> str:
    if left >= dt.timedelta(days=1):
        return f"{left.days} day(s)"
    return f"{max(1, int(left.total_seconds() // 3600))} hour(s)"


def check_file(
    path: Path, now: dt.datetime
) -> tuple[list[Problem], list[Problem], StackConfig | None]:
    try:
        config = load_stack_file(path)
    except ConfigError as exc:
        return exc.problems, [], None
    return [], warnings_for(config, display_path(path), now), config


def run(args: Any) -> int:
    paths = all_stacks() if args.stack == "all" else [resolve_stack(args.stack)]
    now = dt.datetime.now(dt.UTC)
    failed = False
    for path in paths:
        errors, warnings, config = check_file(path, now)
        if errors:
            failed = True
            print(f"{display_path(path)}: {len(errors)} error(s)")
        else:
            assert config is not None
            counts = tenant_counts(config)
            print(
                f"{display_path(path)}: ok ({counts.organizations} organizations, {counts.users} users, "
                f"{counts.keys} keys)" + (f", {len(warnings)} warning(s)" if warnings else "")
            )
        for problem in errors:
            print(f"  error: {problem.path or '(file)'}: {problem.message}")
        for problem in warnings:
            print(f"  warning: {problem.path}: {problem.message}")
        if warnings and args.strict:
            failed = True
    return 1 if failed else 0


def configure(parser: argparse.ArgumentParser) -> None:
    """The arguments of `provision check` (its help line is in provision/cli/__init__.py)."""
    parser.add_argument("--stack", default="all", help="stack name, path, or 'all' (default)")
    parser.add_argument("--strict", action="store_true", help="warnings fail too")
    parser.set_defaults(handler=run)
