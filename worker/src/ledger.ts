// UsageLedger: one SQLite-backed Durable Object per organization, the single writer of that
// org's and its users' counters. KV cannot hold counters (one write per second per key, no
// atomic increment, eventual consistency); a Durable Object runs one request at a time, and
// each method below does all its SQL without awaiting, so every call is atomic.
//
// Money is integer micro-dollars (µUSD). Rows are keyed by UTC month ("2026-11"), so a new
// month starts at zero by construction. Subjects: "org" for the organization's total and
// "user:<id>" for each user.

import { DurableObject } from "cloudflare:workers";
import { type AlertRow, deliver, MAX_ATTEMPTS, reached, retryDelayMs } from "./alerts";
import { utcMonth } from "./clock";
import type { AlertThresholds, Env } from "./env";
import { LEASE_TTL_MS } from "./lease";
import {
  addToGroup,
  emptyMetrics,
  HISTOGRAMS,
  METRIC_COUNTERS,
  type MetricsBatch,
  type MetricsKey,
  type MetricsRow,
  mergeMetrics,
} from "./metrics";
import {
  addRun,
  dueRuns,
  forgetRun,
  nextPollAt,
  RUNS_SCHEMA,
  reschedule,
  WATCH_MS,
  type WatchedRun,
} from "./runs-table";
import { keepStored, pruneStored, STORED_SCHEMA, storedOwners } from "./stored-objects";

const RESERVATION_TTL_MS = 15 * 60 * 1000; // an unsettled reservation holds budget this long
// A lease takes at most this share of the headroom left beside all other holds, so slices
// shrink as a limit nears and the last ones stay available to other isolates.
const LEASE_SHARE = 4;
// Lease exchanges per second this object aims at, over all isolates (decision 0018).
const EXCHANGES_PER_S = 400;
const MIN_EXCHANGE_INTERVAL_MS = 1_000;
const MAX_EXCHANGE_INTERVAL_MS = 10_000; // well inside waitUntil's 30 s and the lease TTL
const PACE_WINDOW_MS = 10_000;
const SETTLED_MEMORY_MS = 2 * 24 * 3600 * 1000; // settle() is idempotent within this window
const ORG = "org";

const SCHEMA = `
CREATE TABLE IF NOT EXISTS usage (
  month TEXT NOT NULL,
  subject TEXT NOT NULL,
  used_micros INTEGER NOT NULL DEFAULT 0,
  requests INTEGER NOT NULL DEFAULT 0,
  tokens_in INTEGER NOT NULL DEFAULT 0,
  tokens_out INTEGER NOT NULL DEFAULT 0,
  estimated INTEGER NOT NULL DEFAULT 0,
  cached INTEGER NOT NULL DEFAULT 0,
  fallbacks INTEGER NOT NULL DEFAULT 0,
  stand_ins INTEGER NOT NULL DEFAULT 0,
  implausible INTEGER NOT NULL DEFAULT 0,
  tool_micros INTEGER NOT NULL DEFAULT 0,
  tier_micros INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (month, subject)
);
CREATE TABLE IF NOT EXISTS reservations (
  id TEXT PRIMARY KEY,
  month TEXT NOT NULL,
  user_id TEXT NOT NULL,
  amount_micros INTEGER NOT NULL,
  expires_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS reservations_by_expiry ON reservations (expires_at);
CREATE TABLE IF NOT EXISTS leases (
  id TEXT PRIMARY KEY,
  month TEXT NOT NULL,
  user_id TEXT NOT NULL,
  held_micros INTEGER NOT NULL,
  seq INTEGER NOT NULL,
  expires_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS settled (id TEXT PRIMARY KEY, at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS daily (
  day TEXT NOT NULL,
  user_id TEXT NOT NULL,
  model TEXT NOT NULL,
  route TEXT NOT NULL,
  counters TEXT NOT NULL,
  histograms TEXT NOT NULL,
  PRIMARY KEY (day, user_id, model, route)
);
CREATE TABLE IF NOT EXISTS alerts (
  month TEXT NOT NULL,
  subject TEXT NOT NULL,
  threshold INTEGER NOT NULL,
  crossed_at INTEGER NOT NULL,
  used_micros INTEGER NOT NULL,
  limit_micros INTEGER NOT NULL,
  status TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  next_attempt_at INTEGER NOT NULL,
  last_status INTEGER,
  last_error TEXT,
  delivered_at INTEGER,
  PRIMARY KEY (month, subject, threshold)
);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS limits_seen (
  user_id TEXT PRIMARY KEY,
  user_limit INTEGER NOT NULL,
  org_budget INTEGER NOT NULL,
  alerts TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS settled_by_age ON settled (at);
CREATE TABLE IF NOT EXISTS quota_resets (
  at INTEGER NOT NULL,
  month TEXT NOT NULL,
  user_id TEXT NOT NULL,
  previous_micros INTEGER NOT NULL
);
`;

export function userSubject(userId: string): string {
  return `user:${userId}`;
}

export function currentMonth(now: number = Date.now()): string {
  return utcMonth(now);
}

/** First instant of the month after `month` ("2026-11" → "2026-12-01T00:00:00.000Z"). */
export function monthResetsAt(month: string): string {
  const [year = 0, mon = 0] = month.split("-").map(Number);
  return new Date(Date.UTC(year, mon, 1)).toISOString();
}

