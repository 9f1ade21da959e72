// The ledger's counters: one row per month and subject ("org" for the organization's total,
// "user:<id>" for each user, "key:<user id>:<key id>" for each API key), keyed by UTC month so a new month starts at zero by
// construction; and the audit trail of users' allowances given back (quota_resets).

import type { Settlement, UsageRow } from "../protocol/ledger";

export const ORG = "org";

export const USAGE_SCHEMA = `
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
CREATE TABLE IF NOT EXISTS quota_resets (
  at INTEGER NOT NULL,
  month TEXT NOT NULL,
  user_id TEXT NOT NULL,
  previous_micros INTEGER NOT NULL
);
`;

// Columns added after the first ledgers were created: added in place where missing.
const ADDED_COLUMNS = ["fallbacks", "stand_ins", "implausible", "tool_micros", "tier_micros"];

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

export function userSubject(userId: string): string {
  return `user:${userId}`;
}

/** A key's row (ids are slugs without ':', so the parts stay apart). */
export function keySubject(userId: string, keyId: string): string {
  return `key:${userId}:${keyId}`;
}

export function emptyRow(subject: string): UsageRow {
  const row = { subject } as UsageRow;
  for (const counter of COUNTERS) row[counter] = 0;
  return row;
}

/** The usage table as this ledger's code needs it: created, and the added columns in place. */
export function createUsage(sql: SqlStorage): void {
  sql.exec(USAGE_SCHEMA);
  const columns = new Set(
    sql
      .exec<{ name: string }>("PRAGMA table_info(usage)")
      .toArray()
      .map((c) => c.name),
  );
  for (const column of ADDED_COLUMNS) {
    if (!columns.has(column)) sql.exec(`ALTER TABLE usage ADD COLUMN ${column} INTEGER NOT NULL DEFAULT 0`);
  }
}

/** Every subject's row of a month. */
export function readUsage(sql: SqlStorage, month: string): UsageRow[] {
  return sql
    .exec<UsageRow & Record<string, SqlStorageValue>>(
      `SELECT subject, used_micros AS usedMicros, requests, tokens_in AS tokensIn,
              tokens_out AS tokensOut, estimated, cached, fallbacks, stand_ins AS standIns, implausible,
              tool_micros AS toolMicros, tier_micros AS tierMicros
         FROM usage WHERE month = ?`,
      month,
    )
    .toArray();
}

/** New settlements' counts summed per subject (the key's, the user's and the org's), for one
 * write each. */
export class UsageTotals {
  readonly #rows = new Map<string, UsageRow>();

  add({
    userId,
    keyId,
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
    const subjects = [userSubject(userId), ORG];
    if (keyId !== undefined) subjects.push(keySubject(userId, keyId));
    for (const subject of subjects) {
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

/** Add summed counts to the month's row of their subject, in SQLite: one write per subject. */
export function writeUsage(sql: SqlStorage, month: string, row: UsageRow): void {
  sql.exec(
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
}

/** A user's month restarts at zero (in SQLite); the figure it had is kept in quota_resets. */
export function resetUserUsage(sql: SqlStorage, month: string, userId: string, previous: number, now: number): void {
  sql.exec(
    "INSERT INTO quota_resets (at, month, user_id, previous_micros) VALUES (?, ?, ?, ?)",
    now,
    month,
    userId,
    previous,
  );
  sql.exec("UPDATE usage SET used_micros = 0 WHERE month = ? AND subject = ?", month, userSubject(userId));
  // its keys' months restart with it: a key's limit is a share of its user's
  sql.exec("UPDATE usage SET used_micros = 0 WHERE month = ? AND subject LIKE ?", month, `${keySubject(userId, "")}%`);
}
