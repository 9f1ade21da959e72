// Budget alerts (src/alerts.ts): thresholds compared exactly in integers, the webhook
// signature a receiver can check with the shared secret, and the retry schedule.

import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { describe, test } from "node:test";
import { payload, reached, retryDelayMs, signature } from "../src/ledger/alert-webhook";

describe("alerts", () => {
  test("a threshold is reached at exactly its share of the limit, never by rounding", () => {
    assert.equal(reached(7_999, 10_000, 80), false);
    assert.equal(reached(8_000, 10_000, 80), true);
    assert.equal(reached(1, 3, 33), true); // 100 ≥ 99
    assert.equal(reached(0, 0, 50), false, "no limit, no alert");
    // amounts far beyond 2^53 / 100 still compare exactly
    assert.equal(reached(9_007_199_254_740_991, 9_007_199_254_740_991, 100), true);
    assert.equal(reached(9_007_199_254_740_990, 9_007_199_254_740_991, 100), false);
  });

  test("the signature is HMAC-SHA256 of '<t>.<body>', as a receiver recomputes it", async () => {
    const body = JSON.stringify({ id: "alert:acme:2026-12:org:80" });
    const header = await signature("s3cret", 1_796_000_000, body);
    const expected = createHmac("sha256", "s3cret").update(`1796000000.${body}`).digest("hex");
    assert.equal(header, `t=1796000000,v1=${expected}`);
    assert.notEqual(await signature("other", 1_796_000_000, body), header);
  });

  test("the payload names the org, the scope and exact amounts", () => {
    const row = {
      month: "2026-12",
      subject: "user:ana",
      threshold: 80,
      crossedAt: Date.UTC(2026, 11, 2),
      usedMicros: 8_000_001,
      limitMicros: 10_000_000,
      status: "pending" as const,
      attempts: 2,
      nextAttemptAt: 0,
      lastStatus: 500,
      lastError: "the webhook answered 500",
      deliveredAt: null,
    };
    const sent = payload("acme", row);
    assert.equal(sent.id, "alert:acme:2026-12:user:ana:80");
    assert.equal(sent.scope, "user");
    assert.equal(sent.userId, "ana");
    assert.equal(sent.usedUsd, "8.000001");
    assert.equal(sent.limitUsd, "10.000000");
    assert.equal(sent.attempt, 3);
    assert.equal(payload("acme", { ...row, subject: "org" }).userId, null);
  });

  test("retries back off 1 s, 2 s, 4 s … up to an hour", () => {
    assert.deepEqual([1, 2, 3, 4].map(retryDelayMs), [1_000, 2_000, 4_000, 8_000]);
    assert.equal(retryDelayMs(30), 3_600_000);
  });
});

describe("whose an alert is", () => {
  test("keys and spend-rate windows are named apart from users and the org", async () => {
    const { alertScope, rateAlertSubject } = await import("../src/ledger/alert-webhook");
    assert.deepEqual(alertScope("org"), { scope: "org", userId: null });
    assert.deepEqual(alertScope("user:ana"), { scope: "user", userId: "ana" });
    assert.deepEqual(alertScope("key:ana:key_ci"), { scope: "key", userId: "ana", keyId: "key_ci" });
    const start = Date.UTC(2026, 11, 5, 14, 3);
    const window = { subject: "key:ana:key_ci", spanMs: 60_000, limit: 1, used: 1, held: 0, resetsAt: start + 60_000 };
    const subject = rateAlertSubject(window);
    assert.equal(subject, `rate:60000:${start}:key:ana:key_ci`);
    assert.deepEqual(alertScope(subject), {
      scope: "key",
      userId: "ana",
      keyId: "key_ci",
      window: { name: "minute", start: "2026-12-05T14:03:00.000Z", end: "2026-12-05T14:04:00.000Z" },
    });
  });
});
