"""`provision report`: a month's spend, requests and latency per org and day, as a table, a CSV
and a PNG chart, against a real runtime of tests/fixtures/Pulumi.metrics.yaml after a known
mix for two organizations (north: ana and ben; south: cy).

Expected costs come from the stack's prices written out here and the usage the SDKs returned,
never from the code under test. The chart of the run is kept as artifacts/report.png.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
import os
import re
import secrets
import shutil
import socket
import struct
import subprocess
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anthropic
import httpx
import pytest
from matplotlib import image

from provision.local.runtime import LocalGateway
from provision.money import format_usd
from tests.admin_support import Admin
from tests.support import ROOT, WorkerTestHooks, key, openai_client, run_cli, stack_gateway

STACK = ROOT / "tests" / "fixtures" / "Pulumi.metrics.yaml"
MINI, GPT4O, CLAUDE = "openai/gpt-4o-mini", "openai/gpt-4o", "anthropic/claude-sonnet-4-6"
# The stack's prices in µUSD per million tokens (input, output).
PRICES = {MINI: (150_000, 600_000), GPT4O: (2_500_000, 10_000_000), CLAUDE: (3_000_000, 15_000_000)}
BUDGETS = {"north": "$500.00", "south": "$200.00"}
CSV_COLUMNS = [
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
]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
ARTIFACT = ROOT / "artifacts" / "report.png"

gateway = stack_gateway(STACK)


def cost(model: str, prompt: int, completion: int) -> int:
    price_in, price_out = PRICES[model]
    return math.ceil((prompt * price_in + completion * price_out) / 1_000_000)


def today() -> str:
    return dt.datetime.now(dt.UTC).date().isoformat()


@dataclass
class Day:
    """What one org sent on one day, as the test counts it."""

    requests: int = 0
    errors: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    cost: int = 0

    def add(self, status: int, tokens_in: int = 0, tokens_out: int = 0, micros: int = 0) -> None:
        self.requests += 1
        self.errors += status >= 400
        self.tokens_in += tokens_in
        self.tokens_out += tokens_out
        self.cost += micros


Sent = dict[tuple[str, str], Day]  # (org, day) → what was sent


def unique(text: str) -> str:
    return f"{text} {secrets.token_hex(5)}"


@pytest.fixture(scope="module")
def sent(gateway: LocalGateway, ledger: WorkerTestHooks) -> Sent:
    """The mix, once for the module: north four answers and a refused body, south two answers."""
    out: Sent = defaultdict(Day)

    def chat(org: str, key_id: str, model: str, tokens: int) -> None:
        with openai_client(gateway.openai_base_url, key_id) as client:
            answer = client.chat.completions.create(
                model=model,
                messages=[{"role": "user", "content": unique(f"report emulate:tokens={tokens}")}],
                max_tokens=200,
            )
        assert answer.usage is not None and answer.usage.completion_tokens == tokens
        prompt, completion = answer.usage.prompt_tokens, answer.usage.completion_tokens
        out[org, today()].add(200, prompt, completion, cost(model, prompt, completion))

    chat("north", "key_ana_main", MINI, 7)
    chat("north", "key_ana_main", GPT4O, 20)
    chat("north", "key_ben_main", MINI, 12)
    claude = anthropic.Anthropic(
        base_url=gateway.worker_url, api_key=key("key_ben_main"), max_retries=0
    )
    message = claude.messages.create(
        model=CLAUDE,
        max_tokens=100,
        messages=[{"role": "user", "content": unique("hello emulate:tokens=11")}],
    )
    prompt, completion = message.usage.input_tokens, message.usage.output_tokens
    out["north", today()].add(200, prompt, completion, cost(CLAUDE, prompt, completion))
    refused = httpx.post(
        f"{gateway.worker_url}/v1/chat/completions",
        headers={"authorization": f"Bearer {key('key_ana_main')}"},
        json={"model": MINI, "messages": "not a list"},
    )
    assert refused.status_code == 400
    out["north", today()].add(400)

    chat("south", "key_cy_main", CLAUDE, 9)
    answer = httpx.post(
        f"{gateway.worker_url}/v1/chat/completions",
        headers={"authorization": f"Bearer {key('key_cy_main')}"},
        json={
            "model": MINI,
            "messages": [{"role": "user", "content": unique("emulate:tokens=30")}],
        },
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    usage = answer.json()["usage"]
    prompt, completion = usage["prompt_tokens"], usage["completion_tokens"]
    out["south", today()].add(200, prompt, completion, cost(MINI, prompt, completion))
    ledger.quiesce()
    return dict(out)


@pytest.fixture(scope="module")
def admin(gateway: LocalGateway):
    client = Admin(gateway)
    yield client
    client.close()


def run_report(
    gateway: LocalGateway | None, *args: str, admin_key: str | None = None
) -> subprocess.CompletedProcess[str]:
    """`provision report ARGS` against `gateway`, with its admin key unless one is given."""
    options: list[str] = []
    if gateway is not None:
        options += ["--base-url", gateway.worker_url]
        admin_key = admin_key or gateway.secrets.admin_api_key
    if admin_key:
        options += ["--admin-key", admin_key]
    environ = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_ADMIN_")}
    return run_cli("report", *options, *args, env=environ)


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


def block(text: str, org: str) -> str:
    """The table block of `org` (blocks are separated by a blank line)."""
    [found] = [b for b in text.split("\n\n") if b.startswith(f"{org} (")]
    return found


def cells(text: str, first: str) -> list[str]:
    match = re.search(rf"^{re.escape(first)}\s.*$", text, re.M)
    assert match, f"no row for '{first}' in:\n{text}"
    return re.split(r"\s{2,}", match.group(0).strip())


def exact_usd(micros: int) -> str:
    """The API's decimal string for an amount of µUSD, written out here."""
    return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"


