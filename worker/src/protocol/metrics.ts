// Request metrics as the ledger aggregates them (per org: per day, user, model and route) and
// the admin API sums them: counters and fixed latency histograms, so that p50/p95/p99 over any
// set of rows is computable from sums alone (a mean of percentiles would not be).

/** Upper bounds (ms) of the latency buckets; one more bucket holds everything slower. */
export const LATENCY_BUCKETS_MS = [
  1, 2, 5, 10, 20, 50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000, 20_000, 60_000,
] as const;

export type Histogram = number[]; // counts per bucket, LATENCY_BUCKETS_MS.length + 1 of them

/** What one request was, as recorded (worker/src/facts/facts.ts builds it). */
export interface Fact {
  requestId: string;
  day: string; // UTC "2026-12-02"
  userId: string;
  keyId: string;
  /** The model that answered (or the last one tried; "" when the request named none usable). */
  model: string;
  route: string;
  status: number;
  attempts: number;
  stream: boolean;
  /** Arrival to the last byte sent. */
  latencyMs: number;
  /** Time spent waiting on the upstream (null: never sent). */
  upstreamMs: number | null;
  /** Streams: arrival to the first byte of the answer. */
  ttftMs: number | null;
  tokensIn: number;
  tokensOut: number;
  /** Of tokensIn: read from and written to the provider's prompt cache. */
  tokensCached: number;
  tokensCacheWrite: number;
  costMicros: number;
  cache: "hit" | "miss" | "none";
  fallback: boolean;
  standIn: boolean;
  degraded: boolean;
  /** A stream that ended before its provider's last event (cut, or the client left). */
  interrupted: boolean;
  /** How its budget was admitted ("" when it never was: refused, or no tenant). */
  admission: "lease" | "pool" | "ledger" | "";
}

/** The counters of a metrics row, in the order the ledger stores them. */
export const METRIC_COUNTERS = [
  "requests",
  "errors4xx",
  "errors5xx",
  "rateLimited",
  "cacheHits",
  "fallbacks",
  "standIns",
  "degraded",
  "streams",
  "interrupted",
  "tokensIn",
  "tokensOut",
  "costMicros",
  "tokensCached",
  "tokensCacheWrite",
] as const;

export type MetricCounter = (typeof METRIC_COUNTERS)[number];

export type MetricsRow = Record<MetricCounter, number> & {
  latency: Histogram;
  upstream: Histogram;
  ttft: Histogram;
  /** The gateway's own share: latency minus the upstream wait (requests that went upstream). */
  overhead: Histogram;
};

export const HISTOGRAMS = ["latency", "upstream", "ttft", "overhead"] as const;

export function emptyHistogram(): Histogram {
  return new Array<number>(LATENCY_BUCKETS_MS.length + 1).fill(0);
}

export function emptyMetrics(): MetricsRow {
  const row = {
    latency: emptyHistogram(),
    upstream: emptyHistogram(),
    ttft: emptyHistogram(),
    overhead: emptyHistogram(),
  } as MetricsRow;
  for (const counter of METRIC_COUNTERS) row[counter] = 0;
  return row;
}

export function bucketOf(ms: number): number {
  const i = LATENCY_BUCKETS_MS.findIndex((bound) => ms <= bound);
  return i === -1 ? LATENCY_BUCKETS_MS.length : i;
}

/** Count one request into `row` (in place). */
export function countFact(row: MetricsRow, fact: Fact): void {
  row.requests += 1;
  if (fact.status >= 400 && fact.status < 500) row.errors4xx += 1;
  if (fact.status >= 500) row.errors5xx += 1;
  if (fact.status === 429) row.rateLimited += 1;
  if (fact.cache === "hit") row.cacheHits += 1;
  if (fact.fallback) row.fallbacks += 1;
  if (fact.standIn) row.standIns += 1;
  if (fact.degraded) row.degraded += 1;
  if (fact.stream) row.streams += 1;
  if (fact.interrupted) row.interrupted += 1;
  row.tokensIn += fact.tokensIn;
  row.tokensOut += fact.tokensOut;
  row.costMicros += fact.costMicros;
  row.tokensCached += fact.tokensCached;
  row.tokensCacheWrite += fact.tokensCacheWrite;
  (row.latency[bucketOf(fact.latencyMs)] as number) += 1;
  if (fact.upstreamMs !== null) {
    (row.upstream[bucketOf(fact.upstreamMs)] as number) += 1;
    (row.overhead[bucketOf(Math.max(0, fact.latencyMs - fact.upstreamMs))] as number) += 1;
  }
  if (fact.ttftMs !== null) (row.ttft[bucketOf(fact.ttftMs)] as number) += 1;
}

/** A metrics row's key: the ledger's `daily` table holds one row per (day, user, model, route). */
export type MetricsKey = [day: string, userId: string, model: string, route: string];

/**
 * Requests' facts summed per key, as an isolate sends them to its org's ledger: the ledger's
 * work per batch grows with its keys, not its requests. `id` makes a batch sent again (its
 * call may or may not have arrived) count once; `requests` is how many facts it holds.
 */
export interface MetricsBatch {
  id: string;
  requests: number;
  groups: { key: MetricsKey; row: MetricsRow }[];
}

/** Add `other` into `row` (in place). */
export function mergeMetrics(row: MetricsRow, other: MetricsRow): void {
  for (const counter of METRIC_COUNTERS) row[counter] += other[counter];
  for (const name of HISTOGRAMS) {
    const into = row[name];
    other[name].forEach((n, i) => {
      into[i] = (into[i] ?? 0) + n;
    });
  }
}

/** Add `row` into the group `key` of `groups` (created empty when new). */
export function addToGroup(groups: Map<string, MetricsRow>, key: string, row: MetricsRow): void {
  let group = groups.get(key);
  if (!group) {
    group = emptyMetrics();
    groups.set(key, group);
  }
  mergeMetrics(group, row);
}

/**
 * The q-quantile (0 < q ≤ 1) of a histogram, interpolated linearly inside its bucket (as
 * Prometheus' histogram_quantile does); null for an empty histogram. In the open last bucket
 * the answer is its lower bound: "at least this slow".
 */
export function quantile(histogram: Histogram, q: number): number | null {
  const total = histogram.reduce((a, b) => a + b, 0);
  if (total === 0) return null;
  const rank = q * total;
  let below = 0;
  for (let i = 0; i < histogram.length; i++) {
    const n = histogram[i] as number;
    if (n > 0 && below + n >= rank) {
      const lower = i === 0 ? 0 : (LATENCY_BUCKETS_MS[i - 1] as number);
      const upper = LATENCY_BUCKETS_MS[i];
      if (upper === undefined) return lower;
      return Math.round((lower + ((upper - lower) * (rank - below)) / n) * 100) / 100;
    }
    below += n;
  }
  return null;
}

export function percentiles(histogram: Histogram): { p50: number | null; p95: number | null; p99: number | null } {
  return { p50: quantile(histogram, 0.5), p95: quantile(histogram, 0.95), p99: quantile(histogram, 0.99) };
}
