// A key's effective policy: its tenant's settings (from the key's shard record) resolved
// against the catalog this script was rendered with. Catalog-wide facts (models, the stack's
// default model, prices) live only in the script, so changing them rewrites no KV record.

import {
  CLAMP_FLOOR_TOKENS,
  COLD_START_ALLOWANCE_MICROS,
  COLD_START_ISOLATES,
  type COMPILED_KEY_STATUSES,
} from "../generated/contract";
import { ALERTS, DEFAULT_MODEL, EMBEDDING_MODELS, MODEL_PATTERNS, MODELS, RATE_TIERS } from "../generated/settings";
import type { Policy, PoolSettings, Price, SpendRateLimit } from "../protocol/policy";

/** A key's own part of its shard record. */
export interface KeyEntry {
  keyId: string;
  userId: string;
  orgId: string;
  status: (typeof COMPILED_KEY_STATUSES)[number];
  expiresAt: number | null;
  monthlyLimitMicros: number;
  /** The key's own monthly limit, present only when declared. */
  keyLimitMicros?: number;
  /** The user's and the key's own spend-rate breakers, present only when declared. */
  spendRates?: SpendRateLimit[];
  allowedModels: string[] | null;
  // the user's own routing, present only when declared
  defaultModel?: string;
  aliases?: Record<string, string>;
  rateTier?: string;
  alertThresholds?: number[];
}

/** Its organization's part, stored once per org in each shard that holds its keys. */
export interface OrgPolicy {
  monthlyBudgetMicros: number;
  failureMode: Policy["failureMode"];
  fallbackDailyLimitMicros: number;
  allowedModels: string[] | null;
  defaultModel: string | null;
  cacheTtl: number;
  priceOverrides: Record<string, Price>;
  // present only when declared
  aliases?: Record<string, string>;
  fallbacks?: Record<string, string[]>;
  rateTier?: string;
  clientCacheControl?: boolean;
  corsOrigins?: string[];
  alerts?: { orgThresholds?: number[]; userThresholds?: number[] };
  logPrompts?: boolean;
  shareStoredResponses?: boolean;
  allowUnpriced?: boolean;
  shareOrgUsage?: boolean;
  clampOutput?: boolean;
  clampFloorTokens?: number;
  /** Cold-start pools where they differ from the contract's defaults; false: off (decision 0039). */
  coldStart?: { isolates?: number; allowanceMicros?: number } | false;
}

/** A policy's tenant routing when the tenant declared none (also wave 1's records, auth.ts). */
export function undeclaredRouting(): Pick<
  Policy,
  | "allowedPatterns"
  | "aliases"
  | "fallbacks"
  | "rateTier"
  | "clientCacheControl"
  | "corsOrigins"
  | "alerts"
  | "logPrompts"
  | "shareStoredResponses"
  | "allowUnpriced"
  | "shareOrgUsage"
  | "clampFloorTokens"
  | "coldStart"
> {
  return {
    allowedPatterns: [],
    aliases: {},
    fallbacks: {},
    rateTier: null,
    clientCacheControl: false,
    corsOrigins: [],
    alerts: { user: [], org: [] },
    logPrompts: false,
    shareStoredResponses: false,
    allowUnpriced: false,
    shareOrgUsage: false,
    clampFloorTokens: CLAMP_FLOOR_TOKENS,
    coldStart: coldStartOf(undefined),
  };
}

/** An org's cold-start pools (decision 0039): the contract's defaults where it declares none. */
function coldStartOf(declared: OrgPolicy["coldStart"]): PoolSettings | null {
  if (declared === false) return null;
  return {
    isolates: declared?.isolates ?? COLD_START_ISOLATES,
    allowance: declared?.allowanceMicros ?? COLD_START_ALLOWANCE_MICROS,
  };
}

/** FNV-1a, 32 bits, hex: a version tag of a policy (not a security measure). */
function fnv1a(text: string): string {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193);
  return (hash >>> 0).toString(16).padStart(8, "0");
}

