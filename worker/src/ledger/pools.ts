// Cold-start pools, the ledger's side (decision 0039; the isolate's side is budget/pool.ts). A
// pool is a slice of the org's budget an isolate holds (stored as a lease of POOL_HOLDER) and
// admits a user's request from without asking, when that user has no lease there: up to the
// org's allowance per user between two of its reports. So each user's *band* (the org's pool
// isolates × allowance) is what pools may have admitted for it that the ledger has not heard of:
// every other admission leaves the band free, and a user whose headroom falls under two bands
// goes on the org's deny list, which pools learn at their next exchange. A pool admits nothing
// more than POOL_TTL_MS after its last exchange began, so POOL_TTL_MS (and a margin) after a
// user went on the list no pool can still admit for it: its band is free again.
//
// Exactness: recorded usage + holds + the band never exceeds a user's limit while pools may
// admit for it (an admission reported becomes a reservation within the band it came from); the
// pools' slices are held against the org's budget like leases.

import {
  POOL_HOLDER,
  POOL_TTL_MS,
  type PoolOp,
  type PoolResult,
  pooledLimit,
  type Settlement,
} from "../protocol/ledger";
import { type MonthState, type Months, RESERVATION_TTL_MS } from "./holds";
import type { Settlements } from "./settlement";
import { UsageTotals } from "./usage-rows";

export const POOL_SCHEMA = `
CREATE TABLE IF NOT EXISTS pool_denied (
  month TEXT NOT NULL,
  user_id TEXT NOT NULL,
  denied_at INTEGER NOT NULL,
  PRIMARY KEY (month, user_id)
);
`;

// the ledger counts on a pool's list this long after POOL_TTL_MS (isolates' clocks run apart)
const ACK_MARGIN_MS = 2_000;
const POOL_SHARE = 4; // a pool takes at most a quarter of the org's headroom, as a lease does
const MIN_GRANT_ALLOWANCES = 4; // a slice smaller than this many allowances is not worth holding
// on the list under two bands of headroom, off it at three (a user near the line does not flap)
const DENY_BELOW_BANDS = 2;
const ALLOW_FROM_BANDS = 3;
// an org whose isolates ask for more pools than coldStart.isolates: said at most this often
const FULL_LOG_EVERY_MS = 60_000;

interface DenyList {
  users: Map<string, number>; // user → when it went on the list
  version: number;
}

export class Pools {
  readonly #sql: SqlStorage;
  readonly #months: Months;
  readonly #settlements: Settlements;
  readonly #lists = new Map<string, DenyList>(); // month → its list
  #fullSaidAt = Number.NEGATIVE_INFINITY;
  #fullSince = 0; // pool asks refused since it was last said

  constructor(sql: SqlStorage, months: Months, settlements: Settlements) {
    this.#sql = sql;
    this.#months = months;
    this.#settlements = settlements;
    sql.exec(POOL_SCHEMA);
  }

  #list(month: string): DenyList {
    let list = this.#lists.get(month);
    if (!list) {
      const rows = this.#sql
        .exec<{ userId: string; at: number }>(
          "SELECT user_id AS userId, denied_at AS at FROM pool_denied WHERE month = ?",
          month,
        )
        .toArray();
      // a fresh object's versions never match what an isolate had from the one before
      list = { users: new Map(rows.map((r) => [r.userId, r.at])), version: Date.now() };
      this.#lists.set(month, list);
      if (this.#lists.size > 2) this.#lists.delete(this.#lists.keys().next().value as string);
    }
    return list;
  }

  /** What pools may have admitted for the user that the ledger has not heard of yet. */
  exposure(month: string, userId: string, userLimit: number, band: number, now: number): number {
    if (!pooledLimit(userLimit, band)) return 0;
    const listed = this.#list(month).users.get(userId);
    return listed !== undefined && now >= listed + POOL_TTL_MS + ACK_MARGIN_MS ? 0 : band;
  }

