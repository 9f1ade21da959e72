// The dashboard's pages: self-contained under a nonce that is new in each response, the
// script's text never parsed as HTML, and the browser's sign-in flow over the handlers (the
// page itself runs in Chromium: tests/test_dashboard_e2e.py).

import assert from "node:assert/strict";
import { timingSafeEqual } from "node:crypto";
import { describe, test } from "node:test";
import { Script } from "node:vm";
import { Hono } from "hono";
import { closeSession, dashboard, dashboardPage, loginPage, openSession } from "../src/admin/dashboard";
import { DASHBOARD_BODY } from "../src/admin/dashboard-page";
import { SESSION_COOKIE } from "../src/admin/session";
import { DASHBOARD_SCRIPT } from "../src/generated/dashboard-script";
import type { AppEnv, Env } from "../src/protocol/env";

if (!("timingSafeEqual" in crypto.subtle)) {
  Object.assign(crypto.subtle, {
    timingSafeEqual: (a: ArrayBuffer, b: ArrayBuffer) => timingSafeEqual(new Uint8Array(a), new Uint8Array(b)),
  });
}

const ADMIN_KEY = "adm_dashboard-unit";
const ENV = { ADMIN_API_KEY: ADMIN_KEY } as unknown as Env;

function policy(response: Response): Map<string, string> {
  const header = response.headers.get("content-security-policy") ?? "";
  return new Map(header.split(";").map((d) => d.trim().split(" ", 2) as [string, string]));
}

describe("the pages", () => {
  test("carry one script and one style, each with this response's nonce", async () => {
    const [first, second] = [dashboardPage(), dashboardPage()];
    const csp = policy(first);
    const nonce = /^'nonce-([A-Za-z0-9+/]+=*)'$/.exec(csp.get("script-src") ?? "")?.[1];
    assert.ok(nonce);
    assert.equal(csp.get("style-src"), `'nonce-${nonce}'`);
    const html = await first.text();
    assert.deepEqual(html.match(/<script[^>]*>/g), [`<script nonce="${nonce}">`]);
    assert.deepEqual(html.match(/<style[^>]*>/g), [`<style nonce="${nonce}">`]);
    assert.notEqual(second.headers.get("content-security-policy"), first.headers.get("content-security-policy"));
  });

  test("allow nothing but their own origin's fetches, data: images and same-origin forms", () => {
    const csp = policy(dashboardPage());
    assert.equal(csp.get("default-src"), "'none'");
    assert.equal(csp.get("connect-src"), "'self'");
    assert.equal(csp.get("img-src"), "data:");
    assert.equal(csp.get("form-action"), "'self'");
    assert.equal(csp.get("frame-ancestors"), "'none'");
    const login = policy(loginPage(null));
    assert.equal(login.get("script-src"), "'none'");
    assert.equal(login.get("connect-src"), "'none'");
  });

  test("name no other origin", async () => {
    for (const html of [await dashboardPage().text(), await loginPage("x").text()]) {
      assert.doesNotMatch(html, /(src|href|action)=["']?(https?:)?\/\//);
      assert.doesNotMatch(html, /@import|url\(/);
    }
  });

  test("the script parses and builds the page with text only", () => {
    assert.doesNotThrow(() => new Script(DASHBOARD_SCRIPT));
    for (const sink of ["innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"]) {
      assert.ok(!DASHBOARD_SCRIPT.includes(sink), sink);
    }
    // every element it looks up exists in the markup
    for (const [, id] of DASHBOARD_SCRIPT.matchAll(/\$\("([a-z-]+)"\)/g)) {
      assert.ok(DASHBOARD_BODY.includes(`id="${id}"`), id);
    }
  });

  test("the login page escapes its message", async () => {
    const html = await loginPage(`<img src=x onerror="alert(1)">`).text();
    assert.ok(html.includes("&lt;img src=x onerror=&quot;alert(1)&quot;&gt;"));
    assert.ok(!html.includes("<img"));
  });
});

describe("signing in from a browser", () => {
  const app = new Hono<AppEnv>();
  app.get("/admin/dashboard", dashboard);
  app.post("/admin/session", openSession);
  app.post("/admin/logout", closeSession);
  const form = (key: string) => ({
    method: "POST",
    body: new URLSearchParams({ key }),
    headers: { "content-type": "application/x-www-form-urlencoded" },
  });

  test("without credentials the dashboard is the login form, 401, without an error", async () => {
    const response = await app.request("/admin/dashboard", {}, ENV);
    assert.equal(response.status, 401);
    const html = await response.text();
    assert.ok(html.includes('action="/admin/session"'));
    assert.ok(!html.includes('role="alert"'));
  });

  test("the admin key gets a cookie and a 303 to the dashboard, which the cookie then opens", async () => {
    const signedIn = await app.request("/admin/session", form(ADMIN_KEY), ENV);
    assert.equal(signedIn.status, 303);
    assert.equal(signedIn.headers.get("location"), "/admin/dashboard");
    const cookie = (signedIn.headers.get("set-cookie") ?? "").split(";")[0] ?? "";
    assert.ok(cookie.startsWith(`${SESSION_COOKIE}=`));
    const page = await app.request("/admin/dashboard", { headers: { cookie } }, ENV);
    assert.equal(page.status, 200);
    assert.ok((await page.text()).includes('id="daily-chart"'));
  });

  test("a wrong or missing key is the login page again, saying why", async () => {
    const wrong = await app.request("/admin/session", form("adm_wrong"), ENV);
    assert.equal(wrong.status, 401);
    assert.equal(wrong.headers.get("set-cookie"), null);
    assert.ok((await wrong.text()).includes("Incorrect admin key provided."));
    const empty = await app.request("/admin/session", form(""), ENV);
    assert.ok((await empty.text()).includes("Enter the admin key."));
  });

  test("a stale cookie gets the login page saying the session ended", async () => {
    const headers = { cookie: `${SESSION_COOKIE}=1000.${"A".repeat(43)}` };
    const response = await app.request("/admin/dashboard", { headers }, ENV);
    assert.equal(response.status, 401);
    assert.ok((await response.text()).includes("expired or is not valid"));
  });

  test("logout clears the cookie", async () => {
    const response = await app.request("/admin/logout", { method: "POST" }, ENV);
    assert.equal(response.status, 303);
    assert.match(response.headers.get("set-cookie") ?? "", /^gw_admin_session=; .*Max-Age=0$/);
  });
});