export function ledgerFor(env: Env, orgId: string): DurableObjectStub<UsageLedger> {
  return env.USAGE_LEDGER.get(env.USAGE_LEDGER.idFromName(orgId));
}

export interface UsageRow {
  subject: string;
  usedMicros: number;
  requests: number;
  tokensIn: number;
  tokensOut: number;
  estimated: number;
  cached: number;
  /** Requests answered by a fallback model after the first failed. */
  fallbacks: number;
  /** Requests answered by a Workers AI stand-in while AI Gateway was down. */
  standIns: number;
  /** Requests whose reported usage could not be real (recorded as estimated, not as reported). */
  implausible: number;
  /** Of usedMicros: billed tool calls, and what service tiers added (or took) over the model's prices. */
  toolMicros: number;
  tierMicros: number;
}

// Columns added after the first ledgers were created: added in place where missing.
const ADDED_COLUMNS = ["fallbacks", "stand_ins", "implausible", "tool_micros", "tier_micros"];

interface Held {
  userId: string;
  amount: number;
  expiresAt: number;
}

interface StoredReservation extends Held {
  id: string;
}

interface HeldLease {
  userId: string;
  held: number;
  seq: number;
  expiresAt: number;
}

interface StoredLease extends HeldLease {
  id: string;
}

/**
 * One isolate's exchange for one of its leases (a user's month): the settlements of requests
 * it admitted under the lease (their costs leave the hold and become usage), what it gives back
 * (it stopped counting on it before sending), and how much more it wants.
 */
export interface LeaseOp {
  leaseId: string;
  userId: string;
  /** Increases with each exchange of this lease: a retried exchange is applied once. */
  seq: number;
  settlements: Settlement[];
  returned: number;
  want: number;
  /** The least grant worth having; below it nothing is granted (the isolate admits per request). */
  minGrant: number;
  userLimit: number;
  orgBudget: number;
  /** The key's budget alert thresholds (% of the month's limit and budget). */
  alerts?: AlertThresholds;
}

export interface LeaseResult extends Figures {
  leaseId: string;
  /** What the ledger now holds for this lease: all the isolate may count on. */
  held: number;
  granted: number;
  ttlMs: number;
}

export interface Exchange {
  month: string;
  /** The org this ledger is for (alerts name it). */
  orgId?: string;
  /** Which isolate exchanges (random per isolate): the ledger paces them by how many there are. */
  isolateId?: string;
  leases: LeaseOp[];
  /** A per-request admission to run after the lease operations (near a limit). */
  admission?: Admission | null;
  /** Requests' metrics, carried along (facts.ts). */
  metrics?: MetricsBatch[];
  now?: number;
}

/** What a settlement records; `count: false` releases a reservation without a request. */
export interface Settlement {
  requestId: string;
  userId: string;
  month: string;
  cost: number;
  tokensIn?: number;
  tokensOut?: number;
  estimated?: boolean;
  cached?: boolean;
  fallback?: boolean;
  standIn?: boolean;
  implausible?: boolean;
  /** Of `cost`: billed tool calls, and a service tier's difference from the model's prices. */
  toolMicros?: number;
  tierMicros?: number;
  count?: boolean;
  now?: number;
}

/** What a look at a background run found (background-runs.ts): its charge (and the ids it
 * handed out), that it still runs, or that nobody can see it to its end (its worst case). */
export type RunPoll =
  | { state: "done"; record: Settlement; ids: string[] }
  | { state: "running" }
  | { state: "unobserved"; record: Settlement; reason: string };

/** How the ledger looks at a run: handed to it by the entry module (no provider code here). */
export type RunPoller = (env: Env, run: WatchedRun, deadline: number, now: number) => Promise<RunPoll>;

let pollRun: RunPoller | null = null;

export interface Admission {
  requestId: string;
  userId: string;
  month: string;
  amount: number;
  userLimit: number;
  orgBudget: number;
  /** Requests the user may have open at once (its rate tier's); unset = no cap. */
  maxConcurrent?: number | null;
  orgId?: string;
  alerts?: AlertThresholds;
  settlements?: Settlement[];
  now?: number;
}

export interface Figures {
  userUsed: number;
  orgUsed: number;
  userReserved: number;
  orgReserved: number;
}

export interface AdmitResult extends Figures {
  admitted: boolean;
  limit: "user" | "org" | "concurrency" | null;
  /** The user's open requests (reservations) before this one. */
  open: number;
}

/** Every counter of a row (what sums across rows). */
export const COUNTERS = [
  "usedMicros",
  "requests",
  "tokensIn",
  "tokensOut",
  "estimated",
  "cached",
  "fallbacks",
  "standIns",
  "implausible",
  "toolMicros",
  "tierMicros",
] as const satisfies readonly (keyof UsageRow)[];

export function emptyRow(subject: string): UsageRow {
  const row = { subject } as UsageRow;
  for (const counter of COUNTERS) row[counter] = 0;
  return row;
}

/** New settlements' counts summed per subject (the user's and the org's), for one write each. */
class UsageTotals {
  readonly #rows = new Map<string, UsageRow>();

