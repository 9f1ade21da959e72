"""The admin dashboard (GET /admin/dashboard) in a real browser, and its session cookie.

Debian's Chromium, driven by Playwright, signs in through the login page, lands on the
dashboard and reads the demo tenants' figures off it: they equal /admin/metrics, the page asks
nothing of any origin but the Worker's, and the console stays clean (a CSP violation is a
console error). httpx checks the session's rules: read-only, expiring, unforgeable, closable
(tests/fixtures/Pulumi.metrics.yaml; `make test` installs /usr/bin/chromium when missing)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import secrets
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from provision.local.runtime import LocalGateway
from tests.support import ROOT, WorkerTestHooks, admin_metrics, key, stack_gateway

STACK = ROOT / "tests" / "fixtures" / "Pulumi.metrics.yaml"
CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
# Nothing but the page under test: no sandbox (containers), no GPU, and none of the browser's
# own traffic (updates, sync, QUIC probes) so that every request it makes is the page's.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOT = ROOT / "artifacts" / "dashboard.png"
COOKIE = "gw_admin_session"
SESSION_TTL_S = 8 * 60 * 60
LOGIN_401 = "Failed to load resource: the server responded with a status of 401 (Unauthorized)"
MINI, GPT4O, CLAUDE = "openai/gpt-4o-mini", "openai/gpt-4o", "anthropic/claude-sonnet-4-6"

gateway = stack_gateway(STACK)


def chat(gateway: LocalGateway, key_id: str, model: str, tokens: int) -> httpx.Response:
    """An answer of `tokens` tokens (the emulator's directive; max_tokens lets it through)."""
    content = f"dashboard {secrets.token_hex(4)} emulate:tokens={tokens}"
    return httpx.post(
        f"{gateway.worker_url}/v1/chat/completions",
        headers={"authorization": f"Bearer {key(key_id)}"},
        json={
            "model": model,
            "messages": [{"role": "user", "content": content}],
            "max_tokens": max(tokens, 16),
        },
        timeout=60,
    )


@pytest.fixture(scope="module")
def traffic(gateway: LocalGateway, ledger: WorkerTestHooks) -> dict[str, int]:
    """A small known mix, per user: answers (a few long ones, so that spend shows on the
    bars), and one 400 (a body that is not a chat)."""
    sent = {"ana": 0, "ben": 0, "cy": 0}
    mix = [
        ("ana", "main", MINI, 12),
        ("ana", "ci", MINI, 40),  # ana's CI key, with a limit of its own
        ("ana", "main", GPT4O, 50_000),  # ≈ $0.50 of ana's $100
        ("ben", "main", MINI, 30),
        ("cy", "main", CLAUDE, 60_000),  # ≈ $0.90 of cy's $20
        ("cy", "main", CLAUDE, 40_000),
        ("cy", "main", MINI, 8),
    ]
    for user, which, model, tokens in mix:
        answer = chat(gateway, f"key_{user}_{which}", model, tokens)
        assert answer.status_code == 200, answer.text
        sent[user] += 1
    bad = httpx.post(
        f"{gateway.worker_url}/v1/chat/completions",
        headers={"authorization": f"Bearer {key('key_ben_main')}"},
        json={"model": MINI, "messages": "not a list"},
    )
    assert bad.status_code == 400
    sent["ben"] += 1
    ledger.quiesce()
    return sent


def token(admin_key: str, expires_at: int) -> str:
    """A session token computed here from the documented format, not by the Worker's code."""
    mac = hmac.new(admin_key.encode(), f"admin-session:{expires_at}".encode(), hashlib.sha256)
    return f"{expires_at}.{base64.urlsafe_b64encode(mac.digest()).rstrip(b'=').decode()}"


def get(gateway: LocalGateway, path: str, cookie: str | None = None, **kw: Any) -> httpx.Response:
    headers = {"cookie": f"{COOKIE}={cookie}"} if cookie is not None else {}
    return httpx.get(f"{gateway.worker_url}{path}", headers=headers, timeout=30, **kw)


def usd(text: str) -> Decimal:
    """A figure as the page shows money ("$1,234.50") as an exact decimal."""
    assert re.fullmatch(r"-?\$[0-9,]+\.[0-9]{2,6}", text), text
    return Decimal(text.replace("$", "").replace(",", ""))


def used(spent: int, allowance: int) -> str:
    """The share the page shows: one decimal, "<0.1%" for any spend below that."""
    share = spent / allowance * 100
    return "<0.1%" if 0 < share < 0.1 else f"{share:.1f}%"


# ---------------------------------------------------------------------------- in Chromium


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium with apt-get")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


class Watched:
    """A page with every request it made and every console error it logged."""

    def __init__(self, page: Page):
        self.page = page
        self.requests: list[str] = []
        self.errors: list[str] = []
        page.on("request", lambda request: self.requests.append(request.url))
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda exc: self.errors.append(f"uncaught: {exc}"))


