// Budget leases (docs/decisions/0018): an isolate holds, per user and month, a slice of the
// user's and the org's remaining budget that the org's UsageLedger has set aside for it, and
// admits requests against it locally: a warm request awaits no ledger call. Real costs go back
// in batches, one exchange per org at most every FLUSH_MS, which also renews the slices.
//
// workerd cancels a request's continuations when a promise it awaits is resolved from another
// request's context, and a timer dies with the request that set it. So no request awaits
// another's promise and nothing runs on a timer: each request polls its own state, and the
// request whose settlement is due runs the exchange itself (as carry.ts does).
//
// Exactness: the ledger only ever lowers a lease by costs it has recorded and by what the
// isolate returned (which the isolate stopped counting on before sending), and grants only
// from headroom beside every other hold. This isolate never admits more than the lease's
// held - in flight - unacknowledged costs. So recorded usage + all holds <= the limit, as with
// per-request reservations, and each request still reserves its worst case.

import { isolateIdOf, outboxFor } from "../facts/outbox";
import type { Env } from "../protocol/env";
import {
  type Figures,
  LEASE_TTL_MS,
  type LeaseOp,
  type LeaseResult,
  type LedgerRpc,
  type PoolOp,
  type PoolResult,
  type Settlement,
} from "../protocol/ledger";
import type { MetricsBatch } from "../protocol/metrics";
import type { AlertThresholds } from "../protocol/policy";
import { ColdPool } from "./pool";

const FLUSH_MS = 1_000; // settlements wait this long for their batch, or what the ledger asks
const POLL_MS = 10;
const HEARTBEAT_MS = LEASE_TTL_MS / 3; // a lease with requests in flight is renewed this often
const EXPIRY_MARGIN_MS = 5_000; // stop counting on a lease this long before the ledger may drop it
const MAX_BATCH = 256; // settlements per exchange: a full batch flushes at once
const MIN_GRANT_REQUESTS = 4;
const SPARE_SLOTS_SHARE = 8; // spare open-request slots: an eighth of the busiest count // a slice smaller than 4 worst cases is not worth holding
const WANT_REQUESTS = 8; // ask for room for at least this many worst cases (tests/bench/lease_sim/scale.py)
const DEMAND_FACTOR = 3;
const KEEP_WANTS = 2; // free room beyond twice what it would ask for goes back (no hoarding)
const RENEW_BELOW = 0.25; // renew early when less than this share of the last want is free
const EXCHANGE_TIMEOUT_MS = 3_000;
const RETRY_GRANT_MS = 5_000; // after the ledger granted nothing, admit per request this long
const FLUSHER_MAX_MS = 20_000; // a flusher hands over before waitUntil's 30 s run out
const UNDELIVERED_MS = 10_000; // settlements the ledger has not taken this long go per request

const NO_ALERTS: AlertThresholds = { user: [], org: [] };

/** What a lease is within: its user's limit, its org's budget, and its key's own limit when the
 * key has one (then the lease is that key's: its holds count against the key too). */
export interface LeaseLimits {
  user: number;
  org: number;
  key: { id: string; limit: number } | null;
  /** The user's cap on open requests (its rate tier's): the lease also holds slots of it. */
  maxConcurrent: number | null;
  /** What cold-start pools may admit for the user unreported (pool.ts): the ledger keeps it free. */
  poolBand: number;
}

interface Pending {
  record: Settlement;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export class Lease {
  readonly id: string;
  held = 0; // what the ledger holds for this lease (as of the last exchange, minus returns)
  inflight = 0; // worst cases admitted and not settled
  pending: Pending[] = [];
  pendingCost = 0;
  sending: Pending[] = [];
  sendingCost = 0;
  seq = 0;
  usableUntil = 0; // local clock: after this, the ledger may have let the lease go
  figures: Figures | null = null; // the ledger's figures at the last exchange (for headers)
  lastWorst = 0;
  demand = 0; // worst cases admitted since the last exchange
  lastWant = 0;
  waiting = 0; // requests waiting for this lease to be taken or grown
  exhaustedUntil = 0; // the ledger granted nothing: admit per request until then
  toReturn = 0;
  /** Open-request slots the ledger holds for this lease (a capped user), and requests open on
   * it; since the last exchange, the most open at once and how many were admitted (0038). */
  slots = 0;
  open = 0;
  peakOpen = 0;
  admitted = 0;
  /** The ledger asked for spare slots back (a request of this user was refused for its cap). */
  pressed = false;
  /** The key's budget alert thresholds, sent with each exchange (the ledger raises alerts). */
  alerts: AlertThresholds = NO_ALERTS;

