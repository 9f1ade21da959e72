"""Synthetic stacks of company size, for the deploy scale test and `make bench-deploy`.

`scale_settings(users)` is the example stack's gateway settings with `users` users (one key
each, 50 users per organization); the edits below are the changes the benchmark prices.
Everything is deterministic, so two runs declare the same resources.
"""

from __future__ import annotations

import copy
import hashlib
from pathlib import Path
from typing import Any

import yaml

from tests.support import ROOT

USERS_PER_ORG = 50
EXAMPLE = ROOT / "stacks" / "Pulumi.example.yaml"
PREFIX = "llm-gateway:"


def _example_settings() -> dict[str, Any]:
    document = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    return {k.removeprefix(PREFIX): v for k, v in document["config"].items()}


def scale_settings(users: int) -> dict[str, Any]:
    """The example stack's settings with `users` users, one key each, 50 per organization."""
    settings = _example_settings()
    orgs = max(1, -(-users // USERS_PER_ORG))
    settings["tenants"] = {
        "organizations": [
            {
                "id": f"org-{o:05d}",
                "name": f"Organization {o}",
                "monthlyBudgetUsd": 5000,
                "failureMode": "fail-closed" if o % 2 else "fail-open",
                "fallbackDailyLimitUsd": 0 if o % 2 else 20,
            }
            for o in range(orgs)
        ],
        "users": [
            {
                "id": f"user-{u:06d}",
                "email": f"user{u}@org{u // USERS_PER_ORG}.example",
                "org": f"org-{u // USERS_PER_ORG:05d}",
                "monthlyLimitUsd": 100,
                "keys": [
                    {
                        "id": f"key_user-{u:06d}_1",
                        "name": "laptop",
                        "sha256": hashlib.sha256(f"scale-key-{u}".encode()).hexdigest(),
                        "created": "2026-11-01",
                    }
                ],
            }
            for u in range(users)
        ],
    }
    return settings


# ------------------------------------------------------------------ the changes we price


def change_one_user_limit(settings: dict[str, Any]) -> None:
    settings["tenants"]["users"][0]["monthlyLimitUsd"] = 250


def add_one_user(settings: dict[str, Any]) -> None:
    users = settings["tenants"]["users"]
    n = len(users)
    users.append(
        {
            "id": "new-hire",
            "email": "new.hire@org0.example",
            "org": "org-00000",
            "monthlyLimitUsd": 50,
            "keys": [
                {
                    "id": "key_new-hire_1",
                    "sha256": hashlib.sha256(f"scale-key-new-{n}".encode()).hexdigest(),
                    "created": "2026-12-01",
                }
            ],
        }
    )


def revoke_one_key(settings: dict[str, Any]) -> None:
    settings["tenants"]["users"][0]["keys"][0]["status"] = "revoked"


def change_one_org_budget(settings: dict[str, Any]) -> None:
    settings["tenants"]["organizations"][0]["monthlyBudgetUsd"] = 9000


def change_catalog(settings: dict[str, Any]) -> None:
    """A new model with its price and alias, and a new stack default model."""
    routing = settings["routing"]
    routing["models"].append("openai/gpt-4.1-mini")
    routing["aliases"]["gpt-4.1-mini"] = "openai/gpt-4.1-mini"
    routing["defaultModel"] = "openai/gpt-4.1-mini"
    settings["pricing"]["models"]["openai/gpt-4.1-mini"] = {
        "inputPerMTok": 0.40,
        "outputPerMTok": 1.60,
    }


def change_gateway_url(settings: dict[str, Any]) -> None:
    """Only a binding of the script changes (its AI_GATEWAY_BASE_URL)."""
    settings["gatewayBaseUrl"] = "https://gateway.example.net/v1"


CHANGES = {
    "one user's limit": change_one_user_limit,
    "one user added": add_one_user,
    "one key revoked": revoke_one_key,
    "one org's budget": change_one_org_budget,
    "catalog change": change_catalog,  # a model, its price and alias, a new default
    "gateway base URL (a binding)": change_gateway_url,
}


def changed(settings: dict[str, Any], change) -> dict[str, Any]:
    copied = copy.deepcopy(settings)
    change(copied)
    return copied


def write_stack(settings: dict[str, Any], path: Path) -> Path:
    """A stack file as a person would keep it (namespaced keys under `config`)."""
    document = {"config": {f"{PREFIX}{k}": v for k, v in settings.items()}}
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path
