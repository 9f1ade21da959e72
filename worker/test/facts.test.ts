// The metrics outbox (src/facts.ts): facts are summed per (day, user, model, route) as they
// come, a take seals them into one batch with an id, and a batch whose call failed is sent
// again as it was (same id: the ledger counts an id once), before anything newer.

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { outboxFor } from "../src/facts/outbox";
import type { Env } from "../src/protocol/env";
import type { Fact, MetricsBatch } from "../src/protocol/metrics";

function fact(userId: string, model: string, latencyMs: number, costMicros = 10): Fact {
  return {
    requestId: `req_${Math.random()}`,
    day: "2026-12-02",
    userId,
    keyId: `key_${userId}`,
    model,
    route: "/v1/chat/completions",
    status: 200,
    attempts: 1,
    stream: false,
    latencyMs,
    upstreamMs: latencyMs - 1,
    ttftMs: null,
    tokensIn: 5,
    tokensOut: 2,
    tokensCached: 0,
    tokensCacheWrite: 0,
    costMicros,
    cache: "miss",
    fallback: false,
    standIn: false,
    degraded: false,
    interrupted: false,
    admission: "lease",
  };
}

let isolates = 0;
const freshBox = () => outboxFor(`isolate-${++isolates}`, "o");

describe("metrics outbox", () => {
  test("facts of one key become one row of a batch, whatever their number", () => {
    const box = freshBox();
    for (let i = 0; i < 100; i++) box.push(fact("u1", "m", 3));
    box.push(fact("u2", "m", 30, 7));
    assert.equal(box.queued, 101);
    const [batch, ...more] = box.carry();
    assert.equal(more.length, 0);
    assert.ok(batch);
    assert.equal(batch.requests, 101);
    assert.equal(batch.groups.length, 2);
    const u1 = batch.groups.find((g) => g.key[1] === "u1");
    assert.deepEqual(u1?.key, ["2026-12-02", "u1", "m", "/v1/chat/completions"]);
    assert.equal(u1?.row.requests, 100);
    assert.equal(u1?.row.costMicros, 1_000);
    assert.equal(u1?.row.tokensIn, 500);
    assert.equal(u1?.row.latency[2], 100, "3 ms is in the 2-5 ms bucket");
    assert.equal(box.queued, 0);
    assert.equal(box.sending, 101);
    box.delivered([batch]);
    assert.equal(box.sending, 0);
  });

  test("a batch given back goes again under its own id, before the newer one", () => {
    const box = freshBox();
    box.push(fact("u1", "m", 3));
    const first = box.carry();
    box.push(fact("u1", "m", 3));
    box.push(fact("u1", "m", 3));
    box.giveBack(first);
    assert.equal(box.queued, 3);
    const again = box.carry();
    assert.deepEqual(
      again.map((b) => [b.id, b.requests]),
      [
        [first[0]?.id, 1],
        [again[1]?.id, 2],
      ],
    );
    assert.notEqual(again[0]?.id, again[1]?.id);
  });

  test("the flusher sends what no exchange carried, the same batch again after a failure", async () => {
    const sent: MetricsBatch[][] = [];
    let failures = 1;
    const ledger = {
      async record({ batches }: { batches: MetricsBatch[] }) {
        sent.push(batches);
        if (failures-- > 0) throw new Error("ledger unreachable");
        return { counted: batches.length, nextExchangeMs: 1 };
      },
    };
    const env = { USAGE_LEDGER: { idFromName: (name: string) => name, get: () => ledger } } as unknown as Env;
    const box = freshBox();
    box.interval = 1;
    box.push(fact("u1", "m", 3));
    await box.flush(env);
    assert.equal(sent.length, 2);
    assert.deepEqual(
      sent[1]?.map((b) => b.id),
      sent[0]?.map((b) => b.id),
    );
    assert.equal(box.queued + box.sending, 0, "delivered at the second call");
  });
});
