// Settlements: a request's real cost replaces its reservation and becomes usage, once. The
// settled table remembers each request id for SETTLED_MEMORY_MS, so a settlement sent again
// (a retried exchange, a carried record that also went alone) is applied once; it records
// usage even when the reservation already expired: a cent is never lost.

import type { Figures, Settlement } from "../protocol/ledger";
import type { Alerts } from "./alerts";
import type { MonthState, Months } from "./holds";
import type { Pruning } from "./pruning";
import type { SpendRates } from "./spend-rates";
import { UsageTotals } from "./usage-rows";

export const SETTLED_SCHEMA = `
CREATE TABLE IF NOT EXISTS settled (id TEXT PRIMARY KEY, at INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS settled_by_age ON settled (at);
`;

const CLAIMS_PER_STATEMENT = 50; // two bound parameters each: a Durable Object's SQL takes at most 100

export class Settlements {
  readonly #sql: SqlStorage;
  readonly #months: Months;
  readonly #pruning: Pruning;
  readonly #alerts: Alerts;
  readonly #rates: SpendRates;

  constructor(sql: SqlStorage, months: Months, pruning: Pruning, alerts: Alerts, rates: SpendRates) {
    this.#sql = sql;
    this.#months = months;
    this.#pruning = pruning;
    this.#alerts = alerts;
    this.#rates = rates;
    sql.exec(SETTLED_SCHEMA);
  }

  /**
   * Replace a reservation by the real cost and count the request. Idempotent per requestId,
   * and it records usage even when the reservation already expired: a cent is never lost.
   */
  settle(record: Settlement): Figures {
    const state = this.#months.get(record.month);
    if (this.record(state, record)) {
      this.#alerts.check(record.month, [{ userId: record.userId, keyId: record.keyId }], record.now ?? Date.now());
    }
    return state.figures(record.userId, record.keyId);
  }

  /** Record one settlement and its usage; true when it was new (a settlement is applied once). */
  record(state: MonthState, record: Settlement): boolean {
    const usage = new UsageTotals();
    const fresh = this.claim(state, [record], usage, record.now ?? Date.now());
    this.#months.addUsage(state, record.month, usage);
    return fresh.length > 0;
  }

  /**
   * Claim settlements: their reservations (if any) end, and those not claimed before are
   * returned, each once, their counts added to `usage`, which the caller writes once for all of
   * its call (Months.addUsage). When they came in an isolate's batch, the caller claimed the
   * batch (one row for all: a batch is sent again whole, under its id, or not at all) and says
   * whether it was `fresh`; else (null) each request id is claimed, in multi-row statements.
   */
  claim(
    state: MonthState,
    records: readonly Settlement[],
    usage: UsageTotals,
    now: number,
    fresh: boolean | null = null,
  ): Settlement[] {
    if (fresh === false) return []; // its batch was applied before: nothing twice
    for (const record of records) {
      const held = this.#months.unreserve(state, record.requestId);
      // its real cost replaces its worst case in the spend-rate windows it was admitted in
      if (held?.rates) this.#rates.release(held.rates, held.amount, record.count === false ? null : record.cost, now);
    }
    const claimed = fresh === null ? this.#claimIds(records, now) : new Set(records.map((r) => r.requestId));
    this.#pruning.ifDue(now);
    const applied: Settlement[] = [];
    for (const record of records) {
      if (!claimed.delete(record.requestId)) continue; // claimed before, or twice in this call
      applied.push(record);
      if (record.count !== false) usage.add(record);
    }
    return applied;
  }

  #claimIds(records: readonly Settlement[], now: number): Set<string> {
    const fresh = new Set<string>();
    for (let i = 0; i < records.length; i += CLAIMS_PER_STATEMENT) {
      const chunk = records.slice(i, i + CLAIMS_PER_STATEMENT);
      const claimed = this.#sql.exec<{ id: string }>(
        `INSERT INTO settled (id, at) VALUES ${chunk.map(() => "(?, ?)").join(", ")}
         ON CONFLICT DO NOTHING RETURNING id`,
        ...chunk.flatMap((record) => [record.requestId, record.now ?? now]),
      );
      for (const { id } of claimed) fresh.add(id);
    }
    return fresh;
  }

  /**
   * A batch an isolate could not deliver with an exchange, sent alone (or from KV): its records
   * as usage, once per batch id; false when it was applied before. Leases' holds are not lowered
   * (their isolate stopped counting on them; they expire).
   */
  settleBatch(batch: string, records: readonly Settlement[], now: number): boolean {
    const months = new Map<string, Settlement[]>();
    for (const record of records) months.set(record.month, [...(months.get(record.month) ?? []), record]);
    if (!this.claimOnce(batch, now)) return false;
    for (const [month, list] of months) {
      const state = this.#months.get(month);
      const usage = new UsageTotals();
      for (const record of list) {
        const held = this.#months.unreserve(state, record.requestId);
        if (held?.rates) this.#rates.release(held.rates, held.amount, record.count === false ? null : record.cost, now);
        if (record.count !== false) usage.add(record);
      }
      this.#months.addUsage(state, month, usage);
      this.#alerts.check(
        month,
        list.map((r) => ({ userId: r.userId, keyId: r.keyId })),
        now,
      );
    }
    return true;
  }

  /** Claim any other id once (a metrics or settlement batch): true the first time. */
  claimOnce(id: string, now: number): boolean {
    return this.#sql.exec("INSERT INTO settled (id, at) VALUES (?, ?) ON CONFLICT DO NOTHING", id, now).rowsWritten > 0;
  }
}
