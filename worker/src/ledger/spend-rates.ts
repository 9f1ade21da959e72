// Spend-rate breakers (decision 0037): USD per minute and per hour, per user and per key, counted
// in fixed UTC windows exactly like the monthly limits: a request reserves its worst case in the
// windows it is admitted in, and its real cost replaces it there when it settles (in a window
// since passed, it counts nowhere: the next window starts at zero). One row per subject and
// window length keeps the current window's recorded spend; what is held is rebuilt from the open
// reservations (their `rates` column) when a window is first read after a restart.

import type { RateHold, SpendWindow } from "../protocol/ledger";
import type { SpendRateLimit } from "../protocol/policy";
import { keySubject, userSubject } from "./usage-rows";

export const SPEND_RATES_SCHEMA = `
CREATE TABLE IF NOT EXISTS spend_windows (
  subject TEXT NOT NULL,
  span_ms INTEGER NOT NULL,
  start INTEGER NOT NULL,
  used_micros INTEGER NOT NULL,
  PRIMARY KEY (subject, span_ms)
);
`;

interface Window {
  start: number;
  used: number;
  held: number;
}

/** The subject a rate limit counts against: the user's, or the key's. */
export function rateSubject(limit: SpendRateLimit, userId: string, keyId: string | undefined): string | null {
  if (limit.scope === "user") return userSubject(userId);
  return keyId === undefined ? null : keySubject(userId, keyId);
}

export class SpendRates {
  readonly #sql: SqlStorage;
  readonly #windows = new Map<string, Window>(); // `${subject}|${spanMs}` → the current window

  constructor(sql: SqlStorage) {
    this.#sql = sql;
    sql.exec(SPEND_RATES_SCHEMA);
  }

  /** The window of `subject` and `spanMs` that `now` falls in (a new one starts at zero). */
  #window(subject: string, spanMs: number, now: number): Window {
    const start = Math.floor(now / spanMs) * spanMs;
    const name = `${subject}|${spanMs}`;
    let window = this.#windows.get(name);
    if (!window) {
      const row = this.#sql
        .exec<{ start: number; used: number }>(
          "SELECT start, used_micros AS used FROM spend_windows WHERE subject = ? AND span_ms = ?",
          subject,
          spanMs,
        )
        .toArray()[0];
      window = { start: row?.start ?? start, used: row?.used ?? 0, held: this.#heldFromStorage(subject, spanMs) };
      this.#windows.set(name, window);
    }
    if (window.start !== start) Object.assign(window, { start, used: 0, held: 0 });
    return window;
  }

  /** After a restart: what the open reservations hold in this subject's windows. */
  #heldFromStorage(subject: string, spanMs: number): number {
    let held = 0;
    const rows = this.#sql
      .exec<{ amount: number; rates: string }>(
        "SELECT amount_micros AS amount, rates FROM reservations WHERE rates IS NOT NULL",
      )
      .toArray();
    for (const { amount, rates } of rows) {
      for (const hold of JSON.parse(rates) as RateHold[]) {
        // a window since passed is dropped by #window (its start differs)
        if (hold.subject === subject && hold.spanMs === spanMs) held += amount;
      }
    }
    return held;
  }

  /** The figures of each of these limits' windows now. */
  figures(limits: readonly SpendRateLimit[], userId: string, keyId: string | undefined, now: number): SpendWindow[] {
    const out: SpendWindow[] = [];
    for (const limit of limits) {
      const subject = rateSubject(limit, userId, keyId);
      if (subject === null) continue;
      const window = this.#window(subject, limit.spanMs, now);
      out.push({
        subject,
        spanMs: limit.spanMs,
        limit: limit.limitMicros,
        used: window.used,
        held: window.held,
        resetsAt: window.start + limit.spanMs,
      });
    }
    return out;
  }

  /** `amount` held in each of these windows for one reservation: what it must release later. */
  hold(windows: readonly SpendWindow[], amount: number, now: number): RateHold[] {
    return windows.map(({ subject, spanMs }) => {
      const window = this.#window(subject, spanMs, now);
      window.held += amount;
      return { subject, spanMs, start: window.start };
    });
  }

  /**
   * A reservation's holds end; with its settlement's `cost` (null: released unused), which counts
   * in each window it was admitted in, if that window is still the current one.
   */
  release(holds: readonly RateHold[], amount: number, cost: number | null, now: number): void {
    for (const { subject, spanMs, start } of holds) {
      const window = this.#window(subject, spanMs, now);
      if (window.start !== start) continue; // its window has passed: nothing of it is counted now
      window.held = Math.max(0, window.held - amount);
      if (cost === null || cost === 0) continue;
      window.used += cost;
      this.#sql.exec(
        `INSERT INTO spend_windows (subject, span_ms, start, used_micros) VALUES (?, ?, ?, ?)
         ON CONFLICT (subject, span_ms) DO UPDATE SET
           used_micros = CASE WHEN start = excluded.start THEN used_micros + excluded.used_micros
                              ELSE excluded.used_micros END,
           start = excluded.start`,
        subject,
        spanMs,
        start,
        cost,
      );
    }
  }
}
