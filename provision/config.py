"""The stack config model: one validation for the Pulumi program, the local runtime and the CLI.

A stack file (`stacks/Pulumi.<stack>.yaml`) is validated once into typed objects. Every
mistake is reported with the file, the path inside it (`tenants.users[2].org`) and what
was expected, and all mistakes are reported together.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, WithJsonSchema, field_validator

from provision.errors import ConfigError, Problem
from provision.keys import HASH_PATTERN, KEY_PREFIX, is_demo_hash

PROJECT = "llm-gateway"
ROOT = Path(__file__).resolve().parent.parent
STACKS_DIR = ROOT / "stacks"

SLUG = r"^[a-z0-9][a-z0-9_-]{0,62}$"
KEY_ID = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"
MODEL_ID = r"^[a-z0-9-]+/[A-Za-z0-9@._:/-]+$"

# Secret settings come from `pulumi config set --secret`; the model only checks that a
# stack file holds them encrypted, never their values.
SECRET_KEYS = ("adminApiKey", "aiGatewayToken", "providerApiKeys")

# Amounts are YAML numbers; the schema says so (pydantic would describe "number or any string").
Usd = Annotated[
    Decimal,
    Field(ge=0, max_digits=18, decimal_places=6),
    WithJsonSchema(
        {"type": "number", "minimum": 0, "description": "US dollars, at most 6 decimals"}
    ),
]
Slug = Annotated[str, Field(pattern=SLUG)]
ModelId = Annotated[str, Field(pattern=MODEL_ID)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=False, frozen=True)


class RateLimit(_Strict):
    """AI Gateway's own rate limit over the whole gateway; 0 turns it off."""

    limit: int = Field(0, ge=0)
    interval: int = Field(0, ge=0, description="window length in seconds")
    technique: Literal["fixed", "sliding"] = "fixed"


class AiGatewaySettings(_Strict):
    cacheTtl: int = Field(0, ge=0, le=2_592_000, description="seconds; 0 = caching off")
    cacheInvalidateOnUpdate: bool = True
    collectLogs: bool = True
    authentication: bool = True
    rateLimit: RateLimit = RateLimit()


class Routing(_Strict):
    """The models this gateway offers, the default one, and short aliases for clients."""

    models: list[ModelId] = Field(min_length=1)
    defaultModel: ModelId
    aliases: dict[str, ModelId] = {}
    upstreamTimeoutMs: int = Field(120_000, ge=100, le=600_000, description="time to first byte")
    maxOutputTokens: int = Field(
        4096, ge=1, le=1_000_000, description="output cap sent upstream when a client sets none"
    )


class Price(_Strict):
    """USD per million tokens; cached input tokens are charged at their own price if given."""

    inputPerMTok: Usd
    outputPerMTok: Usd
    cachedInputPerMTok: Usd | None = None


class Pricing(_Strict):
    models: dict[ModelId, Price] = {}
    default: Price | None = Field(
        None, description="price of catalog models without one; unset = every model must be priced"
    )


class CustomDomain(_Strict):
    hostname: str = Field(pattern=r"^[a-z0-9.-]+\.[a-z]{2,}$")
    zoneId: str = Field(pattern=r"^[0-9a-f]{32}$")


class ApiKey(_Strict):
    id: str = Field(pattern=KEY_ID)
    name: str = ""
    sha256: str = Field(json_schema_extra={"pattern": "^[0-9a-f]{64}$"})  # checked below, kindly
    created: dt.date
    expires: dt.datetime | dt.date | None = None
    status: Literal["active", "revoked"] = "active"

    @field_validator("sha256")
    @classmethod
    def _is_hash(cls, value: str) -> str:
        if not HASH_PATTERN.match(value):
            raise ValueError(
                "must be the SHA-256 of the key as 64 lower-case hex characters "
                "(plain keys never go in a stack file; use `provision keys create`)"
            )
        return value

    def expires_at(self) -> int | None:
        """Expiry as epoch seconds; a bare date means 00:00 UTC of that day."""
        if self.expires is None:
            return None
        if isinstance(self.expires, dt.datetime):
            moment = self.expires
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=dt.UTC)
        else:
            moment = dt.datetime.combine(self.expires, dt.time(), tzinfo=dt.UTC)
        return int(moment.timestamp())


class User(_Strict):
    id: Slug
    email: str = Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    org: Slug
    monthlyLimitUsd: Usd
    status: Literal["active", "suspended"] = "active"
    allowedModels: list[ModelId] | None = None
    keys: list[ApiKey] = []


