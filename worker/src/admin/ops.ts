// Admin operations beyond the read-only views: emergency key revocation, bulk export, and
// reconciliation of usage that was served while the ledger was unreachable.

import { REVOKED_PREFIX, UNSETTLED_PREFIX } from "../generated/contract";
import { HttpError, jsonResponse } from "../lib/errors";
import { formatUsd } from "../lib/money";
import type { Env, Fault } from "../protocol/env";
import type { Settlement } from "../protocol/ledger";
import { forgetKey } from "../request/auth";
import {
  type AdminCall,
  kvJson,
  ledgerCall,
  membersOf,
  money,
  monthParam,
  orgView,
  own,
  tenantDirectory,
  usageFigures,
  userView,
} from "./data";

const RECONCILE_BATCH = 200; // records per call, well inside a Worker's subrequest budget

const PROPAGATION =
  "Effective at once where it was written and in this isolate; other Cloudflare locations see it " +
  "within Workers KV's propagation bound (about 60 seconds, plus up to 30 seconds of edge caching).";

interface Revocation {
  v: number;
  keyId: string;
  userId: string;
  revokedAt: string;
  reason: string | null;
}

/**
 * POST /admin/keys/{keyId}/revoke: a Worker-owned `revoked:{hash}` record that takes effect
 * before any `pulumi up`. The stack file should still be changed (`provision keys revoke`).
 */
export async function revokeKey(call: AdminCall, keyId: string): Promise<Response> {
  const entry = (await tenantDirectory(call.env)).keys.get(keyId); // a Map: `__proto__` is no key id
  if (!entry) throw new HttpError(404, `No key with id '${keyId}'.`, { code: "key_not_found" });
  let reason: string | null = null;
  if (call.request.headers.get("content-type")?.includes("application/json")) {
    const body = (await call.request.json().catch(() => ({}))) as { reason?: unknown } | null;
    reason = typeof body?.reason === "string" ? body.reason.slice(0, 500) : null;
  }
  const key = `${REVOKED_PREFIX}${entry.sha256}`;
  const existing = await kvJson<Revocation>(call.env, key);
  const record = existing ?? { v: 1, keyId, userId: entry.userId, revokedAt: new Date().toISOString(), reason };
  if (!existing) await call.env.GATEWAY_KV.put(key, JSON.stringify(record));
  forgetKey(entry.sha256);
  console.log(JSON.stringify({ event: "admin_key_revoked", keyId, userId: entry.userId }));
  return jsonResponse({ ...record, alreadyRevoked: Boolean(existing), propagation: PROPAGATION });
}

const CSV_COLUMNS = [
  "month",
  "org_id",
  "org_name",
  "org_status",
  "org_budget_usd",
  "org_used_usd",
  "user_id",
  "email",
  "user_status",
  "monthly_limit_usd",
  "used_usd",
  "remaining_usd",
  "requests",
  "tokens_in",
  "tokens_out",
];

