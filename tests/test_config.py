"""The stack config model: real stack files load, and every mistake is reported precisely."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from provision.errors import ConfigError
from provision.stack.config import (
    PROJECT,
    STACKS_DIR,
    StackConfig,
    load_stack_file,
    parse_pulumi_config,
    parse_settings,
    resolve_stack,
)
from provision.stack.keys import demo_key, generate_key, hash_key, is_demo_hash
from tests.pulumi_support import load_stack_config
from tests.support import ROOT

STACKS = ["dev", "example"]
USER_FIELDS = (
    "id, email, org, monthlyLimitUsd, status, allowedModels, defaultModel, aliases, rateTier, "
    "alertThresholds, keys"
)


def settings_of(stack: str) -> dict[str, Any]:
    """A real stack file's settings, namespace removed, as a fresh mutable dict."""
    document = yaml.safe_load(resolve_stack(stack).read_text(encoding="utf-8"))
    prefix = f"{PROJECT}:"
    return {k.removeprefix(prefix): copy.deepcopy(v) for k, v in document["config"].items()}


def write_stack(tmp_path: Path, settings: dict[str, Any], name: str = "Pulumi.t.yaml") -> Path:
    path = tmp_path / name
    config = {f"{PROJECT}:{k}": v for k, v in settings.items()}
    path.write_text(yaml.safe_dump({"config": config}, sort_keys=False), encoding="utf-8")
    return path


def errors_for(
    tmp_path: Path, mutate: Callable[[dict[str, Any]], None], base: str = "example"
) -> tuple[Path, ConfigError]:
    """Load a mutated copy of a real stack file; it must fail with a ConfigError."""
    settings = settings_of(base)
    mutate(settings)
    path = write_stack(tmp_path, settings)
    with pytest.raises(ConfigError) as info:
        load_stack_file(path)
    return path, info.value


def by_path(error: ConfigError) -> dict[str, str]:
    return {p.path: p.message for p in error.problems}


def assert_one_problem(path: Path, error: ConfigError, where: str, *phrases: str) -> str:
    """Exactly one problem, at `where`, naming the file, with every phrase in its message."""
    assert [p.path for p in error.problems] == [where], str(error)
    problem = error.problems[0]
    assert problem.file == str(path)
    assert f"{path}: {where}: " in str(error)
    for phrase in phrases:
        assert phrase in problem.message, problem.message
    return problem.message


def users(settings: dict[str, Any]) -> list[dict[str, Any]]:
    return settings["tenants"]["users"]


def orgs(settings: dict[str, Any]) -> list[dict[str, Any]]:
    return settings["tenants"]["organizations"]


# ---------------------------------------------------------------------- the real files


@pytest.mark.parametrize(
    "stack", sorted({*STACKS, *(p.name[7:-5] for p in STACKS_DIR.glob("Pulumi.*.yaml"))})
)
def test_real_stack_files_validate(stack: str) -> None:
    """Every stack file in stacks/ is valid (incl. no plain-text secret, which `pulumi up`
    itself does not check for providerApiKeys), so `pulumi up` and `make dev` can run it."""
    config = load_stack_file(resolve_stack(stack))
    assert config.tenants.organizations and config.tenants.users
    assert any(user.keys for user in config.tenants.users)


@pytest.mark.parametrize("stack", STACKS)
def test_cli_config_and_stack_file_give_the_same_model(stack: str) -> None:
    """The program (engine strings) and the local runtime (YAML) see the same config."""
    prefix = f"{PROJECT}:"
    engine = {k.removeprefix(prefix): v for k, v in load_stack_config(stack).items()}
    from_engine = parse_pulumi_config(engine, f"stacks/Pulumi.{stack}.yaml")
    assert instants(from_engine) == instants(load_stack_file(resolve_stack(stack)))


def instants(config: StackConfig) -> dict[str, Any]:
    """The model as JSON, key expiry as an instant (the engine's date text parses as a
    midnight datetime, YAML's as a date: the same moment, which is all the compiler uses)."""
    data = config.model_dump(mode="json")
    for user, model_user in zip(data["tenants"]["users"], config.tenants.users, strict=True):
        for key, model_key in zip(user["keys"], model_user.keys, strict=True):
            key["expires"] = model_key.expires_at()
    return data


