// UsageLedger: one SQLite-backed Durable Object per organization, the single writer of that
// org's and its users' counters. KV cannot hold counters (one write per second per key, no
// atomic increment, eventual consistency); a Durable Object runs one request at a time, and
// each method below does all its SQL without awaiting, so every call is atomic.
//
// Money is integer micro-dollars (µUSD). Rows are keyed by UTC month ("2026-11"), so a new
// month starts at zero by construction. Subjects: "org" for the organization's total and
// "user:<id>" for each user.

import { DurableObject } from "cloudflare:workers";

const RESERVATION_TTL_MS = 15 * 60 * 1000; // an unsettled reservation holds budget this long
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
CREATE TABLE IF NOT EXISTS settled (id TEXT PRIMARY KEY, at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS quota_resets (
  at INTEGER NOT NULL,
  month TEXT NOT NULL,
  user_id TEXT NOT NULL,
  previous_micros INTEGER NOT NULL
);
`;

export function userSubject(userId) {
  return `user:${userId}`;
}

export function currentMonth(now = Date.now()) {
  return new Date(now).toISOString().slice(0, 7);
}

/** First instant of the month after `month` ("2026-11" → "2026-12-01T00:00:00.000Z"). */
export function monthResetsAt(month) {
  const [year, mon] = month.split("-").map(Number);
  return new Date(Date.UTC(year, mon, 1)).toISOString();
}

export function ledgerFor(env, orgId) {
  return env.USAGE_LEDGER.get(env.USAGE_LEDGER.idFromName(orgId));
}

function emptyRow(subject) {
  return { subject, usedMicros: 0, requests: 0, tokensIn: 0, tokensOut: 0, estimated: 0, cached: 0 };
}

export class UsageLedger extends DurableObject {
  constructor(ctx, env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    this.sql.exec(SCHEMA);
  }

  #row(month, subject) {
    const rows = this.sql
      .exec(
        `SELECT subject, used_micros AS usedMicros, requests, tokens_in AS tokensIn,
                tokens_out AS tokensOut, estimated, cached
           FROM usage WHERE month = ? AND subject = ?`,
        month,
        subject,
      )
      .toArray();
    return rows[0] ?? emptyRow(subject);
  }

  #reserved(month, userId) {
    const filter = userId === undefined ? "" : " AND user_id = ?";
    const args = userId === undefined ? [month] : [month, userId];
    const row = this.sql
      .exec(`SELECT COALESCE(SUM(amount_micros), 0) AS total FROM reservations WHERE month = ?${filter}`, ...args)
      .one();
    return row.total;
  }

  #state(month, userId) {
    return {
      userUsed: this.#row(month, userSubject(userId)).usedMicros,
      orgUsed: this.#row(month, ORG).usedMicros,
      userReserved: this.#reserved(month, userId),
      orgReserved: this.#reserved(month),
    };
  }

  /**
   * Reserve `amount` µUSD for one request against the user's limit and the org's budget, or
   * refuse naming the limit that would be exceeded. One atomic step.
   */
  admit({ requestId, userId, month, amount, userLimit, orgBudget, now = Date.now() }) {
    this.sql.exec("DELETE FROM reservations WHERE expires_at <= ?", now);
    const state = this.#state(month, userId);
    let refused = null;
    if (state.userUsed + state.userReserved + amount > userLimit) refused = "user";
    else if (state.orgUsed + state.orgReserved + amount > orgBudget) refused = "org";
    if (refused) return { admitted: false, limit: refused, ...state };
    this.sql.exec(
      "INSERT OR REPLACE INTO reservations (id, month, user_id, amount_micros, expires_at) VALUES (?, ?, ?, ?, ?)",
      requestId,
      month,
      userId,
      amount,
      now + RESERVATION_TTL_MS,
    );
    return { admitted: true, limit: null, ...state };
  }

  /**
   * Replace a reservation by the real cost and count the request. Idempotent per requestId,
   * and it records usage even when the reservation already expired: a cent is never lost.
   */
  settle({ requestId, userId, month, cost, tokensIn = 0, tokensOut = 0, estimated = false,
           cached = false, count = true, now = Date.now() }) {
    this.sql.exec("DELETE FROM reservations WHERE id = ?", requestId);
    const seen = this.sql.exec("SELECT 1 FROM settled WHERE id = ?", requestId).toArray();
    if (seen.length === 0) {
      this.sql.exec("INSERT INTO settled (id, at) VALUES (?, ?)", requestId, now);
      this.sql.exec("DELETE FROM settled WHERE at < ?", now - SETTLED_MEMORY_MS);
      if (count) {
        for (const subject of [userSubject(userId), ORG]) {
          this.sql.exec(
            `INSERT INTO usage (month, subject, used_micros, requests, tokens_in, tokens_out, estimated, cached)
                  VALUES (?, ?, ?, 1, ?, ?, ?, ?)
             ON CONFLICT (month, subject) DO UPDATE SET
                  used_micros = used_micros + excluded.used_micros,
                  requests = requests + 1,
                  tokens_in = tokens_in + excluded.tokens_in,
                  tokens_out = tokens_out + excluded.tokens_out,
                  estimated = estimated + excluded.estimated,
                  cached = cached + excluded.cached`,
            month,
            subject,
            cost,
            tokensIn,
            tokensOut,
            estimated ? 1 : 0,
            cached ? 1 : 0,
          );
        }
      }
    }
    return this.#state(month, userId);
  }

  /** The org row and every user row of a month (reservations included as a figure). */
  usage({ month }) {
    const rows = this.sql
      .exec(
        `SELECT subject, used_micros AS usedMicros, requests, tokens_in AS tokensIn,
                tokens_out AS tokensOut, estimated, cached
           FROM usage WHERE month = ? ORDER BY subject`,
        month,
      )
      .toArray();
    const org = rows.find((r) => r.subject === ORG) ?? emptyRow(ORG);
    const users = {};
    for (const row of rows) {
      if (row.subject.startsWith("user:")) users[row.subject.slice(5)] = row;
    }
    const reservations = this.sql
      .exec("SELECT COUNT(*) AS open, COALESCE(SUM(amount_micros), 0) AS micros FROM reservations WHERE month = ?", month)
      .one();
    return { month, org, users, openReservations: reservations.open, reservedMicros: reservations.micros };
  }

  /** One user's row of a month. */
  userUsage({ month, userId }) {
    return { month, ...this.#row(month, userSubject(userId)), reservedMicros: this.#reserved(month, userId) };
  }

  /**
   * Give a user their monthly allowance back: their usage restarts at zero. The org's total is
   * real spend and stays; the previous figure is kept in quota_resets for audit.
   */
  resetUser({ month, userId, now = Date.now() }) {
    const previous = this.#row(month, userSubject(userId));
    this.sql.exec(
      "INSERT INTO quota_resets (at, month, user_id, previous_micros) VALUES (?, ?, ?, ?)",
      now,
      month,
      userId,
      previous.usedMicros,
    );
    this.sql.exec(
      "UPDATE usage SET used_micros = 0 WHERE month = ? AND subject = ?",
      month,
      userSubject(userId),
    );
    return { month, userId, previousMicros: previous.usedMicros };
  }

  ping() {
    return { ok: true };
  }
}
