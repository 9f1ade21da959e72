// Pricing: integer micro-dollars, rounded up once per request (never under), exact formatting.

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { formatUsd } from "../src/lib/money";
import { costMicros, customCostHeader, worstCaseMicros } from "../src/pricing/prices";

const GPT_4O_MINI = { in: 150_000, out: 600_000, cachedIn: 75_000, cacheWrite: 150_000 }; // µUSD per million tokens
const SONNET = { in: 3_000_000, out: 15_000_000, cachedIn: 300_000, cacheWrite: 3_750_000 };

describe("costMicros", () => {
  test("is tokens × price / 10^6, rounded up once", () => {
    // 8 × 0.15 + 12 × 0.60 = 8.4 µUSD → 9
    assert.equal(costMicros({ promptTokens: 8, completionTokens: 12 }, GPT_4O_MINI), 9);
    assert.equal(costMicros({ promptTokens: 1_000_000, completionTokens: 0 }, GPT_4O_MINI), 150_000);
  });

  test("never charges less than the exact cost", () => {
    for (let prompt = 0; prompt < 300; prompt += 7) {
      for (let completion = 0; completion < 300; completion += 11) {
        const exact = (prompt * GPT_4O_MINI.in + completion * GPT_4O_MINI.out) / 1_000_000;
        const charged = costMicros({ promptTokens: prompt, completionTokens: completion }, GPT_4O_MINI);
        assert.ok(charged >= exact && charged - exact < 1, `${prompt}/${completion}: ${charged} vs ${exact}`);
        assert.ok(Number.isInteger(charged));
      }
    }
  });

  test("charges cached prompt tokens at the cached-input price", () => {
    const tokens = { promptTokens: 1_000_000, completionTokens: 0, cachedTokens: 400_000 };
    assert.equal(costMicros(tokens, GPT_4O_MINI), 600_000 * 0.15 + 400_000 * 0.075);
  });

  test("adds a per-request price to every request's tokens, in the worst case too", () => {
    const perRequest = { ...GPT_4O_MINI, request: 5_000 }; // $5 per 1,000 requests
    assert.equal(costMicros({ promptTokens: 8, completionTokens: 12 }, perRequest), 9 + 5_000);
    assert.equal(costMicros({ promptTokens: 0, completionTokens: 0 }, perRequest), 5_000);
    assert.equal(worstCaseMicros(8, 12, perRequest), worstCaseMicros(8, 12, GPT_4O_MINI) + 5_000);
    // past a long-context line the token prices change; the request price does not
    const long = { ...perRequest, long: { ...SONNET, above: 100 } };
    assert.equal(costMicros({ promptTokens: 200, completionTokens: 0 }, long), 600 + 5_000);
  });

  test("counts no more cached tokens than prompt tokens", () => {
    const tokens = { promptTokens: 10, completionTokens: 0, cachedTokens: 50 };
    assert.equal(costMicros(tokens, GPT_4O_MINI), costMicros({ ...tokens, cachedTokens: 10 }, GPT_4O_MINI));
  });

  test("charges cache writes at the cache-write price and the rest at the input price", () => {
    // 1,000 input of which 600 read from cache and 300 written: 100 × 3 + 600 × 0.3 + 300 × 3.75
    const tokens = { promptTokens: 1000, completionTokens: 10, cachedTokens: 600, cacheWriteTokens: 300 };
    assert.equal(costMicros(tokens, SONNET), Math.ceil((100 * 3e6 + 600 * 3e5 + 300 * 3.75e6 + 10 * 15e6) / 1e6));
  });

  test("the worst case prices every prompt token at the dearest input price", () => {
    const bound = worstCaseMicros(1000, 100, SONNET);
    assert.equal(bound, Math.ceil((1000 * 3_750_000 + 100 * 15_000_000) / 1_000_000));
    for (const [cachedTokens, cacheWriteTokens] of [
      [0, 0],
      [1000, 0],
      [0, 1000],
      [300, 700],
    ]) {
      const tokens = { promptTokens: 1000, completionTokens: 100, cachedTokens, cacheWriteTokens };
      assert.ok(costMicros(tokens, SONNET) <= bound);
    }
  });

  test("charges 1-hour cache writes at their own price, the other writes at the 5-minute price", () => {
    const priced = { ...SONNET, cacheWrite1h: 6_000_000 };
    const tokens = { promptTokens: 1000, completionTokens: 0, cacheWriteTokens: 300, cacheWrite1hTokens: 200 };
    assert.equal(costMicros(tokens, priced), Math.ceil((700 * 3e6 + 100 * 3.75e6 + 200 * 6e6) / 1e6));
    // more 1-hour writes reported than writes: no more than the writes
    assert.equal(
      costMicros({ ...tokens, cacheWrite1hTokens: 5000 }, priced),
      costMicros({ ...tokens, cacheWrite1hTokens: 300 }, priced),
    );
  });

  test("a request above the long-context line pays every token at the long prices", () => {
    const long = { in: 6_000_000, out: 22_500_000, cachedIn: 600_000, cacheWrite: 7_500_000, above: 200_000 };
    const price = { ...SONNET, long };
    const at = (promptTokens: number) => costMicros({ promptTokens, completionTokens: 1000 }, price);
    assert.equal(at(200_000), Math.ceil((200_000 * 3e6 + 1000 * 15e6) / 1e6)); // at the line: standard
    assert.equal(at(200_001), Math.ceil((200_001 * 6e6 + 1000 * 22.5e6) / 1e6)); // past it: all tokens long
    // the worst case follows the bound's side of the line, and never falls below a cost
    assert.equal(worstCaseMicros(150_000, 1000, price), worstCaseMicros(150_000, 1000, SONNET));
    assert.equal(worstCaseMicros(250_000, 1000, price), Math.ceil((250_000 * 7.5e6 + 1000 * 22.5e6) / 1e6));
    for (const prompt of [1, 199_999, 200_000, 200_001, 250_000]) {
      assert.ok(at(prompt) <= worstCaseMicros(Math.max(prompt, 200_001), 1000, price));
    }
  });

  test("the worst case counts the 1-hour write price only for a request that asks for it", () => {
    const priced = { ...SONNET, cacheWrite1h: 6_000_000 };
    assert.equal(worstCaseMicros(1000, 0, priced), worstCaseMicros(1000, 0, SONNET));
    assert.equal(worstCaseMicros(1000, 0, priced, true), 6_000);
  });

  test("is zero for no tokens", () => {
    assert.equal(costMicros({ promptTokens: 0, completionTokens: 0 }, GPT_4O_MINI), 0);
  });
});

describe("formatUsd", () => {
  for (const [micros, text] of [
    [0, "0.000000"],
    [1, "0.000001"],
    [9, "0.000009"],
    [1_234_567, "1.234567"],
    [100_000_000, "100.000000"],
    [-1_500_000, "-1.500000"],
    [999_999_999_999_999, "999999999.999999"],
  ] as const) {
    test(`${micros} µUSD is "${text}"`, () => assert.equal(formatUsd(micros), text));
  }
});

test("the custom cost header is the same prices in USD per token", () => {
  assert.deepEqual(JSON.parse(customCostHeader(GPT_4O_MINI)), { per_token_in: 1.5e-7, per_token_out: 6e-7 });
});
