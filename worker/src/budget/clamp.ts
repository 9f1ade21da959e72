// Budget-clamped output (decision 0035): a request whose worst case does not fit the headroom
// left under a limit, but whose worst case with a smaller output cap would, is sent with that
// smaller cap rather than refused. The route says how its cap is lowered (OutputCap); the ledger
// reserves the headroom if it is at least the request's least amount (its cap at its org's
// floor); here the largest cap whose worst case fits what was reserved is found.

import type { Bound } from "./outcome";

/** A request's output cap, as its route can lower it. */
export interface OutputCap<T> {
  /** The cap the client asked for (or the gateway's default): per choice. */
  tokens: number;
  /** The lowest cap the provider takes for this request (Anthropic's thinking needs room). */
  least: number;
  /** The request's worst case at a cap of `tokens`. */
  boundAt(tokens: number): Bound;
  /** The same request sent with its cap lowered to `tokens`. */
  lowered(tokens: number): T;
}

/** What admission is asked for: the worst case, and the least the request can be served for. */
export interface Ask {
  amount: number;
  least: number;
  /** The cap `least` stands for, when it is below `amount`. */
  leastTokens: number | null;
}

/** The ask for a request: clamping applies when the org has a floor and the cap is above it. */
export function askFor<T>(bound: Bound, cap: OutputCap<T> | undefined, floorTokens: number | null): Ask {
  const amount = bound.micros;
  if (cap === undefined || floorTokens === null) return { amount, least: amount, leastTokens: null };
  const floor = Math.max(floorTokens, cap.least);
  if (cap.tokens <= floor) return { amount, least: amount, leastTokens: null };
  const least = cap.boundAt(floor).micros;
  return least < amount ? { amount, least, leastTokens: floor } : { amount, least: amount, leastTokens: null };
}

/**
 * The largest cap (at least the floor, at most the asked cap) whose worst case is within
 * `micros`: a binary search over the route's own worst case, so whatever that counts (prompt,
 * choices, tiers, tools) is counted the same way.
 */
export function capWithin<T>(cap: OutputCap<T>, floor: number, micros: number): number {
  let low = floor; // fits: the ledger reserved at least its worst case
  let high = cap.tokens; // does not fit, or the asked cap itself
  if (cap.boundAt(high).micros <= micros) return high;
  while (high - low > 1) {
    const mid = Math.floor((low + high) / 2);
    if (cap.boundAt(mid).micros <= micros) low = mid;
    else high = mid;
  }
  return low;
}
