"""Reading stack files: one validation for the Pulumi program, the local runtime and the CLI.

A stack file (`stacks/Pulumi.<stack>.yaml`) is validated once into typed objects (the model is
in provision/stack/model.py). Every mistake is reported with the file, the path inside it
(`tenants.users[2].org`) and what was expected, and all mistakes are reported together.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError

from provision.errors import ConfigError, Problem
from provision.stack.contract import KEY_PREFIX
from provision.stack.model import (
    KEY_ID,
    MODEL_ID,
    PROJECT,
    ROOT,
    SECRET_KEYS,
    SLUG,
    STACKS_DIR,
    AiGatewaySettings,
    ApiKey,
    CustomDomain,
    Organization,
    Price,
    Pricing,
    RateLimit,
    Routing,
    SpendRate,
    StackConfig,
    Tenants,
    User,
)
from provision.stack.references import View, check_references, salvage

# The config API lives here (the model's types are re-exported for its callers).
__all__ = [
    "KEY_ID",
    "MODEL_ID",
    "PROJECT",
    "ROOT",
    "SECRET_KEYS",
    "SLUG",
    "STACKS_DIR",
    "AiGatewaySettings",
    "ApiKey",
    "CustomDomain",
    "Organization",
    "Price",
    "Pricing",
    "RateLimit",
    "SpendRate",
    "Routing",
    "StackConfig",
    "Tenants",
    "User",
    "all_stacks",
    "display_path",
    "load_stack_file",
    "parse_pulumi_config",
    "parse_settings",
    "parse_stack_text",
    "resolve_stack",
    "strip_namespace",
    "yaml_load",
]

# ---------------------------------------------------------------------------- loading


def resolve_stack(stack: str | Path) -> Path:
    """`dev` → stacks/Pulumi.dev.yaml; a path (anything with / or .yaml) is taken as given."""
    if isinstance(stack, Path):
        return stack
    if "/" in stack or stack.endswith((".yaml", ".yml")):
        return Path(stack)
    return STACKS_DIR / f"Pulumi.{stack}.yaml"


def all_stacks() -> list[Path]:
    return sorted(STACKS_DIR.glob("Pulumi.*.yaml"))


def display_path(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


# libyaml's parser when PyYAML was built with it: ten times faster on a 10,000-user stack.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def yaml_load(text: str) -> Any:
    """`yaml.safe_load`, with the C parser where available (same resolvers, same result)."""
    return yaml.load(text, Loader=_LOADER)  # noqa: S506 (a safe loader)


def load_stack_file(path: Path) -> StackConfig:
    """Read and validate a stack file as the Pulumi CLI would hand it to the program."""
    source = display_path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([Problem(source, "", "file not found")]) from None
    return parse_stack_text(text, source)[0]


def parse_stack_text(text: str, source: str) -> tuple[StackConfig, dict[str, Any]]:
    """Validate a stack file's text; also its raw settings (namespace removed, secrets as the
    file holds them: ciphertext)."""
    try:
        document = yaml_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError([Problem(source, "", f"not valid YAML: {exc}")]) from None
    if not isinstance(document, dict) or not isinstance(document.get("config"), dict):
        raise ConfigError([Problem(source, "config", "expected a mapping of settings")])
    settings = strip_namespace(document["config"], source)
    return parse_settings(settings, source), settings


def strip_namespace(config: dict[str, Any], source: str) -> dict[str, Any]:
    """`llm-gateway:tenants` → `tenants`; other namespaces (e.g. `cloudflare:`) are not ours."""
    ours: dict[str, Any] = {}
    for key, value in config.items():
        namespace, _, name = str(key).rpartition(":")
        if namespace == PROJECT:
            ours[name] = value
        elif not namespace:
            raise ConfigError(
                [Problem(source, f"config.{key}", f"expected a namespaced key '{PROJECT}:{key}'")]
            )
    return ours


def parse_pulumi_config(
    values: dict[str, str], source: str, *, secret: frozenset[str] | None = None
) -> StackConfig:
    """Settings as the Pulumi engine passes them: strings, with objects as JSON text.

    `secret` names the settings the engine holds as secrets; a secret setting outside it was
    set in plain text, which is refused before anything else. Secret values are never read.
    """
    if secret is not None:
        plain = [
            Problem(
                source,
                key,
                f"must be set with `pulumi config set --secret {key} ...`, not in plain text",
            )
            for key in SECRET_KEYS
            if key in values and key not in secret
        ]
        if plain:
            raise ConfigError(plain)
        values = {k: v for k, v in values.items() if k not in SECRET_KEYS}
    decoded: dict[str, Any] = {}
    for name, text in values.items():
        try:
            decoded[name] = json.loads(text)
        except (json.JSONDecodeError, TypeError):
            decoded[name] = text
        if isinstance(decoded[name], (int, float)) and not isinstance(decoded[name], bool):
            decoded[name] = text  # ids that look like numbers stay strings
    return parse_settings(decoded, source)


def parse_settings(settings: dict[str, Any], source: str) -> StackConfig:
    """Validate a mapping of our settings (namespace already removed); all problems at once."""
    problems: list[Problem] = []
    public = {k: v for k, v in settings.items() if k not in SECRET_KEYS}
    for key in SECRET_KEYS:
        value = settings.get(key)
        if value is not None and not _looks_secret(value):
            problems.append(
                Problem(
                    source,
                    key,
                    "secret settings must be stored encrypted; set it with "
                    f"`pulumi config set --secret {key} ...`, never in plain text",
                )
            )
    try:
        config = StackConfig.model_validate(public)
    except ValidationError as exc:
        problems.extend(_translate(exc, source))
        # Keep going over the parts that are well-typed, so one run lists every problem.
        problems.extend(check_references(salvage(public), source))
        raise ConfigError(problems) from None
    problems.extend(check_references(View.of(config), source))
    if problems:
        raise ConfigError(problems)
    return config


def _looks_secret(value: Any) -> bool:
    # In a stack file: `{secure: <ciphertext>}`, or a mapping of those when set with
    # `pulumi config set --secret --path 'providerApiKeys.openai'`; through the engine:
    # already decrypted text that we never inspect (the program reads it with require_secret).
    if isinstance(value, dict) and set(value) == {"secure"}:
        return True
    return isinstance(value, dict) and bool(value) and all(map(_looks_secret, value.values()))


def format_loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _translate(exc: ValidationError, source: str) -> list[Problem]:
    problems = []
    for error in exc.errors(include_url=False):
        loc = tuple(p for p in error["loc"] if p not in ("date", "datetime", "function-after"))
        kind = error["type"]
        if kind == "extra_forbidden":
            parent = _model_at(loc[:-1])
            allowed = ", ".join(parent.model_fields) if parent else ""
            message = f"unknown field '{loc[-1]}'" + (f"; allowed: {allowed}" if allowed else "")
        elif kind == "missing":
            message = "required field is missing"
        elif kind == "string_pattern_mismatch":
            message = f"{_short(error['input'])} does not match {error['ctx']['pattern']}"
        else:
            message = f"{error['msg']} (got {_short(error['input'])})"
        problems.append(Problem(source, format_loc(loc), message))
    return _dedupe(problems)


def _dedupe(problems: list[Problem]) -> list[Problem]:
    # A date-or-datetime field reports one error per alternative; keep the first per path.
    seen: dict[str, Problem] = {}
    for problem in problems:
        seen.setdefault(problem.path, problem)
    return list(seen.values())


def _short(value: Any) -> str:
    if isinstance(value, str) and value.startswith(KEY_PREFIX):
        return f"'{KEY_PREFIX}…' (a plain API key: not shown; revoke it, it is in this file now)"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _model_at(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """Which model a validation location points into (to list its allowed fields)."""
    model: type[BaseModel] | None = StackConfig
    keyed = False  # the previous field is a mapping: this part is one of its keys
    for part in loc:
        if isinstance(part, int) or keyed:
            keyed = False
            continue
        field = model.model_fields.get(part) if model is not None else None
        if field is None:
            return None
        model = _inner_model(field.annotation)
        if model is None:
            return None
        keyed = _is_mapping(field.annotation)
    return model


def _is_mapping(annotation: Any) -> bool:
    """dict[…] itself, or inside Optional/Annotated."""
    if get_origin(annotation) is dict:
        return True
    return any(_is_mapping(arg) for arg in get_args(annotation))


def _inner_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _inner_model(arg)
        if found:
            return found
    return None