def _model_fields(model: type[BaseModel], seen: set[str]) -> set[str]:
    names: set[str] = set()
    for name, info in model.model_fields.items():
        names.add(name)
        for arg in [info.annotation, *getattr(info.annotation, "__args__", ())]:
            inner = [arg, *getattr(arg, "__args__", ())]
            for candidate in inner:
                if isinstance(candidate, type) and issubclass(candidate, BaseModel):
                    if candidate.__name__ not in seen:
                        seen.add(candidate.__name__)
                        names |= _model_fields(candidate, seen)
    return names


def test_example_stack_shows_every_setting() -> None:
    """The example stack teaches every field of the model (as a setting or a comment)."""
    text = resolve_stack("example").read_text(encoding="utf-8")
    missing = sorted(
        name
        for name in _model_fields(StackConfig, set())
        if not re.search(rf"(^|[\s:#({{,]){re.escape(name)}:", text, re.M)
    )
    assert missing == []
    for command in ("--secret adminApiKey", "--secret aiGatewayToken", "--path 'providerApiKeys."):
        assert command in text


def test_example_stack_is_production_shaped() -> None:
    """The example has a custom domain, no demo keys, and shows expiring and revoked keys."""
    config = load_stack_file(resolve_stack("example"))
    keys = [(k.id, k) for u in config.tenants.users for k in u.keys]
    assert config.customDomain is not None and not config.allowDemoKeys
    assert 2 <= len(config.tenants.organizations) <= 3
    assert any(k.expires is not None for _, k in keys)
    assert any(k.status == "revoked" for _, k in keys)
    assert not any(is_demo_hash(kid, k.sha256) for kid, k in keys)
    assert "gw_live_" not in resolve_stack("example").read_text(encoding="utf-8")


# ------------------------------------------------------------------------- mistakes


def test_unknown_field_lists_the_allowed_fields(tmp_path: Path) -> None:
    """A typo in a field name is refused, and the message lists the fields that exist."""
    path, error = errors_for(tmp_path, lambda s: users(s)[1].update(monthlyLimit=5))
    assert_one_problem(
        path,
        error,
        "tenants.users[1].monthlyLimit",
        "unknown field 'monthlyLimit'",
        f"allowed: {USER_FIELDS}",
    )


def test_unknown_top_level_setting_is_refused(tmp_path: Path) -> None:
    """A misspelt stack setting is reported by its name, with the settings that exist."""
    path, error = errors_for(tmp_path, lambda s: s.update(workerNmae="x"))
    assert_one_problem(path, error, "workerNmae", "unknown field 'workerNmae'", "workerName")


@pytest.mark.parametrize(
    ("mutate", "where", "phrase"),
    [
        (
            lambda s: users(s)[0].update(monthlyLimitUsd="lots"),
            "tenants.users[0].monthlyLimitUsd",
            "'lots'",
        ),
        (
            lambda s: s["aiGateway"]["rateLimit"].update(limit="ten"),
            "aiGateway.rateLimit.limit",
            "'ten'",
        ),
        (
            lambda s: orgs(s)[1].update(allowedModels="openai/gpt-4o"),
            "tenants.organizations[1].allowedModels",
            "list",
        ),
        (
            lambda s: users(s)[2]["keys"][0].update(created="last tuesday"),
            "tenants.users[2].keys[0].created",
            "'last tuesday'",
        ),
        (
            lambda s: users(s)[2]["keys"][0].update(status="paused"),
            "tenants.users[2].keys[0].status",
            "'active' or 'revoked'",
        ),
    ],
    ids=["money-text", "int-text", "list-scalar", "date-text", "enum"],
)
def test_wrong_type_is_reported_with_the_value(tmp_path: Path, mutate, where, phrase) -> None:
    """A value of the wrong type or outside its choices is reported with what was found."""
    path, error = errors_for(tmp_path, mutate)
    assert_one_problem(path, error, where, phrase)


def test_user_pointing_at_a_missing_org(tmp_path: Path) -> None:
    """A user whose org does not exist is reported with the orgs that do."""
    path, error = errors_for(tmp_path, lambda s: users(s)[3].update(org="umbrella"))
    assert_one_problem(
        path,
        error,
        "tenants.users[3].org",
        "unknown organization 'umbrella'",
        "declared: acme, globex, initech",
    )


