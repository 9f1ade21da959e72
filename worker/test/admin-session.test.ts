// The admin session: a token is the HMAC of its expiry under the admin key (checked here with
// node's own HMAC), refused once expired, forged, signed by another key or stretched; the
// cookie opens GET and HEAD only; the Bearer key keeps opening everything.

import assert from "node:assert/strict";
import { createHmac, timingSafeEqual } from "node:crypto";
import { describe, test } from "node:test";
import {
  authorizeAdmin,
  CLOSED_SESSION_COOKIE,
  openSessionCookie,
  SESSION_COOKIE,
  SESSION_TTL_S,
  sessionCookieOf,
  sessionToken,
  signInKey,
  verifySession,
} from "../src/admin/session";
import type { Env } from "../src/protocol/env";
import { refusal } from "./refusal";

// workerd's crypto.subtle.timingSafeEqual (a Workers extension) as node's constant-time compare
if (!("timingSafeEqual" in crypto.subtle)) {
  Object.assign(crypto.subtle, {
    timingSafeEqual: (a: ArrayBuffer, b: ArrayBuffer) => timingSafeEqual(new Uint8Array(a), new Uint8Array(b)),
  });
}

const ADMIN_KEY = "adm_unit-test-key";
const ENV = { ADMIN_API_KEY: ADMIN_KEY } as unknown as Env;
const NOW = Date.UTC(2026, 11, 2, 12, 0, 0);
const NOW_S = NOW / 1000;

/** The documented format, computed with node:crypto rather than the module under test. */
function expectedToken(key: string, expiresAt: number): string {
  const mac = createHmac("sha256", key).update(`admin-session:${expiresAt}`).digest("base64url");
  return `${expiresAt}.${mac}`;
}

function request(method: string, headers: Record<string, string>): Request {
  return new Request("https://gateway.example/admin/metrics", { method, headers });
}

describe("session tokens", () => {
  test("are the expiry and the base64url HMAC-SHA256 of 'admin-session:' + expiry under the admin key", async () => {
    const token = await sessionToken(ADMIN_KEY, NOW_S + 60);
    assert.equal(token, expectedToken(ADMIN_KEY, NOW_S + 60));
    assert.match(token, /^\d+\.[A-Za-z0-9_-]{43}$/);
  });

  test("verify until they expire, not at or after", async () => {
    const token = expectedToken(ADMIN_KEY, NOW_S + 60);
    assert.equal(await verifySession(ADMIN_KEY, token, NOW), true);
    assert.equal(await verifySession(ADMIN_KEY, token, NOW + 59_999), true);
    assert.equal(await verifySession(ADMIN_KEY, token, NOW + 60_000), false);
    assert.equal(await verifySession(ADMIN_KEY, token, NOW + 3_600_000), false);
  });

  test("signed by another key are refused: rotating the admin key ends every session", async () => {
    assert.equal(await verifySession("adm_new-key", expectedToken(ADMIN_KEY, NOW_S + 60), NOW), false);
  });

  test("claiming more than one session's lifetime are refused, even correctly signed", async () => {
    assert.equal(await verifySession(ADMIN_KEY, expectedToken(ADMIN_KEY, NOW_S + SESSION_TTL_S), NOW), true);
    assert.equal(await verifySession(ADMIN_KEY, expectedToken(ADMIN_KEY, NOW_S + SESSION_TTL_S + 1), NOW), false);
  });

  test("tampered or malformed are refused", async () => {
    const [expiry, mac] = expectedToken(ADMIN_KEY, NOW_S + 60).split(".") as [string, string];
    const flipped = mac.slice(0, -1) + (mac.endsWith("A") ? "B" : "A");
    for (const bad of [
      `${NOW_S + 120}.${mac}`, // expiry moved, MAC kept
      `${expiry}.${flipped}`,
      `0${expiry}.${mac}`, // the same number, not the signed text
      `${expiry}.${mac}=`,
      `${expiry}.${mac.slice(1)}`,
      `${expiry}`,
      `.${mac}`,
      `${expiry}.${mac}.x`,
      "",
      "not a token",
    ]) {
      assert.equal(await verifySession(ADMIN_KEY, bad, NOW), false, bad);
    }
  });
});

