// UsageLedger: one SQLite-backed Durable Object per organization, the single writer of that
// org's and its users' counters. KV cannot hold counters (one write per second per key, no
// atomic increment, eventual consistency); a Durable Object runs one request at a time, and
// each method below does all its SQL without awaiting, so every call is atomic.
//
// This class owns the RPC surface (protocol/ledger.ts) and the one alarm; each capability owns
// its tables in a module of its own: usage rows (usage-rows.ts), holds and the month mirror
// (holds.ts), admission (admission.ts), settlement (settlement.ts), leases (leases.ts), alerts
// (alerts.ts), daily metrics rows (daily-metrics.ts), background runs (runs.ts), stored
// objects (stored-objects.ts) and pruning (pruning.ts).

import { DurableObject } from "cloudflare:workers";
import type { Env } from "../protocol/env";
import type {
  Admission,
  AdmitResult,
  AlertRow,
  Exchange,
  ExchangeResult,
  Figures,
  LedgerRpc,
  MetricsGroups,
  MonthUsage,
  Settlement,
  UsageRow,
  UserUsage,
  WatchedRun,
} from "../protocol/ledger";
import { POOL_HOLDER } from "../protocol/ledger";
import type { MetricsBatch } from "../protocol/metrics";
import type { SpendRateLimit } from "../protocol/policy";
import { Admissions } from "./admission";
import { Alerts } from "./alerts";
import { DailyMetrics } from "./daily-metrics";
import { Months } from "./holds";
import { Leases } from "./leases";
import { Pools } from "./pools";
import { Pruning } from "./pruning";
import { type RunPoller, WatchedRuns } from "./runs";
import { Settlements } from "./settlement";
import { SpendRates } from "./spend-rates";
import { keepStored, STORED_SCHEMA, storedOwners } from "./stored-objects";
import { createUsage, keySubject, ORG, resetUserUsage, userSubject } from "./usage-rows";

let pollRun: RunPoller | null = null;

