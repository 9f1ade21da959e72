// Admin API (/admin/*): health, metrics, and read-mostly views of tenants and their usage, for
// operators holding the deployment's ADMIN_API_KEY. Tenant configuration is Pulumi's (KV, read
// only here); usage is the UsageLedger's (one Durable Object per org). Every amount of money is
// given twice: integer µUSD (`…Micros`) and an exact decimal string (`…Usd`), never a float.

import type { Context, MiddlewareHandler } from "hono";
import { Hono } from "hono";
import { forgetRefusals } from "../budget/refusals";
import { ALERTS, WORKER_NAME, WORKER_VERSION } from "../generated/settings";
import { alertId, alertScope, currentMonth, ledgerFor, monthResetsAt } from "../ledger";
import { HttpError, jsonResponse } from "../lib/errors";
import type { AppEnv } from "../protocol/env";
import { route } from "../request/routing";
import { closeSession, dashboard, openSession } from "./dashboard";
import {
  type AdminCall,
  allowance,
  keysView,
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
} from "./data";
import { metrics } from "./metrics";
import { exportTenants, reconcile, revokeKey } from "./ops";
import { authorizeAdmin } from "./session";

const HEALTH_LEDGER = "__health"; // not a valid org id, so health checks touch no org's ledger
const HEALTH_TIMEOUT_MS = 5_000;

// ------------------------------------------------------------------------------ auth

/** Bearer ADMIN_API_KEY, or for GET and HEAD the dashboard's session cookie (admin-session.ts). */
const requireAdmin: MiddlewareHandler<AppEnv> = async (c, next) => {
  await authorizeAdmin(c.req.raw, c.env);
  await next();
};

function callOf(c: Context<AppEnv>): AdminCall {
  return { env: c.env, request: c.req.raw, query: new URL(c.req.url).searchParams, fault: c.get("fault") };
}

/** A handler over the admin call and the route's decoded `:id`. */
function handle(fn: (call: AdminCall, id: string) => Promise<Response>) {
  return (c: Context<AppEnv>) => fn(callOf(c), c.req.param("id") ?? "");
}

// ------------------------------------------------------------------------------ handlers

async function health(call: AdminCall): Promise<Response> {
  const [kv, ledger] = await Promise.all([checkKv(call), checkLedger(call)]);
  const ok = kv.ok && ledger.ok;
  const body = { status: ok ? "ok" : "degraded", kv, ledger, worker: { name: WORKER_NAME, version: WORKER_VERSION } };
  return jsonResponse(body, ok ? 200 : 503);
}

async function checkKv(call: AdminCall) {
  try {
    const { configVersion } = await tenantDirectory(call.env);
    return { ok: true, configVersion };
  } catch (err) {
    return { ok: false, configVersion: null, error: err instanceof HttpError ? err.message : "KV is unreachable" };
  }
}