describe("the cookie", () => {
  test("is set HttpOnly, Secure, SameSite=Strict on /admin for eight hours", async () => {
    const cookie = await openSessionCookie(ENV, NOW);
    assert.equal(
      cookie,
      `gw_admin_session=${expectedToken(ADMIN_KEY, NOW_S + 28_800)}; HttpOnly; Secure; SameSite=Strict; Path=/admin; Max-Age=28800`,
    );
    assert.equal(CLOSED_SESSION_COOKIE, "gw_admin_session=; HttpOnly; Secure; SameSite=Strict; Path=/admin; Max-Age=0");
  });

  test("is found among others in a Cookie header", () => {
    assert.equal(sessionCookieOf(`theme=dark; ${SESSION_COOKIE}=123.abc; other=1`), "123.abc");
    assert.equal(sessionCookieOf(`x${SESSION_COOKIE}=1`), null);
    assert.equal(sessionCookieOf(null), null);
  });
});

describe("authorizeAdmin", () => {
  const valid = () => expectedToken(ADMIN_KEY, Math.floor(Date.now() / 1000) + 600);
  const withCookie = (method: string, token: string) => request(method, { cookie: `${SESSION_COOKIE}=${token}` });

  test("admits the Bearer key for any method", async () => {
    for (const method of ["GET", "HEAD", "POST"]) {
      await authorizeAdmin(request(method, { authorization: `Bearer ${ADMIN_KEY}` }), ENV);
    }
  });

  test("admits a valid session for GET and HEAD", async () => {
    await authorizeAdmin(withCookie("GET", valid()), ENV);
    await authorizeAdmin(withCookie("HEAD", valid()), ENV);
  });

  test("refuses a valid session for anything that may change state", async () => {
    for (const method of ["POST", "PUT", "PATCH", "DELETE"]) {
      const err = await refusal(authorizeAdmin(withCookie(method, valid()), ENV));
      assert.equal(err.status, 401);
      assert.equal(err.code, "invalid_admin_key");
      assert.match(err.message, /read-only/);
    }
  });

  test("refuses expired and forged sessions", async () => {
    const past = expectedToken(ADMIN_KEY, Math.floor(Date.now() / 1000) - 1);
    const forged = expectedToken("adm_guess", Math.floor(Date.now() / 1000) + 600);
    for (const token of [past, forged, "garbage"]) {
      const err = await refusal(authorizeAdmin(withCookie("GET", token), ENV));
      assert.equal(err.status, 401);
      assert.match(err.message, /expired or is not valid/);
    }
  });

  test("judges a Bearer header alone: a wrong key is refused beside a valid session", async () => {
    const both = request("GET", { authorization: "Bearer adm_wrong", cookie: `${SESSION_COOKIE}=${valid()}` });
    assert.equal((await refusal(authorizeAdmin(both, ENV))).message, "Incorrect admin key provided.");
  });

  test("refuses gateway keys and missing credentials", async () => {
    const user = request("GET", { authorization: `Bearer gw_live_${"x".repeat(36)}` });
    assert.match((await refusal(authorizeAdmin(user, ENV))).message, /Gateway API keys cannot/);
    assert.match((await refusal(authorizeAdmin(request("GET", {}), ENV))).message, /Missing admin key/);
  });

  test("refuses everything when the deployment has no admin key, a session signed with '' included", async () => {
    const disabled = { ADMIN_API_KEY: "" } as unknown as Env;
    const token = expectedToken("", Math.floor(Date.now() / 1000) + 600);
    for (const req of [withCookie("GET", token), request("GET", { authorization: "Bearer " })]) {
      assert.match((await refusal(authorizeAdmin(req, disabled))).message, /disabled/);
    }
  });
});

describe("signInKey", () => {
  const post = (body: BodyInit, type?: string) =>
    new Request("https://gateway.example/admin/session", {
      method: "POST",
      body,
      headers: type === undefined ? {} : { "content-type": type },
    });

  test("reads a form field, a multipart field or JSON", async () => {
    assert.equal(await signInKey(post("key=adm_a%2Bb&x=1", "application/x-www-form-urlencoded")), "adm_a+b");
    const form = new FormData();
    form.set("key", "adm_multi");
    assert.equal(await signInKey(post(form)), "adm_multi");
    assert.equal(
      await signInKey(post(JSON.stringify({ key: "adm_json" }), "application/json; charset=utf-8")),
      "adm_json",
    );
  });

  test("is null without a key, and a 400 for a body it cannot read", async () => {
    assert.equal(await signInKey(post("other=1", "application/x-www-form-urlencoded")), null);
    assert.equal(await signInKey(post(JSON.stringify({ key: 42 }), "application/json")), null);
    assert.equal((await refusal(signInKey(post("{", "application/json")))).status, 400);
    assert.equal((await refusal(signInKey(post("key=x", "text/plain")))).status, 400);
  });

  test("reads no more than 4 KiB", async () => {
    const big = `key=${"a".repeat(5_000)}`;
    assert.equal((await refusal(signInKey(post(big, "application/x-www-form-urlencoded")))).status, 413);
  });
});
