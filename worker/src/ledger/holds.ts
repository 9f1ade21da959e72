// What the ledger holds against the limits beside recorded usage: per-request reservations
// (admission.ts) and the slices isolates hold as leases (leases.ts), in their two tables, and a
// month's counters and holds mirrored in memory (Months) so that admission reads nothing from
// storage. SQLite is the record; the object is its only writer and runs one call at a time, so
// the mirror cannot drift.

import type { Figures, RateHold, UsageRow } from "../protocol/ledger";
import {
  COUNTERS,
  emptyRow,
  keySubject,
  ORG,
  readUsage,
  type UsageTotals,
  userSubject,
  writeUsage,
} from "./usage-rows";

export const HOLDS_SCHEMA = `
CREATE TABLE IF NOT EXISTS reservations (
  id TEXT PRIMARY KEY,
  month TEXT NOT NULL,
  user_id TEXT NOT NULL,
  amount_micros INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  key_id TEXT,
  rates TEXT
);
CREATE INDEX IF NOT EXISTS reservations_by_expiry ON reservations (expires_at);
CREATE TABLE IF NOT EXISTS leases (
  id TEXT PRIMARY KEY,
  month TEXT NOT NULL,
  user_id TEXT NOT NULL,
  held_micros INTEGER NOT NULL,
  seq INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  key_id TEXT,
  slots INTEGER NOT NULL DEFAULT 0
);
`;
// Added after the first ledgers were created (the key a hold counts against): added in place.
const ADDED_COLUMNS: readonly [string, string][] = [
  ["reservations", "key_id"],
  ["reservations", "rates"], // JSON: the spend-rate windows it holds (spend-rates.ts)
  ["leases", "key_id"],
  ["leases", "slots"], // open-request slots of a capped user (leases.ts)
];

const MONTHS_IN_MEMORY = 2;
export const RESERVATION_TTL_MS = 15 * 60 * 1000; // an unsettled reservation holds budget this long

export interface Held {
  userId: string;
  /** The key whose limit it counts against too (a key with a limit of its own). */
  keyId?: string | null;
  amount: number;
  expiresAt: number;
  /** The spend-rate windows it holds `amount` in (spend-rates.ts). */
  rates?: readonly RateHold[] | null;
}

interface StoredReservation extends Omit<Held, "rates"> {
  id: string;
  rates: string | null;
}

export interface HeldLease {
  userId: string;
  keyId?: string | null;
  held: number;
  /** Open-request slots of its user's cap (decision 0038). */
  slots?: number;
  seq: number;
  expiresAt: number;
}

interface StoredLease extends HeldLease {
  id: string;
}

/** One month's counters and open holds, mirrored in memory from SQLite. */
export class MonthState {
  rows: Map<string, UsageRow>;
  reservations = new Map<string, Held>();
  leases = new Map<string, HeldLease>();
  reservedByUser = new Map<string, number>();
  openByUser = new Map<string, number>();
  reservedTotal = 0;
  leasedByUser = new Map<string, number>();
  leasedTotal = 0;
  /** Holds by key subject (keys with a limit of their own): reservations and leases together. */
  heldByKey = new Map<string, number>();
  /** Open-request slots leases hold, by user: they count against its cap like open requests. */
  slotsByUser = new Map<string, number>();
  /** Users refused for their cap while leases held slots, until when (leases give spares back). */
  slotPressure = new Map<string, number>();

  constructor(rows: UsageRow[], reservations: StoredReservation[], leases: StoredLease[]) {
    this.rows = new Map(rows.map((row) => [row.subject, row]));
    for (const r of reservations) {
      const rates = r.rates === null ? null : (JSON.parse(r.rates) as RateHold[]);
      this.hold(r.id, r.userId, r.amount, r.expiresAt, r.keyId, rates);
    }
    for (const l of leases) this.holdLease(l.id, l);
  }

