"""How `provision admin` shows the admin API's answers: aligned tables, money as dollars."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from decimal import Decimal
from typing import Any

from provision.money import format_usd, usd_to_micros

Row = Sequence[Any]


def usd(micros: int) -> str:
    return format_usd(micros)


def dollars(exact: str) -> str:
    """An API `…Usd` string (`"12.340000"`) as `$12.34`, exactly (no float on the way)."""
    return format_usd(usd_to_micros(exact))


def share(part: int, whole: int) -> str:
    """`part` of `whole` in percent with one decimal, exactly (`<0.1%` for a little above
    nothing); `-` without a whole."""
    if whole <= 0:
        return "-"
    value = (Decimal(part) * 100 / Decimal(whole)).quantize(Decimal("0.1"))
    return "<0.1%" if value == 0 and part > 0 else f"{value}%"


def counted(number: int, noun: str) -> str:
    """`1 error`, `2 errors`, `1,234 requests`."""
    return f"{number:,} {noun}{'' if number == 1 else 's'}"


def percent(rate: float) -> str:
    """An API rate (0..1, four decimals) as `12.5%`."""
    return f"{rate * 100:.1f}%"


def ms(value: float | None) -> str:
    """A latency percentile in ms; `-` when nothing was measured."""
    return "-" if value is None else f"{value:,.1f}"


def pairs(rows: list[tuple[str, Any]]) -> str:
    """`label   value` lines with the values aligned."""
    width = max(len(label) for label, _ in rows)
    return "\n".join(f"{label:<{width}}  {value}" for label, value in rows)


def table(headers: Row, rows: Sequence[Row], numeric: Collection[int] = ()) -> str:
    """An aligned text table; columns in `numeric` are right-aligned."""
    cells = [[str(h) for h in headers], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = []
    for row in cells:
        parts = [
            cell.rjust(width) if i in numeric else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(parts).rstrip())
    if not rows:
        lines.append("(none)")
    return "\n".join(lines)


def _usage_pairs(body: dict[str, Any]) -> list[tuple[str, Any]]:
    return [
        ("Requests", f"{body['requests']:,}"),
        ("Tokens in", f"{body['tokensIn']:,}"),
        ("Tokens out", f"{body['tokensOut']:,}"),
        ("Estimated", f"{body['estimated']:,}"),
    ]


def render_health(body: dict[str, Any]) -> str:
    kv, ledger = body["kv"], body["ledger"]
    kv_text = f"ok (config {kv['configVersion']})" if kv["ok"] else f"DOWN: {kv.get('error', '')}"
    ledger_text = "ok" if ledger["ok"] else f"DOWN: {ledger.get('error', '')}"
    worker = body["worker"]
    return pairs(
        [
            ("Status", body["status"]),
            ("KV", kv_text),
            ("Ledger", ledger_text),
            ("Worker", f"{worker['name']} {worker['version']}"),
        ]
    )


def render_metrics(body: dict[str, Any]) -> str:
    """Counts, the range's totals, then per org, user and model, then the top users."""
    status = body["keyStatus"]
    totals, usage = body["totals"], body["usage"]
    latency = totals["latencyMs"]
    head = pairs(
        [
            ("Month", f"{body['month']} (spent, budgets and limits)"),
            ("Days", f"{body['from']} to {body['to']} (requests, rates, cost, latency)"),
            ("Config version", body["configVersion"]),
            ("Organizations", body["orgs"]),
            ("Users", body["users"]),
            (
                "Keys",
                f"{body['keys']} ({status['active']} active, {status['revoked']} revoked, "
                f"{status['suspended']} suspended, {status['expired']} expired)",
            ),
            ("Requests", f"{totals['requests']:,} ({counted(totals['errors'], 'error')})"),
            ("Error rate", percent(totals["errorRate"])),
            ("Cache-hit rate", percent(totals["cacheHitRate"])),
            ("Fallback rate", percent(totals["fallbackRate"])),
            ("Cost", dollars(totals["costUsd"])),
            ("Tokens", f"{totals['tokensIn']:,} in, {totals['tokensOut']:,} out"),
            (
                "Latency ms",
                f"p50 {ms(latency['p50'])}, p95 {ms(latency['p95'])}, p99 {ms(latency['p99'])}",
            ),
            ("TTFT ms", f"p50 {ms(totals['ttftMs']['p50'])}"),
            (
                "Month's spend",
                f"{dollars(usage['costUsd'])} over {counted(usage['requests'], 'charged request')} "
                f"({usage['estimated']:,} estimated)",
            ),
        ]
    )
    orgs = table(
        ("ORG", "SPENT", "BUDGET", "USED", "REQUESTS", "ERRORS", "P95 MS"),
        [
            (
                o["orgId"],
                dollars(o["spentUsd"]),
                dollars(o["monthlyBudgetUsd"]),
                share(o["spentMicros"], o["monthlyBudgetMicros"]),
                f"{o['requests']:,}",
                f"{o['errors']:,}",
                ms(o["latencyMs"]["p95"]),
            )
            for o in body["byOrg"]
        ],
        numeric={1, 2, 3, 4, 5, 6},
    )
    users = table(
        ("USER", "ORG", "SPENT", "LIMIT", "USED", "REQUESTS", "ERRORS"),
        [
            (
                u["userId"],
                u["orgId"],
                dollars(u["spentUsd"]),
                dollars(u["monthlyLimitUsd"]),
                share(u["spentMicros"], u["monthlyLimitMicros"]),
                f"{u['requests']:,}",
                f"{u['errors']:,}",
            )
            for u in body["byUser"]
        ],
        numeric={2, 3, 4, 5, 6},
    )
    keys = table(
        ("KEY", "USER", "ORG", "SPENT", "KEY LIMIT", "USED"),
        [
            (
                k["keyId"],
                k["userId"],
                k["orgId"],
                dollars(k["spentUsd"]),
                dollars(k["monthlyLimitUsd"]),
                share(k["spentMicros"], k["monthlyLimitMicros"]),
            )
            for k in body.get("byKey", [])
        ],
        numeric={3, 4, 5},
    )
    models = table(
        ("MODEL", "REQUESTS", "ERRORS", "COST", "P50 MS", "P95 MS"),
        [
            (
                m["model"],
                f"{m['requests']:,}",
                f"{m['errors']:,}",
                dollars(m["costUsd"]),
                ms(m["latencyMs"]["p50"]),
                ms(m["latencyMs"]["p95"]),
            )
            for m in body["byModel"]
        ],
        numeric={1, 2, 3, 4, 5},
    )
    top = table(
        ("USER", "ORG", "REQUESTS", "COST"),
        [
            (u["userId"], u["orgId"], f"{u['requests']:,}", dollars(u["costUsd"]))
            for u in body["topUsers"]
        ],
        numeric={2, 3},
    )
    return "\n\n".join(
        [
            head,
            f"Per organization (spent this month against the budget)\n{orgs}",
            f"Per user (spent this month against the limit)\n{users}",
            *(
                [f"Per API key with a limit of its own (spent this month against it)\n{keys}"]
                if body.get("byKey")
                else []
            ),
            f"Per model\n{models}",
            f"Top users by cost this month\n{top}",
        ]
    )


