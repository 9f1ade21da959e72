"""The stack-file CLI: orgs, users, keys, check, schema and diff, run as a person runs them.

Every command runs through `provision.cli.main` (in-process: what a subprocess would add is
interpreter start-up) on a copy of a real stack file (the dev stack and the heavily commented
example). After each edit the file still validates (model and JSON Schema), the edit
is what was asked, and difflib shows that nothing outside the edited lines moved: every
removed or added line belongs to the edit, and every comment survives.
"""

from __future__ import annotations

import csv
import datetime as dt
import difflib
import json
import re
import shutil
import subprocess
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from provision.stack.config import StackConfig, load_stack_file
from provision.stack.contract import directory_shard, key_shard
from provision.stack.keys import KEY_PATTERN, hash_key
from tests.support import ROOT, git, run_cli

PROVISION = ROOT / ".venv" / "bin" / "provision"
STACKS = ROOT / "stacks"
FIXTURES = ROOT / "tests" / "fixtures"
SCHEMA = STACKS / "stack.schema.json"
PLAIN_KEY = re.compile(r"gw_live_[A-Za-z0-9]{32,64}")
TIMESTAMP = r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d\+00:00"


@dataclass(frozen=True)
class Case:
    """What a test needs to know about one real stack file."""

    name: str
    org: str  # an organization with users
    org_name: str
    org_budget: str  # as written in the file
    other_org: str
    user: str  # a user in the middle of the list, with one key and no expiry on it
    user_index: int
    user_email: str
    user_limit: str
    key: str  # the user's key
    imported: tuple[str, ...]  # ids `users import` gives the rows of users-<name>.csv

    @property
    def source(self) -> Path:
        return STACKS / f"Pulumi.{self.name}.yaml"


CASES = [
    Case(
        "dev",
        "demo-corp",
        "Demo Corporation",
        "500",
        "test-org",
        "bob",
        1,
        "bob@demo-corp.example",
        "25",
        "key_bob_ci",
        ("dora", "alice-2", "eve-ops"),
    ),
    Case(
        "example",
        "acme",
        "Acme Corporation",
        "2000",
        "globex",
        "chen",
        2,
        "chen@globex.example",
        "500",
        "key_chen_notebook",
        ("fay", "ana-2", "gus-ops"),
    ),
]


@pytest.fixture(params=CASES, ids=[c.name for c in CASES])
def case(request) -> Case:
    return request.param


@pytest.fixture
def stack(case: Case, tmp_path: Path) -> Path:
    """A copy of the case's stack file, which the test may edit."""
    path = tmp_path / case.source.name
    shutil.copyfile(case.source, path)
    return path


# ---------------------------------------------------------------------------- helpers


