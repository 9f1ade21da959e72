// The ledger's table of background runs it watches (background-runs.ts polls them): one row a
// run, with what charging it needs, when to look next and until when. The ledger owns the table;
// the poll itself, which talks to a provider, is handed to it by the entry module
// (UsageLedger.watchRunsWith), so the ledger imports no provider code.

import type { WatchedRun } from "../protocol/ledger";

export const RUNS_SCHEMA = `
CREATE TABLE IF NOT EXISTS runs (
  request_id TEXT PRIMARY KEY,
  spec TEXT NOT NULL,
  polls INTEGER NOT NULL DEFAULT 0,
  next_poll_at INTEGER NOT NULL,
  deadline INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS runs_by_next_poll ON runs (next_poll_at);
`;

// OpenAI's background runs are meant for minutes, deep research for an hour or more: a day
// bounds how long a reservation is held for one.
export const WATCH_MS = 24 * 3_600_000;
const FIRST_POLL_MS = 1_000;
const MAX_POLL_INTERVAL_MS = 30_000;
const POLLS_PER_ALARM = 20;

interface Row {
  requestId: string;
  spec: string;
  polls: number;
  deadline: number;
}

/** When to look again after `polls` looks: 1 s, 2 s, 4 s … at most 30 s apart. */
export function nextPollDelay(polls: number): number {
  return Math.min(FIRST_POLL_MS * 2 ** polls, MAX_POLL_INTERVAL_MS);
}

export function addRun(sql: SqlStorage, run: WatchedRun, now: number): number {
  const next = now + FIRST_POLL_MS;
  sql.exec(
    "INSERT OR REPLACE INTO runs (request_id, spec, polls, next_poll_at, deadline) VALUES (?, ?, 0, ?, ?)",
    run.requestId,
    JSON.stringify(run),
    next,
    now + WATCH_MS,
  );
  return next;
}

export function dueRuns(sql: SqlStorage, now: number): { run: WatchedRun; polls: number; deadline: number }[] {
  return sql
    .exec<Row & Record<string, SqlStorageValue>>(
      `SELECT request_id AS requestId, spec, polls, deadline FROM runs
        WHERE next_poll_at <= ? ORDER BY next_poll_at LIMIT ?`,
      now,
      POLLS_PER_ALARM,
    )
    .toArray()
    .map((row) => ({ run: JSON.parse(row.spec) as WatchedRun, polls: row.polls, deadline: row.deadline }));
}

export function reschedule(sql: SqlStorage, requestId: string, polls: number, now: number): void {
  sql.exec(
    "UPDATE runs SET polls = ?, next_poll_at = ? WHERE request_id = ?",
    polls,
    now + nextPollDelay(polls),
    requestId,
  );
}

export function forgetRun(sql: SqlStorage, requestId: string): void {
  sql.exec("DELETE FROM runs WHERE request_id = ?", requestId);
}

export function nextPollAt(sql: SqlStorage): number | null {
  return sql.exec<{ at: number | null }>("SELECT MIN(next_poll_at) AS at FROM runs").toArray()[0]?.at ?? null;
}
