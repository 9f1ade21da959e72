// Prices and cost. Prices are integer micro-dollars (µUSD) per million tokens, so
// cost µUSD = tokens × price / 10^6, rounded up once per request: exact, and never under.

import type { Policy, Price } from "./env";
import { PRICES } from "./generated/settings";

const PER_MILLION = 1_000_000;

/** Tokens of a request; `promptTokens` counts all input, the cached and cache-written included. */
export interface Tokens {
  promptTokens: number;
  completionTokens: number;
  cachedTokens?: number;
  cacheWriteTokens?: number;
}

export function priceFor(model: string, policy: Policy): Price {
  const price = Object.hasOwn(policy.priceOverrides, model) ? policy.priceOverrides[model] : PRICES[model];
  if (!price) throw new Error(`no price for ${model}: the catalog and its prices disagree`);
  return price;
}

/** µUSD for a request's tokens: cache reads at the cached-input price, cache writes at the
 * cache-write price, the rest of the input at the input price. */
export function costMicros(
  { promptTokens = 0, completionTokens = 0, cachedTokens = 0, cacheWriteTokens = 0 }: Tokens,
  price: Price,
): number {
  const cached = Math.min(cachedTokens, promptTokens);
  const written = Math.min(cacheWriteTokens, promptTokens - cached);
  const plain = promptTokens - cached - written;
  const numerator =
    plain * price.in + cached * price.cachedIn + written * price.cacheWrite + completionTokens * price.out;
  return Math.ceil(numerator / PER_MILLION);
}

/** What a request can cost at most: every prompt token at the dearest input price (a cache
 * write may cost more than plain input), every output token. */
export function worstCaseMicros(promptTokens: number, completionTokens: number, price: Price): number {
  const input = Math.max(price.in, price.cachedIn, price.cacheWrite);
  return Math.ceil((promptTokens * input + completionTokens * price.out) / PER_MILLION);
}

/** `cf-aig-custom-cost`: the same prices in USD per token, so AI Gateway's analytics agree. */
export function customCostHeader(price: Price): string {
  return JSON.stringify({ per_token_in: price.in / 1e12, per_token_out: price.out / 1e12 });
}

/** µUSD → "12.345678" (six decimals, exact: integer arithmetic, no float rounding). */
export function formatUsd(micros: number): string {
  const sign = micros < 0 ? "-" : "";
  const abs = Math.abs(micros);
  const whole = Math.floor(abs / 1_000_000);
  const frac = String(abs % 1_000_000).padStart(6, "0");
  return `${sign}${whole}.${frac}`;
}