@pytest.mark.parametrize(
    ("mutate", "where", "phrase"),
    [
        (
            lambda s: [orgs(s)[2].update(id="acme"), users(s)[4].update(org="acme")],
            "tenants.organizations[2].id",
            "duplicate organization id 'acme' (first used at tenants.organizations[0])",
        ),
        (
            lambda s: users(s)[4].update(id="ana", org="acme"),
            "tenants.users[4].id",
            "duplicate user id 'ana' (first used at tenants.users[0])",
        ),
        (
            lambda s: users(s)[3]["keys"][0].update(id="key_ana_laptop"),
            "tenants.users[3].keys[0].id",
            "duplicate key id 'key_ana_laptop' (first used at tenants.users[0].keys[0])",
        ),
        (
            lambda s: users(s)[3]["keys"][0].update(sha256=users(s)[1]["keys"][0]["sha256"]),
            "tenants.users[3].keys[0].sha256",
            "already used at tenants.users[1].keys[0]",
        ),
    ],
    ids=["org-id", "user-id", "key-id", "key-hash"],
)
def test_duplicates_name_the_first_use(tmp_path: Path, mutate, where, phrase) -> None:
    """Duplicate org, user and key ids and key hashes are refused, pointing at the original."""
    path, error = errors_for(tmp_path, mutate)
    assert_one_problem(path, error, where, phrase)


def test_plain_key_pasted_as_hash_is_refused_without_echoing_it(tmp_path: Path) -> None:
    """A plain `gw_live_` key in a sha256 field is refused, and the error never repeats it."""
    plain = generate_key()
    path, error = errors_for(tmp_path, lambda s: users(s)[0]["keys"][0].update(sha256=plain))
    assert_one_problem(path, error, "tenants.users[0].keys[0].sha256", "SHA-256", "64 lower-case")
    assert plain not in str(error) and plain[8:] not in str(error)


@pytest.mark.parametrize("bad", ["ABCDEF" + "0" * 58, "0" * 63, hash_key("x") + "0"])
def test_malformed_hash_is_refused(tmp_path: Path, bad: str) -> None:
    """Only 64 lower-case hex characters are accepted as a key hash."""
    path, error = errors_for(tmp_path, lambda s: users(s)[2]["keys"][0].update(sha256=bad))
    assert_one_problem(path, error, "tenants.users[2].keys[0].sha256", "SHA-256")


def test_negative_limit_is_refused(tmp_path: Path) -> None:
    """A negative spend limit is refused."""
    path, error = errors_for(tmp_path, lambda s: users(s)[1].update(monthlyLimitUsd=-5))
    assert_one_problem(
        path, error, "tenants.users[1].monthlyLimitUsd", "greater than or equal to 0"
    )


@pytest.mark.parametrize("amount", [0.0000001, 12.3456789])
def test_more_than_six_decimals_is_refused(tmp_path: Path, amount: float) -> None:
    """Amounts finer than one micro-dollar are refused, not silently rounded."""
    path, error = errors_for(tmp_path, lambda s: orgs(s)[0].update(monthlyBudgetUsd=amount))
    assert_one_problem(
        path, error, "tenants.organizations[0].monthlyBudgetUsd", "no more than 6 decimal places"
    )


def test_six_decimals_are_accepted_exactly(tmp_path: Path) -> None:
    """Exactly six decimals (one micro-dollar) are kept exactly."""
    settings = settings_of("example")
    orgs(settings)[0]["monthlyBudgetUsd"] = 0.000001
    config = load_stack_file(write_stack(tmp_path, settings))
    assert config.tenants.organizations[0].monthlyBudgetUsd == Decimal("0.000001")


def test_default_model_must_be_in_the_catalog(tmp_path: Path) -> None:
    """routing.defaultModel must be one of routing.models."""
    path, error = errors_for(tmp_path, lambda s: s["routing"].update(defaultModel="openai/o9"))
    assert_one_problem(path, error, "routing.defaultModel", "'openai/o9' is not in routing.models")