  constructor(
    readonly orgId: string,
    readonly userId: string,
    readonly month: string,
    readonly limits: LeaseLimits,
  ) {
    this.id = `lease:${crypto.randomUUID()}`;
  }

  get available(): number {
    return this.held - this.inflight - this.pendingCost - this.sendingCost - this.toReturn;
  }

  usable(now: number): boolean {
    return now < this.usableUntil;
  }

  get exhausted(): boolean {
    return this.exhaustedUntil > 0;
  }

  /** Whether its user's cap leaves this lease no free slot for another request. */
  get full(): boolean {
    return this.limits.maxConcurrent !== null && this.open >= this.slots;
  }

  /** The slots it asks for: those it holds, or, when more, the most it had open since the last
   * exchange (or what is open and waiting now) and an eighth more as spares while requests come
   * (a closed-loop client sends its next before this isolate has settled its last). */
  get wantSlots(): number {
    const cap = this.limits.maxConcurrent ?? 0;
    // asked to give spares back: what is open and waiting, nothing more
    if (this.pressed) return Math.min(cap, this.open + this.waiting);
    const busiest = Math.max(this.peakOpen, this.open + this.waiting);
    const spare = this.admitted > 0 ? Math.max(1, Math.ceil(busiest / SPARE_SLOTS_SHARE)) : 0;
    // unpressed, a lease keeps its slots: a burst after a lull finds them (decision 0038)
    return Math.min(cap, Math.max(this.slots, busiest + spare));
  }

  /** Costs this isolate settled that the ledger's figures do not show yet. */
  get unconfirmed(): number {
    return this.pendingCost + this.sendingCost;
  }
}

/** Settlements the ledger has not taken, as batches (each applied once, under its id). */
export interface Batch {
  batch: string;
  records: Settlement[];
}

/** Where batches go that exchanges could not deliver (per batch to the ledger, then KV: quota.ts). */
export type Fallback = (batches: Batch[]) => Promise<void>;

/** What the ledger answered an exchange. */
interface Answer {
  leases: LeaseResult[];
  pool: PoolResult | null;
  nextExchangeMs: number;
}

/** One isolate's leases for one org, and the single exchange in flight for them. */
class OrgLeases {
  readonly leases = new Map<string, Lease>(); // `${userId}|${month}` → lease
  /** The ledger's pacing: wait this long between exchanges (it grows with the fleet). */
  interval = FLUSH_MS;
  /** This isolate's cold-start pool for the org (pool.ts, decision 0039). */
  readonly pool = new ColdPool();
  private retired: Lease[] = []; // replaced leases still settling or returning
  private exchanging = false;
  private flushing = false; // a request is running this org's batches
  private undeliveredSince: number | null = null; // since when exchanges have failed
  /** The batch of the last exchange, when it went unanswered: sent again whole, under its id. */
  #resend: string | null = null;
  #resendMonth: string | null = null;
  #batches = 0;

  constructor(
    readonly orgId: string,
    readonly isolateId: string,
  ) {}

  lease(userId: string, month: string, limits: LeaseLimits, now: number): Lease {
    const key = limits.key ? `${userId}|${limits.key.id}|${month}` : `${userId}|${month}`;
    let lease = this.leases.get(key);
    const changed =
      lease !== undefined &&
      (lease.limits.user !== limits.user ||
        lease.limits.org !== limits.org ||
        lease.limits.key?.limit !== limits.key?.limit ||
        lease.limits.maxConcurrent !== limits.maxConcurrent ||
        lease.limits.poolBand !== limits.poolBand);
    if (lease && (changed || (lease.exhausted && now >= lease.exhaustedUntil))) {
      // A limit changed in the stack (the key's policy says so), or it is time to ask for a
      // grant again: the old lease gives back what it has free and finishes what it has in
      // flight; a new one starts.
      this.exhaust(lease, now);
      this.retired.push(lease);
      this.leases.delete(key);
      lease = undefined;
    }
    if (!lease) {
      lease = new Lease(this.orgId, userId, month, limits);
      this.leases.set(key, lease);
    }
    return lease;
  }

