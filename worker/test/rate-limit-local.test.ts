// The local runtime's Rate Limiting binding (local/rate-limit.js): miniflare's counting rule
// (a fixed window of `period` seconds per key, shared by one namespace_id's bindings) and its
// checks of the options, counted inside the isolate as the deployed binding counts on its machine.

import assert from "node:assert/strict";
import { afterEach, describe, mock, test } from "node:test";
// @ts-expect-error: a plain JavaScript module of the local runtime, without types
import rateLimit from "../local/rate-limit.js";

type Limiter = { limit(options: unknown): Promise<{ success: boolean }> };
const binding = (namespace: string, limit: number, period = 60): Limiter => rateLimit({ namespace, limit, period });

afterEach(() => mock.timers.reset());

describe("local Rate Limiting binding", () => {
  test("admits `limit` calls per key in a window, then refuses; other keys count apart", async () => {
    mock.timers.enable({ apis: ["Date"], now: 1_800_000_000_000 });
    const tier = binding("ns-a", 3);
    const got = [];
    for (let i = 0; i < 5; i++) got.push((await tier.limit({ key: "alice" })).success);
    assert.deepEqual(got, [true, true, true, false, false]);
    assert.equal((await tier.limit({ key: "bob" })).success, true);
  });

  test("a new window (period seconds on) starts every key again", async () => {
    mock.timers.enable({ apis: ["Date"], now: 1_800_000_000_000 });
    const tier = binding("ns-b", 1, 10);
    assert.equal((await tier.limit({ key: "k" })).success, true);
    assert.equal((await tier.limit({ key: "k" })).success, false);
    mock.timers.tick(10_000);
    assert.equal((await tier.limit({ key: "k" })).success, true);
  });

  test("bindings of one namespace share counters; another namespace does not", async () => {
    mock.timers.enable({ apis: ["Date"], now: 1_800_000_000_000 });
    const [first, second, other] = [binding("ns-c", 2), binding("ns-c", 2), binding("ns-d", 2)];
    assert.equal((await first.limit({ key: "k" })).success, true);
    assert.equal((await second.limit({ key: "k" })).success, true);
    assert.equal((await first.limit({ key: "k" })).success, false);
    assert.equal((await other.limit({ key: "k" })).success, true);
  });

  test("options are checked as miniflare checks them", async () => {
    const tier = binding("ns-e", 5);
    await assert.rejects(tier.limit(null), /invalid rate limit options/);
    await assert.rejects(tier.limit({ key: "k", cost: 2 }), /bad rate limit options: \[cost\]/);
    await assert.rejects(tier.limit({ key: 7 }), /invalid key: 7/);
    await assert.rejects(tier.limit({ key: "k", period: 30 }), /unsupported period: 30/);
  });
});
