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

from provision.money import MICROS_PER_USD, format_usd, usd_to_micros
from provision.stack.compiler import (
    compile_records,
    config_version,
    dumps,
    tenant_counts,
)
from provision.stack.config import (
    PROJECT,
    StackConfig,
    load_stack_file,
    parse_pulumi_config,
    parse_settings,
    resolve_stack,
)
from provision.stack.contract import MANAGED_PREFIXES, SCHEMA_VERSION, directory_shard, key_shard
from provision.stack.keys import (
    HASH_PATTERN,
    KEY_PATTERN,
    KEY_PREFIX,
    demo_key,
    generate_key,
    hash_key,
    is_demo_hash,
    mask,
)
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


def key_entry(records: dict[str, Any], sha256: str) -> dict[str, Any]:
    return records[key_shard(sha256)]["keys"][sha256]


def org_entry(records: dict[str, Any], org_id: str) -> dict[str, Any]:
    return records[directory_shard(org_id)]["orgs"][org_id]


def user_entry(records: dict[str, Any], org_id: str, user_id: str) -> dict[str, Any]:
    return org_entry(records, org_id)["users"][user_id]


def changed_records(settings: dict[str, Any]) -> set[str]:
    """The record keys whose value differs from the base stack's (or that appear or go)."""
    before, after = compile_records(build()), compile_records(build(settings))
    return {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}


# ----------------------------------------------------------------- record layout


def test_records_are_key_shards_directory_shards_and_the_index() -> None:
    """Keys go to `keys:{first 2 hex}`, orgs to `dir:{1 hex of sha256(id)}`, plus `meta:tenants`."""
    assert set(compile_records(build())) == {
        *(key_shard(h) for h in (H1, H2, H3, H4)),
        directory_shard("acme"),
        directory_shard("globex"),
        "meta:tenants",
    }
    assert re.fullmatch(r"keys:[0-9a-f]{2}", key_shard(H1))
    assert re.fullmatch(r"dir:[0-9a-f]", directory_shard("acme"))
    assert directory_shard("acme") == "dir:" + hashlib.sha256(b"acme").hexdigest()[0]


def test_key_shard_holds_the_principal_and_the_tenant_policy() -> None:
    """One read of a key's shard gives its principal, status, expiry, user and org policy."""
    records = records_of()
    assert key_entry(records, H1) == {
        "keyId": "k_ana_1",
        "userId": "ana",
        "orgId": "acme",
        "status": "active",
        "expiresAt": None,
        "monthlyLimitMicros": 100_000_000,
        "allowedModels": None,
    }
    assert records[key_shard(H4)]["orgs"]["globex"] == {
        "monthlyBudgetMicros": 1,
        "failureMode": "fail-open",
        "fallbackDailyLimitMicros": 2_500_000,
        "allowedModels": ["anthropic/claude-haiku-4-5", "openai/gpt-4o"],
        "defaultModel": None,
        "cacheTtl": 300,
        "priceOverrides": {},
    }


def test_key_shards_carry_no_catalog_wide_setting() -> None:
    """Models, aliases, prices and the stack default model are in the script, not in records."""
    blob = json.dumps(records_of())
    assert "openai/gpt-4o-mini" not in blob  # the stack default, in no allow-list
    settings = base_settings()
    settings["routing"]["models"].append("openai/gpt-4.1")
    settings["routing"]["defaultModel"] = "openai/gpt-4o"
    settings["routing"]["aliases"] = {"fast": "openai/gpt-4o-mini"}
    settings["pricing"]["default"] = {"inputPerMTok": "5", "outputPerMTok": "9"}
    assert changed_records(settings) == set()


def test_directory_holds_whole_organizations() -> None:
    """`dir:` shards hold each org's settings, its users and their key ids, hashes and status."""
    records = records_of()
    globex = org_entry(records, "globex")
    assert {k: v for k, v in globex.items() if k != "users"} == {
        "id": "globex",
        "name": "Globex",
        "status": "active",
        **records[key_shard(H4)]["orgs"]["globex"],
    }
    assert globex["users"] == {
        "chen": {
            "id": "chen",
            "orgId": "globex",
            "email": "chen@globex.example",
            "monthlyLimitMicros": 5_000_000,
            "status": "active",
            "allowedModels": None,
            "keys": {"k_chen": {"sha256": H4, "status": "active", "expiresAt": None}},
        }
    }
    assert set(user_entry(records, "acme", "ana")["keys"]) == {"k_ana_0", "k_ana_1"}