@pytest.fixture
def watched(browser: Browser) -> Iterator[Watched]:
    context = browser.new_context(viewport={"width": 1360, "height": 900}, locale="en-US")
    # CSP violations are console errors in Chromium; this names them even if that changes
    context.add_init_script(
        "document.addEventListener('securitypolicyviolation', e => "
        "console.error('CSP violation: ' + e.violatedDirective + ' ' + e.blockedURI))"
    )
    yield Watched(context.new_page())
    context.close()


def sign_in(gateway: LocalGateway, watched: Watched) -> None:
    page = watched.page
    login = page.goto(f"{gateway.worker_url}/admin/dashboard")
    assert login is not None and login.status == 401
    assert page.get_by_role("heading", name="LLM gateway admin").is_visible()
    page.get_by_label("Admin API key").fill(gateway.secrets.admin_api_key)
    with page.expect_navigation():
        page.get_by_role("button", name="Sign in").click()
    assert page.url == f"{gateway.worker_url}/admin/dashboard"
    page.wait_for_selector('main[aria-busy="false"]', timeout=15_000)
    # Chromium notes any 4xx document in the console; the login page's 401 is the only error
    assert watched.errors == [LOGIN_401], watched.errors
    watched.errors.clear()


def cells(page: Page, row: str) -> dict[str, str]:
    """The row's cells by column (`data-col`), as shown."""
    found = page.locator(row).locator("[data-col]")
    return {
        found.nth(i).get_attribute("data-col") or "": found.nth(i).inner_text().strip()
        for i in range(found.count())
    }


def test_the_dashboard_in_chromium_shows_what_the_metrics_say(
    gateway: LocalGateway, traffic: dict[str, int], watched: Watched
):
    """Login page, sign-in, the dashboard: the demo tenants' spend, budgets and requests as
    /admin/metrics gives them, requests per day drawn, and nothing loaded from elsewhere."""
    sign_in(gateway, watched)
    page = watched.page
    body = admin_metrics(gateway)

    by_org = {o["orgId"]: o for o in body["byOrg"]}
    for org_id, name in (("north", "North Labs"), ("south", "South Works")):
        org = by_org[org_id]
        shown = cells(page, f'#orgs tr[data-org="{org_id}"]')
        assert shown["name"].splitlines()[0] == name
        assert usd(shown["spent"]) == Decimal(org["spentUsd"]) > 0, org_id
        assert usd(shown["budget"]) == Decimal(org["monthlyBudgetUsd"])
        assert int(shown["requests"]) == org["requests"]
        assert shown["used"] == used(org["spentMicros"], org["monthlyBudgetMicros"])
    assert by_org["north"]["requests"] == traffic["ana"] + traffic["ben"]
    assert by_org["south"]["requests"] == traffic["cy"]

    for user in body["byUser"]:
        shown = cells(page, f'#users tr[data-user="{user["userId"]}"]')
        assert usd(shown["spent"]) == Decimal(user["spentUsd"]), user["userId"]
        assert usd(shown["limit"]) == Decimal(user["monthlyLimitUsd"])
        assert shown["used"] == used(user["spentMicros"], user["monthlyLimitMicros"])
        assert int(shown["requests"]) == user["requests"] == traffic[user["userId"]]
        assert shown["org"] == by_org[user["orgId"]]["name"]

    # the key with a limit of its own, against it
    [ci] = body["byKey"]
    assert (ci["keyId"], ci["userId"], Decimal(ci["monthlyLimitUsd"])) == ("key_ana_ci", "ana", 5)
    shown = cells(page, '#key-limits tr[data-key="key_ana_ci"]')
    assert usd(shown["spent"]) == Decimal(ci["spentUsd"]) > 0
    assert usd(shown["limit"]) == Decimal("5")
    assert shown["used"] == used(ci["spentMicros"], ci["monthlyLimitMicros"])

    cards = {
        label: page.locator(f'[data-card="{label}"]').inner_text().splitlines()[0]
        for label in ("Requests", "Errors", "Spend")
    }
    assert cards["Requests"] == str(sum(traffic.values())) == str(body["totals"]["requests"])
    assert cards["Errors"] == "1"
    assert usd(cards["Spend"]) == Decimal(body["usage"]["costUsd"])

    # the chart: one bar group per day of the month, today's as tall as all requests
    assert page.locator("#daily-chart g[data-day]").count() == len(body["byDay"])
    [today] = [d for d in body["byDay"] if d["requests"]]
    table = page.get_by_text("Table: requests and errors per day")
    table.click()  # the chart's table, behind a disclosure
    assert cells(page, f'#days tr[data-day="{today["day"]}"]')["requests"] == str(today["requests"])
    table.click()
    assert page.locator(f'#daily-chart g[data-day="{today["day"]}"] title').text_content() == (
        f"{today['day']}: {today['requests']} requests, 1 error"
    )
    # key status, top models, latency
    assert {s: cells(page, f'#keys tr[data-status="{s}"]')["keys"] for s in body["keyStatus"]} == {
        s: str(n) for s, n in body["keyStatus"].items()
    }
    assert [
        page.locator("#models th[data-col=model]").nth(i).inner_text()
        for i in range(page.locator("#models th[data-col=model]").count())
    ] == [m["model"] for m in body["byModel"]]
    assert cells(page, "#latency tbody tr:first-child")["p50"].endswith(" ms")
    # the metrics stack declares no alerts: the alerts table says so (from /admin/alerts)
    assert (
        page.locator("#alerts tbody").inner_text().strip()
        == "This stack declares no budget alerts."
    )

    origin = gateway.worker_url
    elsewhere = [u for u in watched.requests if not u.startswith(f"{origin}/")]
    assert elsewhere == [], elsewhere
    assert f"{origin}/admin/metrics" in watched.requests
    assert f"{origin}/admin/alerts" in watched.requests
    assert watched.errors == [], watched.errors

    SCREENSHOT.parent.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOT), full_page=True)