def provision(*args: Any, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return run_cli(*args, cwd=cwd)


def ok(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def edit_lines(before: str, after: str) -> tuple[list[str], list[str]]:
    """(removed, added) lines between two versions of a file, as difflib sees them."""
    old, new = before.splitlines(keepends=True), after.splitlines(keepends=True)
    removed: list[str] = []
    added: list[str] = []
    matcher = difflib.SequenceMatcher(None, old, new, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag != "equal":
            removed += old[i1:i2]
            added += new[j1:j2]
    # Lines keep their newline while compared, so a lost final newline shows up as a change.
    return [r.removesuffix("\n") for r in removed], [a.removesuffix("\n") for a in added]


def matches(lines: list[str], expected: list[str | re.Pattern[str]]) -> bool:
    return len(lines) == len(expected) and all(
        e.fullmatch(line) if isinstance(e, re.Pattern) else line == e
        for line, e in zip(lines, expected, strict=True)
    )


def assert_edit(before: str, after: str, removed: list, added: list) -> None:
    """Exactly these lines went and came; every other byte, and every comment, is unchanged."""
    gone, came = edit_lines(before, after)
    assert matches(gone, removed), f"removed lines: {gone}"
    assert matches(came, added), f"added lines: {came}"
    comments = Counter(line for line in before.splitlines() if "#" in line)
    comments -= Counter(gone)
    missing = comments - Counter(line for line in after.splitlines() if "#" in line)
    assert not missing, f"comment lines lost: {list(missing)}"
    assert after.endswith("\n")


def timestampless_loader() -> type[yaml.SafeLoader]:
    """A YAML loader that leaves timestamps as strings, as JSON Schema sees them."""

    class Loader(yaml.SafeLoader):
        pass

    Loader.yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    return Loader


def schema_errors(path: Path) -> list[jsonschema.ValidationError]:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    document = yaml.load(path.read_text(encoding="utf-8"), Loader=timestampless_loader())
    return list(jsonschema.Draft202012Validator(schema).iter_errors(document))


def assert_valid(path: Path) -> StackConfig:
    """The file passes the program's model and the committed JSON Schema."""
    config = load_stack_file(path)
    errors = schema_errors(path)
    assert not errors, [f"{list(e.absolute_path)}: {e.message}" for e in errors]
    return config


def user_block(text: str, user_id: str) -> tuple[int, int]:
    """[start, end) line numbers of a user's list item."""
    lines = text.splitlines()
    start = lines.index(f"      - id: {user_id}")
    end = start + 1
    while end < len(lines) and lines[end].startswith("        "):
        end += 1
    return start, end


def user_of(config: StackConfig, user_id: str):
    return next(u for u in config.tenants.users if u.id == user_id)


def key_of(config: StackConfig, key_id: str):
    return next(k for u in config.tenants.users for k in u.keys if k.id == key_id)


def today_window() -> set[dt.date]:
    now = dt.datetime.now(dt.UTC)
    return {now.date(), (now + dt.timedelta(seconds=60)).date()}


def edit_text(path: Path, old: str, new: str) -> None:
    """Replace one exact, unique piece of a stack file's text (to break copies on purpose)."""
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times"
    path.write_text(text.replace(old, new), encoding="utf-8")


# ---------------------------------------------------------------------------- organizations


def test_orgs_add_appends_exactly_the_new_organization(case: Case, stack: Path):
    """`orgs add` appends one organization after the last one, with the amounts as typed."""
    before = stack.read_text()
    out = ok(
        provision(
            "orgs",
            "add",
            "--stack",
            stack,
            "--name",
            "Initrode Labs",
            "--budget",
            "1234.50",
            "--failure-mode",
            "fail-open",
            "--fallback-daily",
            "10",
            "--models",
            "openai/gpt-4o-mini,openai/gpt-4o",
        )
    )
    assert "Added organization initrode-labs (Initrode Labs)" in out
    after = stack.read_text()
    new_org = [
        "      - id: initrode-labs",
        "        name: Initrode Labs",
        "        monthlyBudgetUsd: 1234.50",
        "        failureMode: fail-open",
        "        fallbackDailyLimitUsd: 10",
        "        allowedModels: [openai/gpt-4o-mini, openai/gpt-4o]",
    ]
    assert_edit(before, after, [], new_org)
    lines = after.splitlines()
    assert lines[lines.index(new_org[0]) + len(new_org)] == "    users:"
    org = assert_valid(stack).tenants.organizations[-1]
    assert (org.id, org.monthlyBudgetUsd, org.fallbackDailyLimitUsd) == (
        "initrode-labs",
        Decimal("1234.5"),
        Decimal("10"),
    )
    assert org.allowedModels == ["openai/gpt-4o-mini", "openai/gpt-4o"]


def test_orgs_set_changes_only_the_named_fields(case: Case, stack: Path):
    """`orgs set` rewrites the lines of the fields it was given, nothing else."""
    before = stack.read_text()
    ok(
        provision(
            "orgs",
            "set",
            "--stack",
            stack,
            "--org",
            case.org,
            "--budget",
            "2500",
            "--name",
            "Renamed Inc",
        )
    )
    assert_edit(
        before,
        stack.read_text(),
        [f"        name: {case.org_name}", f"        monthlyBudgetUsd: {case.org_budget}"],
        ["        name: Renamed Inc", "        monthlyBudgetUsd: 2500"],
    )
    org = next(o for o in assert_valid(stack).tenants.organizations if o.id == case.org)
    assert (org.name, org.monthlyBudgetUsd) == ("Renamed Inc", Decimal("2500"))


def test_amounts_are_written_as_typed_and_read_back_as_numbers(case: Case, stack: Path):
    """Small and trailing-zero amounts keep their digits and stay YAML numbers (not 5e-05)."""
    before = stack.read_text()
    ok(provision("users", "set", "--stack", stack, "--user", case.user, "--limit", "0.00005"))
    ok(provision("orgs", "set", "--stack", stack, "--org", case.org, "--budget", "0.10"))
    assert_edit(
        before,
        stack.read_text(),
        [
            f"        monthlyBudgetUsd: {case.org_budget}",
            f"        monthlyLimitUsd: {case.user_limit}",
        ],
        ["        monthlyBudgetUsd: 0.10", "        monthlyLimitUsd: 0.00005"],
    )
    tenants = yaml.safe_load(stack.read_text())["config"]["llm-gateway:tenants"]
    assert isinstance(tenants["users"][case.user_index]["monthlyLimitUsd"], float)
    config = assert_valid(stack)
    assert user_of(config, case.user).monthlyLimitUsd == Decimal("0.00005")


# ---------------------------------------------------------------------------- users


def test_users_add_appends_exactly_the_new_user(case: Case, stack: Path):
    """`users add` appends one user (id from the email) at the end of the users list."""
    before = stack.read_text()
    out = ok(
        provision(
            "users",
            "add",
            "--stack",
            stack,
            "--email",
            "new.person@x.example",
            "--org",
            case.other_org,
            "--limit",
            "12.75",
            "--models",
            "openai/gpt-4o-mini",
        )
    )
    assert "Added user new-person (new.person@x.example)" in out
    assert_edit(
        before,
        stack.read_text(),
        [],
        [
            "      - id: new-person",
            "        email: new.person@x.example",
            f"        org: {case.other_org}",
            "        monthlyLimitUsd: 12.75",
            "        allowedModels: [openai/gpt-4o-mini]",
        ],
    )
    user = assert_valid(stack).tenants.users[-1]
    assert (user.id, user.org, user.monthlyLimitUsd, user.keys) == (
        "new-person",
        case.other_org,
        Decimal("12.75"),
        [],
    )


def test_users_set_changes_only_the_named_fields(case: Case, stack: Path):
    """`users set` rewrites the lines of the fields it was given, nothing else."""
    before = stack.read_text()
    ok(
        provision(
            "users",
            "set",
            "--stack",
            stack,
            "--user",
            case.user,
            "--limit",
            "60",
            "--email",
            "renamed@x.example",
        )
    )
    assert_edit(
        before,
        stack.read_text(),
        [f"        email: {case.user_email}", f"        monthlyLimitUsd: {case.user_limit}"],
        ["        email: renamed@x.example", "        monthlyLimitUsd: 60"],
    )
    user = user_of(assert_valid(stack), case.user)
    assert (user.email, user.monthlyLimitUsd) == ("renamed@x.example", Decimal("60"))


def test_users_remove_deletes_exactly_the_users_block(case: Case, stack: Path):
    """`users remove` deletes the user's lines (keys included) and no other line."""
    before = stack.read_text()
    start, end = user_block(before, case.user)
    out = ok(provision("users", "remove", "--stack", stack, "--user", case.user))
    assert f"Removed user {case.user} and their 1 key(s)" in out
    assert_edit(before, stack.read_text(), before.splitlines()[start:end], [])
    config = assert_valid(stack)
    assert case.user not in {u.id for u in config.tenants.users}
    assert case.key not in {k.id for u in config.tenants.users for k in u.keys}


def imported_lines(case: Case) -> list[str]:
    """The YAML `users import` should append for users-<stack>.csv."""
    lines = []
    with (FIXTURES / f"users-{case.name}.csv").open(newline="") as handle:
        for user_id, row in zip(case.imported, csv.DictReader(handle), strict=True):
            lines += [
                f"      - id: {user_id}",
                f"        email: {row['email']}",
                f"        org: {row['org']}",
                f"        monthlyLimitUsd: {row['limit']}",
            ]
            models = [m for m in re.split(r"[;,]", row["models"]) if m]
            if models:
                lines.append(f"        allowedModels: [{', '.join(models)}]")
    return lines


def test_users_import_dry_run_prints_the_diff_and_writes_nothing(case: Case, stack: Path):
    """`users import --dry-run` shows the users and the KV shards it would write, and writes nothing."""
    before = stack.read_bytes()
    out = ok(
        provision(
            "users", "import", FIXTURES / f"users-{case.name}.csv", "--stack", stack, "--dry-run"
        )
    )
    assert stack.read_bytes() == before
    first = case.imported[0]
    assert f"+ user {first} <{first}@" in out
    assert f"+ user {case.imported[1]} <" in out and "monthly limit $5.50" in out
    assert f"+ user {case.imported[2]} <" in out and "monthly limit $12.25" in out
    with (FIXTURES / f"users-{case.name}.csv").open(newline="") as handle:
        orgs = {row["org"] for row in csv.DictReader(handle)}
    # users without keys change only their organizations' directory shards
    written = {line.split()[1] for line in out.splitlines() if line.startswith("  write  ")}
    assert written == {directory_shard(org) for org in orgs}
    assert f"KV records: {len(written)} written, 0 deleted" in out
    assert "(dry run: nothing was written)" in out


def test_users_import_appends_every_row(case: Case, stack: Path):
    """`users import` appends one user per CSV row (models split on ; or ,), ids kept unique."""
    before = stack.read_text()
    out = ok(provision("users", "import", FIXTURES / f"users-{case.name}.csv", "--stack", stack))
    assert "Imported into" in out and "+ user" in out
    assert_edit(before, stack.read_text(), [], imported_lines(case))
    config = assert_valid(stack)
    assert [u.id for u in config.tenants.users[-3:]] == list(case.imported)


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ("email,org\nx@y.example,{org}\n", "missing column(s) limit (expected: email, org, limit"),
        (
            "email,org,limit\nx@y.example,{org},5\nz@y.example,nowhere,5\n",
            "unknown organization 'nowhere'",
        ),
        (
            "email,org,limit,id\nx@y.example,{org},5,newbie\nz@y.example,{org},5,newbie\n",
            "users.csv:3: {path}: user 'newbie' already exists",
        ),
        ("email,org,limit\nx@y.example,{org},lots\n", "users.csv:2: --limit must be a number"),
    ],
    ids=["missing-column", "unknown-org", "duplicate-id", "bad-limit"],
)
def test_users_import_refuses_a_bad_csv_and_writes_nothing(
    case: Case, stack: Path, tmp_path: Path, rows: str, message: str
):
    """A bad CSV row stops the whole import with a message naming it; nothing is written."""
    csv_path = tmp_path / "users.csv"
    csv_path.write_text(rows.format(org=case.org))
    before = stack.read_bytes()
    result = provision("users", "import", csv_path, "--stack", stack)
    assert result.returncode == 1
    assert message.format(path=stack) in result.stderr
    assert stack.read_bytes() == before


# ---------------------------------------------------------------------------- keys


def new_key_lines(user: str, name: str, plain: str, expires: str | None = None) -> list:
    lines = [
        re.compile(rf"          - id: key_{user}_[0-9a-f]{{8}}"),
        f"            name: {name}",
        f"            sha256: {hash_key(plain)}",
        re.compile(r"            created: \d{4}-\d\d-\d\d"),
    ]
    return lines + ([f"            expires: {expires}"] if expires else [])


def test_keys_create_prints_the_key_once_and_stores_only_its_hash(case: Case, stack: Path):
    """`keys create` shows the plain key exactly once; the file gets id, name, hash, dates only."""
    before = stack.read_text()
    result = provision(
        "keys",
        "create",
        "--stack",
        stack,
        "--user",
        case.user,
        "--name",
        "build bot",
        "--expires",
        "2027-03-01",
    )
    out = ok(result)
    printed = PLAIN_KEY.findall(out + result.stderr)
    assert len(printed) == 1, out
    plain = printed[0]
    assert KEY_PATTERN.fullmatch(plain)
    after = stack.read_text()
    assert plain not in after
    assert_edit(before, after, [], new_key_lines(case.user, "build bot", plain, "2027-03-01"))
    _, end = user_block(before, case.user)
    assert after.splitlines()[end].startswith("          - id: key_")  # after the user's keys

    key = user_of(assert_valid(stack), case.user).keys[-1]
    assert re.search(rf"Created key {key.id} for user {case.user}", out)
    assert (key.name, key.sha256, key.expires, key.status) == (
        "build bot",
        hash_key(plain),
        dt.date(2027, 3, 1),
        "active",
    )
    assert key.created in today_window()


def test_keys_create_json_gives_the_key_once_with_its_hash(case: Case, stack: Path):
    """`keys create --json` prints one JSON object holding the key once, its hash and expiry."""
    out = ok(
        provision(
            "keys",
            "create",
            "--stack",
            stack,
            "--user",
            case.user,
            "--json",
            "--expires",
            "2027-01-31T18:00:00+01:00",
        )
    )
    body = json.loads(out)
    plain = body["key"]
    assert KEY_PATTERN.fullmatch(plain) and out.count(plain) == 1
    assert len(PLAIN_KEY.findall(out)) == 1
    assert body["sha256"] == hash_key(plain) and body["userId"] == case.user
    text = stack.read_text()
    assert plain not in text and f"sha256: {hash_key(plain)}" in text
    key = key_of(assert_valid(stack), body["keyId"])
    assert key.sha256 == hash_key(plain)
    assert key.expires_at() == int(dt.datetime(2027, 1, 31, 17, tzinfo=dt.UTC).timestamp())


def test_keys_list_never_shows_a_full_hash(case: Case, stack: Path):
    """`keys list` (table and --json) shows every key's id and state but never a whole hash."""
    ok(provision("keys", "create", "--stack", stack, "--user", case.user, "--name", "fresh"))
    config = load_stack_file(stack)
    hashes = {k.id: k.sha256 for u in config.tenants.users for k in u.keys}
    table = ok(provision("keys", "list", "--stack", stack))
    rows = json.loads(ok(provision("keys", "list", "--stack", stack, "--json")))
    for text in (table, json.dumps(rows)):
        assert not [h for h in hashes.values() if h in text]
    assert {row["id"] for row in rows} == set(hashes)
    for row in rows:
        full = hashes[row["id"]]
        assert row["sha256"].startswith(full[:8]) and row["sha256"] != full
        assert row["id"] in table
    states = {row["id"]: row["status"] for row in rows}
    if case.name == "example":
        assert states["key_ana_old"] == "revoked"
    assert states[case.key] == "active"
    mine = [row for row in rows if row["user"] == case.user]
    assert {row["name"] for row in mine} == {key_of(config, case.key).name, "fresh"}


@pytest.mark.parametrize(
    ("grace", "delta"), [("7d", dt.timedelta(days=7)), ("90s", dt.timedelta(seconds=90))]
)
def test_keys_rotate_adds_a_key_and_expires_the_old_one_after_the_grace(
    case: Case, stack: Path, grace: str, delta: dt.timedelta
):
    """`keys rotate` adds a new key and gives the old one expires = now + grace."""
    before = stack.read_text()
    start = dt.datetime.now(dt.UTC).replace(microsecond=0)
    result = provision("keys", "rotate", "--stack", stack, "--key", case.key, "--grace", grace)
    end = dt.datetime.now(dt.UTC)
    out = ok(result)
    printed = PLAIN_KEY.findall(out + result.stderr)
    assert len(printed) == 1
    plain = printed[0]
    after = stack.read_text()
    assert plain not in after

    old_name = key_of(load_stack_file(case.source), case.key).name
    assert_edit(
        before,
        after,
        [],
        [
            re.compile(rf"            expires: {TIMESTAMP}"),
            *new_key_lines(case.user, f"{old_name} (rotated)", plain),
        ],
    )
    config = assert_valid(stack)
    old = key_of(config, case.key)
    expires = dt.datetime.fromtimestamp(old.expires_at(), dt.UTC)
    assert start + delta <= expires <= end + delta
    assert old.status == "active"
    new = user_of(config, case.user).keys[-1]
    assert (new.sha256, new.status, new.expires) == (hash_key(plain), "active", None)
    assert f"The old key {case.key} keeps working until {expires.isoformat()}" in out


def test_keys_rotate_json_names_both_keys(case: Case, stack: Path):
    """`keys rotate --json` gives the new key once, what it replaces, and the old key's expiry."""
    out = ok(
        provision("keys", "rotate", "--stack", stack, "--key", case.key, "--grace", "12h", "--json")
    )
    body = json.loads(out)
    assert out.count(body["key"]) == 1 and body["replaces"] == case.key
    config = assert_valid(stack)
    assert key_of(config, body["keyId"]).sha256 == hash_key(body["key"])
    old = key_of(config, case.key)
    assert dt.datetime.fromisoformat(body["oldKeyExpires"]).timestamp() == old.expires_at()


def test_keys_rotate_never_extends_an_earlier_expiry(tmp_path: Path):
    """Rotating a key that expires before the grace ends keeps its expiry; expired stays expired."""
    example = tmp_path / "Pulumi.example.yaml"
    shutil.copyfile(STACKS / "Pulumi.example.yaml", example)
    before = example.read_text()
    out = ok(
        provision("keys", "rotate", "--stack", example, "--key", "key_ben_ci", "--grace", "400d")
    )
    plain = PLAIN_KEY.findall(out)[0]
    added = new_key_lines("ben", "CI pipeline (rotated)", plain)
    assert_edit(before, example.read_text(), [], added)
    assert key_of(assert_valid(example), "key_ben_ci").expires == dt.date(2027, 2, 1)

    e2e = tmp_path / "Pulumi.e2e.yaml"
    shutil.copyfile(FIXTURES / "Pulumi.e2e.yaml", e2e)
    body = json.loads(
        ok(
            provision(
                "keys",
                "rotate",
                "--stack",
                e2e,
                "--key",
                "key_old_expired",
                "--grace",
                "7d",
                "--json",
            )
        )
    )
    old = key_of(load_stack_file(e2e), "key_old_expired")
    assert old.expires == dt.date(2026, 2, 1)
    assert dt.datetime.fromisoformat(body["oldKeyExpires"]).timestamp() == old.expires_at()


def test_keys_revoke_marks_the_key_revoked(case: Case, stack: Path):
    """`keys revoke` adds `status: revoked` to that key and changes nothing else."""
    before = stack.read_text()
    out = ok(provision("keys", "revoke", "--stack", stack, "--key", case.key))
    assert f"Revoked key {case.key} of user {case.user}" in out
    assert f"provision admin revoke --key {case.key}" in out
    assert_edit(before, stack.read_text(), [], ["            status: revoked"])
    config = assert_valid(stack)
    assert key_of(config, case.key).status == "revoked"
    assert [k.status for k in user_of(config, case.user).keys] == ["revoked"]


def test_rotating_a_revoked_key_is_refused(case: Case, stack: Path):
    """A revoked key cannot be rotated (that would hand out a successor); the file is untouched."""
    ok(provision("keys", "revoke", "--stack", stack, "--key", case.key))
    before = stack.read_bytes()
    result = provision("keys", "rotate", "--stack", stack, "--key", case.key)
    assert result.returncode == 1
    assert f"key '{case.key}' is revoked; only active keys rotate" in result.stderr
    assert not PLAIN_KEY.search(result.stdout + result.stderr)
    assert stack.read_bytes() == before


# ---------------------------------------------------------------------------- refused edits

REFUSED = [
    (
        ["users", "add", "--email", "x@y.example", "--org", "nonexistent", "--limit", "5"],
        "tenants.users[{n}].org: unknown organization 'nonexistent' (declared: ",
    ),
    (
        ["users", "set", "--user", "{user}", "--org", "nonexistent"],
        "tenants.users[{i}].org: unknown organization 'nonexistent'",
    ),
    (
        ["users", "set", "--user", "{user}", "--limit", "-5"],
        "tenants.users[{i}].monthlyLimitUsd: Input should be greater than or equal to 0",
    ),
    (
        ["users", "set", "--user", "{user}", "--limit", "0.1234567"],
        "tenants.users[{i}].monthlyLimitUsd: Decimal input should have no more than 6 decimal places",
    ),
    (
        ["users", "set", "--user", "{user}", "--limit", "NaN"],
        "--limit must be a number of US dollars (got 'NaN')",
    ),
    (
        ["users", "set", "--user", "{user}", "--models", "openai/gpt-9"],
        "tenants.users[{i}].allowedModels[0]: 'openai/gpt-9' is not in routing.models or routing.embeddingModels",
    ),
    (["users", "set", "--user", "nobody", "--limit", "5"], "{path}: no user 'nobody' (declared: "),
    (["users", "set", "--user", "{user}"], "nothing to change: pass at least one field option"),
    (
        [
            "users",
            "add",
            "--email",
            "x@y.example",
            "--org",
            "{org}",
            "--limit",
            "5",
            "--id",
            "{user}",
        ],
        "{path}: user '{user}' already exists",
    ),
    (
        [
            "users",
            "add",
            "--email",
            "x@y.example",
            "--org",
            "{org}",
            "--limit",
            "5",
            "--id",
            "Bad Id",
        ],
        "tenants.users[{n}].id: 'Bad Id' does not match",
    ),
    (["users", "remove", "--user", "nobody"], "{path}: no user 'nobody'"),
    (
        ["orgs", "add", "--id", "{org}", "--name", "Again", "--budget", "1"],
        "{path}: organization '{org}' already exists",
    ),
    (
        ["orgs", "add", "--name", "Money Co", "--budget", "lots"],
        "--budget must be a number of US dollars (got 'lots')",
    ),
    (
        [
            "orgs",
            "add",
            "--name",
            "Picky",
            "--budget",
            "5",
            "--models",
            "openai/gpt-4o-mini",
            "--default-model",
            "openai/gpt-4o",
        ],
        "defaultModel: 'openai/gpt-4o' is not among the models this organization may use",
    ),
    (
        ["orgs", "set", "--org", "{org}", "--budget", "-1"],
        "monthlyBudgetUsd: Input should be greater than or equal to 0",
    ),
    (["orgs", "set", "--org", "nobody", "--budget", "1"], "{path}: no organization 'nobody'"),
    (["keys", "create", "--user", "nobody"], "{path}: no user 'nobody'"),
    (
        ["keys", "create", "--user", "{user}", "--expires", "next tuesday"],
        "--expires must be a date (2027-01-31) or ISO datetime (got 'next tuesday')",
    ),
    (
        ["keys", "rotate", "--key", "{key}", "--grace", "7w"],
        "--grace must look like 7d, 12h, 30m or 45s (got '7w')",
    ),
    (["keys", "rotate", "--key", "key_nobody"], "{path}: no key 'key_nobody'"),
    (["keys", "revoke", "--key", "key_nobody"], "{path}: no key 'key_nobody'"),
]


@pytest.mark.parametrize(
    ("args", "message"),
    REFUSED,
    ids=[" ".join(a[:2]) + f"-{n}" for n, (a, _) in enumerate(REFUSED)],
)
def test_refused_edit_exits_1_with_a_precise_message_and_leaves_the_file_alone(
    case: Case, stack: Path, args: list[str], message: str
):
    """An edit that cannot be made, or would make the stack invalid, exits 1 and writes nothing."""
    before = stack.read_bytes()
    mtime = stack.stat().st_mtime_ns
    fill = {
        "user": case.user,
        "org": case.org,
        "key": case.key,
        "path": stack,
        "i": case.user_index,
        "n": len(load_stack_file(stack).tenants.users),
    }
    command = [part.format(**fill) for part in args]
    result = provision(*command[:2], "--stack", stack, *command[2:])
    assert result.returncode == 1, result.stdout
    assert result.stderr.startswith("error: ")
    assert message.format(**fill) in result.stderr
    assert "Traceback" not in result.stderr
    assert stack.read_bytes() == before and stack.stat().st_mtime_ns == mtime
    assert not list(stack.parent.glob(".stack-*"))  # no temporary file left behind


def test_edit_of_a_file_that_is_not_yaml_is_refused_cleanly(tmp_path: Path):
    """A stack file with a YAML syntax error gets a message naming it, not a traceback."""
    stack = tmp_path / "Pulumi.broken.yaml"
    stack.write_text("config:\n  llm-gateway:routing: [\n")
    result = provision("users", "set", "--stack", stack, "--user", "bob", "--limit", "1")
    assert result.returncode == 1
    assert result.stderr.startswith(f"error: {stack}: not valid YAML")
    assert "Traceback" not in result.stderr
    assert stack.read_text() == "config:\n  llm-gateway:routing: [\n"


# ---------------------------------------------------------------------------- check


def test_check_passes_the_real_stacks():
    """`provision check` exits 0 on every committed stack file and says what each holds."""
    out = ok(provision("check"))
    for name in ("dev", "example"):
        tenants = load_stack_file(STACKS / f"Pulumi.{name}.yaml").tenants
        keys = sum(len(u.keys) for u in tenants.users)
        assert (
            f"stacks/Pulumi.{name}.yaml: ok ({len(tenants.organizations)} organizations, "
            f"{len(tenants.users)} users, {keys} keys)"
        ) in out
    assert "error" not in out
    for name in ("dev", "example"):
        ok(provision("check", "--stack", name))


def test_check_of_the_example_stack_is_clean_even_when_strict():
    """Every model of the example stack is priced by the stack or the catalog: no warning, so
    --strict passes too (the warnings themselves: the test below)."""
    out = ok(provision("check", "--stack", "example", "--strict"))
    assert out.splitlines() == ["stacks/Pulumi.example.yaml: ok (3 organizations, 5 users, 6 keys)"]


def problem_lines(out: str, kind: str) -> list[str]:
    return [line for line in out.splitlines() if line.startswith(f"  {kind}: ")]


def test_check_lists_every_schema_problem_with_its_path(tmp_path: Path):
    """A copy with six mistakes gets six errors, each with the path and what was expected."""
    stack = tmp_path / "Pulumi.broken.yaml"
    shutil.copyfile(STACKS / "Pulumi.dev.yaml", stack)
    edit_text(
        stack,
        "        monthlyLimitUsd: 100\n",
        "        monthlyLimitUsd: 100\n        nickname: al\n",
    )
    edit_text(stack, "monthlyBudgetUsd: 50\n", "monthlyBudgetUsd: lots\n")
    edit_text(stack, "monthlyLimitUsd: 25\n", "monthlyLimitUsd: -5\n")
    edit_text(stack, "573f6ee6a9bf930e09ac729ef8bdb06691eca746073aeadf2fc9070c225200da", "NOTAHASH")
    edit_text(stack, "collectLogs: true", "collectLogs: sometimes")
    edit_text(
        stack,
        "        monthlyLimitUsd: 10\n",
        "        monthlyLimitUsd: 10\n        status: paused\n",
    )
    result = provision("check", "--stack", stack)
    assert result.returncode == 1
    assert result.stdout.splitlines()[0] == f"{stack}: 6 error(s)"
    expected = {
        "tenants.users[0].nickname": "unknown field 'nickname'; allowed: id, email, org,",
        "tenants.organizations[1].monthlyBudgetUsd": "Input should be a valid decimal (got 'lots')",
        "tenants.users[1].monthlyLimitUsd": "Input should be greater than or equal to 0 (got -5)",
        "tenants.users[2].keys[0].sha256": "must be the SHA-256 of the key as 64 lower-case hex",
        "aiGateway.collectLogs": "Input should be a valid boolean",
        "tenants.users[2].status": "Input should be 'active' or 'suspended'",
    }
    errors = problem_lines(result.stdout, "error")
    assert len(errors) == len(expected), errors
    for path, message in expected.items():
        assert any(line.startswith(f"  error: {path}: ") and message in line for line in errors), (
            path
        )


def test_check_lists_every_reference_problem_with_its_path(tmp_path: Path):
    """Unknown orgs, duplicate ids and hashes, unknown models: all listed at once, with paths."""
    stack = tmp_path / "Pulumi.refs.yaml"
    shutil.copyfile(STACKS / "Pulumi.dev.yaml", stack)
    edit_text(stack, "org: test-org\n", "org: nowhere\n")
    edit_text(stack, "- id: bob\n", "- id: alice\n")
    edit_text(stack, "id: key_carol_dev\n", "id: key_alice_laptop\n")
    edit_text(stack, "- id: test-org\n", "- id: demo-corp\n")
    edit_text(
        stack,
        "1876257fd7c12e94405b6d740bd03bf96ede8def538b9d795cb3c713ce013972",
        "69b6f6a3ad1d0bd04909988699b9cb6f1c6d882c87fa172b4cc1a9920dcaa4a3",
    )
    edit_text(
        stack,
        "          - anthropic/claude-sonnet-4-5\n        keys:",
        "          - anthropic/claude-sonnet-4-5\n          - openai/gpt-9\n        keys:",
    )
    result = provision("check", "--stack", stack)
    assert result.returncode == 1
    expected = {
        "tenants.organizations[1].id": "duplicate organization id 'demo-corp' "
        "(first used at tenants.organizations[0])",
        "tenants.users[1].id": "duplicate user id 'alice' (first used at tenants.users[0])",
        "tenants.users[1].keys[0].sha256": "the same key hash is already used at "
        "tenants.users[0].keys[0]",
        "tenants.users[1].allowedModels[2]": "'openai/gpt-9' is not in routing.models or routing.embeddingModels",
        "tenants.users[2].org": "unknown organization 'nowhere' (declared: demo-corp)",
        "tenants.users[2].keys[0].id": "duplicate key id 'key_alice_laptop' "
        "(first used at tenants.users[0].keys[0])",
    }
    errors = problem_lines(result.stdout, "error")
    assert result.stdout.splitlines()[0] == f"{stack}: {len(expected)} error(s)"
    assert len(errors) == len(expected), errors
    for path, message in expected.items():
        assert f"  error: {path}: {message}" in errors, path


def test_check_warnings_are_printed_with_paths_and_fail_only_when_strict(tmp_path: Path):
    """Limit above budget, key expiring soon, org without users, default-priced model: warnings."""
    stack = tmp_path / "Pulumi.warn.yaml"
    shutil.copyfile(STACKS / "Pulumi.dev.yaml", stack)
    edit_text(stack, "        monthlyLimitUsd: 10\n", "        monthlyLimitUsd: 60\n")
    soon = (dt.datetime.now(dt.UTC) + dt.timedelta(days=3)).replace(microsecond=0)
    edit_text(
        stack,
        "            created: 2026-11-01\n      - id: bob",
        f"            created: 2026-11-01\n            expires: {soon.isoformat()}\n"
        "      - id: bob",
    )
    # a model neither the stack nor the catalog prices, charged at pricing.default
    edit_text(
        stack, "      - openai/gpt-4o\n", "      - openai/gpt-4o\n      - openai/house-model-2026\n"
    )
    edit_text(
        stack,
        "    models: {}\n",
        "    models: {}\n    default: {inputPerMTok: 0.30, outputPerMTok: 0.90}\n",
    )
    ok(
        provision(
            "orgs", "add", "--stack", stack, "--id", "lonely", "--name", "Lonely", "--budget", "5"
        )
    )

    result = provision("check", "--stack", stack)
    assert result.returncode == 0, result.stdout
    assert result.stdout.splitlines()[0] == (
        f"{stack}: ok (3 organizations, 3 users, 3 keys), 4 warning(s)"
    )
    expected = {
        "tenants.users[2].monthlyLimitUsd": "user carol's limit $60 is above the budget $50 of org "
        "test-org",
        "tenants.users[0].keys[0].expires": "key key_alice_laptop expires in 2 day(s)",
        "tenants.organizations[2]": "organization lonely has no users",
        "routing.models[2]": "openai/house-model-2026 has no price of its own and the catalog "
        "(genai-prices",
    }
    warnings = problem_lines(result.stdout, "warning")
    assert len(warnings) == len(expected), warnings
    for path, message in expected.items():
        assert any(w.startswith(f"  warning: {path}: {message}") for w in warnings), path
    assert not problem_lines(result.stdout, "error")

    strict = provision("check", "--stack", stack, "--strict")
    assert strict.returncode == 1
    assert problem_lines(strict.stdout, "warning") == warnings


# ---------------------------------------------------------------------------- schema


def test_committed_schema_is_what_the_model_generates():
    """stacks/stack.schema.json is exactly `provision schema`'s output (regenerate with --write)."""
    assert ok(provision("schema")) == SCHEMA.read_text(encoding="utf-8")


@pytest.mark.parametrize("name", ["dev", "example"])
def test_real_stacks_validate_against_the_schema(name: str):
    """Editors using the committed schema accept the real stack files."""
    path = STACKS / f"Pulumi.{name}.yaml"
    assert schema_errors(path) == []


@pytest.mark.parametrize("path", sorted(STACKS.glob("Pulumi.*.yaml")), ids=lambda p: p.name)
def test_every_stack_file_references_the_schema_on_its_first_line(path: Path):
    """Each stack file's first line points editors at the schema."""
    first = path.read_text(encoding="utf-8").splitlines()[0]
    assert first == "# yaml-language-server: $schema=./stack.schema.json"


@pytest.mark.parametrize(
    ("old", "new", "where"),
    [
        (
            "        monthlyLimitUsd: 100\n",
            "        monthlyLimitUsd: 100\n        nickname: al\n",
            ["config", "llm-gateway:tenants", "users", 0],
        ),
        (
            "collectLogs: true",
            "collectLogs: sometimes",
            ["config", "llm-gateway:aiGateway", "collectLogs"],
        ),
        ("cacheTtl: 0", "cacheTtl: [0]", ["config", "llm-gateway:aiGateway", "cacheTtl"]),
        (
            "  llm-gateway:allowDemoKeys: true\n",
            "  llm-gateway:allowDemoKeys: true\n  llm-gateway:colour: blue\n",
            ["config"],
        ),
        (
            "        monthlyLimitUsd: 25\n",
            "        monthlyLimitUsd: -5\n",
            ["config", "llm-gateway:tenants", "users", 1, "monthlyLimitUsd"],
        ),
        (
            "monthlyBudgetUsd: 50\n",
            "monthlyBudgetUsd: lots\n",
            ["config", "llm-gateway:tenants", "organizations", 1, "monthlyBudgetUsd"],
        ),
        (
            "573f6ee6a9bf930e09ac729ef8bdb06691eca746073aeadf2fc9070c225200da",
            "NOTAHASH",
            ["config", "llm-gateway:tenants", "users", 2, "keys", 0, "sha256"],
        ),
    ],
    ids=[
        "unknown-user-field",
        "string-for-bool",
        "list-for-int",
        "unknown-setting",
        "negative",
        "words-for-money",
        "not-a-hash",
    ],
)
def test_schema_refuses_unknown_fields_and_wrong_types(tmp_path: Path, old, new, where):
    """A stack with an unknown field or a wrong type fails schema validation at that place."""
    stack = tmp_path / "Pulumi.bad.yaml"
    shutil.copyfile(STACKS / "Pulumi.dev.yaml", stack)
    edit_text(stack, old, new)
    errors = schema_errors(stack)
    assert [list(e.absolute_path) for e in errors] == [where]


# ---------------------------------------------------------------------------- diff


@pytest.fixture
def repo_stack(tmp_path: Path) -> Path:
    """The example stack committed in a fresh git repository (HEAD = the base of a review)."""
    repo = tmp_path / "repo"
    (repo / "stacks").mkdir(parents=True)
    stack = repo / "stacks" / "Pulumi.prod.yaml"
    shutil.copyfile(STACKS / "Pulumi.example.yaml", stack)
    git(repo, "init", "-q")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "base")
    return stack


