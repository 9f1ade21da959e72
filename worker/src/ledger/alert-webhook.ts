// Budget alerts: when an org's recorded usage, or one of its users' (or keys'), reaches a threshold of its
// month (50 %, 80 %, 100 % …, from the stack), the org's UsageLedger records the alert once
// (primary key: month, subject, threshold) and delivers it from its alarm to the stack's
// webhook, signed, retried with backoff until it is taken or MAX_ATTEMPTS is reached. One
// ledger per org is the only writer, so no two isolates can raise the same alert.

import { SPEND_RATE_WINDOWS } from "../generated/contract";
import { ALERTS } from "../generated/settings";
import { hex } from "../lib/hex";
import { formatUsd } from "../lib/money";
import type { AlertRow, SpendWindow } from "../protocol/ledger";

export const MAX_ATTEMPTS = 12;
const RETRY_BASE_MS = 1_000; // 1 s, 2 s, 4 s … between attempts
const RETRY_MAX_MS = 3_600_000;
const DELIVERY_TIMEOUT_MS = 10_000;
const encoder = new TextEncoder();

/** Whether `used` has reached `threshold` % of `limit` (exact: integers, no float rounding). */
export function reached(used: number, limit: number, threshold: number): boolean {
  return limit > 0 && BigInt(used) * 100n >= BigInt(limit) * BigInt(threshold);
}

export function alertId(orgId: string, row: Pick<AlertRow, "month" | "subject" | "threshold">): string {
  return `alert:${orgId}:${row.month}:${row.subject}:${row.threshold}`;
}

/** A tripped spend-rate breaker's alert subject: `rate:<window ms>:<window start>:<subject>`. */
export function rateAlertSubject(window: SpendWindow): string {
  return `rate:${window.spanMs}:${window.resetsAt - window.spanMs}:${window.subject}`;
}

/** Whose an alert is: its subject, "org", "user:<id>", "key:<user id>:<key id>" (a key with a
 * monthly limit of its own), or a spend-rate window of a user's or a key's (rateAlertSubject). */
export function alertScope(subject: string): {
  scope: "org" | "user" | "key";
  userId: string | null;
  keyId?: string | null;
  window?: { name: string; start: string; end: string };
} {
  const parts = subject.split(":");
  if (parts[0] === "rate") {
    const [, span = "0", start = "0", ...rest] = parts;
    const name = Object.entries(SPEND_RATE_WINDOWS).find(([, ms]) => String(ms) === span)?.[0] ?? `${span} ms`;
    const at = (ms: number) => new Date(ms).toISOString();
    const window = { name, start: at(Number(start)), end: at(Number(start) + Number(span)) };
    return { ...alertScope(rest.join(":")), window };
  }
  const [kind, userId = null, keyId = null] = parts;
  if (kind === "key") return { scope: "key", userId, keyId };
  return kind === "user" ? { scope: "user", userId } : { scope: "org", userId: null };
}

/** What the webhook receives (every amount twice: integer µUSD and an exact USD string). */
export function payload(orgId: string, row: AlertRow) {
  const whose = alertScope(row.subject);
  return {
    id: alertId(orgId, row),
    // a spend-rate breaker that tripped, or a threshold of a month's limit reached
    type: whose.window ? "spend_rate.exceeded" : "budget.threshold_reached",
    orgId,
    ...whose,
    month: row.month,
    thresholdPercent: row.threshold,
    usedMicros: row.usedMicros,
    usedUsd: formatUsd(row.usedMicros),
    limitMicros: row.limitMicros,
    limitUsd: formatUsd(row.limitMicros),
    reachedAt: new Date(row.crossedAt).toISOString(),
    attempt: row.attempts + 1,
  };
}

/** `t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`: the receiver checks both. */
export async function signature(secret: string, timestamp: number, body: string): Promise<string> {
  const key = await crypto.subtle.importKey("raw", encoder.encode(secret), { name: "HMAC", hash: "SHA-256" }, false, [
    "sign",
  ]);
  const mac = await crypto.subtle.sign("HMAC", key, encoder.encode(`${timestamp}.${body}`));
  return `t=${timestamp},v1=${hex(new Uint8Array(mac))}`;
}

export function retryDelayMs(attempts: number): number {
  return Math.min(RETRY_MAX_MS, RETRY_BASE_MS * 2 ** Math.max(0, attempts - 1));
}

/** One delivery attempt: the receiver's status, or the error that kept it from answering. */
export async function deliver(
  orgId: string,
  row: AlertRow,
  secret: string | undefined,
  now: number,
): Promise<{ ok: boolean; status: number | null; error: string | null }> {
  if (!ALERTS) return { ok: false, status: null, error: "this Worker has no alerts.webhookUrl" };
  if (!secret) return { ok: false, status: null, error: "no ALERT_WEBHOOK_SECRET binding to sign with" };
  const body = JSON.stringify(payload(orgId, row));
  const timestamp = Math.floor(now / 1000);
  try {
    const response = await fetch(ALERTS.webhookUrl, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        "user-agent": "llm-gateway-alerts/1",
        "x-gateway-event-id": alertId(orgId, row),
        "x-gateway-signature": await signature(secret, timestamp, body),
      },
      body,
      signal: AbortSignal.timeout(DELIVERY_TIMEOUT_MS),
    });
    await response.body?.cancel(); // the answer's body is not read
    return {
      ok: response.ok,
      status: response.status,
      error: response.ok ? null : `the webhook answered ${response.status}`,
    };
  } catch (err) {
    return { ok: false, status: null, error: String((err as Error)?.message ?? err).slice(0, 300) };
  }
}
