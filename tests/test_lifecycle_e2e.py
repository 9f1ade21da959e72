"""End-to-end tenant lifecycle: stack-file edits made with the CLI, applied to a real Worker.

The Worker runs in workerd on a copy of the dev stack (`LocalGateway`, one per module and
xdist worker). A test edits the copy with `provision …`, calls `reload()` (what `pulumi up`
does to KV), and checks with the official openai SDK what a client sees. Each test owns the
keys and users it creates, so tests do not depend on each other's order.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import queue
import re
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from openai import OpenAI

from provision.local.runtime import LocalGateway
from provision.money import format_usd
from provision.stack.config import load_stack_file
from provision.stack.keys import hash_key
from tests.support import ROOT, error_of, eventually

PROVISION = ROOT / ".venv" / "bin" / "provision"
DEV_STACK = ROOT / "stacks" / "Pulumi.dev.yaml"
MODEL = "openai/gpt-4o-mini"
PRICE_IN, PRICE_OUT = 150_000, 600_000  # the dev stack's gpt-4o-mini, µUSD per million tokens
SETTLE_TIMEOUT_S = 10.0


# ---------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This module's own copy of the dev stack; tests edit it with the CLI."""
    path = tmp_path_factory.mktemp("lifecycle") / "Pulumi.lifecycle.yaml"
    shutil.copyfile(DEV_STACK, path)
    return path


@pytest.fixture(scope="module")
def live(stack: Path) -> Iterator[LocalGateway]:
    """The Worker serving the copy, on ports the runtime picked."""
    with LocalGateway(stack) as running:
        yield running


@pytest.fixture(scope="module")
def admin(live: LocalGateway) -> Iterator[httpx.Client]:
    headers = {"authorization": f"Bearer {live.secrets.admin_api_key}"}
    with httpx.Client(base_url=live.worker_url, headers=headers, timeout=30) as client:
        yield client


# ---------------------------------------------------------------------------- helpers


def provision(*args: Any) -> str:
    """Run the CLI (admin settings only from arguments); its stdout, failing on an error exit."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_ADMIN_")}
    result = subprocess.run(
        [str(PROVISION), *map(str, args)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def create_key(stack: Path, user: str, name: str) -> tuple[str, str]:
    """(key id, plain key) of a new key made with `provision keys create --json`."""
    body = json.loads(
        provision("keys", "create", "--stack", stack, "--user", user, "--name", name, "--json")
    )
    return body["keyId"], body["key"]


def chat(gateway: LocalGateway, api_key: str) -> Any:
    with OpenAI(
        base_url=gateway.openai_base_url, api_key=api_key, max_retries=0, timeout=30
    ) as client:
        return client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "Hello there"}], max_tokens=50
        )


def refused(gateway: LocalGateway, api_key: str) -> str:
    """The error code of the 401 the key gets."""
    with pytest.raises(openai.AuthenticationError) as caught:
        chat(gateway, api_key)
    assert caught.value.status_code == 401
    return caught.value.code


def cost_micros(completion: Any) -> int:
    usage = completion.usage
    total = usage.prompt_tokens * PRICE_IN + usage.completion_tokens * PRICE_OUT
    return -(-total // 1_000_000)  # ceil, integers only


def only_hash_in_file(stack: Path, plain: str) -> bool:
    text = stack.read_text()
    return plain not in text and f"sha256: {hash_key(plain)}" in text


def interrupt(process: subprocess.Popen[str]) -> int | None:
    """Ctrl-C to the process group, as a terminal sends it; the exit code (None: had to kill)."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGINT)
    try:
        return process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
        return None


# ---------------------------------------------------------------------------- key lifecycle


def test_created_key_works_after_reload_and_only_its_hash_is_stored(
    stack: Path, live: LocalGateway
):
    """A key from `provision keys create` authenticates once the stack is applied."""
    _, plain = create_key(stack, "alice", "new laptop")
    assert only_hash_in_file(stack, plain)
    assert refused(live, plain) == "invalid_api_key"  # not applied yet
    live.reload()
    completion = chat(live, plain)
    assert completion.choices[0].message.content
    assert completion.usage is not None and completion.usage.completion_tokens > 0