  add({
    userId,
    cost,
    tokensIn = 0,
    tokensOut = 0,
    estimated,
    cached,
    fallback,
    standIn,
    implausible,
    toolMicros = 0,
    tierMicros = 0,
  }: Settlement): void {
    for (const subject of [userSubject(userId), ORG]) {
      let row = this.#rows.get(subject);
      if (!row) {
        row = emptyRow(subject);
        this.#rows.set(subject, row);
      }
      row.usedMicros += cost;
      row.requests += 1;
      row.tokensIn += tokensIn;
      row.tokensOut += tokensOut;
      row.estimated += estimated ? 1 : 0;
      row.cached += cached ? 1 : 0;
      row.fallbacks += fallback ? 1 : 0;
      row.standIns += standIn ? 1 : 0;
      row.implausible += implausible ? 1 : 0;
      row.toolMicros += toolMicros;
      row.tierMicros += tierMicros;
    }
  }

  rows(): IterableIterator<UsageRow> {
    return this.#rows.values();
  }
}

const PRUNE_EVERY_MS = 3600 * 1000;
const CLAIMS_PER_STATEMENT = 50; // two bound parameters each: a Durable Object's SQL takes at most 100
const MONTHS_IN_MEMORY = 2;

/** One month's counters and open reservations, mirrored in memory from SQLite. */
class MonthState {
  rows: Map<string, UsageRow>;
  reservations = new Map<string, Held>();
  leases = new Map<string, HeldLease>();
  reservedByUser = new Map<string, number>();
  openByUser = new Map<string, number>();
  reservedTotal = 0;
  leasedByUser = new Map<string, number>();
  leasedTotal = 0;

  constructor(rows: UsageRow[], reservations: StoredReservation[], leases: StoredLease[]) {
    this.rows = new Map(rows.map((row) => [row.subject, row]));
    for (const r of reservations) this.hold(r.id, r.userId, r.amount, r.expiresAt);
    for (const l of leases) this.holdLease(l.id, l);
  }

  #reserve(userId: string, amount: number): void {
    this.reservedByUser.set(userId, (this.reservedByUser.get(userId) ?? 0) + amount);
    this.reservedTotal += amount;
  }

  #lease(userId: string, amount: number): void {
    this.leasedByUser.set(userId, (this.leasedByUser.get(userId) ?? 0) + amount);
    this.leasedTotal += amount;
  }

  holdLease(id: string, lease: HeldLease): void {
    this.releaseLease(id);
    this.leases.set(id, lease);
    this.#lease(lease.userId, lease.held);
  }

  releaseLease(id: string): void {
    const lease = this.leases.get(id);
    if (!lease) return;
    this.leases.delete(id);
    this.#lease(lease.userId, -lease.held);
  }

  row(subject: string): UsageRow {
    return this.rows.get(subject) ?? emptyRow(subject);
  }

  hold(id: string, userId: string, amount: number, expiresAt: number): void {
    this.release(id);
    this.reservations.set(id, { userId, amount, expiresAt });
    this.#reserve(userId, amount);
    this.openByUser.set(userId, (this.openByUser.get(userId) ?? 0) + 1);
  }

  release(id: string): void {
    const held = this.reservations.get(id);
    if (!held) return;
    this.reservations.delete(id);
    this.#reserve(held.userId, -held.amount);
    this.openByUser.set(held.userId, (this.openByUser.get(held.userId) ?? 1) - 1);
  }

  /** Add a row of summed counts (UsageTotals) to its subject's. */
  add(sums: UsageRow): void {
    const row = { ...this.row(sums.subject) };
    for (const counter of COUNTERS) row[counter] += sums[counter];
    this.rows.set(sums.subject, row);
  }
}

type Stored = { counters: string; histograms: string };

/** Metrics summed by day, user, model and route (keys as stored; "" = none). */
export interface MetricsGroups {
  days: Map<string, MetricsRow>;
  users: Map<string, MetricsRow>;
  models: Map<string, MetricsRow>;
  routes: Map<string, MetricsRow>;
}

function parseMetrics(counters: string, histograms: string): MetricsRow {
  const row = emptyMetrics();
  const values = JSON.parse(counters) as number[];
  METRIC_COUNTERS.forEach((name, i) => {
    row[name] = values[i] ?? 0;
  });
  const hists = JSON.parse(histograms) as number[][];
  HISTOGRAMS.forEach((name, i) => {
    const stored = hists[i] ?? [];
    row[name] = row[name].map((_, b) => stored[b] ?? 0);
  });
  return row;
}