def test_alias_to_unknown_model_is_refused(tmp_path: Path) -> None:
    """An alias must point at a model of the catalog."""
    path, error = errors_for(tmp_path, lambda s: s["routing"]["aliases"].update(o9="openai/o9"))
    assert_one_problem(
        path,
        error,
        "routing.aliases.o9",
        "'openai/o9' is not in routing.models or routing.embeddingModels",
    )


def test_alias_shadowing_a_model_is_refused(tmp_path: Path) -> None:
    """An alias may not be a model id itself (the meaning of a name must be unambiguous)."""
    model = "openai/gpt-4o"
    path, error = errors_for(
        tmp_path, lambda s: s["routing"]["aliases"].update({model: "openai/gpt-4o-mini"})
    )
    assert_one_problem(path, error, f"routing.aliases.{model}", "must not shadow a model id")


@pytest.mark.parametrize(
    ("mutate", "where"),
    [
        (
            lambda s: users(s)[1]["allowedModels"].append("openai/o9"),
            "tenants.users[1].allowedModels[2]",
        ),
        (
            lambda s: orgs(s)[1]["allowedModels"].insert(0, "openai/o9"),
            "tenants.organizations[1].allowedModels[0]",
        ),
    ],
    ids=["user", "org"],
)
def test_allowed_models_must_be_in_the_catalog(tmp_path: Path, mutate, where) -> None:
    """Every allowedModels entry (org or user) must be a model of the catalog."""
    path, error = errors_for(tmp_path, mutate)
    assert_one_problem(
        path, error, where, "'openai/o9' is not in routing.models or routing.embeddingModels"
    )


def routing(settings: dict[str, Any]) -> dict[str, Any]:
    return settings["routing"]


ROUTING_MISTAKES = {
    # case: (mutation of the example stack, where, a phrase of the message)
    "fallback chain of an unknown name": (
        lambda s: routing(s)["fallbacks"].update({"nope": ["openai/gpt-4o"]}),
        "routing.fallbacks.nope",
        "neither a model nor an alias",
    ),
    "fallback to a model outside the catalog": (
        lambda s: routing(s)["fallbacks"]["claude-sonnet"].append("openai/o9"),
        "routing.fallbacks.claude-sonnet[2]",
        "'openai/o9' is not in routing.models",
    ),
    "fallback of a chat model to an embedding model": (
        lambda s: routing(s)["fallbacks"]["claude-sonnet"].append("openai/text-embedding-3-small"),
        "routing.fallbacks.claude-sonnet[2]",
        "is not a chat model",
    ),
    "retries of a model outside the catalog": (
        lambda s: routing(s)["retries"].update({"openai/o9": {"maxAttempts": 2}}),
        "routing.retries.openai/o9",
        "is not in routing.models",
    ),
    "retries beyond AI Gateway's five attempts": (
        lambda s: routing(s)["retries"]["openai/gpt-4o-mini"].update(maxAttempts=6),
        "routing.retries.openai/gpt-4o-mini.maxAttempts",
        "less than or equal to 5",
    ),
    "a stand-in that is not a Workers AI model": (
        lambda s: routing(s)["workersAiStandIns"].update({"openai/gpt-4o": "openai/gpt-4o-mini"}),
        "routing.workersAiStandIns.openai/gpt-4o",
        "must be a workers-ai chat model",
    ),
    "a rate period the binding does not allow": (
        lambda s: s["rateTiers"]["standard"].update(periodSeconds=30),
        "rateTiers.standard.periodSeconds",
        "10 or 60",
    ),
    "an unknown field in a rate tier": (
        lambda s: s["rateTiers"]["standard"].update(burst=5),
        "rateTiers.standard.burst",
        "requests, periodSeconds, keyedBy, maxConcurrent, namespaceId",
    ),
    "an org naming an unknown rate tier": (
        lambda s: orgs(s)[0].update(rateTier="gold"),
        "tenants.organizations[0].rateTier",
        "unknown rate tier 'gold' (rateTiers: standard, trial)",
    ),
    "a user naming an unknown rate tier": (
        lambda s: users(s)[1].update(rateTier="gold"),
        "tenants.users[1].rateTier",
        "unknown rate tier 'gold'",
    ),
    "an org alias to a model outside the catalog": (
        lambda s: orgs(s)[0]["aliases"].update(big="openai/o9"),
        "tenants.organizations[0].aliases.big",
        "'openai/o9' is not in routing.models",
    ),
    "a user alias shadowing a model id": (
        lambda s: users(s)[0]["aliases"].update({"openai/gpt-4o": "openai/gpt-4o-mini"}),
        "tenants.users[0].aliases.openai/gpt-4o",
        "must not shadow a model id",
    ),
    "an org fallback chain to an unknown model": (
        lambda s: orgs(s)[0]["fallbacks"]["fast"].append("openai/o9"),
        "tenants.organizations[0].fallbacks.fast[1]",
        "'openai/o9' is not in routing.models",
    ),
    "a user default outside the user's allow-list": (
        lambda s: users(s)[1].update(defaultModel="openai/gpt-4o"),
        "tenants.users[1].defaultModel",
        "not among the models this user may use",
    ),
    "a CORS origin with a path": (
        lambda s: orgs(s)[0]["corsOrigins"].append("https://app.example.com/chat"),
        "tenants.organizations[0].corsOrigins[1]",
        "does not match",
    ),
    "a user default outside the catalog": (
        lambda s: users(s)[0].update(defaultModel="openai/o9"),
        "tenants.users[0].defaultModel",
        "not among the models this user may use",
    ),
}


