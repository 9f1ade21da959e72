// Admin API (/admin/*): health, metrics, and read-mostly views of tenants and their usage, for
// operators holding the deployment's ADMIN_API_KEY. Tenant configuration is Pulumi's (KV, read
// only here); usage is the UsageLedger's (one Durable Object per org). Every amount of money is
// given twice: integer µUSD (`…Micros`) and an exact decimal string (`…Usd`), never a float.

import {
  allowance,
  ledgerCall,
  membersOf,
  money,
  monthParam,
  orgRecord,
  orgView,
  own,
  tenantDirectory,
  usageFigures,
  userRecord,
  userView,
} from "./admin-data.js";
import { exportTenants, reconcile, revokeKey } from "./admin-ops.js";
import { HttpError, jsonResponse } from "./errors.js";
import { currentMonth, monthResetsAt } from "./ledger.js";
import { WORKER_NAME, WORKER_VERSION } from "./settings.js";
import { injectedFault } from "./testhooks.js";

const PREFIX = "/admin/";
const GATEWAY_KEY_PREFIX = "gw_live_"; // user keys never open the admin API
const HEALTH_LEDGER = "__health"; // not a valid org id, so health checks touch no org's ledger
const HEALTH_TIMEOUT_MS = 5_000;
const TOP_USERS = 10;

const ROUTES = [
  [/^health$/, { GET: health }],
  [/^metrics$/, { GET: metrics }],
  [/^users\/([^/]+)$/, { GET: getUser }],
  [/^users\/([^/]+)\/usage$/, { GET: getUserUsage }],
  [/^users\/([^/]+)\/reset-quota$/, { POST: resetQuota }],
  [/^organizations\/([^/]+)$/, { GET: getOrg }],
  [/^organizations\/([^/]+)\/users$/, { GET: getOrgUsers }],
  [/^organizations\/([^/]+)\/usage$/, { GET: getOrgUsage }],
  [/^keys\/([^/]+)\/revoke$/, { POST: revokeKey }],
  [/^export$/, { GET: exportTenants }],
  [/^reconcile$/, { POST: reconcile }],
];

// ------------------------------------------------------------------------------ entry

/** The handler for every path under /admin/: authenticate, then route. */
export async function adminApi(request, env) {
  await authenticateAdmin(request, env);
  const { pathname, searchParams } = new URL(request.url);
  for (const [pattern, methods] of ROUTES) {
    const match = pattern.exec(pathname.slice(PREFIX.length));
    if (!match) continue;
    const handler = methods[request.method];
    if (!handler) {
      throw new HttpError(405, `Method ${request.method} is not allowed on ${pathname}.`, {
        code: "method_not_allowed",
        headers: { allow: Object.keys(methods).join(", ") },
      });
    }
    const call = { request, env, query: searchParams, fault: injectedFault(request) };
    const result = await handler(call, ...match.slice(1).map(decodeSegment));
    return result instanceof Response ? result : jsonResponse(...result);
  }
  throw new HttpError(404, `Invalid URL (${request.method} ${pathname})`, { code: "unknown_url" });
}

function decodeSegment(segment) {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment; // malformed escapes cannot name a tenant; the id check refuses them
  }
}

// ------------------------------------------------------------------------------ auth

function adminUnauthorized(message) {
  return new HttpError(401, message, { code: "invalid_admin_key" });
}

async function digest(text) {
  return crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
}

/** Bearer ADMIN_API_KEY, compared in constant time (equal-length digests of both sides). */
async function authenticateAdmin(request, env) {
  const expected = env.ADMIN_API_KEY;
  if (typeof expected !== "string" || expected === "") {
    throw adminUnauthorized("The admin API is disabled: this deployment has no ADMIN_API_KEY.");
  }
  const match = /^Bearer\s+(.+)$/i.exec((request.headers.get("authorization") ?? "").trim());
  if (!match) {
    throw adminUnauthorized("Missing admin key. Send it as 'Authorization: Bearer <ADMIN_API_KEY>'.");
  }
  const token = match[1].trim();
  if (token.startsWith(GATEWAY_KEY_PREFIX)) {
    throw adminUnauthorized("Gateway API keys cannot use the admin API; send the ADMIN_API_KEY.");
  }
  const [given, wanted] = await Promise.all([digest(token), digest(expected)]);
  if (!crypto.subtle.timingSafeEqual(given, wanted)) throw adminUnauthorized("Incorrect admin key provided.");
}

// ------------------------------------------------------------------------------ handlers
// Each returns [body, status?] for jsonResponse.

async function health(call) {
  const [kv, ledger] = await Promise.all([checkKv(call.env), checkLedger(call)]);
  const ok = kv.ok && ledger.ok;
  const body = { status: ok ? "ok" : "degraded", kv, ledger, worker: { name: WORKER_NAME, version: WORKER_VERSION } };
  return [body, ok ? 200 : 503];
}

async function checkKv(env) {
  try {
    const { configVersion } = await tenantDirectory(env);
    return { ok: true, configVersion };
  } catch (err) {
    return { ok: false, configVersion: null, error: err instanceof HttpError ? err.message : "KV is unreachable" };
  }
}