def render_user(body: dict[str, Any]) -> str:
    return pairs(
        [
            ("User", body["id"]),
            ("Email", body["email"]),
            ("Organization", f"{body['orgId']} ({body['orgName']})"),
            ("Status", body["status"]),
            ("Monthly limit", usd(body["monthlyLimitMicros"])),
            ("Keys", ", ".join(body["keyIds"]) or "(none)"),
        ]
    )


def render_user_usage(body: dict[str, Any]) -> str:
    return pairs(
        [
            ("User", f"{body['userId']} ({body['orgId']})"),
            ("Month", body["month"]),
            ("Used", usd(body["usedMicros"])),
            ("Limit", usd(body["limitMicros"])),
            ("Remaining", usd(body["remainingMicros"])),
            ("Reserved", usd(body["reservedMicros"])),
            ("Leased", usd(body["leasedMicros"])),
            *_usage_pairs(body),
            ("Resets at", body["resetsAt"]),
        ]
    )


def render_reset(body: dict[str, Any]) -> str:
    return (
        f"Reset the usage of user '{body['userId']}' for {body['month']}: "
        f"was {usd(body['previousUsageMicros'])}, now {usd(body['usedMicros'])} "
        f"of {usd(body['limitMicros'])} (remaining {usd(body['remainingMicros'])})."
    )


def render_org(body: dict[str, Any]) -> str:
    return pairs(
        [
            ("Organization", body["id"]),
            ("Name", body["name"]),
            ("Status", body["status"]),
            ("Failure mode", body["failureMode"]),
            ("Monthly budget", usd(body["monthlyBudgetMicros"])),
            ("Fallback daily limit", usd(body["fallbackDailyLimitMicros"])),
            ("Users", body["userCount"]),
        ]
    )


def render_org_users(body: dict[str, Any]) -> str:
    rows = [
        (
            u["id"],
            u["email"],
            u["status"],
            f"{u['usage']['requests']:,}",
            usd(u["usage"]["usedMicros"]),
            usd(u["monthlyLimitMicros"]),
            usd(u["usage"]["remainingMicros"]),
        )
        for u in body["users"]
    ]
    headers = ("USER", "EMAIL", "STATUS", "REQUESTS", "USED", "LIMIT", "REMAINING")
    title = f"Users of organization '{body['orgId']}', {body['month']}"
    return f"{title}\n{table(headers, rows, numeric={3, 4, 5, 6})}"