def test_the_dashboard_refreshes_every_30_seconds(
    gateway: LocalGateway, traffic: dict[str, int], watched: Watched, ledger: WorkerTestHooks
):
    """A request sent while the page is open shows after the next 30 s refresh (page clock)."""
    watched.page.clock.install()
    sign_in(gateway, watched)
    page = watched.page
    before = int(cells(page, '#users tr[data-user="cy"]')["requests"])
    assert chat(gateway, "key_cy_main", MINI, 3).status_code == 200
    ledger.quiesce()
    page.clock.run_for(31_000)
    page.wait_for_function(
        "n => document.querySelector('#users tr[data-user=cy] [data-col=requests]')"
        ".textContent === String(n)",
        arg=before + 1,
    )
    loads = [u for u in watched.requests if u.startswith(f"{gateway.worker_url}/admin/metrics")]
    assert len(loads) == 2, loads  # the first load, then one refresh
    assert watched.errors == [], watched.errors


def test_signing_out_returns_to_the_login_page(gateway: LocalGateway, watched: Watched):
    sign_in(gateway, watched)
    page = watched.page
    with page.expect_navigation():
        page.get_by_role("button", name="Sign out").click()
    assert page.get_by_label("Admin API key").is_visible()
    assert [c for c in page.context.cookies() if c["name"] == COOKIE] == []


# ---------------------------------------------------------------------------- the session, over HTTP


def test_without_credentials_the_dashboard_is_a_401_login_page(gateway: LocalGateway):
    response = get(gateway, "/admin/dashboard")
    assert response.status_code == 401
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert '<form class="sign-in" method="post" action="/admin/session">' in response.text
    csp = response.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", response.text)  # nothing external


def test_the_dashboard_page_is_self_contained_under_its_nonce(gateway: LocalGateway):
    """With the Bearer key too; one script and one style, each with this response's nonce."""
    response = httpx.get(
        f"{gateway.worker_url}/admin/dashboard",
        headers={"authorization": f"Bearer {gateway.secrets.admin_api_key}"},
    )
    assert response.status_code == 200
    csp = dict(
        d.strip().split(" ", 1) for d in response.headers["content-security-policy"].split(";")
    )
    nonce = re.fullmatch(r"'nonce-([A-Za-z0-9+/=]+)'", csp["script-src"])
    assert nonce and csp["style-src"] == csp["script-src"]
    assert csp["default-src"] == "'none'" and csp["connect-src"] == "'self'"
    assert csp["img-src"] == "data:" and csp["frame-ancestors"] == "'none'"
    assert re.findall(r"<script[^>]*>", response.text) == [f'<script nonce="{nonce[1]}">']
    assert re.findall(r"<style[^>]*>", response.text) == [f'<style nonce="{nonce[1]}">']
    assert "innerHTML" not in response.text
    again = httpx.get(
        f"{gateway.worker_url}/admin/dashboard",
        headers={"authorization": f"Bearer {gateway.secrets.admin_api_key}"},
    )
    assert again.headers["content-security-policy"] != response.headers["content-security-policy"]


