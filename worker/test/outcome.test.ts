// What a served request is recorded as: reported usage when it can be real and is final, an
// estimate otherwise, never more than the worst case it was admitted for.

import assert from "node:assert/strict";
import { test } from "node:test";
import { type Bound, outcomeOf, type Subject } from "../src/budget/outcome";

const BOUND: Bound = { promptTokens: 1_000, completionTokens: 4_096, micros: 64_440 };
const SUBJECT: Subject = {
  requestId: "req_1",
  model: "anthropic/claude-sonnet-4-5",
  price: { in: 3_000_000, out: 15_000_000, cachedIn: 300_000, cacheWrite: 3_750_000 }, // 3 and 15 µUSD/token
  estimatedPromptTokens: 10,
};
const usage = (promptTokens: number, completionTokens: number) => ({
  promptTokens,
  completionTokens,
  cachedTokens: 0,
  cacheWriteTokens: 0,
});
const final = (u: ReturnType<typeof usage> | null, text = "answer") => ({ usage: u, text, complete: true });

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

test("final reported usage within the bound is recorded as reported", () => {
  const { value, logged } = quietly(() => outcomeOf(final(usage(100, 20)), SUBJECT, false, BOUND));
  assert.deepEqual([value.cost, value.tokensIn, value.tokensOut, value.estimated], [600, 100, 20, false]);
  assert.deepEqual(logged, []);
});

test("no usage: the prompt as estimated before sending and the text's output, flagged", () => {
  const { value } = quietly(() => outcomeOf(final(null, "12345678"), SUBJECT, false, BOUND));
  assert.deepEqual([value.tokensIn, value.tokensOut, value.estimated], [10, 2, true]);
  assert.equal(value.cost, 10 * 3 + 2 * 15);
});

test("negative, fractional or non-finite usage counts as none: estimated, logged", () => {
  for (const bad of [usage(-1_000_000, 5), usage(10, -3), usage(1.5, 2), usage(Number.NaN, 1), usage(1, Infinity)]) {
    const { value, logged } = quietly(() => outcomeOf(final(bad, "four"), SUBJECT, false, BOUND));
    assert.deepEqual([value.tokensIn, value.tokensOut, value.estimated], [10, 1, true]);
    assert.ok(value.cost > 0 && value.cost <= BOUND.micros, `cost ${value.cost}`);
    assert.equal(JSON.parse(logged[0] ?? "{}").event, "upstream_usage_rejected");
  }
});

test("usage costing more than the admitted worst case is recorded at the bound, flagged, logged", () => {
  const { value, logged } = quietly(() => outcomeOf(final(usage(10 ** 15, 10 ** 15)), SUBJECT, false, BOUND));
  assert.deepEqual([value.cost, value.tokensIn, value.tokensOut, value.estimated], [BOUND.micros, 1_000, 4_096, true]);
  assert.match(JSON.parse(logged[0] ?? "{}").reason, /admitted worst case/);
});

test("a stream stopped before its final usage is charged at least the output it streamed", () => {
  const streamed = "x".repeat(400); // 100 tokens by the estimate
  const partial = { usage: usage(50, 1), text: streamed, complete: false }; // Anthropic's message_start
  const { value, logged } = quietly(() => outcomeOf(partial, SUBJECT, false, BOUND));
  assert.deepEqual([value.tokensIn, value.tokensOut, value.estimated], [50, 100, true]);
  assert.equal(value.cost, 50 * 3 + 100 * 15);
  assert.deepEqual(logged, [], "a partial usage is not a refused one");
  const reported = { usage: usage(50, 300), text: streamed, complete: false };
  assert.equal(outcomeOf(reported, SUBJECT, false, BOUND).tokensOut, 300, "never below what was reported");
});

test("a cache hit costs nothing whatever the usage says", () => {
  const { value } = quietly(() => outcomeOf(final(usage(100, 20)), SUBJECT, true, BOUND));
  assert.deepEqual([value.cost, value.cached], [0, true]);
});