def render_org_usage(body: dict[str, Any]) -> str:
    head = pairs(
        [
            ("Organization", f"{body['orgId']} ({body['name']})"),
            ("Month", body["month"]),
            ("Used", usd(body["usedMicros"])),
            ("Budget", usd(body["budgetMicros"])),
            ("Remaining", usd(body["remainingMicros"])),
            ("Reserved", f"{usd(body['reservedMicros'])} ({body['openReservations']} open)"),
            ("Leased", usd(body["leasedMicros"])),
            *_usage_pairs(body),
            ("Resets at", body["resetsAt"]),
        ]
    )
    rows = [
        (
            u["userId"],
            f"{u['requests']:,}",
            usd(u["usedMicros"]),
            f"{u['tokensIn']:,}",
            f"{u['tokensOut']:,}",
        )
        for u in body["users"]
    ]
    headers = ("USER", "REQUESTS", "USED", "TOKENS IN", "TOKENS OUT")
    users = table(headers, rows, numeric={1, 2, 3, 4})
    return f"{head}\n\n{users}"


def render_revoke(body: dict[str, Any]) -> str:
    state = "was already revoked" if body["alreadyRevoked"] else "is revoked"
    return "\n".join(
        [
            f"Key {body['keyId']} of user {body['userId']} {state} (since {body['revokedAt']}).",
            body["propagation"],
            f"Revoke it in the stack file too, or the next deploy leaves it only blocked by this record: "
            f"provision keys revoke --key {body['keyId']}",
        ]
    )


def render_reconcile(body: dict[str, Any]) -> str:
    lines = [
        f"Reconciled {body['reconciled']} usage record(s) into the ledgers "
        f"({usd(body['reconciledCostMicros'])})."
    ]
    lines += [f"  failed: {failure['key']}: {failure['error']}" for failure in body["failed"]]
    if body["more"]:
        lines.append("More records are waiting: run it again.")
    return "\n".join(lines)


def _alert_whose(alert: dict[str, Any]) -> str:
    if alert["scope"] == "key":
        return f"{alert['userId']} (key {alert['keyId']})"
    return str(alert["userId"] or "(org)")


def _alert_what(alert: dict[str, Any]) -> str:
    """A threshold of the month, or a spend-rate breaker that tripped in a window."""
    window = alert.get("window")
    if window:
        return f"spend rate per {window['name']} from {window['start'][11:16]} UTC"
    return f"{alert['thresholdPercent']} %"


def render_alerts(body: dict[str, Any]) -> str:
    if not body["webhookConfigured"]:
        return f"{body['month']}: this stack declares no alerts (alerts.webhookUrl)."
    if not body["alerts"]:
        return f"{body['month']}: no budget alert reached yet."
    rows: list[Row] = [
        (
            alert["orgId"],
            _alert_whose(alert),
            _alert_what(alert),
            f"{usd(alert['usedMicros'])} of {usd(alert['limitMicros'])}",
            alert["reachedAt"],
            alert["status"],
            alert["attempts"],
            alert["lastError"] or (str(alert["lastStatus"]) if alert["lastStatus"] else "-"),
        )
        for alert in body["alerts"]
    ]
    headers = ("org", "whose", "alert", "used", "reached at", "status", "tries", "last")
    return f"Budget alerts, {body['month']}\n" + table(headers, rows, numeric=(6,))


def render_export(body: dict[str, Any]) -> str:
    rows: list[Row] = []
    for org in body["organizations"]:
        if not org["users"]:  # an organization without users is listed all the same
            rows.append(
                (
                    org["id"],
                    "-",
                    "-",
                    usd(org["usage"]["usedMicros"]),
                    "-",
                    org["usage"]["requests"],
                )
            )
        rows += [
            (
                org["id"],
                user["id"],
                user["email"],
                usd(user["usage"]["usedMicros"]),
                usd(user["monthlyLimitMicros"]),
                user["usage"]["requests"],
            )
            for user in org["users"]
        ]
    head = f"Export for {body['month']} (config {body['configVersion']}); --json or --format csv for files."
    return f"{head}\n\n" + table(
        ("ORG", "USER", "EMAIL", "USED", "LIMIT", "REQUESTS"), rows, numeric={3, 4, 5}
    )


def org_days(body: dict[str, Any], org_id: str) -> list[dict[str, Any]]:
    """The org's `byOrgDay` entries, every day of the month in order."""
    return [entry for entry in body["byOrgDay"] if entry["orgId"] == org_id]
