// The admin API's metrics: requests' facts summed per day, user, model and route (facts.ts
// sends them in batches; each batch is counted once), and read back summed by each of those.

import type { MetricsGroups } from "../protocol/ledger";
import {
  addToGroup,
  emptyMetrics,
  HISTOGRAMS,
  METRIC_COUNTERS,
  type MetricsBatch,
  type MetricsKey,
  type MetricsRow,
  mergeMetrics,
} from "../protocol/metrics";
import type { Settlements } from "./settlement";

export const DAILY_SCHEMA = `
CREATE TABLE IF NOT EXISTS daily (
  day TEXT NOT NULL,
  user_id TEXT NOT NULL,
  model TEXT NOT NULL,
  route TEXT NOT NULL,
  counters TEXT NOT NULL,
  histograms TEXT NOT NULL,
  PRIMARY KEY (day, user_id, model, route)
);
`;

type Stored = { counters: string; histograms: string };

function parseMetrics(counters: string, histograms: string): MetricsRow {
  const row = emptyMetrics();
  const values = JSON.parse(counters) as number[];
  METRIC_COUNTERS.forEach((name, i) => {
    row[name] = values[i] ?? 0;
  });
  const hists = JSON.parse(histograms) as number[][];
  HISTOGRAMS.forEach((name, i) => {
    const stored = hists[i] ?? [];
    row[name] = row[name].map((_, b) => stored[b] ?? 0);
  });
  return row;
}

export class DailyMetrics {
  readonly #sql: SqlStorage;
  readonly #settlements: Settlements;

  /** `settlements`: a batch is claimed once by its id, as a settlement is. */
  constructor(sql: SqlStorage, settlements: Settlements) {
    this.#sql = sql;
    this.#settlements = settlements;
    sql.exec(DAILY_SCHEMA);
  }

  /** Requests' metrics into the day's rows, each batch once (a batch sent again is applied once). */
  count(batches: readonly MetricsBatch[], now: number): void {
    const rows = new Map<string, { key: MetricsKey; row: MetricsRow }>();
    for (const batch of batches) {
      if (!this.#settlements.claimOnce(`facts:${batch.id}`, now)) continue;
      for (const { key, row } of batch.groups) {
        const id = key.join("\0");
        let entry = rows.get(id);
        if (!entry) {
          entry = { key, row: this.#row(...key) ?? emptyMetrics() };
          rows.set(id, entry);
        }
        mergeMetrics(entry.row, row);
      }
    }
    for (const { key, row } of rows.values()) {
      this.#sql.exec(
        "INSERT OR REPLACE INTO daily (day, user_id, model, route, counters, histograms) VALUES (?, ?, ?, ?, ?, ?)",
        ...key,
        JSON.stringify(METRIC_COUNTERS.map((c) => row[c])),
        JSON.stringify(HISTOGRAMS.map((h) => row[h])),
      );
    }
  }

  #row(day: string, userId: string, model: string, route: string): MetricsRow | null {
    const found = this.#sql
      .exec<Stored>(
        "SELECT counters, histograms FROM daily WHERE day = ? AND user_id = ? AND model = ? AND route = ?",
        day,
        userId,
        model,
        route,
      )
      .toArray()[0];
    return found ? parseMetrics(found.counters, found.histograms) : null;
  }

  /**
   * The metrics of the days from `from` to `to` (inclusive, "YYYY-MM-DD"; one user's only with
   * `userId`), summed here by day, user, model and route: the answer grows with those, not
   * with their product.
   */
  read(from: string, to: string, userId?: string | null): MetricsGroups {
    // Maps: keys from stored rows never walk a prototype, and RPC carries them as they are
    const groups: MetricsGroups = { days: new Map(), users: new Map(), models: new Map(), routes: new Map() };
    const rows = this.#sql.exec<{ day: string; userId: string; model: string; route: string } & Stored>(
      `SELECT day, user_id AS userId, model, route, counters, histograms FROM daily
        WHERE day >= ? AND day <= ?${userId ? " AND user_id = ?" : ""}`,
      ...(userId ? [from, to, userId] : [from, to]),
    );
    for (const { day, userId: user, model, route, counters, histograms } of rows) {
      const row = parseMetrics(counters, histograms);
      addToGroup(groups.days, day, row);
      addToGroup(groups.users, user, row);
      addToGroup(groups.models, model, row);
      addToGroup(groups.routes, route, row);
    }
    return groups;
  }
}
