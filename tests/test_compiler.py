"""Tenant compiler: the KV records Pulumi writes and the Worker reads (storage contract)."""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import json
import re
from decimal import Decimal
from typing import Any

import pytest
import yaml

from provision.compiler import (
    MANAGED_PREFIXES,
    allowed_models,
    compile_records,
    dumps,
    tenant_counts,
)
from provision.config import (
    PROJECT,
    StackConfig,
    load_stack_file,
    parse_pulumi_config,
    parse_settings,
)
from provision.config import stack_file as real_stack_file
from provision.keys import (
    HASH_PATTERN,
    KEY_PATTERN,
    KEY_PREFIX,
    demo_key,
    generate_key,
    hash_key,
    is_demo_hash,
    mask,
)
from provision.money import format_usd, micros_to_decimal, usd_to_micros
from tests.pulumi_support import load_stack_config

CATALOG = ["openai/gpt-4o-mini", "openai/gpt-4o", "anthropic/claude-haiku-4-5"]
H1, H2, H3, H4 = (hash_key(f"gw_live_{'k' * 39}{i}") for i in range(4))


def base_settings() -> dict[str, Any]:
    """A small stack: two orgs, three users, four keys (one revoked)."""
    return {
        "accountId": "0" * 32,
        "gatewayId": "gw",
        "workerName": "w",
        "workersDevSubdomain": "acme",
        "compatibilityDate": "2026-11-01",
        "routing": {"models": list(CATALOG), "defaultModel": "openai/gpt-4o-mini"},
        "pricing": {"default": {"inputPerMTok": "1", "outputPerMTok": "2"}},
        "tenants": {
            "organizations": [
                {"id": "acme", "name": "Acme", "monthlyBudgetUsd": "1234.56"},
                {
                    "id": "globex",
                    "name": "Globex",
                    "monthlyBudgetUsd": "0.000001",
                    "failureMode": "fail-open",
                    "fallbackDailyLimitUsd": "2.5",
                    "allowedModels": ["openai/gpt-4o", "anthropic/claude-haiku-4-5"],
                    "cacheTtl": 300,
                },
            ],
            "users": [
                {
                    "id": "ana",
                    "email": "ana@acme.example",
                    "org": "acme",
                    "monthlyLimitUsd": "100",
                    "keys": [
                        {"id": "k_ana_1", "sha256": H1, "created": "2026-11-01"},
                        {
                            "id": "k_ana_0",
                            "sha256": H2,
                            "created": "2026-01-01",
                            "status": "revoked",
                        },
                    ],
                },
                {
                    "id": "ben",
                    "email": "ben@acme.example",
                    "org": "acme",
                    "monthlyLimitUsd": "19.99",
                    "allowedModels": ["anthropic/claude-haiku-4-5", "openai/gpt-4o"],
                    "keys": [
                        {
                            "id": "k_ben",
                            "sha256": H3,
                            "created": "2026-11-01",
                            "expires": "2027-02-01",
                        }
                    ],
                },
                {
                    "id": "chen",
                    "email": "chen@globex.example",
                    "org": "globex",
                    "monthlyLimitUsd": "5",
                    "keys": [{"id": "k_chen", "sha256": H4, "created": "2026-11-01"}],
                },
            ],
        },
    }


def build(settings: dict[str, Any] | None = None) -> StackConfig:
    return parse_settings(settings or base_settings(), "inline")


def records_of(settings: dict[str, Any] | None = None) -> dict[str, Any]:
    return {k: json.loads(v) for k, v in compile_records(build(settings)).items()}


def tenants(settings: dict[str, Any]) -> dict[str, Any]:
    return settings["tenants"]


# ----------------------------------------------------------------- record layout


def test_record_keys_follow_the_contract() -> None:
    """Exactly one record per org, user and key hash, plus the `meta:tenants` index."""
    assert set(compile_records(build())) == {
        "org:acme:config",
        "org:globex:config",
        "user:ana:config",
        "user:ben:config",
        "user:chen:config",
        f"apikey:{H1}",
        f"apikey:{H2}",
        f"apikey:{H3}",
        f"apikey:{H4}",
        "meta:tenants",
    }


