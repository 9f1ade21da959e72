"""`provision report`: a month's spend, requests and latency per organization and per day.

One call to `GET /admin/metrics` (through `provision admin`'s connection: --base-url,
--admin-key, GATEWAY_ADMIN_URL, GATEWAY_ADMIN_KEY) and three ways to show it: a terminal table
(the default), `--csv FILE` (one row per org per day; `-` for stdout) and `--png FILE`
(a chart, provision/cli/report_chart.py). Money stays exact: the CSV carries the API's decimal
strings, the table formats them without floats. Exit codes are `provision admin`'s: 0 fine,
1 the gateway answered an error or could not be reached (or a file could not be written),
2 a usage problem.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

from provision.cli.admin_client import AdminError, connection_options, fetch, json_body
from provision.cli.admin_views import counted, dollars, ms, org_days, share, table

CSV_COLUMNS = (
    "org",
    "day",
    "requests",
    "errors",
    "cache_hits",
    "fallbacks",
    "tokens_in",
    "tokens_out",
    "cost_usd",
    "latency_p50_ms",
    "latency_p95_ms",
    "latency_p99_ms",
)


# ---------------------------------------------------------------------------- the figures


# ---------------------------------------------------------------------------- table


def render_table(body: dict[str, Any]) -> str:
    """One block per org (its days with requests and a TOTAL row), then every org's total."""
    blocks = [
        f"Report for {body['month']} ({body['from']} to {body['to']}); days without requests "
        "are left out (--csv has every day)."
    ]
    headers = ("DAY", "REQUESTS", "ERRORS", "COST", "P50 MS", "P95 MS")
    for org in body["byOrg"]:
        days = [day for day in org_days(body, org["orgId"]) if day["requests"]]
        rows = [_day_row(day["day"], day) for day in days] + [_day_row("TOTAL", org)]
        title = (
            f"{org['orgId']} ({org['name']}): spent {dollars(org['spentUsd'])} of "
            f"{dollars(org['monthlyBudgetUsd'])} "
            f"({share(org['spentMicros'], org['monthlyBudgetMicros'])} of the monthly budget)"
        )
        block = f"{title}\n{table(headers, rows, numeric={1, 2, 3, 4, 5})}"
        # keys with a monthly limit of their own, against it (a CI key's share of its user's)
        for key in (k for k in body.get("byKey", []) if k["orgId"] == org["orgId"]):
            block += (
                f"\n  key {key['keyId']} of user {key['userId']}: spent {dollars(key['spentUsd'])} of "
                f"its own {dollars(key['monthlyLimitUsd'])} "
                f"({share(key['spentMicros'], key['monthlyLimitMicros'])})"
            )
        blocks.append(block)
    totals = body["totals"]
    blocks.append(
        f"All organizations: {counted(totals['requests'], 'request')}, "
        f"{counted(totals['errors'], 'error')}, {dollars(totals['costUsd'])}, "
        f"p50 {ms(totals['latencyMs']['p50'])} ms, p95 {ms(totals['latencyMs']['p95'])} ms"
    )
    return "\n\n".join(blocks)


def _day_row(label: str, stats: dict[str, Any]) -> tuple[str, ...]:
    return (
        label,
        f"{stats['requests']:,}",
        f"{stats['errors']:,}",
        dollars(stats["costUsd"]),
        ms(stats["latencyMs"]["p50"]),
        ms(stats["latencyMs"]["p95"]),
    )


# ---------------------------------------------------------------------------- csv


def csv_rows(body: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """One row per org per day (CSV_COLUMNS); cost the API's exact decimal string, a latency
    percentile empty when nothing was measured."""
    for entry in body["byOrgDay"]:
        latency = entry["latencyMs"]
        yield {
            "org": entry["orgId"],
            "day": entry["day"],
            "requests": entry["requests"],
            "errors": entry["errors"],
            "cache_hits": entry["cacheHits"],
            "fallbacks": entry["fallbacks"],
            "tokens_in": entry["tokensIn"],
            "tokens_out": entry["tokensOut"],
            "cost_usd": entry["costUsd"],
            **{f"latency_{p}_ms": _number(latency[p]) for p in ("p50", "p95", "p99")},
        }


def _number(value: float | None) -> str:
    return "" if value is None else str(value)


def write_csv(body: dict[str, Any], out: TextIO) -> int:
    """The CSV into `out`; the number of data rows."""
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    count = 0
    for row in csv_rows(body):
        writer.writerow(row)
        count += 1
    return count


# ---------------------------------------------------------------------------- command


def run(args: argparse.Namespace) -> int:
    try:
        params = {"month": args.month} if args.month else {}
        body = json_body(fetch(args, "GET", "/admin/metrics", params))
        if args.csv is None and args.png is None:
            print(render_table(body))
        if args.csv == "-":
            try:
                write_csv(body, sys.stdout)
                sys.stdout.flush()
            except BrokenPipeError:
                # the reader left (`| head`): stop without a traceback, as Python's docs advise
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
                return 1
        elif args.csv is not None:
            _csv_file(body, args.csv)
        if args.png is not None:
            _png_file(body, args.png)
    except AdminError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    return 0


def _csv_file(body: dict[str, Any], path: str) -> None:
    try:
        with open(path, "w", newline="", encoding="utf-8") as out:
            rows = write_csv(body, out)
    except OSError as exc:
        raise AdminError(f"could not write {path}: {exc.strerror or exc}") from exc
    print(f"Wrote {path}: {counted(rows, 'row')} (one per organization per day).", file=sys.stderr)


def _png_file(body: dict[str, Any], path: str) -> None:
    from provision.cli.report_chart import write_png  # matplotlib loads only to draw

    try:
        width, height = write_png(body, Path(path))
    except OSError as exc:
        raise AdminError(f"could not write {path}: {exc.strerror or exc}") from exc
    print(f"Wrote {path}: {width}x{height} PNG.", file=sys.stderr)


def configure(parser: argparse.ArgumentParser) -> None:
    """The arguments of `provision report` (its help line is in provision/cli/__init__.py)."""
    connection_options(parser)
    parser.add_argument(
        "--month",
        metavar="YYYY-MM",
        help="UTC month of the report (default: the current month)",
    )
    parser.add_argument(
        "--csv",
        metavar="FILE",
        help="write one row per organization per day as CSV to FILE (- for stdout)",
    )
    parser.add_argument(
        "--png",
        metavar="FILE",
        help="write a chart per organization: daily and cumulative spend against the budget, "
        "requests and p95 latency per day",
    )
    parser.set_defaults(handler=run)
