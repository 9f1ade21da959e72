// Settlement batching: a settlement rides along with the next admission to its org, or goes
// on its own when none comes within the carry window; nothing is delivered twice or lost.

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { offer, release, take } from "../src/budget/carry";
import type { Settlement } from "../src/protocol/ledger";

let next = 0;
function settlement(): Settlement {
  next += 1;
  return { requestId: `req_${next}`, userId: "ada", month: "2026-12", cost: next };
}

describe("carry", () => {
  test("an admission takes queued settlements along; delivered, the offer resolves true", async () => {
    const org = "org-delivered";
    const record = settlement();
    const offered = offer(org, record);
    const taken = take(org);
    assert.deepEqual(
      taken.map((e) => e.record),
      [record],
    );
    assert.equal(take(org).length, 0, "an entry in flight is not taken twice");
    release(org, taken, true);
    assert.equal(await offered, true);
  });

  test("a settlement no admission takes within the window goes on its own", async () => {
    const started = Date.now();
    assert.equal(await offer("org-alone", settlement()), false);
    assert.ok(Date.now() - started >= 20);
    assert.equal(take("org-alone").length, 0, "it left the queue");
  });

  test("a failed admission puts its settlements back for the next one", async () => {
    const org = "org-retry";
    const record = settlement();
    const offered = offer(org, record);
    release(org, take(org), false);
    const again = take(org);
    assert.deepEqual(
      again.map((e) => e.record),
      [record],
    );
    release(org, again, true);
    assert.equal(await offered, true);
  });

  test("settlements of one org never ride with another's", async () => {
    const offered = offer("org-a", settlement());
    assert.equal(take("org-b").length, 0);
    release("org-a", take("org-a"), true);
    assert.equal(await offered, true);
  });

  test("one admission carries at most 64", async () => {
    const org = "org-many";
    const offers = Array.from({ length: 70 }, () => offer(org, settlement()));
    const first = take(org);
    const second = take(org);
    assert.equal(first.length, 64);
    assert.equal(second.length, 6);
    release(org, first, true);
    release(org, second, true);
    assert.deepEqual(await Promise.all(offers), Array(70).fill(true));
  });
});