class Organization(_Strict):
    id: Slug
    name: str = Field(min_length=1, max_length=200)
    monthlyBudgetUsd: Usd
    failureMode: Literal["fail-closed", "fail-open"] = "fail-closed"
    fallbackDailyLimitUsd: Usd = Decimal("0")
    status: Literal["active", "suspended"] = "active"
    allowedModels: list[ModelId] | None = None
    defaultModel: ModelId | None = None
    cacheTtl: int = Field(0, ge=0, le=2_592_000, description="AI Gateway cache TTL; 0 = off")
    priceOverrides: dict[ModelId, Price] = {}


class Tenants(_Strict):
    organizations: list[Organization] = []
    users: list[User] = []


class StackConfig(_Strict):
    """Everything a stack decides, except secrets (they stay in Pulumi's secret config)."""

    accountId: str = Field(pattern=r"^[0-9a-f]{32}$")
    gatewayId: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,63}$")
    workerName: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")
    compatibilityDate: dt.date
    gatewayBaseUrl: str = Field("https://gateway.ai.cloudflare.com/v1", pattern=r"^https?://")
    workersDevSubdomain: str | None = Field(
        None,
        pattern=r"^[a-z0-9][a-z0-9-]{0,62}$",
        description="the account's workers.dev subdomain",
    )
    customDomain: CustomDomain | None = None
    allowDemoKeys: bool = False
    aiGateway: AiGatewaySettings = AiGatewaySettings()
    routing: Routing
    pricing: Pricing = Pricing()
    tenants: Tenants = Tenants()


# ---------------------------------------------------------------------------- loading


def stack_file(stack: str) -> Path:
    return STACKS_DIR / f"Pulumi.{stack}.yaml"


def display_path(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def load_stack_file(path: Path) -> StackConfig:
    """Read and validate a stack file as the Pulumi CLI would hand it to the program."""
    source = display_path(path)
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError([Problem(source, "", "file not found")]) from None
    except yaml.YAMLError as exc:
        raise ConfigError([Problem(source, "", f"not valid YAML: {exc}")]) from None
    if not isinstance(document, dict) or not isinstance(document.get("config"), dict):
        raise ConfigError([Problem(source, "config", "expected a mapping of settings")])
    return parse_settings(strip_namespace(document["config"], source), source)


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


def parse_pulumi_config(values: dict[str, str], source: str) -> StackConfig:
    """Settings as the Pulumi engine passes them: strings, with objects as JSON text."""
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
        problems.extend(_check_references(_salvage(public), source))
        raise ConfigError(problems) from None
    problems.extend(_check_references(_View.of(config), source))
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
    model: Any = StackConfig
    for part in loc:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part) if isinstance(model, type) else None
        if field is None:
            return None
        model = _inner_model(field.annotation)
        if model is None:
            return None
    return model


def _inner_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _inner_model(arg)
        if found:
            return found
    return None


# ------------------------------------------------------------------ cross-references


@dataclass
class _View:
    """What the cross-reference checks look at; parts that failed type checks are left out."""

    routing: Routing | None
    pricing: Pricing
    orgs: list[tuple[int, Organization]]
    users: list[tuple[int, User]]
    allow_demo_keys: bool
    has_url: bool | None  # None: unknown, because those fields did not validate
    invalid_org_ids: frozenset[str] = frozenset()  # declared, but failed their own checks

    @classmethod
    def of(cls, config: StackConfig) -> _View:
        return cls(
            routing=config.routing,
            pricing=config.pricing,
            orgs=list(enumerate(config.tenants.organizations)),
            users=list(enumerate(config.tenants.users)),
            allow_demo_keys=config.allowDemoKeys,
            has_url=config.customDomain is not None or config.workersDevSubdomain is not None,
        )


def _valid(model: type[BaseModel], value: Any) -> Any:
    try:
        return model.model_validate(value)
    except ValidationError:
        return None


def _items(model: type[BaseModel], values: Any) -> list[tuple[int, Any]]:
    if not isinstance(values, list):
        return []
    return [(i, item) for i, raw in enumerate(values) if (item := _valid(model, raw)) is not None]


