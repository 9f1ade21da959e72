// Budget leases, the ledger's side (decision 0018; the isolate's side is budget/lease.ts): per
// exchange, a lease's settlements recorded (their costs leave its hold), what the isolate gives
// back released, then a grant of at most 1/LEASE_SHARE of the headroom beside every other hold,
// so that recorded usage plus all holds never exceeds the user's limit or the org's budget. The
// exchanges of all isolates are paced to EXCHANGES_PER_S.

import { LEASE_TTL_MS, type LeaseOp, type LeaseResult } from "../protocol/ledger";
import type { MonthState, Months } from "./holds";
import type { Pools } from "./pools";
import type { Settlements } from "./settlement";
import { UsageTotals } from "./usage-rows";

// A lease takes at most this share of the headroom left beside all other holds, so slices
// shrink as a limit nears and the last ones stay available to other isolates.
const LEASE_SHARE = 4;
// Lease exchanges per second this object aims at, over all isolates (decision 0018).
const EXCHANGES_PER_S = 400;
const MIN_EXCHANGE_INTERVAL_MS = 1_000;
const MAX_EXCHANGE_INTERVAL_MS = 10_000; // well inside waitUntil's 30 s and the lease TTL
const PACE_WINDOW_MS = 10_000;

/**
 * A lease's open-request slots of its user's cap (decision 0038): what the isolate asks, whole
 * while that is at most half of the slots free beside every other hold, else growing by at most
 * 1/LEASE_SHARE of them (so none near the cap); never below what it has open within what it held,
 * never beyond what is free: open reservations plus every lease's slots stay within the cap.
 * Called with this lease's hold released.
 */
function slotsFor(state: MonthState, op: LeaseOp, current: number): number {
  const cap = op.maxConcurrent ?? null;
  if (cap === null) return 0;
  const free = Math.max(0, cap - state.openOf(op.userId)); // this lease's own slots included
  const wanted = Math.max(0, op.wantSlots ?? 0);
  const beside = Math.max(0, free - current); // free beside this lease's own
  const growth = wanted - current <= beside / 2 ? wanted - current : Math.floor(beside / LEASE_SHARE);
  const asked = Math.min(wanted, current + growth);
  const open = Math.min(Math.max(0, op.open ?? 0), current);
  return Math.min(free, Math.max(asked, open));
}

export class Leases {
  readonly #months: Months;
  readonly #settlements: Settlements;
  readonly #pools: Pools;
  readonly #isolatesSeen = new Map<string, number>(); // isolate id → its last exchange
  #nextPaceSweep = 0;

  constructor(months: Months, settlements: Settlements, pools: Pools) {
    this.#months = months;
    this.#settlements = settlements;
    this.#pools = pools;
  }

  /** One lease's exchange, in one atomic step; `fresh`: whether its batch is new (null: none,
   * its settlements are claimed one by one). */
  exchange(state: MonthState, month: string, op: LeaseOp, now: number, fresh: boolean | null = null): LeaseResult {
    const current = state.leases.get(op.leaseId);
    // a lease for a key with a limit of its own: its holds count against the key too
    const keyId = op.keyLimit !== null && op.keyLimit !== undefined && op.keyId !== undefined ? op.keyId : null;
    const result = (held: number, granted: number, slots: number): LeaseResult => ({
      leaseId: op.leaseId,
      held,
      granted,
      slots,
      ...((state.slotPressure.get(op.userId) ?? 0) > now ? { slotPressure: true } : {}),
      ttlMs: LEASE_TTL_MS,
      ...state.figures(op.userId, keyId),
    });
    let held = current?.held ?? 0;
    const repeated = current !== undefined && op.seq <= current.seq;
    const usage = new UsageTotals();
    const records = op.settlements.map((record) => ({ ...record, month, now }));
    for (const record of this.#settlements.claim(state, records, usage, now, fresh)) {
      // a settlement's cost moves from the hold to the usage, once
      if (!repeated) held = Math.max(0, held - record.cost);
    }
    this.#months.addUsage(state, month, usage); // before the headroom below is read
    if (repeated) return result(current.held, 0, current.slots ?? 0); // a retry already applied
    held = Math.max(0, held - Math.max(0, op.returned));
    state.releaseLease(op.leaseId); // the headroom below excludes this lease's own hold
    const figures = state.figures(op.userId, keyId);
    const headroom = Math.min(
      keyId ? (op.keyLimit as number) - figures.keyUsed - figures.keyReserved : Number.POSITIVE_INFINITY,
      // what cold-start pools may have admitted for the user unreported stays free (0039)
      op.userLimit -
        figures.userUsed -
        figures.userReserved -
        this.#pools.exposure(month, op.userId, op.userLimit, op.poolBand ?? 0, now),
      op.orgBudget - figures.orgUsed - figures.orgReserved,
    );
    const cap = Math.floor(Math.max(0, headroom - held) / LEASE_SHARE);
    const offer = Math.min(Math.max(0, op.want), cap);
    const granted = offer > 0 && offer >= op.minGrant ? offer : 0;
    held += granted;
    const slots = slotsFor(state, op, current?.slots ?? 0);
    this.#months.putLease(state, month, op.leaseId, {
      userId: op.userId,
      keyId,
      slots,
      held,
      seq: op.seq,
      expiresAt: now + LEASE_TTL_MS,
    });
    if (granted > 0) this.#pools.check(state, month, op.userId, op.userLimit, op.poolBand ?? 0, now);
    return result(held, granted, slots);
  }

  /**
   * How long each isolate should wait between exchanges so that all of them together stay near
   * EXCHANGES_PER_S: one object serves about a thousand calls a second, and per-request
   * admissions near a limit need the rest. Isolates seen in the last PACE_WINDOW_MS count.
   */
  pace(isolateId: string | undefined, now: number): number {
    const interval = Math.ceil((this.seen(isolateId, now) * 1000) / EXCHANGES_PER_S);
    return Math.min(MAX_EXCHANGE_INTERVAL_MS, Math.max(MIN_EXCHANGE_INTERVAL_MS, interval));
  }

  /** The isolates that called this org's ledger lately (PACE_WINDOW_MS), `isolateId` now among them. */
  seen(isolateId: string | undefined, now: number): number {
    if (isolateId !== undefined) this.#isolatesSeen.set(isolateId, now);
    if (now >= this.#nextPaceSweep) {
      this.#nextPaceSweep = now + PACE_WINDOW_MS;
      for (const [id, seen] of this.#isolatesSeen) if (seen < now - PACE_WINDOW_MS) this.#isolatesSeen.delete(id);
    }
    return this.#isolatesSeen.size;
  }
}
