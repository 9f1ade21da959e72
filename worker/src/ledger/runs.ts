// Background runs the ledger watches to their end (budget/background-runs.ts polls one; the
// entry module hands that poll over, so the ledger imports no provider code): the run's
// reservation is held until it ends (at most WATCH_MS), the alarm looks at the runs that are
// due, and a run that ended is charged as its request would have been.

import type { Env } from "../protocol/env";
import type { Settlement, WatchedRun } from "../protocol/ledger";
import type { Admissions } from "./admission";
import { addRun, dueRuns, forgetRun, nextPollAt, RUNS_SCHEMA, reschedule, WATCH_MS } from "./runs-table";
import type { Settlements } from "./settlement";
import { keepStored } from "./stored-objects";

/** What a look at a background run found (background-runs.ts): its charge (and the ids it
 * handed out), that it still runs, or that nobody can see it to its end (its worst case). */
export type RunPoll =
  | { state: "done"; record: Settlement; ids: string[] }
  | { state: "running" }
  | { state: "unobserved"; record: Settlement; reason: string };

/** How the ledger looks at a run: handed to it by the entry module (no provider code here). */
export type RunPoller = (env: Env, run: WatchedRun, deadline: number, now: number) => Promise<RunPoll>;

export class WatchedRuns {
  readonly #sql: SqlStorage;
  readonly #settlements: Settlements;
  readonly #admissions: Admissions;

  constructor(sql: SqlStorage, settlements: Settlements, admissions: Admissions) {
    this.#sql = sql;
    this.#settlements = settlements;
    this.#admissions = admissions;
    sql.exec(RUNS_SCHEMA);
  }

  /** Watch a run; its reservation is held until it can end. When to look at it first. */
  watch(run: WatchedRun, now: number): number {
    const next = addRun(this.#sql, run, now);
    this.#admissions.holdUntil(run.month, run.requestId, now + WATCH_MS);
    return next;
  }

  /** Poll the runs that are due; charge those that ended. */
  async pollDue(env: Env, poll: RunPoller, now: number): Promise<void> {
    for (const { run, polls, deadline } of dueRuns(this.#sql, now)) {
      const seen = await poll(env, run, deadline, Date.now());
      if (seen.state === "running") {
        reschedule(this.#sql, run.requestId, polls + 1, Date.now());
        continue;
      }
      const { record } = seen;
      this.#settlements.settle(record);
      if (seen.state === "done") keepStored(this.#sql, seen.ids, run.userId, Date.now());
      forgetRun(this.#sql, run.requestId);
      const event = seen.state === "done" ? "background_run_charged" : "background_run_unobserved";
      (seen.state === "done" ? console.log : console.error)(
        JSON.stringify({
          event,
          orgId: run.orgId,
          userId: run.userId,
          requestId: run.requestId,
          responseId: run.responseId,
          costMicros: record.cost,
          polls: polls + 1,
          ...(seen.state === "unobserved" ? { reason: seen.reason } : {}),
        }),
      );
    }
  }

  /** When the next run is due a look, if any. */
  nextPollAt(): number | null {
    return nextPollAt(this.#sql);
  }
}