function csvField(value: unknown): string {
  const text = value === null || value === undefined ? "" : String(value);
  return /[",\n\r]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

/** GET /admin/export[?format=csv][&month=YYYY-MM]: every tenant with the month's usage. */
export async function exportTenants(call: AdminCall): Promise<Response> {
  const month = monthParam(call.query);
  const directory = await tenantDirectory(call.env);
  const orgs = [...directory.orgs.values()].sort((a, b) => (a.id < b.id ? -1 : 1));
  const organizations = await Promise.all(
    orgs.map(async (org) => {
      const usage = await ledgerCall(call, org.id, "usage", (ledger) => ledger.usage({ month }));
      const orgFigures = usageFigures(usage.org);
      return {
        org,
        view: {
          ...orgView(org),
          usage: { ...orgFigures, ...money("remaining", Math.max(0, org.monthlyBudgetMicros - orgFigures.usedMicros)) },
          users: membersOf(org).map((user) => {
            const figures = usageFigures(own(usage.users, user.id));
            const remaining = Math.max(0, user.monthlyLimitMicros - figures.usedMicros);
            return {
              user,
              figures,
              remaining,
              view: { ...userView(user), usage: { ...figures, ...money("remaining", remaining) } },
            };
          }),
        },
      };
    }),
  );
  if (call.query.get("format") !== "csv") {
    return jsonResponse({
      month,
      configVersion: directory.configVersion,
      generatedAt: new Date().toISOString(),
      organizations: organizations.map(({ view }) => ({ ...view, users: view.users.map((u) => u.view) })),
    });
  }
  const rows = [CSV_COLUMNS.join(",")];
  for (const { org, view } of organizations) {
    const orgFields = [month, org.id, org.name, org.status, formatUsd(org.monthlyBudgetMicros), view.usage.usedUsd];
    if (view.users.length === 0) {
      // An organization without users still gets its row (budget and usage), user columns empty.
      const blanks = Array<string>(CSV_COLUMNS.length - orgFields.length).fill("");
      rows.push([...orgFields, ...blanks].map(csvField).join(","));
      continue;
    }
    for (const { user, figures, remaining } of view.users) {
      const fields = [
        ...orgFields,
        user.id,
        user.email,
        user.status,
        formatUsd(user.monthlyLimitMicros),
        figures.usedUsd,
        formatUsd(remaining),
        figures.requests,
        figures.tokensIn,
        figures.tokensOut,
      ];
      rows.push(fields.map(csvField).join(","));
    }
  }
  return new Response(`${rows.join("\r\n")}\r\n`, {
    headers: {
      "content-type": "text/csv; charset=utf-8",
      "content-disposition": `attachment; filename="gateway-usage-${month}.csv"`,
    },
  });
}

interface Unsettled extends Settlement {
  v: 1;
  orgId: string;
  at: number;
}

/** A lease batch an isolate could not deliver (budget/lease.ts): applied once per batch id. */
interface UnsettledBatch {
  v: 2;
  orgId: string;
  at: number;
  batch: string;
  records: Settlement[];
}

type Reconciled = { key: string; ok: true; costMicros: number } | { key: string; ok: false; error: string };

/**
 * Move usage kept under `unsettled:` (served fail-open, or whose settlement failed) into each
 * org's ledger. Settlement is idempotent per request id (a lease batch's, per batch id), so a
 * record is never counted twice; it is deleted from KV only once the ledger has it. Runs from the cron trigger and the admin API.
 */
export async function reconcileUnsettled(env: Env, fault: Fault = null) {
  let listing: KVNamespaceListResult<unknown>;
  try {
    if (fault === "kv-down") throw new Error("injected: KV unreachable");
    listing = await env.GATEWAY_KV.list({ prefix: UNSETTLED_PREFIX, limit: RECONCILE_BATCH });
  } catch (err) {
    // nothing was moved: say so as the outage it is (503), not as a fault of ours (500)
    console.error(JSON.stringify({ event: "reconcile_kv_unavailable", error: String((err as Error)?.message ?? err) }));
    throw new HttpError(503, "Usage kept for reconciliation is unreachable (KV); nothing was moved, try again.", {
      code: "config_unavailable",
    });
  }
  const { keys, list_complete: complete } = listing;
  const call: AdminCall = {
    env,
    fault,
    request: new Request("https://reconcile.invalid/"),
    query: new URLSearchParams(),
  };
  const results = await Promise.all(
    keys.map(async ({ name }): Promise<Reconciled> => {
      try {
        const record = await kvJson<Unsettled | UnsettledBatch>(env, name);
        if (!record) return { key: name, ok: true, costMicros: 0 };
        if (record.v === 2) {
          const { orgId, batch, records } = record;
          await ledgerCall(call, orgId, "settle", (ledger) => ledger.settleBatch({ batch, records }));
          await env.GATEWAY_KV.delete(name);
          return {
            key: name,
            ok: true,
            costMicros: records.reduce((sum, r) => sum + (r.count === false ? 0 : r.cost), 0),
          };
        }
        const { v: _v, orgId, at: _at, ...settlement } = record;
        await ledgerCall(call, orgId, "settle", (ledger) => ledger.settle(settlement));
        await env.GATEWAY_KV.delete(name);
        return { key: name, ok: true, costMicros: settlement.cost };
      } catch (err) {
        return { key: name, ok: false, error: (err as Error).message };
      }
    }),
  );
  const done = results.filter((r) => r.ok);
  return {
    reconciled: done.length,
    costMicros: done.reduce((sum, r) => sum + r.costMicros, 0),
    failed: results.filter((r) => !r.ok),
    more: !complete,
  };
}

/** POST /admin/reconcile: the same, on demand. */
export async function reconcile(call: AdminCall): Promise<Response> {
  const { costMicros, ...result } = await reconcileUnsettled(call.env, call.fault);
  return jsonResponse({ ...result, ...money("reconciledCost", costMicros) });
}
