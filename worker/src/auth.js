// Authentication: bearer `gw_live_…` key → SHA-256 → ONE KV operation: a bulk read of the
// key's shard record `keys:{first hex digits}` (its principal, status, expiry and tenant
// policy) together with the emergency-revocation record `revoked:{hash}`. Results are cached
// in the isolate for a short, bounded time so most requests make no KV call at all.

import { REVOKED_PREFIX, keyShard } from "./contract.js";
import { HttpError } from "./errors.js";
import { effectivePolicy } from "./policy.js";
import { injectedFault } from "./testhooks.js";

const KEY_PATTERN = /^gw_live_[A-Za-z0-9]{32,64}$/;
const ISOLATE_CACHE_MS = 10_000; // revocations and YAML edits reach a warm isolate within this
const ISOLATE_CACHE_MAX = 5_000;
const KV_CACHE_TTL_S = 30; // the minimum Workers KV accepts for get(..., {cacheTtl})

const cache = new Map(); // hash → {record, until}

export async function sha256Hex(text) {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

export function bearerToken(request) {
  const header = request.headers.get("authorization");
  if (header) {
    const match = /^Bearer\s+(.+)$/i.exec(header.trim());
    return match ? match[1].trim() : null;
  }
  return request.headers.get("x-api-key"); // Anthropic-style clients
}

function unauthorized(message, code) {
  return new HttpError(401, message, { code });
}

function configUnavailable(event, detail) {
  console.error(JSON.stringify({ event, ...detail }));
  return new HttpError(503, "Gateway configuration is temporarily unavailable; try again shortly.", {
    code: "config_unavailable",
  });
}

/** The key's record from its shard (own properties only: a hash never walks a prototype). */
function principalRecord(shard, hash) {
  const keys = shard?.keys;
  if (!keys || !Object.hasOwn(keys, hash)) return null;
  const entry = keys[hash];
  const org = Object.hasOwn(shard.orgs ?? {}, entry.orgId) ? shard.orgs[entry.orgId] : null;
  if (!org) throw configUnavailable("kv_shard_inconsistent", { shard: keyShard(hash), orgId: entry.orgId });
  return { ...entry, policy: effectivePolicy(entry, org) };
}

async function lookup(env, hash, fault) {
  const hit = cache.get(hash);
  const now = Date.now();
  if (hit && hit.until > now) return hit.record;
  const shardKey = keyShard(hash);
  const revokedKey = REVOKED_PREFIX + hash;
  let found;
  try {
    if (fault === "kv-down") throw new Error("injected: KV unreachable");
    found = await env.GATEWAY_KV.get([shardKey, revokedKey], { type: "json", cacheTtl: KV_CACHE_TTL_S });
  } catch (err) {
    throw configUnavailable("kv_unavailable", { error: String(err?.message ?? err) });
  }
  const record = principalRecord(found.get(shardKey), hash);
  const effective = record && found.get(revokedKey) ? { ...record, status: "revoked" } : record;
  if (effective) {
    if (cache.size >= ISOLATE_CACHE_MAX) cache.delete(cache.keys().next().value);
    cache.set(hash, { record: effective, until: now + ISOLATE_CACHE_MS });
  }
  return effective;
}

/** Forget a cached key at once (emergency revocation in this isolate). */
export function forgetKey(hash) {
  cache.delete(hash);
}

/** The principal behind the request's key, or an HttpError(401) saying precisely why not. */
export async function authenticate(request, env) {
  const token = bearerToken(request);
  if (!token) {
    throw unauthorized(
      "Missing API key. Send it as 'Authorization: Bearer gw_live_...'.",
      "missing_api_key",
    );
  }
  if (!KEY_PATTERN.test(token)) {
    throw unauthorized("Invalid API key format: gateway keys start with 'gw_live_'.", "invalid_api_key");
  }
  const hash = await sha256Hex(token);
  const record = await lookup(env, hash, injectedFault(request));
  if (!record) throw unauthorized("Incorrect API key provided.", "invalid_api_key");
  if (record.status === "revoked") throw unauthorized("This API key has been revoked.", "revoked_api_key");
  if (record.status === "suspended") {
    throw unauthorized("The account this API key belongs to is suspended.", "account_suspended");
  }
  if (record.status !== "active") throw unauthorized("This API key is not active.", "invalid_api_key");
  if (record.expiresAt !== null && record.expiresAt * 1000 <= Date.now()) {
    throw unauthorized("This API key has expired.", "expired_api_key");
  }
  return { hash, keyId: record.keyId, userId: record.userId, orgId: record.orgId, policy: record.policy };
}
