// Authentication: bearer `gw_live_…` key → SHA-256 → ONE KV operation: a bulk read of the
// key's shard record `keys:{first hex digits}` (its principal, status, expiry and tenant
// policy) together with the emergency-revocation record `revoked:{hash}` (and, for the upgrade
// from wave 1's layout, the old per-key record and the index). Results are cached in the
// isolate for a short, bounded time so most requests make no KV call at all.

import {
  INDEX_KEY,
  KEY_PATTERN,
  KEY_PREFIX,
  LEGACY_KEY_PREFIX,
  LEGACY_SCHEMA_VERSION,
  REVOKED_PREFIX,
  SCHEMA_VERSION,
} from "../generated/contract";
import { HttpError } from "../lib/errors";
import { sha256Hex } from "../lib/hex";
import type { Env, Fault } from "../protocol/env";
import type { Principal } from "../protocol/policy";
import { keyShard } from "./key-layout";
import { effectivePolicy, type KeyEntry, type OrgPolicy, undeclaredRouting } from "./policy";

const KEY_FORMAT = new RegExp(KEY_PATTERN);
const BEARER = /^Bearer\s+(.+)$/i;
const ISOLATE_CACHE_MS = 10_000; // revocations and YAML edits reach a warm isolate within this
// While KV cannot be read, a fail-open org's key this isolate read within this long still
// authenticates (docs/decisions/0020); fail-closed orgs get the 503.
export const STALE_AUTH_MS = 15 * 60 * 1000;
const ISOLATE_CACHE_MAX = 5_000;
const KV_CACHE_TTL_S = 30; // the minimum Workers KV accepts for get(..., {cacheTtl})

interface KeyShard {
  keys?: Record<string, KeyEntry>;
  orgs?: Record<string, OrgPolicy>;
}

type KeyRecord = Omit<Principal, "hash"> & { status: string; expiresAt: number | null };

/** Wave 1's `apikey:{hash}` record: the principal with its policy already resolved. */
interface LegacyRecord extends KeyRecord {
  v: number;
}

// hash → the record, until when it is fresh, and when it was read from KV
const cache = new Map<string, { record: KeyRecord; until: number; readAt: number }>();

/** Test renders only: make every cached record `ms` older (as if read that much earlier). */
export function ageKeyCache(ms: number): void {
  for (const hit of cache.values()) {
    hit.until -= ms;
    hit.readAt -= ms;
  }
}

// token → its SHA-256, for keys that authenticated here lately: a warm request hashes nothing
// (hashing was about 3 % of a warm request's time). Bounded like the record cache; a revoked
// key is still looked up by its hash, so this never outlives a revocation.
const hashes = new Map<string, string>();

/** The token of an `Authorization: Bearer <token>` header (the one parser for all keys). */
export function parseBearer(header: string | null): string | null {
  if (header === null) return null;
  const match = BEARER.exec(header.trim());
  return match?.[1] ? match[1].trim() : null;
}

/** A client's gateway key: bearer, or `x-api-key` as Anthropic-style clients send it. */
export function clientKey(headers: Headers): string | null {
  const authorization = headers.get("authorization");
  // Anthropic's clients send x-api-key, Gemini's x-goog-api-key; "" counts as absent
  return authorization ? parseBearer(authorization) : headers.get("x-api-key") || headers.get("x-goog-api-key");
}

function unauthorized(message: string, code: string): HttpError {
  return new HttpError(401, message, { code });
}

function configUnavailable(event: string, detail: Record<string, unknown>): HttpError {
  console.error(JSON.stringify({ event, ...detail }));
  return new HttpError(503, "Gateway configuration is temporarily unavailable; try again shortly.", {
    code: "config_unavailable",
  });
}

/** The key's record from its shard (own properties only: a hash never walks a prototype). */
function keyRecord(shard: KeyShard | null | undefined, hash: string): KeyRecord | null {
  const keys = shard?.keys;
  if (!keys || !Object.hasOwn(keys, hash)) return null;
  const entry = keys[hash] as KeyEntry;
  const orgs = shard.orgs ?? {};
  const org = Object.hasOwn(orgs, entry.orgId) ? orgs[entry.orgId] : undefined;
  if (!org) throw configUnavailable("kv_shard_inconsistent", { shard: keyShard(hash), orgId: entry.orgId });
  const { keyId, userId, orgId, status, expiresAt } = entry;
  return { keyId, userId, orgId, status, expiresAt, policy: effectivePolicy(entry, org) };
}