export class UsageLedger extends DurableObject<Env> {
  private readonly sql: SqlStorage;
  // SQLite is the record; memory mirrors it so admission reads nothing from storage. The
  // object is the only writer and runs one call at a time, so the mirror cannot drift.
  private readonly months = new Map<string, MonthState>();
  private nextExpiry = Number.POSITIVE_INFINITY; // earliest open reservation's expiry: no sweep before it
  private readonly isolatesSeen = new Map<string, number>(); // isolate id → its last exchange
  private nextPaceSweep = 0;
  private nextPrune = 0;
  // What the last call said of each user's limits and alert thresholds (settlements that come
  // alone are checked against them); the org's id, for the alerts' payloads.
  private readonly limitsSeen = new Map<string, { userLimit: number; orgBudget: number; alerts: AlertThresholds }>();
  private readonly raised = new Map<string, Set<string>>(); // month → "subject|threshold"
  private orgId: string | null = null;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    this.sql.exec(SCHEMA);
    this.sql.exec(STORED_SCHEMA);
    this.sql.exec(RUNS_SCHEMA);
    const columns = new Set(
      this.sql
        .exec<{ name: string }>("PRAGMA table_info(usage)")
        .toArray()
        .map((c) => c.name),
    );
    for (const column of ADDED_COLUMNS) {
      if (!columns.has(column)) this.sql.exec(`ALTER TABLE usage ADD COLUMN ${column} INTEGER NOT NULL DEFAULT 0`);
    }
    this.orgId =
      this.sql.exec<{ value: string }>("SELECT value FROM meta WHERE name = 'orgId'").toArray()[0]?.value ?? null;
  }

  #learn(orgId: string | undefined, userId: string, userLimit: number, orgBudget: number, alerts?: AlertThresholds) {
    if (orgId !== undefined && orgId !== this.orgId) {
      this.orgId = orgId;
      this.sql.exec("INSERT OR REPLACE INTO meta (name, value) VALUES ('orgId', ?)", orgId);
    }
    if (!alerts) return;
    const known = this.#seen(userId);
    const same =
      known?.userLimit === userLimit &&
      known.orgBudget === orgBudget &&
      JSON.stringify(known.alerts) === JSON.stringify(alerts);
    if (same) return;
    // kept in SQL too: a settlement that arrives alone after a restart is still checked
    this.limitsSeen.set(userId, { userLimit, orgBudget, alerts });
    this.sql.exec(
      "INSERT OR REPLACE INTO limits_seen (user_id, user_limit, org_budget, alerts) VALUES (?, ?, ?, ?)",
      userId,
      userLimit,
      orgBudget,
      JSON.stringify(alerts),
    );
  }

  /** What the user's last call said of its limits and thresholds (memory, else SQL). */
  #seen(userId: string): { userLimit: number; orgBudget: number; alerts: AlertThresholds } | undefined {
    const cached = this.limitsSeen.get(userId);
    if (cached) return cached;
    const row = this.sql
      .exec<{ userLimit: number; orgBudget: number; alerts: string }>(
        "SELECT user_limit AS userLimit, org_budget AS orgBudget, alerts FROM limits_seen WHERE user_id = ?",
        userId,
      )
      .toArray()[0];
    if (!row) return undefined;
    const seen = {
      userLimit: row.userLimit,
      orgBudget: row.orgBudget,
      alerts: JSON.parse(row.alerts) as AlertThresholds,
    };
    this.limitsSeen.set(userId, seen);
    return seen;
  }

  /**
   * Raise the alerts the month's recorded usage has reached for these users and the org, each
   * once (thresholds as the users' keys last said), and wake the alarm to deliver them.
   */
  #checkAlerts(month: string, userIds: Iterable<string>, now: number): void {
    const state = this.#month(month);
    let raised = this.raised.get(month);
    if (!raised) {
      raised = new Set(
        this.sql
          .exec<{ subject: string; threshold: number }>("SELECT subject, threshold FROM alerts WHERE month = ?", month)
          .toArray()
          .map((a) => `${a.subject}|${a.threshold}`),
      );
      this.raised.set(month, raised);
    }
    let fresh = false;
    const raise = (subject: string, used: number, limit: number, thresholds: readonly number[]) => {
      for (const threshold of thresholds) {
        const key = `${subject}|${threshold}`;
        if (raised.has(key) || !reached(used, limit, threshold)) continue;
        raised.add(key);
        const written = this.sql.exec(
          `INSERT INTO alerts (month, subject, threshold, crossed_at, used_micros, limit_micros, status, next_attempt_at)
                VALUES (?, ?, ?, ?, ?, ?, 'pending', ?) ON CONFLICT DO NOTHING`,
          month,
          subject,
          threshold,
          now,
          used,
          limit,
          now,
        ).rowsWritten;
        fresh ||= written > 0;
      }
    };
    for (const userId of userIds) {
      const seen = this.#seen(userId);
      if (!seen) continue; // checked at the user's next call that says its limits
      raise(userSubject(userId), state.row(userSubject(userId)).usedMicros, seen.userLimit, seen.alerts.user);
      raise(ORG, state.row(ORG).usedMicros, seen.orgBudget, seen.alerts.org);
    }
    if (fresh) void this.ctx.storage.setAlarm(now);
  }

  /**
   * Watch a background run to its end (background-runs.ts): its reservation is held until then
   * (at most WATCH_MS), and the alarm polls it.
   */
  async watchRun(run: WatchedRun): Promise<void> {
    const now = Date.now();
    const next = addRun(this.sql, run, now);
    const state = this.#month(run.month);
    const held = state.reservations.get(run.requestId);
    if (held) {
      const expiresAt = now + WATCH_MS + RESERVATION_TTL_MS;
      this.sql.exec("UPDATE reservations SET expires_at = ? WHERE id = ?", expiresAt, run.requestId);
      state.hold(run.requestId, held.userId, held.amount, expiresAt);
    }
    await this.#wakeAt(next);
  }

  /** The alarm rings at `at` unless it is set to ring sooner. */
  async #wakeAt(at: number): Promise<void> {
    const set = await this.ctx.storage.getAlarm();
    if (set === null || set > at) await this.ctx.storage.setAlarm(at);
  }

  /** The poll of background runs: set once by the entry module (index.ts). */
  static watchRunsWith(poller: RunPoller): void {
    pollRun = poller;
  }

  /** Poll the background runs that are due; charge those that ended. */
  async #pollRuns(now: number): Promise<void> {
    if (pollRun === null) return;
    for (const { run, polls, deadline } of dueRuns(this.sql, now)) {
      const poll = await pollRun(this.env, run, deadline, Date.now());
      if (poll.state === "running") {
        reschedule(this.sql, run.requestId, polls + 1, Date.now());
        continue;
      }
      const { record } = poll;
      this.settle(record);
      if (poll.state === "done") keepStored(this.sql, poll.ids, run.userId, Date.now());
      forgetRun(this.sql, run.requestId);
      const event = poll.state === "done" ? "background_run_charged" : "background_run_unobserved";
      (poll.state === "done" ? console.log : console.error)(
        JSON.stringify({
          event,
          orgId: run.orgId,
          userId: run.userId,
          requestId: run.requestId,
          responseId: run.responseId,
          costMicros: record.cost,
          polls: polls + 1,
          ...(poll.state === "unobserved" ? { reason: poll.reason } : {}),
        }),
      );
    }
  }

  /** Deliver the alerts that are due and poll the runs that are; then sleep until the next. */
  override async alarm(): Promise<void> {
    await this.#pollRuns(Date.now());
    const now = Date.now();
    const due = this.#alertRows("status = 'pending' AND next_attempt_at <= ? ORDER BY next_attempt_at LIMIT 20", now);
    for (const row of due) {
      const result = await deliver(this.orgId ?? "", row, this.env.ALERT_WEBHOOK_SECRET, Date.now());
      const attempts = row.attempts + 1;
      const status = result.ok ? "delivered" : attempts >= MAX_ATTEMPTS ? "failed" : "pending";
      this.sql.exec(
        `UPDATE alerts SET status = ?, attempts = ?, next_attempt_at = ?, last_status = ?, last_error = ?, delivered_at = ?
          WHERE month = ? AND subject = ? AND threshold = ?`,
        status,
        attempts,
        Date.now() + retryDelayMs(attempts),
        result.status,
        result.error,
        result.ok ? Date.now() : null,
        row.month,
        row.subject,
        row.threshold,
      );
      const event = result.ok ? "alert_delivered" : "alert_delivery_failed";
      (result.ok ? console.log : console.error)(
        JSON.stringify({
          event,
          orgId: this.orgId,
          subject: row.subject,
          threshold: row.threshold,
          attempts,
          ...result,
        }),
      );
    }
    const nextAlert = this.sql
      .exec<{ at: number | null }>("SELECT MIN(next_attempt_at) AS at FROM alerts WHERE status = 'pending'")
      .toArray()[0]?.at;
    const next = Math.min(nextAlert ?? Number.POSITIVE_INFINITY, nextPollAt(this.sql) ?? Number.POSITIVE_INFINITY);
    if (Number.isFinite(next)) await this.ctx.storage.setAlarm(Math.max(next, Date.now()));
  }

  #alertRows(where: string, ...params: SqlStorageValue[]): AlertRow[] {
    return this.sql
      .exec<AlertRow & Record<string, SqlStorageValue>>(
        `SELECT month, subject, threshold, crossed_at AS crossedAt, used_micros AS usedMicros,
                limit_micros AS limitMicros, status, attempts, next_attempt_at AS nextAttemptAt,
                last_status AS lastStatus, last_error AS lastError, delivered_at AS deliveredAt
           FROM alerts WHERE ${where}`,
        ...params,
      )
      .toArray();
  }

  /** The month's alerts, newest first. */
  alerts({ month }: { month: string }): AlertRow[] {
    return this.#alertRows("month = ? ORDER BY crossed_at DESC, subject, threshold", month);
  }

  #month(month: string): MonthState {
    let state = this.months.get(month);
    if (!state) {
      const rows = this.sql
        .exec<UsageRow & Record<string, SqlStorageValue>>(
          `SELECT subject, used_micros AS usedMicros, requests, tokens_in AS tokensIn,
                  tokens_out AS tokensOut, estimated, cached, fallbacks, stand_ins AS standIns, implausible,
                  tool_micros AS toolMicros, tier_micros AS tierMicros
             FROM usage WHERE month = ?`,
          month,
        )
        .toArray();
      const reservations = this.sql
        .exec<StoredReservation & Record<string, SqlStorageValue>>(
          `SELECT id, user_id AS userId, amount_micros AS amount, expires_at AS expiresAt
             FROM reservations WHERE month = ?`,
          month,
        )
        .toArray();
      const leases = this.sql
        .exec<StoredLease & Record<string, SqlStorageValue>>(
          `SELECT id, user_id AS userId, held_micros AS held, seq, expires_at AS expiresAt
             FROM leases WHERE month = ?`,
          month,
        )
        .toArray();
      state = new MonthState(rows, reservations, leases);
      for (const held of [...reservations, ...leases]) this.nextExpiry = Math.min(this.nextExpiry, held.expiresAt);
      this.months.set(month, state);
      while (this.months.size > MONTHS_IN_MEMORY) this.months.delete(this.months.keys().next().value as string);
    }
    return state;
  }

  /** Release expired reservations; costs nothing until the earliest one is due. */
  #sweep(now: number): void {
    if (now < this.nextExpiry) return;
    let earliest = Number.POSITIVE_INFINITY;
    for (const state of this.months.values()) {
      for (const [id, held] of state.reservations) {
        if (held.expiresAt <= now) state.release(id);
        else earliest = Math.min(earliest, held.expiresAt);
      }
      for (const [id, lease] of state.leases) {
        if (lease.expiresAt <= now)
          state.releaseLease(id); // its isolate stopped exchanging
        else earliest = Math.min(earliest, lease.expiresAt);
      }
    }
    this.sql.exec("DELETE FROM reservations WHERE expires_at <= ?", now);
    this.sql.exec("DELETE FROM leases WHERE expires_at <= ?", now);
    this.nextExpiry = earliest;
  }

  #state(state: MonthState, userId: string): Figures {
    return {
      userUsed: state.row(userSubject(userId)).usedMicros,
      orgUsed: state.row(ORG).usedMicros,
      // what admission must leave room for: reservations and the slices leases hold
      userReserved: (state.reservedByUser.get(userId) ?? 0) + (state.leasedByUser.get(userId) ?? 0),
      orgReserved: state.reservedTotal + state.leasedTotal,
    };
  }

  /**
   * Reserve `amount` µUSD for one request against the user's limit and the org's budget, or
   * refuse naming the limit that would be exceeded. One atomic step, after applying the
   * settlements of earlier requests that came along with it.
   */
  admit({
    requestId,
    userId,
    month,
    amount,
    userLimit,
    orgBudget,
    maxConcurrent = null,
    settlements = [],
    now = Date.now(),
    orgId,
    alerts,
  }: Admission): AdmitResult {
    this.#learn(orgId, userId, userLimit, orgBudget, alerts);
    for (const record of settlements) this.settle(record); // carried along: see carry.ts
    // a lowered limit the spend already passes is told now, even if this request is refused
    this.#checkAlerts(month, [userId], now);
    const state = this.#month(month);
    this.#sweep(now);
    const figures = this.#state(state, userId);
    const open = state.openByUser.get(userId) ?? 0;
    let refused: AdmitResult["limit"] = null;
    if (maxConcurrent !== null && open >= maxConcurrent) refused = "concurrency";
    else if (figures.userUsed + figures.userReserved + amount > userLimit) refused = "user";
    else if (figures.orgUsed + figures.orgReserved + amount > orgBudget) refused = "org";
    if (refused) return { admitted: false, limit: refused, open, ...figures };
    const expiresAt = now + RESERVATION_TTL_MS;
    this.sql.exec(
      "INSERT OR REPLACE INTO reservations (id, month, user_id, amount_micros, expires_at) VALUES (?, ?, ?, ?, ?)",
      requestId,
      month,
      userId,
      amount,
      expiresAt,
    );
    state.hold(requestId, userId, amount, expiresAt);
    this.nextExpiry = Math.min(this.nextExpiry, expiresAt);
    return { admitted: true, limit: null, open, ...figures };
  }

  /**
   * Replace a reservation by the real cost and count the request. Idempotent per requestId,
   * and it records usage even when the reservation already expired: a cent is never lost.
   */
  settle(record: Settlement): Figures {
    const state = this.#month(record.month);
    if (this.#record(state, record)) this.#checkAlerts(record.month, [record.userId], record.now ?? Date.now());
    return this.#state(state, record.userId);
  }

  /** Record one settlement and its usage; true when it was new (a settlement is applied once). */
  #record(state: MonthState, record: Settlement): boolean {
    const usage = new UsageTotals();
    const fresh = this.#claim(state, [record], usage, record.now ?? Date.now());
    this.#addUsage(state, record.month, usage);
    return fresh.length > 0;
  }

  /**
   * Claim settlements: their reservations (if any) end, and those not claimed before (a
   * settlement is applied once, by request id) are returned, each once, their counts added to
   * `usage`, which the caller writes once for all of its call (#addUsage). The claims go in
   * multi-row statements: the object's work per exchange is a few statements, not one per
   * request.
   */
  #claim(state: MonthState, records: readonly Settlement[], usage: UsageTotals, now: number): Settlement[] {
    for (const { requestId } of records) {
      // a leased request had no reservation: no statement for it
      if (state.reservations.has(requestId)) this.sql.exec("DELETE FROM reservations WHERE id = ?", requestId);
      state.release(requestId);
    }
    const fresh = new Set<string>();
    for (let i = 0; i < records.length; i += CLAIMS_PER_STATEMENT) {
      const chunk = records.slice(i, i + CLAIMS_PER_STATEMENT);
      const claimed = this.sql.exec<{ id: string }>(
        `INSERT INTO settled (id, at) VALUES ${chunk.map(() => "(?, ?)").join(", ")}
         ON CONFLICT DO NOTHING RETURNING id`,
        ...chunk.flatMap((record) => [record.requestId, record.now ?? now]),
      );
      for (const { id } of claimed) fresh.add(id);
    }
    if (now >= this.nextPrune) {
      this.nextPrune = now + PRUNE_EVERY_MS;
      // bounded: an hour's pruning never holds the object for long (the rest goes next hour)
      this.sql.exec(
        "DELETE FROM settled WHERE id IN (SELECT id FROM settled WHERE at < ? LIMIT 20000)",
        now - SETTLED_MEMORY_MS,
      );
      pruneStored(this.sql, now);
    }
    const applied: Settlement[] = [];
    for (const record of records) {
      if (!fresh.delete(record.requestId)) continue; // claimed before, or twice in this call
      applied.push(record);
      if (record.count !== false) usage.add(record);
    }
    return applied;
  }

  /** What `usage` gathered, into the month's rows (SQLite, then memory): one write per subject. */
  #addUsage(state: MonthState, month: string, usage: UsageTotals): void {
    for (const row of usage.rows()) {
      this.sql.exec(
        `INSERT INTO usage (month, subject, used_micros, requests, tokens_in, tokens_out, estimated, cached,
                            fallbacks, stand_ins, implausible, tool_micros, tier_micros)
              VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (month, subject) DO UPDATE SET
              used_micros = used_micros + excluded.used_micros,
              requests = requests + excluded.requests,
              tokens_in = tokens_in + excluded.tokens_in,
              tokens_out = tokens_out + excluded.tokens_out,
              estimated = estimated + excluded.estimated,
              cached = cached + excluded.cached,
              fallbacks = fallbacks + excluded.fallbacks,
              stand_ins = stand_ins + excluded.stand_ins,
              implausible = implausible + excluded.implausible,
              tool_micros = tool_micros + excluded.tool_micros,
              tier_micros = tier_micros + excluded.tier_micros`,
        month,
        row.subject,
        ...COUNTERS.map((counter) => row[counter]),
      );
      state.add(row);
    }
  }

  /**
   * An isolate's lease exchange for one org and month: per lease, its settlements recorded
   * (their costs leave the hold), what it returns released, then a grant of at most
   * 1/LEASE_SHARE of the headroom beside every other hold, so that recorded usage plus all
   * holds never exceeds the user's limit or the org's budget. Then, optionally, one
   * per-request admission. One atomic step, like admit().
   */
  exchange({ month, orgId, isolateId, leases, admission = null, metrics = [], now = Date.now() }: Exchange) {
    this.#count(metrics, now);
    const state = this.#month(month);
    this.#sweep(now);
    const results: LeaseResult[] = [];
    for (const op of leases) {
      this.#learn(orgId, op.userId, op.userLimit, op.orgBudget, op.alerts);
      results.push(this.#exchangeLease(state, month, op, now));
    }
    this.#checkAlerts(
      month,
      leases.map((op) => op.userId),
      now,
    );
    return {
      leases: results,
      admission: admission ? this.admit({ ...admission, now }) : null,
      nextExchangeMs: this.#pace(isolateId, now),
    };
  }

  /**
   * How long each isolate should wait between exchanges so that all of them together stay near
   * EXCHANGES_PER_S: one object serves about a thousand calls a second, and per-request
   * admissions near a limit need the rest. Isolates seen in the last PACE_WINDOW_MS count.
   */
  #pace(isolateId: string | undefined, now: number): number {
    if (isolateId !== undefined) this.isolatesSeen.set(isolateId, now);
    if (now >= this.nextPaceSweep) {
      this.nextPaceSweep = now + PACE_WINDOW_MS;
      for (const [id, seen] of this.isolatesSeen) if (seen < now - PACE_WINDOW_MS) this.isolatesSeen.delete(id);
    }
    const interval = Math.ceil((this.isolatesSeen.size * 1000) / EXCHANGES_PER_S);
    return Math.min(MAX_EXCHANGE_INTERVAL_MS, Math.max(MIN_EXCHANGE_INTERVAL_MS, interval));
  }

  #exchangeLease(state: MonthState, month: string, op: LeaseOp, now: number): LeaseResult {
    const current = state.leases.get(op.leaseId);
    const result = (held: number, granted: number): LeaseResult => ({
      leaseId: op.leaseId,
      held,
      granted,
      ttlMs: LEASE_TTL_MS,
      ...this.#state(state, op.userId),
    });
    let held = current?.held ?? 0;
    const repeated = current !== undefined && op.seq <= current.seq;
    const usage = new UsageTotals();
    const records = op.settlements.map((record) => ({ ...record, month, now }));
    for (const record of this.#claim(state, records, usage, now)) {
      // a settlement's cost moves from the hold to the usage, once
      if (!repeated) held = Math.max(0, held - record.cost);
    }
    this.#addUsage(state, month, usage); // before the headroom below is read
    if (repeated) return result(current.held, 0); // a retry of an exchange already applied
    held = Math.max(0, held - Math.max(0, op.returned));
    state.releaseLease(op.leaseId); // the headroom below excludes this lease's own hold
    const figures = this.#state(state, op.userId);
    const headroom = Math.min(
      op.userLimit - figures.userUsed - figures.userReserved,
      op.orgBudget - figures.orgUsed - figures.orgReserved,
    );
    const cap = Math.floor(Math.max(0, headroom - held) / LEASE_SHARE);
    const offer = Math.min(Math.max(0, op.want), cap);
    const granted = offer > 0 && offer >= op.minGrant ? offer : 0;
    held += granted;
    if (held > 0) {
      const expiresAt = now + LEASE_TTL_MS;
      state.holdLease(op.leaseId, { userId: op.userId, held, seq: op.seq, expiresAt });
      this.sql.exec(
        "INSERT OR REPLACE INTO leases (id, month, user_id, held_micros, seq, expires_at) VALUES (?, ?, ?, ?, ?, ?)",
        op.leaseId,
        month,
        op.userId,
        held,
        op.seq,
        expiresAt,
      );
      this.nextExpiry = Math.min(this.nextExpiry, expiresAt);
    } else {
      this.sql.exec("DELETE FROM leases WHERE id = ?", op.leaseId);
    }
    return result(held, granted);
  }

  /** Requests' metrics into the day's rows, each batch once (a batch sent again is applied once). */
  record({ batches, isolateId, now = Date.now() }: { batches: MetricsBatch[]; isolateId?: string; now?: number }) {
    this.#count(batches, now);
    return { counted: batches.reduce((n, batch) => n + batch.requests, 0), nextExchangeMs: this.#pace(isolateId, now) };
  }

  #count(batches: readonly MetricsBatch[], now: number): void {
    const rows = new Map<string, { key: MetricsKey; row: MetricsRow }>();
    for (const batch of batches) {
      const fresh =
        this.sql.exec("INSERT INTO settled (id, at) VALUES (?, ?) ON CONFLICT DO NOTHING", `facts:${batch.id}`, now)
          .rowsWritten > 0;
      if (!fresh) continue;
      for (const { key, row } of batch.groups) {
        const id = key.join("\0");
        let entry = rows.get(id);
        if (!entry) {
          entry = { key, row: this.#dailyRow(...key) ?? emptyMetrics() };
          rows.set(id, entry);
        }
        mergeMetrics(entry.row, row);
      }
    }
    for (const { key, row } of rows.values()) {
      this.sql.exec(
        "INSERT OR REPLACE INTO daily (day, user_id, model, route, counters, histograms) VALUES (?, ?, ?, ?, ?, ?)",
        ...key,
        JSON.stringify(METRIC_COUNTERS.map((c) => row[c])),
        JSON.stringify(HISTOGRAMS.map((h) => row[h])),
      );
    }
  }

  #dailyRow(day: string, userId: string, model: string, route: string): MetricsRow | null {
    const found = this.sql
      .exec<{ counters: string; histograms: string }>(
        "SELECT counters, histograms FROM daily WHERE day = ? AND user_id = ? AND model = ? AND route = ?",
        day,
        userId,
        model,
        route,
      )
      .toArray()[0];
    return found ? parseMetrics(found.counters, found.histograms) : null;
  }

  /**
   * The metrics of the days from `from` to `to` (inclusive, "YYYY-MM-DD"; one user's only with
   * `userId`), summed here by day, user, model and route: the answer grows with those, not
   * with their product.
   */
  metrics({ from, to, userId }: { from: string; to: string; userId?: string | null }): MetricsGroups {
    // Maps: keys from stored rows never walk a prototype, and RPC carries them as they are
    const groups: MetricsGroups = { days: new Map(), users: new Map(), models: new Map(), routes: new Map() };
    const rows = this.sql.exec<{ day: string; userId: string; model: string; route: string } & Stored>(
      `SELECT day, user_id AS userId, model, route, counters, histograms FROM daily
        WHERE day >= ? AND day <= ?${userId ? " AND user_id = ?" : ""}`,
      ...(userId ? [from, to, userId] : [from, to]),
    );
    for (const { day, userId: user, model, route, counters, histograms } of rows) {
      const row = parseMetrics(counters, histograms);
      addToGroup(groups.days, day, row);
      addToGroup(groups.users, user, row);
      addToGroup(groups.models, model, row);
      addToGroup(groups.routes, route, row);
    }
    return groups;
  }

  /** The org row and every user row of a month, with the open reservations as figures. */
  usage({ month, now = Date.now() }: { month: string; now?: number }) {
    const state = this.#month(month);
    this.#sweep(now);
    const users: Record<string, UsageRow> = {};
    for (const [subject, row] of [...state.rows].sort(([a], [b]) => a.localeCompare(b))) {
      if (subject.startsWith("user:")) users[subject.slice(5)] = row;
    }
    return {
      month,
      org: state.row(ORG),
      users,
      openReservations: state.reservations.size,
      reservedMicros: state.reservedTotal,
      // slices of the budget isolates hold as leases (lease.ts)
      leases: state.leases.size,
      leasedMicros: state.leasedTotal,
    };
  }

  /** One user's row of a month. */
  userUsage({ month, userId, now = Date.now() }: { month: string; userId: string; now?: number }) {
    const state = this.#month(month);
    this.#sweep(now);
    return {
      month,
      ...state.row(userSubject(userId)),
      reservedMicros: state.reservedByUser.get(userId) ?? 0,
      leasedMicros: state.leasedByUser.get(userId) ?? 0,
    };
  }

  /**
   * Give a user their monthly allowance back: their usage restarts at zero. The org's total is
   * real spend and stays; the previous figure is kept in quota_resets for audit.
   */
  resetUser({ month, userId, now = Date.now() }: { month: string; userId: string; now?: number }) {
    const state = this.#month(month);
    const subject = userSubject(userId);
    const previous = state.row(subject);
    this.sql.exec(
      "INSERT INTO quota_resets (at, month, user_id, previous_micros) VALUES (?, ?, ?, ?)",
      now,
      month,
      userId,
      previous.usedMicros,
    );
    this.sql.exec("UPDATE usage SET used_micros = 0 WHERE month = ? AND subject = ?", month, subject);
    if (state.rows.has(subject)) state.rows.set(subject, { ...previous, usedMicros: 0 });
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