def test_apikey_record_holds_the_whole_effective_policy() -> None:
    """One read of `apikey:{sha256}` gives the hot path principal, status, expiry and policy."""
    assert records_of()[f"apikey:{H1}"] == {
        "v": 1,
        "keyId": "k_ana_1",
        "userId": "ana",
        "orgId": "acme",
        "status": "active",
        "expiresAt": None,
        "policy": {
            "userLimitMicros": 100_000_000,
            "orgBudgetMicros": 1_234_560_000,
            "failureMode": "fail-closed",
            "fallbackDailyLimitMicros": 0,
            "allowedModels": CATALOG,
            "defaultModel": "openai/gpt-4o-mini",
            "cacheTtl": 0,
            "priceOverrides": {},
        },
    }


def test_user_and_org_records() -> None:
    """`user:{id}:config` and `org:{id}:config` carry ids, limits in µUSD and status."""
    records = records_of()
    assert records["user:ana:config"] == {
        "v": 1,
        "id": "ana",
        "orgId": "acme",
        "email": "ana@acme.example",
        "monthlyLimitMicros": 100_000_000,
        "status": "active",
        "keyIds": ["k_ana_0", "k_ana_1"],
    }
    assert records["org:globex:config"] == {
        "v": 1,
        "id": "globex",
        "name": "Globex",
        "monthlyBudgetMicros": 1,
        "failureMode": "fail-open",
        "fallbackDailyLimitMicros": 2_500_000,
        "status": "active",
    }


def test_meta_tenants_indexes_orgs_users_and_keys() -> None:
    """`meta:tenants` lists org ids, user → org, key counts and a config version."""
    meta = records_of()["meta:tenants"]
    assert meta["orgs"] == ["acme", "globex"]
    assert meta["users"] == {"ana": "acme", "ben": "acme", "chen": "globex"}
    assert (meta["keyCount"], meta["activeKeyCount"]) == (4, 3)
    assert re.fullmatch(r"[0-9a-f]{16}", meta["configVersion"])


def test_config_version_changes_with_any_record() -> None:
    """Any change to a record changes `meta:tenants.configVersion` (admin metrics see it)."""
    settings = base_settings()
    tenants(settings)["users"][2]["monthlyLimitUsd"] = "6"
    before, after = records_of()["meta:tenants"], records_of(settings)["meta:tenants"]
    assert before["configVersion"] != after["configVersion"]


@pytest.mark.parametrize("stack", ["dev", "example"])
def test_every_value_is_versioned_canonical_json(stack: str) -> None:
    """Every record has `"v": 1` and is canonical JSON (sorted keys, no spaces)."""
    records = compile_records(load_stack_file(real_stack_file(stack)))
    for key, value in records.items():
        data = json.loads(value)
        assert data["v"] == 1, key
        assert dumps(data) == value, key


@pytest.mark.parametrize("stack", ["dev", "example"])
def test_kv_keys_are_provider_safe(stack: str) -> None:
    """Keys are Pulumi-managed prefixes of `[A-Za-z0-9:_-]`, under KV's 512 bytes (TF#6542)."""
    for key in compile_records(load_stack_file(real_stack_file(stack))):
        assert key.startswith(MANAGED_PREFIXES), key
        assert re.fullmatch(r"[A-Za-z0-9:_-]{1,512}", key), key


# ------------------------------------------------------------------------ money


@pytest.mark.parametrize(
    ("usd", "micros"),
    [
        ("0.000001", 1),
        ("1234.56", 1_234_560_000),
        ("0", 0),
        ("19.99", 19_990_000),
        ("0.1", 100_000),
        ("999999999999.999999", 999_999_999_999_999_999),
    ],
)
def test_money_is_exact_integer_micro_dollars(usd: str, micros: int) -> None:
    """USD amounts become exact integer µUSD in records (no float rounding)."""
    settings = base_settings()
    tenants(settings)["users"][0]["monthlyLimitUsd"] = usd
    value = records_of(settings)["user:ana:config"]["monthlyLimitMicros"]
    assert value == micros and type(value) is int