def test_rotated_key_works_during_the_grace_and_expires_after_it(stack: Path, live: LocalGateway):
    """After `keys rotate --grace 6s` old and new keys both work; after the grace only the new."""
    old_id, old_plain = create_key(stack, "bob", "ci")
    live.reload()
    chat(live, old_plain)

    body = json.loads(
        provision("keys", "rotate", "--stack", stack, "--key", old_id, "--grace", "6s", "--json")
    )
    new_plain = body["key"]
    cutover = dt.datetime.fromisoformat(body["oldKeyExpires"]).timestamp()
    assert only_hash_in_file(stack, new_plain)
    live.reload()
    chat(live, old_plain)
    chat(live, new_plain)
    assert time.time() < cutover, "the grace ended before both keys could be tried"

    time.sleep(max(0.0, cutover - time.time()) + 0.5)
    assert refused(live, old_plain) == "expired_api_key"
    chat(live, new_plain)


def test_key_revoked_in_the_stack_is_refused_after_reload(stack: Path, live: LocalGateway):
    """`provision keys revoke` + apply: the key gets 401 revoked_api_key."""
    key_id, plain = create_key(stack, "carol", "script")
    live.reload()
    chat(live, plain)
    provision("keys", "revoke", "--stack", stack, "--key", key_id)
    live.reload()
    assert refused(live, plain) == "revoked_api_key"


def test_removed_users_keys_are_refused_after_reload(stack: Path, live: LocalGateway):
    """`provision users remove` + apply: that user's key no longer authenticates."""
    provision(
        "users",
        "add",
        "--stack",
        stack,
        "--email",
        "leaver@demo-corp.example",
        "--org",
        "demo-corp",
        "--limit",
        "5",
        "--id",
        "leaver",
    )
    _, plain = create_key(stack, "leaver", "laptop")
    live.reload()
    chat(live, plain)
    provision("users", "remove", "--stack", stack, "--user", "leaver")
    live.reload()
    assert refused(live, plain) == "invalid_api_key"


# ---------------------------------------------------------------------------- emergency revocation


def admin_revoke(live: LocalGateway, key_id: str, *extra: str) -> str:
    return provision(
        "admin",
        "revoke",
        "--key",
        key_id,
        "--base-url",
        live.worker_url,
        "--admin-key",
        live.secrets.admin_api_key,
        *extra,
    )


def test_emergency_revoke_from_the_cli_stops_the_key_on_its_next_request(
    stack: Path, live: LocalGateway
):
    """`provision admin revoke` makes a working key fail at once, with no reload or deploy."""
    key_id, plain = create_key(stack, "alice", "stolen laptop")
    live.reload()
    chat(live, plain)  # the key is now cached in the Worker's isolate

    out = admin_revoke(live, key_id)
    assert f"Key {key_id} of user alice is revoked" in out
    assert refused(live, plain) == "revoked_api_key"

    again = json.loads(admin_revoke(live, key_id, "--json"))
    assert (again["keyId"], again["userId"], again["alreadyRevoked"]) == (key_id, "alice", True)
    assert "was already revoked" in admin_revoke(live, key_id)


def test_emergency_revoke_over_http(stack: Path, live: LocalGateway, admin: httpx.Client):
    """POST /admin/keys/{id}/revoke: next request 401, twice alreadyRevoked, kept across reloads."""
    key_id, plain = create_key(stack, "bob", "leaked in a log")
    live.reload()
    chat(live, plain)

    response = admin.post(f"/admin/keys/{key_id}/revoke", json={"reason": "leaked in a log"})
    assert response.status_code == 200, response.text
    first = response.json()
    assert (first["keyId"], first["userId"], first["reason"]) == (key_id, "bob", "leaked in a log")
    assert first["alreadyRevoked"] is False and first["propagation"]
    assert refused(live, plain) == "revoked_api_key"

    second = admin.post(f"/admin/keys/{key_id}/revoke").json()
    assert second["alreadyRevoked"] is True and second["revokedAt"] == first["revokedAt"]

    live.reload()  # the Worker-owned revocation outlives a config apply
    assert refused(live, plain) == "revoked_api_key"