# ---------------------------------------------------------------------------- table


def test_table_shows_each_orgs_day_with_the_requests_and_cost_sent(
    gateway: LocalGateway, sent: Sent
):
    """One block per org: its day row has exactly the requests, errors and cost sent, the TOTAL
    row the same, and the title the spend against the monthly budget."""
    out = ok(run_report(gateway))
    assert out.startswith(f"Report for {today()[:7]} ({today()[:7]}-01 to ")
    for org in ("north", "south"):
        day = sent[org, today()]
        text = block(out, org)
        assert text.splitlines()[0].startswith(
            f"{org} ({'North Labs' if org == 'north' else 'South Works'}): "
            f"spent {format_usd(day.cost)} of {BUDGETS[org]} ("
        )
        expected = [str(day.requests), str(day.errors), format_usd(day.cost)]
        assert cells(text, today())[1:4] == expected, text
        assert cells(text, "TOTAL")[1:4] == expected, text
        assert re.fullmatch(r"[\d,]+\.\d", cells(text, today())[5]), "p95 in ms"
        # north's ana has a CI key with a limit of its own: one line for it, against it
        keys = [line for line in text.splitlines() if line.startswith("  key ")]
        if org == "north":
            [line] = keys
            assert line.startswith("  key key_ana_ci of user ana: spent $"), line
            assert " of its own $5" in line, line
        else:
            assert keys == []
        assert len(text.splitlines()) == 3 + 1 + len(keys)  # title, header, the day, TOTAL, keys
    requests = sum(d.requests for d in sent.values())
    assert f"All organizations: {requests} requests, 1 error, " in out


def test_a_month_without_traffic_has_zero_totals(gateway: LocalGateway, sent: Sent):
    """--month selects the month; one without requests shows each org's TOTAL at zero."""
    out = ok(run_report(gateway, "--month", "2025-01"))
    assert out.startswith("Report for 2025-01 (2025-01-01 to 2025-01-31)")
    for org in ("north", "south"):
        assert cells(block(out, org), "TOTAL") == ["TOTAL", "0", "0", "$0.00", "-", "-"]


# ---------------------------------------------------------------------------- csv


def test_csv_rows_equal_what_was_sent_and_by_org_day(
    gateway: LocalGateway, admin: Admin, sent: Sent, tmp_path: Path
):
    """One row per org per day of the month; each equals the API's byOrgDay entry, and the
    figures equal what was sent (zero on the days nothing was)."""
    path = tmp_path / "report.csv"
    result = run_report(gateway, "--csv", str(path))
    assert ok(result) == ""
    rows = list(csv.DictReader(path.open(newline="")))
    assert path.read_text().splitlines()[0] == ",".join(CSV_COLUMNS)
    by_org_day = admin.get("/admin/metrics")["byOrgDay"]
    assert [(r["org"], r["day"]) for r in rows] == [(e["orgId"], e["day"]) for e in by_org_day]
    assert {r["org"] for r in rows} == {"north", "south"}
    assert f"Wrote {path}: {len(rows)} rows" in result.stderr

    def number(value: float | None) -> str:
        return "" if value is None else str(value)

    for row, entry in zip(rows, by_org_day, strict=True):
        assert row == {
            "org": entry["orgId"],
            "day": entry["day"],
            "requests": str(entry["requests"]),
            "errors": str(entry["errors"]),
            "cache_hits": str(entry["cacheHits"]),
            "fallbacks": str(entry["fallbacks"]),
            "tokens_in": str(entry["tokensIn"]),
            "tokens_out": str(entry["tokensOut"]),
            "cost_usd": entry["costUsd"],
            "latency_p50_ms": number(entry["latencyMs"]["p50"]),
            "latency_p95_ms": number(entry["latencyMs"]["p95"]),
            "latency_p99_ms": number(entry["latencyMs"]["p99"]),
        }
        day = sent.get((row["org"], row["day"]), Day())
        assert {
            "requests": int(row["requests"]),
            "errors": int(row["errors"]),
            "cache_hits": int(row["cache_hits"]),
            "fallbacks": int(row["fallbacks"]),
            "tokens_in": int(row["tokens_in"]),
            "tokens_out": int(row["tokens_out"]),
            "cost_usd": row["cost_usd"],
        } == {
            "requests": day.requests,
            "errors": day.errors,
            "cache_hits": 0,
            "fallbacks": 0,
            "tokens_in": day.tokens_in,
            "tokens_out": day.tokens_out,
            "cost_usd": exact_usd(day.cost),
        }, (row["org"], row["day"])
        assert (row["latency_p95_ms"] == "") == (day.requests == 0)


