// Authentication against a KV namespace as the Worker sees it: one bulk read per cold key,
// the shard's record, revocation, and the upgrade from wave 1's per-key records.

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  COLD_START_ALLOWANCE_MICROS,
  COLD_START_ISOLATES,
  INDEX_KEY,
  LEGACY_KEY_PREFIX,
  REVOKED_PREFIX,
  SCHEMA_VERSION,
} from "../src/generated/contract";
import { sha256Hex } from "../src/lib/hex";
import type { Env } from "../src/protocol/env";
import { ageKeyCache, authenticate } from "../src/request/auth";
import { keyShard } from "../src/request/key-layout";
import { refusal } from "./refusal";

const ORG = {
  monthlyBudgetMicros: 50_000_000,
  failureMode: "fail-closed",
  fallbackDailyLimitMicros: 0,
  allowedModels: null,
  defaultModel: null,
  cacheTtl: 0,
  priceOverrides: {},
};
const LEGACY_POLICY = {
  userLimitMicros: 1,
  keyLimitMicros: null,
  spendRates: [],
  orgBudgetMicros: 2,
  failureMode: "fail-open",
  fallbackDailyLimitMicros: 3,
  allowedModels: ["openai/gpt-4o-mini"],
  defaultModel: "openai/gpt-4o-mini",
  cacheTtl: 0,
  priceOverrides: {},
};

let n = 0;
function newKey(): string {
  n += 1;
  return `gw_live_${"T".repeat(30)}${String(n).padStart(6, "0")}`;
}

function kv(store: Record<string, unknown>) {
  const reads: string[][] = [];
  const env = {
    GATEWAY_KV: {
      async get(keys: string[]) {
        reads.push(keys);
        return new Map(keys.map((k) => [k, Object.hasOwn(store, k) ? store[k] : null]));
      },
    },
  } as unknown as Env;
  return { env, reads };
}

function headers(key: string): Headers {
  return new Headers({ authorization: `Bearer ${key}` });
}

async function shardedStore(key: string, extra: Record<string, unknown> = {}) {
  const hash = await sha256Hex(key);
  const entry = {
    keyId: "k1",
    userId: "ana",
    orgId: "acme",
    status: "active",
    expiresAt: null,
    monthlyLimitMicros: 7,
    allowedModels: null,
  };
  return {
    hash,
    store: {
      [keyShard(hash)]: { v: SCHEMA_VERSION, keys: { [hash]: entry }, orgs: { acme: ORG } },
      [INDEX_KEY]: { v: SCHEMA_VERSION },
      ...extra,
    },
  };
}

describe("authenticate", () => {
  test("a known key is one bulk KV read, then served from the isolate's cache", async () => {
    const key = newKey();
    const { store } = await shardedStore(key);
    const { env, reads } = kv(store);
    const principal = await authenticate(headers(key), env, null);
    assert.deepEqual([principal.keyId, principal.userId, principal.orgId], ["k1", "ana", "acme"]);
    assert.equal(principal.policy.userLimitMicros, 7);
    await authenticate(headers(key), env, null);
    assert.equal(reads.length, 1, "the second request read nothing");
  });

  test("a warm key's hash is remembered, and a revocation still refuses it once its record is read again", async () => {
    const key = newKey();
    const { store, hash } = await shardedStore(key);
    const { env, reads } = kv(store);
    const first = await authenticate(headers(key), env, null);
    assert.equal(first.hash, hash);
    assert.equal((await authenticate(headers(key), env, null)).hash, hash);
    (store as Record<string, unknown>)[REVOKED_PREFIX + hash] = { v: 1 };
    ageKeyCache(60_000); // the isolate's record is stale: the next request reads KV again
    const error = await refusal(authenticate(headers(key), env, null));
    assert.deepEqual([error.status, error.code], [401, "revoked_api_key"]);
    assert.equal(reads.length, 2);
  });

  test("a revoked record wins over an active shard entry", async () => {
    const key = newKey();
    const hash = await sha256Hex(key);
    const { store } = await shardedStore(key, { [REVOKED_PREFIX + hash]: { v: 1 } });
    const error = await refusal(authenticate(headers(key), kv(store).env, null));
    assert.deepEqual([error.status, error.code], [401, "revoked_api_key"]);
  });

  test("an unknown key is 401 and a hash never walks the shard's prototype", async () => {
    const { store } = await shardedStore(newKey());
    const error = await refusal(authenticate(headers(newKey()), kv(store).env, null));
    assert.deepEqual([error.status, error.code], [401, "invalid_api_key"]);
  });

  test("while an edge has not seen the new layout, wave 1's record still authenticates", async () => {
    const key = newKey();
    const hash = await sha256Hex(key);
    const legacy = {
      v: 1,
      keyId: "old",
      userId: "bo",
      orgId: "acme",
      status: "active",
      expiresAt: null,
      policy: LEGACY_POLICY,
    };
    const { env } = kv({ [LEGACY_KEY_PREFIX + hash]: legacy, [INDEX_KEY]: { v: 1 } });
    const principal = await authenticate(headers(key), env, null);
    // wave 1's policy, with none of the later tenant routing declared
    const routing = {
      allowedPatterns: [],
      aliases: {},
      fallbacks: {},
      rateTier: null,
      clientCacheControl: false,
      corsOrigins: [],
      alerts: { user: [], org: [] },
      logPrompts: false,
      shareStoredResponses: false,
      allowUnpriced: false,
      shareOrgUsage: false,
      clampFloorTokens: 256,
      coldStart: { isolates: COLD_START_ISOLATES, allowance: COLD_START_ALLOWANCE_MICROS },
      version: "legacy",
    };
    assert.deepEqual([principal.keyId, principal.policy], ["old", { ...LEGACY_POLICY, ...routing }]);
  });

  test("once the edge sees the new index, a stale wave-1 record authenticates nothing", async () => {
    const key = newKey();
    const hash = await sha256Hex(key);
    const legacy = {
      v: 1,
      keyId: "old",
      userId: "bo",
      orgId: "acme",
      status: "active",
      expiresAt: null,
      policy: LEGACY_POLICY,
    };
    const { env } = kv({ [LEGACY_KEY_PREFIX + hash]: legacy, [INDEX_KEY]: { v: SCHEMA_VERSION } });
    const error = await refusal(authenticate(headers(key), env, null));
    assert.equal(error.code, "invalid_api_key");
  });

  test("an empty Authorization header falls back to x-api-key (Anthropic-style clients)", async () => {
    const key = newKey();
    const { store } = await shardedStore(key);
    const principal = await authenticate(new Headers({ authorization: "", "x-api-key": key }), kv(store).env, null);
    assert.equal(principal.keyId, "k1");
  });

  test("KV unreachable is 503 config_unavailable, not 401", async () => {
    const env = { GATEWAY_KV: { get: async () => Promise.reject(new Error("down")) } } as unknown as Env;
    const error = await refusal(authenticate(headers(newKey()), env, null));
    assert.deepEqual([error.status, error.code], [503, "config_unavailable"]);
  });
});