  /** After a user's holds grew (or its limit changed): on the list under two bands of headroom. */
  check(state: MonthState, month: string, userId: string, userLimit: number, band: number, now: number): void {
    if (!pooledLimit(userLimit, band)) return;
    const figures = state.figures(userId);
    const headroom = userLimit - figures.userUsed - figures.userReserved;
    const list = this.#list(month);
    const listed = list.users.has(userId);
    if (!listed && headroom < DENY_BELOW_BANDS * band) {
      list.users.set(userId, now);
      list.version += 1;
      this.#sql.exec(
        "INSERT OR REPLACE INTO pool_denied (month, user_id, denied_at) VALUES (?, ?, ?)",
        month,
        userId,
        now,
      );
    } else if (listed && headroom >= ALLOW_FROM_BANDS * band) {
      list.users.delete(userId);
      list.version += 1;
      this.#sql.exec("DELETE FROM pool_denied WHERE month = ? AND user_id = ?", month, userId);
    }
  }

  /** One pool's exchange, in one atomic step: its admissions become reservations, then its
   * settlements are recorded (both only when the exchange's batch is `fresh`), what it returns
   * released, and its slice renewed. */
  exchange(
    state: MonthState,
    month: string,
    op: PoolOp,
    now: number,
    fresh: boolean,
    seen: { orgId: string; isolates: number } = { orgId: "", isolates: 0 },
  ): PoolResult {
    const current = state.leases.get(op.poolId);
    const repeated = current !== undefined && op.seq <= current.seq;
    const band = op.isolates * op.allowance;
    let held = current?.held ?? 0;
    // a batch sent again (its exchange went unanswered) was applied once, or not at all
    const admitted = fresh ? op.admitted : [];
    for (const a of admitted) {
      held = Math.max(0, held - a.amount);
      this.#months.reserve(state, month, a.requestId, a.userId, a.amount, now + RESERVATION_TTL_MS);
    }
    const usage = new UsageTotals();
    const records: Settlement[] = op.settlements.map((record) => ({ ...record, month, now }));
    this.#settlements.claim(state, records, usage, now, fresh);
    this.#months.addUsage(state, month, usage);
    for (const a of admitted) this.check(state, month, a.userId, a.userLimit, band, now);
    const list = this.#list(month);
    const result = (held: number, granted: number): PoolResult => ({
      poolId: op.poolId,
      held,
      granted,
      ttlMs: POOL_TTL_MS,
      ...(op.deniedVersion === list.version ? {} : { denied: [...list.users.keys()] }),
      deniedVersion: list.version,
    });
    if (repeated) return result(current.held, 0);
    held = Math.max(0, held - Math.max(0, op.returned));
    state.releaseLease(op.poolId); // the headroom below excludes this pool's own slice
    // at most `isolates` pools at once: the band counts on it
    const room = current !== undefined || this.#live(state, now) < op.isolates;
    if (!room && op.want > 0) this.#full(seen.orgId, op.isolates, seen.isolates, now);
    const figures = state.figures(POOL_HOLDER);
    const headroom = op.orgBudget - figures.orgUsed - figures.orgReserved;
    const cap = room ? Math.floor(Math.max(0, headroom - held) / POOL_SHARE) : 0;
    const offer = Math.min(Math.max(0, op.want), cap);
    const granted = offer > 0 && offer >= MIN_GRANT_ALLOWANCES * op.allowance ? offer : 0;
    held += granted;
    const expiresAt = now + POOL_TTL_MS + ACK_MARGIN_MS;
    this.#months.putLease(state, month, op.poolId, { userId: POOL_HOLDER, held, seq: op.seq, expiresAt });
    return result(held, granted);
  }

  /**
   * An isolate asked for a pool while the org holds all it may: its cold users wait for the
   * ledger. A log line (at most one a minute) tells operators to raise coldStart.isolates, and
   * to about what: the isolates that called this ledger lately.
   */
  #full(orgId: string, isolates: number, isolatesSeen: number, now: number): void {
    this.#fullSince += 1;
    if (now - this.#fullSaidAt < FULL_LOG_EVERY_MS) return;
    console.error(
      JSON.stringify({ event: "cold_start_pools_full", orgId, isolates, isolatesSeen, refused: this.#fullSince }),
    );
    this.#fullSaidAt = now;
    this.#fullSince = 0;
  }

  /** Pools the ledger holds a slice for now. */
  #live(state: MonthState, now: number): number {
    let n = 0;
    for (const lease of state.leases.values()) if (lease.userId === POOL_HOLDER && lease.expiresAt > now) n += 1;
    return n;
  }
}
