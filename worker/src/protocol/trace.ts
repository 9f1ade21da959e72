// What serve() learns of a request while it runs: the facts are made from it when it ends.

import type { Fact } from "./metrics";
import type { Outcome } from "./outcome";

/** What serve() learns of a request while it runs (worker/src/serve.ts fills it in). */
export interface Trace {
  start: number;
  model: string;
  attempts: number;
  upstreamMs: number | null;
  ttftMs: number | null;
  stream: boolean;
  interrupted: boolean;
  outcome: Outcome | null;
  cache: Fact["cache"];
  fallback: boolean;
  standIn: boolean;
  degraded: boolean;
  /** How its budget was admitted: this isolate's lease, its cold-start pool, or a ledger call. */
  admission: Fact["admission"];
  /** A stream's end: its facts are complete only then. */
  finished: Promise<void> | null;
  /** The request body, for the log line of an org that opted in (logPrompts); capped. */
  prompt?: string;
}
