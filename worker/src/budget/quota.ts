// Quotas: admit each request against the user's monthly limit and the org's monthly budget in
// ONE ledger call (reserving its worst-case cost), settle it to the real cost after the
// response, and decide by the org's failure mode when the ledger cannot be reached. What a
// refusal says, and the refusals remembered, are refusals.ts's.

import { UNSETTLED_PREFIX } from "../generated/contract";
import { currentMonth, ledgerFor } from "../ledger";
import { utcDay } from "../lib/clock";
import { HttpError } from "../lib/errors";
import { formatUsd } from "../lib/money";
import type { Env, Fault } from "../protocol/env";
import type { Figures, Settlement } from "../protocol/ledger";
import type { Outcome } from "../protocol/outcome";
import type { Principal } from "../protocol/policy";
import { offer, release, take } from "./carry";
import type { Ask } from "./clamp";
import { type Batch, type Fallback, type Lease, type OrgLeases, orgLeases } from "./lease";
import { poolBandOf } from "./pool";
import { errorMessage, ledgerUnavailable, refusal, remember, rememberedRefusal, usd } from "./refusals";

const LEDGER_TIMEOUT_MS = 3_000; // a ledger this slow counts as unreachable (failure mode decides)
// orgId → {day, micros}: fail-open spend while the ledger is down. Per isolate: the cap bounds
// what each isolate serves unmetered, not the org's total across isolates.
const fallbackSpend = new Map<string, { day: string; micros: number }>();

const NO_FIGURES: Figures = { userUsed: 0, orgUsed: 0, userReserved: 0, orgReserved: 0, keyUsed: 0, keyReserved: 0 };

/** The key's own monthly limit, when it has one (then its lease and holds are the key's). */
function keyLimitOf(principal: Principal): { id: string; limit: number } | null {
  const limit = principal.policy.keyLimitMicros;
  return limit === null ? null : { id: principal.keyId, limit };
}

/** A request admitted against the ledger (or, degraded, against the fallback allowance). */
export interface Granted {
  month: string;
  amount: number;
  state: Figures | null;
  degraded: boolean;
  /** Admitted against this isolate's lease (lease.ts). */
  lease?: { org: OrgLeases; lease: Lease };
  /** Admitted from this isolate's cold-start pool (pool.ts): no figures (`state` null) yet. */
  pooled?: OrgLeases;
  /** Whether admission awaited a ledger call (a lease exchange, or a per-request admission). */
  calledLedger?: boolean;
}

/** How admission may reach past the request: which lease book, and how to run work after it. */
export interface AdmitContext {
  /** This isolate's lease book ("" in production; test renders simulate several isolates). */
  book: string;
  waitUntil(promise: Promise<unknown>): void;
}

