"""`provision admin`: tables with the right figures, --json, and exit codes, against a real runtime.

The runtime and the known workload (nina: 2 requests, omar: 1) are the session's admin
fixtures (tests/conftest.py), shared with the admin API tests.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import socket
import subprocess
from decimal import Decimal
from typing import Any

import pytest

from provision.cli import admin_views
from provision.local.runtime import LocalGateway
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


def cells(text: str, first: str) -> list[str]:
    """The cells of the table row starting with `first`, split where columns are (2+ spaces)."""
    match = re.search(rf"^{re.escape(first)}\s.*$", text, re.M)
    assert match, f"no row for '{first}' in:\n{text}"
    return re.split(r"\s{2,}", match.group(0).strip())


def section(text: str, title: str) -> str:
    """The block of `text` (blocks are separated by a blank line) whose first line starts with
    `title`."""
    blocks = [b for b in text.split("\n\n") if b.startswith(title)]
    assert len(blocks) == 1, f"no one '{title}' block in:\n{text}"
    return blocks[0]


def percent(rate: float) -> str:
    return f"{rate * 100:.1f}%"


def ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f}"


def test_metrics_table(admin: Admin, admin_gateway: LocalGateway, workload: dict[str, Sent]):
    """`admin metrics` prints tenant counts, key status counts and the month's totals: requests,
    rates, cost, tokens and latency percentiles, as the API has them."""
    out = ok(run_admin(admin_gateway, "metrics"))
    body = admin.get("/admin/metrics")
    totals, usage = body["totals"], body["usage"]
    assert line(out, "Month") == f"{this_month()} (spent, budgets and limits)"
    assert line(out, "Days").startswith(f"{this_month()}-01 to {this_month()}-")
    assert line(out, "Organizations") == "2"
    assert line(out, "Users") == "4"
    assert line(out, "Keys") == "6 (5 active, 1 revoked, 0 suspended, 0 expired)"
    errors = totals["errors"]
    assert line(out, "Requests") == (
        f"{totals['requests']:,} ({errors} error{'' if errors == 1 else 's'})"
    )
    assert totals["requests"] >= 3  # the workload at least
    assert line(out, "Error rate") == percent(totals["errorRate"])
    assert line(out, "Cache-hit rate") == percent(totals["cacheHitRate"])
    assert line(out, "Fallback rate") == percent(totals["fallbackRate"])
    assert line(out, "Cost") == format_usd(totals["costMicros"])
    assert line(out, "Tokens") == f"{totals['tokensIn']:,} in, {totals['tokensOut']:,} out"
    latency = totals["latencyMs"]
    assert line(out, "Latency ms") == (
        f"p50 {ms(latency['p50'])}, p95 {ms(latency['p95'])}, p99 {ms(latency['p99'])}"
    )
    assert latency["p50"] is not None  # the workload was measured
    assert line(out, "TTFT ms") == f"p50 {ms(totals['ttftMs']['p50'])}"
    assert line(out, "Month's spend").startswith(
        f"{format_usd(usage['costMicros'])} over {usage['requests']:,} charged request"
    )
    top = section(out, "Top users by cost")
    assert row(top, "nina") == ["nina", "northwind", "2", format_usd(workload["nina"].cost)]
    assert row(top, "omar") == ["omar", "northwind", "1", format_usd(workload["omar"].cost)]


def test_metrics_per_org_user_and_model(
    admin: Admin, admin_gateway: LocalGateway, workload: dict[str, Sent]
):
    """Per org: spent of budget with the share used, requests, errors, p95; per user: spent of
    the limit; per model: requests, cost, p50 and p95."""
    out = ok(run_admin(admin_gateway, "metrics"))
    body = admin.get("/admin/metrics")
    nina, omar = workload["nina"], workload["omar"]
    spent = nina.cost + omar.cost
    [northwind] = [o for o in body["byOrg"] if o["orgId"] == "northwind"]
    used = (Decimal(spent) * 100 / 500_000_000).quantize(Decimal("0.1"))
    assert cells(section(out, "Per organization"), "northwind") == [
        "northwind",
        format_usd(spent),
        "$500.00",
        f"{used}%" if used else "<0.1%",
        "3",  # the workload only: no other test sends for northwind
        "0",
        ms(northwind["latencyMs"]["p95"]),
    ]
    users = section(out, "Per user")
    assert cells(users, "nina")[:4] == ["nina", "northwind", format_usd(nina.cost), "$100.00"]
    assert cells(users, "omar")[:4] == ["omar", "northwind", format_usd(omar.cost), "$20.00"]
    assert cells(users, "nina")[5:] == ["2", "0"]
    models = section(out, "Per model")
    for model in body["byModel"]:
        assert cells(models, model["model"]) == [
            model["model"],
            f"{model['requests']:,}",
            f"{model['errors']:,}",
            format_usd(model["costMicros"]),
            ms(model["latencyMs"]["p50"]),
            ms(model["latencyMs"]["p95"]),
        ]
    assert {m["model"] for m in body["byModel"]} >= {
        "openai/gpt-4o",
        "openai/gpt-4o-mini",
        "anthropic/claude-sonnet-4-5",
    }


def test_metrics_of_one_org_or_one_user(admin_gateway: LocalGateway, workload: dict[str, Sent]):
    """--org and --user narrow every table to that org or user."""
    out = ok(run_admin(admin_gateway, "metrics", "--org", "northwind"))
    orgs = section(out, "Per organization")
    assert "northwind" in orgs and "umbrella" not in orgs
    out = ok(run_admin(admin_gateway, "metrics", "--user", "omar"))
    assert line(out, "Requests") == "1 (0 errors)"
    assert line(out, "Cost") == format_usd(workload["omar"].cost)
    users = section(out, "Per user")
    assert cells(users, "omar")[:3] == ["omar", "northwind", format_usd(workload["omar"].cost)]
    assert "nina" not in users
    assert cells(section(out, "Per model"), "anthropic/claude-sonnet-4-5")[1] == "1"


def test_metrics_of_a_range_of_days(admin: Admin, admin_gateway: LocalGateway, workload):
    """--from and --to select UTC days; the table names them and --json is the API's answer."""
    today = dt.datetime.now(dt.UTC).date()
    yesterday = (today - dt.timedelta(days=1)).isoformat()
    params = {"from": yesterday, "to": today.isoformat(), "org": "northwind"}
    args = ("metrics", "--from", yesterday, "--to", today.isoformat(), "--org", "northwind")
    out = ok(run_admin(admin_gateway, *args))
    assert line(out, "Days").startswith(f"{yesterday} to {today.isoformat()} ")
    assert line(out, "Requests") == "3 (0 errors)"
    printed = json.loads(ok(run_admin(admin_gateway, *args, "--json")))
    assert printed == admin.get("/admin/metrics", params=params)
    assert [d["day"] for d in printed["byDay"]] == [yesterday, today.isoformat()]


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


def test_month_and_a_range_of_days_exclude_each_other(admin_gateway: LocalGateway):
    """--month with --from/--to, or --from without --to, is a usage error (exit 2) that says
    what to give; nothing is asked of the gateway."""
    cases = {
        ("--month", "2026-01", "metrics", "--from", "2026-01-01", "--to", "2026-01-02"): (
            "either --month or --from and --to"
        ),
        ("metrics", "--from", "2026-01-01"): "needs both --from and --to",
        ("metrics", "--to", "2026-01-02"): "needs both --from and --to",
    }
    for args, message in cases.items():
        result = run_admin(admin_gateway, *args)
        assert result.returncode == 2, args
        assert message in result.stderr and result.stdout == ""


def test_bad_day_exits_1_with_the_api_error(admin_gateway: LocalGateway):
    """A malformed day is the API's 400 invalid_day, naming the option's value."""
    result = run_admin(admin_gateway, "metrics", "--from", "2026-02-30", "--to", "2026-03-01")
    assert result.returncode == 1
    assert "HTTP 400 [invalid_day]" in result.stderr and "2026-02-30" in result.stderr


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