def test_a_wrong_key_is_the_login_page_with_why(gateway: LocalGateway):
    response = httpx.post(f"{gateway.worker_url}/admin/session", data={"key": "adm_wrong"})
    assert response.status_code == 401
    assert "Incorrect admin key provided." in response.text and "set-cookie" not in response.headers
    user_key = httpx.post(f"{gateway.worker_url}/admin/session", data={"key": key("key_ana_main")})
    assert user_key.status_code == 401 and "Gateway API keys cannot" in user_key.text


@pytest.mark.parametrize("as_json", [False, True], ids=["form", "json"])
def test_signing_in_sets_the_session_cookie(gateway: LocalGateway, as_json: bool):
    """303 to the dashboard with the cookie: expiry 8 h ahead, its HMAC under the admin key."""
    admin_key = gateway.secrets.admin_api_key
    body: dict[str, Any] = {"json": {"key": admin_key}} if as_json else {"data": {"key": admin_key}}
    response = httpx.post(f"{gateway.worker_url}/admin/session", **body)
    assert response.status_code == 303
    assert response.headers["location"] == "/admin/dashboard"
    value, *attributes = response.headers["set-cookie"].split("; ")
    assert attributes == ["HttpOnly", "Secure", "SameSite=Strict", "Path=/admin", "Max-Age=28800"]
    name, session = value.split("=", 1)
    assert name == COOKIE
    expires_at = int(session.split(".")[0])
    assert abs(expires_at - (time.time() + SESSION_TTL_S)) < 60
    assert session == token(admin_key, expires_at)
    assert get(gateway, "/admin/metrics", session).status_code == 200
    assert httpx.head(
        f"{gateway.worker_url}/admin/health", headers={"cookie": f"{COOKIE}={session}"}
    ).is_success


def test_the_cookie_is_refused_for_every_post(gateway: LocalGateway, ledger: WorkerTestHooks):
    """A session reads; it never resets a quota or revokes a key (no CSRF can change state)."""
    session = token(gateway.secrets.admin_api_key, int(time.time()) + 600)
    before = ledger.user_row("north", "ana")
    for path in (
        "/admin/users/ana/reset-quota",
        "/admin/keys/key_ana_main/revoke",
        "/admin/reconcile",
    ):
        response = httpx.post(
            f"{gateway.worker_url}{path}", headers={"cookie": f"{COOKIE}={session}"}
        )
        assert response.status_code == 401, path
        assert response.json()["error"]["code"] == "invalid_admin_key"
        assert "read-only" in response.json()["error"]["message"]
    assert ledger.user_row("north", "ana") == before


def test_forged_and_expired_cookies_are_refused(gateway: LocalGateway):
    admin_key = gateway.secrets.admin_api_key
    now = int(time.time())
    valid = token(admin_key, now + 600)
    expiry, mac = valid.split(".")
    refused = {
        "expired": token(admin_key, now - 1),
        "longer than a session": token(admin_key, now + SESSION_TTL_S + 3600),
        "another key's": token("adm_rotated", now + 600),
        "expiry changed": f"{now + 1200}.{mac}",
        "MAC changed": f"{expiry}.{'A' * 43}",
        "no MAC": expiry,
        "padded": f"{valid}=",
        "empty": "",
    }
    for why, cookie in refused.items():
        response = get(gateway, "/admin/metrics", cookie)
        assert response.status_code == 401, why
        assert response.json()["error"]["code"] == "invalid_admin_key", why
        page = get(gateway, "/admin/dashboard", cookie)
        assert page.status_code == 401 and "expired or is not valid" in page.text, why
    assert get(gateway, "/admin/metrics", valid).status_code == 200


def test_a_wrong_bearer_key_is_refused_beside_a_valid_cookie(gateway: LocalGateway):
    session = token(gateway.secrets.admin_api_key, int(time.time()) + 600)
    response = httpx.get(
        f"{gateway.worker_url}/admin/metrics",
        headers={"cookie": f"{COOKIE}={session}", "authorization": "Bearer adm_wrong"},
    )
    assert response.status_code == 401


def test_logout_clears_the_cookie(gateway: LocalGateway):
    response = httpx.post(f"{gateway.worker_url}/admin/logout")
    assert response.status_code == 303 and response.headers["location"] == "/admin/dashboard"
    assert response.headers["set-cookie"] == (
        f"{COOKIE}=; HttpOnly; Secure; SameSite=Strict; Path=/admin; Max-Age=0"
    )