def test_diff_describes_tenant_changes_and_kv_records(repo_stack: Path):
    """`provision diff` says what a reviewer needs: tenants, limits, keys and KV writes/deletes."""
    stack = repo_stack
    ok(provision("orgs", "set", "--stack", stack, "--org", "acme", "--budget", "2500"))
    ok(provision("users", "set", "--stack", stack, "--user", "ben", "--limit", "75"))
    ok(
        provision(
            "users",
            "add",
            "--stack",
            stack,
            "--email",
            "fay@acme.example",
            "--org",
            "acme",
            "--limit",
            "40",
        )
    )
    ok(provision("users", "remove", "--stack", stack, "--user", "emil"))
    ok(provision("keys", "revoke", "--stack", stack, "--key", "key_ana_laptop"))
    created = json.loads(
        ok(
            provision(
                "keys", "create", "--stack", stack, "--user", "fay", "--name", "laptop", "--json"
            )
        )
    )
    ok(provision("keys", "rotate", "--stack", stack, "--key", "key_chen_notebook", "--json"))
    rotated = key_of(load_stack_file(stack), "key_chen_notebook")

    out = ok(provision("diff", "--stack", stack, "--base", "HEAD", cwd=stack.parent.parent))
    lines = out.splitlines()
    for expected in [
        "Organizations:",
        "  org acme: monthly budget $2,000.00 → $2,500.00",
        "Users:",
        "  user ben: monthly limit $50.25 → $75.00",
        "  + user fay <fay@acme.example> in org acme: monthly limit $40.00",
        "  - user emil <emil@initech.example> removed (with 1 key(s))",
        "Keys:",
        "  key key_ana_laptop of user ana: active → revoked",
        f"  + key {created['keyId']} for user fay (laptop)",
        "  - key key_emil_script of user emil removed",
        f"  key key_chen_notebook of user chen: expires never → {rotated.expires.isoformat()}",
    ]:
        assert expected in lines, expected
    new_chen_key = next(
        k for k in user_of(load_stack_file(stack), "chen").keys if k.id != "key_chen_notebook"
    )
    assert f"  + key {new_chen_key.id} for user chen (research notebook (rotated))" in lines

    # KV: acme's budget is in the policy of every acme key's shard; ben, fay and chen changed;
    # emil's key leaves its shard (deleted when it held nothing else); the orgs of all of them
    # have their directory shard rewritten. Only shard names appear, never a whole hash.
    written = {line.split()[1] for line in lines if line.startswith("  write  ")}
    deleted = {line.split()[1] for line in lines if line.startswith("  delete ")}
    config = load_stack_file(stack)
    emil_hash = "f3303cff93dea767ca87f3172d99e7eaa8a23f8bf234b98a7aa338b405e82499"
    still_used = {key_shard(k.sha256) for u in config.tenants.users for k in u.keys}
    expected = {
        directory_shard("acme"),
        directory_shard("initech"),
        directory_shard(user_of(config, "chen").org),
        *(
            key_shard(k.sha256)
            for u in config.tenants.users
            if u.org == "acme" or u.id == "chen"
            for k in u.keys
        ),
    }
    if key_shard(emil_hash) in still_used:
        expected.add(key_shard(emil_hash))
    assert written == expected
    assert deleted == ({key_shard(emil_hash)} - still_used)
    assert f"KV records: {len(written)} written, {len(deleted)} deleted" in lines
    assert not [k.sha256 for u in config.tenants.users for k in u.keys if k.sha256 in out]