def test_index_record_holds_only_the_layout() -> None:
    """`meta:tenants` says the stack is deployed and how records are laid out; no tenant data."""
    assert records_of()["meta:tenants"] == {
        "v": SCHEMA_VERSION,
        "layout": {
            "keys": {"prefix": "keys:", "chars": 2},
            "directory": {"prefix": "dir:", "chars": 1},
        },
    }


def test_one_user_change_rewrites_its_key_shard_and_its_org_directory_shard() -> None:
    """A user's limit, a new user, a revoked key: at most the key shards and one dir shard."""
    settings = base_settings()
    tenants(settings)["users"][2]["monthlyLimitUsd"] = "6"
    assert changed_records(settings) == {key_shard(H4), directory_shard("globex")}

    settings = base_settings()
    tenants(settings)["users"][0]["keys"][0]["status"] = "revoked"
    assert changed_records(settings) == {key_shard(H1), directory_shard("acme")}

    settings = base_settings()
    new_hash = hash_key("gw_live_" + "n" * 40)
    tenants(settings)["users"].append(
        {
            "id": "dee",
            "email": "dee@acme.example",
            "org": "acme",
            "monthlyLimitUsd": "1",
            "keys": [{"id": "k_dee", "sha256": new_hash, "created": "2026-11-02"}],
        }
    )
    assert changed_records(settings) == {key_shard(new_hash), directory_shard("acme")}


def test_org_change_rewrites_the_shards_of_its_keys_only() -> None:
    """An org's budget reaches its own keys' shards and its directory shard, nothing else."""
    settings = base_settings()
    tenants(settings)["organizations"][1]["monthlyBudgetUsd"] = "7"
    assert changed_records(settings) == {key_shard(H4), directory_shard("globex")}


def test_config_version_follows_the_directory() -> None:
    """Any tenant change changes the config version; a catalog-only change does not."""
    base = config_version(compile_records(build()))
    assert re.fullmatch(r"[0-9a-f]{16}", base)
    settings = base_settings()
    tenants(settings)["users"][2]["monthlyLimitUsd"] = "6"
    assert config_version(compile_records(build(settings))) != base
    settings = base_settings()
    settings["routing"]["defaultModel"] = "openai/gpt-4o"
    assert config_version(compile_records(build(settings))) == base


@pytest.mark.parametrize("stack", ["dev", "example"])
def test_every_value_is_versioned_canonical_json(stack: str) -> None:
    """Every record carries the schema version and is canonical JSON (sorted keys, no spaces)."""
    records = compile_records(load_stack_file(resolve_stack(stack)))
    for key, value in records.items():
        data = json.loads(value)
        assert data["v"] == SCHEMA_VERSION, key
        assert dumps(data) == value, key


@pytest.mark.parametrize("stack", ["dev", "example"])
def test_kv_keys_are_provider_safe(stack: str) -> None:
    """Keys are Pulumi-managed prefixes of `[A-Za-z0-9:_-]`, under KV's 512 bytes (TF#6542)."""
    for key in compile_records(load_stack_file(resolve_stack(stack))):
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
    records = records_of(settings)
    for value in (
        user_entry(records, "acme", "ana")["monthlyLimitMicros"],
        key_entry(records, H1)["monthlyLimitMicros"],
    ):
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
    records = {k: json.loads(v) for k, v in compile_records(config).items()}
    assert org_entry(records, "acme")["monthlyBudgetMicros"] == micros
    assert records[key_shard(H1)]["orgs"]["acme"]["monthlyBudgetMicros"] == micros


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
    assert usd_to_micros(Decimal(micros) / MICROS_PER_USD) == micros


# ------------------------------------------------------------------ allow-lists


def test_allow_lists_are_kept_as_declared() -> None:
    """Org and user allow-lists reach the records as declared sets (None = the whole catalog);
    the Worker intersects them with the catalog it was rendered with (test_policy_e2e.py)."""
    records = records_of()
    assert key_entry(records, H3)["allowedModels"] == [  # sorted: YAML order means nothing
        "anthropic/claude-haiku-4-5",
        "openai/gpt-4o",
    ]
    assert key_entry(records, H1)["allowedModels"] is None
    assert records[key_shard(H1)]["orgs"]["acme"]["allowedModels"] is None


def test_org_price_overrides_are_micro_dollars() -> None:
    """An org's price override is compiled like a catalog price (µUSD per million tokens)."""
    settings = base_settings()
    tenants(settings)["organizations"][0]["priceOverrides"] = {
        "openai/gpt-4o": {"inputPerMTok": "1.5", "outputPerMTok": "6"}
    }
    policy = records_of(settings)[key_shard(H1)]["orgs"]["acme"]
    assert policy["priceOverrides"] == {
        "openai/gpt-4o": {
            "in": 1_500_000,
            "out": 6_000_000,
            "cachedIn": 1_500_000,
            "cacheWrite": 1_500_000,
        }
    }