/** The ledger call, or an error if it does not answer within LEDGER_TIMEOUT_MS. */
async function withinTimeout<T>(call: Promise<T>): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${LEDGER_TIMEOUT_MS} ms`)), LEDGER_TIMEOUT_MS);
  });
  try {
    return await Promise.race([call, timeout]);
  } finally {
    if (timer !== undefined) clearTimeout(timer);
  }
}

/**
 * Admit against this isolate's lease for the user's month: no ledger call while the lease has
 * room; one awaited exchange to take or grow it; null when the ledger grants none (near a
 * limit, or unreachable): then the request is admitted per request.
 */
async function admitLeased(
  env: Env,
  principal: Principal,
  requestId: string,
  month: string,
  amount: number,
  context: AdmitContext,
  maxConcurrent: number | null,
): Promise<Granted | null> {
  const { policy, orgId, userId } = principal;
  const org = orgLeases(context.book, orgId);
  const limits = {
    user: policy.userLimitMicros,
    org: policy.orgBudgetMicros,
    key: keyLimitOf(principal),
    maxConcurrent,
    poolBand: poolBandOf(principal, maxConcurrent),
  };
  let calledLedger = false;
  for (let tries = 0; tries < 3; tries++) {
    const lease = org.lease(userId, month, limits, Date.now());
    lease.alerts = policy.alerts;
    if (org.tryAdmit(lease, amount, Date.now())) {
      if (org.needsRenewal(lease) && !org.busy) context.waitUntil(org.exchange(env));
      const figures = lease.figures ?? NO_FIGURES;
      const state = {
        ...figures,
        userUsed: figures.userUsed + lease.unconfirmed,
        orgUsed: figures.orgUsed + org.unconfirmed,
        keyUsed: figures.keyUsed + (limits.key ? lease.unconfirmed : 0),
      };
      return { month, amount, state, degraded: false, lease: { org, lease }, calledLedger };
    }
    // no room on a lease here (a user new to this isolate): the org's cold-start pool, if it may
    if (tries === 0 && org.pool.tryAdmit(principal, maxConcurrent, month, requestId, amount, Date.now())) {
      if (!org.isFlushing)
        context.waitUntil(org.flush(env, settleEach(env, orgId))); // reported soon
      else if (org.pool.needsRenewal(Date.now()) && !org.busy) context.waitUntil(org.exchange(env)); // topped up
      return { month, amount, state: null, degraded: false, pooled: org, calledLedger: false };
    }
    if (lease.exhausted) break;
    // Another request's exchange may bring room; else take or grow the lease ourselves.
    calledLedger = true;
    lease.waiting += 1; // the next exchange takes or grows it, whoever runs it
    lease.lastWorst = Math.max(lease.lastWorst, amount);
    const ranIt = !org.busy;
    try {
      if (ranIt) await org.exchange(env, lease, amount);
      else await org.settled();
    } finally {
      lease.waiting -= 1;
    }
    // near its cap the ledger spares no slot: ask it per request rather than exchange again
    if (ranIt && lease.full) break;
  }
  if (org.returning)
    await org.exchange(env); // give back what leases hold free, then ask
  else if (org.busy) await org.settled(); // e.g. another request's exchange returning it
  return null;
}

/**
 * Reserve the request's worst case (`ask.amount` µUSD), or, when only less fits and the request's
 * output cap may be lowered, the headroom down to `ask.least`; or throw 429 (over a limit) / 503
 * (fail-closed). `Granted.amount` is what was reserved.
 */
export async function admit(
  env: Env,
  principal: Principal,
  requestId: string,
  ask: Ask,
  fault: Fault,
  maxConcurrent: number | null = null,
  context: AdmitContext | null = null,
): Promise<Granted> {
  const month = currentMonth();
  const { policy } = principal;
  const { amount, least } = ask;
  // A lease holds slots of a capped user's open requests beside its budget (decision 0038); a
  // spend-rate breaker admits per request (its windows are the ledger's). A lease admits only
  // whole worst cases: a lowered cap is the ledger's to grant (admission.ts).
  if (context && !fault && policy.spendRates.length === 0) {
    const leased = await admitLeased(env, principal, requestId, month, amount, context, maxConcurrent);
    if (leased) return leased;
  }
  if (!fault) {
    const remembered = rememberedRefusal(principal, month, least);
    if (remembered) throw refusal(principal, remembered, ask, month);
  }
  const carried = fault ? [] : take(principal.orgId);
  try {
    if (fault === "ledger-down") throw new Error("injected: ledger unreachable");
    const result = await withinTimeout(
      ledgerFor(env, principal.orgId).admit({
        requestId,
        userId: principal.userId,
        month,
        amount,
        least,
        userLimit: policy.userLimitMicros,
        orgBudget: policy.orgBudgetMicros,
        keyId: principal.keyId,
        keyLimit: policy.keyLimitMicros,
        rates: policy.spendRates,
        alerts: policy.alerts,
        orgId: principal.orgId,
        maxConcurrent,
        poolBand: poolBandOf(principal, maxConcurrent),
        settlements: carried.map((entry) => entry.record),
      }),
    );
    release(principal.orgId, carried, true);
    if (!result.admitted) {
      if (!fault) remember(principal, month, result);
      throw refusal(principal, result, ask, month);
    }
    // an older ledger (a deploy in progress) answers without `amount`: it reserved the worst case
    return { month, amount: result.amount ?? amount, state: result, degraded: false, calledLedger: true };
  } catch (err) {
    if (err instanceof HttpError) throw err;
    release(principal.orgId, carried, false);
    if (policy.failureMode !== "fail-open") throw ledgerUnavailable(err);
    return admitDegraded(principal, amount, month, err);
  }
}

function admitDegraded(principal: Principal, amount: number, month: string, err: unknown): Granted {
  const today = utcDay();
  const spent = fallbackSpend.get(principal.orgId);
  const used = spent?.day === today ? spent.micros : 0;
  const cap = principal.policy.fallbackDailyLimitMicros;
  if (used + amount > cap) {
    console.error(JSON.stringify({ event: "fallback_cap_reached", orgId: principal.orgId }));
    throw new HttpError(
      503,
      "Usage accounting is unavailable and this organization's fallback " +
        `allowance for today (${usd(cap)}) is used up.`,
      { code: "fallback_limit_reached" },
    );
  }
  fallbackSpend.set(principal.orgId, { day: today, micros: used + amount });
  console.error(JSON.stringify({ event: "serving_fail_open", orgId: principal.orgId, error: errorMessage(err) }));
  return { month, amount, state: null, degraded: true };
}

/** A served (or released) request's outcome as the ledger records it. */
export function settlementOf(
  requestId: string,
  userId: string,
  keyId: string,
  month: string,
  outcome: Outcome,
): Settlement {
  return {
    requestId,
    userId,
    keyId,
    month,
    cost: outcome.cost,
    tokensIn: outcome.tokensIn,
    tokensOut: outcome.tokensOut,
    estimated: outcome.estimated,
    cached: outcome.cached,
    fallback: outcome.fallback === true,
    standIn: outcome.standIn === true,
    implausible: outcome.implausible === true,
    toolMicros: outcome.toolMicros ?? 0,
    tierMicros: outcome.tierMicros ?? 0,
    count: outcome.count,
  };
}

/**
 * Replace the reservation with the real cost. Never throws: if the ledger cannot take it,
 * the record goes to KV under `unsettled:` for reconciliation, and is logged.
 */
export async function settle(
  env: Env,
  principal: Principal,
  requestId: string,
  admission: Granted,
  outcome: Outcome,
  fault: Fault,
): Promise<Figures | null> {
  const record = settlementOf(requestId, principal.userId, principal.keyId, admission.month, outcome);
  if (admission.degraded) {
    const spent = fallbackSpend.get(principal.orgId);
    if (spent) spent.micros += outcome.cost - admission.amount; // reservation → real cost
  }
  if (admission.lease) {
    const { org, lease } = admission.lease;
    // into the lease's next batch; what a batch cannot deliver goes the per-request way
    await org.settle(lease, admission.amount, outcome.count ? record : null, env, settleEach(env, principal.orgId));
    return null;
  }
  if (admission.pooled) {
    // into the pool's next batch, after the report that made it a reservation (released: the
    // reservation expires by itself, as a per-request one does)
    await admission.pooled.settlePooled(record, env, settleEach(env, principal.orgId));
    return null;
  }
  // Usually the next admission to this org carries it (fault-injected requests settle alone).
  if (!fault && !admission.degraded && (await offer(principal.orgId, record))) return null;
  return settleDirect(env, principal.orgId, record, fault);
}

/**
 * Batches the exchanges could not deliver, each alone to the ledger (twice at most; applied once
 * per batch id); one it cannot take goes to KV whole, under `unsettled:`, for reconciliation.
 */
function settleEach(env: Env, orgId: string): Fallback {
  return (batches) => Promise.all(batches.map((b) => settleBatch(env, orgId, b))).then(() => undefined);
}

async function settleBatch(env: Env, orgId: string, { batch, records }: Batch): Promise<void> {
  for (let attempt = 0; attempt < 2; attempt += 1) {
    try {
      await withinTimeout(ledgerFor(env, orgId).settleBatch({ batch, records }));
      return;
    } catch (err) {
      if (attempt === 1)
        console.error(JSON.stringify({ event: "settle_failed", batch, orgId, error: errorMessage(err) }));
    }
  }
  const month = records[0]?.month ?? currentMonth();
  const key = `${UNSETTLED_PREFIX}${orgId}:${month}:${batch}`;
  const kept = JSON.stringify({ v: 2, orgId, at: Date.now(), batch, records });
  try {
    await env.GATEWAY_KV.put(key, kept);
  } catch (err) {
    console.error(JSON.stringify({ event: "usage_record_lost_to_logs", record: kept, error: errorMessage(err) }));
  }
}

/**
 * One settlement straight to the ledger, twice at most; if it cannot take it, the record goes
 * to KV under `unsettled:` for reconciliation, and is logged. Never throws.
 */
async function settleDirect(env: Env, orgId: string, record: Settlement, fault: Fault): Promise<Figures | null> {
  const { requestId } = record;
  for (let attempt = 0; attempt < 2; attempt += 1) {
    try {
      if (fault === "ledger-down" || fault === "settle-down") throw new Error("injected: ledger unreachable");
      return await withinTimeout(ledgerFor(env, orgId).settle(record));
    } catch (err) {
      if (attempt === 1) {
        console.error(JSON.stringify({ event: "settle_failed", requestId, orgId, error: errorMessage(err) }));
      }
    }
  }
  if (record.count === false) return null; // a released reservation expires by itself
  // Kept for reconciliation (POST /admin/reconcile moves it into the ledger, idempotently).
  const key = `${UNSETTLED_PREFIX}${orgId}:${record.month}:${requestId}`;
  const kept = JSON.stringify({ v: 1, orgId, at: Date.now(), ...record });
  try {
    await env.GATEWAY_KV.put(key, kept);
  } catch (err) {
    // Last resort: the full record in the Workers Logs, so it can still be reconciled by hand.
    console.error(JSON.stringify({ event: "usage_record_lost_to_logs", record: kept, error: errorMessage(err) }));
  }
  return null;
}

/**
 * x-gateway-* headers for the tightest of the key's limit (when it has one), the user's limit and
 * the org's budget (named by x-gateway-limit-scope), so usage + remaining = limit. `cost` is this request's, when known
 * (non-streaming); a stream's headers show the state at admission.
 */
export function quotaHeaders(principal: Principal, admission: Granted, cost = 0): Record<string, string> {
  const { policy } = principal;
  if (admission.degraded) {
    // No ledger, no usage figures: say so rather than guess.
    return { "x-gateway-limit-usd": formatUsd(policy.userLimitMicros), "x-gateway-degraded": "ledger-unavailable" };
  }
  if (admission.pooled) {
    // admitted before the ledger was asked: the user's month is not known here yet (GET /v1/usage)
    return { "x-gateway-limit-scope": "user", "x-gateway-limit-usd": formatUsd(policy.userLimitMicros) };
  }
  const state = admission.state as Figures;
  const scopes = [
    { scope: "user", limit: policy.userLimitMicros, used: state.userUsed + cost },
    { scope: "org", limit: policy.orgBudgetMicros, used: state.orgUsed + cost },
  ];
  // a key with a limit of its own: its figures first (the tightest wins; a tie names the narrowest)
  if (policy.keyLimitMicros !== null) {
    scopes.unshift({ scope: "key", limit: policy.keyLimitMicros, used: state.keyUsed + cost });
  }
  const tighter = scopes.reduce((best, next) => (next.limit - next.used < best.limit - best.used ? next : best));
  return {
    "x-gateway-limit-scope": tighter.scope,
    "x-gateway-usage-usd": formatUsd(tighter.used),
    "x-gateway-limit-usd": formatUsd(tighter.limit),
    "x-gateway-remaining-usd": formatUsd(Math.max(0, tighter.limit - tighter.used)),
  };
}