  /** Admit `amount` against the lease, locally; false when it has not enough free. */
  tryAdmit(lease: Lease, amount: number, now: number): boolean {
    if (lease.exhausted || !lease.usable(now) || amount > lease.available || lease.full) return false;
    lease.open += 1;
    lease.peakOpen = Math.max(lease.peakOpen, lease.open);
    lease.admitted += 1;
    lease.inflight += amount;
    lease.demand += amount;
    lease.lastWorst = amount;
    return true;
  }

  /** No grant near a limit: admit per request for a while, the lease's free part given back. */
  exhaust(lease: Lease, now: number): void {
    lease.exhaustedUntil = Math.max(lease.exhaustedUntil, now + RETRY_GRANT_MS);
    lease.toReturn += Math.max(0, lease.available);
  }

  all(): Lease[] {
    return [...this.leases.values(), ...this.retired];
  }

  /** Whether an exchange is in flight (wait for it rather than starting another). */
  get busy(): boolean {
    return this.exchanging;
  }

  /** Leases with something to give back (a per-request admission waits for that first). */
  get returning(): boolean {
    return [...this.leases.values(), ...this.retired].some((l) => l.toReturn > 0);
  }

  /** Costs this isolate settled for the org that the ledger's figures do not show yet. */
  get unconfirmed(): number {
    let sum = 0;
    for (const lease of this.leases.values()) sum += lease.unconfirmed;
    for (const lease of this.retired) sum += lease.unconfirmed;
    return sum;
  }

  needsRenewal(lease: Lease): boolean {
    return !lease.exhausted && lease.available < lease.lastWant * RENEW_BELOW;
  }

  /**
   * A settled request: out of flight, its record into the next batch. The request that opens a
   * batch stays (in its waitUntil, so the isolate lives) until the batches are in, running the
   * exchanges; the others return at once. A batch the ledger did not take is sent again with
   * the next (the ledger applies a settlement once); records still not taken after
   * UNDELIVERED_MS go to `fallback` (as batches, then KV, quota.ts).
   */
  async settle(lease: Lease, amount: number, record: Settlement | null, env: Env, fallback: Fallback): Promise<void> {
    lease.inflight -= amount;
    lease.open -= 1; // its slot is free for the next request on this lease
    // released: nothing to record (a winding-down lease returns what it frees at the next exchange)
    if (record === null) return;
    lease.pending.push({ record });
    lease.pendingCost += record.cost;
    await this.flush(env, fallback);
  }

  /** A request admitted from the pool ended: its record into the pool's next batch. */
  async settlePooled(record: Settlement | null, env: Env, fallback: Fallback) {
    this.pool.settle(record);
    await this.flush(env, fallback);
  }

  /**
   * Run this org's batches until none is left, unless another request is running them (it
   * carries what was just queued).
   */
  async flush(env: Env, fallback: Fallback): Promise<void> {
    if (this.flushing) return; // this batch's flusher carries it
    this.flushing = true;
    try {
      const started = Date.now();
      // and, when the ledger pressed for them, one more round gives back the slots no longer used
      while (this.queued() > 0 || this.spareSlots()) {
        const full = this.queued() >= MAX_BATCH;
        // the last round (near waitUntil's limit) sends at once, then hands over
        const last = Date.now() - started > FLUSHER_MAX_MS;
        if (!full && !last) await sleep(this.interval);
        await this.exchange(env);
        const stuck = this.undeliveredSince !== null && Date.now() - this.undeliveredSince > UNDELIVERED_MS;
        if (stuck) await fallback(this.takeQueued());
        if (last) break;
      }
    } finally {
      this.flushing = false;
    }
  }