@pytest.mark.parametrize("case", list(ROUTING_MISTAKES))
def test_routing_mistakes_name_the_field(tmp_path: Path, case: str) -> None:
    """Fallbacks, retries, stand-ins, rate tiers, tenant aliases and defaults: each mistake is
    one problem at its own path."""
    mutate, where, phrase = ROUTING_MISTAKES[case]
    path, error = errors_for(tmp_path, mutate)
    assert_one_problem(path, error, where, phrase)


def test_org_default_model_must_be_allowed_for_the_org(tmp_path: Path) -> None:
    """An org's defaultModel must be among the models that org may use."""
    path, error = errors_for(tmp_path, lambda s: orgs(s)[1].update(defaultModel="openai/gpt-4o"))
    assert_one_problem(path, error, "tenants.organizations[1].defaultModel", "not among the models")


@pytest.mark.parametrize("name", ["adminApiKey", "aiGatewayToken"])
def test_plain_text_secret_is_refused_without_echoing_it(tmp_path: Path, name: str) -> None:
    """A secret written in plain text is refused, and the error never contains its value."""
    path, error = errors_for(tmp_path, lambda s: s.update({name: "hunter2"}))
    assert_one_problem(path, error, name, f"pulumi config set --secret {name}")
    assert "hunter2" not in str(error) and "hunter2" not in repr(error.problems)


def test_plain_text_provider_key_is_refused_without_echoing_it(tmp_path: Path) -> None:
    """Provider keys written in plain text are refused without showing them."""
    path, error = errors_for(tmp_path, lambda s: s.update(providerApiKeys={"openai": "sk-leak9"}))
    assert_one_problem(path, error, "providerApiKeys", "--secret")
    assert "sk-leak9" not in str(error)


def test_encrypted_secrets_are_accepted(tmp_path: Path) -> None:
    """Secrets stored by `pulumi config set --secret` (incl. `--path` objects) are accepted."""
    settings = settings_of("example")
    settings["adminApiKey"] = {"secure": "v1:Zm9vYmFy"}
    settings["aiGatewayToken"] = {"secure": "v1:YmF6cXV4"}
    settings["providerApiKeys"] = {
        "openai": {"secure": "v1:cXV4"},
        "anthropic": {"secure": "v1:eA"},
    }
    config = load_stack_file(write_stack(tmp_path, settings))
    assert config == load_stack_file(resolve_stack("example"))


def test_public_demo_key_needs_allow_demo_keys(tmp_path: Path) -> None:
    """The dev stack's public demo keys are refused in a stack without allowDemoKeys: true."""
    path, error = errors_for(tmp_path, lambda s: s.pop("allowDemoKeys"), base="dev")
    expected = {f"tenants.users[{i}].keys[0].sha256" for i in range(3)}
    assert set(by_path(error)) == expected
    assert all("public demo key" in p.message and p.file == str(path) for p in error.problems)