@pytest.mark.parametrize(
    ("usd", "micros"), [(1234.56, 1_234_560_000), (0.000001, 1), (19.99, 19_990_000)]
)
def test_money_from_engine_floats_is_exact(usd: float, micros: int) -> None:
    """Amounts arriving as JSON numbers from the Pulumi engine convert exactly too."""
    settings = base_settings()
    tenants(settings)["organizations"][0]["monthlyBudgetUsd"] = usd
    engine = {k: v if isinstance(v, str) else json.dumps(v) for k, v in settings.items()}
    config = parse_pulumi_config(engine, "inline")
    assert json.loads(compile_records(config)["org:acme:config"])["monthlyBudgetMicros"] == micros


def test_usd_to_micros_refuses_sub_micro_amounts() -> None:
    """A conversion that would lose a fraction of a micro-dollar fails loudly."""
    assert usd_to_micros(Decimal("0.000001")) == 1
    with pytest.raises(ValueError, match="more than 6 decimal"):
        usd_to_micros("0.0000001")
    with pytest.raises(ValueError, match="not a number"):
        usd_to_micros("ten")


@pytest.mark.parametrize(
    ("micros", "text"),
    [
        (0, "$0.00"),
        (1, "$0.000001"),
        (1_234_500_000, "$1,234.50"),
        (1_234_567, "$1.234567"),
        (19_990_000, "$19.99"),
        (10_000, "$0.01"),
    ],
)
def test_format_usd(micros: int, text: str) -> None:
    """µUSD are shown as dollars with cents, and more digits only when they matter."""
    assert format_usd(micros) == text
    assert format_usd(micros, symbol=False) == text.removeprefix("$")
    assert usd_to_micros(micros_to_decimal(micros)) == micros


# --------------------------------------------------------------- models and defaults


def test_allowed_models_are_catalog_and_org_and_user_in_catalog_order() -> None:
    """A key may use only models in the catalog, its org's list and its user's list."""
    settings = base_settings()
    tenants(settings)["users"][2]["allowedModels"] = [
        "anthropic/claude-haiku-4-5",
        "openai/gpt-4o-mini",
    ]
    records = records_of(settings)
    assert records[f"apikey:{H1}"]["policy"]["allowedModels"] == CATALOG
    assert records[f"apikey:{H3}"]["policy"]["allowedModels"] == [
        "openai/gpt-4o",
        "anthropic/claude-haiku-4-5",
    ]
    assert records[f"apikey:{H4}"]["policy"]["allowedModels"] == ["anthropic/claude-haiku-4-5"]
    config = build(settings)
    org, user = config.tenants.organizations[1], config.tenants.users[2]
    assert allowed_models(config, org, user) == ["anthropic/claude-haiku-4-5"]


def test_default_model_prefers_org_then_stack_default() -> None:
    """The org's defaultModel wins over routing.defaultModel."""
    settings = base_settings()
    tenants(settings)["organizations"][0]["defaultModel"] = "openai/gpt-4o"
    records = records_of(settings)
    assert records[f"apikey:{H1}"]["policy"]["defaultModel"] == "openai/gpt-4o"
    assert records[f"apikey:{H4}"]["policy"]["defaultModel"] == "openai/gpt-4o"  # first allowed


def test_default_model_falls_back_to_first_allowed() -> None:
    """When the default is not allowed for a key, the first allowed model is its default."""
    policy = records_of()[f"apikey:{H3}"]["policy"]  # ben: org default not in his list
    assert policy["defaultModel"] == "openai/gpt-4o"
    assert policy["defaultModel"] in policy["allowedModels"]


def test_default_model_is_null_when_nothing_is_allowed() -> None:
    """A user whose list shares nothing with the org's gets no models and no default."""
    settings = base_settings()
    tenants(settings)["users"][2]["allowedModels"] = ["openai/gpt-4o-mini"]
    policy = records_of(settings)[f"apikey:{H4}"]["policy"]
    assert policy["allowedModels"] == [] and policy["defaultModel"] is None


def test_org_policy_fields_reach_the_key() -> None:
    """Failure mode, fallback limit and cache TTL of the org are in each key's policy."""
    policy = records_of()[f"apikey:{H4}"]["policy"]
    assert policy["failureMode"] == "fail-open"
    assert policy["fallbackDailyLimitMicros"] == 2_500_000
    assert policy["cacheTtl"] == 300
    assert policy["orgBudgetMicros"] == 1 and policy["userLimitMicros"] == 5_000_000


# ----------------------------------------------------------------------- statuses