def test_diff_names_the_budget_controls_for_agents(repo_stack: Path):
    """A key's own limit and breaker, a user's breaker, an org's clamp floor and cold-start pools:
    each a line."""
    text = repo_stack.read_text()
    for before, after in [
        ("            monthlyLimitUsd: 5\n", "            monthlyLimitUsd: 2\n"),
        ("            spendPerMinuteUsd: 0.25\n", ""),
        ("        spendPerHourUsd: 20\n", "        spendPerHourUsd: 10\n"),
        ("        clampFloorTokens: 256\n", "        clampFloorTokens: 512\n"),
        (
            "        coldStart: {isolates: 16, allowanceUsd: 0.01}\n",
            "        coldStart: {isolates: 64, allowanceUsd: 0.01}\n",
        ),
    ]:
        assert text.count(before) == 1, before
        text = text.replace(before, after)
    repo_stack.write_text(text)
    out = ok(
        provision("diff", "--stack", repo_stack, "--base", "HEAD", cwd=repo_stack.parent.parent)
    )
    lines = out.splitlines()
    for expected in [
        "  org globex: clamp floor 256 output tokens → 512 output tokens",
        "  org globex: cold-start pools 16 isolates × $0.01 → 64 isolates × $0.01",
        "  user ana: spend per hour $20.00 → $10.00",
        "  key key_ben_ci of user ben: monthly limit $5.00 → $2.00",
        "  key key_ben_ci of user ben: spend per minute $0.25 → none",
    ]:
        assert expected in lines, (expected, out)