def test_demo_key_hash_on_another_key_id_is_still_refused(tmp_path: Path) -> None:
    """A demo key hash is recognised by its own key id, the way it was derived."""

    def mutate(s: dict[str, Any]) -> None:
        users(s)[0]["keys"][0].update(id="key_demo", sha256=hash_key(demo_key("key_demo")))

    path, error = errors_for(tmp_path, mutate)
    assert_one_problem(path, error, "tenants.users[0].keys[0].sha256", "allowDemoKeys: true")


def test_worker_needs_a_url(tmp_path: Path) -> None:
    """A stack with neither workersDevSubdomain nor customDomain is refused."""

    def mutate(s: dict[str, Any]) -> None:
        s.pop("customDomain")
        s.pop("workersDevSubdomain", None)

    path, error = errors_for(tmp_path, mutate)
    assert_one_problem(path, error, "workersDevSubdomain", "customDomain")


def test_missing_required_setting(tmp_path: Path) -> None:
    """A missing required setting is named."""
    path, error = errors_for(tmp_path, lambda s: s.pop("accountId"))
    assert_one_problem(path, error, "accountId", "required field is missing")


def test_several_schema_mistakes_are_reported_together(tmp_path: Path) -> None:
    """Every field-level mistake in a file is reported in one ConfigError."""

    def mutate(s: dict[str, Any]) -> None:
        s["adminApiKey"] = "hunter2"
        users(s)[0]["monthlyLimitUsd"] = -1
        users(s)[1]["colour"] = "blue"
        orgs(s)[2]["failureMode"] = "fail-sometimes"
        users(s)[4]["keys"][0]["sha256"] = "nope"

    _, error = errors_for(tmp_path, mutate)
    assert set(by_path(error)) == {
        "adminApiKey",
        "tenants.users[0].monthlyLimitUsd",
        "tenants.users[1].colour",
        "tenants.organizations[2].failureMode",
        "tenants.users[4].keys[0].sha256",
    }
    assert "(5 problems)" in str(error)


def test_several_reference_mistakes_are_reported_together(tmp_path: Path) -> None:
    """Every cross-reference mistake in a file is reported in one ConfigError."""

    def mutate(s: dict[str, Any]) -> None:
        s["routing"]["defaultModel"] = "openai/o9"
        users(s)[0]["org"] = "nope"
        users(s)[3]["id"] = "chen"
        users(s)[4]["keys"][0]["id"] = "key_ana_old"

    _, error = errors_for(tmp_path, mutate)
    assert set(by_path(error)) == {
        "routing.defaultModel",
        "tenants.users[0].org",
        "tenants.users[3].id",
        "tenants.users[4].keys[0].id",
    }


def test_type_and_reference_mistakes_are_reported_together(tmp_path: Path) -> None:
    """A file with both kinds of mistakes lists all of them in one run, not the first kind only."""

    def mutate(s: dict[str, Any]) -> None:
        users(s)[1]["monthlyLimitUsd"] = "lots"  # a type mistake...
        users(s)[0]["org"] = "nope"  # ...and reference mistakes in well-typed entries
        s["routing"]["defaultModel"] = "openai/o9"

    _, error = errors_for(tmp_path, mutate)
    assert set(by_path(error)) == {
        "tenants.users[1].monthlyLimitUsd",
        "tenants.users[0].org",
        "routing.defaultModel",
    }


# ---------------------------------------------------------------------- file handling


def test_yaml_syntax_error_names_the_file_and_line(tmp_path: Path) -> None:
    """A YAML syntax error is reported as such, with the file and the line."""
    path = tmp_path / "Pulumi.broken.yaml"
    path.write_text("config:\n  llm-gateway:accountId: [unclosed\n  llm-gateway:x: 1\n")
    with pytest.raises(ConfigError) as info:
        load_stack_file(path)
    (problem,) = info.value.problems
    assert problem.file == str(path) and "not valid YAML" in problem.message
    assert "line 3" in problem.message


def test_missing_file_is_reported(tmp_path: Path) -> None:
    """A stack file that does not exist gives a clear error naming it."""
    path = tmp_path / "Pulumi.nope.yaml"
    with pytest.raises(ConfigError) as info:
        load_stack_file(path)
    assert str(info.value).endswith(f"{path}: file not found")