/** Ping a ledger instance of its own (no org's), bounded in time. */
async function checkLedger(call) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${HEALTH_TIMEOUT_MS} ms`)), HEALTH_TIMEOUT_MS);
  });
  try {
    if (call.fault === "ledger-down") throw new Error("injected: ledger unreachable");
    const { USAGE_LEDGER } = call.env;
    const answer = await Promise.race([USAGE_LEDGER.get(USAGE_LEDGER.idFromName(HEALTH_LEDGER)).ping(), timeout]);
    return { ok: answer?.ok === true };
  } catch (err) {
    return { ok: false, error: String(err?.message ?? err) };
  } finally {
    clearTimeout(timer);
  }
}

/** Keys that authenticate: not revoked, user and org active (expiry is checked per request). */
function countActiveKeys(directory) {
  let active = 0;
  for (const key of directory.keys.values()) {
    const user = directory.users.get(key.userId);
    if (key.status === "active" && user.status === "active" && directory.orgs.get(user.orgId).status === "active") active += 1;
  }
  return active;
}

async function metrics(call) {
  const directory = await tenantDirectory(call.env);
  const month = monthParam(call.query);
  const orgIds = [...directory.orgs.keys()].sort();
  const ledgers = await Promise.all(orgIds.map((orgId) => ledgerCall(call, orgId, "usage", { month })));
  const totals = { requests: 0, costMicros: 0, tokensIn: 0, tokensOut: 0, estimated: 0, cached: 0 };
  const users = [];
  ledgers.forEach((usage, i) => {
    const { org } = usage;
    totals.requests += org.requests;
    totals.costMicros += org.usedMicros;
    totals.tokensIn += org.tokensIn;
    totals.tokensOut += org.tokensOut;
    totals.estimated += org.estimated;
    totals.cached += org.cached;
    for (const [userId, row] of Object.entries(usage.users)) {
      users.push({ userId, orgId: orgIds[i], ...money("cost", row.usedMicros), requests: row.requests });
    }
  });
  users.sort((a, b) => b.costMicros - a.costMicros || b.requests - a.requests || a.userId.localeCompare(b.userId));
  const body = {
    month,
    configVersion: directory.configVersion,
    orgs: directory.orgs.size,
    users: directory.users.size,
    keys: directory.keys.size,
    activeKeys: countActiveKeys(directory),
    usage: {
      requests: totals.requests,
      ...money("cost", totals.costMicros),
      tokensIn: totals.tokensIn,
      tokensOut: totals.tokensOut,
      estimated: totals.estimated,
      cached: totals.cached,
    },
    topUsers: users.slice(0, TOP_USERS),
  };
  return [body];
}

async function getUser(call, userId) {
  const directory = await tenantDirectory(call.env);
  const user = userRecord(directory, userId);
  return [{ ...userView(user), orgName: directory.orgs.get(user.orgId)?.name ?? null }];
}

async function getUserUsage(call, userId) {
  const user = userRecord(await tenantDirectory(call.env), userId);
  const month = monthParam(call.query);
  const row = await ledgerCall(call, user.orgId, "userUsage", { month, userId });
  const figures = usageFigures(row);
  const body = {
    userId,
    orgId: user.orgId,
    month,
    ...figures,
    ...money("reserved", row.reservedMicros ?? 0),
    ...allowance("limit", user.monthlyLimitMicros, figures.usedMicros),
    resetsAt: monthResetsAt(month),
  };
  return [body];
}

async function resetQuota(call, userId) {
  const user = userRecord(await tenantDirectory(call.env), userId);
  const month = currentMonth();
  const result = await ledgerCall(call, user.orgId, "resetUser", { month, userId });
  console.log(JSON.stringify({ event: "admin_quota_reset", userId, orgId: user.orgId, month, previousMicros: result.previousMicros }));
  const body = {
    userId,
    orgId: user.orgId,
    month,
    ...money("previousUsage", result.previousMicros),
    ...money("used", 0),
    ...allowance("limit", user.monthlyLimitMicros, 0),
    resetsAt: monthResetsAt(month),
  };
  return [body];
}

async function getOrg(call, orgId) {
  const org = orgRecord(await tenantDirectory(call.env), orgId);
  return [{ ...orgView(org), userCount: membersOf(org).length }];
}

async function getOrgUsers(call, orgId) {
  const org = orgRecord(await tenantDirectory(call.env), orgId);
  const month = monthParam(call.query);
  const usage = await ledgerCall(call, orgId, "usage", { month });
  const users = membersOf(org).map((user) => {
    const figures = usageFigures(own(usage.users, user.id));
    return {
      ...userView(user),
      usage: { ...figures, ...money("remaining", Math.max(0, user.monthlyLimitMicros - figures.usedMicros)) },
    };
  });
  return [{ orgId: org.id, month, resetsAt: monthResetsAt(month), users }];
}

async function getOrgUsage(call, orgId) {
  const org = orgRecord(await tenantDirectory(call.env), orgId);
  const month = monthParam(call.query);
  const usage = await ledgerCall(call, orgId, "usage", { month });
  const figures = usageFigures(usage.org);
  // Members without a row yet show as zeros; rows of users since removed from the stack stay.
  const userIds = [...new Set([...membersOf(org).map((u) => u.id), ...Object.keys(usage.users)])].sort();
  const body = {
    orgId: org.id,
    name: org.name,
    month,
    ...figures,
    ...allowance("budget", org.monthlyBudgetMicros, figures.usedMicros),
    openReservations: usage.openReservations,
    ...money("reserved", usage.reservedMicros),
    resetsAt: monthResetsAt(month),
    users: userIds.map((userId) => ({ userId, ...usageFigures(own(usage.users, userId)) })),
  };
  return [body];
}
