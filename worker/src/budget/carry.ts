// Settlements ride along with the next admission to the same org's ledger, so under load a
// request costs one ledger call instead of two. A settlement that no admission picks up within
// CARRY_WINDOW_MS is sent on its own. Entries are plain data shared by the requests of one
// isolate; no request awaits another request's promise: each one polls its own entry.

import type { Settlement } from "../protocol/ledger";

const CARRY_WINDOW_MS = 25;
const POLL_MS = 5;
const MAX_CARRIED = 64; // per admission call

export interface Carried {
  record: Settlement;
  state: "queued" | "inflight" | "done";
}

const queues = new Map<string, Map<string, Carried>>(); // orgId → requestId → entry

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function queueOf(orgId: string): Map<string, Carried> {
  let queue = queues.get(orgId);
  if (!queue) {
    queue = new Map();
    queues.set(orgId, queue);
  }
  return queue;
}

/** Offer a settlement to the next admission; resolves true once one carried it. */
export async function offer(orgId: string, record: Settlement): Promise<boolean> {
  const queue = queueOf(orgId);
  const entry: Carried = { record, state: "queued" };
  queue.set(record.requestId, entry);
  await sleep(CARRY_WINDOW_MS);
  while (entry.state === "inflight") await sleep(POLL_MS);
  if (entry.state === "done") return true;
  queue.delete(record.requestId); // not carried: the caller sends it itself
  return false;
}

/** Queued settlements for an admission call to take along (marked in flight). */
export function take(orgId: string): Carried[] {
  const queue = queues.get(orgId);
  const taken: Carried[] = [];
  if (!queue) return taken;
  for (const entry of queue.values()) {
    if (entry.state !== "queued") continue;
    entry.state = "inflight";
    taken.push(entry);
    if (taken.length === MAX_CARRIED) break;
  }
  return taken;
}

/** After the admission call: carried entries are done; on failure they go back to the queue. */
export function release(orgId: string, taken: Carried[], delivered: boolean): void {
  const queue = queues.get(orgId);
  for (const entry of taken) {
    entry.state = delivered ? "done" : "queued";
    if (delivered) queue?.delete(entry.record.requestId);
  }
}