def test_emergency_revoke_of_an_unknown_key_is_404(live: LocalGateway, admin: httpx.Client):
    """Revoking an id the stack does not declare is 404 key_not_found, from HTTP and the CLI."""
    response = admin.post("/admin/keys/key_nobody_00000000/revoke")
    assert response.status_code == 404
    error = error_of(response)
    assert error["code"] == "key_not_found" and "key_nobody_00000000" in error["message"]

    result = subprocess.run(
        [
            str(PROVISION),
            "admin",
            "revoke",
            "--key",
            "key_nobody_00000000",
            "--base-url",
            live.worker_url,
            "--admin-key",
            live.secrets.admin_api_key,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "HTTP 404 [key_not_found]" in result.stderr


def test_emergency_revoke_needs_the_admin_key(stack: Path, live: LocalGateway):
    """Without the admin key the revoke endpoint is 401 and the key keeps working."""
    key_id, plain = create_key(stack, "carol", "kept")
    live.reload()
    response = httpx.post(
        f"{live.worker_url}/admin/keys/{key_id}/revoke",
        headers={"authorization": f"Bearer {plain}"},
        timeout=30,
    )
    assert response.status_code == 401
    chat(live, plain)


# ---------------------------------------------------------------------------- export


def stack_tenants(stack: Path) -> dict[str, set[str]]:
    config = load_stack_file(stack)
    members: dict[str, set[str]] = {org.id: set() for org in config.tenants.organizations}
    for user in config.tenants.users:
        members[user.org].add(user.id)
    return members


def test_export_lists_every_tenant_with_this_months_usage(
    stack: Path, live: LocalGateway, admin: httpx.Client
):
    """/admin/export and `provision admin export` list every org and user with the month's usage."""
    provision(
        "orgs",
        "add",
        "--stack",
        stack,
        "--id",
        "exportco",
        "--name",
        "Export, Co",
        "--budget",
        "200",
    )
    provision(
        "orgs", "add", "--stack", stack, "--id", "emptyco", "--name", "Empty Co", "--budget", "10"
    )
    provision(
        "users",
        "add",
        "--stack",
        stack,
        "--email",
        "xavier@export.example",
        "--org",
        "exportco",
        "--limit",
        "20",
        "--id",
        "xavier",
    )
    _, plain = create_key(stack, "xavier", "reports")
    live.reload()
    completions = [chat(live, plain), chat(live, plain)]
    cost = sum(cost_micros(c) for c in completions)
    tokens_in = sum(c.usage.prompt_tokens for c in completions)
    tokens_out = sum(c.usage.completion_tokens for c in completions)

    def settled() -> dict[str, Any] | None:  # usage settles asynchronously (waitUntil)
        body = admin.get("/admin/export").json()
        orgs = {org["id"]: org for org in body["organizations"]}
        xavier = next(u for u in orgs["exportco"]["users"] if u["id"] == "xavier")
        return body if xavier["usage"]["requests"] >= 2 else None

    body = eventually(settled, SETTLE_TIMEOUT_S, 0.1) or admin.get("/admin/export").json()
    orgs = {org["id"]: org for org in body["organizations"]}
    xavier = next(u for u in orgs["exportco"]["users"] if u["id"] == "xavier")

    month = dt.datetime.now(dt.UTC).strftime("%Y-%m")
    tenants = stack_tenants(stack)
    assert body["month"] == month
    assert {org_id: {u["id"] for u in org["users"]} for org_id, org in orgs.items()} == tenants
    usage = xavier["usage"]
    assert (usage["requests"], usage["usedMicros"]) == (2, cost)
    assert (usage["tokensIn"], usage["tokensOut"]) == (tokens_in, tokens_out)
    assert usage["remainingMicros"] == 20_000_000 - cost
    assert orgs["exportco"]["usage"]["usedMicros"] == cost
    assert orgs["exportco"]["name"] == "Export, Co"
    assert orgs["emptyco"]["users"] == [] and orgs["emptyco"]["usage"]["usedMicros"] == 0

    # CSV: one row per user, plus a row for an organization without users.
    response = admin.get("/admin/export", params={"format": "csv"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert f"gateway-usage-{month}.csv" in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    pairs = {(row["org_id"], row["user_id"]) for row in rows}
    assert pairs == {(o, u) for o, users in tenants.items() for u in users} | {("emptyco", "")}
    assert len(rows) == len(pairs)
    row = next(r for r in rows if r["user_id"] == "xavier")
    assert row["org_name"] == "Export, Co" and row["month"] == month
    assert row["used_usd"] == f"{Decimal(cost) / 1_000_000:.6f}"
    assert (row["requests"], row["tokens_in"], row["tokens_out"]) == (
        "2",
        str(tokens_in),
        str(tokens_out),
    )

    # The CLI: the same figures as a table, the API's JSON, and the CSV file.
    table = provision(
        "admin", "export", "--base-url", live.worker_url, "--admin-key", live.secrets.admin_api_key
    )
    assert table.startswith(f"Export for {month}")
    lines = table.splitlines()
    for org_id, users in tenants.items():
        for user_id in users:
            assert any(line.split()[:2] == [org_id, user_id] for line in lines), user_id
    assert any(line.split()[:2] == ["emptyco", "-"] for line in lines)
    xavier_line = next(line for line in lines if line.split()[:2] == ["exportco", "xavier"])
    assert format_usd(cost) in xavier_line.split() and xavier_line.split()[-1] == "2"

    cli_json = json.loads(
        provision(
            "admin",
            "export",
            "--json",
            "--base-url",
            live.worker_url,
            "--admin-key",
            live.secrets.admin_api_key,
        )
    )
    assert cli_json["organizations"] == body["organizations"]
    cli_csv = provision(
        "admin",
        "export",
        "--format",
        "csv",
        "--base-url",
        live.worker_url,
        "--admin-key",
        live.secrets.admin_api_key,
    )
    assert list(csv.DictReader(io.StringIO(cli_csv))) == rows


# ---------------------------------------------------------------------------- provision dev


def test_provision_dev_applies_stack_and_code_edits_live(tmp_path: Path):
    """While `provision dev` runs, a key made with `provision keys create` works within seconds,
    and an edit of the Worker's code is rebuilt and reloaded."""
    stack = tmp_path / "Pulumi.devcopy.yaml"
    shutil.copyfile(DEV_STACK, stack)
    process = subprocess.Popen(
        [str(PROVISION), "dev", "--stack", str(stack), "--port", "0"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    assert process.stdout is not None
    stdout = process.stdout

    def read() -> None:
        for line in stdout:
            lines.put(line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()

    def wait_for(pattern: str, timeout: float) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = lines.get(timeout=left)
            except queue.Empty:
                break
            if match := re.search(pattern, line):
                return match
        raise AssertionError(f"`provision dev` printed no line matching {pattern!r}")

    try:
        url = wait_for(r"is running at (http://127\.0\.0\.1:\d+)", 60)[1]
        wait_for(r"Ctrl-C", 10)
        _, plain = create_key(stack, "alice", "dev server")
        wait_for(rf"^reloaded \({re.escape(stack.name)}\)$", 10)
        with OpenAI(base_url=f"{url}/v1", api_key=plain, max_retries=0, timeout=30) as client:
            completion = client.chat.completions.create(
                model=MODEL, messages=[{"role": "user", "content": "Hello"}], max_tokens=20
            )
        assert completion.choices[0].message.content
        # A change to the Worker's code is rebuilt and applied too (touched: same bytes, so
        # no other test's render changes).
        source = ROOT / "worker" / "src" / "request" / "models.ts"
        os.utime(source)
        wait_for(r"^reloaded \(models\.ts\)$", 10)
        assert httpx.get(f"{url}/health", timeout=10).status_code == 200
    finally:
        code = interrupt(process)
        reader.join(timeout=10)
        stdout.close()
    assert code == 0, "`provision dev` did not stop cleanly on Ctrl-C"
