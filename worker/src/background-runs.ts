// Background runs (`background: true` on the Responses API): the provider answers "queued" at
// once and bills the run when it ends, after the request is over. An org that allows it
// (allowUnpriced) has each run watched by its ledger (one writer, and a Durable Object alarm
// that outlives every request): the run's reservation is held until the run ends, the ledger
// polls the provider for it (GET responses/{id} through AI Gateway), and charges the usage the
// finished run reports to the user who started it, as any answer is charged (outcome.ts). A run
// that cannot be observed to its end (gone, or past WATCH_MS) is charged its worst case.

import type { Env, Price } from "./env";
import { type Bound, outcomeOf, worstCaseOutcome } from "./outcome";
import { gatewayUrl } from "./providers/gateway";
import { authHeaders } from "./providers/openai/endpoint";
import { containerIds, RESPONSES_PATH, responsesAnswer, storedIds } from "./providers/openai/responses";
import type { Outcome } from "./quota";

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
const TERMINAL = new Set(["completed", "incomplete", "failed", "cancelled"]);
const POLL_TIMEOUT_MS = 30_000;

/** What the ledger keeps of a run to poll it and to charge it as its request would have been. */
export interface WatchedRun {
  /** The request's (attempt's) id: its reservation and its settlement. */
  requestId: string;
  responseId: string;
  orgId: string;
  userId: string;
  keyId: string;
  month: string;
  model: string;
  price: Price;
  bound: Bound;
  estimatedPromptTokens: number;
  fallback: boolean;
  standIn: boolean;
}

/** What a poll found: the run's charge (and the ids it handed out), still running, or gone. */
export type Poll =
  | { state: "done"; outcome: Outcome; ids: string[] }
  | { state: "running" }
  | { state: "unobserved"; outcome: Outcome; reason: string };

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

/** Looks at the run upstream once. A provider or network failure is "running": look again. */
export async function pollRun(env: Env, run: WatchedRun, deadline: number, now: number): Promise<Poll> {
  if (now >= deadline) return { state: "unobserved", outcome: worstCaseOutcome(run.bound), reason: "still running" };
  const headers: Record<string, string> = {
    "cf-aig-metadata": JSON.stringify({
      requestId: run.requestId,
      userId: run.userId,
      orgId: run.orgId,
      keyId: run.keyId,
    }),
    "cf-aig-skip-cache": "true",
    ...authHeaders({ env, provider: "openai" }),
  };
  if (env.AI_GATEWAY_TOKEN) headers["cf-aig-authorization"] = `Bearer ${env.AI_GATEWAY_TOKEN}`;
  let response: Response;
  try {
    const url = gatewayUrl(env, `${RESPONSES_PATH}/${encodeURIComponent(run.responseId)}`);
    response = await fetch(url, { headers, signal: AbortSignal.timeout(POLL_TIMEOUT_MS) });
  } catch {
    return { state: "running" };
  }
  const raw = await response.text().catch(() => "");
  if (response.status === 404) return { state: "unobserved", outcome: worstCaseOutcome(run.bound), reason: "gone" };
  if (!response.ok) return { state: "running" };
  let status: unknown;
  let body: unknown;
  try {
    body = JSON.parse(raw);
    status = (body as { status?: unknown } | null)?.status;
  } catch {
    return { state: "running" };
  }
  if (!TERMINAL.has(String(status))) return { state: "running" };
  const answer = responsesAnswer(raw);
  const subject = {
    requestId: run.requestId,
    model: run.model,
    price: run.price,
    estimatedPromptTokens: run.estimatedPromptTokens,
  };
  const metered = { usage: answer.usage, text: answer.said, complete: true, extras: answer.extras };
  const outcome = { ...outcomeOf(metered, subject, false, run.bound), fallback: run.fallback, standIn: run.standIn };
  return { state: "done", outcome, ids: [...storedIds(body), ...containerIds(body)] };
}