/**
 * The old per-key record, only while this edge has not seen the sharded layout yet (its shard
 * is absent and its index is not the new schema version): stale old records left in KV after
 * the upgrade can never authenticate anything.
 */
function legacyRecord(found: Map<string, unknown>, shard: unknown, hash: string): KeyRecord | null {
  const index = found.get(INDEX_KEY) as { v?: number } | null;
  if (shard || index?.v === SCHEMA_VERSION) return null;
  const legacy = found.get(LEGACY_KEY_PREFIX + hash) as LegacyRecord | null;
  if (legacy?.v !== LEGACY_SCHEMA_VERSION || typeof legacy.policy !== "object") return null;
  const { keyId, userId, orgId, status, expiresAt, policy } = legacy;
  // wave 1's policy predates tenant routing: none of it declared
  const routing = { ...undeclaredRouting(), version: "legacy" };
  return { keyId, userId, orgId, status, expiresAt, policy: { ...routing, ...policy } };
}

async function lookup(env: Env, hash: string, fault: Fault): Promise<KeyRecord | null> {
  const hit = cache.get(hash);
  const now = Date.now();
  if (hit && hit.until > now) return hit.record;
  const shardKey = keyShard(hash);
  const revokedKey = REVOKED_PREFIX + hash;
  const wanted = [shardKey, revokedKey, LEGACY_KEY_PREFIX + hash, INDEX_KEY];
  let found: Map<string, unknown>;
  try {
    if (fault === "kv-down") throw new Error("injected: KV unreachable");
    found = await env.GATEWAY_KV.get(wanted, { type: "json", cacheTtl: KV_CACHE_TTL_S });
  } catch (err) {
    // Stale but bounded, for fail-open orgs only: a key seen here lately, as it was then (a key
    // known revoked stays revoked; an emergency revocation here forgot it: forgetKey).
    if (hit && hit.record.policy.failureMode === "fail-open" && now - hit.readAt <= STALE_AUTH_MS) {
      console.error(JSON.stringify({ event: "auth_stale", keyId: hit.record.keyId, ageMs: now - hit.readAt }));
      return hit.record;
    }
    throw configUnavailable("kv_unavailable", { error: String((err as Error)?.message ?? err) });
  }
  const shard = found.get(shardKey) as KeyShard | null;
  const record = keyRecord(shard, hash) ?? legacyRecord(found, shard, hash);
  const effective = record && found.get(revokedKey) ? { ...record, status: "revoked" } : record;
  if (effective) {
    if (cache.size >= ISOLATE_CACHE_MAX) cache.delete(cache.keys().next().value as string);
    cache.set(hash, { record: effective, until: now + ISOLATE_CACHE_MS, readAt: now });
  }
  return effective;
}

/** Forget a cached key at once (emergency revocation in this isolate). */
export function forgetKey(hash: string): void {
  cache.delete(hash);
}

/** The principal behind the request's key, or an HttpError(401) saying precisely why not. */
export async function authenticate(headers: Headers, env: Env, fault: Fault): Promise<Principal> {
  const token = clientKey(headers);
  if (!token) {
    throw unauthorized(`Missing API key. Send it as 'Authorization: Bearer ${KEY_PREFIX}...'.`, "missing_api_key");
  }
  if (!KEY_FORMAT.test(token)) {
    throw unauthorized(`Invalid API key format: gateway keys start with '${KEY_PREFIX}'.`, "invalid_api_key");
  }
  const hash = hashes.get(token) ?? (await sha256Hex(token));
  const record = await lookup(env, hash, fault);
  if (!record) throw unauthorized("Incorrect API key provided.", "invalid_api_key");
  if (record.status === "revoked") throw unauthorized("This API key has been revoked.", "revoked_api_key");
  if (record.status === "suspended") {
    throw unauthorized("The account this API key belongs to is suspended.", "account_suspended");
  }
  if (record.status !== "active") throw unauthorized("This API key is not active.", "invalid_api_key");
  if (record.expiresAt !== null && record.expiresAt * 1000 <= Date.now()) {
    throw unauthorized("This API key has expired.", "expired_api_key");
  }
  if (!hashes.has(token)) {
    if (hashes.size >= ISOLATE_CACHE_MAX) hashes.clear();
    hashes.set(token, hash);
  }
  return { hash, keyId: record.keyId, userId: record.userId, orgId: record.orgId, policy: record.policy };
}