def test_revoked_key_is_revoked() -> None:
    """A revoked key compiles to status `revoked`, while the user's other key stays active."""
    records = records_of()
    assert records[f"apikey:{H2}"]["status"] == "revoked"
    assert records[f"apikey:{H1}"]["status"] == "active"


def test_suspended_user_suspends_their_keys() -> None:
    """Suspending a user turns their active keys into `suspended`; revoked stays revoked."""
    settings = base_settings()
    tenants(settings)["users"][0]["status"] = "suspended"
    records = records_of(settings)
    assert records["user:ana:config"]["status"] == "suspended"
    assert records[f"apikey:{H1}"]["status"] == "suspended"
    assert records[f"apikey:{H2}"]["status"] == "revoked"
    assert records[f"apikey:{H3}"]["status"] == "active"


def test_suspended_org_suspends_every_key_in_it() -> None:
    """Suspending an org turns every active key of its users into `suspended`."""
    settings = base_settings()
    tenants(settings)["organizations"][0]["status"] = "suspended"
    records = records_of(settings)
    assert records["org:acme:config"]["status"] == "suspended"
    assert {records[f"apikey:{h}"]["status"] for h in (H1, H3)} == {"suspended"}
    assert records[f"apikey:{H4}"]["status"] == "active"


# ------------------------------------------------------------------------- expiry


@pytest.mark.parametrize(
    ("expires", "epoch"),
    [
        (dt.date(2027, 2, 1), 1801440000),
        ("2027-02-01", 1801440000),
        (dt.datetime(2027, 1, 31, 18, 0, tzinfo=dt.timezone(dt.timedelta(hours=1))), 1801414800),
        ("2027-01-31T18:00:00+01:00", 1801414800),
        ("2027-01-31T17:00:00Z", 1801414800),
        (dt.datetime(2027, 1, 31, 17, 0), 1801414800),
    ],
    ids=["date", "date-text", "datetime-tz", "text-tz", "text-z", "naive-is-utc"],
)
def test_expiry_is_epoch_seconds_utc(expires: Any, epoch: int) -> None:
    """A date expires at 00:00 UTC; a timestamp honours its offset (none means UTC)."""
    settings = base_settings()
    tenants(settings)["users"][2]["keys"][0]["expires"] = expires
    assert records_of(settings)[f"apikey:{H4}"]["expiresAt"] == epoch
    assert dt.datetime.fromtimestamp(1801440000, dt.UTC) == dt.datetime(2027, 2, 1, tzinfo=dt.UTC)


def test_expiry_from_yaml_and_engine_agree() -> None:
    """A YAML date and the engine's date text compile to the same expiry."""
    text = "expires: 2027-01-31T18:00:00+01:00\nday: 2027-02-01\n"
    parsed = yaml.safe_load(text)
    for value, key in (
        (parsed["expires"], "2027-01-31T18:00:00+01:00"),
        (parsed["day"], "2027-02-01"),
    ):
        a, b = base_settings(), base_settings()
        tenants(a)["users"][2]["keys"][0]["expires"] = value
        tenants(b)["users"][2]["keys"][0]["expires"] = key
        assert records_of(a) == records_of(b)


# ---------------------------------------------------------------- determinism


def test_same_config_gives_identical_bytes() -> None:
    """Compiling twice (even from separately parsed configs) gives byte-identical records."""
    first, second = compile_records(build()), compile_records(build())
    assert first == second
    assert list(first) == sorted(first)


def _reversed_everywhere(settings: dict[str, Any]) -> dict[str, Any]:
    changed = copy.deepcopy(settings)
    t = tenants(changed)
    t["organizations"].reverse()
    t["users"].reverse()
    for user in t["users"]:
        user["keys"].reverse()
        if user.get("allowedModels"):
            user["allowedModels"].reverse()
    for org in t["organizations"]:
        if org.get("allowedModels"):
            org["allowedModels"].reverse()
    return changed


def test_reordering_yaml_lists_changes_no_record() -> None:
    """Reordering orgs, users, keys or allow-lists gives identical records, meta included."""
    assert compile_records(build(_reversed_everywhere(base_settings()))) == compile_records(build())


