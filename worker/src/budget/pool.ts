// Cold-start pools, the isolate's side (decision 0039; the ledger's side is ledger/pools.ts): a
// slice of the org's budget this isolate holds, from which it admits the request of a user who
// has no lease here, without awaiting the ledger. Each admission is reported at the next
// exchange (it becomes a reservation of its user there); until then at most the org's allowance
// per user is admitted, and never for a user on the ledger's deny list (those near a limit).
// Nothing is admitted more than POOL_TTL_MS after the start of the pool's last exchange.

import {
  POOL_TTL_MS,
  type PoolAdmission,
  type PoolOp,
  type PoolResult,
  pooledLimit,
  type Settlement,
} from "../protocol/ledger";
import type { PoolSettings, Principal } from "../protocol/policy";

const EXPIRY_MARGIN_MS = 2_000; // stop admitting this long before the ledger stops counting on it
const WANT_ALLOWANCES = 8; // hold room for at least this many allowances (tests/bench/lease_sim/scale.py)
const DEMAND_FACTOR = 3;
const KEEP_WANTS = 2; // free room beyond twice what it would ask for goes back
const RETRY_MS = 5_000; // after the ledger granted nothing (or did not answer), ask again after this
const RENEW_BELOW = 0.25; // top up early when less than this share of the last want is free

/** The org's pools as the principal's policy declares them, when this request may use one. */
export function poolFor(principal: Principal, maxConcurrent: number | null): PoolSettings | null {
  const { policy } = principal;
  const pools = policy.coldStart;
  if (pools === null) return null;
  // counted per request or per key elsewhere: a cap, a key's own limit, a spend-rate breaker
  if (maxConcurrent !== null || policy.keyLimitMicros !== null || policy.spendRates.length > 0) return null;
  return pooledLimit(policy.userLimitMicros, pools.isolates * pools.allowance) ? pools : null;
}

/** The band pools may hold of this principal's user (ledger/pools.ts counts it): 0 when none. */
export function poolBandOf(principal: Principal, maxConcurrent: number | null): number {
  const pools = principal.policy.coldStart;
  if (pools === null || maxConcurrent !== null) return 0;
  return pools.isolates * pools.allowance;
}

export class ColdPool {
  readonly id = `pool:${crypto.randomUUID()}`;
  settings: PoolSettings | null = null;
  orgBudget = 0;
  /** The month it admits for (its last admission's): its exchanges are that month's. */
  month: string | null = null;
  held = 0; // what the ledger holds for this pool (as of the last exchange, minus returns)
  seq = 0;
  usableUntil = 0;
  retryAt = 0;
  /** Worst cases admitted and not yet acknowledged as reported, in total and by user. */
  committed = 0;
  readonly byUser = new Map<string, number>();
  admitted: PoolAdmission[] = [];
  sendingAdmitted: PoolAdmission[] = [];
  pending: Settlement[] = [];
  sending: Settlement[] = [];
  demand = 0; // worst cases admitted since the last exchange
  lastWant = 0;
  toReturn = 0;
  /** A request could have used the pool but it had no room: the next exchange asks. */
  wanted = false;
  denied = new Set<string>();
  deniedVersion = -1;

  get available(): number {
    return this.held - this.committed - this.toReturn;
  }

  usable(now: number): boolean {
    return now < this.usableUntil;
  }

  /** Admit `amount` for the principal from the pool, locally; false when it may not. */
  tryAdmit(
    principal: Principal,
    maxConcurrent: number | null,
    month: string,
    requestId: string,
    amount: number,
    now: number,
  ): boolean {
    const settings = poolFor(principal, maxConcurrent);
    if (settings === null) return false;
    if (month !== this.month) {
      // a new month: what it holds is the last month's (the ledger lets it go)
      this.month = month;
      this.held = 0;
      this.usableUntil = 0;
      this.deniedVersion = -1;
      this.denied.clear();
    }
    this.settings = settings;
    this.orgBudget = principal.policy.orgBudgetMicros;
    const { userId } = principal;
    if (amount > settings.allowance || this.denied.has(userId)) return false;
    if ((this.byUser.get(userId) ?? 0) + amount > settings.allowance) return false;
    if (!this.usable(now) || amount > this.available) {
      if (now >= this.retryAt) this.wanted = true;
      return false;
    }
    this.committed += amount;
    this.byUser.set(userId, (this.byUser.get(userId) ?? 0) + amount);
    this.demand += amount;
    const { policy } = principal;
    this.admitted.push({
      requestId,
      userId,
      keyId: principal.keyId,
      amount,
      userLimit: policy.userLimitMicros,
      alerts: policy.alerts,
    });
    return true;
  }

