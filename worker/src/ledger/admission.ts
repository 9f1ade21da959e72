// Admission: one request's worst case reserved against its user's limit and its org's budget
// (and its rate tier's cap on open requests), or refused naming the limit it would exceed; one
// atomic step, after the settlements of earlier requests that came along with it (carry.ts).
// A request whose output cap may be lowered (budget/clamp.ts) brings the least it can be served
// for: when its worst case does not fit, the headroom left is reserved if it is at least that.

import type { Admission, AdmitResult, SpendWindow } from "../protocol/ledger";
import type { Alerts } from "./alerts";
import { type Months, RESERVATION_TTL_MS } from "./holds";
import type { Pools } from "./pools";
import type { Settlements } from "./settlement";
import type { SpendRates } from "./spend-rates";

// After a request is refused for its user's cap while leases hold slots of it, their exchanges
// ask them to give spare slots back for this long (decision 0038).
const SLOT_PRESSURE_MS = 10_000;

export class Admissions {
  readonly #months: Months;
  readonly #settlements: Settlements;
  readonly #alerts: Alerts;
  readonly #rates: SpendRates;
  readonly #pools: Pools;

  constructor(months: Months, settlements: Settlements, alerts: Alerts, rates: SpendRates, pools: Pools) {
    this.#months = months;
    this.#settlements = settlements;
    this.#alerts = alerts;
    this.#rates = rates;
    this.#pools = pools;
  }

  admit({
    requestId,
    userId,
    month,
    amount,
    least = amount,
    userLimit,
    orgBudget,
    keyId,
    keyLimit = null,
    rates = [],
    maxConcurrent = null,
    settlements = [],
    now = Date.now(),
    orgId,
    alerts,
    poolBand = 0,
  }: Admission): AdmitResult {
    // a key with no limit of its own counts against its user's alone (its row is still kept)
    const limitedKey = keyLimit !== null && keyId !== undefined ? keyId : null;
    const key = limitedKey ? { keyId: limitedKey, keyLimit: keyLimit as number } : null;
    this.#alerts.learn(orgId, userId, userLimit, orgBudget, alerts, key);
    for (const record of settlements) this.#settlements.settle(record); // carried along: see carry.ts
    // a lowered limit the spend already passes is told now, even if this request is refused
    this.#alerts.check(month, [{ userId, keyId: limitedKey }], now);
    const state = this.#months.get(month);
    this.#months.sweep(now);
    const figures = state.figures(userId, limitedKey);
    const open = state.openOf(userId); // its open reservations and the slots its leases hold
    const keyRoom = limitedKey
      ? (keyLimit as number) - figures.keyUsed - figures.keyReserved
      : Number.POSITIVE_INFINITY;
    // what isolates' cold-start pools may have admitted for this user unreported stays free (0039)
    const band = this.#pools.exposure(month, userId, userLimit, poolBand, now);
    const userRoom = userLimit - figures.userUsed - figures.userReserved - band;
    const orgRoom = orgBudget - figures.orgUsed - figures.orgReserved;
    const needs = Math.min(amount, Math.max(0, least));
    // spend-rate breakers: this minute's and this hour's windows, held and counted like a month
    const windows = this.#rates.figures(rates, userId, keyId, now);
    const rateRoom = (w: SpendWindow) => w.limit - w.used - w.held;
    const tripped = windows.find((w) => needs > rateRoom(w));
    let refused: AdmitResult["limit"] = null;
    if (maxConcurrent !== null && open >= maxConcurrent) {
      refused = "concurrency";
      // slots some isolate may not be using stand in the way: its lease gives spares back
      if (state.slotsByUser.get(userId)) state.slotPressure.set(userId, now + SLOT_PRESSURE_MS);
    } else if (needs > keyRoom) refused = "key";
    else if (needs > userRoom) refused = "user";
    else if (needs > orgRoom) refused = "org";
    else if (tripped) refused = "rate";
    if (refused === "rate" && tripped) {
      this.#alerts.tripped(month, tripped, now); // once per window
      return { admitted: false, amount: 0, limit: refused, open, window: tripped, ...figures };
    }
    if (refused) return { admitted: false, amount: 0, limit: refused, open, ...figures };
    const reserved = Math.min(amount, keyRoom, userRoom, orgRoom, ...windows.map(rateRoom));
    const holds = this.#rates.hold(windows, reserved, now);
    const expiresAt = now + RESERVATION_TTL_MS;
    this.#months.reserve(state, month, requestId, userId, reserved, expiresAt, limitedKey, holds);
    this.#pools.check(state, month, userId, userLimit, poolBand, now);
    return { admitted: true, amount: reserved, limit: null, open, ...figures };
  }

  /** A request's reservation, if still open, is held until `until` plus the usual TTL. */
  holdUntil(month: string, requestId: string, until: number): void {
    const state = this.#months.get(month);
    const held = state.reservations.get(requestId);
    if (held) {
      const expiresAt = until + RESERVATION_TTL_MS;
      this.#months.reserve(
        state,
        month,
        requestId,
        held.userId,
        held.amount,
        expiresAt,
        held.keyId ?? null,
        held.rates,
      );
    }
  }
}
