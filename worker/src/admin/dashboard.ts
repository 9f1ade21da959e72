// The admin dashboard for a browser: GET /admin/dashboard (the page, or a login page when the
// browser has no session), POST /admin/session (the admin key for a session cookie) and POST
// /admin/logout. Every page is self-contained under a strict Content-Security-Policy whose
// script and style carry a nonce new in each response; the page reads /admin/metrics and
// /admin/alerts, nothing else. Who may read what: admin-session.ts.

import type { Context } from "hono";
import { DASHBOARD_SCRIPT } from "../generated/dashboard-script";
import { HttpError } from "../lib/errors";
import type { AppEnv } from "../protocol/env";
import { BASE_STYLE, DASHBOARD_BODY, DASHBOARD_STYLE, LOGIN_STYLE } from "./dashboard-page";
import {
  authorizeAdmin,
  CLOSED_SESSION_COOKIE,
  checkAdminKey,
  openSessionCookie,
  sessionCookieOf,
  signInKey,
} from "./session";

export const DASHBOARD_PATH = "/admin/dashboard";
const SIGN_IN_PATH = "/admin/session";

function newNonce(): string {
  return btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(16))));
}

/** The policy of a page whose only script and style carry `nonce`; `script`: whether it has one. */
export function contentSecurityPolicy(nonce: string, script: boolean): string {
  return [
    "default-src 'none'",
    script ? `script-src 'nonce-${nonce}'` : "script-src 'none'",
    `style-src 'nonce-${nonce}'`,
    script ? "connect-src 'self'" : "connect-src 'none'",
    "img-src data:",
    "form-action 'self'",
    "frame-ancestors 'none'",
    "base-uri 'none'",
  ].join("; ");
}

const escapes: Record<string, string> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (ch) => escapes[ch] ?? ch);
}

function page(title: string, style: string, body: string, script: string | null, status: number): Response {
  const nonce = newNonce();
  const html = [
    "<!doctype html>",
    '<html lang="en"><head><meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>${escapeHtml(title)}</title>`,
    '<link rel="icon" href="data:,">', // no favicon request
    `<style nonce="${nonce}">${BASE_STYLE}${style}</style>`,
    "</head><body>",
    body,
    script === null ? "" : `<script nonce="${nonce}">${script}</script>`,
    "</body></html>",
  ].join("\n");
  return new Response(html, {
    status,
    headers: {
      "content-type": "text/html; charset=utf-8",
      "content-security-policy": contentSecurityPolicy(nonce, script !== null),
      "cache-control": "no-store",
      "referrer-policy": "no-referrer",
      "x-content-type-options": "nosniff",
      "x-frame-options": "DENY",
      "cross-origin-opener-policy": "same-origin",
    },
  });
}

/** The sign-in form (status 401 unless told), with `message` as an error when given. */
export function loginPage(message: string | null, status = 401): Response {
  const body = [
    '<main class="login" aria-labelledby="title">',
    '<h1 id="title">LLM gateway admin</h1>',
    "<p>Sign in with this deployment's admin API key to open the dashboard.</p>",
    message === null ? "" : `<p class="error" role="alert">${escapeHtml(message)}</p>`,
    `<form class="sign-in" method="post" action="${SIGN_IN_PATH}">`,
    '<label for="key">Admin API key</label>',
    '<input id="key" name="key" type="password" autocomplete="off" required autofocus>',
    '<button type="submit">Sign in</button>',
    "</form>",
    "<p>The session lasts 8 hours and only reads: changes still need the key as a Bearer header.</p>",
    "</main>",
  ].join("\n");
  return page("Sign in · LLM gateway admin", LOGIN_STYLE, body, null, status);
}

export function dashboardPage(): Response {
  return page("Dashboard · LLM gateway admin", DASHBOARD_STYLE, DASHBOARD_BODY, DASHBOARD_SCRIPT, 200);
}

function refusal(err: unknown): HttpError {
  if (err instanceof HttpError && (err.status === 401 || err.status === 400 || err.status === 413)) return err;
  throw err;
}

/** GET /admin/dashboard: the page to an admin (Bearer key or session), else the login page. */
export async function dashboard(c: Context<AppEnv>): Promise<Response> {
  try {
    await authorizeAdmin(c.req.raw, c.env);
  } catch (err) {
    const refused = refusal(err);
    // a first visit sent nothing: the plain form; a refused key or session: why
    const sent =
      c.req.header("authorization") !== undefined || sessionCookieOf(c.req.header("cookie") ?? null) !== null;
    return loginPage(sent ? refused.message : null);
  }
  return dashboardPage();
}

/** POST /admin/session: the admin key (form or JSON `key`) for a session cookie, then the page. */
export async function openSession(c: Context<AppEnv>): Promise<Response> {
  let cookie: string;
  try {
    const key = await signInKey(c.req.raw);
    if (key === null) return loginPage("Enter the admin key.");
    await checkAdminKey(c.env, key);
    cookie = await openSessionCookie(c.env);
  } catch (err) {
    const refused = refusal(err);
    return loginPage(refused.message, refused.status);
  }
  return new Response(null, {
    status: 303,
    headers: { location: DASHBOARD_PATH, "set-cookie": cookie, "cache-control": "no-store" },
  });
}

/** POST /admin/logout: the cookie cleared, back to the login page. */
export function closeSession(): Response {
  return new Response(null, {
    status: 303,
    headers: { location: DASHBOARD_PATH, "set-cookie": CLOSED_SESSION_COOKIE, "cache-control": "no-store" },
  });
}
