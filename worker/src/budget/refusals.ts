// What admission answers when it refuses (the 429s of a limit, a budget, a cap or a spend-rate
// window; the 503 of an unreachable ledger), and the refusals an isolate remembers for a moment
// so that a tenant out of budget costs its ledger no call per request.

import { SPEND_RATE_WINDOWS } from "../generated/contract";
import { monthResetsAt } from "../ledger";
import { HttpError } from "../lib/errors";
import { formatUsd } from "../lib/money";
import type { AdmitResult, SpendWindow } from "../protocol/ledger";
import type { Principal } from "../protocol/policy";
import type { Ask } from "./clamp";

// A refusal is remembered this long: an org (or user) out of budget costs its ledger no call
// per request. A raised limit, a reset or a new month is seen after it at the latest.
const REFUSAL_MEMORY_MS = 2_000;
// `${orgId}|${month}`, `…|${userId}`, `…|${keyId}`, `…|rate` → the refusal and until when it holds
const refusals = new Map<string, { result: AdmitResult; until: number }>();

export function errorMessage(err: unknown): string {
  return String((err as Error)?.message ?? err);
}

export function usd(micros: number): string {
  return `$${formatUsd(micros)}`;
}

export function ledgerUnavailable(err: unknown): HttpError {
  console.error(JSON.stringify({ event: "ledger_unavailable", error: errorMessage(err) }));
  return new HttpError(503, "Usage accounting is temporarily unavailable; try again shortly.", {
    code: "ledger_unavailable",
  });
}

export function refusal(principal: Principal, result: AdmitResult, ask: Ask, month: string): HttpError {
  const { policy, userId, orgId } = principal;
  if (result.limit === "concurrency") {
    return new HttpError(
      429,
      `User '${userId}' already has ${result.open} requests open, the most its rate tier allows; ` +
        "retry when one has finished.",
      { type: "rate_limit_error", code: "concurrency_limit_exceeded", headers: { "retry-after": "1" } },
    );
  }
  if (result.limit === "rate" && result.window) return rateRefusal(principal, result.window, ask);
  const resetsAt = monthResetsAt(month);
  const [who, used, reserved, limit] =
    result.limit === "key"
      ? [`API key '${principal.keyId}'`, result.keyUsed, result.keyReserved, policy.keyLimitMicros ?? 0]
      : result.limit === "user"
        ? [`user '${userId}'`, result.userUsed, result.userReserved, policy.userLimitMicros]
        : [`organization '${orgId}'`, result.orgUsed, result.orgReserved, policy.orgBudgetMicros];
  const noun = result.limit === "org" ? "monthly budget" : "monthly limit";
  const cost =
    ask.leastTokens === null
      ? `this request may cost up to ${usd(ask.amount)}`
      : `this request may cost up to ${usd(ask.least)} even with its output cap lowered to ` +
        `${ask.leastTokens} tokens (its organization's floor)`;
  return new HttpError(
    429,
    `You exceeded the ${noun} of ${who}: ${usd(used)} of ${usd(limit)} used` +
      (reserved ? ` (${usd(reserved)} held by requests in progress)` : "") +
      `, and ${cost}. It resets at ${resetsAt}; GET /v1/usage shows this key's figures.`,
    {
      type: "insufficient_quota",
      code: "insufficient_quota",
      headers: {
        "x-gateway-limit-scope": result.limit ?? "org",
        "x-gateway-limit-usd": formatUsd(limit),
        "x-gateway-remaining-usd": formatUsd(Math.max(0, limit - used - reserved)),
        "x-gateway-quota-resets-at": resetsAt,
      },
    },
  );
}

/** A spend-rate breaker's 429: which window, what it holds, when it ends (retry-after). */
function rateRefusal(principal: Principal, window: SpendWindow, ask: Ask): HttpError {
  const scope = window.subject.startsWith("key:") ? "key" : "user";
  const who = scope === "key" ? `API key '${principal.keyId}'` : `user '${principal.userId}'`;
  const name = windowName(window.spanMs);
  const endsAt = new Date(window.resetsAt).toISOString();
  const retry = Math.max(1, Math.ceil((window.resetsAt - Date.now()) / 1000));
  return new HttpError(
    429,
    `${who[0]?.toUpperCase()}${who.slice(1)} reached its spend rate of ${usd(window.limit)} per ${name}: ` +
      `${usd(window.used)} spent in this ${name}` +
      (window.held ? ` (${usd(window.held)} held by requests in progress)` : "") +
      `, and this request may cost up to ${usd(ask.least)}. Retry after ${retry} s, when the ${name} ends ` +
      `(${endsAt}); GET /v1/usage shows this key's windows.`,
    {
      type: "rate_limit_error",
      code: "spend_rate_exceeded",
      headers: {
        "retry-after": String(retry),
        "x-gateway-limit-scope": scope,
        "x-gateway-limit-window": name,
        "x-gateway-limit-usd": formatUsd(window.limit),
        "x-gateway-remaining-usd": formatUsd(Math.max(0, window.limit - window.used - window.held)),
        "x-gateway-quota-resets-at": endsAt,
      },
    },
  );
}

/** "minute" or "hour": SPEND_RATE_WINDOWS's name of a window length. */
export function windowName(spanMs: number): string {
  return Object.entries(SPEND_RATE_WINDOWS).find(([, ms]) => ms === spanMs)?.[0] ?? `${spanMs / 1000} s`;
}

/** A quota reset or limit change made here: this isolate forgets its refusals for the org. */
export function forgetRefusals(orgId: string): void {
  for (const key of refusals.keys()) if (key.startsWith(`${orgId}|`)) refusals.delete(key);
}

function refusalKeys(principal: Principal, month: string): { org: string; user: string; key: string; rate: string } {
  const org = `${principal.orgId}|${month}`;
  const user = `${org}|${principal.userId}`;
  const key = `${user}|${principal.keyId}`;
  return { org, user, key, rate: `${key}|rate` };
}

export function remember(principal: Principal, month: string, result: AdmitResult): void {
  if (result.limit === "concurrency" || result.limit === null) return; // concurrency frees up at once
  const keys = refusalKeys(principal, month);
  // a spend-rate refusal holds until its window ends at the latest
  const until = Math.min(Date.now() + REFUSAL_MEMORY_MS, result.window?.resetsAt ?? Number.POSITIVE_INFINITY);
  refusals.set(keys[result.limit], { result, until });
}

/** A refusal the ledger gave moments ago that this request would get again (no larger room):
 * `amount` is the least the request can be admitted for. */
export function rememberedRefusal(principal: Principal, month: string, amount: number): AdmitResult | null {
  const { policy } = principal;
  const now = Date.now();
  const keys = refusalKeys(principal, month);
  for (const key of [keys.org, keys.user, keys.key, keys.rate]) {
    const hit = refusals.get(key);
    if (!hit) continue;
    if (hit.until <= now) {
      refusals.delete(key);
      continue;
    }
    const { result } = hit;
    const { window } = result;
    const [taken, limit] =
      result.limit === "org"
        ? [result.orgUsed + result.orgReserved, policy.orgBudgetMicros]
        : result.limit === "key"
          ? [result.keyUsed + result.keyReserved, policy.keyLimitMicros ?? Number.POSITIVE_INFINITY]
          : result.limit === "rate" && window
            ? [window.used + window.held, window.limit]
            : [result.userUsed + result.userReserved, policy.userLimitMicros];
    if (taken + amount > limit) return result;
  }
  return null;
}