  #reserve(userId: string, amount: number): void {
    this.reservedByUser.set(userId, (this.reservedByUser.get(userId) ?? 0) + amount);
    this.reservedTotal += amount;
  }

  #lease(userId: string, amount: number, slots: number): void {
    this.leasedByUser.set(userId, (this.leasedByUser.get(userId) ?? 0) + amount);
    this.leasedTotal += amount;
    if (slots !== 0) this.slotsByUser.set(userId, (this.slotsByUser.get(userId) ?? 0) + slots);
  }

  /** A user's requests open against its cap: per-request reservations and leases' slots. */
  openOf(userId: string): number {
    return (this.openByUser.get(userId) ?? 0) + (this.slotsByUser.get(userId) ?? 0);
  }

  #keyHold(userId: string, keyId: string | null | undefined, amount: number): void {
    if (!keyId) return;
    const subject = keySubject(userId, keyId);
    this.heldByKey.set(subject, (this.heldByKey.get(subject) ?? 0) + amount);
  }

  holdLease(id: string, lease: HeldLease): void {
    this.releaseLease(id);
    this.leases.set(id, lease);
    this.#lease(lease.userId, lease.held, lease.slots ?? 0);
    this.#keyHold(lease.userId, lease.keyId, lease.held);
  }

  releaseLease(id: string): void {
    const lease = this.leases.get(id);
    if (!lease) return;
    this.leases.delete(id);
    this.#lease(lease.userId, -lease.held, -(lease.slots ?? 0));
    this.#keyHold(lease.userId, lease.keyId, -lease.held);
  }

  row(subject: string): UsageRow {
    return this.rows.get(subject) ?? emptyRow(subject);
  }

  hold(
    id: string,
    userId: string,
    amount: number,
    expiresAt: number,
    keyId?: string | null,
    rates: readonly RateHold[] | null = null,
  ): void {
    this.release(id);
    this.reservations.set(id, { userId, keyId: keyId ?? null, amount, expiresAt, rates });
    this.#reserve(userId, amount);
    this.#keyHold(userId, keyId, amount);
    this.openByUser.set(userId, (this.openByUser.get(userId) ?? 0) + 1);
  }

  /** A reservation ends: what it held (null: none open). */
  release(id: string): Held | null {
    const held = this.reservations.get(id);
    if (!held) return null;
    this.reservations.delete(id);
    this.#reserve(held.userId, -held.amount);
    this.#keyHold(held.userId, held.keyId, -held.amount);
    this.openByUser.set(held.userId, (this.openByUser.get(held.userId) ?? 1) - 1);
    return held;
  }

  /** Add a row of summed counts (UsageTotals) to its subject's. */
  add(sums: UsageRow): void {
    const row = { ...this.row(sums.subject) };
    for (const counter of COUNTERS) row[counter] += sums[counter];
    this.rows.set(sums.subject, row);
  }

  /** Recorded usage and what admission must leave room for: reservations and lease slices
   * (the key's too, when it has a limit of its own). */
  figures(userId: string, keyId?: string | null): Figures {
    const key = keyId ? keySubject(userId, keyId) : null;
    return {
      userUsed: this.row(userSubject(userId)).usedMicros,
      orgUsed: this.row(ORG).usedMicros,
      userReserved: (this.reservedByUser.get(userId) ?? 0) + (this.leasedByUser.get(userId) ?? 0),
      orgReserved: this.reservedTotal + this.leasedTotal,
      keyUsed: key ? this.row(key).usedMicros : 0,
      keyReserved: key ? (this.heldByKey.get(key) ?? 0) : 0,
    };
  }
}

/** The months in memory (the last two used), their holds' tables, and the next expiry. */
export class Months {
  readonly #sql: SqlStorage;
  readonly #months = new Map<string, MonthState>();
  #nextExpiry = Number.POSITIVE_INFINITY; // earliest open hold's expiry: no sweep before it
  /** Told of each reservation that expires unsettled (its spend-rate holds end with it). */
  expired: (held: Held, now: number) => void = () => {};

  constructor(sql: SqlStorage) {
    this.#sql = sql;
    sql.exec(HOLDS_SCHEMA);
    for (const [table, column] of ADDED_COLUMNS) {
      const columns = sql.exec<{ name: string }>(`PRAGMA table_info(${table})`).toArray();
      const type = column === "slots" ? "INTEGER NOT NULL DEFAULT 0" : "TEXT";
      if (!columns.some((c) => c.name === column)) sql.exec(`ALTER TABLE ${table} ADD COLUMN ${column} ${type}`);
    }
  }