/** Ping a ledger instance of its own (no org's), bounded in time. */
async function checkLedger(call: AdminCall): Promise<{ ok: boolean; error?: string }> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${HEALTH_TIMEOUT_MS} ms`)), HEALTH_TIMEOUT_MS);
  });
  try {
    if (call.fault === "ledger-down") throw new Error("injected: ledger unreachable");
    const answer = await Promise.race([ledgerFor(call.env, HEALTH_LEDGER).ping(), timeout]);
    return { ok: answer?.ok === true };
  } catch (err) {
    return { ok: false, error: String((err as Error)?.message ?? err) };
  } finally {
    if (timer !== undefined) clearTimeout(timer);
  }
}

/** The month's budget alerts of every org (or `?org=`), each with its delivery state. */
async function listAlerts(call: AdminCall): Promise<Response> {
  const directory = await tenantDirectory(call.env);
  const month = monthParam(call.query);
  const only = call.query.get("org");
  if (only !== null) orgRecord(directory, only);
  const orgIds = only !== null ? [only] : [...directory.orgs.keys()].sort();
  const rows = await Promise.all(
    orgIds.map((orgId) => ledgerCall(call, orgId, "alerts", (ledger) => ledger.alerts({ month }))),
  );
  const iso = (at: number | null) => (at === null ? null : new Date(at).toISOString());
  const alerts = rows.flatMap((list, i) =>
    list.map((row) => ({
      id: alertId(orgIds[i] as string, row),
      orgId: orgIds[i] as string,
      ...alertScope(row.subject),
      month: row.month,
      thresholdPercent: row.threshold,
      ...money("used", row.usedMicros),
      ...money("limit", row.limitMicros),
      reachedAt: iso(row.crossedAt),
      status: row.status,
      attempts: row.attempts,
      lastStatus: row.lastStatus,
      lastError: row.lastError,
      deliveredAt: iso(row.deliveredAt),
      nextAttemptAt: row.status === "pending" ? iso(row.nextAttemptAt) : null,
    })),
  );
  return jsonResponse({ month, webhookConfigured: ALERTS !== null, alerts });
}

async function getUser(call: AdminCall, userId: string): Promise<Response> {
  const directory = await tenantDirectory(call.env);
  const user = userRecord(directory, userId);
  return jsonResponse({ ...userView(user), orgName: directory.orgs.get(user.orgId)?.name ?? null });
}

async function getUserUsage(call: AdminCall, userId: string): Promise<Response> {
  const user = userRecord(await tenantDirectory(call.env), userId);
  const month = monthParam(call.query);
  const [row, org] = await Promise.all([
    ledgerCall(call, user.orgId, "userUsage", (ledger) => ledger.userUsage({ month, userId })),
    // its keys' rows (a key with a limit of its own is shown against it)
    Object.keys(user.keys).length > 0
      ? ledgerCall(call, user.orgId, "usage", (ledger) => ledger.usage({ month }))
      : Promise.resolve(null),
  ]);
  const figures = usageFigures(row);
  return jsonResponse({
    userId,
    orgId: user.orgId,
    month,
    ...figures,
    ...money("reserved", row.reservedMicros ?? 0),
    ...money("leased", row.leasedMicros ?? 0),
    ...allowance("limit", user.monthlyLimitMicros, figures.usedMicros),
    resetsAt: monthResetsAt(month),
    keys: keysView(user, org?.keys),
  });
}

async function resetQuota(call: AdminCall, userId: string): Promise<Response> {
  const user = userRecord(await tenantDirectory(call.env), userId);
  const month = currentMonth();
  const result = await ledgerCall(call, user.orgId, "resetUser", (ledger) => ledger.resetUser({ month, userId }));
  const previousMicros = result.previousMicros;
  forgetRefusals(user.orgId); // this isolate at once; others within quota.ts REFUSAL_MEMORY_MS
  console.log(JSON.stringify({ event: "admin_quota_reset", userId, orgId: user.orgId, month, previousMicros }));
  return jsonResponse({
    userId,
    orgId: user.orgId,
    month,
    ...money("previousUsage", previousMicros),
    ...money("used", 0),
    ...allowance("limit", user.monthlyLimitMicros, 0),
    resetsAt: monthResetsAt(month),
  });
}

async function getOrg(call: AdminCall, orgId: string): Promise<Response> {
  const org = orgRecord(await tenantDirectory(call.env), orgId);
  return jsonResponse({ ...orgView(org), userCount: membersOf(org).length });
}

async function getOrgUsers(call: AdminCall, orgId: string): Promise<Response> {
  const org = orgRecord(await tenantDirectory(call.env), orgId);
  const month = monthParam(call.query);
  const usage = await ledgerCall(call, orgId, "usage", (ledger) => ledger.usage({ month }));
  const users = membersOf(org).map((user) => {
    const figures = usageFigures(own(usage.users, user.id));
    return {
      ...userView(user),
      usage: { ...figures, ...money("remaining", Math.max(0, user.monthlyLimitMicros - figures.usedMicros)) },
      keys: keysView(user, usage.keys),
    };
  });
  return jsonResponse({ orgId: org.id, month, resetsAt: monthResetsAt(month), users });
}

async function getOrgUsage(call: AdminCall, orgId: string): Promise<Response> {
  const org = orgRecord(await tenantDirectory(call.env), orgId);
  const month = monthParam(call.query);
  const usage = await ledgerCall(call, orgId, "usage", (ledger) => ledger.usage({ month }));
  const figures = usageFigures(usage.org);
  // Members without a row yet show as zeros; rows of users since removed from the stack stay.
  const userIds = [...new Set([...membersOf(org).map((u) => u.id), ...Object.keys(usage.users)])].sort();
  return jsonResponse({
    orgId: org.id,
    name: org.name,
    month,
    ...figures,
    ...allowance("budget", org.monthlyBudgetMicros, figures.usedMicros),
    openReservations: usage.openReservations,
    ...money("reserved", usage.reservedMicros),
    ...money("leased", usage.leasedMicros),
    resetsAt: monthResetsAt(month),
    users: userIds.map((userId) => ({ userId, ...usageFigures(own(usage.users, userId)) })),
  });
}

// ------------------------------------------------------------------------------ routes

/** Every path under /admin/: authenticated first, then routed (unknown paths: 404). */
export const admin = new Hono<AppEnv>();
// The browser's way in (dashboard.ts), registered before requireAdmin because each answers a
// request without credentials itself: the login page, the session cookie, its removal.
route(admin, "/dashboard", { GET: dashboard });
route(admin, "/session", { POST: openSession });
route(admin, "/logout", { POST: closeSession });
admin.use("*", requireAdmin);
route(admin, "/health", { GET: handle(health) });
route(admin, "/metrics", { GET: handle(metrics) });
route(admin, "/alerts", { GET: handle(listAlerts) });
route(admin, "/users/:id", { GET: handle(getUser) });
route(admin, "/users/:id/usage", { GET: handle(getUserUsage) });
route(admin, "/users/:id/reset-quota", { POST: handle(resetQuota) });
route(admin, "/organizations/:id", { GET: handle(getOrg) });
route(admin, "/organizations/:id/users", { GET: handle(getOrgUsers) });
route(admin, "/organizations/:id/usage", { GET: handle(getOrgUsage) });
route(admin, "/keys/:id/revoke", { POST: handle(revokeKey) });
route(admin, "/export", { GET: handle(exportTenants) });
route(admin, "/reconcile", { POST: handle(reconcile) });