export class UsageLedger extends DurableObject<Env> implements LedgerRpc {
  private readonly sql: SqlStorage;
  private readonly months: Months;
  private readonly alertBook: Alerts;
  private readonly settlements: Settlements;
  private readonly admissions: Admissions;
  private readonly leases: Leases;
  private readonly pools: Pools;
  private readonly daily: DailyMetrics;
  private readonly runs: WatchedRuns;
  private readonly rates: SpendRates;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    createUsage(this.sql);
    this.sql.exec(STORED_SCHEMA);
    this.months = new Months(this.sql);
    this.rates = new SpendRates(this.sql);
    // a reservation that expires unsettled frees what it held in its spend-rate windows
    this.months.expired = (held, now) => {
      if (held.rates) this.rates.release(held.rates, held.amount, null, now);
    };
    this.alertBook = new Alerts(this.sql, this.months, (at) => void ctx.storage.setAlarm(at));
    this.settlements = new Settlements(this.sql, this.months, new Pruning(this.sql), this.alertBook, this.rates);
    this.pools = new Pools(this.sql, this.months, this.settlements);
    this.admissions = new Admissions(this.months, this.settlements, this.alertBook, this.rates, this.pools);
    this.leases = new Leases(this.months, this.settlements, this.pools);
    this.daily = new DailyMetrics(this.sql, this.settlements);
    this.runs = new WatchedRuns(this.sql, this.settlements, this.admissions);
  }

  /** The poll of background runs: set once by the entry module (index.ts). */
  static watchRunsWith(poller: RunPoller): void {
    pollRun = poller;
  }

  /** Deliver the alerts that are due and poll the runs that are; then sleep until the next. */
  override async alarm(): Promise<void> {
    if (pollRun !== null) await this.runs.pollDue(this.env, pollRun, Date.now());
    const nextAlert = await this.alertBook.deliverDue(this.env);
    const next = Math.min(nextAlert ?? Number.POSITIVE_INFINITY, this.runs.nextPollAt() ?? Number.POSITIVE_INFINITY);
    if (Number.isFinite(next)) await this.ctx.storage.setAlarm(Math.max(next, Date.now()));
  }

  /**
   * Reserve `amount` µUSD for one request against the user's limit and the org's budget, or
   * refuse naming the limit that would be exceeded (admission.ts).
   */
  admit(admission: Admission): AdmitResult {
    return this.admissions.admit(admission);
  }

  /** A request's real cost in place of its reservation, once per request id (settlement.ts). */
  settle(record: Settlement): Figures {
    return this.settlements.settle(record);
  }

  /** A batch of settlements an exchange could not deliver, once per batch id (settlement.ts). */
  settleBatch({ batch, records, now = Date.now() }: { batch: string; records: Settlement[]; now?: number }) {
    return { applied: this.settlements.settleBatch(batch, records, now) };
  }

  /** Rows remembering applied settlements and batches (test renders: what a batch costs). */
  settledRows(): number {
    return this.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM settled").one().n;
  }

  /**
   * An isolate's lease exchange for one org and month (leases.ts): its requests' metrics
   * counted, each lease's settlements recorded and its hold renewed, then, optionally, one
   * per-request admission. One atomic step, like admit().
   */
  exchange({
    month,
    orgId,
    isolateId,
    leases,
    pool = null,
    batch,
    admission = null,
    metrics = [],
    now = Date.now(),
  }: Exchange): ExchangeResult {
    this.daily.count(metrics, now);
    const state = this.months.get(month);
    this.months.sweep(now);
    // the exchange's settlements (and pool reports) as one batch: one row, applied once
    const fresh = batch === undefined ? null : this.settlements.claimOnce(batch, now);
    const results = leases.map((op) => {
      const key =
        op.keyId !== undefined && typeof op.keyLimit === "number" ? { keyId: op.keyId, keyLimit: op.keyLimit } : null;
      this.alertBook.learn(orgId, op.userId, op.userLimit, op.orgBudget, op.alerts, key);
      return this.leases.exchange(state, month, op, now, fresh);
    });
    for (const a of pool?.admitted ?? []) {
      this.alertBook.learn(orgId, a.userId, a.userLimit, pool?.orgBudget ?? 0, a.alerts, null);
    }
    const seen = { orgId: orgId ?? "", isolates: this.leases.seen(isolateId, now) };
    const pooled = pool ? this.pools.exchange(state, month, pool, now, fresh !== false, seen) : null;
    this.alertBook.check(
      month,
      [
        ...leases.map((op) => ({ userId: op.userId, keyId: op.keyId })),
        ...(pool?.settlements ?? []).map((s) => ({ userId: s.userId, keyId: s.keyId })),
      ],
      now,
    );
    return {
      leases: results,
      pool: pooled,
      admission: admission ? this.admit({ ...admission, now }) : null,
      nextExchangeMs: this.leases.pace(isolateId, now),
    };
  }

  /** Requests' metrics into the day's rows, each batch once (daily-metrics.ts). */
  record({ batches, isolateId, now = Date.now() }: { batches: MetricsBatch[]; isolateId?: string; now?: number }) {
    this.daily.count(batches, now);
    return {
      counted: batches.reduce((n, batch) => n + batch.requests, 0),
      nextExchangeMs: this.leases.pace(isolateId, now),
    };
  }

  /** Watch a background run to its end (runs.ts). */
  async watchRun(run: WatchedRun): Promise<void> {
    const next = this.runs.watch(run, Date.now());
    const set = await this.ctx.storage.getAlarm();
    if (set === null || set > next) await this.ctx.storage.setAlarm(next);
  }

  /** The month's alerts, newest first. */
  alerts({ month }: { month: string }): AlertRow[] {
    return this.alertBook.list(month);
  }

  /** The metrics of the days from `from` to `to`, summed by day, user, model and route. */
  metrics({ from, to, userId }: { from: string; to: string; userId?: string | null }): MetricsGroups {
    return this.daily.read(from, to, userId);
  }

  /** The org row and every user row of a month, with the open holds as figures. */
  usage({ month, now = Date.now() }: { month: string; now?: number }): MonthUsage {
    const state = this.months.get(month);
    this.months.sweep(now);
    const users: Record<string, UsageRow> = {};
    const keys: MonthUsage["keys"] = {};
    for (const [subject, row] of [...state.rows].sort(([a], [b]) => a.localeCompare(b))) {
      if (subject.startsWith("user:")) users[subject.slice(5)] = row;
      const [kind, userId, keyId] = subject.split(":");
      if (kind === "key" && userId && keyId) keys[keyId] = { ...row, userId };
    }
    return {
      month,
      org: state.row(ORG),
      users,
      keys,
      openReservations: state.reservations.size,
      reservedMicros: state.reservedTotal,
      leases: [...state.leases.values()].filter((l) => l.userId !== POOL_HOLDER).length,
      leasedMicros: state.leasedTotal,
      pools: [...state.leases.values()].filter((l) => l.userId === POOL_HOLDER).length,
      pooledMicros: state.leasedByUser.get(POOL_HOLDER) ?? 0,
    };
  }

  /** One user's row of a month, and one of its keys' when named. */
  userUsage({
    month,
    userId,
    keyId,
    rates = [],
    now = Date.now(),
  }: {
    month: string;
    userId: string;
    keyId?: string;
    rates?: readonly SpendRateLimit[];
    now?: number;
  }): UserUsage {
    const state = this.months.get(month);
    this.months.sweep(now);
    const key = keyId === undefined ? null : keySubject(userId, keyId);
    return {
      month,
      ...state.row(userSubject(userId)),
      reservedMicros: state.reservedByUser.get(userId) ?? 0,
      leasedMicros: state.leasedByUser.get(userId) ?? 0,
      ...(key ? { key: { ...state.row(key), reservedMicros: state.heldByKey.get(key) ?? 0 } } : {}),
      ...(rates.length > 0 ? { rates: this.rates.figures(rates, userId, keyId, now) } : {}),
    };
  }

  /**
   * Give a user their monthly allowance back: their usage restarts at zero. The org's total is
   * real spend and stays; the previous figure is kept in quota_resets for audit.
   */
  resetUser({ month, userId, now = Date.now() }: { month: string; userId: string; now?: number }) {
    const state = this.months.get(month);
    const subject = userSubject(userId);
    const previous = state.row(subject);
    resetUserUsage(this.sql, month, userId, previous.usedMicros, now);
    if (state.rows.has(subject)) state.rows.set(subject, { ...previous, usedMicros: 0 });
    const keys = keySubject(userId, ""); // its keys restart with it (usage-rows.ts)
    for (const [name, row] of state.rows) if (name.startsWith(keys)) state.rows.set(name, { ...row, usedMicros: 0 });
    return { month, userId, previousMicros: previous.usedMicros };
  }

  /** Records the provider-side objects a request of `userId` created (stored-objects.ts). */
  keepStored({ ids, userId, now = Date.now() }: { ids: string[]; userId: string; now?: number }): void {
    keepStored(this.sql, ids, userId, now);
  }

  /** Who owns each of these ids in this org (absent: nobody here). */
  storedOwners({ ids, now = Date.now() }: { ids: string[]; now?: number }): Record<string, string> {
    return storedOwners(this.sql, ids, now);
  }

  ping(): { ok: true } {
    return { ok: true };
  }
}
