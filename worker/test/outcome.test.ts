// What a served request is recorded as: reported usage when it can be real, never more than
// the worst case it was admitted for.

import assert from "node:assert/strict";
import { test } from "node:test";
import { type Bound, outcomeOf } from "../src/outcome";
import { call } from "./providers/support";

const BOUND: Bound = { promptTokens: 1_000, completionTokens: 4_096, micros: 64_440 }; // 3 + 15 µUSD/token
const usage = (promptTokens: number, completionTokens: number) => ({
  promptTokens,
  completionTokens,
  cachedTokens: 0,
  cacheWriteTokens: 0,
});

function quietly<T>(run: () => T): { value: T; logged: string[] } {
  const logged: string[] = [];
  const original = console.error;
  console.error = (line: string) => logged.push(line);
  try {
    return { value: run(), logged };
  } finally {
    console.error = original;
  }
}

test("reported usage within the bound is recorded as reported", () => {
  const { value, logged } = quietly(() => outcomeOf(usage(100, 20), call({}), "answer", false, BOUND));
  assert.deepEqual([value.cost, value.tokensIn, value.tokensOut, value.estimated], [600, 100, 20, false]);
  assert.deepEqual(logged, []);
});

test("negative, fractional or non-finite usage counts as none: estimated from the text, logged", () => {
  for (const bad of [usage(-1_000_000, 5), usage(10, -3), usage(1.5, 2), usage(Number.NaN, 1), usage(1, Infinity)]) {
    const { value, logged } = quietly(() => outcomeOf(bad, call({}), "four", false, BOUND));
    assert.ok(value.cost > 0 && value.cost <= BOUND.micros, `cost ${value.cost}`);
    assert.ok(value.tokensIn >= 0 && value.tokensOut >= 0);
    assert.equal(value.estimated, true);
    assert.equal(JSON.parse(logged[0] ?? "{}").event, "upstream_usage_rejected");
  }
});

test("usage costing more than the admitted worst case is recorded at the bound, flagged, logged", () => {
  const { value, logged } = quietly(() => outcomeOf(usage(10 ** 15, 10 ** 15), call({}), "x", false, BOUND));
  assert.deepEqual([value.cost, value.tokensIn, value.tokensOut, value.estimated], [BOUND.micros, 1_000, 4_096, true]);
  assert.match(JSON.parse(logged[0] ?? "{}").reason, /admitted worst case/);
});

test("a cache hit costs nothing whatever the usage says", () => {
  const { value } = quietly(() => outcomeOf(usage(100, 20), call({}), "answer", true, BOUND));
  assert.deepEqual([value.cost, value.cached], [0, true]);
});
