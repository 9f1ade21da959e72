"""JSON Schema of a stack file, generated from the config model, so editors complete and check
fields as people type. `provision schema --write` refreshes the committed copy."""

from __future__ import annotations

import json
from typing import Any

from provision.stack.config import PROJECT, SECRET_KEYS, STACKS_DIR, StackConfig

SCHEMA_PATH = STACKS_DIR / "stack.schema.json"
SECURE = {
    "type": "object",
    "description": "encrypted by `pulumi config set --secret`",
    "properties": {"secure": {"type": "string"}},
    "required": ["secure"],
    "additionalProperties": False,
}


def stack_schema() -> dict[str, Any]:
    model = StackConfig.model_json_schema(mode="validation")
    definitions = model.pop("$defs", {})
    properties = {f"{PROJECT}:{name}": spec for name, spec in model["properties"].items()}
    for name in SECRET_KEYS:
        properties[f"{PROJECT}:{name}"] = (
            {"anyOf": [SECURE, {"type": "object", "additionalProperties": SECURE}]}
            if name == "providerApiKeys"
            else SECURE
        )
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": f"Pulumi stack file of {PROJECT}",
        "type": "object",
        "properties": {
            "config": {
                "type": "object",
                "properties": properties,
                "required": [f"{PROJECT}:{name}" for name in model.get("required", [])],
                # other namespaces (cloudflare:, pulumi:) belong to other tools
                "patternProperties": {f"^(?!{PROJECT}:)[^:]+:.+$": {}},
                "additionalProperties": False,
            },
            "encryptionsalt": {"type": "string"},
            "secretsprovider": {"type": "string"},
            "encryptedkey": {"type": "string"},
        },
        "required": ["config"],
        "additionalProperties": False,
        "$defs": definitions,
    }


def schema_text() -> str:
    return json.dumps(stack_schema(), indent=2, sort_keys=True) + "\n"