  /** Whether a lease the ledger pressed holds more open-request slots than it would ask for. */
  private spareSlots(): boolean {
    return [...this.leases.values()].some((l) => l.pressed && l.usableUntil > Date.now() && l.slots > l.wantSlots);
  }

  /** Every queued settlement, out of the exchanges, as batches: the one sent and not answered
   * (under its id), and the rest under a new one (the ledger is not taking exchanges). */
  private takeQueued(): Batch[] {
    const sent: Settlement[] = [];
    const queued: Settlement[] = [];
    for (const lease of this.all()) {
      sent.push(...lease.sending.map((p) => p.record));
      queued.push(...lease.pending.map((p) => p.record));
      lease.sending = [];
      lease.sendingCost = 0;
      lease.pending = [];
      lease.pendingCost = 0;
    }
    // the pool's settlements go; its reports with them (a report's request is settled by its record)
    const pool = this.pool.takeSettlements();
    sent.push(...pool.sent);
    queued.push(...pool.queued);
    const batches: Batch[] = [];
    if (this.#resend !== null && sent.length > 0) batches.push({ batch: this.#resend, records: sent });
    if (queued.length > 0) batches.push({ batch: this.#newBatch(), records: queued });
    this.#resend = null;
    this.#resendMonth = null;
    this.undeliveredSince = null;
    return batches;
  }

  #newBatch(): string {
    this.#batches += 1;
    return `batch:${this.isolateId}:${this.orgId}:${this.#batches}`;
  }

  /** Whether a request is running this org's batches. */
  get isFlushing(): boolean {
    return this.flushing;
  }

  private queued(): number {
    let n = this.pool.queued;
    for (const lease of this.all()) n += lease.pending.length;
    // an unanswered batch still to send again
    if (this.#resend !== null) {
      n += this.pool.sendingAdmitted.length + this.pool.sending.length;
      for (const lease of this.all()) n += lease.sending.length;
    }
    return n;
  }

  /**
   * One exchange for every lease with something to send, return, renew or keep alive; one at a
   * time per org (a caller polls until it may run). Never throws.
   */
  async exchange(env: Env, want: Lease | null = null, wantAmount = 0): Promise<void> {
    while (this.exchanging) await sleep(POLL_MS);
    this.exchanging = true;
    try {
      await this.#exchangeOnce(env, want, wantAmount);
    } finally {
      this.exchanging = false;
    }
  }

  /**
   * Keep a lease alive while a long request (a stream) runs on it: renew it before the ledger
   * may drop it, from the request's own context, until `done`.
   */
  async keepAlive(lease: Lease, env: Env, done: Promise<unknown>): Promise<void> {
    let finished = false;
    const ended = done.then(
      () => {
        finished = true;
      },
      () => {
        finished = true;
      },
    );
    while (!finished) {
      await Promise.race([ended, sleep(HEARTBEAT_MS)]);
      if (!finished && lease.usableUntil - Date.now() < HEARTBEAT_MS * 2 && !this.exchanging) {
        await this.exchange(env);
      }
    }
  }

  async #exchangeOnce(env: Env, want: Lease | null, wantAmount: number): Promise<void> {
    const now = Date.now();
    const ops: { lease: Lease; op: LeaseOp }[] = [];
    // an unanswered batch goes again first, whole: its month's exchange
    const resend = this.#resend;
    const month =
      this.#resendMonth ?? want?.month ?? this.leases.values().next().value?.month ?? this.pool.month ?? undefined;
    for (const lease of [...this.retired, ...this.leases.values()]) {
      if (lease.month !== (month ?? lease.month)) continue; // one month per call; others next time
      if (lease.exhausted) lease.toReturn += Math.max(0, lease.available); // winding down
      const renew =
        lease === want ||
        lease.waiting > 0 ||
        (lease.inflight > 0 && lease.usableUntil - now < HEARTBEAT_MS * 2) ||
        lease.slots > lease.wantSlots; // spare slots go back once its requests have ended
      const early = this.needsRenewal(lease) && lease.demand > 0;
      const worst = Math.max(lease.lastWorst, lease === want ? wantAmount : 0);
      // room for what is in flight and three times what came in since the last exchange
      const wanted = lease.exhausted
        ? 0
        : Math.max(WANT_REQUESTS * worst, lease.inflight + DEMAND_FACTOR * lease.demand);
      // a quiet lease gives back what it holds beyond what it would ask for, twice over
      const surplus = lease.exhausted ? 0 : Math.max(0, lease.available - KEEP_WANTS * wanted);
      if (lease.usable(now)) lease.toReturn += surplus;
      const settling = resend === null ? lease.pending.length > 0 : lease.sending.length > 0;
      if (!settling && lease.toReturn === 0 && !renew && !early) continue;
      if (resend === null) {
        lease.sending = lease.pending.splice(0, MAX_BATCH);
        lease.sendingCost = lease.sending.reduce((sum, p) => sum + p.record.cost, 0);
        lease.pendingCost -= lease.sendingCost;
      }
      lease.held -= lease.toReturn; // not counted on from here on
      const op: LeaseOp = {
        leaseId: lease.id,
        userId: lease.userId,
        seq: ++lease.seq,
        settlements: lease.sending.map((p) => p.record),
        returned: lease.toReturn,
        want: Math.max(0, wanted - Math.max(0, lease.available)),
        minGrant: MIN_GRANT_REQUESTS * worst,
        userLimit: lease.limits.user,
        orgBudget: lease.limits.org,
        ...(lease.limits.maxConcurrent === null
          ? {}
          : { maxConcurrent: lease.limits.maxConcurrent, open: lease.open, wantSlots: lease.wantSlots }),
        ...(lease.limits.key ? { keyId: lease.limits.key.id, keyLimit: lease.limits.key.limit } : {}),
        ...(lease.limits.poolBand > 0 ? { poolBand: lease.limits.poolBand } : {}),
        alerts: lease.alerts,
      };
      lease.toReturn = 0;
      lease.lastWant = wanted;
      lease.demand = 0;
      lease.admitted = 0;
      lease.peakOpen = lease.open;
      ops.push({ lease, op });
    }
    const poolOp = month !== undefined && month === this.pool.month ? this.pool.op(now, resend !== null) : null;
    if ((ops.length === 0 && poolOp === null) || month === undefined) return;
    // what this exchange settles and reports is one batch: one row at the ledger, applied once
    const settles =
      ops.some((o) => o.op.settlements.length > 0) ||
      (poolOp !== null && poolOp.admitted.length + poolOp.settlements.length > 0);
    const batch = settles ? (resend ?? this.#newBatch()) : null;
    const answer = await this.#call(
      env,
      month,
      ops.map((o) => o.op),
      poolOp,
      batch,
    );
    this.#resend = answer === null ? batch : null;
    this.#resendMonth = this.#resend === null ? null : month;
    if (poolOp) {
      if (answer && !answer.pool) this.pool.requeue(); // an older ledger (a deploy in progress) took no pool
      this.pool.answered(poolOp, answer?.pool ?? null, now);
    }
    const results = answer?.leases ?? null;
    if (answer) this.undeliveredSince = null;
    else this.undeliveredSince ??= now;
    // ±10 %: isolates paced alike must not fall into step
    if (answer) this.interval = Math.round(answer.nextExchangeMs * (0.9 + 0.2 * Math.random()));
    const byId = new Map((results ?? []).map((r) => [r.leaseId, r]));
    for (const { lease, op } of ops) {
      const result = byId.get(op.leaseId);
      if (result) {
        lease.held = result.held;
        lease.slots = result.slots ?? 0; // an older ledger (a deploy in progress) holds none
        lease.pressed = result.slotPressure === true;
        lease.usableUntil = now + result.ttlMs - EXPIRY_MARGIN_MS;
        lease.figures = result;
        if (op.want > 0 && result.granted === 0 && lease.available < op.minGrant) this.exhaust(lease, now);
      } else {
        // Undelivered: the ledger may or may not have applied it. Stop counting on this lease
        // (its hold expires by itself); its settlements go again, in the same batch, next time.
        lease.held = 0;
        lease.slots = 0;
        lease.usableUntil = 0;
        lease.toReturn = 0;
        lease.exhaustedUntil = now + RETRY_GRANT_MS;
      }
      if (answer) {
        lease.sending = [];
        lease.sendingCost = 0;
      }
    }
    const busy = (l: Lease) => l.inflight > 0 || l.pending.length > 0 || l.sending.length > 0;
    this.retired = this.retired.filter((l) => busy(l) || l.toReturn > 0);
    for (const [key, lease] of this.leases) {
      const idle = !busy(lease) && lease.open === 0 && !lease.exhausted;
      if (idle && (lease.held <= 0 || !lease.usable(Date.now()))) this.leases.delete(key);
    }
  }

  async #call(
    env: Env,
    month: string,
    leases: LeaseOp[],
    pool: PoolOp | null,
    batch: string | null,
  ): Promise<Answer | null> {
    // requests' facts for the metrics ride along (facts.ts); undelivered ones go back
    const outbox = outboxFor(this.isolateId, this.orgId);
    const metrics = outbox.carry();
    const answer = await this.#send(env, month, leases, pool, batch, metrics);
    if (answer === null) outbox.giveBack(metrics);
    else outbox.delivered(metrics);
    return answer;
  }

