// Fault injection and test-only routes for the local test runtime. Only a render that asks
// for test hooks bundles this module (worker/build.mjs); every other render bundles
// testhooks-off.ts in its place, so no request can reach a test path in a deployment.

import type { Hono } from "hono";
import { forgetBook, leaseActivity } from "./budget/lease";
import { queuedFacts } from "./facts/facts";
import { ledgerFor } from "./ledger";
import { jsonResponse } from "./lib/errors";
import type { AppEnv, Env, Fault } from "./protocol/env";
import type { Admission, Exchange, Settlement } from "./protocol/ledger";
import { ageKeyCache } from "./request/auth";

const FAULTS = new Set<Fault>(["ledger-down", "settle-down", "kv-down"]);

/** "ledger-down" | "settle-down" | "kv-down" from the x-test-fault request header. */
export function faultOf(request: Request): Fault {
  const fault = request.headers.get("x-test-fault") as Fault;
  return FAULTS.has(fault) ? fault : null;
}

/** x-test-isolate: which simulated isolate's lease book a request uses ("" = the default). */
export function isolateOf(request: Request): string {
  return (request.headers.get("x-test-isolate") ?? "").slice(0, 32);
}

type TestRoute = (env: Env, body: Record<string, unknown>) => Promise<unknown>;

const ROUTES: Record<string, TestRoute> = {
  // {orgId, ...settle args}: record usage directly, e.g. in last month.
  "/__test/ledger/settle": async (env, { orgId, ...record }) =>
    ledgerFor(env, orgId as string).settle(record as unknown as Settlement),
  // {orgId, ...admit args}: reserve directly, e.g. with a `now` in the past (already expired).
  "/__test/ledger/admit": async (env, { orgId, ...admission }) =>
    ledgerFor(env, orgId as string).admit(admission as unknown as Admission),
  // {orgId, month, now?}: the raw ledger rows of a month (a later `now` sweeps expired holds).
  "/__test/ledger/usage": async (env, { orgId, month, now }) =>
    ledgerFor(env, orgId as string).usage({ month: month as string, ...(typeof now === "number" ? { now } : {}) }),
  // {orgId, ...exchange args}: a lease exchange as an isolate sends it.
  "/__test/ledger/exchange": async (env, { orgId, ...exchange }) =>
    ledgerFor(env, orgId as string).exchange(exchange as unknown as Exchange),
  // {orgId, batch, records}: a lease batch sent alone, as an isolate's fallback sends it.
  "/__test/ledger/settle-batch": async (env, { orgId, ...batch }) =>
    ledgerFor(env, orgId as string).settleBatch(batch as unknown as { batch: string; records: Settlement[] }),
  // {orgId}: how many rows remember applied settlements and batches.
  "/__test/ledger/settled-rows": async (env, { orgId }) => ({
    rows: await ledgerFor(env, orgId as string).settledRows(),
  }),
  // {ms}: this isolate's cached key records, made that much older.
  "/__test/auth/age": async (_env, { ms }) => {
    ageKeyCache(Number(ms));
    return { ok: true };
  },
  // {}: settlements on their way to the ledger in lease batches (tests wait for none).
  "/__test/leases": async () => {
    const activity = leaseActivity();
    // facts of requests on their way to the metrics count as unacknowledged too
    return { ...activity, unacknowledged: activity.unacknowledged + queuedFacts() };
  },
  // {}: the Analytics Engine data points written (the local dataset keeps them).
  "/__test/analytics": async (env) => {
    const dataset = env.REQUEST_ANALYTICS as unknown as { localPoints?: () => unknown[] } | undefined;
    return { points: dataset?.localPoints?.() ?? null };
  },
  // {isolate}: a simulated isolate dies: its leases are dropped here, never returned.
  "/__test/isolate/forget": async (_env, { isolate }) => ({ leases: forgetBook(String(isolate)) }),
  // {key, value}: a Worker-owned KV record, e.g. an unsettled: batch to reconcile.
  "/__test/kv/put": async (env, { key, value }) => {
    await env.GATEWAY_KV.put(key as string, JSON.stringify(value));
    return { ok: true };
  },
  // {prefix}: Worker-owned KV records (e.g. unsettled:) with their values.
  "/__test/kv": async (env, { prefix }) => {
    const { keys } = await env.GATEWAY_KV.list({ prefix: prefix as string });
    return Object.fromEntries(
      await Promise.all(keys.map(async ({ name }) => [name, await env.GATEWAY_KV.get(name, "json")])),
    );
  },
};

/** POST /__test/...: test-only views and seeds of Worker-owned state. */
export function registerTestRoutes(app: Hono<AppEnv>): void {
  for (const [path, handler] of Object.entries(ROUTES)) {
    app.post(path, async (c) => jsonResponse(await handler(c.env, await c.req.json())));
  }
}
