// Background runs (background-runs.ts): who may start one, and how often its ledger looks.

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { nextPollDelay, WATCH_MS } from "../src/ledger/runs-table";
import { HttpError } from "../src/lib/errors";
import { requested } from "../src/pricing/extras";

function paramRefused(body: Record<string, unknown>, allowUnpriced: boolean): string | null {
  try {
    requested("responses", body, allowUnpriced);
    return null;
  } catch (err) {
    assert.ok(err instanceof HttpError && err.status === 400, String(err));
    return err.param ?? null;
  }
}

describe("background runs", () => {
  test("only an org that allows them may start one, and never streamed", () => {
    assert.equal(paramRefused({ background: true }, false), "background");
    assert.equal(paramRefused({ background: true }, true), null);
    assert.equal(paramRefused({ background: true, stream: true }, true), "stream");
    assert.equal(paramRefused({ background: false, stream: true }, false), null);
  });

  test("the ledger looks after 1 s, then twice as long each time, at most every 30 s", () => {
    assert.deepEqual(
      [0, 1, 2, 3, 4, 5, 6, 20].map(nextPollDelay),
      [1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000, 30_000],
    );
    // a day of looking is a bounded number of polls
    let polls = 0;
    for (let t = 0; t < WATCH_MS; t += nextPollDelay(polls)) polls++;
    assert.ok(polls < 3_000, String(polls));
  });
});
