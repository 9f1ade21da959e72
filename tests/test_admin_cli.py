"""`provision admin`: tables with the right figures, --json, and exit codes, against a real runtime.

The runtime and the known workload (nina: 2 requests, omar: 1) are the session's admin
fixtures (tests/conftest.py), shared with the admin API tests.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
from typing import Any

import pytest

from provision import admin_views
from provision.local import LocalGateway
from provision.money import format_usd
from tests.admin_support import Admin, Sent, send_settled, this_month
from tests.support import ROOT, run_cli

PROVISION = ROOT / ".venv" / "bin" / "provision"


def run_admin(
    gateway: LocalGateway | None, *args: str, admin_key: str | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    """`provision admin ARGS` (in-process) with a clean environment: no GATEWAY_ADMIN_* unless given."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_ADMIN_")}
    environ.update(env)
    options = []
    if gateway is not None and "GATEWAY_ADMIN_URL" not in env:
        options += ["--base-url", gateway.worker_url]
    if admin_key is None and gateway is not None and "GATEWAY_ADMIN_KEY" not in env:
        admin_key = gateway.secrets.admin_api_key
    if admin_key:
        options += ["--admin-key", admin_key]
    return run_cli("admin", *options, *args, env=environ)


def ok(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


def line(text: str, label: str) -> str:
    """The value printed after `label` in a label/value table."""
    match = re.search(rf"^{re.escape(label)}\s{{2,}}(.+)$", text, re.M)
    assert match, f"no '{label}' line in:\n{text}"
    return match.group(1).strip()


def row(text: str, first: str) -> list[str]:
    """The cells of the table row starting with `first`."""
    match = re.search(rf"^{re.escape(first)}\s.*$", text, re.M)
    assert match, f"no row for '{first}' in:\n{text}"
    return match.group(0).split()


# ---------------------------------------------------------------------------- tables


def test_health_table(admin_gateway: LocalGateway):
    """`admin health` prints ok for KV and the ledger, and the Worker's name."""
    out = ok(run_admin(admin_gateway, "health"))
    assert line(out, "Status") == "ok"
    assert line(out, "KV").startswith("ok (config ")
    assert line(out, "Ledger") == "ok"
    assert line(out, "Worker").startswith("llm-gateway-admin ")


def test_metrics_table(admin: Admin, admin_gateway: LocalGateway, workload: dict[str, Sent]):
    """`admin metrics` prints tenant counts, the month's cost and the top users with $ figures."""
    out = ok(run_admin(admin_gateway, "metrics"))
    usage = admin.get("/admin/metrics")["usage"]
    assert line(out, "Month") == this_month()
    assert line(out, "Organizations") == "2"
    assert line(out, "Users") == "4"
    assert line(out, "Keys") == "6 (5 active)"
    assert line(out, "Cost") == format_usd(usage["costMicros"])
    assert line(out, "Requests") == f"{usage['requests']:,}"
    assert row(out, "nina") == ["nina", "northwind", "2", format_usd(workload["nina"].cost)]
    assert row(out, "omar") == ["omar", "northwind", "1", format_usd(workload["omar"].cost)]


def test_user_table(admin_gateway: LocalGateway):
    """`admin user ID` prints the user's config with the limit in dollars."""
    out = ok(run_admin(admin_gateway, "user", "rita"))
    assert line(out, "Email") == "rita@umbrella.example"
    assert line(out, "Organization") == "umbrella (Umbrella Corp)"
    assert line(out, "Monthly limit") == "$5.25"
    assert line(out, "Keys") == "key_rita_main"


def test_user_usage_table(admin_gateway: LocalGateway, workload: dict[str, Sent]):
    """`admin user ID usage` prints used, limit and remaining in dollars and the token counts."""
    sent = workload["nina"]
    out = ok(run_admin(admin_gateway, "user", "nina", "usage"))
    assert line(out, "Used") == format_usd(sent.cost)
    assert line(out, "Limit") == "$100.00"
    assert line(out, "Remaining") == format_usd(100_000_000 - sent.cost)
    assert line(out, "Requests") == "2"
    assert line(out, "Tokens out") == f"{sent.tokens_out:,}"


def test_user_usage_of_a_month(admin_gateway: LocalGateway, workload: dict[str, Sent]):
    """--month selects the month, before or after the subcommand."""
    for args in (
        ("--month", "2025-01", "user", "nina", "usage"),
        ("user", "nina", "usage", "--month", "2025-01"),
    ):
        out = ok(run_admin(admin_gateway, *args))
        assert line(out, "Month") == "2025-01"
        assert line(out, "Used") == "$0.00"
        assert line(out, "Resets at") == "2025-02-01T00:00:00.000Z"


def test_org_table(admin_gateway: LocalGateway):
    """`admin org ID` prints the org's config with budgets in dollars."""
    out = ok(run_admin(admin_gateway, "org", "umbrella"))
    assert line(out, "Name") == "Umbrella Corp"
    assert line(out, "Monthly budget") == "$50.00"
    assert line(out, "Fallback daily limit") == "$1.50"
    assert line(out, "Users") == "2"


def test_org_users_table(admin_gateway: LocalGateway, workload: dict[str, Sent]):
    """`admin org ID users` has one row per user: requests, used, limit, remaining."""
    out = ok(run_admin(admin_gateway, "org", "northwind", "users"))
    nina, omar = workload["nina"], workload["omar"]
    assert row(out, "nina") == [
        "nina",
        "nina@northwind.example",
        "active",
        "2",
        format_usd(nina.cost),
        "$100.00",
        format_usd(100_000_000 - nina.cost),
    ]
    assert row(out, "omar") == [
        "omar",
        "omar@northwind.example",
        "active",
        "1",
        format_usd(omar.cost),
        "$20.00",
        format_usd(20_000_000 - omar.cost),
    ]


def test_org_usage_table(admin_gateway: LocalGateway, workload: dict[str, Sent]):
    """`admin org ID usage` prints the org total against its budget and per-user rows."""
    total = workload["nina"].cost + workload["omar"].cost
    out = ok(run_admin(admin_gateway, "org", "northwind", "usage"))
    assert line(out, "Used") == format_usd(total)
    assert line(out, "Budget") == "$500.00"
    assert line(out, "Remaining") == format_usd(500_000_000 - total)
    assert line(out, "Reserved") == "$0.00 (0 open)"
    assert line(out, "Leased").startswith("$")  # slices isolates hold: see test_leases_e2e
    omar = workload["omar"]
    assert row(out, "omar") == [
        "omar",
        "1",
        format_usd(omar.cost),
        f"{omar.tokens_in:,}",
        f"{omar.tokens_out:,}",
    ]


def test_reset_quota_command(admin: Admin, admin_gateway: LocalGateway):
    """`admin user ID reset-quota` says what the usage was and that it is now $0.00."""
    send_settled(
        admin,
        admin_gateway,
        "pia",
        "key_pia_main",
        ("openai/gpt-4o", "Go emulate:tokens=500", 1000),
    )
    before = admin.get("/admin/users/pia/usage")["usedMicros"]
    out = ok(run_admin(admin_gateway, "user", "pia", "reset-quota"))
    assert f"was {format_usd(before)}, now $0.00 of $10.00" in out
    assert admin.get("/admin/users/pia/usage")["usedMicros"] == 0


# ---------------------------------------------------------------------------- --json and env


@pytest.mark.parametrize(
    ("args", "path"),
    [
        (("health",), "/admin/health"),
        (("metrics",), "/admin/metrics"),
        (("user", "nina"), "/admin/users/nina"),
        (("user", "nina", "usage"), "/admin/users/nina/usage"),
        (("org", "northwind"), "/admin/organizations/northwind"),
        (("org", "northwind", "users"), "/admin/organizations/northwind/users"),
        (("org", "northwind", "usage"), "/admin/organizations/northwind/usage"),
    ],
)
def test_json_is_the_api_answer(admin: Admin, admin_gateway: LocalGateway, workload, args, path):
    """--json prints exactly what the admin API answers, as parseable JSON."""
    printed: Any = json.loads(ok(run_admin(admin_gateway, *args, "--json")))
    assert printed == admin.get(path)


def test_environment_variables_give_url_and_key(admin_gateway: LocalGateway):
    """GATEWAY_ADMIN_URL and GATEWAY_ADMIN_KEY stand in for --base-url and --admin-key."""
    result = run_admin(
        None,
        "user",
        "omar",
        "--json",
        GATEWAY_ADMIN_URL=admin_gateway.worker_url,
        GATEWAY_ADMIN_KEY=admin_gateway.secrets.admin_api_key,
    )
    assert json.loads(ok(result))["email"] == "omar@northwind.example"


# ---------------------------------------------------------------------------- errors


def test_unknown_user_exits_1_with_the_api_error(admin_gateway: LocalGateway):
    """An unknown user prints `error: HTTP 404 [user_not_found]: ...` and exits 1."""
    result = run_admin(admin_gateway, "user", "nobody", "usage")
    assert result.returncode == 1
    assert result.stderr.strip() == "error: HTTP 404 [user_not_found]: No user with id 'nobody'."
    assert result.stdout == ""


def test_unknown_org_exits_1(admin_gateway: LocalGateway):
    """An unknown organization exits 1 naming organization_not_found."""
    result = run_admin(admin_gateway, "org", "nowhere", "--json")
    assert result.returncode == 1
    assert "HTTP 404 [organization_not_found]" in result.stderr


def test_wrong_admin_key_exits_1(admin_gateway: LocalGateway):
    """A wrong admin key exits 1 with the 401 invalid_admin_key error."""
    result = run_admin(admin_gateway, "metrics", admin_key="adm_not-the-key")
    assert result.returncode == 1
    assert "error: HTTP 401 [invalid_admin_key]" in result.stderr


def test_bad_month_exits_1(admin_gateway: LocalGateway):
    """A malformed --month is the API's 400 invalid_month, exit 1."""
    result = run_admin(admin_gateway, "org", "northwind", "usage", "--month", "2026-13")
    assert result.returncode == 1
    assert "HTTP 400 [invalid_month]" in result.stderr


def test_missing_admin_key_exits_2():
    """Without --admin-key or GATEWAY_ADMIN_KEY the command exits 2 saying what to set."""
    result = run_admin(None, "health", "--base-url", "http://127.0.0.1:9")
    assert result.returncode == 2
    assert "GATEWAY_ADMIN_KEY" in result.stderr and "--admin-key" in result.stderr


def test_month_where_it_does_not_apply_exits_2(admin_gateway: LocalGateway):
    """--month on a command without a month (health, reset-quota) is a usage error, exit 2."""
    for args in (("health",), ("user", "nina", "reset-quota")):
        result = run_admin(admin_gateway, *args, "--month", "2026-01")
        assert result.returncode == 2
        assert "--month" in result.stderr


def test_unreachable_gateway_exits_1():
    """A gateway that does not answer is reported with its URL, exit 1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"  # bound, not listening: refused
        result = run_admin(None, "health", "--base-url", url, admin_key="adm_x")
    assert result.returncode == 1
    assert f"could not reach {url}" in result.stderr


def test_degraded_health_report_reads_as_down():
    """A degraded health report names the part that is down (the CLI then exits 1)."""
    report = admin_views.render_health(
        {
            "status": "degraded",
            "kv": {"ok": True, "configVersion": "abc"},
            "ledger": {"ok": False, "error": "no answer within 5000 ms"},
            "worker": {"name": "gw", "version": "123"},
        }
    )
    assert line(report, "Status") == "degraded"
    assert line(report, "Ledger") == "DOWN: no answer within 5000 ms"
