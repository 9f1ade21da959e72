// The ledger Durable Object as the rest of the Worker reaches it: the class (exported by the
// entry module for workerd), the stub of an org's ledger, and the ledger's own constants.
// What isolates and the ledger say to each other is in protocol/ledger.ts.

import { utcMonth } from "../lib/clock";
import type { Env } from "../protocol/env";
import type { LedgerRpc } from "../protocol/ledger";

export { alertId, alertScope } from "./alert-webhook";
export type { RunPoll, RunPoller } from "./runs";
export { UsageLedger } from "./usage-ledger";
export { COUNTERS, emptyRow, userSubject } from "./usage-rows";

export function ledgerFor(env: Env, orgId: string): DurableObjectStub<LedgerRpc> {
  return env.USAGE_LEDGER.get(env.USAGE_LEDGER.idFromName(orgId));
}

export function currentMonth(now: number = Date.now()): string {
  return utcMonth(now);
}

/** First instant of the month after `month` ("2026-11" → "2026-12-01T00:00:00.000Z"). */
export function monthResetsAt(month: string): string {
  const [year = 0, mon = 0] = month.split("-").map(Number);
  return new Date(Date.UTC(year, mon, 1)).toISOString();
}