  async #send(
    env: Env,
    month: string,
    leases: LeaseOp[],
    pool: PoolOp | null,
    batch: string | null,
    metrics: MetricsBatch[],
  ): Promise<Answer | null> {
    for (let attempt = 0; attempt < 2; attempt++) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      try {
        const timeout = new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error("lease exchange timed out")), EXCHANGE_TIMEOUT_MS);
        });
        const ledger = env.USAGE_LEDGER.get(env.USAGE_LEDGER.idFromName(this.orgId)) as DurableObjectStub<LedgerRpc>;
        const answer = await Promise.race([
          ledger.exchange({
            month,
            orgId: this.orgId,
            isolateId: this.isolateId,
            leases,
            pool,
            metrics,
            ...(batch === null ? {} : { batch }),
          }),
          timeout,
        ]);
        return { leases: answer.leases, pool: answer.pool ?? null, nextExchangeMs: answer.nextExchangeMs };
      } catch (err) {
        if (attempt === 1) {
          console.error(JSON.stringify({ event: "lease_exchange_failed", orgId: this.orgId, error: String(err) }));
        }
      } finally {
        if (timer !== undefined) clearTimeout(timer);
      }
    }
    return null;
  }

  /** Wait for an exchange in flight (e.g. one returning a slice before a per-request admission). */
  async settled(): Promise<void> {
    while (this.exchanging) await sleep(POLL_MS);
  }
}

