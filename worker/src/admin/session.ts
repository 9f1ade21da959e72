// Who may use the admin API: a request carrying `Authorization: Bearer <ADMIN_API_KEY>`, or a
// browser holding the dashboard's session cookie, for reading only (docs/decisions/0021).
//
// The cookie is `<expiry>.<base64url HMAC-SHA256(ADMIN_API_KEY, "admin-session:" + expiry)>`,
// expiry in Unix seconds: nothing is stored, and rotating the admin key ends every session. It
// opens GET and HEAD only, so a page that tricks a browser into a POST changes nothing.

import { KEY_PREFIX } from "../generated/contract";
import { HttpError } from "../lib/errors";
import type { Env } from "../protocol/env";
import { parseBearer } from "../request/auth";

export const SESSION_COOKIE = "gw_admin_session";
export const SESSION_TTL_S = 8 * 60 * 60;
const SESSION_CONTEXT = "admin-session:";
const COOKIE_ATTRIBUTES = "HttpOnly; Secure; SameSite=Strict; Path=/admin";
// An expiry in canonical decimal (no leading zero), then 32 bytes of MAC as unpadded base64url.
const TOKEN = /^([1-9][0-9]{0,11})\.([A-Za-z0-9_-]{43})$/;
const READ_ONLY = new Set(["GET", "HEAD"]);
const MAX_SIGN_IN_BYTES = 4_096;

const encoder = new TextEncoder();

export function adminUnauthorized(message: string): HttpError {
  return new HttpError(401, message, { code: "invalid_admin_key" });
}

// ------------------------------------------------------------------------------ the key

/** The deployment's admin key; without one the admin API is closed to everyone. */
function adminKeyOf(env: Env): string {
  const expected = env.ADMIN_API_KEY;
  if (typeof expected !== "string" || expected === "") {
    throw adminUnauthorized("The admin API is disabled: this deployment has no ADMIN_API_KEY.");
  }
  return expected;
}

async function digest(text: string): Promise<ArrayBuffer> {
  return crypto.subtle.digest("SHA-256", encoder.encode(text));
}

/** `given` is the admin key, compared in constant time (equal-length digests of both sides). */
export async function checkAdminKey(env: Env, given: string): Promise<void> {
  const expected = adminKeyOf(env);
  if (given.startsWith(KEY_PREFIX) /* user keys never open the admin API */) {
    throw adminUnauthorized("Gateway API keys cannot use the admin API; send the ADMIN_API_KEY.");
  }
  const [a, b] = await Promise.all([digest(given), digest(expected)]);
  if (!crypto.subtle.timingSafeEqual(a, b)) throw adminUnauthorized("Incorrect admin key provided.");
}

// ------------------------------------------------------------------------------ the session

function hmacKey(adminKey: string): Promise<CryptoKey> {
  return crypto.subtle.importKey("raw", encoder.encode(adminKey), { name: "HMAC", hash: "SHA-256" }, false, [
    "sign",
    "verify",
  ]);
}

function base64url(bytes: ArrayBuffer): string {
  return btoa(String.fromCharCode(...new Uint8Array(bytes)))
    .replaceAll("+", "-")
    .replaceAll("/", "_")
    .replace(/=+$/, "");
}

function fromBase64url(text: string): Uint8Array {
  const binary = atob(text.replaceAll("-", "+").replaceAll("_", "/"));
  return Uint8Array.from(binary, (ch) => ch.charCodeAt(0));
}

/** The session token that expires at `expiresAt` (Unix seconds), signed with the admin key. */
export async function sessionToken(adminKey: string, expiresAt: number): Promise<string> {
  const mac = await crypto.subtle.sign("HMAC", await hmacKey(adminKey), encoder.encode(SESSION_CONTEXT + expiresAt));
  return `${expiresAt}.${base64url(mac)}`;
}

/**
 * Whether `token` is a session signed with `adminKey` that has not expired at `now` (ms). An
 * expiry further ahead than one session's lifetime is refused too: no token outlives the TTL
 * the Worker gives, whatever its holder claims.
 */
export async function verifySession(adminKey: string, token: string, now: number = Date.now()): Promise<boolean> {
  const match = TOKEN.exec(token);
  if (!match) return false;
  const [, expiry = "", mac = ""] = match;
  const nowS = Math.floor(now / 1000);
  const expiresAt = Number(expiry);
  if (expiresAt <= nowS || expiresAt > nowS + SESSION_TTL_S) return false;
  const signature = fromBase64url(mac);
  // verify() compares in constant time
  return crypto.subtle.verify("HMAC", await hmacKey(adminKey), signature, encoder.encode(SESSION_CONTEXT + expiry));
}