  get(month: string): MonthState {
    let state = this.#months.get(month);
    if (!state) {
      const reservations = this.#sql
        .exec<StoredReservation & Record<string, SqlStorageValue>>(
          `SELECT id, user_id AS userId, key_id AS keyId, amount_micros AS amount, expires_at AS expiresAt, rates
             FROM reservations WHERE month = ?`,
          month,
        )
        .toArray();
      const leases = this.#sql
        .exec<StoredLease & Record<string, SqlStorageValue>>(
          `SELECT id, user_id AS userId, key_id AS keyId, held_micros AS held, seq, expires_at AS expiresAt, slots
             FROM leases WHERE month = ?`,
          month,
        )
        .toArray();
      state = new MonthState(readUsage(this.#sql, month), reservations, leases);
      for (const held of [...reservations, ...leases]) this.#expiresAt(held.expiresAt);
      this.#months.set(month, state);
      while (this.#months.size > MONTHS_IN_MEMORY) this.#months.delete(this.#months.keys().next().value as string);
    }
    return state;
  }

  #expiresAt(at: number): void {
    this.#nextExpiry = Math.min(this.#nextExpiry, at);
  }

  /** Release expired holds; costs nothing until the earliest one is due. */
  sweep(now: number): void {
    if (now < this.#nextExpiry) return;
    let earliest = Number.POSITIVE_INFINITY;
    for (const state of this.#months.values()) {
      for (const [id, held] of state.reservations) {
        if (held.expiresAt <= now) {
          state.release(id);
          this.expired(held, now);
        } else earliest = Math.min(earliest, held.expiresAt);
      }
      for (const [id, lease] of state.leases) {
        if (lease.expiresAt <= now)
          state.releaseLease(id); // its isolate stopped exchanging
        else earliest = Math.min(earliest, lease.expiresAt);
      }
    }
    this.#sql.exec("DELETE FROM reservations WHERE expires_at <= ?", now);
    this.#sql.exec("DELETE FROM leases WHERE expires_at <= ?", now);
    this.#nextExpiry = earliest;
  }

  /** Hold `amount` for one request until `expiresAt` (a new reservation, or one extended);
   * `keyId`: a key with a limit of its own, which the hold counts against too. */
  reserve(
    state: MonthState,
    month: string,
    id: string,
    userId: string,
    amount: number,
    expiresAt: number,
    keyId: string | null = null,
    rates: readonly RateHold[] | null = null,
  ): void {
    this.#sql.exec(
      `INSERT OR REPLACE INTO reservations (id, month, user_id, amount_micros, expires_at, key_id, rates)
            VALUES (?, ?, ?, ?, ?, ?, ?)`,
      id,
      month,
      userId,
      amount,
      expiresAt,
      keyId,
      rates && rates.length > 0 ? JSON.stringify(rates) : null,
    );
    state.hold(id, userId, amount, expiresAt, keyId, rates);
    this.#expiresAt(expiresAt);
  }

  /** A request's reservation ends (its settlement came); a leased request had none. */
  unreserve(state: MonthState, id: string): Held | null {
    if (state.reservations.has(id)) this.#sql.exec("DELETE FROM reservations WHERE id = ?", id);
    return state.release(id);
  }

  /** An isolate's lease now holds `lease.held` (0 or less: the lease ends). */
  putLease(state: MonthState, month: string, id: string, lease: HeldLease): void {
    if (lease.held > 0 || (lease.slots ?? 0) > 0) {
      state.holdLease(id, lease);
      this.#sql.exec(
        `INSERT OR REPLACE INTO leases (id, month, user_id, held_micros, seq, expires_at, key_id, slots)
              VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
        id,
        month,
        lease.userId,
        lease.held,
        lease.seq,
        lease.expiresAt,
        lease.keyId ?? null,
        lease.slots ?? 0,
      );
      this.#expiresAt(lease.expiresAt);
    } else {
      this.#sql.exec("DELETE FROM leases WHERE id = ?", id);
    }
  }

  /** What `usage` gathered, into the month's rows (SQLite, then memory): one write per subject. */
  addUsage(state: MonthState, month: string, usage: UsageTotals): void {
    for (const row of usage.rows()) {
      writeUsage(this.#sql, month, row);
      state.add(row);
    }
  }
}