@pytest.mark.parametrize("text", ["", "config: 3\n", "- a\n"])
def test_file_without_config_mapping_is_refused(tmp_path: Path, text: str) -> None:
    """A file without a `config:` mapping is refused with that explanation."""
    path = tmp_path / "Pulumi.empty.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_stack_file(path)
    assert [p.path for p in info.value.problems] == ["config"]


def test_unnamespaced_key_is_refused(tmp_path: Path) -> None:
    """A setting without the project namespace is refused with the spelling it needs."""
    path = tmp_path / "Pulumi.t.yaml"
    path.write_text("config:\n  accountId: abc\n")
    with pytest.raises(ConfigError) as info:
        load_stack_file(path)
    assert "expected a namespaced key 'llm-gateway:accountId'" in str(info.value)


def test_other_namespaces_are_ignored(tmp_path: Path) -> None:
    """Settings of other namespaces (e.g. the cloudflare provider's) are not ours to check."""
    settings = settings_of("example")
    path = write_stack(tmp_path, settings)
    document = yaml.safe_load(path.read_text())
    document["config"]["cloudflare:apiUserServiceKey"] = {"secure": "v1:abc"}
    path.write_text(yaml.safe_dump(document))
    assert load_stack_file(path) == load_stack_file(resolve_stack("example"))


# ------------------------------------------------------------- engine (string) settings


def test_engine_settings_keep_numeric_looking_ids_as_text() -> None:
    """An all-digit account id passed by the engine stays a string, not a number."""
    settings = {k.removeprefix(f"{PROJECT}:"): v for k, v in load_stack_config("example").items()}
    settings["accountId"] = "01234567890123456789012345678901"
    config = parse_pulumi_config(settings, "stacks/Pulumi.example.yaml")
    assert config.accountId == "01234567890123456789012345678901"


def test_engine_settings_report_the_stack_file() -> None:
    """Engine-provided settings are validated the same way and name the given source."""
    settings = {k.removeprefix(f"{PROJECT}:"): v for k, v in load_stack_config("example").items()}
    settings["routing"] = settings["routing"].replace(
        '"defaultModel": "openai/gpt-4o-mini"', '"defaultModel": "openai/o9"'
    )
    with pytest.raises(ConfigError) as info:
        parse_pulumi_config(settings, "stacks/Pulumi.example.yaml")
    assert str(info.value).endswith(
        "stacks/Pulumi.example.yaml: routing.defaultModel: 'openai/o9' is not in routing.models"
    )


def test_parse_settings_accepts_a_minimal_stack() -> None:
    """Only the account, gateway, worker name, date, URL, routing and prices are required."""
    config = parse_settings(
        {
            "accountId": "0" * 32,
            "gatewayId": "gw",
            "workerName": "w",
            "workersDevSubdomain": "acme",
            "compatibilityDate": "2026-11-01",
            "routing": {"models": ["openai/gpt-4o"], "defaultModel": "openai/gpt-4o"},
            "pricing": {"models": {"openai/gpt-4o": {"inputPerMTok": 2.5, "outputPerMTok": 10}}},
        },
        "inline",
    )
    assert config.tenants.users == [] and config.aiGateway.authentication is True
    assert config.gatewayBaseUrl == "https://gateway.ai.cloudflare.com/v1"


def test_cli_loader_passes_strings_and_json_like_pulumi() -> None:
    """Config reaches the program as the CLI sends it: strings, objects as JSON, dates as text."""
    config = load_stack_config("example")
    assert all(isinstance(v, str) for v in config.values())
    assert config["llm-gateway:compatibilityDate"] == "2026-11-01"
    assert config["llm-gateway:allowDemoKeys"] == "false"
    tenants = json.loads(config["llm-gateway:tenants"])
    assert tenants["users"][0]["keys"][0]["created"] == "2026-10-02"
    assert tenants["users"][1]["keys"][0]["expires"] == "2027-02-01"


