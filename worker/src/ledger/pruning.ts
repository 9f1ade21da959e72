// What the ledger forgets, and when: settled request ids past the window in which a settlement
// can come again, and stored objects past their retention. Every 10 s, and boundedly, so pruning
// never holds the object for long (what is left goes the next time): up to 7.2 million rows an
// hour, past what an org at its exchange pace writes (a row per exchange's batch and per metrics
// batch: about 800 a second at 400 exchanges a second; decision 0018).

import { pruneStored } from "./stored-objects";

const SETTLED_MEMORY_MS = 2 * 24 * 3600 * 1000; // a settlement is applied once within this window
const PRUNE_EVERY_MS = 10_000;
const SETTLED_PER_PRUNE = 20_000;

export class Pruning {
  readonly #sql: SqlStorage;
  #next = 0;

  constructor(sql: SqlStorage) {
    this.#sql = sql;
  }

  ifDue(now: number): void {
    if (now < this.#next) return;
    this.#next = now + PRUNE_EVERY_MS;
    this.#sql.exec(
      `DELETE FROM settled WHERE id IN (SELECT id FROM settled WHERE at < ? LIMIT ${SETTLED_PER_PRUNE})`,
      now - SETTLED_MEMORY_MS,
    );
    pruneStored(this.#sql, now);
  }
}
