// Shared pieces of the admin API: storage access that fails as clear 503/404 errors, and the
// response shapes (every amount twice: integer µUSD `…Micros` and an exact `…Usd` string).

import { INDEX_KEY, allDirectoryShards } from "./contract.js";
import { HttpError } from "./errors.js";
import { currentMonth, ledgerFor } from "./ledger.js";
import { formatUsd } from "./pricing.js";

const MONTH_PATTERN = /^\d{4}-(0[1-9]|1[0-2])$/;

// ------------------------------------------------------------------------------ storage

async function kvRead(env, key, type) {
  try {
    return await env.GATEWAY_KV.get(key, type);
  } catch (err) {
    console.error(JSON.stringify({ event: "admin_kv_unavailable", key, error: String(err?.message ?? err) }));
    throw new HttpError(503, "Tenant configuration is temporarily unavailable; try again shortly.", {
      code: "config_unavailable",
    });
  }
}

export async function kvJson(env, key) {
  return kvRead(env, key, "json");
}

async function versionOf(text) {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return [...new Uint8Array(digest)].slice(0, 8).map((b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * The tenant directory from every `dir:` shard (read in parallel): organizations, users and
 * keys by id in Maps (an id from a URL never walks an object prototype), and the config
 * version, the same hash `provision` computes (compiler.config_version) over what was read.
 */
export async function tenantDirectory(env) {
  const names = allDirectoryShards();
  const [index, ...texts] = await Promise.all([kvRead(env, INDEX_KEY, "text"), ...names.map((n) => kvRead(env, n, "text"))]);
  if (index === null) {
    throw new HttpError(503, `The tenant index (${INDEX_KEY}) is missing: has the stack been deployed?`, {
      code: "config_unavailable",
    });
  }
  const orgs = new Map();
  const users = new Map();
  const keys = new Map();
  let hashed = "";
  names.forEach((name, i) => {
    if (texts[i] === null) return;
    hashed += `${name}\0${texts[i]}\0`;
    for (const org of Object.values(JSON.parse(texts[i]).orgs)) {
      orgs.set(org.id, org);
      for (const user of Object.values(org.users)) {
        users.set(user.id, user);
        for (const [keyId, key] of Object.entries(user.keys)) keys.set(keyId, { ...key, keyId, userId: user.id });
      }
    }
  });
  return { orgs, users, keys, configVersion: await versionOf(hashed) };
}

/** One ledger RPC; an unreachable ledger is a 503 naming the org, never a 500. */
export async function ledgerCall(call, orgId, method, args) {
  try {
    if (call.fault === "ledger-down") throw new Error("injected: ledger unreachable");
    return await ledgerFor(call.env, orgId)[method](args);
  } catch (err) {
    console.error(JSON.stringify({ event: "admin_ledger_unavailable", orgId, method, error: String(err?.message ?? err) }));
    throw new HttpError(503, `The usage ledger of organization '${orgId}' is temporarily unavailable.`, {
      code: "ledger_unavailable",
    });
  }
}

/** `object[key]` only when it is the object's own property (ids never walk a prototype). */
export function own(object, key) {
  return object !== null && object !== undefined && Object.hasOwn(object, key) ? object[key] : undefined;
}

export function userRecord(directory, userId) {
  const user = directory.users.get(userId);
  if (!user) throw new HttpError(404, `No user with id '${userId}'.`, { code: "user_not_found" });
  return user;
}

export function orgRecord(directory, orgId) {
  const org = directory.orgs.get(orgId);
  if (!org) throw new HttpError(404, `No organization with id '${orgId}'.`, { code: "organization_not_found" });
  return org;
}

export function monthParam(query) {
  const month = query.get("month");
  if (month === null || month === "") return currentMonth();
  if (!MONTH_PATTERN.test(month)) {
    throw new HttpError(400, `'month' must be a UTC month as YYYY-MM (got '${month}').`, {
      code: "invalid_month",
      param: "month",
    });
  }
  return month;
}

// ------------------------------------------------------------------------------ shapes

export function money(name, micros) {
  return { [`${name}Micros`]: micros, [`${name}Usd`]: formatUsd(micros) };
}

export function usageFigures(row) {
  return {
    requests: row?.requests ?? 0,
    ...money("used", row?.usedMicros ?? 0),
    tokensIn: row?.tokensIn ?? 0,
    tokensOut: row?.tokensOut ?? 0,
    estimated: row?.estimated ?? 0,
    cached: row?.cached ?? 0,
  };
}

export function allowance(name, limitMicros, usedMicros) {
  return { ...money(name, limitMicros), ...money("remaining", Math.max(0, limitMicros - usedMicros)) };
}

export function userView(user) {
  return {
    id: user.id,
    orgId: user.orgId,
    email: user.email,
    status: user.status,
    ...money("monthlyLimit", user.monthlyLimitMicros),
    keyIds: Object.keys(user.keys).sort(),
  };
}

export function orgView(org) {
  return {
    id: org.id,
    name: org.name,
    status: org.status,
    failureMode: org.failureMode,
    ...money("monthlyBudget", org.monthlyBudgetMicros),
    ...money("fallbackDailyLimit", org.fallbackDailyLimitMicros),
  };
}

/** The org's users, by id. */
export function membersOf(org) {
  return Object.values(org.users).sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}
