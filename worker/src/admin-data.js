// Shared pieces of the admin API: storage access that fails as clear 503/404 errors, and the
// response shapes (every amount twice: integer µUSD `…Micros` and an exact `…Usd` string).

import { HttpError } from "./errors.js";
import { currentMonth, ledgerFor } from "./ledger.js";
import { formatUsd } from "./pricing.js";

export const ID_PATTERN = /^[a-z0-9][a-z0-9_-]{0,62}$/; // org and user ids (config.py's SLUG)
const MONTH_PATTERN = /^\d{4}-(0[1-9]|1[0-2])$/;

// ------------------------------------------------------------------------------ storage

export async function kvJson(env, key) {
  try {
    return await env.GATEWAY_KV.get(key, "json");
  } catch (err) {
    console.error(JSON.stringify({ event: "admin_kv_unavailable", key, error: String(err?.message ?? err) }));
    throw new HttpError(503, "Tenant configuration is temporarily unavailable; try again shortly.", {
      code: "config_unavailable",
    });
  }
}

export async function tenantsIndex(env) {
  const meta = await kvJson(env, "meta:tenants");
  if (!meta) {
    throw new HttpError(503, "The tenant index (meta:tenants) is missing: has the stack been deployed?", {
      code: "config_unavailable",
    });
  }
  return meta;
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

export async function userRecord(env, userId) {
  const user = ID_PATTERN.test(userId) ? await kvJson(env, `user:${userId}:config`) : null;
  if (!user) throw new HttpError(404, `No user with id '${userId}'.`, { code: "user_not_found" });
  return user;
}

export async function orgRecord(env, orgId) {
  const org = ID_PATTERN.test(orgId) ? await kvJson(env, `org:${orgId}:config`) : null;
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
    keyIds: user.keyIds,
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

export function membersOf(meta, orgId) {
  return Object.entries(meta.users ?? {})
    .filter(([, org]) => org === orgId)
    .map(([userId]) => userId)
    .sort();
}