def test_one_hour_cache_writes_and_long_context_prices_compile_alongside() -> None:
    """A 1-hour cache write price and a long-context price compile to µUSD too (the long one
    with its line); a price without them has neither key, so the Worker refuses 1-hour caching
    and never switches prices."""
    settings = base_settings()
    tenants(settings)["organizations"][0]["priceOverrides"] = {
        "openai/gpt-4o": {
            "inputPerMTok": "3",
            "outputPerMTok": "15",
            "cacheWrite1hInputPerMTok": "6",
            "longContext": {
                "aboveInputTokens": 200_000,
                "inputPerMTok": "6",
                "outputPerMTok": "22.5",
            },
        },
        "openai/gpt-4o-mini": {"inputPerMTok": "0.15", "outputPerMTok": "0.6"},
    }
    prices = records_of(settings)[key_shard(H1)]["orgs"]["acme"]["priceOverrides"]
    assert prices["openai/gpt-4o"] == {
        "in": 3_000_000,
        "out": 15_000_000,
        "cachedIn": 3_000_000,
        "cacheWrite": 3_000_000,
        "cacheWrite1h": 6_000_000,
        "long": {
            "in": 6_000_000,
            "out": 22_500_000,
            "cachedIn": 6_000_000,
            "cacheWrite": 6_000_000,
            "above": 200_000,
        },
    }
    assert set(prices["openai/gpt-4o-mini"]) == {"in", "out", "cachedIn", "cacheWrite"}


# ----------------------------------------------------------------------- statuses


def test_revoked_key_is_revoked() -> None:
    """A revoked key compiles to status `revoked`, while the user's other key stays active."""
    records = records_of()
    assert key_entry(records, H2)["status"] == "revoked"
    assert key_entry(records, H1)["status"] == "active"


def test_suspended_user_suspends_their_keys() -> None:
    """Suspending a user turns their active keys into `suspended`; revoked stays revoked."""
    settings = base_settings()
    tenants(settings)["users"][0]["status"] = "suspended"
    records = records_of(settings)
    assert user_entry(records, "acme", "ana")["status"] == "suspended"
    assert key_entry(records, H1)["status"] == "suspended"
    assert key_entry(records, H2)["status"] == "revoked"
    assert key_entry(records, H3)["status"] == "active"


def test_suspended_org_suspends_every_key_in_it() -> None:
    """Suspending an org turns every active key of its users into `suspended`."""
    settings = base_settings()
    tenants(settings)["organizations"][0]["status"] = "suspended"
    records = records_of(settings)
    assert org_entry(records, "acme")["status"] == "suspended"
    assert {key_entry(records, h)["status"] for h in (H1, H3)} == {"suspended"}
    assert key_entry(records, H4)["status"] == "active"


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
    records = records_of(settings)
    assert key_entry(records, H4)["expiresAt"] == epoch
    assert user_entry(records, "globex", "chen")["keys"]["k_chen"]["expiresAt"] == epoch
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
    document = yaml.safe_load(resolve_stack(stack).read_text(encoding="utf-8"))
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
    assert deployed == compile_records(load_stack_file(resolve_stack(stack)))


def test_removed_user_leaves_no_record() -> None:
    """Deleting a user removes their directory entry and their keys from every shard."""
    settings = base_settings()
    del tenants(settings)["users"][0]
    records = compile_records(build(settings))
    assert "ana" not in json.loads(records[directory_shard("acme")])["orgs"]["acme"]["users"]
    assert not any(H1 in value or H2 in value for value in records.values())
    assert not any('"ana"' in value for value in records.values())


def test_tenant_counts() -> None:
    """Counts of orgs, users, keys and non-revoked keys for the stack outputs."""
    counts = tenant_counts(build())
    assert (counts.organizations, counts.users, counts.keys, counts.active_keys) == (2, 3, 4, 3)


# ------------------------------------------------------------------------- keys


@pytest.mark.parametrize("stack", ["dev", "example"])
def test_no_plain_key_in_any_record(stack: str) -> None:
    """Records hold only hashes: no plain key (demo or otherwise) appears in any value."""
    config = load_stack_file(resolve_stack(stack))
    records = compile_records(config)
    blob = "\n".join(f"{k}={v}" for k, v in records.items())
    assert KEY_PREFIX not in blob
    for user in config.tenants.users:
        for key in user.keys:
            assert demo_key(key.id) not in blob
            assert key.sha256 in json.loads(records[key_shard(key.sha256)])["keys"]


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
    config = load_stack_file(resolve_stack("dev"))
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