def test_engine_secrets_must_be_engine_secrets() -> None:
    """A secret setting the engine does not hold as a secret was set in plain text: refused,
    naming it, without its value; held as secrets, they are never parsed."""
    settings = {k.removeprefix(f"{PROJECT}:"): v for k, v in load_stack_config("example").items()}
    settings["adminApiKey"] = "hunter2"
    settings["aiGatewayToken"] = "tok-secret"
    with pytest.raises(ConfigError) as info:
        parse_pulumi_config(
            settings, "stacks/Pulumi.example.yaml", secret=frozenset({"aiGatewayToken"})
        )
    assert [(p.path, "--secret" in p.message) for p in info.value.problems] == [
        ("adminApiKey", True)
    ]
    assert "hunter2" not in str(info.value)
    config = parse_pulumi_config(
        settings, "stacks/Pulumi.example.yaml", secret=frozenset({"adminApiKey", "aiGatewayToken"})
    )
    assert config.workerName == "llm-gateway-prod"


def test_vertex_models_need_the_project_and_region(tmp_path: Path) -> None:
    """A google-vertex-ai model without routing.vertexAi is an error naming the field."""
    text = (ROOT / "tests" / "fixtures" / "Pulumi.providers.yaml").read_text(encoding="utf-8")
    edited = text.replace("    vertexAi: {project: gateway-tests-1, region: us-central1}\n", "")
    assert edited != text
    path = tmp_path / "Pulumi.novertex.yaml"
    path.write_text(edited, encoding="utf-8")
    with pytest.raises(ConfigError) as raised:
        load_stack_file(path)
    (problem,) = raised.value.problems
    assert problem.path.startswith("routing.models[")
    assert "routing.vertexAi" in problem.message


def _providers_stack_edited(tmp_path: Path, old: str, new: str) -> Path:
    text = (ROOT / "tests" / "fixtures" / "Pulumi.providers.yaml").read_text(encoding="utf-8")
    edited = text.replace(old, new)
    assert edited != text
    path = tmp_path / "Pulumi.edited.yaml"
    path.write_text(edited, encoding="utf-8")
    return path


def test_an_azure_model_needs_a_deployment(tmp_path: Path) -> None:
    """An azure-openai model without a deployment is an error naming the field; a deployment of
    a model the stack does not offer is one too."""
    path = _providers_stack_edited(
        tmp_path,
        "        gpt-4o-mini: {deployment: chat-4o-mini-prod}\n",
        "        gpt-4o: {deployment: chat-4o-prod}\n",
    )
    with pytest.raises(ConfigError) as raised:
        load_stack_file(path)
    messages = {p.path: p.message for p in raised.value.problems}
    (model_path,) = [p for p in messages if p.startswith("routing.models[")]
    assert "routing.azureOpenai.deployments.gpt-4o-mini" in messages[model_path]
    assert (
        "'azure-openai/gpt-4o' is not in routing.models"
        in messages["routing.azureOpenai.deployments.gpt-4o"]
    )


def test_azure_and_bedrock_models_need_their_sections(tmp_path: Path) -> None:
    path = _providers_stack_edited(
        tmp_path,
        "      - azure-openai/gpt-4o-mini  # priced from the catalog\n",
        "      - azure-openai/gpt-4o-mini\n",
    )
    text = path.read_text(encoding="utf-8")
    start = text.index("    awsBedrock:")
    end = text.index("  llm-gateway:pricing:")
    path.write_text(text[:start] + text[end:], encoding="utf-8")
    with pytest.raises(ConfigError) as raised:
        load_stack_file(path)
    messages = [p.message for p in raised.value.problems]
    assert any("azure-openai models need routing.azureOpenai" in m for m in messages)
    assert any("aws-bedrock models need routing.awsBedrock" in m for m in messages)


def test_a_byok_alias_names_a_provider_the_stack_uses(tmp_path: Path) -> None:
    path = _providers_stack_edited(
        tmp_path,
        "    awsBedrock: {region: us-east-1}\n",
        "    awsBedrock: {region: us-east-1}\n"
        "    byokAliases: {anthropc: team, workers-ai: x, openai: prod}\n",
    )
    with pytest.raises(ConfigError) as raised:
        load_stack_file(path)
    messages = {p.path: p.message for p in raised.value.problems}
    assert "no provider 'anthropc'" in messages["routing.byokAliases.anthropc"]
    assert "AI binding" in messages["routing.byokAliases.workers-ai"]
    assert "routing.byokAliases.openai" not in messages
