"""`provision report --png`: the month's chart, one row of four panels per organization.

Panels, each over the days of the month: spend per day (bars); cumulative spend (line) against
the monthly budget (dashed); requests and errors per day; p95 latency per day. Drawn with
matplotlib's Agg canvas on a `Figure` of its own (no pyplot, no display, no global state).
Amounts are floats only as plot coordinates; every amount written as text comes from the
API's exact decimal strings.
"""

from __future__ import annotations

import math
from decimal import Decimal
from pathlib import Path
from typing import Any

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator

from provision.cli.admin_views import counted, dollars, org_days, share

DPI = 100
PANEL_ROW_INCHES = 3.6
WIDTH_INCHES = 20.0
SPEND, CUMULATIVE, BUDGET, REQUESTS, ERRORS, LATENCY = (
    "#4c72b0",
    "#dd8452",
    "#c44e52",
    "#55a868",
    "#c44e52",
    "#8172b3",
)  # seaborn's "deep" palette


def write_png(body: dict[str, Any], path: Path) -> tuple[int, int]:
    """Draw the report of `body` (a /admin/metrics answer) into `path`; its (width, height)."""
    orgs = body["byOrg"]
    figure = Figure(
        figsize=(WIDTH_INCHES, PANEL_ROW_INCHES * max(1, len(orgs)) + 0.7),
        dpi=DPI,
        layout="constrained",
    )
    canvas = FigureCanvasAgg(figure)
    figure.suptitle(
        f"LLM gateway report for {body['month']}: spend, requests and p95 latency per "
        "organization and day (UTC)",
        fontsize=14,
        fontweight="bold",
    )
    if not orgs:
        figure.text(0.5, 0.5, "No organizations in this report", ha="center", va="center")
    grid: Any = figure.subplots(len(orgs), 4, squeeze=False) if orgs else []
    for row, org in zip(grid, orgs, strict=True):
        days = org_days(body, org["orgId"])
        _daily_spend_panel(row[0], org, days, body["month"])
        _cumulative_panel(row[1], org, days, body["month"])
        _requests_panel(row[2], org, days, body["month"])
        _latency_panel(row[3], org, days, body["month"])
    figure.savefig(path, format="png", dpi=DPI)
    width, height = canvas.get_width_height()
    return width, height


def _plain(text: str) -> str:
    """Text drawn as written: a `$` would otherwise open matplotlib's math mode."""
    return text.replace("$", r"\$")


def _headroom(axes: Axes, top: float) -> None:
    """From 0 to a little above the highest value, so a legend has room above the data."""
    axes.set_ylim(0, top * 1.3 if top > 0 else 1)


def _day_axis(axes: Axes, days: list[dict[str, Any]], month: str) -> list[int]:
    """Days of the month on x (1..31); returns their numbers."""
    numbers = [int(day["day"][8:]) for day in days]
    axes.set_xlim(0.4, max(numbers, default=1) + 0.6)
    axes.xaxis.set_major_locator(MaxNLocator(integer=True, nbins=16))
    axes.set_xlabel(f"Day of {month}")
    axes.grid(axis="y", alpha=0.3)
    return numbers


def _usd_ticks(axes: Axes, top: float) -> None:
    """Dollar tick labels with as many decimals as the axis' scale needs."""
    decimals = 2 if top >= 1 or top <= 0 else min(6, 1 - math.floor(math.log10(top)))
    axes.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"${value:,.{decimals}f}"))


def _daily_spend_panel(
    axes: Axes, org: dict[str, Any], days: list[dict[str, Any]], month: str
) -> None:
    x = _day_axis(axes, days, month)
    daily = [Decimal(day["costUsd"]) for day in days]
    highest = float(max(daily, default=Decimal(0)))
    axes.bar(x, [float(amount) for amount in daily], color=SPEND, label="spend per day")
    axes.set_ylabel("Spend per day (USD)")
    _usd_ticks(axes, highest)
    _headroom(axes, highest)
    axes.legend(loc="upper left", fontsize=8)
    axes.set_title(
        _plain(
            f"{org['orgId']} ({org['name']}): {dollars(org['costUsd'])} over "
            f"{counted(org['requests'], 'request')}"
        ),
        fontsize=10,
        loc="left",
    )


def _cumulative_panel(
    axes: Axes, org: dict[str, Any], days: list[dict[str, Any]], month: str
) -> None:
    x = _day_axis(axes, days, month)
    running, cumulative = Decimal(0), []
    for day in days:
        running += Decimal(day["costUsd"])
        cumulative.append(float(running))
    axes.plot(x, cumulative, color=CUMULATIVE, marker="o", markersize=3, label="cumulative spend")
    axes.fill_between(x, cumulative, color=CUMULATIVE, alpha=0.2)
    budget = Decimal(org["monthlyBudgetUsd"])
    if budget > 0:
        axes.axhline(
            float(budget),
            color=BUDGET,
            linestyle="--",
            label=_plain(f"monthly budget {dollars(org['monthlyBudgetUsd'])}"),
        )
    top = float(max(running, budget))
    axes.set_ylabel("Cumulative spend (USD)")
    _usd_ticks(axes, top)
    _headroom(axes, top)
    axes.legend(loc="upper left", fontsize=8, ncols=2)
    axes.set_title(
        _plain(
            f"{org['orgId']}: spent {dollars(org['spentUsd'])} of "
            f"{dollars(org['monthlyBudgetUsd'])} "
            f"({share(org['spentMicros'], org['monthlyBudgetMicros'])} of the budget)"
        ),
        fontsize=10,
        loc="left",
    )


def _requests_panel(
    axes: Axes, org: dict[str, Any], days: list[dict[str, Any]], month: str
) -> None:
    x = _day_axis(axes, days, month)
    axes.bar(x, [day["requests"] for day in days], color=REQUESTS, label="requests")
    axes.bar(x, [day["errors"] for day in days], color=ERRORS, width=0.4, label="errors")
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    _headroom(axes, max((day["requests"] for day in days), default=0))
    axes.set_ylabel("Requests per day")
    axes.legend(loc="upper left", fontsize=8, ncols=2)
    axes.set_title(
        f"{org['orgId']}: {counted(org['requests'], 'request')}, {counted(org['errors'], 'error')}",
        fontsize=10,
        loc="left",
    )


def _latency_panel(axes: Axes, org: dict[str, Any], days: list[dict[str, Any]], month: str) -> None:
    x = _day_axis(axes, days, month)
    p95 = [day["latencyMs"]["p95"] for day in days]
    axes.plot(
        x,
        [math.nan if value is None else value for value in p95],
        color=LATENCY,
        marker="o",
        markersize=4,
        label="p95 latency (days with requests)",
    )
    _headroom(axes, max((value for value in p95 if value is not None), default=0))
    axes.set_ylabel("p95 latency (ms)")
    axes.legend(loc="upper left", fontsize=8)
    month_p95 = org["latencyMs"]["p95"]
    axes.set_title(
        f"{org['orgId']}: p95 {'-' if month_p95 is None else f'{month_p95:,.1f} ms'} over the month",
        fontsize=10,
        loc="left",
    )