def test_diff_markdown_has_headings_bullets_and_a_table(repo_stack: Path):
    """`--format markdown` is a PR comment: a heading, bulleted sections and a KV table."""
    ok(provision("orgs", "set", "--stack", repo_stack, "--org", "acme", "--budget", "2500"))
    ok(provision("users", "remove", "--stack", repo_stack, "--user", "emil"))
    out = ok(provision("diff", "--stack", repo_stack, "--base", "HEAD", "--format", "markdown"))
    lines = out.splitlines()
    assert lines[0] == "<!-- provision-diff -->"  # CI finds and updates its comment by it
    assert lines[1].startswith("### Stack `") and lines[1].endswith("vs `HEAD`")
    assert "**Organizations**" in lines and "**Users**" in lines and "**Keys**" in lines
    assert "- org acme: monthly budget $2,000.00 → $2,500.00" in lines
    assert "- - user emil <emil@initech.example> removed (with 1 key(s))" in lines
    assert "| action | key |" in lines and "|---|---|" in lines
    assert f"| write | `{directory_shard('acme')}` |" in lines
    assert f"| write | `{directory_shard('initech')}` |" in lines
    assert any(line.startswith("<details><summary>KV records: ") for line in lines)


def test_diff_of_an_unchanged_or_comment_only_edit_is_no_changes(repo_stack: Path):
    """No edit, or an edit of comments only, is reported as "No changes."."""
    assert ok(provision("diff", "--stack", repo_stack, "--base", "HEAD")).strip() == "No changes."
    edit_text(
        repo_stack,
        "# Tenants: organizations hold budgets",
        "# Tenants (reviewed): orgs hold budgets",
    )
    assert ok(provision("diff", "--stack", repo_stack, "--base", "HEAD")).strip() == "No changes."
    markdown = ok(
        provision("diff", "--stack", repo_stack, "--base", "HEAD", "--format", "markdown")
    )
    assert markdown.strip().endswith("No tenant or configuration changes.")


def test_diff_against_an_unknown_ref_is_a_clear_error(repo_stack: Path):
    """An unknown git ref exits 1 naming the ref."""
    result = provision("diff", "--stack", repo_stack, "--base", "no-such-ref")
    assert result.returncode == 1
    assert result.stderr.startswith("error: unknown git ref 'no-such-ref'")
    assert "Traceback" not in result.stderr


def test_diff_still_describes_a_change_whose_base_no_longer_validates(repo_stack: Path):
    """If the base version fails today's checks, the diff says so and shows the stack as new."""
    repo = repo_stack.parent.parent
    text = repo_stack.read_text()
    repo_stack.write_text(
        text.replace(
            "llm-gateway:workerName:", "llm-gateway:oldSetting: 1\n  llm-gateway:workerName:", 1
        )
    )
    git(repo, "commit", "-q", "-am", "base with a setting the model no longer knows")
    repo_stack.write_text(text)
    result = provision("diff", "--stack", repo_stack, "--base", "HEAD")
    assert result.returncode == 0, result.stderr
    assert "the base version does not validate" in result.stderr
    assert "+ org acme" in result.stdout