def _salvage(public: dict[str, Any]) -> _View:
    tenants = public.get("tenants") if isinstance(public.get("tenants"), dict) else {}
    return _View(
        routing=_valid(Routing, public.get("routing")),
        pricing=_valid(Pricing, public.get("pricing", {})) or Pricing(),
        orgs=_items(Organization, tenants.get("organizations")),
        users=_items(User, tenants.get("users")),
        allow_demo_keys=public.get("allowDemoKeys") is True,
        has_url=None,
        invalid_org_ids=frozenset(
            str(raw.get("id"))
            for raw in (tenants.get("organizations") or [])
            if isinstance(raw, dict) and _valid(Organization, raw) is None
        ),
    )


def _check_references(view: _View, source: str) -> list[Problem]:
    problems: list[Problem] = []

    def add(path: str, message: str) -> None:
        problems.append(Problem(source, path, message))

    if view.has_url is False:
        add(
            "workersDevSubdomain",
            "set the account's workers.dev subdomain or a customDomain, so the Worker has a URL",
        )
    catalog: set[str] | None = None
    if view.routing is not None:
        routing = view.routing
        catalog = set(routing.models)
        if routing.defaultModel not in catalog:
            add("routing.defaultModel", f"'{routing.defaultModel}' is not in routing.models")
        for alias, target in routing.aliases.items():
            if target not in catalog:
                add(f"routing.aliases.{alias}", f"'{target}' is not in routing.models")
            if alias in catalog:
                add(f"routing.aliases.{alias}", "an alias must not shadow a model id")
        for i, model in enumerate(routing.models):
            if model not in view.pricing.models and view.pricing.default is None:
                add(
                    f"routing.models[{i}]",
                    f"'{model}' has no price in pricing.models "
                    "(price it, or set pricing.default to charge unpriced models explicitly)",
                )
        for model in view.pricing.models:
            if model not in catalog:
                add(f"pricing.models.{model}", f"'{model}' is not in routing.models")

    org_ids: dict[str, int] = {}
    for i, org in view.orgs:
        if org.id in org_ids:
            add(
                f"tenants.organizations[{i}].id",
                f"duplicate organization id '{org.id}' "
                f"(first used at tenants.organizations[{org_ids[org.id]}])",
            )
        org_ids.setdefault(org.id, i)
        _check_models(org.allowedModels, catalog, f"tenants.organizations[{i}].allowedModels", add)
        for model in org.priceOverrides:
            if catalog is not None and model not in catalog:
                add(
                    f"tenants.organizations[{i}].priceOverrides.{model}",
                    f"'{model}' is not in routing.models",
                )
        allowed = set(org.allowedModels) if org.allowedModels is not None else catalog
        if org.defaultModel and allowed is not None and org.defaultModel not in allowed:
            add(
                f"tenants.organizations[{i}].defaultModel",
                f"'{org.defaultModel}' is not among the models this organization may use",
            )

    user_ids: dict[str, int] = {}
    key_ids: dict[str, str] = {}
    hashes: dict[str, str] = {}
    for i, user in view.users:
        where = f"tenants.users[{i}]"
        if user.id in user_ids:
            add(
                f"{where}.id",
                f"duplicate user id '{user.id}' (first used at tenants.users[{user_ids[user.id]}])",
            )
        user_ids.setdefault(user.id, i)
        if user.org not in org_ids and user.org not in view.invalid_org_ids:
            known = ", ".join(sorted(org_ids)) or "none declared"
            add(f"{where}.org", f"unknown organization '{user.org}' (declared: {known})")
        _check_models(user.allowedModels, catalog, f"{where}.allowedModels", add)
        for j, key in enumerate(user.keys):
            key_where = f"{where}.keys[{j}]"
            if key.id in key_ids:
                add(
                    f"{key_where}.id",
                    f"duplicate key id '{key.id}' (first used at {key_ids[key.id]})",
                )
            key_ids.setdefault(key.id, key_where)
            if key.sha256 in hashes:
                add(
                    f"{key_where}.sha256",
                    f"the same key hash is already used at {hashes[key.sha256]}",
                )
            hashes.setdefault(key.sha256, key_where)
            if not view.allow_demo_keys and is_demo_hash(key.id, key.sha256):
                add(
                    f"{key_where}.sha256",
                    "this is a public demo key (anyone can derive it); "
                    "only a stack with allowDemoKeys: true may carry it",
                )
    return problems


def _check_models(models: list[str] | None, catalog: set[str] | None, path: str, add) -> None:
    for k, model in enumerate(models or []):
        if catalog is not None and model not in catalog:
            add(f"{path}[{k}]", f"'{model}' is not in routing.models")