  /** A pooled request's outcome, for the next exchange (null: released, nothing to record). */
  settle(record: Settlement | null): void {
    if (record) this.pending.push(record);
  }

  /** Reports and settlements waiting for an exchange. */
  get queued(): number {
    return this.admitted.length + this.pending.length;
  }

  /** Whether it should exchange before it runs out of time or room (while it is used). */
  needsRenewal(now: number): boolean {
    if (this.settings === null || this.demand === 0) return false;
    return this.usableUntil - now < POOL_TTL_MS / 2 || this.available < this.lastWant * RENEW_BELOW;
  }

  /** The pool's part of an exchange, or null when it has nothing to send, return or ask;
   * `resend`: the last exchange went unanswered, what it carried goes again as it was. */
  op(now: number, resend: boolean): PoolOp | null {
    const settings = this.settings;
    if (settings === null) return null;
    const ask = this.wanted || this.needsRenewal(now);
    const carries = resend ? this.sendingAdmitted.length + this.sending.length : this.queued;
    if (carries === 0 && this.toReturn === 0 && !ask) return null;
    const wanted = Math.max(WANT_ALLOWANCES * settings.allowance, DEMAND_FACTOR * this.demand);
    if (this.usable(now)) this.toReturn += Math.max(0, this.available - KEEP_WANTS * wanted);
    if (!resend) {
      this.sendingAdmitted = this.admitted;
      this.admitted = [];
      this.sending = this.pending;
      this.pending = [];
    }
    this.held -= this.toReturn; // not counted on from here on
    const op: PoolOp = {
      poolId: this.id,
      seq: ++this.seq,
      admitted: this.sendingAdmitted,
      settlements: this.sending,
      returned: this.toReturn,
      want: Math.max(0, wanted - Math.max(0, this.available)),
      orgBudget: this.orgBudget,
      deniedVersion: this.deniedVersion,
      ...settings,
    };
    this.toReturn = 0;
    this.demand = 0;
    this.wanted = false;
    this.lastWant = wanted;
    return op;
  }

  /** The ledger's answer to `op` (started at `startedAt`), or null when it did not come. */
  answered(op: PoolOp, result: PoolResult | null, startedAt: number): void {
    if (result) {
      this.held = result.held;
      for (const a of op.admitted) this.#reported(a);
      this.usableUntil = result.held > 0 ? startedAt + result.ttlMs - EXPIRY_MARGIN_MS : 0;
      if (result.denied) this.denied = new Set(result.denied);
      this.deniedVersion = result.deniedVersion;
      if (op.want > 0 && result.granted === 0) this.retryAt = startedAt + RETRY_MS;
      this.sendingAdmitted = [];
      this.sending = [];
    } else {
      // Undelivered: the ledger may or may not have applied it. Admit nothing more from this
      // pool until it answers; what it carried goes again, in the same batch (applied once).
      this.held = 0;
      this.usableUntil = 0;
      this.retryAt = startedAt + RETRY_MS;
    }
  }

  /** What the last exchange carried, back in the queues: an older ledger (a deploy in progress)
   * answered without taking the pool's part, so it goes again in a new batch. */
  requeue(): void {
    this.admitted.unshift(...this.sendingAdmitted);
    this.pending.unshift(...this.sending);
    this.sendingAdmitted = [];
    this.sending = [];
  }

  /** Its settlements out of the exchanges (sent and unanswered, and queued), the ledger not
   * taking them; the reports go with them (their requests are settled by their records). */
  takeSettlements(): { sent: Settlement[]; queued: Settlement[] } {
    const taken = { sent: this.sending, queued: this.pending };
    for (const a of [...this.sendingAdmitted, ...this.admitted]) this.#reported(a);
    this.sendingAdmitted = [];
    this.admitted = [];
    this.sending = [];
    this.pending = [];
    return taken;
  }

  #reported(a: PoolAdmission): void {
    this.committed -= a.amount; // now a reservation of its user at the ledger
    const left = (this.byUser.get(a.userId) ?? 0) - a.amount;
    if (left > 0) this.byUser.set(a.userId, left);
    else this.byUser.delete(a.userId);
  }
}