/** The lease books of this isolate: one in production; several in test renders (x-test-isolate). */
const books = new Map<string, Map<string, OrgLeases>>();

export function orgLeases(book: string, orgId: string): OrgLeases {
  let orgs = books.get(book);
  if (!orgs) {
    orgs = new Map();
    books.set(book, orgs);
  }
  let org = orgs.get(orgId);
  if (!org) {
    org = new OrgLeases(orgId, isolateIdOf(book));
    orgs.set(orgId, org);
  }
  return org;
}

/** Test renders only: settlements (and pools' reports) not yet acknowledged, and requests in
 * flight, on leases. */
export function leaseActivity(): { unacknowledged: number; inflight: number; leases: number } {
  const out = { unacknowledged: 0, inflight: 0, leases: 0 };
  for (const orgs of books.values()) {
    for (const org of orgs.values()) {
      // a pool's reports and settlements not yet answered
      out.unacknowledged += org.pool.queued + org.pool.sendingAdmitted.length + org.pool.sending.length;
      for (const lease of org.all()) {
        out.unacknowledged += lease.pending.length + lease.sending.length;
        out.inflight += lease.inflight > 0 ? 1 : 0;
        out.leases += 1;
      }
    }
  }
  return out;
}

/** Test renders only: an isolate that dies, its leases never returned. */
export function forgetBook(book: string): number {
  const orgs = books.get(book);
  books.delete(book);
  return orgs ? [...orgs.values()].reduce((n, org) => n + org.leases.size, 0) : 0;
}

export type { OrgLeases };
