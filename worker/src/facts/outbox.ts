// Each isolate's outbox of facts for an org's ledger (the admin API's metrics): facts summed per
// metrics key (day, user, model, route) as they come, carried by the next lease exchange, or
// sent on their own after FLUSH_MS; bounded when the ledger cannot be reached.

import type { Env } from "../protocol/env";
import type { LedgerRpc } from "../protocol/ledger";
import {
  countFact,
  emptyMetrics,
  type Fact,
  type MetricsBatch,
  type MetricsKey,
  type MetricsRow,
} from "../protocol/metrics";

const FLUSH_MS = 1_000; // facts wait this long for a lease exchange to carry them
// An unreachable ledger must not grow the isolate without bound: facts are summed per metrics
// key as they come (a key is a day, user, model and route), so the open batch is bounded by
// its keys, and at most MAX_UNSENT sealed batches wait to be sent again.
const MAX_GROUPS = 10_000;
const MAX_UNSENT = 64;
const SEND_TIMEOUT_MS = 3_000;
const FLUSHER_MAX_MS = 20_000; // hand over before waitUntil's 30 s run out

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const sumRequests = (batches: readonly MetricsBatch[]) => batches.reduce((n, batch) => n + batch.requests, 0);

class Outbox {
  /** The open batch: this isolate's facts summed per metrics key since the last take. */
  private open = new Map<string, { key: MetricsKey; row: MetricsRow }>();
  private openRequests = 0;
  /** Sealed batches a call did not deliver: sent again as they are (same id, counted once). */
  private unsent: MetricsBatch[] = [];
  private sealed = 0;
  sending = 0; // requests in batches taken by a call that has not answered yet
  flushing = false;
  private flushingSince = 0;
  private carriedAt = 0; // the last lease exchange that could carry facts
  interval = FLUSH_MS;
  dropped = 0;

  constructor(
    readonly orgId: string,
    readonly isolateId: string,
  ) {}

  push(fact: Fact): void {
    const key: MetricsKey = [fact.day, fact.userId, fact.model, fact.route];
    const id = key.join("\0");
    let group = this.open.get(id);
    if (!group) {
      if (this.open.size >= MAX_GROUPS) {
        this.drop(1);
        return;
      }
      group = { key, row: emptyMetrics() };
      this.open.set(id, group);
    }
    countFact(group.row, fact);
    this.openRequests += 1;
  }

  /** Requests not yet taken by a call. */
  get queued(): number {
    return this.openRequests + sumRequests(this.unsent);
  }

  /** Everything queued: the batches sent before and not delivered, then the open one, sealed. */
  take(): MetricsBatch[] {
    if (this.openRequests > 0) {
      this.sealed += 1;
      this.unsent.push({
        id: `${this.isolateId}:${this.sealed}`,
        requests: this.openRequests,
        groups: [...this.open.values()],
      });
      this.open = new Map();
      this.openRequests = 0;
    }
    const batches = this.unsent;
    this.unsent = [];
    this.sending += sumRequests(batches);
    return batches;
  }

  /** A lease exchange takes what is queued (lease.ts): the flusher then has nothing to send. */
  carry(): MetricsBatch[] {
    this.carriedAt = Date.now();
    return this.take();
  }

  /** The ledger took them. */
  delivered(batches: MetricsBatch[]): void {
    this.sending -= sumRequests(batches);
  }

  /** Batches a call did not deliver are kept to be sent again (the ledger counts each once). */
  giveBack(batches: MetricsBatch[]): void {
    this.sending -= sumRequests(batches);
    this.unsent.unshift(...batches);
    while (this.unsent.length > MAX_UNSENT) this.drop((this.unsent.shift() as MetricsBatch).requests);
  }

  private drop(requests: number): void {
    const before = this.dropped;
    this.dropped += requests;
    if (before === 0 || Math.floor(before / 1000) !== Math.floor(this.dropped / 1000)) {
      console.error(JSON.stringify({ event: "metrics_facts_dropped", orgId: this.orgId, dropped: this.dropped }));
    }
  }

  /**
   * Run by the request that found no flusher: sends what no lease exchange carried. While
   * exchanges run (they come every interval when there are settlements), it leaves the facts
   * to them; near waitUntil's limit it sends what is left at once and hands over. A flusher
   * whose request ended without handing over is replaced.
   */
  async flush(env: Env): Promise<void> {
    const started = Date.now();
    if (this.flushing && started - this.flushingSince < FLUSHER_MAX_MS + FLUSH_MS) return;
    this.flushing = true;
    this.flushingSince = started;
    try {
      while (this.queued > 0) {
        const last = Date.now() - started > FLUSHER_MAX_MS;
        if (!last) {
          await sleep(this.interval);
          if (Date.now() - this.carriedAt < this.interval) continue; // exchanges carry them
        }
        const batches = this.take();
        if (batches.length === 0) break;
        if (await this.#send(env, batches)) {
          this.delivered(batches);
        } else {
          this.giveBack(batches);
          if (!last) await sleep(this.interval);
        }
        if (last) break;
      }
    } finally {
      if (this.flushingSince === started) this.flushing = false;
    }
  }

  async #send(env: Env, batches: MetricsBatch[]): Promise<boolean> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error("metrics record timed out")), SEND_TIMEOUT_MS);
      });
      const ledger = env.USAGE_LEDGER.get(env.USAGE_LEDGER.idFromName(this.orgId)) as DurableObjectStub<LedgerRpc>;
      const answer = await Promise.race([ledger.record({ batches, isolateId: this.isolateId }), timeout]);
      this.interval = Math.round(answer.nextExchangeMs * (0.9 + 0.2 * Math.random()));
      return true;
    } catch (err) {
      console.error(JSON.stringify({ event: "metrics_record_failed", orgId: this.orgId, error: String(err) }));
      return false;
    } finally {
      if (timer !== undefined) clearTimeout(timer);
    }
  }
}

const outboxes = new Map<string, Outbox>(); // `${isolateId}|${orgId}`

/** This isolate's (lease book's) outbox for an org's facts. */
export function outboxFor(isolateId: string, orgId: string): Outbox {
  const key = `${isolateId}|${orgId}`;
  let box = outboxes.get(key);
  if (!box) {
    box = new Outbox(orgId, isolateId);
    outboxes.set(key, box);
  }
  return box;
}

/** Facts in every outbox, not yet in a ledger. */
export function queuedInOutboxes(): number {
  let n = 0;
  for (const box of outboxes.values()) n += box.queued + box.sending;
  return n;
}

export type { Outbox };

const isolateIds = new Map<string, string>();

/** A random id per lease book, shared with lease.ts's exchanges (the ledger paces by it). */
export function isolateIdOf(book: string): string {
  let id = isolateIds.get(book);
  if (!id) {
    id = crypto.randomUUID();
    isolateIds.set(book, id);
  }
  return id;
}
