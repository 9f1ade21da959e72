// The isolate's side of budget leases (src/lease.ts) against a scripted ledger: never admits
// past what the ledger holds, gives slices back when a limit changes, sends a retried exchange
// with the same sequence number, and stops counting on a lease whose exchange failed.

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { orgLeases } from "../src/budget/lease";
import type { Env } from "../src/protocol/env";
import type { Exchange, LeaseOp, LeaseResult, Settlement } from "../src/protocol/ledger";

/** A ledger that grants what is asked up to `pool` (and open-request slots up to `slotPool`),
 * and records every exchange it gets. */
function fakeLedger(pool: number, { failFirst = 0, slotPool = 0, pressure = false } = {}) {
  const held = new Map<string, number>();
  const calls: LeaseOp[][] = [];
  const batches: (string | undefined)[] = [];
  let failures = failFirst;
  const ledger = {
    async exchange({ leases, batch }: Exchange): Promise<{ leases: LeaseResult[]; nextExchangeMs: number }> {
      calls.push(leases);
      batches.push(batch);
      if (failures > 0) {
        failures -= 1;
        throw new Error("ledger unreachable");
      }
      return {
        nextExchangeMs: 1_000,
        leases: leases.map((op) => {
          let h = held.get(op.leaseId) ?? 0;
          h -= op.settlements.reduce((sum, s) => sum + s.cost, 0) + op.returned;
          const free =
            pool - [...held.entries()].filter(([id]) => id !== op.leaseId).reduce((a, [, v]) => a + v, 0) - h;
          const granted = op.want > 0 && Math.min(op.want, free) >= op.minGrant ? Math.min(op.want, free) : 0;
          h += granted;
          held.set(op.leaseId, h);
          const slots = Math.max(Math.min(op.wantSlots ?? 0, slotPool), Math.min(op.open ?? 0, slotPool));
          return {
            leaseId: op.leaseId,
            held: h,
            granted,
            slots,
            ...(pressure ? { slotPressure: true } : {}),
            ttlMs: 30_000,
            userUsed: 0,
            orgUsed: 0,
            userReserved: 0,
            orgReserved: 0,
            keyUsed: 0,
            keyReserved: 0,
          };
        }),
      };
    },
  };
  const env = { USAGE_LEDGER: { idFromName: (name: string) => name, get: () => ledger } } as unknown as Env;
  return { env, calls, held, batches };
}

function record(requestId: string, cost: number): Settlement {
  return { requestId, userId: "u", month: "2026-12", cost };
}

let books = 0;
const freshOrg = () => orgLeases(`unit-${++books}`, "o");
const limits = { user: 1_000, org: 10_000, key: null, maxConcurrent: null, poolBand: 0 };

