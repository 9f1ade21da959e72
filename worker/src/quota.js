// Quotas: admit each request against the user's monthly limit and the org's monthly budget in
// ONE ledger call (reserving its worst-case cost), settle it to the real cost after the
// response, and decide by the org's failure mode when the ledger cannot be reached.

import { offer, release, take } from "./carry.js";
import { UNSETTLED_PREFIX } from "./contract.js";
import { HttpError } from "./errors.js";
import { currentMonth, ledgerFor, monthResetsAt } from "./ledger.js";
import { formatUsd } from "./pricing.js";

const LEDGER_TIMEOUT_MS = 3_000; // a ledger this slow counts as unreachable (failure mode decides)
// orgId → {day, micros}: fail-open spend while the ledger is down. Per isolate: the cap bounds
// what each isolate serves unmetered, not the org's total across isolates.
const fallbackSpend = new Map();

/** The ledger call, or an error if it does not answer within LEDGER_TIMEOUT_MS. */
async function withinTimeout(call) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${LEDGER_TIMEOUT_MS} ms`)), LEDGER_TIMEOUT_MS);
  });
  try {
    return await Promise.race([call, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function usd(micros) {
  return `$${formatUsd(micros)}`;
}

function day(now = Date.now()) {
  return new Date(now).toISOString().slice(0, 10);
}

function ledgerUnavailable(err) {
  console.error(JSON.stringify({ event: "ledger_unavailable", error: String(err?.message ?? err) }));
  return new HttpError(503, "Usage accounting is temporarily unavailable; try again shortly.", {
    code: "ledger_unavailable",
  });
}

function refusal(principal, result, amount, month) {
  const { policy, userId, orgId } = principal;
  const resetsAt = monthResetsAt(month);
  const [who, used, reserved, limit] =
    result.limit === "user"
      ? [`user '${userId}'`, result.userUsed, result.userReserved, policy.userLimitMicros]
      : [`organization '${orgId}'`, result.orgUsed, result.orgReserved, policy.orgBudgetMicros];
  const noun = result.limit === "user" ? "monthly limit" : "monthly budget";
  return new HttpError(
    429,
    `You exceeded the ${noun} of ${who}: ${usd(used)} of ${usd(limit)} used` +
      (reserved ? ` (${usd(reserved)} held by requests in progress)` : "") +
      `, and this request may cost up to ${usd(amount)}. It resets at ${resetsAt}.`,
    {
      type: "insufficient_quota",
      code: "insufficient_quota",
      headers: {
        "x-gateway-limit-scope": result.limit,
        "x-gateway-limit-usd": formatUsd(limit),
        "x-gateway-remaining-usd": formatUsd(Math.max(0, limit - used - reserved)),
        "x-gateway-quota-resets-at": resetsAt,
      },
    },
  );
}

/** Reserve `amount` µUSD for this request, or throw 429 (over a limit) / 503 (fail-closed). */
export async function admit(env, principal, requestId, amount, fault) {
  const month = currentMonth();
  const { policy } = principal;
  const carried = fault ? [] : take(principal.orgId);
  try {
    if (fault === "ledger-down") throw new Error("injected: ledger unreachable");
    const result = await withinTimeout(
      ledgerFor(env, principal.orgId).admit({
        requestId,
        userId: principal.userId,
        month,
        amount,
        userLimit: policy.userLimitMicros,
        orgBudget: policy.orgBudgetMicros,
        settlements: carried.map((entry) => entry.record),
      }),
    );
    release(principal.orgId, carried, true);
    if (!result.admitted) throw refusal(principal, result, amount, month);
    return { month, amount, state: result, degraded: false };
  } catch (err) {
    if (err instanceof HttpError) throw err;
    release(principal.orgId, carried, false);
    if (policy.failureMode !== "fail-open") throw ledgerUnavailable(err);
    return admitDegraded(principal, amount, month, err);
  }
}

function admitDegraded(principal, amount, month, err) {
  const today = day();
  const spent = fallbackSpend.get(principal.orgId);
  const used = spent?.day === today ? spent.micros : 0;
  const cap = principal.policy.fallbackDailyLimitMicros;
  if (used + amount > cap) {
    console.error(JSON.stringify({ event: "fallback_cap_reached", orgId: principal.orgId }));
    throw new HttpError(503, "Usage accounting is unavailable and this organization's fallback " +
      `allowance for today (${usd(cap)}) is used up.`, { code: "fallback_limit_reached" });
  }
  fallbackSpend.set(principal.orgId, { day: today, micros: used + amount });
  console.error(JSON.stringify({ event: "serving_fail_open", orgId: principal.orgId, error: String(err?.message ?? err) }));
  return { month, amount, state: null, degraded: true };
}

/**
 * Replace the reservation with the real cost. Never throws: if the ledger cannot take it,
 * the record goes to KV under `unsettled:` for reconciliation, and is logged.
 */
export async function settle(env, principal, requestId, admission, outcome, fault) {
  const record = {
    requestId,
    userId: principal.userId,
    month: admission.month,
    cost: outcome.cost,
    tokensIn: outcome.tokensIn,
    tokensOut: outcome.tokensOut,
    estimated: outcome.estimated,
    cached: outcome.cached,
    count: outcome.count,
  };
  if (admission.degraded) {
    const spent = fallbackSpend.get(principal.orgId);
    if (spent) spent.micros += outcome.cost - admission.amount; // reservation → real cost
  }
  // Usually the next admission to this org carries it (fault-injected requests settle alone).
  if (!fault && !admission.degraded && (await offer(principal.orgId, record))) return null;
  for (let attempt = 0; attempt < 2; attempt += 1) {
    try {
      if (fault === "ledger-down" || fault === "settle-down") throw new Error("injected: ledger unreachable");
      return await withinTimeout(ledgerFor(env, principal.orgId).settle(record));
    } catch (err) {
      if (attempt === 1) {
        console.error(JSON.stringify({ event: "settle_failed", requestId, orgId: principal.orgId, error: String(err?.message ?? err) }));
      }
    }
  }
  if (!outcome.count) return null; // a released reservation expires by itself
  // Kept for reconciliation (POST /admin/reconcile moves it into the ledger, idempotently).
  const key = `${UNSETTLED_PREFIX}${principal.orgId}:${admission.month}:${requestId}`;
  const kept = JSON.stringify({ v: 1, orgId: principal.orgId, at: Date.now(), ...record });
  try {
    await env.GATEWAY_KV.put(key, kept);
  } catch (err) {
    // Last resort: the full record in the Workers Logs, so it can still be reconciled by hand.
    console.error(JSON.stringify({ event: "usage_record_lost_to_logs", record: kept, error: String(err?.message ?? err) }));
  }
  return null;
}

/**
 * x-gateway-* headers for the tighter of user limit and org budget (named by
 * x-gateway-limit-scope), so usage + remaining = limit. `cost` is this request's, when known
 * (non-streaming); a stream's headers show the state at admission.
 */
export function quotaHeaders(principal, admission, cost = 0) {
  const { policy } = principal;
  if (admission.degraded) {
    // No ledger, no usage figures: say so rather than guess.
    return { "x-gateway-limit-usd": formatUsd(policy.userLimitMicros), "x-gateway-degraded": "ledger-unavailable" };
  }
  const user = { scope: "user", limit: policy.userLimitMicros, used: admission.state.userUsed + cost };
  const org = { scope: "org", limit: policy.orgBudgetMicros, used: admission.state.orgUsed + cost };
  const tighter = user.limit - user.used <= org.limit - org.used ? user : org;
  return {
    "x-gateway-limit-scope": tighter.scope,
    "x-gateway-usage-usd": formatUsd(tighter.used),
    "x-gateway-limit-usd": formatUsd(tighter.limit),
    "x-gateway-remaining-usd": formatUsd(Math.max(0, tighter.limit - tighter.used)),
  };
}
