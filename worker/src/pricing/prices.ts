// Prices and cost. Prices are integer micro-dollars (µUSD) per million tokens, so
// cost µUSD = tokens × price / 10^6, rounded up once per request: exact, and never under.

import { CONTEXT_WINDOWS, PRICES } from "../generated/settings";
import type { Policy, Price, TokenPrices } from "../protocol/policy";
import { catalogEntry, patternOf } from "./catalog-match";

const PER_MILLION = 1_000_000;

/** Tokens of a request; `promptTokens` counts all input, the cached and cache-written included. */
export interface Tokens {
  promptTokens: number;
  completionTokens: number;
  cachedTokens?: number;
  cacheWriteTokens?: number;
  /** Of the cache writes: to a 1-hour cache (Anthropic's ephemeral_1h). */
  cacheWrite1hTokens?: number;
}

export function priceFor(model: string, policy: Policy): Price {
  const price = Object.hasOwn(policy.priceOverrides, model)
    ? policy.priceOverrides[model]
    : Object.hasOwn(PRICES, model)
      ? PRICES[model]
      : patternPrice(model);
  if (!price) throw new Error(`no price for ${model}: the catalog and its prices disagree`);
  return price;
}

/** The most input tokens a model takes, where the catalog says so safely (null: unbounded). */
export function contextWindowOf(model: string): number | null {
  if (Object.hasOwn(CONTEXT_WINDOWS, model)) return CONTEXT_WINDOWS[model] ?? null;
  if (Object.hasOwn(PRICES, model)) return null;
  const pattern = patternOf(model);
  return (pattern && catalogEntry(model, pattern)?.window) ?? null;
}

/** The catalog's price of a model offered by pattern (routing.modelPatterns), or undefined. */
function patternPrice(model: string): Price | undefined {
  const pattern = patternOf(model);
  return pattern ? catalogEntry(model, pattern)?.price : undefined;
}

/** µUSD for a request's tokens: cache reads at the cached-input price, cache writes at the
 * cache-write price, the rest of the input at the input price; and the model's per-request
 * price, if it has one. */
export function costMicros(
  { promptTokens = 0, completionTokens = 0, cachedTokens = 0, cacheWriteTokens = 0, cacheWrite1hTokens = 0 }: Tokens,
  price: Price,
): number {
  const p = pricesAt(price, promptTokens);
  const cached = Math.min(cachedTokens, promptTokens);
  const written = Math.min(cacheWriteTokens, promptTokens - cached);
  const writtenHour = Math.min(cacheWrite1hTokens, written);
  const plain = promptTokens - cached - written;
  // a 1-hour write without its own price (only an org allowing the unpriced gets one) at the 5-minute's
  const hour = p.cacheWrite1h ?? p.cacheWrite;
  const numerator =
    plain * p.in +
    cached * p.cachedIn +
    (written - writtenHour) * p.cacheWrite +
    writtenHour * hour +
    completionTokens * p.out;
  return Math.ceil(numerator / PER_MILLION) + (price.request ?? 0);
}

/** The prices a request with this much input pays: the long-context ones above their line. */
export function pricesAt(price: Price, promptTokens: number): TokenPrices {
  return price.long && promptTokens > price.long.above ? price.long : price;
}

/** What a request can cost at most: every prompt token at the dearest input price it may pay (a
 * cache write may cost more than plain input; a 1-hour one only when asked for), every output
 * token; at the long-context prices when its input may be above their line; its request price. */
export function worstCaseMicros(
  promptTokens: number,
  completionTokens: number,
  price: Price,
  hourCache = false,
): number {
  const p = pricesAt(price, promptTokens);
  const input = Math.max(p.in, p.cachedIn, p.cacheWrite, hourCache ? (p.cacheWrite1h ?? 0) : 0);
  return Math.ceil((promptTokens * input + completionTokens * p.out) / PER_MILLION) + (price.request ?? 0);
}

/** `cf-aig-custom-cost`: the same prices in USD per token, so AI Gateway's analytics agree. */
export function customCostHeader(price: Price): string {
  return JSON.stringify({ per_token_in: price.in / 1e12, per_token_out: price.out / 1e12 });
}
