// Metrics rows and histograms (src/metrics.ts): every request counted once into the right
// counters and buckets, rows summed without loss, percentiles interpolated inside a bucket.

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  bucketOf,
  countFact,
  emptyMetrics,
  type Fact,
  LATENCY_BUCKETS_MS,
  mergeMetrics,
  quantile,
} from "../src/protocol/metrics";

function fact(overrides: Partial<Fact> = {}): Fact {
  return {
    requestId: "req_1",
    day: "2026-12-02",
    userId: "ana",
    keyId: "key_ana",
    model: "openai/gpt-4o-mini",
    route: "/v1/chat/completions",
    status: 200,
    attempts: 1,
    stream: false,
    latencyMs: 12,
    upstreamMs: 10,
    ttftMs: null,
    tokensIn: 5,
    tokensOut: 7,
    tokensCached: 0,
    tokensCacheWrite: 0,
    costMicros: 11,
    cache: "miss",
    fallback: false,
    standIn: false,
    degraded: false,
    interrupted: false,
    admission: "lease",
    ...overrides,
  };
}

describe("metrics", () => {
  test("a bucket holds values up to its bound; the last holds everything slower", () => {
    assert.equal(bucketOf(0), 0);
    assert.equal(bucketOf(1), 0);
    assert.equal(bucketOf(1.01), 1);
    assert.equal(bucketOf(60_000), LATENCY_BUCKETS_MS.length - 1);
    assert.equal(bucketOf(60_001), LATENCY_BUCKETS_MS.length);
  });

  test("each status, flag and amount goes to its own counter", () => {
    const row = emptyMetrics();
    countFact(row, fact());
    countFact(row, fact({ status: 429, costMicros: 0, tokensIn: 0, tokensOut: 0, upstreamMs: null }));
    countFact(row, fact({ status: 502, cache: "hit", fallback: true, stream: true, ttftMs: 3, interrupted: true }));
    assert.deepEqual(
      {
        requests: row.requests,
        errors4xx: row.errors4xx,
        errors5xx: row.errors5xx,
        rateLimited: row.rateLimited,
        cacheHits: row.cacheHits,
        fallbacks: row.fallbacks,
        streams: row.streams,
        interrupted: row.interrupted,
        tokensIn: row.tokensIn,
        tokensOut: row.tokensOut,
        costMicros: row.costMicros,
      },
      {
        requests: 3,
        errors4xx: 1,
        errors5xx: 1,
        rateLimited: 1,
        cacheHits: 1,
        fallbacks: 1,
        streams: 1,
        interrupted: 1,
        tokensIn: 10,
        tokensOut: 14,
        costMicros: 22,
      },
    );
    assert.equal(
      row.latency.reduce((a, b) => a + b, 0),
      3,
    );
    assert.equal(
      row.upstream.reduce((a, b) => a + b, 0),
      2,
      "no upstream call, no upstream time",
    );
    assert.equal(
      row.ttft.reduce((a, b) => a + b, 0),
      1,
    );
  });

  test("merged rows are the sum of their parts", () => {
    const a = emptyMetrics();
    const b = emptyMetrics();
    const both = emptyMetrics();
    for (const [i, ms] of [3, 40, 700, 9000].entries()) {
      const f = fact({ latencyMs: ms, costMicros: i });
      countFact(i % 2 ? a : b, f);
      countFact(both, f);
    }
    mergeMetrics(a, b);
    assert.deepEqual(a, both);
  });

  test("percentiles: none for nothing, interpolated in the bucket, a lower bound past the last", () => {
    const row = emptyMetrics();
    assert.equal(quantile(row.latency, 0.5), null);
    for (let i = 0; i < 10; i++) countFact(row, fact({ latencyMs: 150 })); // the (100, 200] bucket
    const p50 = quantile(row.latency, 0.5) as number;
    assert.ok(p50 > 100 && p50 <= 200, String(p50));
    assert.equal(quantile(row.latency, 1), 200);
    const slow = emptyMetrics();
    countFact(slow, fact({ latencyMs: 90_000 }));
    assert.equal(quantile(slow.latency, 0.99), 60_000);
  });

  test("p99 sees the one slow request in a hundred; p50 does not", () => {
    const row = emptyMetrics();
    for (let i = 0; i < 99; i++) countFact(row, fact({ latencyMs: 4 }));
    countFact(row, fact({ latencyMs: 3000 }));
    assert.ok((quantile(row.latency, 0.5) as number) <= 5);
    assert.ok((quantile(row.latency, 0.995) as number) > 2000);
  });
});