describe("lease admission", () => {
  test("pressed by the ledger, a lease gives its spare slots back once its requests end", async () => {
    const { env, calls } = fakeLedger(1_000, { slotPool: 4, pressure: true });
    const org = freshOrg();
    const lease = org.lease("u", "2026-12", { ...limits, maxConcurrent: 10, poolBand: 0 }, Date.now());
    lease.waiting = 3;
    await org.exchange(env, lease, 10);
    lease.waiting = 0;
    assert.ok(lease.pressed && lease.slots === 3);
    assert.ok(org.tryAdmit(lease, 10, Date.now()));
    // its one request settles: the flusher sends it, then (pressed) one more round gives back
    await org.settle(lease, 10, record("r", 1), env, async () => {});
    assert.equal(lease.slots, 0);
    assert.equal(calls.at(-1)?.[0]?.wantSlots, 0);
  });

  test("a capped user's requests are admitted locally only while the lease has a free slot", async () => {
    const { env, calls } = fakeLedger(1_000, { slotPool: 3 });
    const org = freshOrg();
    const lease = org.lease("u", "2026-12", { ...limits, maxConcurrent: 10, poolBand: 0 }, Date.now());
    lease.waiting = 5; // five requests wait for the lease: it asks for their slots
    await org.exchange(env, lease, 10);
    lease.waiting = 0;
    assert.equal(lease.slots, 3, "the ledger spared three");
    assert.equal(calls[0]?.[0]?.wantSlots, 5);
    let admitted = 0;
    while (org.tryAdmit(lease, 10, Date.now())) admitted += 1;
    assert.equal(admitted, 3, "budget for more, slots for three");
    assert.ok(lease.available >= 10, "refused for a slot, not for budget");
    // a request ends: its slot is free at once for the next one, no ledger call
    await org.settle(lease, 10, null, env, async () => {});
    assert.ok(org.tryAdmit(lease, 10, Date.now()));
    assert.equal(calls.length, 1);
    // the next exchange says what is open and asks for that and one spare (requests came)
    await org.exchange(env, lease, 10);
    const op = calls.at(-1)?.[0];
    assert.deepEqual([op?.maxConcurrent, op?.open, op?.wantSlots], [10, 3, 4]);
    // once they have all ended, unpressed, it keeps them over a lull: the next burst finds them
    // (only the ledger's pressure, the first test, or the lease's expiry takes them back)
    for (let i = 0; i < 3; i++) await org.settle(lease, 10, null, env, async () => {});
    for (let i = 0; i < 2; i++) {
      await org.exchange(env, lease, 10);
      assert.deepEqual([calls.at(-1)?.[0]?.open, calls.at(-1)?.[0]?.wantSlots], [0, 3]);
    }
    assert.equal(lease.slots, 3);
  });

  test("a busy lease asks for an eighth more slots than it had open, as spares", async () => {
    const { env, calls } = fakeLedger(10_000, { slotPool: 64 });
    const org = freshOrg();
    const lease = org.lease("u", "2026-12", { ...limits, maxConcurrent: 64, poolBand: 0 }, Date.now());
    lease.waiting = 32;
    await org.exchange(env, lease, 300); // budget for 32 of 10 and more
    lease.waiting = 0;
    for (let i = 0; i < 32; i++) assert.ok(org.tryAdmit(lease, 10, Date.now()));
    await org.exchange(env, lease, 10);
    assert.deepEqual([calls.at(-1)?.[0]?.open, calls.at(-1)?.[0]?.wantSlots], [32, 36]);
  });

  test("admits locally up to what the ledger holds, never past it", async () => {
    const { env, calls } = fakeLedger(100);
    const org = freshOrg();
    const lease = org.lease("u", "2026-12", limits, Date.now());
    assert.equal(org.tryAdmit(lease, 10, Date.now()), false, "no lease yet");
    await org.exchange(env, lease, 10);
    assert.equal(lease.held, 80); // 8 worst cases wanted, the pool had 100
    let admitted = 0;
    while (org.tryAdmit(lease, 10, Date.now())) admitted += 1;
    assert.equal(admitted, 8);
    assert.equal(lease.available, 0);
    assert.equal(calls.length, 1, "local admissions called nothing");
  });

  test("a settlement frees what it did not cost, and its cost leaves the hold once acknowledged", async () => {
    const { env } = fakeLedger(100);
    const org = freshOrg();
    const lease = org.lease("u", "2026-12", limits, Date.now());
    await org.exchange(env, lease, 10);
    assert.ok(org.tryAdmit(lease, 40, Date.now()));
    const flushed = org.settle(lease, 40, record("r1", 15), env, async () => assert.fail("no fallback"));
    assert.equal(lease.available, 80 - 15, "the worst case is out of flight, the cost is pending");
    await flushed; // this request opened the batch: it stays until the ledger has it
    assert.equal(lease.pendingCost + lease.sendingCost, 0);
    assert.ok(lease.held >= 65, "the ledger moved 15 from the hold to the usage");
  });

  test("only the request that opens a batch waits for it; the others return at once", async () => {
    const { env, calls } = fakeLedger(1_000);
    const org = freshOrg();
    const lease = org.lease("u", "2026-12", limits, Date.now());
    await org.exchange(env, lease, 10);
    for (let i = 0; i < 3; i++) assert.ok(org.tryAdmit(lease, 10, Date.now()));
    const first = org.settle(lease, 10, record("a", 5), env, async () => {});
    let others = false;
    void Promise.all([
      org.settle(lease, 10, record("b", 5), env, async () => {}),
      org.settle(lease, 10, record("c", 5), env, async () => {}),
    ]).then(() => {
      others = true;
    });
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.ok(others, "a request that joined a batch returned before it was sent");
    await first;
    const sent = calls.at(-1)?.[0]?.settlements.map((r) => r.requestId);
    assert.deepEqual(sent, ["a", "b", "c"], "one exchange carried the whole batch");
  });

  test("a batch the ledger did not take is sent again with the next", async () => {
    const { env, calls } = fakeLedger(1_000);
    const org = freshOrg();
    const lease = org.lease("u", "2026-12", limits, Date.now());
    await org.exchange(env, lease, 10);
    assert.ok(org.tryAdmit(lease, 10, Date.now()));
    const failing = fakeLedger(1_000, { failFirst: 2 });
    await org.settle(lease, 10, record("r", 4), failing.env, async () => assert.fail("no fallback"));
    const tries = failing.calls.map((ops) => ops[0]?.settlements.map((r) => r.requestId));
    assert.deepEqual(tries, [["r"], ["r"], ["r"]], "two failed attempts, then the next exchange");
    // the same batch each time, under one id: the ledger applies it once, as one row
    const [first, ...again] = failing.batches;
    assert.ok(first?.startsWith("batch:"));
    assert.deepEqual(again, [first, first]);
    assert.equal(calls.length, 1);
  });

  test("an unanswered batch goes again whole: what settled meanwhile waits for the next", async () => {
    const { env } = fakeLedger(1_000);
    const org = freshOrg();
    const lease = org.lease("u", "2026-12", limits, Date.now());
    await org.exchange(env, lease, 10);
    assert.ok(org.tryAdmit(lease, 10, Date.now()) && org.tryAdmit(lease, 10, Date.now()));
    const failing = fakeLedger(1_000, { failFirst: 2 });
    const noFallback = async () => assert.fail("no fallback");
    const first = org.settle(lease, 10, record("r1", 4), failing.env, noFallback);
    while (failing.calls.length < 2) await new Promise((resolve) => setTimeout(resolve, 10));
    await org.settle(lease, 10, record("r2", 5), failing.env, noFallback); // joins the flusher
    await first;
    const sent = failing.calls.map((ops) => ops[0]?.settlements.map((r) => r.requestId));
    assert.deepEqual(sent, [["r1"], ["r1"], ["r1"], ["r2"]]);
    const [b1, b2, b3, b4] = failing.batches;
    assert.deepEqual([b2, b3], [b1, b1], "the unanswered batch, under its id");
    assert.notEqual(b4, b1, "the next one is a batch of its own");
    assert.equal(lease.unconfirmed, 0);
  });

  test("a changed limit retires the lease: its free part is returned, a new lease starts", async () => {
    const { env, calls } = fakeLedger(1_000);
    const org = freshOrg();
    const old = org.lease("u", "2026-12", limits, Date.now());
    await org.exchange(env, old, 10);
    const fresh = org.lease(
      "u",
      "2026-12",
      { user: 500, org: 10_000, key: null, maxConcurrent: null, poolBand: 0 },
      Date.now(),
    );
    assert.notEqual(fresh.id, old.id);
    assert.equal(old.available, 0, "the retired lease admits nothing more");
    await org.exchange(env, fresh, 10);
    const returned = calls.at(-1)?.find((op) => op.leaseId === old.id);
    assert.ok(returned && returned.returned > 0, "the old slice went back");
    assert.equal(calls.at(-1)?.find((op) => op.leaseId === fresh.id)?.userLimit, 500);
  });

  test("a failed exchange is retried with the same sequence number, then the lease is dropped", async () => {
    const { env, calls } = fakeLedger(100, { failFirst: 3 });
    const org = freshOrg();
    const lease = org.lease("u", "2026-12", limits, Date.now());
    await org.exchange(env, lease, 10); // both attempts fail
    assert.equal(calls.length, 2);
    assert.equal(calls[0]?.[0]?.seq, calls[1]?.[0]?.seq, "a retry must be recognisable as one");
    assert.equal(lease.held, 0);
    assert.equal(org.tryAdmit(lease, 1, Date.now()), false);
    assert.ok(lease.exhausted, "admission goes per request for a while");
  });

  test("no grant near a limit: admit per request, and ask again only later", async () => {
    const { env } = fakeLedger(30); // less than 4 worst cases of 10
    const org = freshOrg();
    const lease = org.lease("u", "2026-12", limits, Date.now());
    await org.exchange(env, lease, 10);
    assert.ok(lease.exhausted);
    assert.equal(org.lease("u", "2026-12", limits, Date.now()), lease, "kept while per request");
    const later = Date.now() + 6_000;
    assert.notEqual(org.lease("u", "2026-12", limits, later), lease, "a new try after the pause");
  });
});