/** A new session's Set-Cookie value, valid for SESSION_TTL_S from `now` (ms). */
export async function openSessionCookie(env: Env, now: number = Date.now()): Promise<string> {
  const token = await sessionToken(adminKeyOf(env), Math.floor(now / 1000) + SESSION_TTL_S);
  return `${SESSION_COOKIE}=${token}; ${COOKIE_ATTRIBUTES}; Max-Age=${SESSION_TTL_S}`;
}

/** The Set-Cookie value that removes the session cookie. */
export const CLOSED_SESSION_COOKIE = `${SESSION_COOKIE}=; ${COOKIE_ATTRIBUTES}; Max-Age=0`;

/** The session cookie's value in a Cookie header (the first one), or null. */
export function sessionCookieOf(header: string | null): string | null {
  for (const part of (header ?? "").split(";")) {
    const at = part.indexOf("=");
    if (at !== -1 && part.slice(0, at).trim() === SESSION_COOKIE) return part.slice(at + 1).trim();
  }
  return null;
}

// ------------------------------------------------------------------------------ admission

/**
 * Admit an admin request or throw a 401: the Bearer admin key for any method; else, for GET and
 * HEAD only, a valid session cookie. A Bearer header is judged alone (a wrong key is refused
 * even beside a valid cookie).
 */
export async function authorizeAdmin(request: Request, env: Env): Promise<void> {
  const expected = adminKeyOf(env);
  const token = parseBearer(request.headers.get("authorization"));
  if (token !== null) return checkAdminKey(env, token);
  const session = sessionCookieOf(request.headers.get("cookie"));
  if (session === null) {
    throw adminUnauthorized("Missing admin key. Send it as 'Authorization: Bearer <ADMIN_API_KEY>'.");
  }
  if (!READ_ONLY.has(request.method)) {
    throw adminUnauthorized(
      "A dashboard session is read-only: send the admin key as 'Authorization: Bearer <ADMIN_API_KEY>' to change anything.",
    );
  }
  if (!(await verifySession(expected, session))) {
    throw adminUnauthorized("The admin session has expired or is not valid; sign in again at /admin/dashboard.");
  }
}

// ------------------------------------------------------------------------------ sign-in body

async function boundedBytes(request: Request): Promise<Uint8Array> {
  const tooLarge = () => new HttpError(413, `A sign-in is at most ${MAX_SIGN_IN_BYTES} bytes.`);
  if (Number(request.headers.get("content-length") ?? 0) > MAX_SIGN_IN_BYTES) throw tooLarge();
  if (request.body === null) return new Uint8Array();
  const reader = request.body.getReader();
  const all = new Uint8Array(MAX_SIGN_IN_BYTES);
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return all.slice(0, size);
    if (size + value.byteLength > MAX_SIGN_IN_BYTES) {
      await reader.cancel().catch(() => {});
      throw tooLarge();
    }
    all.set(value, size);
    size += value.byteLength;
  }
}

/**
 * The `key` of a sign-in: a form field (urlencoded or multipart) or a JSON `{"key": "…"}`;
 * null when there is none. A body that is none of these is a 400.
 */
export async function signInKey(request: Request): Promise<string | null> {
  const type = (request.headers.get("content-type") ?? "").split(";")[0]?.trim().toLowerCase() ?? "";
  const bytes = await boundedBytes(request);
  const unreadable = () => new HttpError(400, 'Send the admin key as a form field \'key\' or as JSON {"key": "…"}.');
  let key: unknown = null;
  if (type === "application/x-www-form-urlencoded") {
    key = new URLSearchParams(new TextDecoder().decode(bytes)).get("key");
  } else if (type === "multipart/form-data") {
    const form = await new Response(bytes, { headers: request.headers }).formData().catch(() => {
      throw unreadable();
    });
    key = form.get("key");
  } else if (type === "application/json") {
    try {
      key = (JSON.parse(new TextDecoder().decode(bytes)) as { key?: unknown } | null)?.key ?? null;
    } catch {
      throw unreadable();
    }
  } else {
    throw unreadable();
  }
  return typeof key === "string" && key !== "" ? key : null;
}