def test_csv_to_stdout(gateway: LocalGateway, sent: Sent, tmp_path: Path):
    """`--csv -` prints the same CSV on stdout, and nothing else there."""
    path = tmp_path / "report.csv"
    ok(run_report(gateway, "--csv", str(path)))
    printed = ok(run_report(gateway, "--csv", "-"))
    assert printed == path.read_text()
    assert next(csv.reader(io.StringIO(printed))) == CSV_COLUMNS


# ---------------------------------------------------------------------------- png


def png_size(data: bytes) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk, after checking the signature."""
    assert data[:8] == PNG_SIGNATURE, "not a PNG"
    length, kind = struct.unpack(">I4s", data[8:16])
    assert (length, kind) == (13, b"IHDR")
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_png_is_a_chart_of_sensible_size(gateway: LocalGateway, sent: Sent, tmp_path: Path):
    """--png writes a real PNG: a row of panels per org, wide enough to read, not blank; the
    run's chart is kept as artifacts/report.png."""
    path = tmp_path / "report.png"
    result = run_report(gateway, "--png", str(path))
    assert ok(result) == ""
    width, height = png_size(path.read_bytes())
    assert f"Wrote {path}: {width}x{height} PNG." in result.stderr
    assert 1200 <= width <= 4000 and 500 <= height <= 3000, (width, height)
    assert width > height  # two rows of four panels
    pixels = image.imread(path)
    assert pixels.shape[:2] == (height, width)
    assert pixels.std() > 0.05, "the chart is blank"
    ARTIFACT.parent.mkdir(exist_ok=True)
    shutil.copyfile(path, ARTIFACT)


def test_csv_and_png_together(gateway: LocalGateway, sent: Sent, tmp_path: Path):
    """--csv and --png in one run write both files."""
    ok(run_report(gateway, "--csv", str(tmp_path / "r.csv"), "--png", str(tmp_path / "r.png")))
    assert (tmp_path / "r.csv").read_text().startswith("org,day,")
    png_size((tmp_path / "r.png").read_bytes())


# ---------------------------------------------------------------------------- errors


def test_bad_month_is_named(gateway: LocalGateway):
    """A malformed month is the API's 400 invalid_month, quoting the value, exit 1."""
    result = run_report(gateway, "--month", "2026-13")
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.strip() == (
        "error: HTTP 400 [invalid_month]: 'month' must be a UTC month as YYYY-MM (got '2026-13')."
    )


def test_wrong_admin_key_says_which_key_to_check(gateway: LocalGateway):
    """A wrong admin key exits 1 naming the 401 and --admin-key / GATEWAY_ADMIN_KEY."""
    result = run_report(gateway, admin_key="adm_not-the-key")
    assert result.returncode == 1
    assert "error: HTTP 401 [invalid_admin_key]" in result.stderr
    assert "--admin-key or GATEWAY_ADMIN_KEY" in result.stderr


def test_missing_admin_key_exits_2():
    """Without --admin-key or GATEWAY_ADMIN_KEY: exit 2, saying what to set."""
    result = run_report(None, "--base-url", "http://127.0.0.1:9")
    assert result.returncode == 2
    assert "GATEWAY_ADMIN_KEY" in result.stderr and "--admin-key" in result.stderr


def test_unreachable_gateway_names_the_url():
    """A gateway that does not answer: exit 1 with its URL and what to check."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"  # bound, not listening: refused
        result = run_report(None, "--base-url", url, admin_key="adm_x")
    assert result.returncode == 1
    assert f"error: could not reach {url}" in result.stderr
    assert "is the gateway running" in result.stderr


@pytest.mark.parametrize("option", ["--csv", "--png"])
def test_unwritable_file_is_named(gateway: LocalGateway, tmp_path: Path, option: str):
    """A file that cannot be written: exit 1 naming it and why."""
    path = tmp_path / "missing-dir" / "report.out"
    result = run_report(gateway, option, str(path))
    assert result.returncode == 1
    assert result.stderr.strip() == f"error: could not write {path}: No such file or directory"


def test_not_a_gateway_is_named():
    """A --base-url that answers something other than the admin API's JSON is an error that
    says what to check, not a traceback."""
    import http.server
    import threading

    class Page(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("content-type", "text/html")
            self.end_headers()
            self.wfile.write(b"<html>hello</html>")

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Page)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        result = run_report(None, "--base-url", url, admin_key="adm_x")
    finally:
        server.shutdown()
        server.server_close()
    assert result.returncode == 1
    assert "without the admin API's JSON: is --base-url the gateway's URL" in result.stderr