function permits(list: readonly string[] | null, model: string): boolean {
  return list === null || list.includes(model);
}

/** The breakers declared on the user and the key, and the rate tier's where they declare none for
 * the same scope and window. */
function spendRatesOf(entry: KeyEntry, tierName: string | null): SpendRateLimit[] {
  const declared = entry.spendRates ?? [];
  const tier = tierName !== null && Object.hasOwn(RATE_TIERS, tierName) ? RATE_TIERS[tierName] : undefined;
  const inherited = (tier?.spendRates ?? []).filter(
    (t) => !declared.some((d) => d.scope === t.scope && d.spanMs === t.spanMs),
  );
  return [...declared, ...inherited];
}

/** {key entry, org policy} → the policy every request path reads. */
export function effectivePolicy(entry: KeyEntry, org: OrgPolicy, catalog: readonly string[] = MODELS): Policy {
  // Catalog ∩ org allow-list ∩ user allow-list, in catalog order.
  const allowedModels = catalog.filter((m) => permits(org.allowedModels, m) && permits(entry.allowedModels, m));
  // the stack's model patterns, within the same allow-lists (which may name a pattern)
  const allowedPatterns = MODEL_PATTERNS.map((p) => p.pattern).filter(
    (p) => permits(org.allowedModels, p) && permits(entry.allowedModels, p),
  );
  // Precedence: the user's default, the org's, the stack's (each only if this key may use it),
  // else the first chat model it may use.
  const chat = allowedModels.filter((m) => !EMBEDDING_MODELS.includes(m));
  const preferred = [entry.defaultModel, org.defaultModel, DEFAULT_MODEL].find((m) => m && chat.includes(m));
  const priceOverrides: Record<string, Price> = {};
  for (const [model, price] of Object.entries(org.priceOverrides)) {
    if (allowedModels.includes(model)) priceOverrides[model] = price;
  }
  const policy: Omit<Policy, "version"> = {
    userLimitMicros: entry.monthlyLimitMicros,
    orgBudgetMicros: org.monthlyBudgetMicros,
    keyLimitMicros: entry.keyLimitMicros ?? null,
    spendRates: spendRatesOf(entry, entry.rateTier ?? org.rateTier ?? null),
    failureMode: org.failureMode,
    fallbackDailyLimitMicros: org.fallbackDailyLimitMicros,
    allowedModels,
    allowedPatterns,
    defaultModel: preferred ?? chat[0] ?? null,
    cacheTtl: org.cacheTtl,
    priceOverrides,
    aliases: { ...org.aliases, ...entry.aliases },
    fallbacks: { ...org.fallbacks },
    rateTier: entry.rateTier ?? org.rateTier ?? null,
    clientCacheControl: org.clientCacheControl === true,
    corsOrigins: org.corsOrigins ?? [],
    logPrompts: org.logPrompts === true,
    shareStoredResponses: org.shareStoredResponses === true,
    allowUnpriced: org.allowUnpriced === true,
    shareOrgUsage: org.shareOrgUsage === true,
    clampFloorTokens: org.clampOutput === false ? null : (org.clampFloorTokens ?? CLAMP_FLOOR_TOKENS),
    coldStart: coldStartOf(org.coldStart),
    // budget alert thresholds (% of the month): the user's, the org's, the stack's; none without a webhook
    alerts: ALERTS
      ? {
          user: entry.alertThresholds ?? org.alerts?.userThresholds ?? [...ALERTS.userThresholds],
          org: org.alerts?.orgThresholds ?? [...ALERTS.orgThresholds],
        }
      : { user: [], org: [] },
  };
  // The version of what decides which model may answer: in the cache key, so an answer cached
  // under one allow-list or routing is never served under another (a limit change keeps the cache).
  const routing = [policy.allowedModels, policy.allowedPatterns, policy.defaultModel, policy.aliases, policy.fallbacks];
  return { ...policy, version: fnv1a(JSON.stringify(routing)) };
}
