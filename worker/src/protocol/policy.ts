// What the gateway knows of a key's tenant: its resolved policy (request/policy.ts resolves it
// from the stack and the tenant records), the prices it pays, and its budget alert thresholds.

import type { FAILURE_MODES } from "../generated/contract";

/** µUSD per million tokens: input, output, input read from and written to a prompt cache (a
 * 1-hour cache's writes at their own price; none: not priced, so refused). */
export interface TokenPrices {
  in: number;
  out: number;
  cachedIn: number;
  cacheWrite: number;
  cacheWrite1h?: number;
}

/** A model's prices; `long`: every token's, when the input is above `above` tokens. */
export interface Price extends TokenPrices {
  long?: TokenPrices & { above: number };
  /** µUSD the provider bills per request beyond its tokens (a cache hit pays none). */
  request?: number;
}

/**
 * How the price catalog (genai-prices) matches a model id to its entry: its own match rules,
 * evaluated on the lower-cased id (pricing/catalog-match.ts).
 */
export type MatchLogic =
  | { equals: string }
  | { starts_with: string }
  | { ends_with: string }
  | { contains: string }
  | { regex: string }
  | { or: MatchLogic[] }
  | { and: MatchLogic[] };

/** A model family the stack offers by pattern (`anthropic/claude-*`): the catalog's entries
 * under it, in the catalog's order, each with its match rules and its price. */
export interface ModelPattern {
  pattern: string;
  /** The part before `*`: a requested id must start with it. */
  prefix: string;
  entries: readonly { id: string; match: MatchLogic; price: Price; window: number | null }[];
}

/** A spend-rate breaker: µUSD the user (or the key) may spend per window of `spanMs` (a UTC
 * minute or hour: SPEND_RATE_WINDOWS), worst cases held, real costs counted (ledger/spend-rates.ts). */
export interface SpendRateLimit {
  scope: "user" | "key";
  spanMs: number;
  limitMicros: number;
}

/** What every request path reads about the key's principal (worker/src/policy.ts). */
export interface Policy {
  userLimitMicros: number;
  orgBudgetMicros: number;
  /** The key's own monthly limit, a share of its user's (null: the user's alone). */
  keyLimitMicros: number | null;
  /** Its spend-rate breakers: the user's and the key's own, else its rate tier's (none: []). */
  spendRates: readonly SpendRateLimit[];
  failureMode: (typeof FAILURE_MODES)[number];
  fallbackDailyLimitMicros: number;
  allowedModels: string[];
  /** The stack's model patterns this key may use (routing.modelPatterns within its allow-lists). */
  allowedPatterns: string[];
  /** Whether this org's keys may read the org's month on GET /v1/usage. */
  shareOrgUsage: boolean;
  /** The lowest output cap a request is lowered to when its worst case does not fit the headroom
   * (budget/clamp.ts); null: the org switched clamping off (such a request is refused). */
  clampFloorTokens: number | null;
  /** The org's cold-start pools (decision 0039); null: switched off, every cold user awaits the ledger. */
  coldStart: PoolSettings | null;
  defaultModel: string | null;
  cacheTtl: number;
  priceOverrides: Record<string, Price>;
  /** The tenant's aliases (the user's over the org's), looked up before the stack's. */
  aliases: Record<string, string>;
  /** The org's fallback chains, looked up before the stack's. */
  fallbacks: Record<string, string[]>;
  /** The rate tier (the user's, else the org's), or null for none. */
  rateTier: string | null;
  /** Whether the client's cf-aig-skip-cache / cf-aig-cache-ttl headers are honoured. */
  clientCacheControl: boolean;
  /** Browser origins this key's org allows (CORS); none by default. */
  corsOrigins: readonly string[];
  /** Budget alert thresholds, % of the user's limit and of the org's budget (ledger.ts). */
  alerts: AlertThresholds;
  /** The org opted in to request bodies (prompts) in its log lines (facts.ts). */
  logPrompts: boolean;
  /** The org's users may continue each other's stored Responses (stored-objects.ts). */
  shareStoredResponses: boolean;
  /** The org's requests may use billed tools and tiers the stack has no price for (billing.ts). */
  allowUnpriced: boolean;
  /** Changes whenever anything above does: part of the tenant's cache key. */
  version: string;
}

export interface AlertThresholds {
  user: readonly number[];
  org: readonly number[];
}

export interface Principal {
  hash: string;
  keyId: string;
  userId: string;
  orgId: string;
  policy: Policy;
}

/** The org's cold-start pools as its policy declares them (decision 0039). */
export interface PoolSettings {
  /** At most this many isolates hold a pool of the org at once. */
  isolates: number;
  /** A pooled request's worst case at most (µUSD), and what a pool may admit for one user unreported. */
  allowance: number;
}