@pytest.mark.parametrize("stack", ["dev", "example"])
def test_reordering_a_real_stack_changes_no_record(stack: str) -> None:
    """The same holds for the real stack files."""
    document = yaml.safe_load(real_stack_file(stack).read_text(encoding="utf-8"))
    settings = {k.removeprefix(f"{PROJECT}:"): v for k, v in document["config"].items()}
    original = parse_settings(settings, stack)
    assert compile_records(
        parse_settings(_reversed_everywhere(settings), stack)
    ) == compile_records(original)


@pytest.mark.parametrize("stack", ["dev", "example"])
def test_local_and_deployed_records_are_identical(stack: str) -> None:
    """Records from the YAML file (local runtime) equal those from engine config (Pulumi)."""
    engine = {k.removeprefix(f"{PROJECT}:"): v for k, v in load_stack_config(stack).items()}
    deployed = compile_records(parse_pulumi_config(engine, stack))
    assert deployed == compile_records(load_stack_file(real_stack_file(stack)))


def test_removed_user_leaves_no_record() -> None:
    """Deleting a user from the stack removes their user record and all their key records."""
    settings = base_settings()
    del tenants(settings)["users"][0]
    records = compile_records(build(settings))
    assert "user:ana:config" not in records
    assert not {f"apikey:{H1}", f"apikey:{H2}"} & set(records)
    assert "ana" not in json.loads(records["meta:tenants"])["users"]
    assert not any('"ana"' in value for value in records.values())


def test_tenant_counts() -> None:
    """Counts of orgs, users, keys and non-revoked keys for the stack outputs."""
    counts = tenant_counts(build())
    assert (counts.organizations, counts.users, counts.keys, counts.active_keys) == (2, 3, 4, 3)


# ------------------------------------------------------------------------- keys


@pytest.mark.parametrize("stack", ["dev", "example"])
def test_no_plain_key_in_any_record(stack: str) -> None:
    """Records hold only hashes: no plain key (demo or otherwise) appears in any value."""
    config = load_stack_file(real_stack_file(stack))
    records = compile_records(config)
    blob = "\n".join(f"{k}={v}" for k, v in records.items())
    assert KEY_PREFIX not in blob
    for user in config.tenants.users:
        for key in user.keys:
            assert demo_key(key.id) not in blob
            assert f"apikey:{key.sha256}" in records


def test_generated_keys_have_the_documented_format() -> None:
    """New keys are `gw_live_` + 40 alphanumerics, and never repeat."""
    keys = {generate_key() for _ in range(50)}
    assert len(keys) == 50
    for key in keys:
        assert KEY_PATTERN.match(key) and len(key) == len(KEY_PREFIX) + 40


def test_hash_key_is_sha256_hex_of_the_key() -> None:
    """The stored form is the lower-case hex SHA-256 of the key as clients send it."""
    key = "gw_live_" + "A" * 40
    assert hash_key(key) == hashlib.sha256(key.encode()).hexdigest()
    assert HASH_PATTERN.match(hash_key(key))


def test_demo_keys_are_deterministic_and_distinct() -> None:
    """Demo keys derive from the key id alone, look like real keys, and differ per id."""
    assert demo_key("key_alice_laptop") == demo_key("key_alice_laptop")
    assert demo_key("key_alice_laptop") != demo_key("key_bob_ci")
    assert KEY_PATTERN.match(demo_key("key_x"))


def test_dev_stack_holds_the_demo_keys_hashes() -> None:
    """The dev stack's hashes are its demo keys, so `make dev` can print working keys."""
    config = load_stack_file(real_stack_file("dev"))
    for user in config.tenants.users:
        for key in user.keys:
            assert is_demo_hash(key.id, key.sha256)
            assert hash_key(demo_key(key.id)) == key.sha256


def test_is_demo_hash_is_false_for_real_keys() -> None:
    """A randomly generated key is never taken for a demo key."""
    assert not is_demo_hash("key_alice_laptop", hash_key(generate_key()))
    assert not is_demo_hash("key_other", hash_key(demo_key("key_alice_laptop")))


def test_mask_never_reveals_the_key() -> None:
    """A masked key keeps a recognisable prefix and suffix, never the secret middle."""
    key = generate_key()
    masked = mask(key)
    assert masked.startswith(key[:12]) and masked.endswith(key[-4:])
    assert key[12:-4] not in masked
