// Admission: one request's worst case reserved against its user's limit and its org's budget
// (and its rate tier's cap on open requests), or refused naming the limit it would exceed; one
// atomic step, after the settlements of earlier requests that came along with it (carry.ts).

import type { Admission, AdmitResult } from "../protocol/ledger";
import type { Alerts } from "./alerts";
import type { Months } from "./holds";
import type { Settlements } from "./settlement";

export const RESERVATION_TTL_MS = 15 * 60 * 1000; // an unsettled reservation holds budget this long

export class Admissions {
  readonly #months: Months;
  readonly #settlements: Settlements;
  readonly #alerts: Alerts;

  constructor(months: Months, settlements: Settlements, alerts: Alerts) {
    this.#months = months;
    this.#settlements = settlements;
    this.#alerts = alerts;
  }

  admit({
    requestId,
    userId,
    month,
    amount,
    userLimit,
    orgBudget,
    maxConcurrent = null,
    settlements = [],
    now = Date.now(),
    orgId,
    alerts,
  }: Admission): AdmitResult {
    this.#alerts.learn(orgId, userId, userLimit, orgBudget, alerts);
    for (const record of settlements) this.#settlements.settle(record); // carried along: see carry.ts
    // a lowered limit the spend already passes is told now, even if this request is refused
    this.#alerts.check(month, [userId], now);
    const state = this.#months.get(month);
    this.#months.sweep(now);
    const figures = state.figures(userId);
    const open = state.openByUser.get(userId) ?? 0;
    let refused: AdmitResult["limit"] = null;
    if (maxConcurrent !== null && open >= maxConcurrent) refused = "concurrency";
    else if (figures.userUsed + figures.userReserved + amount > userLimit) refused = "user";
    else if (figures.orgUsed + figures.orgReserved + amount > orgBudget) refused = "org";
    if (refused) return { admitted: false, limit: refused, open, ...figures };
    this.#months.reserve(state, month, requestId, userId, amount, now + RESERVATION_TTL_MS);
    return { admitted: true, limit: null, open, ...figures };
  }

  /** A request's reservation, if still open, is held until `until` plus the usual TTL. */
  holdUntil(month: string, requestId: string, until: number): void {
    const state = this.#months.get(month);
    const held = state.reservations.get(requestId);
    if (held) this.#months.reserve(state, month, requestId, held.userId, held.amount, until + RESERVATION_TTL_MS);
  }
}
