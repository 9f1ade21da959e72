// Budget-clamped output (src/budget/clamp.ts): the ask a request brings to admission, and the
// largest output cap whose worst case fits what the ledger reserved, found by the route's own
// worst case (so rounding up, choices and per-request prices count as they do for the request).

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { askFor, capWithin, type OutputCap } from "../src/budget/clamp";

/** A route's cap: 1,000 prompt tokens at 15 µUSD, each output token 125.7 µUSD (rounded up, as
 * worstCaseMicros does), `choices` each, and a per-request price. */
function capOf(tokens: number, { least = 1, choices = 1, request = 0 } = {}): OutputCap<number> {
  const boundAt = (t: number) => {
    const micros = 1_000 * 15 + Math.ceil((t * choices * 1_257) / 10) + request;
    return { promptTokens: 1_000, completionTokens: t * choices, micros };
  };
  return { tokens, least, boundAt, lowered: (t) => t };
}

describe("clamped output", () => {
  test("the least amount is the worst case at the org's floor, or the provider's least above it", () => {
    const cap = capOf(32_000);
    assert.deepEqual(askFor(cap.boundAt(32_000), cap, 256), {
      amount: cap.boundAt(32_000).micros,
      least: cap.boundAt(256).micros,
      leastTokens: 256,
    });
    const thinking = capOf(32_000, { least: 1_025 });
    assert.equal(askFor(thinking.boundAt(32_000), thinking, 256).leastTokens, 1_025);
  });

  test("no clamping: switched off, no cap to lower, or a cap already at or below the floor", () => {
    const cap = capOf(200);
    const whole = { amount: cap.boundAt(200).micros, least: cap.boundAt(200).micros, leastTokens: null };
    assert.deepEqual(askFor(cap.boundAt(200), cap, 256), whole);
    assert.deepEqual(askFor(capOf(32_000).boundAt(32_000), capOf(32_000), null).leastTokens, null);
    assert.deepEqual(askFor(cap.boundAt(200), undefined, 256), whole);
  });

  test("the cap found is the largest whose worst case fits, for every reservation", () => {
    for (const choices of [1, 3]) {
      for (const request of [0, 5_000]) {
        const cap = capOf(32_000, { choices, request });
        const floor = 256;
        for (let micros = cap.boundAt(floor).micros; micros < cap.boundAt(32_000).micros; micros += 9_973) {
          const tokens = capWithin(cap, floor, micros);
          assert.ok(cap.boundAt(tokens).micros <= micros, `fits (${micros})`);
          assert.ok(cap.boundAt(tokens + 1).micros > micros, `the largest (${micros})`);
        }
      }
    }
  });

  test("what fits the asked cap whole is not lowered; the floor is never gone below", () => {
    const cap = capOf(4_000);
    assert.equal(capWithin(cap, 256, cap.boundAt(4_000).micros + 1), 4_000);
    assert.equal(capWithin(cap, 256, cap.boundAt(256).micros), 256);
  });
});
