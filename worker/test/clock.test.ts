// The cached UTC day and month (src/clock.ts) equal the formatted dates at every instant,
// across day, month and year boundaries and when time moves backwards.

import assert from "node:assert/strict";
import { test } from "node:test";
import { utcDay, utcMonth } from "../src/lib/clock";

test("the cached day and month are the formatted ones, boundaries included", () => {
  const instants = [
    Date.UTC(2026, 11, 31, 23, 59, 59, 999),
    Date.UTC(2027, 0, 1, 0, 0, 0, 0),
    Date.UTC(2027, 0, 1, 0, 0, 0, 1),
    Date.UTC(2026, 1, 28, 23, 59, 59, 999),
    Date.UTC(2026, 2, 1),
    Date.UTC(2024, 1, 29, 12),
    Date.UTC(2026, 11, 2, 3, 4, 5),
    Date.UTC(1969, 11, 31, 23, 59, 59), // before the epoch: negative milliseconds
  ];
  for (let i = 0; i < 2000; i++) instants.push(Date.UTC(2026, 0, 1) + Math.floor(Math.random() * 3 * 365 * 86_400_000));
  for (const at of [...instants, ...instants.reverse()]) {
    const iso = new Date(at).toISOString();
    assert.equal(utcDay(at), iso.slice(0, 10), iso);
    assert.equal(utcMonth(at), iso.slice(0, 7), iso);
  }
});
